"""Whether a step that picks one of the task's candidates picks the one its inputs support.

A task that asks for an extreme ("which is the warmest", "the cheapest") names its candidates; steps report
values for them ("Porto: 6 degrees; Seville: 25 degrees"). A step that then names exactly one candidate, and
reports no values itself and calls no tool (a handoff, or a call that only carries its words such as a
``final_answer`` tool, aside), has *picked* it. The pick contradicts its inputs when another candidate's latest
reported value is more extreme in the direction the task asks for, and agrees with them when it is the
extreme. Directions come from a fixed list of English superlatives; a task without one asks for no pick.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agenttrace.attribution.flow import action_text, arrivals, is_handoff, is_human, mentions, result_text, speaks
from agenttrace.models import Trajectory

HIGHEST = ("most", "highest", "largest", "biggest", "greatest", "maximum", "warmest", "hottest", "dearest",
           "priciest", "busiest", "longest", "tallest", "heaviest", "oldest", "fastest", "latest", "best-selling")
LOWEST = ("least", "lowest", "smallest", "minimum", "cheapest", "coldest", "coolest", "shortest", "fewest",
          "lightest", "youngest", "slowest", "earliest", "quietest")
_PAIR = re.compile(r"([A-Za-z][\w' -]{0,40}?)\s*[:=]\s*(-?\d[\d,]*(?:\.\d+)?)(?![\w/-]|\.\d)")
_SEPARATOR = re.compile(r"[:=]\s*-?\d")  # what every pair has; a quick look for it spares the slow search for pairs


def superlative(task: str) -> tuple[str, int] | None:
    """The superlative the task asks by (the first of HIGHEST or LOWEST it uses) and its direction: +1 for the
    highest, -1 for the lowest; None for neither (or both)."""
    words = set(re.findall(r"[a-z-]+", task.lower()))
    high = next((w for w in HIGHEST if w in words), None)
    low = next((w for w in LOWEST if w in words), None)
    if (high is None) == (low is None):
        return None
    return (high, 1) if high else (low, -1)


def direction(task: str) -> int:
    """+1 when the task asks for the highest, -1 for the lowest, 0 for neither (or both)."""
    asked = superlative(task)
    return asked[1] if asked else 0


def reported(text: str, task_lower: str) -> dict[str, float]:
    """``candidate: value`` pairs in ``text`` whose candidate the task names (lower-cased candidate -> value)."""
    out: dict[str, float] = {}
    if _SEPARATOR.search(text) is None:
        return out
    for m in _PAIR.finditer(text):
        name = " ".join(m.group(1).split()).lower()
        if len(name) >= 3 and mentions(task_lower, name):
            out[name] = float(m.group(2).replace(",", ""))
    return out


def _as_in(task: str, candidate: str) -> str:
    """The candidate as the task writes it (the pairs are read lower-cased)."""
    found = re.search(rf"(?<![A-Za-z0-9]){re.escape(candidate)}(?![A-Za-z0-9])", task, re.IGNORECASE)
    return found.group(0) if found else candidate


@dataclass(frozen=True)
class Pick:
    """Step ``pos`` names ``chosen`` as the answer; ``best`` is the candidate its inputs put at the extreme the
    task asks for by ``word`` (``higher``: the highest)."""

    pos: int
    word: str
    higher: bool
    chosen: str
    chosen_value: float
    best: str
    best_value: float

    @property
    def agrees(self) -> bool:
        return self.chosen_value == self.best_value


def picks(trajectory: Trajectory) -> list[Pick]:
    """Every pick of the run (see the module's doc), in step order."""
    task = trajectory.task or ""
    asked = superlative(task)
    if asked is None:
        return []
    word, sign = asked
    task_lower = task.lower()
    values: dict[str, float] = {}
    out: list[Pick] = []
    steps = trajectory.steps
    arrive = arrivals(steps)
    for pos, step in enumerate(steps):
        own = action_text(step)
        mine = reported(own, task_lower)
        acts = any(not is_handoff(step, call) and not speaks(step, call) for call in step.tool_calls)
        if not is_human(step) and not acts and not mine and len(values) >= 2:
            low = own.lower()
            named = [c for c in values if mentions(low, c)]
            if len(named) == 1:
                best = max(values, key=lambda c: sign * values[c])
                out.append(Pick(pos, word, sign > 0, _as_in(task, named[0]), values[named[0]], _as_in(task, best),
                                values[best]))
        for j in range(pos + 1):
            if arrive[j] == pos:
                values.update(reported(result_text(steps[j]), task_lower))
        values.update(mine)  # what a step says comes after what its tools returned
    return out
