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
import re
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
PIPELINE_WEIGHT = 0.1  # the fault-injected pipelines (a second synthetic set); 0.1 had the best leave-one-source-out reward of {0.1, 0.2, 0.5}


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


# ---------------------------------------------------------------- fault-injected pipelines
# Diverse *successful* synthetic team runs (planner -> fact gatherer -> coder -> [executor] -> [verifier] ->
# [writer]) over arithmetic word problems, with role names drawn from several naming styles. One step is
# perturbed with agenttrace.faults.perturb_step, and every later step is recomputed from what it was given
# (values are re-read from the gatherer's text, the code is executed), so the fault propagates the way it
# does in a real run. Samples whose final answer is still right are dropped.

_PROBLEMS = [  # (task template, [(name, lo, hi)], op between a*b and c, constraint sentence)
    ("A bakery bakes {a} trays of {b} muffins each. {c} muffins are given away. How many muffins remain?",
     ["trays", "muffins per tray", "muffins given away"], "-", "Then you must subtract the muffins given away."),
    ("A cyclist rides {a} laps of {b} km each and then {c} km home. How far does she ride in total?",
     ["laps", "km per lap", "km home"], "+", "Then you must add the distance home."),
    ("A school orders {a} boxes of {b} pencils each; {c} pencils are broken. How many usable pencils are there?",
     ["boxes", "pencils per box", "broken pencils"], "-", "Then you must subtract the broken pencils."),
    ("A farm has {a} rows with {b} trees each, and plants {c} more trees. How many trees are there now?",
     ["rows", "trees per row", "new trees"], "+", "Then you must add the new trees."),
    ("A printer prints {a} pages per minute for {b} minutes; {c} pages jam. How many good pages are printed?",
     ["pages per minute", "minutes", "jammed pages"], "-", "Then you must subtract the jammed pages."),
    ("A team sells {a} tickets at {b} dollars each and pays a fee of {c} dollars. What is the net income?",
     ["tickets", "price per ticket", "fee"], "-", "Only the net amount counts, so subtract the fee."),
]
_NAMES = {
    "planner": ["Planner", "Orchestrator", "Team Leader", "Manager", "Lead_Expert", "Coordinator"],
    "gatherer": ["Researcher", "Analyst", "DataExtraction_Expert", "WebSurfer", "Search_Expert", "FileSurfer"],
    "coder": ["Coder", "Engineer", "Programmer", "Python_Expert", "Developer"],
    "executor": ["Computer_terminal", "Executor", "ComputerTerminal", "Code_Runner"],
    "verifier": ["Verifier", "Verification_Expert", "Checker", "Reviewer", "QA_Expert"],
    "writer": ["Writer", "Reporter", "Assistant", "Summarizer"],
}
_GATHER_STYLES = ["{k} = {v}", "{k}: {v}", "The {k} is {v}."]


def _var(name: str) -> str:
    return "_".join(w for w in name.split() if w not in ("per",)) if " " in name else name


def _gather(task_vals, names, style):
    return "\n".join(style.format(k=k, v=v) for k, v in zip(names, task_vals))


def _read_values(text, names):
    vals = []
    for k in names:
        m = re.search(re.escape(k) + r"\s*(?:=|:|is)\s*(-?\d+)", text)
        vals.append(int(m.group(1)) if m else 0)
    return vals


def _code(vals, names, op, keep_op):
    v = [_var(k) for k in names]
    body = "def solve():\n" + "".join(f"    {a} = {b}\n" for a, b in zip(v, vals))
    body += f"    return {v[0]} * {v[1]}" + (f" {op} {v[2]}" if keep_op else "") + "\n"
    return f"```python\n{body}```"


def _execute(code_text):
    m = re.search(r"```python\n(.*?)```", code_text, re.DOTALL)
    ns: dict = {}
    try:
        exec(m.group(1), ns)  # noqa: S102 - our own generated code
        return str(ns["solve"]())
    except Exception as exc:  # pragma: no cover - a perturbation can break the code
        return f"error ({type(exc).__name__})"


def pipelines(n_items: int, seed: int = 0) -> list[LabelledTrajectory]:
    from agenttrace.faults import perturb_step

    rng = random.Random(seed)
    out: list[LabelledTrajectory] = []
    tries = 0
    while len(out) < n_items and tries < n_items * 20:
        tries += 1
        tmpl, names, op, constraint = rng.choice(_PROBLEMS)
        a, b, c = rng.randint(2, 12), rng.randint(5, 80), rng.randint(1, 15)
        task = tmpl.format(a=a, b=b, c=c)
        expected = a * b - c if op == "-" else a * b + c
        roles = ["planner", "gatherer", "coder"] + (["executor"] if rng.random() < 0.6 else [])
        roles += ["verifier"] if rng.random() < 0.4 else []
        roles += ["writer"] if rng.random() < 0.7 else []
        who = {r: rng.choice(_NAMES[r]) for r in roles}
        style = rng.choice(_GATHER_STYLES)
        with_input = rng.random() < 0.5
        fault_role = rng.choice([r for r in roles if r != "executor"])
        kinds = {"planner": ["dropped_constraint"], "gatherer": ["wrong_number"],
                 "coder": ["off_by_one", "wrong_return", "off_by_one"], "verifier": ["wrong_number"],
                 "writer": ["wrong_number"]}[fault_role]
        kind = rng.choice(kinds)
        steps: list[Step] = []
        transcript = f"Task: {task}"
        fault_at = None
        state: dict = {}

        def emit(role: str, content: str) -> None:
            nonlocal transcript, fault_at
            step = Step(index=len(steps), agent=who[role], content=content, input=transcript if with_input else None)
            if role == fault_role and fault_at is None:
                pert = perturb_step(step, kind, rng)
                if pert is None:
                    raise ValueError("perturbation does not apply")
                step = pert[0]
                fault_at = step.index
            steps.append(step)
            transcript += f"\n\n[{who[role]}]\n{step.content}"

        try:
            plan = (f"1. {who['gatherer']}: extract the quantities from the task.\n"
                    f"2. {who['coder']}: multiply {names[0]} by {names[1]}. {constraint}\n"
                    f"3. {'Report the number.' if 'writer' not in roles else who['writer'] + ': state the number.'}")
            emit("planner", plan)
            keep_op = any(w in steps[-1].content for w in ("subtract", "add"))
            emit("gatherer", _gather([a, b, c], names, style))
            vals = _read_values(steps[-1].content, names)
            emit("coder", _code(vals, names, op, keep_op))
            result = _execute(steps[-1].content)
            state["result"] = result
            if "executor" in roles:
                emit("executor", f"exitcode: 0 (execution succeeded)\nCode output: {result}")
                result = (re.findall(r"-?\d+", steps[-1].content.split("Code output:")[-1]) or [result])[-1]
            elif with_input:
                transcript += f"\n\n[code output]\n{result}"
            if "verifier" in roles:
                emit("verifier", f"I re-ran the computation and the result {result} is consistent with the values. "
                                 "The result is verified.")
                result = (re.findall(r"-?\d+", steps[-1].content) or [result])[0]
            if "writer" in roles:
                emit("writer", rng.choice(["The answer is {r}.", "FINAL ANSWER: {r}", "So the total is {r}."]).format(r=result))
            else:
                steps.append(Step(index=len(steps), agent=who["planner"], content=f"The team's answer is {result}. TERMINATE"))
            answer = (re.findall(r"-?\d+", steps[-1].content) or [None])[-1]
        except ValueError:
            continue
        if fault_at is None or answer == str(expected):
            continue
        traj = Trajectory(run_id=f"pipeline/{len(out)}", task=task, expected=str(expected), answer=answer,
                          outcome=Outcome.FAILURE, steps=steps)
        out.append(LabelledTrajectory(id=traj.run_id, subset="synthetic_pipeline", trajectory=traj,
                                      label=Label(agent=steps[fault_at].agent, step=fault_at, reason=f"injected {kind}")))
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
    share = {"synthetic": SYNTHETIC_WEIGHT, "synthetic_pipeline": PIPELINE_WEIGHT}
    weights = np.array([share.get(r[3], 1.0) / by_subset[r[3]] for r in rows])
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
    ap.add_argument("--pipelines", type=int, default=300, help="fault-injected synthetic team pipelines")
    ap.add_argument("--l2", type=float, nargs="+", default=[0.02],
                    help="L2 strengths; with several, the one with the best leave-one-source-out reward is kept")
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
    synth = synthetic(args.synthetic) + pipelines(args.pipelines, seed=7)
    print("sources:", {k: len(v) for k, v in sources.items()}, "synthetic:", len(synth))
    meta: dict = {"sources": {k: len(v) for k, v in sources.items()}, "synthetic": args.synthetic,
                  "synthetic_pipelines": len(synth) - args.synthetic}
    l2 = args.l2[0]
    if len(args.l2) > 1:
        cache = {held: featurise([it for k, v in sources.items() if k != held for it in v] + synth) for held in sources}
        best = None
        print("choosing L2 by leave-one-source-out mean reward (without G, averaged over sources):")
        for cand in args.l2:
            rewards = [evaluate(fit(cache[held], l2=cand), sources[held])["without_G"][held]["mean_reward"]
                       for held in sources]
            r = sum(rewards) / len(rewards)
            print(f"  l2={cand:<8g} reward {r:.3f}  " + " ".join(f"{x:.3f}" for x in rewards))
            if best is None or r > best[0]:
                best = (r, cand)
        l2 = best[1]
        print("  chosen l2 =", l2)
    meta["l2"] = l2

    if not args.no_cv:
        loso = {}
        print("\nleave-one-source-out (train on the others + synthetic, test on the held-out source):")
        for held in sources:
            train = [it for k, v in sources.items() if k != held for it in v] + synth
            model = fit(featurise(train), l2=l2)
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
            model = fit(featurise(train), l2=l2)
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
    model = fit(featurise(train), l2=l2)
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
