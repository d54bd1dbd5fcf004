"""Whether an agent covered the items it was handed before handing back.

A run's *items* are the task's tokens of the kinds its tool calls look up (a route, a city, a team: the
kinds of the values its arguments take, see :func:`agenttrace.attribution.provenance.kind`). An agent's
turn runs from the message that handed it the work (the latest step of another speaker, naming it: a
handoff, a delegation, "scout, please ...") to its last consecutive step. The turn *leaves out* an item the handing message names (without a value for it: an item
reported as "Porto: 6" is data handed on, not work) when neither the agent's text nor its tool arguments
during the turn name it: it reported back, or stopped, before covering it. A turn that ends in a question
(on its last line or the one before) is not a report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agenttrace.attribution.flow import action_text, argument_values, is_human, speaks, value_text
from agenttrace.attribution.picks import reported
from agenttrace.attribution.provenance import TOKEN, kind, lower_tokens, task_value_tokens
from agenttrace.models import Trajectory


_UNIT = re.compile(r"\d[ \t]*([A-Z]{2,5})\b")  # "302 EUR", "5 USD": a unit code, not a name


@dataclass(frozen=True)
class LeftOut:
    """The turn ending at step ``pos`` leaves out ``items``, which step ``handed_by`` named."""

    pos: int
    handed_by: int
    items: tuple[str, ...]


def items(trajectory: Trajectory) -> set[str]:
    """The task's tokens (lower-cased) of the kinds the run's tool arguments take (not those of a call that
    only carries its step's words: a delegation, a final answer), less those in most tool
    results (a shared qualifier: what every lookup says, not what one looks up) and unit codes (what a tool
    result puts right after a number: "302 EUR")."""
    kinds = {kind(t) for s in trajectory.steps for c in s.tool_calls if not speaks(s, c)
             for _, v in argument_values(c.arguments) for t in TOKEN.findall(v)}
    kinds.discard("word")  # lower-case words are too common to stand for an item
    texts = [value_text(c.result) for s in trajectory.steps for c in s.tool_calls if c.result]
    results = [lower_tokens(text) for text in texts]
    common = {t for t in set().union(*results) if sum(t in r for r in results) * 2 > len(results)} \
        if len(results) >= 2 else set()
    units = {m.group(1).lower() for text in texts for m in _UNIT.finditer(text)}
    return {t.lower() for t in task_value_tokens(trajectory.task or "") if kind(t) in kinds} - common - units


def _asks(text: str) -> bool:
    """It ends in a question, on its last line or the one before (then followed by a line such as who is to
    answer)."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return any(line.endswith("?") for line in lines[-2:])


def left_out(trajectory: Trajectory) -> list[LeftOut]:
    """Every agent turn that leaves out an item its handing message names."""
    steps = trajectory.steps
    task = (trajectory.task or "").lower()
    wanted = items(trajectory)
    if not wanted:
        return []
    out = []
    start = 0
    for pos, step in enumerate(steps):
        if pos > 0 and steps[pos - 1].agent != step.agent:
            start = pos
        ends = pos + 1 == len(steps) or steps[pos + 1].agent != step.agent
        if not ends or start == 0 or is_human(step):
            continue
        handing = action_text(steps[start - 1])
        if step.agent.lower() not in handing.lower():  # a report coming back, not work handed to it
            continue
        if _asks(step.content):  # it asks before going on: not a report
            continue
        handed = (lower_tokens(handing) & wanted) - set(reported(handing, task))
        done = set().union(*(lower_tokens(action_text(steps[j])) for j in range(start, pos + 1)))
        missing = tuple(sorted(handed - done))
        if missing:
            out.append(LeftOut(pos, start - 1, missing))
    return out
