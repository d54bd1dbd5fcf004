"""Following a step's fault to the step it was inherited from or passed on to (agenttrace.attribution.trace_back):
the links the trajectory shows, the traced distribution, and the verdict and claims of the cpu attributor."""

from __future__ import annotations

import numpy as np
import pytest

from agenttrace.attribution import claims as cl
from agenttrace.attribution.cpu import CpuAttributor, extract_features
from agenttrace.attribution.flow import BuiltOn, derivation
from agenttrace.attribution.provenance import off_task_arguments
from agenttrace.attribution.trace_back import causes, link_claims, root, trace
from agenttrace.lessons import lesson_for
from agenttrace.models import Step, ToolCall, Trajectory

TASK = "Add up the fare of Oslo-Vienna and Paris-Rome for date 2025-03-18. Reply with the total."


def _fare(route: str, date: str, value: int, tool: str = "get_fare") -> ToolCall:
    return ToolCall(name=tool, arguments={"route": route, "date": date},
                    result=f"economy fare {route} on {date}: {value} EUR")


def _handoff(agent: str) -> ToolCall:
    return ToolCall(name=f"transfer_to_{agent}", arguments={})


def _causes(traj: Trajectory) -> list[int]:
    _, flows = extract_features(traj, use_expected=False)
    return causes(traj.steps, flows)


def _verdict(traj: Trajectory):
    """The cpu verdict and its claims, every claim checked against the trajectory."""
    verdict, claims = CpuAttributor().explain(traj)
    assert cl.check_claims(traj, claims) == []
    return verdict, claims


def test_a_loop_is_followed_back_to_its_first_repeat_and_the_give_up_to_the_loop():
    call = _fare("Oslo-Vienna", "2025-03-18", 120)
    traj = Trajectory(run_id="loop", task=TASK, steps=[
        Step(index=0, agent="planner", content="fetcher, look up both fares for 2025-03-18.",
             tool_calls=[_handoff("fetcher")], transfer_to="fetcher"),
        Step(index=1, agent="fetcher", content="Looking up Oslo-Vienna.", tool_calls=[call]),
        Step(index=2, agent="fetcher", content="Looking up Oslo-Vienna.", tool_calls=[call]),
        Step(index=3, agent="fetcher", content="Looking up Oslo-Vienna.", tool_calls=[call]),
        Step(index=4, agent="fetcher", content="Looking up Oslo-Vienna.", tool_calls=[call]),
        Step(index=5, agent="fetcher", content="I keep getting the same result and cannot complete the task."),
    ])
    cause = _causes(traj)
    assert cause == [0, 1, 2, 2, 3, 4]  # step 1 is the lookup, step 2 the first repeat
    assert [root(j, cause) for j in range(6)] == [0, 1, 2, 2, 2, 2]
    verdict, claims = _verdict(traj)
    assert (verdict.agent, verdict.step) == ("fetcher", 2)
    assert cl.Repeats(2, 1) in claims


def test_a_value_a_user_states_is_the_users_when_a_call_uses_it():
    traj = Trajectory(run_id="user", task="What is the fare of Oslo-Vienna for date 2025-03-18?", steps=[
        Step(index=0, agent="human", role="human", content="Hi! I need the fare of Oslo-Rome for 2025-03-18.",
             tool_calls=[_handoff("assistant")]),
        Step(index=1, agent="assistant", content="Looking up Oslo-Rome.",
             tool_calls=[_fare("Oslo-Rome", "2025-03-18", 95)]),
        Step(index=2, agent="assistant", content="The fare is 95 EUR."),
    ])
    assert _causes(traj) == [0, 0, 2]
    _, flows = extract_features(traj, use_expected=False)
    [first] = link_claims(0, traj.steps, flows, _causes(traj))
    assert isinstance(first, cl.FirstToState) and first.holds(cl.View(traj))


def _team(plan: str, dates: tuple[str, str]) -> Trajectory:
    """planner -> fetcher (two lookups, on the dates given) -> writer."""
    return Trajectory(run_id="team", task=TASK, steps=[
        Step(index=0, agent="planner", content=plan, tool_calls=[_handoff("fetcher")], transfer_to="fetcher"),
        Step(index=1, agent="fetcher", content="Looking up Oslo-Vienna.",
             tool_calls=[_fare("Oslo-Vienna", dates[0], 120)]),
        Step(index=2, agent="fetcher", content="Looking up Paris-Rome.",
             tool_calls=[_fare("Paris-Rome", dates[1], 180)]),
        Step(index=3, agent="writer", content="In total: 300 EUR."),
    ])


def test_a_plan_that_leaves_out_the_tasks_date_carries_the_calls_that_use_another():
    traj = _team("Plan: fetcher looks up Oslo-Vienna, Paris-Rome, then we add them up.",
                 ("2025-03-04", "2025-03-04"))
    # the second call's date is in what the first call returned, so that call is read as taking it from there;
    # the writer's total is worked out of what the first call returned, so it goes there, and on to the plan
    assert _causes(traj) == [0, 0, 2, 1]
    verdict, claims = _verdict(traj)
    assert (verdict.agent, verdict.step) == ("planner", 0)
    assert any(isinstance(c, cl.DropsTaskValue) for c in claims)


def test_a_later_hand_over_that_leaves_out_the_date_the_plan_had_carries_the_call_that_uses_another():
    traj = Trajectory(run_id="later", task=TASK, steps=[
        Step(index=0, agent="lead", content="Plan: fetcher looks up Oslo-Vienna (date: 2025-03-18), then we add.",
             tool_calls=[_handoff("fetcher")], transfer_to="fetcher"),
        Step(index=1, agent="fetcher", content="Looking up Oslo-Vienna.",
             tool_calls=[_fare("Oslo-Vienna", "2025-03-18", 120)]),
        Step(index=2, agent="fetcher", content="Results: Oslo-Vienna: 120 EUR. Next speaker: lead",
             tool_calls=[_handoff("lead")], transfer_to="lead"),
        Step(index=3, agent="lead", content="Next: scout should get Paris-Rome.",
             tool_calls=[_handoff("scout")], transfer_to="scout"),
        Step(index=4, agent="scout", content="Looking up Paris-Rome.", tool_calls=[_fare("Paris-Rome", "2025-03-04", 95)]),
        Step(index=5, agent="scout", content="Results: Paris-Rome: 95 EUR.", tool_calls=[_handoff("lead")],
             transfer_to="lead"),
        Step(index=6, agent="lead", content="In total: 215 EUR."),
    ])
    # the fetcher's call had the date, the lead's hand-over to the scout did not; the fetcher's report names the
    # lead and hands it back, but reports what its tool returned: no hand-over of work, so the chain stops there
    [arg] = off_task_arguments(traj)
    assert (arg.call, arg.given_at, arg.lost_at) == (4, 1, 3)
    assert _causes(traj)[4] == 3
    verdict, claims = _verdict(traj)
    assert (verdict.agent, verdict.step) == ("lead", 3)
    assert cl.DropsTaskValue(3, ("2025-03-18",), 4, "get_fare", "date", "2025-03-04") in claims
    view = cl.View(traj)
    assert not cl.DropsTaskValue(2, ("2025-03-18",), 4, "get_fare", "date", "2025-03-04").holds(view)  # not its hand-over


def test_a_hand_off_to_the_agent_with_only_the_unasked_tool_carries_its_turn():
    task = "What are the fares of Oslo-Vienna and Paris-Rome for date 2025-03-18? Use current data."
    traj = Trajectory(run_id="handoff", task=task, steps=[
        Step(index=0, agent="lead", content="librarian, please look up Oslo-Vienna (date: 2025-03-18).",
             tool_calls=[_handoff("librarian")], transfer_to="librarian"),
        Step(index=1, agent="librarian", content="Checking Oslo-Vienna.",
             tool_calls=[_fare("Oslo-Vienna", "2025-03-18", 88, tool="get_archived_fare")]),
        Step(index=2, agent="librarian", content="Oslo-Vienna: 88 EUR.", tool_calls=[_handoff("lead")],
             transfer_to="lead"),
        Step(index=3, agent="lead", content="scout, please check Paris-Rome (date: 2025-03-18).",
             tool_calls=[_handoff("scout")], transfer_to="scout"),
        Step(index=4, agent="scout", content="Checking Paris-Rome.",
             tool_calls=[_fare("Paris-Rome", "2025-03-18", 180)]),
        Step(index=5, agent="lead", content="The fare of Oslo-Vienna is 88 EUR."),
    ])
    assert _causes(traj) == [0, 0, 0, 3, 4, 5]


def test_a_callers_own_wrong_argument_stays_its_own():
    traj = _team("Plan: fetcher looks up Oslo-Vienna, Paris-Rome (date: 2025-03-18).",
                 ("2025-03-18", "2025-03-11"))
    assert _causes(traj) == [0, 1, 2, 2]  # and the writer's total, worked out of what that call returned, is its


def test_tracing_moves_each_steps_probability_to_its_root():
    p = np.array([0.1, 0.2, 0.3, 0.4])
    assert trace(p, [0, 0, 1, 3]).tolist() == pytest.approx([0.6, 0.0, 0.0, 0.4])


def _lookup_fails(route: str, error: str) -> list[Step]:
    """The lead hands the work to a fetcher, whose first call fails with ``error``."""
    failed = ToolCall(name="get_fare", arguments={"route": route, "date": "2025-03-18"}, error=error)
    return [Step(index=0, agent="lead", content="fetcher, look up Oslo-Vienna and Paris-Rome for 2025-03-18.",
                 tool_calls=[_handoff("fetcher")], transfer_to="fetcher"),
            Step(index=1, agent="fetcher", content=f"Looking up {route}.", tool_calls=[failed])]


def _failed_lookup(route: str) -> Trajectory:
    """A fetcher whose first call fails, then goes on with a fare of its own for that route."""
    return Trajectory(run_id="flaky", task=TASK, steps=[
        *_lookup_fails(route, f"get_fare timed out for {route}; the request can be retried"),
        Step(index=2, agent="fetcher", content=f"The lookup of {route} failed; I'll assume 95 EUR. Next Paris-Rome.",
             tool_calls=[_fare("Paris-Rome", "2025-03-18", 180)]),
        Step(index=3, agent="lead", content="In total: 275 EUR."),
    ])


_TIMED_OUT = "get_fare timed out for {}; the request can be retried"


_ASSUMED_IN_TOTAL = cl.AnswerBuiltOn(2, 3, "", "95", "275")  # the lead adds the assumed 95 into its 275


@pytest.mark.parametrize("route, cause, blamed, claims", [
    # a timeout: the environment's doing, so the fault goes forward to the act that assumes a fare instead
    ("Oslo-Vienna", [0, 2, 2, 2], 2,
     [cl.GoesOnAfterFailure(2, 1, "get_fare", _TIMED_OUT.format("Oslo-Vienna")), _ASSUMED_IN_TOTAL]),
    # the caller's typo (no input says "Olso"): the assumption's fault goes back to the call the typo broke
    ("Olso-Vienna", [0, 1, 1, 2], 1, [cl.FailureGoneAround(1, 2, "get_fare", _TIMED_OUT.format("Olso-Vienna"))]),
])
def test_a_failed_call_and_the_act_that_goes_on_without_it_share_one_fault(route, cause, blamed, claims):
    traj = _failed_lookup(route)
    assert _causes(traj) == cause
    assert trace(np.array([0.1, 0.3, 0.4, 0.2]), cause).tolist() == pytest.approx(
        [0.1, 0.9 if blamed == 1 else 0.0, 0.9 if blamed == 2 else 0.0, 0.0])
    _, flows = extract_features(traj, use_expected=False)
    assert link_claims(blamed, traj.steps, flows, cause) == claims and cl.check_claims(traj, claims) == []
    verdict, _ = _verdict(traj)
    assert (verdict.agent, verdict.step) == ("fetcher", blamed)
    assert claims[0].clause(cl.View(traj)) in verdict.reason


def test_the_reason_quotes_an_assumption_whole_and_once():
    from agenttrace.attribution.cpu import FEATURES, StepModel

    weights = np.zeros(len(FEATURES))
    weights[FEATURES.index("assume_here")] = 5.0  # a model that reads only assumptions
    reads_assumptions = CpuAttributor(model=StepModel(weights, np.zeros(len(FEATURES)), np.ones(len(FEATURES))))
    traj = _failed_lookup("Oslo-Vienna")
    traj.steps[2].content = "The lookup of Oslo-Vienna failed; I'll assume 95.5 EUR. Next Paris-Rome."
    traj.steps[3].content = "In total: 275.5 EUR."
    verdict, claims = reads_assumptions.explain(traj)
    assert cl.check_claims(traj, claims) == [] and verdict.step == 2
    [assumes] = [c for c in claims if isinstance(c, cl.Assumes)]
    assert assumes.text == "The lookup of Oslo-Vienna failed; I'll assume 95.5 EUR."  # a decimal point ends no sentence
    assert not any(type(c) is cl.Says for c in claims) and "it says" not in verdict.reason  # not quoted twice


def test_a_retry_is_not_a_work_around():
    traj = _failed_lookup("Oslo-Vienna")
    retry = traj.steps[1].tool_calls[0].model_copy(update={"error": None, "result": "economy fare: 120 EUR"})
    traj.steps[2].tool_calls.append(retry)
    assert _causes(traj)[1] == 1


def test_links_that_come_round_stop_before_they_repeat():
    assert root(0, [1, 0]) == 1 and root(1, [1, 0]) == 0


@pytest.mark.parametrize("route, cause", [
    ("Oslo-Vienna", [0, 1, 2, 3]),  # a timeout: the agent that says nothing of it keeps its own fault
    ("Olso-Vienna", [0, 1, 1, 3]),  # the caller's typo: saying nothing of the failure it caused is the same fault
])
def test_going_on_without_a_word_after_a_call_its_own_argument_broke(route, cause):
    traj = _failed_lookup(route)
    traj.steps[2].content = "Next Paris-Rome."
    assert _causes(traj) == cause
    if cause[2] == 1:
        _, flows = extract_features(traj, use_expected=False)
        claims = link_claims(1, traj.steps, flows, cause)
        assert claims == [cl.FailureGoneAround(1, 2, "get_fare", _TIMED_OUT.format(route))]
        assert cl.check_claims(traj, claims) == []


def _price(product: str, value: int) -> ToolCall:
    return ToolCall(name="get_price", arguments={"product": product}, result=f"{product}: {value} EUR per unit")


def test_a_total_worked_out_of_a_lookup_of_the_wrong_item_carries_to_that_lookup():
    traj = Trajectory(run_id="built", task="Add up the price of 2 x kettle and 1 x lamp. Reply with the total.",
                      answer="The total is 156 EUR.", steps=[
        Step(index=0, agent="lead", content="fetcher, look up kettle and lamp.", tool_calls=[_handoff("fetcher")],
             transfer_to="fetcher"),
        Step(index=1, agent="fetcher", content="Checking kettle.", tool_calls=[_price("kettle", 40)]),
        Step(index=2, agent="fetcher", content="Checking lamp.", tool_calls=[_price("wall clock", 76)]),
        Step(index=3, agent="fetcher", content="Done. kettle: 40 EUR; lamp: 76 EUR."),
        Step(index=4, agent="lead", content="The total is 156 EUR."),
    ])
    _, flows = extract_features(traj, use_expected=False)
    assert flows[4].underived == [] and flows[4].built_on == BuiltOn(2, "get_price", "76", "156")
    cause = causes(traj.steps, flows)
    assert cause == [0, 1, 2, 3, 2]
    claims = link_claims(2, traj.steps, flows, cause)
    assert claims == [cl.AnswerBuiltOn(2, 4, "get_price", "76", "156")] and cl.check_claims(traj, claims) == []
    assert claims[0].clause(cl.View(traj)) == (
        "the 76 its get_price call returned is among the inputs of step 4 (lead), which answers 156")
    right = traj.model_copy(deep=True)
    right.steps[2].tool_calls[0] = _price("lamp", 76)  # the same total, from a lookup of the item the task asks for
    assert extract_features(right, use_expected=False)[1][4].built_on is None


def test_a_number_is_worked_out_the_most_direct_way_the_inputs_allow():
    singles = [(v, (v,)) for v in ("35", "19", "8", "24")]
    # 35 + 8 makes 43 by chance; the total of the values last reported (19 + 24) is what the step was given
    assert derivation("43", singles + [("43", ("19", "24"))]) == ("19", "24")
    assert derivation("43", singles) == ("35", "8")
    # 178 + 64 + 79 + 235 = 556 is within 1% of 553, but 178 + 79 + 235 + 61 is 553 to the cent
    fares = [(v, (v,)) for v in ("178", "64", "79", "235", "61")]
    assert derivation("553", fares + [("553", ("178", "79", "235", "61"))]) == ("178", "79", "235", "61")
    assert derivation("556.5", fares) == ("178", "64", "79", "235")
    assert derivation("1000", fares) is None


def test_a_total_worked_out_of_a_misreported_result_carries_to_the_misreport():
    traj = Trajectory(run_id="misread", task="Add up the price of 2 x kettle and 1 x lamp. Reply with the total.",
                      answer="The total is 146 EUR.", steps=[
        Step(index=0, agent="fetcher", content="Checking kettle and lamp.",
             tool_calls=[_price("kettle", 40), _price("lamp", 76)]),
        Step(index=1, agent="fetcher", content="kettle: 40 EUR; lamp: 66 EUR."),  # the lamp's 76 misread
        Step(index=2, agent="writer", content="The total is 146 EUR."),
    ])
    _, flows = extract_features(traj, use_expected=False)
    assert flows[1].underived == ["66"] and flows[2].built_on == BuiltOn(1, "", "66", "146")
    cause = causes(traj.steps, flows)
    assert cause == [0, 1, 1]
    claims = link_claims(1, traj.steps, flows, cause)
    assert claims == [cl.AnswerBuiltOn(1, 2, "", "66", "146")] and cl.check_claims(traj, claims) == []
    assert claims[0].clause(cl.View(traj)) == "the 66 it states is among the inputs of step 2 (writer), which answers 146"


def _stops_after_failure(route: str, stop_calls: list[ToolCall] | None = None) -> Trajectory:
    """A fetcher whose call fails on a service that is down; it says so and stops, and the lead passes that on."""
    return Trajectory(run_id="down", task=TASK, steps=[
        *_lookup_fails(route, f"get_fare service unavailable (503) for {route}"),
        Step(index=2, agent="fetcher", content="get_fare is down, so I cannot finish this task.",
             tool_calls=stop_calls or []),
        Step(index=3, agent="lead", content="get_fare is down, so we cannot finish this task."),
    ])


@pytest.mark.parametrize("stop_calls", [None, [ToolCall(  # smolagents says its last words through a tool
    name="final_answer", arguments={"answer": "get_fare is down, so I cannot finish this task."})]])
def test_a_run_that_stops_at_a_service_that_is_down_is_the_environments_fault(stop_calls):
    traj = _stops_after_failure("Oslo-Vienna", stop_calls)
    assert _causes(traj) == [0, 1, 1, 3]  # the stop inherits from the failed call
    verdict, claims = _verdict(traj)
    assert (verdict.agent, verdict.step) == ("environment", 1) and verdict.candidates[0].agent == "environment"
    assert "the environment's doing, not fetcher's" in verdict.reason
    [stop] = [c for c in claims if isinstance(c, cl.StopsAtFailure)]
    assert (stop.pos, stop.stop, stop.tool) == (1, 2, "get_fare") and stop.clause(cl.View(traj)) in verdict.reason
    assert lesson_for(verdict, traj) is None and verdict.advice == ""  # no agent learns from a service that was down


def test_a_run_that_ends_at_a_service_that_is_down_is_the_environments_whatever_step_the_model_puts_first():
    from agenttrace.attribution.cpu import FEATURES, StepModel

    weights = np.zeros(len(FEATURES))
    weights[FEATURES.index("is_first")] = 5.0  # a model sure that the lead's opening turn is the error
    first_step = CpuAttributor(model=StepModel(weights, np.zeros(len(FEATURES)), np.ones(len(FEATURES))))
    traj = _stops_after_failure("Oslo-Vienna")
    assert int(np.argmax(first_step.step_probabilities(traj))) == 0
    verdict, claims = first_step.explain(traj)
    assert cl.check_claims(traj, claims) == []
    assert (verdict.agent, verdict.step) == ("environment", 1) and verdict.uncertain  # the model put it elsewhere
    assert any(isinstance(c, cl.StopsAtFailure) for c in claims)


def test_a_stop_at_a_failure_the_callers_own_argument_caused_or_after_a_guess_is_an_agents():
    typo = _stops_after_failure("Olso-Vienna")  # no input says "Olso": the caller broke its own call
    assert _causes(typo)[2] == 2 and _verdict(typo)[0].agent != "environment"
    guess = _stops_after_failure("Oslo-Vienna")
    guess.steps[3].content = "Then we take 95 EUR for Oslo-Vienna: 275 EUR in total."  # a value of its own after it
    assert _causes(guess)[2] == 2 and _verdict(guess)[0].agent != "environment"
    claim = cl.StopsAtFailure(1, 2, "get_fare", "get_fare service unavailable (503)")
    assert cl.check_claims(guess, [claim]) == [claim]  # the checker refuses it there


def _gives_up_after_timeout(retried: bool, error: str = _TIMED_OUT.format("Oslo-Vienna")) -> Trajectory:
    """A fetcher whose call times out with an error that says it can be retried; it says so and stops (after one
    retry that times out again, when ``retried``), and the lead passes that on."""
    steps = _lookup_fails("Oslo-Vienna", error)
    if retried:
        steps.append(steps[1].model_copy(update={"index": 2, "content": "Timeout on Oslo-Vienna, trying once more."}))
    return Trajectory(run_id="timeout", task=TASK, steps=[
        *steps,
        Step(index=len(steps), agent="fetcher", content="The get_fare call failed; I have to stop here."),
        Step(index=len(steps) + 1, agent="lead", content="get_fare failed, so we cannot finish this task."),
    ])


def test_a_stop_at_a_timeout_never_retried_is_the_agents_giving_up_not_the_environments():
    traj = _gives_up_after_timeout(retried=False)
    _, flows = extract_features(traj, use_expected=False)
    assert flows[2].gives_up_at == 1 and flows[2].stops_at is None  # a retry would have got past it
    assert _causes(traj) == [0, 2, 2, 3]  # the timeout's fault goes forward to the step that did not retry
    verdict, claims = _verdict(traj)
    assert (verdict.agent, verdict.step) == ("fetcher", 2)
    claim = cl.GivesUpAtRetryable(2, 1, "get_fare", _TIMED_OUT.format("Oslo-Vienna"))
    assert claim in claims and claim.clause(cl.View(traj)) in verdict.reason
    # the lesson tells the agent what to do instead: the claim's advice
    advice = "when get_fare fails with an error that says to try again, call it again before giving up"
    assert verdict.advice.startswith(advice)
    assert lesson_for(verdict, traj).text.endswith(f"Next time, {verdict.advice}.")
    assert not any(isinstance(c, cl.StopsAtFailure) for c in claims)
    # the same words after a service that is down, or after a timeout the agent did retry: the environment's
    down = _stops_after_failure("Oslo-Vienna")
    assert cl.check_claims(down, [cl.GivesUpAtRetryable(2, 1, "get_fare", "get_fare service unavailable (503)")])
    retried = _gives_up_after_timeout(retried=True)
    _, flows = extract_features(retried, use_expected=False)
    assert flows[3].stops_at == 2 and flows[3].gives_up_at is None
    assert cl.check_claims(retried, [cl.GivesUpAtRetryable(3, 2, "get_fare", _TIMED_OUT.format("Oslo-Vienna"))])
    assert (_verdict(retried)[0].agent, _verdict(retried)[0].step) == ("environment", 2)


@pytest.mark.parametrize(("error", "retryable"), [
    ("get_fare failed: HTTP 429", True), ("get_fare failed with status code 408", True),
    ("get_fare failed: HTTP 504", True), ("get_fare failed: HTTP 503", False),
    ("get_fare failed: HTTP 503, retry after 30 s", True), ("get_fare found 429 fares but none for Oslo-Vienna", False),
])
def test_an_http_status_that_means_try_again_is_one_to_retry_and_a_bare_503_an_outage(error, retryable):
    _, flows = extract_features(_gives_up_after_timeout(retried=False, error=error), use_expected=False)
    assert (flows[2].gives_up_at, flows[2].stops_at) == ((1, None) if retryable else (None, 1))


def test_a_run_labelled_on_the_environment_is_scored_but_not_fitted_on():
    from agenttrace.attribution.cpu_fit import Featurised, Rows, scorable, usable, verdicts
    from agenttrace.models import Label, LabelledTrajectory

    def labelled(agent: str, step: int) -> LabelledTrajectory:
        return LabelledTrajectory(id=f"{agent}@{step}", subset="t", trajectory=_stops_after_failure("Oslo-Vienna"),
                                  label=Label(agent=agent, step=step))

    down, agents, wrong = labelled("environment", 1), labelled("fetcher", 1), labelled("lead", 1)
    assert scorable([down, agents, wrong]) == [down, agents]  # the step's agent, or the environment
    assert usable([down, agents, wrong]) == [agents]  # the environment verdict is a rule, not fitted

    # a run a reviewer pinned on the fetcher: the fit scores the verdict the attributor gives, the environment's
    rows = Rows({"reviewed": Featurised([agents])})
    uniform = np.ones(len(rows.x)) / len(agents.trajectory.steps)
    assert verdicts(uniform, rows, (True, 1.0)) == [(False, True)] * 2  # with and without the ground truth


def test_a_total_worked_out_of_a_turn_that_handed_back_without_an_item_carries_to_that_turn():
    traj = Trajectory(run_id="without", task="Add up the price of 2 x kettle, 1 x lamp and 1 x wall clock.",
                      answer="The total is 156 EUR.", steps=[
        Step(index=0, agent="lead", content="fetcher, look up kettle, lamp and wall clock.",
             tool_calls=[_handoff("fetcher")], transfer_to="fetcher"),
        Step(index=1, agent="fetcher", content="Checking kettle.", tool_calls=[_price("kettle", 40)]),
        Step(index=2, agent="fetcher", content="Checking lamp.", tool_calls=[_price("lamp", 76)]),
        Step(index=3, agent="fetcher", content="Done. kettle: 40 EUR; lamp: 76 EUR."),
        Step(index=4, agent="lead", content="The total is 156 EUR."),
    ])
    _, flows = extract_features(traj, use_expected=False)
    assert flows[3].left_out is not None and flows[4].underived == []  # 2 x 40 + 76: right on what it had
    cause = causes(traj.steps, flows)
    assert cause == [0, 1, 2, 3, 3]
    claims = link_claims(3, traj.steps, flows, cause)
    assert claims == [cl.AnswerWithout(3, 0, ("wall clock",), 4, "156")] and cl.check_claims(traj, claims) == []
    assert claims[0].clause(cl.View(traj)) == "step 4 (lead) works out its 156 without 'wall clock'"
    verdict, _ = _verdict(traj)
    assert (verdict.agent, verdict.step) == ("fetcher", 3)
    # once a step names the missing item, the total is no longer worked out without it
    asked = traj.model_copy(deep=True)
    asked.steps.insert(4, Step(index=4, agent="lead", content="The wall clock was not found; leaving it out."))
    asked.steps[5] = asked.steps[5].model_copy(update={"index": 5})
    assert causes(asked.steps, extract_features(asked, use_expected=False)[1])[5] == 5
