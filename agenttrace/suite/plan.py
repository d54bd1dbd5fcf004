"""What a scripted run is made of: agents, their turns (one model reply each), and the task they serve."""

from __future__ import annotations

from dataclasses import dataclass, field

from agenttrace.suite.worlds import Family, World


@dataclass(frozen=True)
class ToolUse:
    name: str
    arguments: dict[str, str]


@dataclass(frozen=True)
class Turn:
    """One model reply of one agent: text, then either tool calls, a handoff, or nothing (the run's answer)."""

    agent: str
    text: str
    calls: tuple[ToolUse, ...] = ()
    handoff: str | None = None

    @property
    def is_final(self) -> bool:
        return not self.calls and self.handoff is None


@dataclass(frozen=True)
class AgentSpec:
    name: str
    instructions: str          # starts with "Your name is <name>.": the scripted model routes on it
    tools: tuple[str, ...]     # names of world tools; every agent may hand off to every other


@dataclass(frozen=True)
class Task:
    family: Family
    items: tuple[str, ...]
    qualifier: str
    combine: str                      # "sum" or "max"
    quantities: dict[str, int] = field(default_factory=dict)   # sum of catalogue items: units per item
    text: str = ""

    def answer(self, values: dict[str, int], quantities: dict[str, int] | None = None) -> str:
        """The answer from the values known: a total, or the item with the highest value."""
        units = self.quantities if quantities is None else quantities
        if self.combine == "sum":
            return str(sum(units.get(item, 1) * value for item, value in values.items()))
        return max(values, key=values.__getitem__) if values else "unknown"

    def expected(self, world: World) -> str:
        return self.answer({item: world.value(item, self.qualifier) for item in self.items})


@dataclass(frozen=True)
class Script:
    """One run's turns, the environment faults it meets, and (for a faulty run) where the decisive error is."""

    turns: tuple[Turn, ...]
    flaky: frozenset[str]
    down: frozenset[str]
    answer: str
    label_turn: int | None = None
    label_agent: str | None = None
    reason: str | None = None
    repaired: bool = False
    noticed: bool = False              # someone voiced a doubt about the decisive error and went on
