"""Whether an agent covered the items it was handed before handing back.

A run's *items* are the task's tokens of the kinds its tool calls look up (a route, a city: the kinds of the
values its arguments take, see :func:`agenttrace.attribution.provenance.kind`), and the things the task lists
beside a value its tool calls take ("1 x wall clock, 5 x kettle for region EU" after a call with
product="wall clock": "wall clock" and "kettle"), whatever their case or length. An agent's turn runs from
the message that handed it the work (the latest step of another speaker, naming it: a handoff, a
delegation, "scout, please ..."; or a user's request, whoever answers it) to its last consecutive step. The
turn *leaves out* an item the handing message names (without a value for it: an item reported as "Porto: 6"
is data handed on, not work) when neither the agent's text nor its tool arguments during the turn name it:
it reported back, or stopped, before covering it. A turn that ends in a question (on its last line or the
one before) is not a report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agenttrace.attribution.flow import action_text, argument_values, asks, is_human, mentions, speaks, value_text
from agenttrace.attribution.picks import reported
from agenttrace.attribution.provenance import TOKEN, kind, task_value_tokens
from agenttrace.models import Trajectory


_UNIT = re.compile(r"\d[ \t]*([A-Z]{2,5})\b")  # "302 EUR", "5 USD": a unit code, not a name
_CLAUSE = re.compile(r"[^.;:?!()\n]+")
_LIST_SEPARATOR = re.compile(r",\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+")
_CONNECTOR = re.compile(r"\s+(?:of|for|in|on|at|from|with|by|to|using)\s+", re.IGNORECASE)
_LEAD = re.compile(r"^(?:(?:\d+\s*[x×]|the|a|an)\s+)+", re.IGNORECASE)
_MAX_ITEM_WORDS = 4


@dataclass(frozen=True)
class LeftOut:
    """The turn ending at step ``pos`` leaves out ``items``, which step ``handed_by`` named."""

    pos: int
    handed_by: int
    items: tuple[str, ...]


def _lists(clause: str) -> list[list[str]]:
    """The lists in ``clause``, each as its elements (lower-cased): elements are split by commas and "and"/"or";
    an element with a joining word ("of", "for", ...) ends the list before it with what precedes the word and
    starts the next with what follows it ("the price of 1 x wall clock, 5 x kettle for region EU" holds the list
    "wall clock", "kettle"); a leading count or article is not part of an element."""
    lists: list[list[str]] = [[]]
    for part in _LIST_SEPARATOR.split(clause):
        pieces = [_LEAD.sub("", p.strip()).lower() for p in _CONNECTOR.split(part.strip())]
        lists[-1].append(pieces[0])
        lists += [[p] for p in pieces[1:]]
    return [[e for e in lst if e] for lst in lists]


def _listed(task: str, values: set[str]) -> set[str]:
    """The elements of each list of the task in which one element is one of ``values`` (lower-cased)."""
    out: set[str] = set()
    for clause in _CLAUSE.findall(task):
        for elements in _lists(clause):
            if len(elements) >= 2 and values & set(elements):
                out |= {e for e in elements if len(e.split()) <= _MAX_ITEM_WORDS and not e.replace(".", "").isdigit()}
    return out


def items(trajectory: Trajectory) -> set[str]:
    """The task's tokens (lower-cased) of the kinds the run's tool arguments take (not those of a call that
    only carries its step's words: a delegation, a final answer) and what the task lists beside an argument's
    value, less those in most tool results (a shared qualifier: what every lookup says, not what one looks up)
    and unit codes (what a tool result puts right after a number: "302 EUR")."""
    values = [v for s in trajectory.steps for c in s.tool_calls if not speaks(s, c)
              for _, v in argument_values(c.arguments)]
    kinds = {kind(t) for v in values for t in TOKEN.findall(v)}
    kinds.discard("word")  # lower-case words are too common to stand for an item by their kind alone
    texts = [value_text(c.result) for s in trajectory.steps for c in s.tool_calls if c.result]
    units = {m.group(1).lower() for text in texts for m in _UNIT.finditer(text)}
    task = trajectory.task or ""
    listed = _listed(task, {v.strip().lower() for v in values if len(v.strip()) >= 3})
    found = ({t.lower() for t in task_value_tokens(task) if kind(t) in kinds} | listed) - units
    if len(texts) < 2:
        return found
    return {i for i in found if sum(mentions(text, i) for text in texts) * 2 <= len(texts)}


def left_out(trajectory: Trajectory) -> list[LeftOut]:
    """Every agent turn that leaves out an item its handing message names. A user's message hands work to
    whoever answers it, by name or not; what the user asked for stays asked until the agent's first turn that
    reports back, so only that turn leaves it out."""
    steps = trajectory.steps
    task = (trajectory.task or "").lower()
    wanted = items(trajectory)
    if not wanted:
        return []
    out = []
    start = 0
    request: int | None = None  # the user's first message naming an item that no report has answered yet
    for pos, step in enumerate(steps):
        if is_human(step):
            if request is None and any(mentions(step.content, i) for i in wanted):
                request = pos
            continue
        if pos > 0 and steps[pos - 1].agent != step.agent:
            start = pos
        ends = pos + 1 == len(steps) or steps[pos + 1].agent != step.agent
        if not ends or start == 0 or asks(step.content):  # a question before going on is not a report
            continue
        if is_human(steps[start - 1]) and request is not None:
            handed_by, request = request, None
        elif mentions(action_text(steps[start - 1]), step.agent):
            handed_by = start - 1
        else:  # a report coming back, not work handed to it
            continue
        handing = action_text(steps[handed_by])
        handed = {i for i in wanted if mentions(handing, i)} - set(reported(handing, task))
        turn = [action_text(steps[j]) for j in range(handed_by + 1, pos + 1) if steps[j].agent == step.agent]
        missing = tuple(sorted(i for i in handed if not any(mentions(text, i) for text in turn)))
        if missing:
            out.append(LeftOut(pos, handed_by, missing))
    return out
