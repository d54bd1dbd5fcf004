"""Where an off-task tool argument came from, where the task's value was lost, picks against the inputs,
turns that leave out what they were handed, tools nothing asked for, and results that arrive late
(agenttrace.attribution.provenance, .picks, .coverage, .alternatives, .flow.arrivals): what the cpu
attributor reads, and the claims its reasons make of it, which must hold."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agenttrace.attribution import claims as cl
from agenttrace.attribution.cpu import FEATURES, CpuAttributor, evidence_claims, extract_features
from agenttrace.attribution.coverage import items, left_out
from agenttrace.attribution.flow import arrivals, read_flow, speaks
from agenttrace.attribution.picks import direction, picks
from agenttrace.attribution.provenance import off_task_arguments
from agenttrace.models import Step, ToolCall, Trajectory

TASK = "Add up the fare of Oslo-Vienna and Paris-Rome for date 2025-03-18. Reply with the total."


def _fare(route: str, date: str, value: int) -> ToolCall:
    return ToolCall(name="get_fare", arguments={"route": route, "date": date},
                    result=f"economy fare {route} on {date}: {value} EUR")


def _team(plan: str, dates: tuple[str, str], answer: str = "In total: 300 EUR.") -> Trajectory:
    """planner -> fetcher (two lookups) -> writer."""
    return Trajectory(run_id="t", task=TASK, answer=answer, steps=[
        Step(index=0, agent="planner", content=plan, tool_calls=[ToolCall(name="transfer_to_fetcher", arguments={})],
             transfer_to="fetcher"),
        Step(index=1, agent="fetcher", content="Looking up Oslo-Vienna.", tool_calls=[_fare("Oslo-Vienna", dates[0], 120)]),
        Step(index=2, agent="fetcher", content="Looking up Paris-Rome.", tool_calls=[_fare("Paris-Rome", dates[1], 180)]),
        Step(index=3, agent="fetcher", content="Oslo-Vienna: 120 EUR; Paris-Rome: 180 EUR.", transfer_to="writer",
             tool_calls=[ToolCall(name="transfer_to_writer", arguments={})]),
        Step(index=4, agent="writer", content=answer),
    ])


def _col(name: str) -> int:
    return FEATURES.index(name)


def _holds(traj: Trajectory) -> list[cl.Claim]:
    """The claims of the cpu reason for ``traj``, asserted true and rendered into the reason."""
    verdict, claims = CpuAttributor().explain(traj)
    assert cl.check_claims(traj, claims) == []
    for claim in claims:
        assert claim.clause(cl.View(traj)) in verdict.reason
    return claims


def test_what_the_users_opening_turn_attaches_to_the_task_is_given_not_made_up():
    """A log whose user turn states the task and attaches a file's contents: a word of the file that a later call
    uses was given to the run. Neither the user nor the agent repeating it made it up, and no reason says it is
    "not in the task"; a word nothing gave stays off-task, from the step that first said it."""
    question = "How many slides in this presentation mention crustaceans?"
    request = question + "\n\nHere are the file's contents:\n# Slide 1: crayfish\n# Slide 2: eels"
    traj = Trajectory(run_id="t", task=question, answer="1", steps=[
        Step(index=0, agent="human", role="human", content=request),
        Step(index=1, agent="planner", content="Plan: check whether crayfish are crustaceans, then count them.",
             transfer_to="searcher", tool_calls=[ToolCall(name="transfer_to_searcher", arguments={})]),
        Step(index=2, agent="searcher", content="Searching.", tool_calls=[ToolCall(
            name="web_search", arguments={"query": "crayfish Decapoda"}, result="Crayfish are crustaceans.")]),
        Step(index=3, agent="searcher", content="1"),
    ])
    assert [(a.token, a.origin) for a in off_task_arguments(traj)] == [("Decapoda", 2)]
    assert not [c for c in _holds(traj) if isinstance(c, (cl.FirstToState, cl.CallsOffTask)) and c.token == "crayfish"]


def test_a_value_the_caller_was_given_and_replaced_is_the_callers():
    traj = _team("Plan: fetcher looks up Oslo-Vienna, Paris-Rome (date: 2025-03-18).", ("2025-03-18", "2025-03-11"))
    [arg] = off_task_arguments(traj)
    assert (arg.call, arg.origin, arg.token, arg.task_values, arg.given_at, arg.lost_at) == \
        (2, 2, "2025-03-11", ("2025-03-18",), 1, None)  # its own first call had the task's date
    x, _ = extract_features(traj)
    assert x[2, _col("offtask_given")] == 1 and x[:, _col("offtask_given")].sum() == 1
    view = cl.View(traj)
    assert cl.CallsOffTask(2, "get_fare", "date", "2025-03-11", "2025-03-11").holds(view)
    assert cl.HadTaskValue(2, 1, "2025-03-18").holds(view) and cl.HadTaskValue(2, 0, "2025-03-18").holds(view)
    assert "its own earlier turn" in cl.HadTaskValue(2, 1, "2025-03-18").clause(view)
    # false versions: a call not made, a token the task has, a value the planner never wrote
    assert not cl.CallsOffTask(1, "get_fare", "date", "2025-03-11", "2025-03-11").holds(view)
    assert not cl.CallsOffTask(1, "get_fare", "date", "2025-03-18", "2025-03-18").holds(view)
    assert not cl.HadTaskValue(2, 3, "2025-03-18").holds(view)
    assert not cl.HadTaskValue(2, 0, "2025-03-11").holds(view)


@pytest.mark.parametrize("argument, cited", [
    ("Tukru", "Turku"),  # a misspelt city stands for the task's city it most resembles, not the first one
    ("Tukru castle tour", None),  # a word inside a longer label stands for no value of the task
])
def test_a_reason_names_the_task_value_an_off_task_argument_stands_for(argument, cited):
    task = "Which is warmest on Friday: Graz, Bergen or Turku? Reply with the city."
    traj = Trajectory(run_id="t", task=task, answer="Graz", steps=[
        Step(index=0, agent="planner", content="Plan: compare Graz, Bergen and Turku on Friday."),
        Step(index=1, agent="fetcher", content="Checking.", tool_calls=[
            ToolCall(name="get_forecast", arguments={"city": "Graz", "day": "Friday"}, result="Graz: 14 C"),
            ToolCall(name="get_forecast", arguments={"city": argument, "day": "Friday"}, result="no such city")]),
        Step(index=2, agent="writer", content="Graz"),
    ])
    _, flows = extract_features(traj, use_expected=False)
    arg = flows[1].off_task[0]
    assert (arg.token, arg.given_at, arg.task_values) == ("Tukru", 0, ("Bergen", "Turku"))
    view = cl.View(traj)
    claims = evidence_claims(view, 1, "offtask_given", flows[1], None)
    assert claims[0] == cl.CallsOffTask(1, "get_forecast", "city", argument, "Tukru")
    assert claims[1:] == ([cl.HadTaskValue(1, 0, cited)] if cited else [])
    assert cl.check_claims(traj, claims) == []


def test_a_value_no_step_passed_on_was_lost_by_the_first_step_restating_the_task():
    traj = _team("Plan: fetcher looks up Oslo-Vienna, Paris-Rome.", ("2025-03-04", "2025-03-04"))
    args = off_task_arguments(traj)
    # the second call's date is in the first call's result by then, so only the first is off-task
    assert [(a.call, a.origin, a.given_at, a.lost_at) for a in args] == [(1, 1, None, 0)]
    x, _ = extract_features(traj)
    assert x[0, _col("constraint_lost")] == 1 and x[1, _col("offtask_ungiven")] == 1
    view = cl.View(traj)
    assert cl.DropsTaskValue(0, ("2025-03-18",), 1, "get_fare", "date", "2025-03-04").holds(view)
    # the fetcher's own text is not where the value was dropped: it came after the planner's
    assert not cl.DropsTaskValue(3, ("2025-03-18",), 1, "get_fare", "date", "2025-03-04").holds(view)


def test_a_users_turn_that_names_what_the_task_does_not_is_the_origin_and_can_be_blamed():
    traj = Trajectory(run_id="u", task="Which is dearer: monitor stand or bookshelf (region EU)?", answer="standing fan",
                      steps=[
        Step(index=0, agent="user", role="user", content="Hi! I need the dearer of standing fan and bookshelf."),
        Step(index=1, agent="assistant", content="Checking.", tool_calls=[
            ToolCall(name="get_price", arguments={"product": "standing fan", "region": "EU"}, result="standing fan: 232 EUR"),
            ToolCall(name="get_price", arguments={"product": "bookshelf", "region": "EU"}, result="bookshelf: 168 EUR")]),
        Step(index=2, agent="assistant", content="The dearer one is standing fan."),
    ])
    args = off_task_arguments(traj)
    assert {(a.token, a.origin, a.call) for a in args} == {("standing", 0, 1), ("fan", 0, 1)}
    x, flows = extract_features(traj)
    assert x[0, _col("offtask_origin")] == 1  # kept on a user's turn, unlike the agents' features
    assert flows[0].originates and not flows[1].off_task
    assert cl.FirstToState(0, "standing", 1, "get_price", "product", "standing fan").holds(cl.View(traj))
    assert not cl.FirstToState(2, "standing", 1, "get_price", "product", "standing fan").holds(cl.View(traj))


def test_routing_speaking_and_repaired_calls_are_not_off_task():
    traj = Trajectory(run_id="r", task="Look up the open tickets of mobile for priority low.", answer="31", steps=[
        Step(index=0, agent="lead", content="ops_agent, please.", transfer_to="ops_agent",
             tool_calls=[ToolCall(name="handoff", arguments={"to_agent": "ops_agent", "reason": "their part"})]),
        Step(index=1, agent="ops_agent", content="Mobile first.", tool_calls=[
            ToolCall(name="count_open_tickets", arguments={"team": "mobile", "priority": "medium"}, result="mobile: 44")]),
        Step(index=2, agent="ops_agent", content="Oops, medium is wrong. Again with low.", tool_calls=[
            ToolCall(name="count_open_tickets", arguments={"team": "mobile", "priority": "low"}, result="mobile: 31")]),
        Step(index=3, agent="ops_agent", content="Results: mobile has 31 open tickets.", tool_calls=[
            ToolCall(name="final_answer", arguments={"answer": "Results: mobile has 31 open tickets."},
                     result="Results: mobile has 31 open tickets.")]),
    ])
    assert off_task_arguments(traj) == []
    assert speaks(traj.steps[3], traj.steps[3].tool_calls[0]) and not speaks(traj.steps[1], traj.steps[1].tool_calls[0])
    # the echo is not an input: the 31 the step states is the one its lookup returned, nothing new
    assert read_flow(traj)[3].introduced == []


def test_a_reason_does_not_cite_a_function_word_as_off_task():
    from agenttrace.attribution.cpu import evidence_claims

    traj = Trajectory(run_id="t", task="When did Fubo go public?", steps=[
        Step(index=0, agent="surfer", content="Searching.",
             tool_calls=[ToolCall(name="web_search", arguments={"query": "what year FuboTV IPO"}, result="2020")]),
        Step(index=1, agent="surfer", content="2020."),
    ])
    assert [a.token for a in off_task_arguments(traj)] == ["what", "year", "FuboTV", "IPO"]
    _, flows = extract_features(traj, use_expected=False)
    claims = evidence_claims(cl.View(traj), 0, "offtask_ungiven", flows[0], None)
    assert [c.token for c in claims] == ["year"] and cl.check_claims(traj, claims) == []


def test_the_words_a_query_built_from_the_task_adds_are_its_phrasing_not_values():
    plan = "Plan: WebSurfer looks up the park's address and opening hours on Wednesdays."
    traj = Trajectory(run_id="t", task="Is Harkness Memorial State Park open at 11pm on Wednesdays?", steps=[
        Step(index=0, agent="Orchestrator", content=plan),
        Step(index=1, agent="WebSurfer", content="Searching.", tool_calls=[
            ToolCall(name="typed", arguments={"text": "Harkness Memorial State Park address Waterford"}, result="...")]),
        Step(index=2, agent="WebSurfer", content="Closed at sunset."),
    ])
    # "address" is how the query asks; "Waterford", a name no input gave, is still read as a value
    assert [(a.token, a.origin) for a in off_task_arguments(traj)] == [("Waterford", 1)]
    _, flows = extract_features(traj, use_expected=False)
    assert not flows[0].originates
    # a task word spelt wrong is no phrasing: it is the wrong value
    typo = Trajectory(run_id="t", task="Price 4 x water bottle (region EU).", steps=[
        Step(index=0, agent="data_agent", content="Looking up.", tool_calls=[
            ToolCall(name="get_price", arguments={"product": "water botlte", "region": "EU"}, result="not found")]),
    ])
    assert [a.token for a in off_task_arguments(typo)] == ["botlte"]


def test_a_delegations_result_arrives_after_the_steps_it_relays():
    relay = "Done. Oslo-Vienna: 150 EUR."
    traj = Trajectory(run_id="d", task="Look up the fare of Oslo-Vienna for date 2025-03-18.", answer="150", steps=[
        Step(index=0, agent="head", content="", tool_calls=[
            ToolCall(name="delegate_work", arguments={"coworker": "fetcher", "task": "Oslo-Vienna"}, result=relay)]),
        Step(index=1, agent="fetcher", content="Checking.", tool_calls=[_fare("Oslo-Vienna", "2025-03-18", 120)]),
        Step(index=2, agent="fetcher", content=relay),
        Step(index=3, agent="head", content="It costs 150 EUR."),
    ])
    assert arrivals(traj.steps) == [2, 1, 2, 3]
    flows = read_flow(traj)
    assert flows[2].introduced == ["150"]  # the fetcher made it up; the relay does not count as its input
    assert flows[3].introduced == []  # by step 3 the relay has arrived
    view = cl.View(traj)
    assert cl.IntroducesNumber(2, "150").holds(view) and not cl.IntroducesNumber(3, "150").holds(view)


def test_a_pick_against_the_reported_values_and_one_that_follows_them():
    def run(pick: str) -> Trajectory:
        return Trajectory(run_id="p", task="Which is the warmest of Porto, Seville on Tuesday?", answer=pick, steps=[
            Step(index=0, agent="scout", content="Checking.", tool_calls=[
                ToolCall(name="get_forecast", arguments={"city": "Porto"}, result="forecast high for Porto: 6 degrees"),
                ToolCall(name="get_forecast", arguments={"city": "Seville"}, result="forecast high for Seville: 25 degrees")]),
            Step(index=1, agent="scout", content="Results: Porto: 6 degrees; Seville: 25 degrees."),
            Step(index=2, agent="writer", content=f"The answer is {pick}."),
        ])

    assert direction("Which is the warmest?") == 1 and direction("the cheapest one") == -1 and direction("the total") == 0
    [wrong] = picks(run("Porto"))
    assert (wrong.pos, wrong.chosen, wrong.best, wrong.agrees) == (2, "Porto", "Seville", False)  # as the task writes them
    [right] = picks(run("Seville"))
    assert right.agrees
    traj = run("Porto")
    view = cl.View(traj)
    claim = cl.PicksAgainstInputs(2, "warmest", True, "Porto", 6, "Seville", 25)
    assert claim.holds(view)
    assert "names Porto (6) although Seville was reported as 25, higher" in claim.clause(view)
    assert not cl.PicksAgainstInputs(2, "warmest", True, "Porto", 6, "Seville", 2).holds(view)
    assert not cl.PicksAgainstInputs(2, "coldest", False, "Porto", 6, "Seville", 25).holds(view)
    x, _ = extract_features(traj)
    assert x[2, _col("pick_contradicts")] == 1 and x[2, _col("pick_agrees")] == 0
    # the same pick written through a final_answer tool (smolagents): the call only carries its words
    said = traj.model_copy(deep=True)
    said.steps[2].tool_calls = [ToolCall(name="final_answer", arguments={"answer": "The answer is Porto."},
                                         result="The answer is Porto.")]
    [through_tool] = picks(said)
    assert (through_tool.pos, through_tool.chosen, through_tool.agrees) == (2, "Porto", False)
    assert claim.holds(cl.View(said))


@pytest.mark.parametrize("plan,dates", [
    ("Plan: fetcher looks up Oslo-Vienna, Paris-Rome (date: 2025-03-18).", ("2025-03-18", "2025-03-11")),
    ("Plan: fetcher looks up Oslo-Vienna, Paris-Rome.", ("2025-03-04", "2025-03-04")),
    ("Plan: fetcher looks up Oslo-Vienna, Paris-Rome (date: 2025-03-18).", ("2025-03-18", "2025-03-18")),
])
def test_every_claim_of_the_reason_holds_on_these_runs(plan, dates):
    _holds(_team(plan, dates, answer="In total: 300 EUR."))


def test_a_turn_that_hands_back_before_covering_what_it_was_handed():
    def run(report: str) -> Trajectory:
        return Trajectory(run_id="c", task="Add up the fare of Oslo-Vienna, Paris-Rome for date 2025-03-18.", steps=[
            Step(index=0, agent="lead", content="scout, please look up Oslo-Vienna, Paris-Rome (date: 2025-03-18).",
                 transfer_to="scout"),
            Step(index=1, agent="scout", content="Checking.", tool_calls=[_fare("Oslo-Vienna", "2025-03-18", 120)]),
            Step(index=2, agent="scout", content=report, transfer_to="lead"),
            Step(index=3, agent="lead", content="Oslo-Vienna: 120; Paris-Rome: 80. scout, anything else?"),
            Step(index=4, agent="scout", content="No."),
        ])

    short = run("Done. Oslo-Vienna: 120 EUR.")
    [gap] = left_out(short)
    assert (gap.pos, gap.handed_by, gap.items) == (2, 0, ("paris-rome",))  # step 3 hands on values, not work
    x, _ = extract_features(short)
    assert x[2, _col("leaves_out_items")] == 1
    view = cl.View(short)
    assert cl.HandsBackWithout(2, 0, ("paris-rome",)).holds(view)
    assert not cl.HandsBackWithout(1, 0, ("paris-rome",)).holds(view)  # its turn goes on after step 1
    assert not cl.HandsBackWithout(2, 0, ("oslo-vienna",)).holds(view)  # it did look that one up
    assert left_out(run("Done. Oslo-Vienna: 120 EUR; Paris-Rome: 80 EUR.")) == []
    assert left_out(run("Which date should I use for Oslo-Vienna?")) == []  # a question, not a report
    assert left_out(run("Which date should I use?\nNext speaker: lead")) == []  # still a question


def test_a_unit_code_the_task_names_is_not_an_item_to_cover():
    task = "Add up the fare of Oslo-Vienna, Paris-Rome for date 2025-03-18. Reply with the total in EUR."
    run = Trajectory(run_id="u", task=task, steps=[
        Step(index=0, agent="lead", content="scout, please look up Oslo-Vienna, Paris-Rome.", transfer_to="scout"),
        Step(index=1, agent="scout", content="Checking.", tool_calls=[_fare("Oslo-Vienna", "2025-03-18", 120),
                                                                      _fare("Paris-Rome", "2025-03-18", 80)]),
        Step(index=2, agent="scout", content="Oslo-Vienna: 120 EUR; Paris-Rome: 80 EUR. Over to you, lead.",
             transfer_to="lead"),
        Step(index=3, agent="lead", content="The total is 200."),
    ])
    assert "eur" not in items(run) and {"oslo-vienna", "paris-rome"} <= items(run)
    assert left_out(run) == []


def _price(product: str, value: int) -> ToolCall:
    return ToolCall(name="get_price", arguments={"product": product, "region": "EU"},
                    result=f"{product} in the EU store: {value} EUR per unit")


def test_what_the_task_lists_beside_a_looked_up_value_is_an_item_whatever_its_case():
    task = "What is the total unit price of 1 x wall clock, 5 x standing fan, 2 x kettle for region EU?"
    run = Trajectory(run_id="l", task=task, steps=[
        Step(index=0, agent="lead", content="scout: get the unit price of 1 x wall clock, 5 x standing fan, "
                                            "2 x kettle (region: EU).", transfer_to="scout"),
        Step(index=1, agent="scout", content="Looking up wall clock.", tool_calls=[_price("wall clock", 93)]),
        Step(index=2, agent="scout", content="Here is what I found: wall clock: 93 EUR.", transfer_to="lead"),
        Step(index=3, agent="lead", content="In total: 93 EUR."),
    ])
    assert {"wall clock", "standing fan", "kettle"} <= items(run) and "region eu" not in items(run)
    [gap] = left_out(run)
    assert (gap.pos, gap.handed_by, gap.items) == (2, 0, ("kettle", "standing fan"))
    assert cl.HandsBackWithout(2, 0, gap.items).holds(cl.View(run))
    # a list none of whose elements a tool took is not a list of items: "day Thursday" is no list element
    weather = Trajectory(run_id="w", task="For day Thursday, find the warmest of these using current data: Porto.",
                         steps=[Step(index=0, agent="scout", content="Checking.", tool_calls=[_forecast("Porto")])])
    assert "find the warmest" not in items(weather)


def test_a_users_request_is_work_handed_to_whoever_answers_it():
    task = "Which is the most expensive of monitor stand, desk lamp, coffee grinder for region EU?"
    run = Trajectory(run_id="r", task=task, steps=[
        Step(index=0, agent="customer", role="human",
             content="Hello, which is the most expensive of monitor stand, desk lamp, coffee grinder?"),
        Step(index=1, agent="assistant", content="Sure. For which region?"),
        Step(index=2, agent="customer", role="human", content="EU, please."),
        Step(index=3, agent="assistant", content="Let me get monitor stand.", tool_calls=[_price("monitor stand", 177)]),
        Step(index=4, agent="assistant", content="Results: monitor stand: 177 EUR."),
        Step(index=5, agent="customer", role="human", content="Thanks, go ahead."),
        Step(index=6, agent="assistant", content="monitor stand is the most expensive."),
    ])
    [gap] = left_out(run)  # only the first report leaves the request out; the answer after it repeats the gap
    assert (gap.pos, gap.handed_by, gap.items) == (4, 0, ("coffee grinder", "desk lamp"))
    view = cl.View(run)
    claim = cl.HandsBackWithout(4, 0, gap.items)
    assert claim.holds(view) and "which step 0 by customer asked for" in claim.clause(view)
    assert not cl.HandsBackWithout(4, 0, ("monitor stand",)).holds(view)


def _forecast(city: str, tool: str = "get_forecast") -> ToolCall:
    return ToolCall(name=tool, arguments={"city": city, "day": "Thursday"}, result=f"{city}: 21 degrees")


def test_a_tool_nothing_asked_for_beside_its_alternative_and_whose_choice_it_was():
    from agenttrace.attribution.alternatives import name_words, off_request_calls

    def run(second: str, archivist_has_both: bool = False) -> Trajectory:
        calls = [_forecast("Porto", "get_climate_average")] + ([_forecast("Lyon")] if archivist_has_both else [])
        return Trajectory(run_id="a", task="Which is the warmest of Lyon, Porto on Thursday?", steps=[
            Step(index=0, agent="lead", content="scout, get the forecast high of Lyon.", transfer_to="scout"),
            Step(index=1, agent="scout", content="Checking Lyon.", tool_calls=[_forecast("Lyon")]),
            Step(index=2, agent="scout", content="Lyon: 21 degrees.", transfer_to="lead"),
            Step(index=3, agent="lead", content=second, transfer_to="archivist"),
            Step(index=4, agent="archivist", content="Checking Porto.", tool_calls=calls),
            Step(index=5, agent="archivist", content="Porto: 21 degrees.", transfer_to="lead"),
            Step(index=6, agent="lead", content="Lyon is the warmest."),
        ])

    assert name_words("getClimate_average2") == {"get", "climate", "average", "2"}
    handed = run("archivist, get the forecast high of Porto.")
    [call] = off_request_calls(handed)
    assert (call.pos, call.tool, call.alternative, call.words, call.handed_by) == (
        4, "get_climate_average", "get_forecast", ("average", "climate"), 3)
    x, _ = extract_features(handed)
    assert x[:, _col("hands_to_off_request")].tolist() == [0, 0, 0, 1, 0, 0, 0]
    view = cl.View(handed)
    claim = cl.HandsToOffRequest(3, 4, "get_climate_average", "get_forecast", ("average", "climate"))
    assert claim.holds(view) and not replace(claim, pos=2).holds(view)  # step 3, not 2, hands it the work
    # the archivist that has both tools chose the wrong one itself
    chose = run("archivist, get the forecast high of Porto.", archivist_has_both=True)
    [own] = off_request_calls(chose)
    assert own.handed_by is None and extract_features(chose)[0][4, _col("calls_off_request")] == 1
    assert cl.CallsOffRequest(4, "get_climate_average", "get_forecast", ("average", "climate")).holds(cl.View(chose))
    assert not claim.holds(cl.View(chose))  # it does call get_forecast
    # asked for: the climate average is what the lead wanted
    assert off_request_calls(run("archivist, get the climate average of Porto.")) == []
    assert not cl.CallsOffRequest(4, "get_climate_average", "get_forecast", ("average", "climate")).holds(
        cl.View(run("archivist, get the climate average of Porto.")))


def test_a_user_who_gives_a_count_other_than_the_tasks_is_not_a_blameless_request():
    task = "Add up the current unit price of 2 x desk lamp, 3 x wall clock (region UK)."

    def run(request: str) -> Trajectory:
        return Trajectory(run_id="u", task=task, steps=[
            Step(index=0, agent="customer", role="human", content=request),
            Step(index=1, agent="assistant", content="Which region should I use?", transfer_to="customer"),
            Step(index=2, agent="customer", role="human", content="UK, please."),
            Step(index=3, agent="assistant", content="Checking.", tool_calls=[_price("desk lamp", 10), _price("wall clock", 20)]),
            Step(index=4, agent="assistant", content="In total: 100 EUR."),
        ])

    wrong = run("Hello, can you tell me the total of 2 x desk lamp, 4 x wall clock?")
    x, flows = extract_features(wrong)
    assert flows[0].conflict == ("wall clock", "3", "4")
    assert (x[0, _col("num_conflict")], x[0, _col("is_request")]) == (1, 0)
    assert cl.RestatesDifferently(0, "wall clock", "3", "4").holds(cl.View(wrong))
    right = run("Hello, can you tell me the total of 2 x desk lamp, 3 x wall clock?")
    x, flows = extract_features(right)
    assert flows[0].conflict is None and (x[0, _col("num_conflict")], x[0, _col("is_request")]) == (0, 1)
    assert x[2, _col("is_request")] == 0  # a reply after the agent has acted is not the request
    assert not flows[1].plan_like  # a question hands back to ask, not to plan


def test_a_declared_team_shows_the_alternative_of_an_agent_that_never_acts():
    from agenttrace.attribution.alternatives import off_request_calls
    from agenttrace.attribution.trace_back import causes
    from agenttrace.models import Teammate, ToolSpec

    def forecast_tools(*names: str) -> list[ToolSpec]:
        return [ToolSpec(name=n, parameters=["city", "day"]) for n in names]

    steps = [
        Step(index=0, agent="lead", content="archivist, get the forecast high of Porto on Thursday.",
             transfer_to="archivist"),
        Step(index=1, agent="archivist", content="Checking Porto.", tool_calls=[_forecast("Porto", "get_climate_average")]),
        Step(index=2, agent="archivist", content="Porto: 21 degrees.", transfer_to="lead"),
        Step(index=3, agent="lead", content="Porto will be 21 degrees."),
    ]
    team = [Teammate(name="lead"), Teammate(name="forecaster", tools=forecast_tools("get_forecast")),
            Teammate(name="archivist", tools=forecast_tools("get_climate_average"))]
    task = "What is the forecast high of Porto on Thursday?"
    undeclared = Trajectory(run_id="t", task=task, steps=steps)
    declared = undeclared.model_copy(update={"team": team})
    assert off_request_calls(undeclared) == []  # no step shows get_forecast
    [call] = off_request_calls(declared)
    assert (call.pos, call.alternative, call.handed_by, call.owner) == (1, "get_forecast", 0, "forecaster")
    x, flows = extract_features(declared)
    assert x[:, _col("hands_to_off_request")].tolist() == [1, 0, 0, 0]
    assert causes(declared.steps, flows)[1:3] == [0, 0]  # the archivist's turn is the hand-off's doing
    claim = cl.HandsToOffRequest(0, 1, "get_climate_average", "get_forecast", ("average", "climate"), "forecaster")
    view = cl.View(declared)
    assert claim.holds(view) and claim.clause(view).endswith("never get_forecast, which takes the same arguments and is forecaster's")
    assert not claim.holds(cl.View(undeclared))  # nothing in the run itself says get_forecast takes city and day
    assert not replace(claim, owner="archivist").holds(view)
    # an archivist the team gives both tools chose the wrong one itself
    both = declared.model_copy(update={"team": [*team[:2], Teammate(name="archivist", tools=forecast_tools(
        "get_climate_average", "get_forecast"))]})
    [own] = off_request_calls(both)
    assert (own.handed_by, own.owner) == (None, None) and not claim.holds(cl.View(both))


def test_the_task_a_delegation_hands_on_is_what_it_asks_for():
    from agenttrace.attribution.alternatives import off_request_calls
    from agenttrace.attribution.flow import said_text
    from agenttrace.models import Teammate, ToolSpec

    team = [Teammate(name="lead"), Teammate(name="forecaster", tools=[ToolSpec(name="get_forecast", parameters=["city", "day"])]),
            Teammate(name="archivist", tools=[ToolSpec(name="get_climate_average", parameters=["city", "day"])])]
    delegation = ToolCall(name="delegate_work_to_coworker", result="Porto: 21 degrees.", arguments={
        "task": "Get the forecast high of Porto on Thursday.", "coworker": "archivist"})
    run = Trajectory(run_id="d", task="How warm will Porto be on Thursday (current data)?", team=team, steps=[
        Step(index=0, agent="lead", content="", transfer_to="archivist", tool_calls=[delegation]),  # CrewAI keeps no text
        Step(index=1, agent="archivist", content="", tool_calls=[_forecast("Porto", "get_climate_average")]),
        Step(index=2, agent="archivist", content="Porto: 21 degrees."),
        Step(index=3, agent="lead", content="Porto will be 21 degrees."),
    ])
    assert "forecast high of Porto" in said_text(run.steps[0]) and said_text(run.steps[1]) == ""
    [call] = off_request_calls(run)  # 'forecast' was asked for, by the delegation, and 'climate average' never
    assert (call.pos, call.alternative, call.handed_by, call.owner) == (1, "get_forecast", 0, "forecaster")
    assert cl.HandsToOffRequest(0, 1, call.tool, call.alternative, call.words, call.owner).holds(cl.View(run))
