"""The ``cascade`` attributor: a cheap attributor first, an expensive one only for the runs it is unsure of.

For example ``cpu`` then ``openai`` (or ``tracer``): the cpu attributor answers in milliseconds; a run whose
verdict is undecided, flagged ``uncertain``, or below ``threshold`` confidence goes to the second attributor.
The verdict names the attributor that decided and keeps the other's opinion; when the expensive one cannot
decide, the cheap verdict stands, with the expensive one's opinion beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agenttrace.attribution.base import Attributor, get_attributor
from agenttrace.models import Attribution, Opinion, Trajectory


def opinion(verdict: Attribution) -> Opinion:
    return Opinion(attributor=verdict.attributor, agent=verdict.agent, step=verdict.step,
                   confidence=verdict.confidence, uncertain=verdict.uncertain, reason=verdict.reason)


class CascadeAttributor(Attributor):
    name = "cascade"

    def __init__(self, first: str = "cpu", then: str = "openai", threshold: float = 0.5,
                 first_options: dict[str, Any] | None = None, then_options: dict[str, Any] | None = None) -> None:
        self.first = get_attributor(first, **(first_options or {}))
        self.then = get_attributor(then, **(then_options or {}))
        self.threshold = threshold

    def unsure(self, verdict: Attribution) -> bool:
        return (not verdict.is_decided or verdict.uncertain or verdict.confidence is None
                or verdict.confidence < self.threshold)

    def attribute(self, trajectory: Trajectory) -> Attribution:
        return self.attribute_batch([trajectory])[0]

    def attribute_batch(self, trajectories: Sequence[Trajectory]) -> list[Attribution]:
        verdicts = self.first.attribute_batch(trajectories)
        unsure = [i for i, v in enumerate(verdicts) if self.unsure(v)]
        if not unsure:
            return verdicts
        second = self.then.attribute_batch([trajectories[i] for i in unsure])
        for i, costly in zip(unsure, second):
            cheap = verdicts[i]
            if costly.is_decided:
                verdicts[i] = costly.model_copy(update={"opinions": [*costly.opinions, opinion(cheap)]})
            else:
                verdicts[i] = cheap.model_copy(update={"opinions": [*cheap.opinions, opinion(costly)]})
        return verdicts
