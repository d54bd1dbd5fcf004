"""Fitting the ``cpu`` attributor (:mod:`agenttrace.attribution.cpu`) on labelled trajectories; numpy only.

The model is a conditional logit over the steps of a trajectory: loss = -log p(labelled step) - 0.5 * log
p(labelled agent), L2-regularised, fitted with Adam (vectorised over all steps of all trajectories). Groups
are a data source's parts (``suite/langgraph`` is the suite's LangGraph runs; a dev source or a team's
reviewed runs is one group): either every group or every source (its groups sharing its weight) weighs the
same, the synthetic group ``SYNTHETIC`` at a chosen weight (0 allowed). Each trajectory is seen twice: with
the ground truth and without.

Every choice is made by leave-one-group-out over the groups it is given (:func:`select`): each group is
scored, without the ground truth, by models fitted on the others; of the configurations of feature set (all
or COMPACT), L2, synthetic weight and balance (GRID), the half whose cross-fitted scores give the labelled
steps the highest likelihood (averaged so that every source counts the same, at the best temperature) are
fitted and their weights averaged; the verdict rule (RULES: the plain one unless another has a better mean
(agent + step exact) / 2 by more than a standard error, is better on most groups and worse on none) and the temperature
(the one whose verdicts' probabilities best forecast a hit) are read off the same cross-fitted scores, the rule
pooled, the temperature pooled and per log kind (a kind the held-out verdicts of two groups or more show). No
uncertainty cut is fitted: on a
calibrated probability the cut that best separates right from wrong verdicts is one half, where a fitted cut
follows the share of right verdicts in the training groups (near 0 when they are mostly right) and flags
nothing on a system they never showed. :func:`train` makes the choices and fits the final model on every group.
Used by ``agenttrace train --attributor cpu``, bench/train_cpu_attributor.py and bench/generalisation.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agenttrace.attribution.cpu import (
    FEATURES, LOG_KINDS, StepModel, decide, extract_features, log_kind, nameable,
)
from agenttrace.attribution.trace_back import causes, environment_end, root
from agenttrace.data.datasets import load_any
from agenttrace.models import ENVIRONMENT, LabelledTrajectory, Trajectory


def load_dev(data: Path) -> dict[str, list[LabelledTrajectory]]:
    """The dev sources under ``data``, by subset name."""
    sources: dict[str, list[LabelledTrajectory]] = {}
    for sub in ("whowhen/Hand-Crafted", "whowhen/Algorithm-Generated"):
        if (data / sub).is_dir():
            items = load_any(data / sub)
            sources[items[0].subset if items else sub] = items
    for f in sorted((data / "tracertraj").glob("*.jsonl")):
        items = load_any(f)
        sources[items[0].subset if items else f.stem] = items
    return sources


def usable(items: list[LabelledTrajectory]) -> list[LabelledTrajectory]:
    """Items whose label names a step and agent of their trajectory: the ones the model is fitted on.

    A label that blames the environment (a service was down) is not fitted on: the environment verdict is a rule
    (``trace_back.environment_end``), and fitting the step model on those runs taught it that a failed call is
    decisive, which cost 3 to 7 points of agent accuracy on each dev source held out (the leave-one-source-out
    splits of bench/generalisation.py).
    """
    return [it for it in scorable(items) if it.label.agent != ENVIRONMENT]


def scorable(items: list[LabelledTrajectory]) -> list[LabelledTrajectory]:
    """Items whose label names a step of their trajectory and its agent, or the environment (:data:`ENVIRONMENT`):
    the ones a verdict is scored on."""
    return [it for it in items if it.label is not None and (at := it.trajectory.position(it.label.step)) is not None
            and it.label.agent in (it.trajectory.steps[at].agent, ENVIRONMENT)]



SYNTHETIC = "synthetic_pipeline"
# a log kind gets its own temperature when the held-out verdicts of at least two groups and this many runs of that
# kind show how often its verdicts are right
MIN_CALIBRATION_RUNS = 20
# A smaller set of the strongest generic signals; inner cross-validation chooses between it and all features.
COMPACT = (
    "is_request", "first_action", "rel_pos", "is_last", "agent_first_turn", "agent_share", "agent_opens", "agent_closes",
    "agent_problem_share", "agent_to_answer", "introduced_to_answer", "underived", "first_underived",
    "returned_to_answer", "arg_ungrounded", "arg_unseen", "first_repeat",
    "num_conflict", "task_drop", "assume_here", "problem_here", "fails_on_own_argument", "problem_next",
    "problem_next_other", "first_problem",
    "before_first_problem", "ignores_failure", "repaired", "last_unrepaired", "error_words", "error_words_next",
    "first_anomaly", "has_expected", "expected_seen_before",
    "offtask_origin", "offtask_given", "offtask_ungiven", "constraint_lost", "pick_contradicts", "pick_agrees",
    "leaves_out_items", "calls_off_request", "hands_to_off_request",
)
FEATURE_SETS = {"all": FEATURES, "compact": COMPACT}
# balance: "groups" weighs every group the same in the fit; "sources" every data source (its groups share it)
GRID = [{"features": fs, "l2": l2, "synthetic": w, "balance": b}
        for fs in FEATURE_SETS for l2 in (0.3, 1.0) for w in (0.0, 0.3) for b in ("groups", "sources")]
# how a verdict is read off the distribution (cpu.decide): agent by probability mass or by the top step, and
# the ratio within which an earlier step of that agent is preferred to its most likely one
RULES = [(by_mass, earliest) for by_mass in (True, False) for earliest in (1.0, 0.8, 0.6, 0.4)]
PLAIN_RULE = (False, 1.0)  # the agent and step of the most likely step


# id(trajectory) -> the trajectory (held, so that its id is not reused while cached), its features per view, the
# steps a verdict may name, the step each step's fault is followed to (trace_back.root) and the failed call the
# run ends at (trace_back.environment_end), if any
_FEATURE_CACHE: dict[int, tuple[Trajectory, dict[bool, np.ndarray], np.ndarray, list[int], int | None]] = {}


class Featurised:
    """Each usable item's features per view (with and without the ground truth), each computed once per process."""

    def __init__(self, items: list[LabelledTrajectory]):
        self.items = usable(items)
        for it in self.items:
            if id(it.trajectory) not in _FEATURE_CACHE:
                views = {g: extract_features(it.trajectory, use_expected=g) for g in (True, False)}
                flows = views[False][1]
                cause = causes(it.trajectory.steps, flows)
                _FEATURE_CACHE[id(it.trajectory)] = (it.trajectory, {g: v[0] for g, v in views.items()},
                                                     nameable(flows), [root(j, cause) for j in range(len(cause))],
                                                     environment_end(flows, cause))
        self.views = {g: [_FEATURE_CACHE[id(it.trajectory)][1][g] for it in self.items] for g in (True, False)}
        self.nameable = [_FEATURE_CACHE[id(it.trajectory)][2] for it in self.items]
        self.roots = [_FEATURE_CACHE[id(it.trajectory)][3] for it in self.items]
        self.ends = [_FEATURE_CACHE[id(it.trajectory)][4] for it in self.items]
        self.kinds = [log_kind(it.trajectory) for it in self.items]


class Rows:
    """Featurised trajectories, stacked: all steps in one matrix, with each trajectory's segment."""

    def __init__(self, groups: dict[str, Featurised], views: tuple[bool, ...] = (True, False)):
        xs, starts, targets, masks, group, kind, agents, among, roots, ends = [], [], [], [], [], [], [], [], [], []
        offset = 0
        for name, feats in groups.items():
            for k, it in enumerate(feats.items):
                for use_g in views:
                    x = feats.views[use_g][k]
                    xs.append(x)
                    starts.append(offset)
                    targets.append(offset + it.trajectory.position(it.label.step))
                    masks.append([s.agent == it.label.agent for s in it.trajectory.steps])
                    agents += [s.agent for s in it.trajectory.steps]
                    among.append(feats.nameable[k])
                    roots += feats.roots[k]
                    ends += [j == feats.ends[k] for j in range(len(x))]
                    group.append(name)
                    kind.append(feats.kinds[k])
                    offset += len(x)
        self.x = np.concatenate(xs) if xs else np.zeros((0, len(FEATURES)))
        self.starts = np.array(starts, dtype=int)
        self.targets = np.array(targets, dtype=int)
        self.agent_mask = np.concatenate([np.array(m, dtype=float) for m in masks]) if masks else np.zeros(0)
        self.group = group
        self.kind = kind  # each trajectory's log kind
        self.agents = agents
        self.nameable = np.concatenate(among) if among else np.zeros(0, dtype=bool)  # see cpu.nameable
        self.root = np.array(roots, dtype=int)  # the step each step's fault is followed to, in its own trajectory
        self.environment_end = np.array(ends, dtype=bool)  # the failed call its run ends at (trace_back)
        self.seg = np.repeat(np.arange(len(starts)), np.diff(np.append(self.starts, offset)))

    def __len__(self) -> int:
        return len(self.starts)

    def segments(self):
        ends = np.append(self.starts[1:], len(self.x))
        return zip(self.starts, ends, self.targets)


def family(group: str) -> str:
    """The data source a group belongs to: ``suite/langgraph`` is a framework of the source ``suite``."""
    return group.split("/", 1)[0]


def family_shares(groups: list[str]) -> dict[str, float]:
    """Each group's weight when every source counts the same and its groups share the source's weight."""
    members: dict[str, int] = {}
    for g in groups:
        members[family(g)] = members.get(family(g), 0) + 1
    return {g: 1.0 / members[family(g)] for g in groups}


def segment_softmax(s: np.ndarray, rows: Rows) -> np.ndarray:
    """Each trajectory's softmax over the steps a verdict may name (:func:`agenttrace.attribution.cpu.nameable`)."""
    s = np.where(rows.nameable, s, -np.inf)
    s = s - np.maximum.reduceat(s, rows.starts)[rows.seg]
    e = np.exp(s)
    return e / np.add.reduceat(e, rows.starts)[rows.seg]


def fit(rows: Rows, features=FEATURES, l2: float = 0.03, synthetic: float = 0.3, balance: str = "groups",
        iters: int = 150, lr: float = 0.1) -> StepModel:
    """The conditional logit fitted on ``rows`` over ``features`` (the others keep weight 0; None: every column
    of ``rows.x``, whatever its width); every group weighs the same (``balance="groups"``) or every data source
    (``"sources"``: its groups share its weight), the synthetic pipelines ``synthetic`` times as much."""
    width = rows.x.shape[1]
    keep = np.ones(width) if features is None else np.array([f in features for f in FEATURES], dtype=float)
    mean = rows.x.mean(axis=0)
    scale = rows.x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    z = (rows.x - mean) / scale * keep
    size: dict[str, int] = {}
    for g in rows.group:
        size[g] = size.get(g, 0) + 1
    share = family_shares(list(size)) if balance == "sources" else {g: 1.0 for g in size}
    wt = np.array([(synthetic if g == SYNTHETIC else share[g]) / size[g] for g in rows.group])
    wt /= wt.sum()
    w = np.zeros(width)
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    onehot = np.zeros(len(z))
    onehot[rows.targets] = 1.0
    for t in range(1, iters + 1):
        p = segment_softmax(z @ w, rows)
        pa = p * rows.agent_mask
        q = pa / np.maximum(np.add.reduceat(pa, rows.starts)[rows.seg], 1e-12)
        g = (p - onehot) + 0.5 * (p - q)
        grad = z.T @ (g * wt[rows.seg]) + 2 * l2 * w
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        w -= lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8) * keep
    return StepModel(w, mean, scale)


def _best_temperature(scores: np.ndarray, rows: Rows) -> float:
    """The temperature minimising the negative log-likelihood of the labelled steps."""
    best = (math.inf, 1.0)
    for t in np.exp(np.linspace(math.log(0.2), math.log(20.0), 61)):
        p = segment_softmax(scores / t, rows)
        nll = -np.log(np.maximum(p[rows.targets], 1e-12)).mean()
        best = min(best, (nll, float(t)))
    return best[1]


def _calibrated_temperature(scores: np.ndarray, rows: Rows, rule: tuple[bool, float]) -> float:
    """The temperature whose verdicts' probabilities (of the step named, on the distribution traced back and
    then tempered, as the attributor reports them: :func:`agenttrace.attribution.cpu.tempered`) best forecast
    an exact step hit: least Brier score, every source weighing the same. The likelihood of the labelled step
    (:func:`_best_temperature`) calibrates the untraced distribution instead, which is not the probability a
    verdict carries."""
    w = _run_weights(rows.group)
    p = segment_softmax(scores, rows)
    named = _named(p, rows, rule)
    hit = named == rows.targets
    p = traced(p, rows)
    best = (math.inf, 1.0)
    for t in np.exp(np.linspace(math.log(0.05), math.log(20.0), 81)):
        q = p ** (1.0 / t)
        brier = float(w @ (q[named] / np.add.reduceat(q, rows.starts) - hit) ** 2)
        best = min(best, (brier, float(t)))
    return best[1]


def traced(p: np.ndarray, rows: Rows) -> np.ndarray:
    """``p`` with each step's probability moved to the step its fault is followed to
    (:func:`agenttrace.attribution.trace_back.trace`, for every trajectory at once)."""
    return np.bincount(rows.root + rows.starts[rows.seg], weights=p, minlength=len(p))


def _named(p: np.ndarray, rows: Rows, rule: tuple[bool, float]) -> np.ndarray:
    """The row of the step each trajectory's verdict names, decided as the attributor does: the failed call the
    run ends at (``trace_back.environment_end``), or else on ``p`` traced, by
    :func:`agenttrace.attribution.cpu.decide`."""
    p = traced(p, rows)
    return np.array([a + (end[0] if (end := np.flatnonzero(rows.environment_end[a:b])).size
                          else decide(p[a:b], rows.agents[a:b], rule[1], rule[0]))
                     for a, b, _ in rows.segments()], dtype=int)


def verdicts(p: np.ndarray, rows: Rows, rule: tuple[bool, float]) -> list[tuple[bool, bool]]:
    """(agent right, step right) of each trajectory's verdict, decided on ``p`` (:func:`_named`); a verdict on
    the environment names no agent, and the runs fitted on each blame one."""
    return [(bool(rows.agent_mask[k]) and not rows.environment_end[k], bool(k == t))
            for k, t in zip(_named(p, rows, rule), rows.targets)]


@dataclass
class Choice:
    """What inner cross-validation chose, and how the cross-fitted verdicts scored under it."""

    configs: list[dict]  # the grid configurations whose fitted models are averaged
    rule: tuple[bool, float]
    temperature: float
    score: float
    table: list = field(default_factory=list)
    temperatures: dict[str, float] = field(default_factory=dict)  # a log kind's own


def _run_weights(groups: list[str]) -> np.ndarray:
    """Each run's weight when every source weighs the same (see :func:`family_shares`) and a group's runs share
    its weight; they sum to 1, so a weighted sum is the mean of the groups' means."""
    share = family_shares(sorted(set(groups)))
    size = {g: groups.count(g) for g in share}
    w = np.array([share[g] / size[g] for g in groups])
    return w / w.sum()


def _hits(v: list[tuple[bool, bool]]) -> np.ndarray:
    """(agent + step exact) / 2 of each verdict."""
    return np.array([(agent_ok + step_ok) / 2 for agent_ok, step_ok in v])


def _group_nll(scores: np.ndarray, rows: Rows, temperature: float) -> float:
    """Negative log-likelihood of the labelled steps, averaged per group and then over the groups, every source
    weighing the same."""
    p = segment_softmax(scores / temperature, rows)
    return float(_run_weights(rows.group) @ -np.log(np.maximum(p[rows.targets], 1e-12)))


def select(groups: dict[str, Featurised], synthetic: Featurised) -> Choice:
    """Every choice by leave-one-group-out over ``groups`` only: each group is scored (without the ground truth)
    by models fitted on the others. The better half of the grid's configurations by the likelihood their
    cross-fitted scores give the labelled steps (at their best temperature; a proper score, steadier than
    accuracy on a few hundred runs) is kept and averaged; then the verdict rule with the best mean
    (agent + step exact) / 2 and the temperatures are read off the averaged cross-fitted scores, pooled and for
    each kind of log with enough runs of at least two groups."""
    names = list(groups)
    if len(names) < 2:
        raise ValueError("selection needs at least two labelled groups")
    held_rows = {h: Rows({h: groups[h]}, views=(False,)) for h in names}
    held = stack([held_rows[h] for h in names])
    train_rows = {h: Rows({**{k: groups[k] for k in names if k != h}, SYNTHETIC: synthetic}) for h in names}
    fitted: list[tuple[float, int, np.ndarray]] = []
    table = []
    for k, config in enumerate(GRID):
        scores = np.concatenate([fit(train_rows[h], FEATURE_SETS[config["features"]], config["l2"], config["synthetic"],
                                     config["balance"])
                                 .scores(held_rows[h].x) for h in names])
        nll = _group_nll(scores, held, _best_temperature(scores, held))
        table.append((config, round(nll, 4)))
        fitted.append((nll, k, scores))
    # the better half of the grid, averaged: near-tied configurations disagree on held-out data far more than
    # their likelihoods differ, and the average of linear models is a linear model
    kept = sorted(fitted, key=lambda f: (f[0], f[1]))[:max(1, len(fitted) // 2)]
    configs = [GRID[k] for _, k, _ in kept]
    scores = np.mean([s for *_, s in kept], axis=0)
    accuracy, rule = _best_rule(scores, held)
    temperature = _calibrated_temperature(scores, held, rule)
    temperatures = {}
    for kind in LOG_KINDS:
        rows, steps = take(held, [k for k, v in enumerate(held.kind) if v == kind])
        if len(set(rows.group)) >= 2 and len(rows) >= MIN_CALIBRATION_RUNS:
            # its own temperature, and the verdict rule chosen on every group: one chosen on a kind's two or three
            # sources (the earliest near-best step, which suits their short logs) named steps near the start of
            # far longer logs of another source
            temperatures[kind] = float(_calibrated_temperature(scores[steps], rows, rule))
    return Choice(configs, rule, temperature, accuracy, table, temperatures)


def _best_rule(scores: np.ndarray, rows: Rows) -> tuple[float, tuple[bool, float]]:
    """The verdict rule for ``rows`` and its mean (agent + step exact) / 2, every source weighing the same:
    the plain rule (the most likely step) unless the best one beats it by more than a standard error of
    their paired difference, does better on most groups and worse on none (a group: a dev source, or the
    suite's runs of one framework, team shape or kind of error). Rules a run or two apart are a coin flip on a
    few hundred runs; a rule that wins on one group and ties or loses on the others is a trait of that group,
    not of logs (with two log sources, one tied by a single run had let the rule that earlier suits one
    source's convention name steps near the start of far longer logs); and the plain one does not favour
    agents for the number of steps they take."""
    p = segment_softmax(scores, rows)
    w = _run_weights(rows.group)
    hits = {rule: _hits(verdicts(p, rows, rule)) for rule in RULES}
    best = max(RULES, key=lambda rule: (w @ hits[rule], rule == PLAIN_RULE))
    d = hits[best] - hits[PLAIN_RULE]
    gain = float(w @ d)
    groups = np.array(rows.group)
    per_group = [float(w[groups == g] @ d[groups == g]) for g in set(rows.group)]
    broadly = min(per_group) >= 0 and sum(x > 0 for x in per_group) > len(per_group) / 2
    rule = best if gain > math.sqrt(float(np.sum(w ** 2 * (d - gain) ** 2))) and broadly else PLAIN_RULE
    return float(w @ hits[rule]), rule


def train(groups: dict[str, list[LabelledTrajectory]], synthetic: list[LabelledTrajectory]) -> StepModel:
    """The model fitted on ``groups`` + ``synthetic`` with the choices :func:`select` makes on them."""
    feats = {k: Featurised(v) for k, v in groups.items()}
    synth = Featurised(synthetic)
    choice = select(feats, synth)
    rows = Rows({**feats, SYNTHETIC: synth})
    fits = [fit(rows, FEATURE_SETS[c["features"]], c["l2"], c["synthetic"], c["balance"]) for c in choice.configs]
    model = StepModel(np.mean([f.weights for f in fits], axis=0), fits[0].mean, fits[0].scale)  # same rows: same scaling
    model.temperature = choice.temperature
    model.temperatures = dict(choice.temperatures)
    model.by_mass, model.earliest = choice.rule
    model.meta = {"chosen_by": "leave-one-group-out over the training groups", "averaged": choice.configs,
                  "inner_accuracy": round(choice.score, 4), "groups": {k: len(v.items) for k, v in feats.items()}}
    return model


def stack(parts: list[Rows]) -> Rows:
    """The rows of ``parts`` one after the other, as one Rows."""
    out = Rows({})
    offsets = np.cumsum([0] + [len(p.x) for p in parts[:-1]])
    out.x = np.concatenate([p.x for p in parts])
    out.starts = np.concatenate([p.starts + o for p, o in zip(parts, offsets)])
    out.targets = np.concatenate([p.targets + o for p, o in zip(parts, offsets)])
    out.agent_mask = np.concatenate([p.agent_mask for p in parts])
    out.agents = [a for p in parts for a in p.agents]
    out.nameable = np.concatenate([p.nameable for p in parts])
    out.root = np.concatenate([p.root for p in parts])
    out.environment_end = np.concatenate([p.environment_end for p in parts])
    out.group = [g for p in parts for g in p.group]
    out.kind = [k for p in parts for k in p.kind]
    out.seg = np.repeat(np.arange(len(out.starts)), np.diff(np.append(out.starts, len(out.x))))
    return out



def take(rows: Rows, keep: list[int]) -> tuple[Rows, np.ndarray]:
    """The trajectories numbered ``keep`` as Rows of their own, and the positions of their steps in ``rows``."""
    ends = np.append(rows.starts[1:], len(rows.x))
    spans = [np.arange(rows.starts[k], ends[k]) for k in keep]
    steps = np.concatenate(spans) if spans else np.zeros(0, dtype=int)
    lengths = np.array([len(s) for s in spans], dtype=int)
    out = Rows({})
    out.x = rows.x[steps]
    out.starts = np.cumsum(np.append(0, lengths[:-1])) if len(keep) else np.zeros(0, dtype=int)
    out.targets = out.starts + (rows.targets[keep] - rows.starts[keep])
    out.agent_mask = rows.agent_mask[steps]
    out.agents = [rows.agents[i] for i in steps]
    out.nameable = rows.nameable[steps]
    out.root = rows.root[steps]
    out.environment_end = rows.environment_end[steps]
    out.group = [rows.group[k] for k in keep]
    out.kind = [rows.kind[k] for k in keep]
    out.seg = np.repeat(np.arange(len(keep)), lengths)
    return out, steps


# ---------------------------------------------------------------- refitting on a team's own labelled runs

MIN_RUNS = 10  # usable labelled runs a refit needs: leave-one-group-out over FOLDS folds of at least 3 each
FOLDS = 3  # a lone source is dealt into this many folds, so the choices are still cross-validated


class FitError(ValueError):
    """The labelled runs given cannot fit a model (too few, or none usable)."""


def refit(sources: dict[str, list[LabelledTrajectory]]) -> StepModel:
    """The model fitted on ``sources`` (name -> labelled runs), each source a group of the leave-one-group-out
    choices (a lone source is dealt into FOLDS folds); its meta says what it was trained on."""
    sources = {name: usable(items) for name, items in sources.items()}
    sources = {name: items for name, items in sources.items() if items}
    total = sum(len(items) for items in sources.values())
    if total < MIN_RUNS:
        raise FitError(f"{total} usable labelled run(s) (a label naming a step of the run and its agent); "
                       f"a refit needs at least {MIN_RUNS}")
    groups = sources
    if len(sources) == 1:
        [(name, items)] = sources.items()
        groups = {f"{name} fold {k + 1}": items[k::FOLDS] for k in range(FOLDS)}
    model = train(groups, [])
    model.meta["trained_on"] = {name: len(items) for name, items in sources.items()}
    return model
