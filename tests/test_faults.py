"""Fault injection: each perturbation changes what it claims to, replay confirms the failure, exports load back."""

from __future__ import annotations

import json
import random
import re

from agenttrace.data.datasets import load_tracertraj, load_whowhen_dir
from agenttrace.data.faults import (applicable_kinds, contradict_fact, drop_constraint, inject, inject_many,
                               perturb_code, perturb_python, perturb_step, write_tracertraj, write_whowhen_dir,
                               wrong_argument, wrong_number)
from agenttrace.models import Outcome, Step, ToolCall
from agenttrace.data.replay import Replayable

CODE = """def solve(xs):
    total = 0
    for x in xs:
        if x > 2:
            total += x
    return total
"""


def _run(src: str, xs=(1, 2, 3, 4)):
    ns: dict = {}
    exec(src, ns)
    return ns["solve"](list(xs))


def test_code_perturbations_change_behaviour():
    assert _run(CODE) == 7
    for kind in ("flip_comparison", "off_by_one", "wrong_return"):
        new, what = perturb_python(CODE, kind, random.Random(1))
        assert new != CODE and what
        assert _run(new) != 7, (kind, new)
    flipped, _ = perturb_python(CODE, "flip_comparison")
    assert "x <= 2" in flipped
    assert perturb_python("x = 'a'", "flip_comparison") is None and perturb_python("def (", "off_by_one") is None
    content = f"Here is my solution:\n```python\n{CODE}```\nIt sums the values above 2."
    new, _ = perturb_code(content, "flip_comparison")
    assert new.startswith("Here is my solution:\n```python\n") and new.endswith("It sums the values above 2.")
    block = re.search(r"```python\n(.*?)```", new, re.DOTALL).group(1)
    assert _run(block) == 3


def test_text_and_tool_perturbations():
    new, what = wrong_number("Each shelf holds 48 boxes.", random.Random(0))
    assert "48" not in new and re.search(r"\d+", new) and "48" in what
    text = "Compute the total. You must subtract the 17 shipped boxes. Report one number."
    dropped, _ = drop_constraint(text)
    assert "subtract" not in dropped and dropped.startswith("Compute the total.")
    assert drop_constraint("Hello there.") is None
    contra, _ = contradict_fact("The file is present.")
    assert contra == "The file is not present."
    step = Step(index=2, agent="Searcher", tool_calls=[ToolCall(name="lookup", arguments={"year": 2019},
                                                                result="found")])
    changed, what = wrong_argument(step)
    assert changed.tool_calls[0].arguments["year"] != 2019 and changed.tool_calls[0].result is None
    assert "year" in what and step.tool_calls[0].arguments == {"year": 2019}  # original untouched
    prose_and_code = Step(index=0, agent="Coder", content=f"Uses 3 items.\n```python\n{CODE}```")
    kinds = applicable_kinds(prose_and_code)
    assert {"flip_comparison", "off_by_one", "wrong_return", "wrong_number"} <= set(kinds)
    out, _ = perturb_step(prose_and_code, "wrong_number")
    assert CODE in out.content and "Uses 3 items." not in out.content  # the number in prose, code untouched


# A replayable three-agent system: the Coder's code is run by the harness, the Writer reports its output.
TASK = "Sum the values above 2 in [1, 2, 3, 4]."


def llm(messages) -> str:
    system, user = messages[0]["content"], messages[1]["content"]
    if "Planner" in system:
        return "Plan: the Coder must write solve(xs) and only sum values above 2. Our data is in the task."
    if "Coder" in system:
        return f"```python\n{CODE}```"
    if "Writer" in system:
        return f"Answer: {user}"
    raise AssertionError(system)


def system(task, *, llm):
    plan = llm([{"role": "system", "content": "You are Planner."}, {"role": "user", "content": task}], agent="Planner")
    code = llm([{"role": "system", "content": "You are Coder."}, {"role": "user", "content": plan}], agent="Coder")
    src = re.search(r"```python\n(.*?)```", code, re.DOTALL).group(1)
    out = _run(src)
    return llm([{"role": "system", "content": "You are Writer."}, {"role": "user", "content": str(out)}],
               agent="Writer").removeprefix("Answer: ")


def test_inject_confirms_by_replay_and_exports(tmp_path):
    run = Replayable(system, llm, success=lambda a: a == "7")
    good = run.record(TASK)
    assert good.success
    traj = good.to_trajectory(run_id="ok-1", task=TASK).model_copy(update={"outcome": Outcome.SUCCESS,
                                                                            "expected": "7"})
    sample = inject(traj, step=1, kind="flip_comparison", run=run, args=(TASK,))
    assert sample is not None and sample.confirmed
    assert (sample.label.agent, sample.label.step) == ("Coder", 1)
    assert sample.trajectory.outcome is Outcome.FAILURE and sample.trajectory.answer == "3"
    assert sample.trajectory.steps[2].content == "Answer: 3"  # the Writer re-ran live on the new output
    assert sample.trajectory.steps[0] == traj.steps[0]

    # the Planner's wording is not read by anyone: a wrong number there does not fail the run -> no sample
    assert inject(traj, step=0, kind="wrong_number", run=run, args=(TASK,)) is None
    unconfirmed = inject(traj, step=0, kind="wrong_number")
    assert unconfirmed is not None and not unconfirmed.confirmed and unconfirmed.label.step == 0

    many = inject_many([traj], per_trajectory=3, run=run, args_for=lambda t: (TASK,), seed=3)
    assert many and all(s.confirmed and s.trajectory.outcome is Outcome.FAILURE for s in many)
    assert len({(s.label.step, s.kind) for s in many}) == len(many)

    n = write_tracertraj([sample, unconfirmed], tmp_path / "injected.jsonl")
    assert n == 2
    rows = [json.loads(line) for line in (tmp_path / "injected.jsonl").read_text().splitlines()]
    assert rows[0]["injected_kind"] == "flip_comparison" and rows[0]["confirmed"] is True
    back = load_tracertraj(tmp_path / "injected.jsonl")
    assert (back[0].label.agent, back[0].label.step) == ("Coder", 1)
    assert write_whowhen_dir([sample], tmp_path / "ww") == 1
    ww = load_whowhen_dir(tmp_path / "ww")
    assert ww[0].label.step == 1 and "x <= 2" in ww[0].trajectory.steps[1].content
