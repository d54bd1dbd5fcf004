"""Rebuilds agenttrace/attribution/cpu_model.json, the weights of the ``cpu`` attributor.

    .venv/bin/python bench/train_cpu_attributor.py [--data /work/shared/data] [--out agenttrace/attribution/cpu_model.json]

The model is a conditional logit over the steps of a trajectory (see agenttrace/attribution/cpu.py):
loss = -log p(labelled step) - 0.5 * log p(labelled agent), L2-regularised, fitted with Adam in numpy.
It is trained on every labelled source found under --data (Who&When Hand-Crafted, Algorithm-Generated,
TracerTraj *.jsonl), each source weighted equally, plus fault-injected synthetic trajectories, and each
real trajectory is seen twice: with the ground truth and without it.

Before fitting the final model it reports honest generalisation numbers:
* leave-one-source-out: train on the other sources (+ synthetic), test on the held-out one;
* 5-fold cross-validation inside each source (train folds of all sources + synthetic).
Both are stored under "meta" in the JSON so the numbers travel with the weights.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agenttrace.attribution.cpu import FEATURES, MODEL_PATH, CpuAttributor, StepModel, extract_features  # noqa: E402
from agenttrace.datasets import load_any  # noqa: E402
from agenttrace.models import Label, LabelledTrajectory, Outcome, Step, Trajectory  # noqa: E402
from agenttrace.scoring import Scoreboard  # noqa: E402

SYNTHETIC_WEIGHT = 0.5  # the synthetic set weighs as much as half a real source


# ---------------------------------------------------------------- synthetic fault injection

_BENIGN = [
    "Let me look at the task again and outline a plan: first gather the data, then compute, then verify.",
    "I checked the source and it lists the values we need. Here is a summary of what I found so far.",
    "The output looks consistent with the requirements. Moving on to the next part of the plan.",
    "Please run the following code and report the output.\n```python\nprint(sum(range(10)))\n```",
    "exitcode: 0 (execution succeeded)\nCode output: 45",
    "I agree with the approach. Let us double-check the numbers against the original page.",
    "Here are the search results: several pages match the query; the first one is the official site.",
    "Updated the plan: the remaining step is to confirm the final value and report it.",
]
_FAULTS = [
    "I could not access the file, so I will assume the value is {v} and continue with simulated data.",
    "Rather than verifying, I will use a placeholder dataset where the count is {v}.",
    "I clicked on an unrelated link and read the number {v} from it; that should be the answer.",
    "```python\nresult = compute(data)  # uses the wrong column\nprint({v})\n```",
    "Probably the answer is {v}; I believe that is right without verifying the source.",
]
_AFTER = [
    "Traceback (most recent call last):\n  File \"x.py\", line 3\nKeyError: 'column'\nexitcode: 1",
    "Error: the page returned 404 not found.",
    "Code output: {v}",
    "Based on the previous result of {v}, the verification is complete.",
]


def synthetic(n_items: int, seed: int = 0) -> list[LabelledTrajectory]:
    rng = random.Random(seed)
    out = []
    for k in range(n_items):
        hand = rng.random() < 0.4
        agents = ["Orchestrator", "WebSurfer", "FileSurfer", "Assistant"] if hand else [
            rng.choice(["Planner_Expert", "Team Leader"]), rng.choice(["Data_Expert", "Engineer", "Search_Expert"]),
            "Computer_terminal", rng.choice(["Verification_Expert", "Architect"])]
        n = rng.randint(5, 30 if hand else 14)
        wrong = str(rng.randint(10, 999))
        fault = rng.randint(1, n - 2)
        steps = []
        if hand:
            steps.append(Step(index=0, agent="human", role="human", content="Find the value asked for in the task."))
        while len(steps) < n:
            i = len(steps)
            if i == fault:
                agent = rng.choice(agents[1:2] if not hand else agents[1:])
                content = rng.choice(_FAULTS).format(v=wrong)
            elif i == fault + 1:
                agent = agents[2] if not hand else rng.choice(agents)
                content = rng.choice(_AFTER).format(v=wrong)
            elif i > fault + 1 and rng.random() < 0.4:
                agent = rng.choice(agents)
                content = f"Continuing with {wrong} as established. " + rng.choice(_BENIGN)
            else:
                agent = rng.choice(agents)
                content = rng.choice(_BENIGN)
                if rng.random() < 0.1:
                    content += " (a harmless warning was printed, no error)"
            role = f"{agent} (thought)" if hand and agent == "Orchestrator" and rng.random() < 0.5 else agent
            steps.append(Step(index=i, agent=agent, role=role, content=content))
        steps.append(Step(index=len(steps), agent=agents[0], role=agents[0], content=f"FINAL ANSWER: {wrong}"))
        fault_agent = steps[fault].agent
        traj = Trajectory(run_id=f"synthetic/{k}", task="Find the value asked for in the task.",
                          expected=str(rng.randint(1000, 9999)), outcome=Outcome.FAILURE, steps=steps)
        out.append(LabelledTrajectory(id=traj.run_id, subset="synthetic", trajectory=traj,
                                      label=Label(agent=fault_agent, step=fault, reason="injected fault")))
    return out


# ---------------------------------------------------------------- fitting

def featurise(items: list[LabelledTrajectory], both_views: bool = True):
    rows = []
    for it in items:
        if it.label is None or it.label.step >= len(it.trajectory.steps):
            continue
        agents = [s.agent for s in it.trajectory.steps]
        if it.label.agent not in agents:
            continue
        views = (True, False) if both_views else (True,)
        for use_g in views:
            x, _ = extract_features(it.trajectory, use_expected=use_g)
            mask = np.array([a == it.label.agent for a in agents], dtype=float)
            rows.append((x, it.label.step, mask, it.subset))
    return rows


def fit(rows, l2: float = 0.02, iters: int = 400, lr: float = 0.05, seed: int = 0) -> StepModel:
    allx = np.concatenate([r[0] for r in rows])
    mean = allx.mean(axis=0)
    scale = allx.std(axis=0)
    scale[scale < 1e-6] = 1.0
    zs = [(r[0] - mean) / scale for r in rows]
    by_subset: dict[str, int] = {}
    for r in rows:
        by_subset[r[3]] = by_subset.get(r[3], 0) + 1
    weights = np.array([(SYNTHETIC_WEIGHT if r[3] == "synthetic" else 1.0) / by_subset[r[3]] for r in rows])
    weights /= weights.sum()
    w = np.zeros(len(FEATURES))
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t in range(1, iters + 1):
        grad = 2 * l2 * w
        for z, (x, step, mask, _), wt in zip(zs, rows, weights):
            s = z @ w
            s -= s.max()
            p = np.exp(s)
            p /= p.sum()
            g_step = p.copy()
            g_step[step] -= 1.0
            pa = p * mask
            q = pa / max(pa.sum(), 1e-12)
            g_agent = p - q
            grad += wt * (z.T @ (g_step + 0.5 * g_agent))
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        w -= lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return StepModel(w, mean, scale)


def evaluate(model: StepModel, items: list[LabelledTrajectory]) -> dict:
    out = {}
    for use_g in (True, False):
        board = Scoreboard()
        att = CpuAttributor(model=model)
        for it in items:
            traj = it.trajectory if use_g else it.trajectory.model_copy(update={"expected": None})
            a = att.attribute(traj)
            board.add_prediction(it.subset, a.agent, a.step, it.label)
        out["with_G" if use_g else "without_G"] = board.summary()
    return out


def _fmt(summary: dict) -> str:
    return (f"n={summary['n']:3d} agent WW {summary['agent_acc_whowhen']:.3f} exact {summary['agent_acc_exact']:.3f} | "
            f"step WW {summary['step_acc_whowhen']:.3f} exact {summary['step_acc_exact']:.3f} | "
            f"reward {summary['mean_reward']:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/work/shared/data", help="folder with whowhen/ and tracertraj/")
    ap.add_argument("--out", default=str(MODEL_PATH))
    ap.add_argument("--synthetic", type=int, default=300, help="fault-injected synthetic trajectories")
    ap.add_argument("--no-cv", action="store_true", help="skip the cross-validation report")
    args = ap.parse_args()

    data = Path(args.data)
    sources: dict[str, list[LabelledTrajectory]] = {}
    for sub in ("whowhen/Hand-Crafted", "whowhen/Algorithm-Generated"):
        if (data / sub).is_dir():
            items = load_any(data / sub)
            sources[items[0].subset if items else sub] = items
    for f in sorted((data / "tracertraj").glob("*.jsonl")):
        items = load_any(f)
        sources[items[0].subset if items else f.stem] = items
    synth = synthetic(args.synthetic)
    print("sources:", {k: len(v) for k, v in sources.items()}, "synthetic:", len(synth))
    meta: dict = {"sources": {k: len(v) for k, v in sources.items()}, "synthetic": len(synth)}

    if not args.no_cv:
        loso = {}
        print("\nleave-one-source-out (train on the others + synthetic, test on the held-out source):")
        for held in sources:
            train = [it for k, v in sources.items() if k != held for it in v] + synth
            model = fit(featurise(train))
            res = evaluate(model, sources[held])
            loso[held] = {g: res[g][held] for g in res}
            for g in res:
                print(f"  {held:20s} {g:9s} {_fmt(res[g][held])}")
        meta["leave_one_source_out"] = loso

        print("\n5-fold CV within each source (train folds of every source + synthetic):")
        rng = random.Random(1)
        folds = {k: [i % 5 for i in range(len(v))] for k, v in sources.items()}
        for k in folds:
            rng.shuffle(folds[k])
        preds: dict = {"with_G": Scoreboard(), "without_G": Scoreboard()}
        for f in range(5):
            train = [it for k, v in sources.items() for it, fo in zip(v, folds[k]) if fo != f] + synth
            test = [it for k, v in sources.items() for it, fo in zip(v, folds[k]) if fo == f]
            model = fit(featurise(train))
            att = CpuAttributor(model=model)
            for it in test:
                for g, traj in (("with_G", it.trajectory),
                                ("without_G", it.trajectory.model_copy(update={"expected": None}))):
                    a = att.attribute(traj)
                    preds[g].add_prediction(it.subset, a.agent, a.step, it.label)
        kfold = {g: b.summary() for g, b in preds.items()}
        for g, summ in kfold.items():
            for k, s in summ.items():
                print(f"  {k:20s} {g:9s} {_fmt(s)}")
        meta["five_fold"] = kfold

    train = [it for v in sources.values() for it in v] + synth
    model = fit(featurise(train))
    model.meta = meta
    fitted = evaluate(model, [it for v in sources.values() for it in v])
    print("\nfinal model, scored on its own training data (optimistic):")
    for g, summ in fitted.items():
        for k, s in summ.items():
            print(f"  {k:20s} {g:9s} {_fmt(s)}")
    Path(args.out).write_text(json.dumps(model.to_json(), indent=1) + "\n", encoding="utf-8")
    print("\nweights:", {f: round(float(w), 3) for f, w in zip(FEATURES, model.weights)})
    print("wrote", args.out)


if __name__ == "__main__":
    main()
