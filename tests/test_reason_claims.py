"""Every claim in a cpu reason is true of its trajectory, and the checker catches claims that are not."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import whowhen_fixtures as fx  # noqa: E402
from eiffel import eiffel_run  # noqa: E402

from agenttrace.attribution import claims as cl  # noqa: E402
from agenttrace.attribution.cpu import CpuAttributor  # noqa: E402
from agenttrace.attribution.flow import read_flow  # noqa: E402
from agenttrace.data.datasets import from_whowhen  # noqa: E402
from agenttrace.data.faults import applicable_kinds, perturb_step  # noqa: E402
from agenttrace.lessons import lesson_for  # noqa: E402
from agenttrace.models import Step, ToolCall, Trajectory  # noqa: E402


def _tool_run(seed: int) -> Trajectory:
    """A small successful run with tool calls: a planner, a searcher whose tool returns the facts, a writer."""
    a, b = 10 + seed, 3 + seed % 7
    return Trajectory(run_id=f"tool-{seed}", task=f"Order {a} boxes of {b} pens each. How many pens in total?",
                      answer=str(a * b), steps=[
        Step(index=0, agent="planner", content=f"1. searcher: look up the price list.\n2. writer: multiply {a} by {b}.",
             transfer_to="searcher"),
        Step(index=1, agent="searcher", content="Checking the catalogue.", tool_calls=[
            ToolCall(id="c1", name="catalogue", arguments={"boxes": a, "per_box": b}, result=f"{a * b} pens, {a + 5} euro")]),
        Step(index=2, agent="searcher", content=f"The catalogue says {a * b} pens.", input=f"{a * b} pens"),
        Step(index=3, agent="writer", content=f"In total {a * b} pens."),
        Step(index=4, agent="user", role="user", content="Thanks."),
    ])


def fixture_set() -> list[Trajectory]:
    """Who&When/TracerTraj-shaped runs and tool runs, each with one fault injected by agenttrace.data.faults."""
    out = [from_whowhen(make(seed)).trajectory for seed in range(6)
           for make in (fx.hand_crafted, fx.algorithm_generated, fx.tracertraj_row)]
    rng = random.Random(3)
    for seed in range(12):
        run = _tool_run(seed)
        for pos, step in enumerate(run.steps):
            for kind in applicable_kinds(step):
                changed = perturb_step(step, kind, rng)
                if changed:
                    steps = list(run.steps)
                    steps[pos] = changed[0]
                    answer = steps[3].content.split()[-2] if pos == 3 else run.answer
                    out.append(run.model_copy(update={"steps": steps, "answer": answer,
                                                      "run_id": f"{run.run_id}-{pos}-{kind}"}))
    return out


def test_every_claim_of_every_reason_holds_and_the_reason_is_made_of_them():
    att = CpuAttributor()
    runs = fixture_set()
    assert len(runs) > 60
    said = 0
    for traj in runs:
        for use_g in (True, False):
            verdict, claims = CpuAttributor(use_expected=use_g, model=att.model).explain(traj)
            view = cl.View(traj)
            assert cl.check_claims(traj, claims, view) == [], (traj.run_id, verdict.reason)
            pos = next(i for i, s in enumerate(traj.steps) if s.index == verdict.step)
            assert verdict.reason.startswith(f"Step {verdict.step} by {verdict.agent} ")
            assert verdict.reason.endswith(cl.render_reason(view, pos, claims, "x").split(": ", 1)[1])
            said += len(claims)
    assert said > len(runs)  # reasons do make claims


def test_the_checker_rejects_false_claims():
    run = _tool_run(0)  # the catalogue returns "30 pens, 15 euro"; the searcher relays 30
    view = cl.View(run)
    assert cl.IntroducesNumber(2, "30").holds(view) is False  # it came from the tool result
    assert cl.IntroducesNumber(1, "30").holds(view) is False  # not in the step's own text at all
    assert cl.Says(2, "The catalogue says 30 pens.").holds(view)
    assert not cl.Says(1, "30 pens").holds(view)  # the tool said it, not the agent
    assert cl.ReachesAnswer(3, "30").holds(view) and not cl.ReachesAnswer(3, "15").holds(view)
    assert cl.ToolReturnReachesAnswer(1, "catalogue", "30").holds(view)
    assert not cl.CallsWithUngivenArgument(1, "catalogue", "boxes", "10", "10").holds(view)  # 10 is in the task
    assert cl.FirstTurn(1).holds(view) and not cl.FirstTurn(2).holds(view)
    assert cl.HandsOff(0, "searcher").holds(view) and not cl.HandsOff(1, "searcher").holds(view)
    assert not cl.ReportsProblem(3, "error").holds(view)
    assert not cl.NextReportsProblem(0, "error").holds(view)
    assert not cl.LeavesOut(0, ("10",)).holds(view) and cl.LeavesOut(0, ("boxes",)).holds(view)  # it says 10, not boxes
    assert cl.check_claims(run, [cl.IntroducesNumber(2, "30"), cl.FirstAction(0)]) == [cl.IntroducesNumber(2, "30")]


def test_the_issue_example_is_said_in_the_runs_own_terms():
    traj = eiffel_run()
    view = cl.View(traj)
    claims = [cl.CallsWithUngivenArgument(0, "web_search", "as_of_year", "1889", "1889"),
              cl.ToolReturnReachesAnswer(0, "web_search", "300")]
    assert cl.check_claims(traj, claims) == []
    assert cl.render_reason(view, 0, claims, "is to blame") == (
        "Step 0 by searcher is to blame: it called web_search with as_of_year=1889, whose 1889 is in neither the "
        "task nor anything it was given; the 300 that web_search returned reaches the final answer.")
    assert not cl.IntroducesNumber(1, "300").holds(view)  # the writer relays the tool's number


def test_lessons_quote_only_what_the_agent_itself_wrote():
    run = _tool_run(1)
    verdict, _ = CpuAttributor().explain(run)
    lesson = lesson_for(verdict.model_copy(update={"agent": "searcher", "step": 1}), run)
    assert 'You wrote: "Checking the catalogue.' in lesson.text
    assert "euro" not in lesson.text  # the tool's result is not something the agent wrote


def test_a_tool_argument_with_a_word_nothing_gave_the_agent():
    traj = Trajectory(run_id="route", task="Add up the fares of Oslo-Vienna and Warsaw-Zurich.", steps=[
        Step(index=0, agent="analyst", content="Let me get Oslo-Vienna.", tool_calls=[
            ToolCall(name="get_fare", arguments={"route": "Berlin-Madrid"}, result="Berlin-Madrid: 95 EUR")]),
        Step(index=1, agent="analyst", content="", tool_calls=[
            ToolCall(name="get_fare", arguments={"route": "Warsaw-Zurich"}, result="Warsaw-Zurich: 330 EUR")]),
    ])
    view = cl.View(traj)
    assert cl.CallsWithUnseenWord(0, "get_fare", "route", "Berlin-Madrid", "berlin-madrid").holds(view)
    assert not cl.CallsWithUnseenWord(1, "get_fare", "route", "Warsaw-Zurich", "warsaw-zurich").holds(view)  # in the task
    assert not cl.CallsWithUnseenWord(1, "get_fare", "route", "Berlin-Madrid", "berlin-madrid").holds(view)  # not its call
    assert read_flow(traj)[0].unseen_argument == ("get_fare", "route", "Berlin-Madrid", "berlin-madrid")
    assert read_flow(traj)[1].unseen_argument is None


def test_an_assumption_word_is_said_as_what_it_is():
    """A stand-in, a hedge and a change of course are each called what they are, not all "an assumption"."""
    def said(text: str, word: str) -> str:
        traj = Trajectory(run_id="a", task="How many pens?", answer="42",
                          steps=[Step(index=0, agent="analyst", content=text)])
        claim = cl.Assumes(0, text, word)
        assert cl.check_claims(traj, [claim]) == []
        return claim.clause(cl.View(traj))

    assert said("I will use a placeholder count of 42.", "placeholder").startswith("it works with a stand-in:")
    assert said("There are approximately 42.", "approximately").startswith("it hedges:")
    assert said("Instead, I will count them by hand.", "instead").startswith("it goes another way:")
    assert said("Assuming a box holds 42.", "assuming").startswith("it rests on an assumption:")


def test_a_plan_that_leaves_out_the_tasks_values_is_said_to_leave_out_those_first():
    from agenttrace.attribution.cpu import evidence_claims, extract_features

    traj = Trajectory(run_id="plan", task="For region APAC, find the most expensive of these using current data: "
                                          "coffee grinder, water bottle.", steps=[
        Step(index=0, agent="planner", content="Steps: 1) scout looks up the unit price of coffee grinder; "
                                               "2) we find the most expensive."),
        Step(index=1, agent="scout", content="Looking up the price using current data.",
             tool_calls=[ToolCall(name="get_price", arguments={"item": "coffee grinder"}, result="48 EUR")]),
    ])
    _, flows = extract_features(traj, use_expected=False)
    [leaves_out] = evidence_claims(cl.View(traj), 0, "task_drop", flows[0], None)
    # the task's value first, then what no later step says again (the water bottle is never looked up) before
    # what the scout says again ("using current data"), each in the task's order
    assert leaves_out.words == ("apac", "region", "water")
    assert leaves_out.holds(cl.View(traj))
    assert leaves_out.clause(cl.View(traj)) == "what it writes leaves out the task's 'APAC', 'region', 'water'"
