"""Rebuilds agenttrace/attribution/cpu_model.json, the weights of the ``cpu`` attributor.

    .venv/bin/python bench/train_cpu_attributor.py [--data /work/shared/data] [--suite build/suite]

The fitting procedure (the conditional logit, and every choice made by leave-one-group-out over the groups it
is given) is agenttrace/attribution/cpu_fit.py. The groups here: each dev source under --data (Who&When
Hand-Crafted, Algorithm-Generated, TracerTraj *.jsonl) and each framework of the labelled suite under --suite
(build/suite/<framework>.jsonl), plus fault-injected synthetic pipelines (weight chosen, 0 allowed).
bench/generalisation.py runs the same fit inside each outer split, so the held-out group never informs a choice.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agenttrace.attribution.cpu import FEATURES, MODEL_PATH  # noqa: E402
from agenttrace.attribution.cpu_fit import load_dev, train  # noqa: E402
from agenttrace.models import Label, LabelledTrajectory, Outcome, Step, ToolCall, Trajectory  # noqa: E402


# ---------------------------------------------------------------- fault-injected pipelines
# Diverse *successful* synthetic team runs (planner -> fact gatherer -> coder -> [executor] -> [verifier] ->
# [writer]) over arithmetic word problems, with role names drawn from several naming styles. One step is
# perturbed with agenttrace.data.faults.perturb_step, and every later step is recomputed from what it was given
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
    from agenttrace.data.faults import perturb_step

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
        calculator = rng.random() < 0.5  # the coder calls a calculator tool instead of writing code
        fault_role = rng.choice([r for r in roles if r != "executor"])
        kinds = {"planner": ["dropped_constraint"], "gatherer": ["wrong_number"],
                 "coder": ["off_by_one", "wrong_return", "off_by_one"], "verifier": ["wrong_number"],
                 "writer": ["wrong_number"]}[fault_role]
        if calculator and fault_role == "coder":
            kinds = ["wrong_argument"]
        kind = rng.choice(kinds)
        steps: list[Step] = []
        transcript = f"Task: {task}"
        fault_at = None

        def emit(role: str, content: str, calls: tuple[ToolCall, ...] = ()) -> None:
            nonlocal transcript, fault_at
            step = Step(index=len(steps), agent=who[role], content=content, input=transcript if with_input else None,
                        tool_calls=list(calls))
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
            if calculator:
                expression = f"{vals[0]} * {vals[1]}" + (f" {op} {vals[2]}" if keep_op else "")
                emit("coder", "I will compute it with the calculator.",
                     (ToolCall(id="call-1", name="calculator", arguments={"expression": expression}),))
                call = steps[-1].tool_calls[0]
                call.result = str(eval(str(call.arguments["expression"]), {"__builtins__": {}}))  # noqa: S307 - digits and * + -
                result = call.result
                transcript += f"\n\n[calculator]\n{result}"
                emit("coder", f"The calculator returned {result}.")
            else:
                emit("coder", _code(vals, names, op, keep_op))
                result = _execute(steps[-1].content)
            if "executor" in roles and not calculator:
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


# ---------------------------------------------------------------- data

def load_suite(folder: Path) -> list[LabelledTrajectory]:
    """The labelled suite of real framework runs: every build/suite/<framework>.jsonl line."""
    items = []
    for f in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                items.append(LabelledTrajectory.model_validate_json(line))
    return items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/work/shared/data", help="folder with whowhen/ and tracertraj/")
    ap.add_argument("--suite", default=str(ROOT / "build" / "suite"), help="folder of <framework>.jsonl")
    ap.add_argument("--out", default=str(MODEL_PATH))
    ap.add_argument("--pipelines", type=int, default=300, help="fault-injected synthetic team pipelines")
    args = ap.parse_args()

    groups = load_dev(Path(args.data))
    for it in load_suite(Path(args.suite)):
        groups.setdefault(f"suite/{it.tags.get('framework', it.subset)}", []).append(it)
    synth = pipelines(args.pipelines, seed=7)
    print("groups:", {k: len(v) for k, v in groups.items()}, "synthetic pipelines:", len(synth))
    model = train(groups, synth)
    Path(args.out).write_text(json.dumps(model.to_json(), indent=1) + "\n", encoding="utf-8")
    print("choices:", model.meta)
    print("verdict: agent by", "probability mass" if model.by_mass else "top step", "| earlier step within",
          f"{model.earliest:.0%} of the best")
    print("temperature:", round(model.temperature, 3), "uncertain below:", model.threshold, "per log kind:", model.temperatures)
    print("weights:", {f: round(float(w), 3) for f, w in zip(FEATURES, model.weights) if w})
    print("wrote", args.out)


if __name__ == "__main__":
    main()
