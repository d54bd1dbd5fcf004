"""Trivial baselines of failure attribution: what an attributor must beat to be worth its verdict.

Each baseline maps a trajectory to a prediction ``(agent, step)`` from its shape alone, reading no more of a
step than whether it shows an error: the most frequent agent of the run, its first agent step, its last step,
the first step that shows an error (a failed tool call or an error word), and, from labelled runs, the most
frequent labelled agent and step. A baseline that names only an
agent is given that agent's first step.

:func:`margins` compares an attributor with the strongest of them, at agent and at step level (exact match),
with a paired bootstrap interval of the margin.

The labelled agent and step come from ``known`` (the runs an attributor was fitted on) when given; the
"oracle" ones come from the scored runs themselves, which no attributor could know: beating them is the
harder test.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agenttrace.attribution.flow import ERROR_WORDS, is_human
from agenttrace.data.scoring import exact_agent_correct, exact_step_correct, paired_bootstrap_interval
from agenttrace.models import LabelledTrajectory, Step, Trajectory

Prediction = tuple[str | None, int | None]
Baseline = Callable[[Trajectory], Prediction]


def actors(traj: Trajectory) -> list[Step]:
    """The steps of agents (a person's turns are not candidates), or every step when there are none."""
    return [s for s in traj.steps if not is_human(s)] or traj.steps


def first_of(traj: Trajectory, agent: str) -> Prediction:
    return agent, next((s.index for s in traj.steps if s.agent == agent), None)


def at(traj: Trajectory, i: int) -> Prediction:
    """The step at position ``i``, or the last one when the run is shorter."""
    if not traj.steps:
        return None, None
    s = traj.steps[min(i, len(traj.steps) - 1)]
    return s.agent, s.index


def shows_error(step: Step) -> bool:
    """Whether a tool call of the step failed or its text has an error word (:data:`ERROR_WORDS`)."""
    return any(c.error for c in step.tool_calls) or any(w in step.render().lower() for w in ERROR_WORDS)


def first_error(traj: Trajectory) -> Prediction:
    step = next((s for s in traj.steps if not is_human(s) and shows_error(s)), None)
    return (step.agent, step.index) if step else at(traj, len(traj.steps) - 1)


def most_frequent_agent(traj: Trajectory) -> Prediction:
    steps = actors(traj)
    return first_of(traj, Counter(s.agent for s in steps).most_common(1)[0][0]) if steps else (None, None)


def first_agent_step(traj: Trajectory) -> Prediction:
    steps = actors(traj)
    return (steps[0].agent, steps[0].index) if steps else (None, None)


def is_oracle(name: str) -> bool:
    """A baseline that knows the labels of the runs it is scored on."""
    return name.endswith("(oracle)")


def _most_frequent_label(items: Sequence[LabelledTrajectory]) -> tuple[str, int] | None:
    labels = [it.label for it in items if it.label]
    if not labels:
        return None
    return (Counter(label.agent for label in labels).most_common(1)[0][0],
            Counter(label.step for label in labels).most_common(1)[0][0])


def trivial_baselines(scored: Sequence[LabelledTrajectory],
                      known: Sequence[LabelledTrajectory] | None = None) -> dict[str, Baseline]:
    """Every trivial baseline for the ``scored`` runs, by name; the labelled ones from ``known`` when given
    ("train") and from ``scored`` itself ("oracle")."""
    sources = {"train": _most_frequent_label(known or []), "oracle": _most_frequent_label(scored)}
    sources = {name: label for name, label in sources.items() if label}
    out: dict[str, Baseline] = {}
    for name, (agent, _) in sources.items():
        out[f"constant agent ({name})"] = lambda t, agent=agent: first_of(t, agent)
    out["most frequent agent of run"] = most_frequent_agent
    out["first agent step"] = first_agent_step
    out["last step"] = lambda t: at(t, len(t.steps) - 1)
    for name, (_, step) in sources.items():
        out[f"most frequent step ({name})"] = lambda t, step=step: at(t, step)
    out["first error step"] = first_error
    return out


Hits = tuple[list[bool], list[bool]]  # agent exact, step exact: one per scored run


def hits(predictions: Sequence[Prediction], scored: Sequence[LabelledTrajectory]) -> Hits:
    pairs = [(p, it.label) for p, it in zip(predictions, scored, strict=True)]
    return ([exact_agent_correct(agent, label.agent) for (agent, _), label in pairs],
            [exact_step_correct(step, label.step) for (_, step), label in pairs])


@dataclass(frozen=True)
class Margin:
    """An attributor's accuracy at one level beside the strongest baseline's, on the same runs."""

    level: str  # "agent" or "step"
    ours: float
    baseline: str
    theirs: float
    low: float  # the margin's 95% paired bootstrap interval
    high: float

    @property
    def margin(self) -> float:
        return self.ours - self.theirs

    def beats_by(self, points: float) -> bool:
        return round(self.margin, 9) >= points


def margins(ours: Hits, baseline_hits: dict[str, Hits]) -> list[Margin]:
    """At agent and at step level: the margin of ``ours`` over the baseline with the most hits there."""
    out = []
    for level, name in enumerate(("agent", "step")):
        best = max(baseline_hits, key=lambda b: sum(baseline_hits[b][level]))
        mine, theirs = ours[level], baseline_hits[best][level]
        low, high = paired_bootstrap_interval(mine, theirs)
        out.append(Margin(name, sum(mine) / len(mine), best, sum(theirs) / len(theirs), low, high))
    return out


@dataclass(frozen=True)
class Comparison:
    """An attributor beside every trivial baseline on the same labelled runs (exact match)."""

    n: int
    ours: tuple[float, float]  # agent, step accuracy
    baselines: dict[str, tuple[float, float]]
    margins: list[Margin]

    def as_dict(self) -> dict:
        return {"n": self.n, "agent_acc_exact": self.ours[0], "step_acc_exact": self.ours[1],
                "baselines": {name: {"agent_acc_exact": a, "step_acc_exact": s} for name, (a, s) in self.baselines.items()},
                "margins": [{"level": m.level, "baseline": m.baseline, "margin": m.margin, "low": m.low, "high": m.high}
                            for m in self.margins]}


def compare(predictions: Sequence[Prediction], scored: Sequence[LabelledTrajectory],
            known: Sequence[LabelledTrajectory] | None = None) -> Comparison:
    """``predictions[i]`` is the attributor's verdict on ``scored[i]``; every baseline is run on the same runs."""
    ours = hits(predictions, scored)
    theirs = {name: hits([fn(it.trajectory) for it in scored], scored)
              for name, fn in trivial_baselines(scored, known).items()}
    return Comparison(len(scored), _rates(ours), {name: _rates(h) for name, h in theirs.items()},
                      margins(ours, theirs))


def _rates(h: Hits) -> tuple[float, float]:
    return sum(h[0]) / len(h[0]), sum(h[1]) / len(h[1])
