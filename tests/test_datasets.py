"""Specification of agenttrace.data.datasets: reading Who&When / TracerTraj and writing the Who&When shape."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import whowhen_fixtures as fx  # noqa: E402

from agenttrace.data.datasets import (  # noqa: E402
    ALGORITHM_GENERATED,
    HAND_CRAFTED,
    DatasetError,
    from_whowhen,
    load_any,
    load_tracertraj,
    load_whowhen_dir,
    load_whowhen_file,
    to_whowhen,
)
from agenttrace.models import Label, Step, ToolCall, Trajectory  # noqa: E402


def test_hand_crafted_agents_come_from_role_without_the_suffix(tmp_path):
    path = tmp_path / "7.json"
    path.write_text(json.dumps(fx.hand_crafted()))
    item = load_whowhen_file(path)
    steps = item.trajectory.steps
    assert item.subset == HAND_CRAFTED
    assert item.id == "Hand-Crafted/7"
    assert steps[0].agent == "human"
    assert steps[1].agent == "Orchestrator" and steps[1].role == "Orchestrator (thought)"
    assert steps[2].agent == "Orchestrator" and steps[2].role == "Orchestrator (-> WebSurfer)"
    assert [s.index for s in steps] == list(range(len(steps)))
    assert item.label == Label(agent="WebSurfer", step=5, reason=fx.hand_crafted()["mistake_reason"])
    assert item.trajectory.steps[item.label.step].agent == "WebSurfer"
    assert item.trajectory.task.startswith("How many employees")
    assert item.trajectory.expected == "1200"


def test_algorithm_generated_agents_come_from_name(tmp_path):
    path = tmp_path / "3.json"
    path.write_text(json.dumps(fx.algorithm_generated()))
    item = load_whowhen_file(path)
    assert item.subset == ALGORITHM_GENERATED
    assert [s.agent for s in item.trajectory.steps][:3] == ["Planning_Expert", "DataAnalysis_Expert", "Computer_terminal"]
    assert item.trajectory.steps[0].role == "assistant"
    assert item.label.step == 1


def test_tracertraj_jsonl_one_item_per_line(tmp_path):
    path = tmp_path / "code-dev.jsonl"
    path.write_text("\n".join(json.dumps(fx.tracertraj_row(i)) for i in range(3)) + "\n\n")
    items = load_tracertraj(path)
    assert [it.id for it in items] == ["code-dev/tt-0", "code-dev/tt-1", "code-dev/tt-2"]
    assert {it.subset for it in items} == {"code-dev"}
    assert items[1].label.agent == "DataAnalysis_Expert"


def test_load_any_reads_folders_files_and_jsonl(tmp_path):
    hc, ag, jsonl = fx.write_dataset(tmp_path, n_hand=2, n_algo=3, n_tracer=4)
    assert len(load_any(hc)) == 2
    assert len(load_whowhen_dir(ag)) == 3
    assert len(load_any(jsonl)) == 4
    assert len(load_any(ag / "2.json")) == 1
    whole = load_any(tmp_path)  # a folder of folders
    assert sorted({it.subset for it in whole}) == ["Algorithm-Generated", "Hand-Crafted", "code-dev"]
    assert len(whole) == 9


def test_load_any_reads_a_trajectory_dump(tmp_path):
    traj = Trajectory(run_id="r1", task="t", steps=[Step(index=0, agent="a", content="hi")])
    path = tmp_path / "run.json"
    path.write_text(traj.model_dump_json())
    [item] = load_any(path)
    assert item.trajectory == traj and item.label is None


def test_round_trip_through_the_whowhen_shape():
    original = from_whowhen(fx.hand_crafted(3))
    data = to_whowhen(original.trajectory, original.label)
    assert set(data["history"][0]) == {"content", "name", "role", "step"}
    assert data["mistake_step"] == "5" and data["mistake_agent"] == "WebSurfer"
    back = from_whowhen(json.loads(json.dumps(data)), subset=original.subset)
    assert back.label == original.label
    assert back.trajectory.task == original.trajectory.task
    assert back.trajectory.expected == original.trajectory.expected
    assert [(s.agent, s.role, s.content) for s in back.trajectory.steps] == [
        (s.agent, s.role, s.content) for s in original.trajectory.steps
    ]


def test_to_whowhen_renders_tool_calls_into_content_and_omits_a_missing_label():
    traj = Trajectory(run_id="r", task="q", steps=[
        Step(index=0, agent="coder", content="running", tool_calls=[ToolCall(name="python", arguments="1/0",
                                                                          error="ZeroDivisionError")])])
    data = to_whowhen(traj)
    assert "ZeroDivisionError" in data["history"][0]["content"]
    assert "mistake_step" not in data
    assert from_whowhen(data).label is None


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("history"), "history"),
        (lambda d: d.update(history="not a list"), "history"),
        (lambda d: d.update(mistake_step="twelve"), "mistake_step"),
        (lambda d: d.update(mistake_step=None), "mistake_step"),
        (lambda d: d.update(mistake_agent=3), "mistake_agent"),
        (lambda d: d["history"][2].update(content=["x"]), "history[2].content"),
        (lambda d: d["history"].__setitem__(1, "oops"), "history[1]"),
    ],
)
def test_bad_input_names_the_file_and_the_field(tmp_path, mutate, field):
    data = fx.algorithm_generated()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError) as err:
        load_whowhen_file(path)
    assert str(path) in str(err.value)
    assert repr(field) in str(err.value)
    assert err.value.field == field


def test_bad_jsonl_line_names_the_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(fx.tracertraj_row()) + "\n{not json\n")
    with pytest.raises(DatasetError, match=r"x\.jsonl:2"):
        load_tracertraj(path)
