"""Scoring a predicted attribution against a label.

Two accuracy rules, kept apart and named for what they are:

* :func:`whowhen_agent_correct` / :func:`whowhen_step_correct` - the rule of Who&When's own
  ``evaluate.py``: the agent is right iff the true agent name is a *substring* of the predicted agent
  string, the step is right iff ``str(true_step)`` is a *substring* of ``str(predicted_step)``. This is
  lenient: a true step 1 matches a predicted 12 (and 10, 21, ...). Numbers comparable with the paper's.
* :func:`exact_agent_correct` / :func:`exact_step_correct` - plain equality (agent names compared after
  stripping surrounding whitespace).

And, for verdicts that carry a probability, calibration: the expected calibration error of that probability
against an exact step hit (:func:`expected_calibration_error`), and the exact step accuracy of the verdicts
flagged ``uncertain`` apart from the others.

And, to compare two predictors on the same runs, the paired bootstrap interval of the difference of their
accuracies (:func:`paired_bootstrap_interval`): how far a margin could move if other runs of the same kind
had been drawn.

Plus AgenTracer's multi-granular reward (arXiv 2509.03312):
``r = lambda * [agent correct] + (1 - lambda) * exp(-(t_hat - t*)^2 / (2 sigma^2))`` with sigma = 1 and
lambda = 0.5, and 0 when the prediction is missing or malformed. The agent term uses exact match.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from agenttrace.models import Attribution, Label

SIGMA = 1.0
LAMBDA = 0.5


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def whowhen_agent_correct(predicted: Any, true: str) -> bool:
    """Who&When rule: the true agent name is contained in the predicted agent string."""
    if predicted is None:
        return False
    return str(true) in str(predicted)


def whowhen_step_correct(predicted: Any, true: int) -> bool:
    """Who&When rule: ``str(true)`` is contained in ``str(predicted)`` (so true 1 matches predicted 12)."""
    if predicted is None:
        return False
    return str(true) in str(predicted)


def exact_agent_correct(predicted: Any, true: str) -> bool:
    if not isinstance(predicted, str):
        return False
    return predicted.strip() == true.strip()


def exact_step_correct(predicted: Any, true: int) -> bool:
    step = _as_int(predicted)
    return step is not None and step == true


def multigranular_reward(
    predicted_agent: Any, predicted_step: Any, label: Label, *, lam: float = LAMBDA, sigma: float = SIGMA
) -> float:
    """AgenTracer's reward: ``lam * agent + (1 - lam) * exp(-(t_hat - t*)^2 / (2 sigma^2))``; 0 if malformed.

    A prediction is malformed when its agent is not a non-empty string or its step is not an integer
    (or the string of one); then the reward is 0.0 whatever part of it was right.
    """
    step = _as_int(predicted_step)
    if not isinstance(predicted_agent, str) or not predicted_agent.strip() or step is None:
        return 0.0
    agent_term = 1.0 if exact_agent_correct(predicted_agent, label.agent) else 0.0
    step_term = math.exp(-((step - label.step) ** 2) / (2.0 * sigma**2))
    return lam * agent_term + (1.0 - lam) * step_term


def expected_calibration_error(confidence: list[float], hit: list[bool], bins: int = 10) -> float:
    """How far stated probabilities are from how often they come true: the verdicts are put in ``bins`` equal
    bins of probability, and each bin's gap between its mean probability and its share of hits is weighed by
    its share of the verdicts."""
    if not confidence:
        raise ValueError("no probabilities to calibrate")
    counts = [0] * bins
    stated = [0.0] * bins
    true = [0] * bins
    for c, h in zip(confidence, hit, strict=True):
        b = min(int(c * bins), bins - 1)
        counts[b] += 1
        stated[b] += c
        true[b] += bool(h)
    return sum(abs(stated[b] - true[b]) for b in range(bins) if counts[b]) / len(confidence)


def paired_bootstrap_interval(ours: Iterable[bool], theirs: Iterable[bool], *, level: float = 0.95,
                              resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """The ``level`` interval of ``accuracy(ours) - accuracy(theirs)``: the runs are drawn again with
    replacement ``resamples`` times, the same runs for both (``ours[i]`` and ``theirs[i]`` are hits on run
    ``i``), and the difference is taken on each draw."""
    a = np.asarray(list(ours), dtype=float)
    b = np.asarray(list(theirs), dtype=float)
    if a.shape != b.shape or not a.size:
        raise ValueError("both predictors need a hit for each of the same runs")
    draws = np.random.default_rng(seed).integers(0, a.size, size=(resamples, a.size))
    diffs = a[draws].mean(axis=1) - b[draws].mean(axis=1)
    low, high = np.percentile(diffs, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


@dataclass
class Score:
    """One prediction scored every way, with the probability and ``uncertain`` flag it came with, if any."""

    agent_whowhen: bool
    step_whowhen: bool
    agent_exact: bool
    step_exact: bool
    reward: float
    confidence: float | None = None
    uncertain: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "agent_whowhen": self.agent_whowhen,
            "step_whowhen": self.step_whowhen,
            "agent_exact": self.agent_exact,
            "step_exact": self.step_exact,
            "reward": self.reward,
        }


def score(predicted_agent: Any, predicted_step: Any, label: Label, *, confidence: float | None = None,
          uncertain: bool | None = None) -> Score:
    return Score(
        agent_whowhen=whowhen_agent_correct(predicted_agent, label.agent),
        step_whowhen=whowhen_step_correct(predicted_step, label.step),
        agent_exact=exact_agent_correct(predicted_agent, label.agent),
        step_exact=exact_step_correct(predicted_step, label.step),
        reward=multigranular_reward(predicted_agent, predicted_step, label),
        confidence=confidence,
        uncertain=uncertain,
    )


def score_attribution(attribution: Attribution, label: Label) -> Score:
    return score(attribution.agent, attribution.step, label, confidence=attribution.confidence,
                 uncertain=attribution.uncertain)


@dataclass
class SubsetScore:
    n: int = 0
    agent_whowhen: int = 0
    step_whowhen: int = 0
    agent_exact: int = 0
    step_exact: int = 0
    reward_sum: float = 0.0
    confidences: list[float] = field(default_factory=list)  # of the verdicts that stated one
    stated_hits: list[bool] = field(default_factory=list)  # their exact step hits, in the same order
    flagged: int = 0  # verdicts that said whether they were uncertain
    uncertain: int = 0
    uncertain_step_exact: int = 0
    confident_step_exact: int = 0

    def add(self, s: Score) -> None:
        self.n += 1
        self.agent_whowhen += s.agent_whowhen
        self.step_whowhen += s.step_whowhen
        self.agent_exact += s.agent_exact
        self.step_exact += s.step_exact
        self.reward_sum += s.reward
        if s.confidence is not None:
            self.confidences.append(s.confidence)
            self.stated_hits.append(s.step_exact)
        if s.uncertain is not None:
            self.flagged += 1
            self.uncertain += s.uncertain
            self.uncertain_step_exact += s.uncertain and s.step_exact
            self.confident_step_exact += not s.uncertain and s.step_exact

    def merge(self, other: SubsetScore) -> None:
        """Adds ``other``'s counts and lists to these."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def _rate(self, k: int) -> float:
        return k / self.n if self.n else 0.0

    def summary(self) -> dict[str, Any]:
        """Rates over the subset; ``ece`` is None when no verdict stated a probability, the ``uncertain`` figures
        None when none said whether it was uncertain."""
        sure = self.flagged - self.uncertain
        return {
            "n": self.n,
            "agent_acc_whowhen": self._rate(self.agent_whowhen),
            "step_acc_whowhen": self._rate(self.step_whowhen),
            "agent_acc_exact": self._rate(self.agent_exact),
            "step_acc_exact": self._rate(self.step_exact),
            "mean_reward": self.reward_sum / self.n if self.n else 0.0,
            "ece": expected_calibration_error(self.confidences, self.stated_hits) if self.confidences else None,
            "confident": sure if self.flagged else None,
            "uncertain": self.uncertain if self.flagged else None,
            "step_acc_exact_uncertain": self.uncertain_step_exact / self.uncertain if self.uncertain else None,
            "step_acc_exact_confident": self.confident_step_exact / sure if sure else None,
        }


@dataclass
class Scoreboard:
    """Accuracies (Who&When substring rule and exact match) and mean reward, per subset and overall."""

    subsets: dict[str, SubsetScore] = field(default_factory=dict)

    def add(self, subset: str, s: Score) -> None:
        self.subsets.setdefault(subset, SubsetScore()).add(s)

    def add_prediction(self, subset: str, predicted_agent: Any, predicted_step: Any, label: Label) -> Score:
        s = score(predicted_agent, predicted_step, label)
        self.add(subset, s)
        return s

    def overall(self) -> SubsetScore:
        total = SubsetScore()
        for sub in self.subsets.values():
            total.merge(sub)
        return total

    def summary(self) -> dict[str, dict[str, float | int]]:
        out = {name: sub.summary() for name, sub in sorted(self.subsets.items())}
        out["all"] = self.overall().summary()
        return out

    @classmethod
    def from_scores(cls, rows: Iterable[tuple[str, Score]]) -> Scoreboard:
        board = cls()
        for subset, s in rows:
            board.add(subset, s)
        return board
