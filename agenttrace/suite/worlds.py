"""Small deterministic worlds (a catalogue, flight fares, weather, a ticket system) and their tools.

Each world holds a table of current values and a stale archive, keyed by (item, qualifier). Its tools are
plain Python functions with typed arguments and a docstring, so every framework can wrap them; a tool's
result is computed from the table when the framework calls it. The environment can fail: a *flaky* item
fails on its first lookup only, a *down* item on every lookup; a call with an item or qualifier the table
does not have (a typo) fails too, by the caller's fault.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Family:
    name: str
    item_arg: str            # the tool argument naming the item, e.g. "product"
    qualifier_arg: str       # the task's constraint, e.g. "region"
    items: tuple[str, ...]
    qualifiers: tuple[str, ...]
    default_qualifier: str   # what an agent uses when nobody told it the qualifier
    unit: str
    low: int
    high: int
    tool: str
    archive_tool: str
    doc: str                 # what the tool returns, for its docstring
    archive_doc: str
    result: str              # the tool's result text
    measure: str             # what a value is, e.g. "unit price"
    highest: str             # "the most expensive"
    combines: tuple[str, ...]  # "sum" and/or "max"
    quantities: bool = False


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("catalogue", "product", "region",
           ("desk lamp", "kettle", "office chair", "monitor stand", "bookshelf", "coffee grinder", "standing fan",
            "wall clock", "laptop sleeve", "water bottle"),
           ("EU", "UK", "US", "APAC"), "US", "EUR", 5, 250, "get_price", "get_archived_price",
           "the current unit price of a product in a regional store", "last year's unit price of a product",
           "{item} in the {qualifier} store: {value} EUR per unit", "unit price", "the most expensive",
           ("sum", "max"), quantities=True),
    Family("flights", "route", "date",
           ("Paris-Rome", "Berlin-Madrid", "Oslo-Vienna", "Lisbon-Prague", "Dublin-Athens", "Warsaw-Zurich",
            "Brussels-Copenhagen", "Milan-Budapest"),
           ("2025-03-04", "2025-03-11", "2025-03-18", "2025-03-25"), "2025-03-04", "EUR", 40, 480,
           "get_fare", "get_archived_fare", "today's economy fare of a route on a date",
           "last season's economy fare of a route", "economy fare {item} on {qualifier}: {value} EUR", "fare",
           "the dearest", ("sum", "max")),
    Family("weather", "city", "day",
           ("Lyon", "Porto", "Graz", "Turku", "Bergen", "Seville", "Gdansk", "Bologna"),
           ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"), "Monday", "degrees", 2, 35,
           "get_forecast", "get_climate_average", "this week's forecast high temperature of a city on a day",
           "the long-term average high of a city", "forecast high for {item} on {qualifier}: {value} degrees",
           "forecast high", "the warmest", ("max",)),
    Family("tickets", "team", "priority",
           ("billing", "mobile", "search", "payments", "identity", "infra", "data", "support"),
           ("high", "urgent", "medium", "low"), "medium", "tickets", 1, 60,
           "count_open_tickets", "count_archived_tickets", "how many tickets of a priority a team has open now",
           "how many tickets of a priority a team had open last quarter",
           "team {item}: {value} open {qualifier}-priority tickets", "open tickets", "the busiest",
           ("sum", "max")),
)}


class ToolError(RuntimeError):
    """A tool call failed; the framework reports it to the agent as the tool's error."""


class ServiceDown(ToolError):
    """A tool's backing service failed: the environment's fault."""


class UnknownArgument(ToolError):
    """The tool has no such item or qualifier: the caller's fault."""


@dataclass
class World:
    family: Family
    current: dict[tuple[str, str], int]
    archive: dict[tuple[str, str], int]
    flaky: set[str] = field(default_factory=set)   # items whose first lookup fails
    down: set[str] = field(default_factory=set)    # items whose every lookup fails
    _failed_once: set[str] = field(default_factory=set)

    @classmethod
    def create(cls, family: Family, rng: random.Random) -> World:
        """Random values, all distinct per item so that any wrong qualifier or source changes the value."""
        current, archive = {}, {}
        for item in family.items:
            values = rng.sample(range(family.low, family.high + 1), 2 * len(family.qualifiers))
            for i, qualifier in enumerate(family.qualifiers):
                current[item, qualifier] = values[2 * i]
                archive[item, qualifier] = values[2 * i + 1]
        return cls(family, current, archive)

    def copy(self, *, flaky: set[str] = frozenset(), down: set[str] = frozenset()) -> World:
        """The same tables with fresh environment faults (a world serves one run)."""
        return World(self.family, self.current, self.archive, set(flaky), set(down))

    def value(self, item: str, qualifier: str, *, archived: bool = False) -> int:
        return (self.archive if archived else self.current)[item, qualifier]

    def result_text(self, item: str, qualifier: str, *, archived: bool = False) -> str:
        text = self.family.result.format(item=item, qualifier=qualifier,
                                         value=self.value(item, qualifier, archived=archived))
        return f"{text} (archive)" if archived else text

    def knows(self, item: str, qualifier: str) -> bool:
        """Whether the tools have a value for ``item`` under ``qualifier`` (a typo has none)."""
        return (item, qualifier) in self.current

    def lookup(self, item: str, qualifier: str, *, archived: bool = False) -> str:
        if item in self.down:
            raise ServiceDown(f"{self.family.tool} service unavailable (503) for {item}")
        if item in self.flaky and item not in self._failed_once:
            self._failed_once.add(item)
            raise ServiceDown(f"{self.family.tool} timed out for {item}; the request can be retried")
        if not self.knows(item, qualifier):
            raise UnknownArgument(f"{self.family.item_arg} {item!r} not found for {self.family.qualifier_arg} "
                                  f"{qualifier!r}")
        return self.result_text(item, qualifier, archived=archived)

    def tools(self) -> dict[str, Callable[..., str]]:
        """The world's two tools by name: current values and the stale archive."""
        f = self.family
        return {
            f.tool: _tool(f.tool, f.doc, f, lambda item, q: self.lookup(item, q)),
            f.archive_tool: _tool(f.archive_tool, f.archive_doc, f, lambda item, q: self.lookup(item, q, archived=True)),
        }


def _tool(name: str, what: str, family: Family, impl: Callable[[str, str], str]) -> Callable[..., str]:
    """A function ``name(<item_arg>: str, <qualifier_arg>: str) -> str`` with a Google-style docstring."""
    params = [inspect.Parameter(a, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str)
              for a in (family.item_arg, family.qualifier_arg)]
    signature = inspect.Signature(params, return_annotation=str)

    def tool(*args, **kwargs) -> str:
        bound = signature.bind(*args, **kwargs)
        return impl(bound.arguments[family.item_arg], bound.arguments[family.qualifier_arg])

    tool.__name__ = tool.__qualname__ = name
    tool.__doc__ = (f"Returns {what}.\n\nArgs:\n    {family.item_arg}: the {family.item_arg} to look up.\n"
                    f"    {family.qualifier_arg}: the {family.qualifier_arg}.\n")
    tool.__signature__ = signature
    tool.__annotations__ = {family.item_arg: str, family.qualifier_arg: str, "return": str}
    return tool
