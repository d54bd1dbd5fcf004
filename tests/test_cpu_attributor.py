"""Specification of the `cpu` attributor: no LLM, no GPU, fast, and it points at the seeded error."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import whowhen_fixtures as fx  # noqa: E402

from agenttrace.attribution import get_attributor  # noqa: E402
from agenttrace.attribution.cpu import FEATURES, CpuAttributor, StepModel, extract_features  # noqa: E402
from agenttrace.datasets import from_whowhen  # noqa: E402
from agenttrace.models import Step, ToolCall, Trajectory  # noqa: E402


def test_registered_as_cpu_and_ships_its_model():
    att = get_attributor("cpu")
    assert isinstance(att, CpuAttributor)
    assert att.model.weights.shape == (len(FEATURES),)


def test_blames_an_agent_of_the_trajectory_with_a_real_reason():
    att = CpuAttributor()
    for data in (fx.hand_crafted(0), fx.algorithm_generated(1), fx.tracertraj_row(2)):
        item = from_whowhen(data)
        a = att.attribute(item.trajectory)
        assert a.attributor == "cpu"
        assert a.run_id == item.trajectory.run_id
        assert a.agent in item.trajectory.agents
        assert 0 <= a.step < len(item.trajectory.steps)
        assert item.trajectory.steps[a.step].agent == a.agent
        assert 0.0 < a.confidence <= 1.0
        assert f"Step {a.step} by {a.agent}" in a.reason
        assert "because" in a.reason or ":" in a.reason
        assert len(a.reason.split()) > 15


def test_finds_the_obvious_seeded_error():
    att = CpuAttributor()
    for data in (fx.hand_crafted(0), fx.hand_crafted(5), fx.algorithm_generated(0), fx.algorithm_generated(9)):
        item = from_whowhen(data)
        a = att.attribute(item.trajectory)
        assert (a.agent, a.step) == (item.label.agent, item.label.step), a.reason
        assert "assum" in a.reason or "placeholder" in a.reason or "instead" in a.reason or "problem" in a.reason


def test_the_human_request_is_never_blamed():
    item = from_whowhen(fx.hand_crafted(0))
    p = CpuAttributor().step_probabilities(item.trajectory)
    assert p[0] < p[5]
    assert abs(p.sum() - 1.0) < 1e-9


def test_works_on_sdk_trajectories_with_tool_errors():
    traj = Trajectory(run_id="sdk-1", task="add two numbers", steps=[
        Step(index=0, agent="planner", content="Plan: call the calculator."),
        Step(index=1, agent="worker", content="calling", tool_calls=[
            ToolCall(name="calc", arguments={"a": 1}, error="TypeError: missing argument b")]),
        Step(index=2, agent="planner", content="The tool failed with an error; giving up."),
    ])
    a = CpuAttributor().attribute(traj)
    assert a.agent in {"planner", "worker"} and a.step in {0, 1, 2}


def test_empty_trajectory_is_undecided():
    a = CpuAttributor().attribute(Trajectory(run_id="e"))
    assert not a.is_decided and a.reason


def test_without_ground_truth_option_ignores_expected():
    item = from_whowhen(fx.algorithm_generated(0))
    x_with, _ = extract_features(item.trajectory, use_expected=True)
    x_without, _ = extract_features(item.trajectory.model_copy(update={"expected": None}))
    x_opt, _ = extract_features(item.trajectory, use_expected=False)
    assert (x_opt == x_without).all()
    assert x_with.shape == x_without.shape


def test_big_trajectory_returns():
    # Who&When Hand-Crafted steps can reach 300k characters; no quadratic work allowed.
    blob = ("Here is a screenshot of the page with many links and numbers 123 456. " * 4300)[:300_000]
    steps = [Step(index=i, agent=["Orchestrator", "WebSurfer", "FileSurfer"][i % 3], content=blob + str(i))
             for i in range(40)]
    steps[17].content += " Error: 404 not found"
    traj = Trajectory(run_id="big", task="find the number", expected="789", steps=steps)
    a = CpuAttributor().attribute(traj)
    assert a.agent in traj.agents and 0 <= a.step < 40


def test_model_round_trips_through_json():
    model = CpuAttributor().model
    again = StepModel.from_json(model.to_json())
    assert (abs(again.weights - model.weights) < 1e-5).all()


def _numbers_run(writer_says: str) -> Trajectory:
    # a generic pipeline; no agent name or task of the project's examples
    return Trajectory(run_id="flow", task="A farm has 6 rows with 12 trees each. How many trees are there?",
                      expected="72", answer=writer_says, steps=[
        Step(index=0, agent="Lead", content="1. Analyst: extract the quantities.\n2. Programmer: multiply them."),
        Step(index=1, agent="Analyst", content="rows = 6\ntrees per row = 12", input="Task: ..."),
        Step(index=2, agent="Programmer", content="```python\ndef solve():\n    return 6 * 12\n```",
             input="rows = 6\ntrees per row = 12"),
        Step(index=3, agent="Reporter", content=f"The farm has {writer_says} trees.",
             input="[code output]\n72"),
    ])


def test_information_flow_features():
    col = {f: j for j, f in enumerate(FEATURES)}
    x, ev = extract_features(_numbers_run("74"))
    # the Reporter states a number that is in no earlier step and not in the input it was given
    assert x[3, col["num_new"]] > 0 and x[3, col["num_unsupported_input"]] > 0 and x[3, col["num_new_to_final"]] == 1
    assert ev[3].new_numbers == ("74",) and ev[3].unsupported == ("74",)
    # copying the task's numbers introduces nothing
    assert x[1, col["num_new"]] == 0 and x[2, col["num_new"]] == 0
    x_ok, ev_ok = extract_features(_numbers_run("72"))
    assert x_ok[3, col["num_unsupported_input"]] == 0 and ev_ok[3].unsupported == ()


def test_restated_quantity_with_another_value_is_a_conflict():
    traj = Trajectory(run_id="c", task="There are 5 shelves.", steps=[
        Step(index=0, agent="Researcher", content="shelves = 6"),
        Step(index=1, agent="Coder", content="shelves = 6, so 6 * 2"),
    ])
    col = {f: j for j, f in enumerate(FEATURES)}
    x, ev = extract_features(traj)
    assert x[0, col["num_conflict"]] == 1 and ev[0].conflict == ("shelve", "5", "6")
    assert x[1, col["num_conflict"]] == 0  # the same value again is no conflict


def test_role_types_are_generic():
    from agenttrace.attribution.cpu import role_types

    assert role_types("Team Leader")["role_planner"] and role_types("Orchestrator")["role_planner"]
    assert role_types("Engineer")["role_coder"] and role_types("Python_Expert")["role_coder"]
    assert role_types("Computer_terminal")["role_executor"]
    assert role_types("Verification_Expert")["role_verifier"]
    assert role_types("WebSurfer")["role_searcher"]
    assert not any(role_types("Alice").values())


def test_relative_features_are_centred_per_trajectory():
    x, _ = extract_features(_numbers_run("74"))
    for f in ("log_len_z", "novelty_z", "code_rel", "num_new_rel"):
        assert abs(x[:, FEATURES.index(f)].sum()) < 1e-9


def test_blames_the_step_whose_number_is_not_in_its_input():
    a = CpuAttributor().attribute(_numbers_run("74"))
    assert (a.agent, a.step) == ("Reporter", 3), a.reason
    assert "74" in a.reason


def test_a_number_copied_from_the_input_is_relayed_not_introduced():
    col = {f: j for j, f in enumerate(FEATURES)}
    x, _ = extract_features(_numbers_run("72"))  # the Reporter repeats the code output it was given
    assert x[3, col["num_new"]] > 0 and x[3, col["num_new_to_final"]] == 0


def test_plan_coverage_and_earliest_anomaly_features():
    task = "Count only the red boxes with at least 5 items each; exclude damaged boxes."
    traj = Trajectory(run_id="p", task=task, steps=[
        Step(index=0, agent="Planner", content="1. Researcher: list the boxes.\n2. Coder: count them."),
        Step(index=1, agent="Researcher", content="I assume there are 12 boxes."),
        Step(index=2, agent="Coder", content="Error: could not count."),
    ])
    col = {f: j for j, f in enumerate(FEATURES)}
    x, ev = extract_features(traj)
    assert 0 < x[0, col["task_drop"]] < 1 and "damaged" in ev[0].dropped
    assert x[0, col["constraint_deficit"]] == 1  # the plan states none of the task's 'only', 'at least', 'each'
    assert x[1:, col["task_drop"]].sum() == 0  # only plan-like steps are compared with the task
    assert list(x[:, col["first_anomaly"]]) == [1, 0, 0]
    full = traj.model_copy(update={"steps": [Step(index=0, agent="Planner", content=(
        "1. Researcher: list only the red boxes with at least 5 items each.\n2. Coder: exclude damaged boxes."))]})
    x2, _ = extract_features(full)
    assert x2[0, col["task_drop"]] < x[0, col["task_drop"]] and x2[0, col["constraint_deficit"]] == 0
