"""How the ``cpu`` attributor does on systems it was never fitted on, beside every trivial baseline.

    .venv/bin/python bench/generalisation.py [--data /work/shared/data] [--suite build/suite] [--out bench/generalisation.md]

Splits (the model is refitted on the training side of each; every choice - feature set, L2, synthetic
weight, whether every group or every source weighs the same, how the verdict is read off the distribution,
temperature, and the temperature and verdict rule of each kind of log (a run rebuilt from
its spans, or a log read from a file) - is made by an inner leave-one-group-out over the training
side's groups only, never by looking at the held-out side; the choices are listed under the table):
* leave-one-source-out on the dev data (Who&When Hand-Crafted, Algorithm-Generated, TracerTraj code-dev);
* leave-one-framework-out, leave-one-topology-out and leave-one-error-kind-out on the labelled suite
  (build/suite), when present: the last asks how it does on a kind of error it never saw planted.
Suite items are in the training side of the dev splits and the dev data in the training side of the suite
splits. Baselines (``agenttrace.data.baselines``): constant agent (the most frequent labelled agent of the
training side, and the oracle one of the held-out side), the most frequent agent of the run, the first agent
step, the last step, the most frequent labelled step (training side, and oracle), the first step showing an
error. A baseline that names only an agent is given that agent's first step. The suite's runs whose label blames the environment
(a service that was down) are held out and scored like the others: a verdict is right on them when it names the
environment at the failed call, which no baseline does. They are not fitted on (``cpu_fit.usable``).

Columns: exact agent and step accuracy; Who&When's substring rule (dev data only: true step 1 matches a
predicted 12); AgenTracer's reward; expected calibration error of the verdict's probability against an
exact step hit (10 bins); accuracy (step exact) of the confident and of the uncertain verdicts (calibrated
probability below one half), with their counts; median and p99 milliseconds per trajectory (one core). The cpu rows are without the ground truth
answer (the harder case); "cpu+G" is with it. The suite's runs declare their teams (``agenttrace.run(team=...)``);
"cpu, team not declared" is the same model on the same held-out runs with the team taken away.

The goal check under the table asks, for each held-out side, whether the cpu verdict (without the ground truth)
beats every trivial baseline by at least ten points, at agent level and at step level (exact). It names the
strongest baseline of each level and gives the cpu's margin over it with a 95% paired bootstrap interval
(the held-out runs resampled with replacement, the same runs for both predictors), so a margin that a few
runs could flip reads as such. The strongest baseline is picked on the held-out runs themselves, which only
flatters the baselines; the oracle ones, which know the held-out labels, are left out of it (they are in the
table above).

The refit spread under it refits each dev split with the synthetic pipelines drawn with other seeds
(``--spread-seeds``), all else the same: how many runs a change of the training data alone moves a cell by.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from train_cpu_attributor import load_suite, pipelines  # noqa: E402

from agenttrace.attribution.cpu import CpuAttributor  # noqa: E402
from agenttrace.attribution.cpu_fit import load_dev, scorable, train, usable  # noqa: E402
from agenttrace.data.baselines import Hits, Prediction, hits, is_oracle, margins, trivial_baselines  # noqa: E402
from agenttrace.models import LabelledTrajectory  # noqa: E402
from agenttrace.data.scoring import SubsetScore, expected_calibration_error, score  # noqa: E402

GOAL = 0.10  # the margin over every trivial baseline that the goal asks for


def row(name: str, preds: list[Prediction], held: list[LabelledTrajectory], whowhen: bool,
        conf: list[float] | None = None, ms: list[float] | None = None, unsure: list[bool] | None = None) -> str:
    total = SubsetScore()
    for (agent, step), it in zip(preds, held):
        total.add(score(agent, step, it.label))
    s = total.summary()
    ww = f"{s['agent_acc_whowhen']:.3f} / {s['step_acc_whowhen']:.3f}" if whowhen else "-"
    hits = [p == (it.label.agent, it.label.step) for p, it in zip(preds, held)]
    cal = f"{expected_calibration_error(conf, hits):.3f}" if conf else "-"
    split = "-"
    if unsure is not None:
        sure = [h for h, u in zip(hits, unsure) if not u]
        weak = [h for h, u in zip(hits, unsure) if u]
        split = " / ".join(f"{np.mean(x):.2f} ({len(x)})" if x else "- (0)" for x in (sure, weak))
    t = (f"{statistics.median(ms):.1f} / {np.percentile(ms, 99):.1f}") if ms else "-"
    return (f"| {name} | {s['n']} | **{s['agent_acc_exact']:.3f}** | **{s['step_acc_exact']:.3f}** | {ww} | "
            f"{s['mean_reward']:.3f} | {cal} | {split} | {t} |")


def goal_row(held_name: str, cpu: Hits, baseline_hits: dict[str, Hits]) -> str:
    """One row of the goal check: at each level, the strongest baseline, the cpu's margin over it with its
    bootstrap interval, and whether the margin reaches ``GOAL``."""
    cells = [f"{m.ours:.3f} | {m.baseline} {m.theirs:.3f} | {m.margin:+.3f} [{m.low:+.3f}, {m.high:+.3f}] | "
             + ("yes" if m.beats_by(GOAL) else "no") for m in margins(cpu, baseline_hits)]
    return f"| {held_name} | {len(cpu[0])} | " + " | ".join(cells) + " |"


def tag_rows(verdicts: list[tuple[LabelledTrajectory, Prediction, bool]], *tags: str) -> list[str]:
    """Agent and step exact, and the share flagged uncertain, per value of the suite ``tags`` (the cpu verdicts
    of the leave-one-framework-out splits, pooled: each suite run is held out once)."""
    by_value: dict[str, list[tuple[bool, bool, bool]]] = {}
    for it, (agent, step), unsure in verdicts:
        by_value.setdefault(", ".join(f"{t} {it.tags.get(t, '?')}" for t in tags), []).append(
            (agent == it.label.agent, step == it.label.step, unsure))
    out = [f"| {' / '.join(tags)} | n | agent exact | step exact | flagged uncertain |", "|---|---|---|---|---|"]
    for value, marks in sorted(by_value.items()):
        a, s, u = (np.mean([m[i] for m in marks]) for i in range(3))
        out.append(f"| {value} | {len(marks)} | {a:.3f} | {s:.3f} | {u:.2f} |")
    return out


def split_rows(title: str, held_name: str, train_groups: dict, held: list[LabelledTrajectory], synth, whowhen: bool,
               choices: list[str], goal: list[str], verdicts: list | None = None,
               cpu_hits: dict[str, Hits] | None = None) -> list[str]:
    held = scorable(held)
    started = time.perf_counter()
    model = train(train_groups, synth)
    print(f"{title} {held_name}: fitted with inner leave-one-group-out in {time.perf_counter() - started:.0f} s",
          file=sys.stderr, flush=True)
    m = model.meta
    averaged = "; ".join(f"{c['features']} L2 {c['l2']} synthetic {c['synthetic']} by {c['balance']}"
                         for c in m["averaged"])
    choices.append(f"* {title} {held_name}: average of ({averaged}), "
                   f"agent by {'probability mass' if model.by_mass else 'top step'}, earlier step within "
                   f"{model.earliest:.0%} of the best, T={model.temperature:.2f}"
                   + "".join(f"; {kind} logs T={t:.2f}" for kind, t in model.temperatures.items())
                   + f" (inner (agent+step)/2 = {m['inner_accuracy']:.3f})")
    att = CpuAttributor(model=model)
    out = []
    views = [("cpu", False, True), ("cpu+G", True, True)]
    if any(it.trajectory.team for it in held):  # what the declared team adds: the same runs without it
        views.append(("cpu, team not declared", False, False))
    for label, use_g, with_team in views:
        preds, conf, ms, unsure = [], [], [], []
        for it in held:
            traj = it.trajectory.model_copy(update={"expected": it.trajectory.expected if use_g else None,
                                                    "team": it.trajectory.team if with_team else []})
            t0 = time.perf_counter()
            a = att.attribute(traj)
            ms.append(1000 * (time.perf_counter() - t0))
            preds.append((a.agent, a.step))
            conf.append(a.confidence or 0.0)
            unsure.append(a.uncertain)
        out.append(row(f"{title}: {held_name} - {label}", preds, held, whowhen, conf, ms, unsure))
        if label == "cpu":
            cpu = hits(preds, held)
            if verdicts is not None:
                verdicts += zip(held, preds, unsure)
            if cpu_hits is not None:
                cpu_hits[held_name] = cpu
    train_items = usable([it for v in train_groups.values() for it in v])
    baseline_hits = {}
    for name, fn in trivial_baselines(held, known=train_items).items():
        preds = [fn(it.trajectory) for it in held]
        out.append(row(f"{title}: {held_name} - {name}", preds, held, whowhen))
        baseline_hits[name] = hits(preds, held)
    goal.append(goal_row(f"{title}: {held_name}", cpu, {k: v for k, v in baseline_hits.items() if not is_oracle(k)}))
    return out


def _rates(h: Hits) -> str:
    return f"{np.mean(h[0]):.3f} / {np.mean(h[1]):.3f}"


def spread_row(held_name: str, train_groups: dict, held: list[LabelledTrajectory], first: Hits, seeds: list[int],
               n_pipelines: int) -> str:
    """The cpu's exact agent / step accuracy on ``held`` (without the ground truth) when refitted with the synthetic
    pipelines drawn with each of ``seeds``, beside ``first`` (the table's fit, seed 7): how far a change in the
    training data alone moves a cell."""
    held = scorable(held)
    cells = [_rates(first)]
    for seed in seeds:
        att = CpuAttributor(model=train(train_groups, pipelines(n_pipelines, seed=seed)))
        verdicts = [att.attribute(it.trajectory.model_copy(update={"expected": None})) for it in held]
        cells.append(_rates(hits([(a.agent, a.step) for a in verdicts], held)))
        print(f"spread {held_name}: seed {seed} refitted", file=sys.stderr, flush=True)
    return f"| {held_name} | {len(held)} | " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--suite", default=str(ROOT / "build" / "suite"))
    ap.add_argument("--pipelines", type=int, default=300)
    ap.add_argument("--out", default=str(ROOT / "bench" / "generalisation.md"))
    ap.add_argument("--spread-seeds", type=int, nargs="*", default=[8, 9],
                    help="refit each dev split with the synthetic pipelines drawn with these seeds too (none: skip)")
    args = ap.parse_args()
    dev = load_dev(Path(args.data))
    suite = scorable(load_suite(Path(args.suite)))
    synth = pipelines(args.pipelines, seed=7)
    by_framework: dict[str, list] = {}
    by_topology: dict[str, list] = {}
    by_error_kind: dict[str, list] = {}
    for it in suite:
        by_framework.setdefault(it.tags.get("framework", it.subset), []).append(it)
        by_topology.setdefault(it.tags.get("topology", "?"), []).append(it)
        by_error_kind.setdefault(it.tags.get("error_kind", "?"), []).append(it)
    lines = ["| held out - predictor | n | agent exact | step exact | agent / step WW substring | reward | ECE "
             "| confident / uncertain acc (n) | ms median / p99 |",
             "|---|---|---|---|---|---|---|---|---|"]
    choices: list[str] = []
    beats = f"beats all by {100 * GOAL:.0f} points"
    goal = [f"| held out | n | cpu agent | strongest baseline (agent) | margin [95% bootstrap] | {beats} "
            f"| cpu step | strongest baseline (step) | margin [95% bootstrap] | {beats} |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    by_kind: list = []
    dev_hits: dict[str, Hits] = {}
    spread = ["| held out | n | seed 7 (the table) | " + " | ".join(f"seed {s}" for s in args.spread_seeds) + " |",
              "|---|---|---|" + "---|" * len(args.spread_seeds)]
    for held in dev:
        train_groups = {k: v for k, v in dev.items() if k != held}
        train_groups.update({f"suite/{k}": v for k, v in by_framework.items()})
        lines += split_rows("source", held, train_groups, dev[held], synth, whowhen=True, choices=choices,
                            goal=goal, cpu_hits=dev_hits)
        if args.spread_seeds:
            spread.append(spread_row(held, train_groups, dev[held], dev_hits[held], args.spread_seeds, args.pipelines))
    for title, parts in (("framework", by_framework), ("topology", by_topology), ("error kind", by_error_kind)):
        if len(parts) < 2:
            continue
        for held in parts:
            train_groups = {**dev, **{f"suite/{k}": v for k, v in parts.items() if k != held}}
            lines += split_rows(title, held, train_groups, parts[held], synth, whowhen=False, choices=choices,
                                goal=goal, verdicts=by_kind if title == "framework" else None)
    if not suite:
        lines.append("\n(no labelled suite under --suite: the suite's splits not run)")
    lines += ["", f"Goal check (cpu without the ground truth, exact): does it beat every trivial baseline but "
              f"the oracles by {100 * GOAL:.0f} points?", "",
              *goal]
    if args.spread_seeds and dev:
        lines += ["", "Refit spread on the dev splits: cpu agent / step exact (without the ground truth) when the synthetic "
                  "pipelines of the training side are drawn with another seed, all else the same:", "", *spread]
    if by_kind:
        lines += ["", "By planted error kind (cpu, without the ground truth; the leave-one-framework-out verdicts pooled, "
                  "each suite run held out once):", "", *tag_rows(by_kind, "error_kind"),
                  "", "By what comes with the decisive error: an earlier error that was repaired, and a teammate voicing "
                  "a doubt about the decisive one and going on (same verdicts):", "",
                  *tag_rows(by_kind, "repaired", "noticed")]
    text = "\n".join(lines + ["", "Choices made by the inner cross-validation of each split (training groups only):", *choices])
    print(text)
    Path(args.out).write_text("# cpu attributor: generalisation (bench/generalisation.py)\n\n"
                              + (__doc__ or "").split("Splits", 1)[1].join(["Splits", ""]) + "\n" + text + "\n",
                              encoding="utf-8")


if __name__ == "__main__":
    main()
