"""Specification of agenttrace.data.baselines: the trivial predictors an attributor must beat, and the margin."""

from __future__ import annotations

from agenttrace.data.baselines import compare, is_oracle, margins, trivial_baselines
from agenttrace.models import Label, LabelledTrajectory, Step, ToolCall, Trajectory


def _run(run_id: str, label: tuple[str, int]) -> LabelledTrajectory:
    """user asks, planner plans, coder calls a tool that fails, coder answers twice, checker signs off."""
    steps = [
        Step(index=0, agent="user", role="user", content="Sum the sales of May."),
        Step(index=1, agent="planner", content="Ask the coder to add up the May rows."),
        Step(index=2, agent="coder", content="Reading the sheet.",
             tool_calls=[ToolCall(name="read_sheet", arguments={"month": "June"}, error="sheet not found")]),
        Step(index=3, agent="coder", content="The total is 40."),
        Step(index=4, agent="coder", content="Done: 40."),
        Step(index=5, agent="checker", content="Looks right."),
    ]
    traj = Trajectory(run_id=run_id, task="Sum the sales of May.", steps=steps)
    return LabelledTrajectory(id=run_id, subset="t", trajectory=traj, label=Label(agent=label[0], step=label[1]))


def test_each_baseline_names_what_its_name_says():
    scored = [_run("a", ("coder", 2)), _run("b", ("coder", 3)), _run("c", ("planner", 1))]
    known = [_run("k", ("checker", 5))]
    base = trivial_baselines(scored, known)
    traj = scored[0].trajectory
    assert {name: fn(traj) for name, fn in base.items()} == {
        "constant agent (train)": ("checker", 5),
        "constant agent (oracle)": ("coder", 2),  # an agent alone is given its first step
        "most frequent agent of run": ("coder", 2),
        "first agent step": ("planner", 1),  # the person's turn is not a candidate
        "last step": ("checker", 5),
        "most frequent step (train)": ("checker", 5),
        "most frequent step (oracle)": ("coder", 2),  # steps 2, 3, 1 once each: the first seen wins
        "first error step": ("coder", 2),
    }


def test_without_known_runs_only_the_oracle_labels_are_used():
    names = trivial_baselines([_run("a", ("coder", 2))])
    assert not any("train" in name for name in names)
    assert [name for name in names if is_oracle(name)] == ["constant agent (oracle)", "most frequent step (oracle)"]


def test_a_step_past_the_end_of_a_short_run_is_its_last_step():
    short = _run("s", ("coder", 2))
    short.trajectory.steps = short.trajectory.steps[:3]
    base = trivial_baselines([short], [_run("k", ("checker", 5))])
    assert base["most frequent step (train)"](short.trajectory) == ("coder", 2)


def test_margin_is_over_the_strongest_baseline_at_each_level():
    ours = ([True, True, True, False], [True, False, True, False])
    theirs = {"weak": ([False] * 4, [False] * 4), "strong": ([True, True, False, False], [True, False, False, False])}
    agent, step = margins(ours, theirs)
    assert (agent.level, agent.baseline, agent.ours, agent.theirs) == ("agent", "strong", 0.75, 0.5)
    assert (step.level, step.baseline, step.margin) == ("step", "strong", 0.25)
    assert agent.low <= agent.margin <= agent.high
    assert agent.beats_by(0.25) and not agent.beats_by(0.26)


def test_compare_scores_the_attributor_and_every_baseline_on_the_same_runs():
    scored = [_run("a", ("coder", 3)), _run("b", ("coder", 3)), _run("c", ("planner", 1))]
    c = compare([("coder", 3), ("coder", 3), ("planner", 1)], scored)
    assert c.n == 3 and c.ours == (1.0, 1.0)
    assert c.baselines["first error step"] == (2 / 3, 0.0)
    assert c.baselines["most frequent step (oracle)"] == (2 / 3, 2 / 3)
    assert [m.baseline for m in c.margins] == ["constant agent (oracle)", "most frequent step (oracle)"]
    assert c.as_dict()["margins"][1]["margin"] == 1 - 2 / 3
