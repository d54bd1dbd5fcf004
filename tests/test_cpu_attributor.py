"""Specification of the `cpu` attributor: no LLM, no GPU, fast, and it points at the seeded error."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import eiffel  # noqa: E402
import whowhen_fixtures as fx  # noqa: E402
from eiffel import eiffel_run  # noqa: E402

from agenttrace.attribution import get_attributor  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from agenttrace.attribution import claims as cl  # noqa: E402
from agenttrace.attribution.base import AttributorError  # noqa: E402
from agenttrace.attribution.cpu import (  # noqa: E402
    FEATURES,
    CpuAttributor,
    StepModel,
    evidence_claims,
    extract_features,
    log_kind,
    nameable,
    softmax,
    tempered,
)
from agenttrace.attribution.cpu_fit import (  # noqa: E402
    PLAIN_RULE, Featurised, Rows, _best_rule, _calibrated_temperature, _hits, _named, segment_softmax, take, traced,
    verdicts,
)
from agenttrace.attribution.flow import mark_users, read_flow, simulated_users  # noqa: E402
from agenttrace.attribution.trace_back import causes, trace  # noqa: E402
from agenttrace.data.datasets import from_whowhen  # noqa: E402
from agenttrace.models import Label, LabelledTrajectory, Step, ToolCall, Trajectory  # noqa: E402


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


def test_the_seeded_error_is_among_the_candidates():
    att = CpuAttributor()
    for data in (fx.hand_crafted(0), fx.hand_crafted(5), fx.algorithm_generated(0), fx.algorithm_generated(9)):
        item = from_whowhen(data)
        a = att.attribute(item.trajectory)
        assert len(a.candidates) == 3 and (a.candidates[0].agent, a.candidates[0].step) == (a.agent, a.step)
        assert any((c.agent, c.step) == (item.label.agent, item.label.step) for c in a.candidates), a.reason
        assert a.uncertain == (a.confidence < att.model.threshold)


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
    assert abs(again.temperature - model.temperature) < 1e-3 and again.threshold == model.threshold


def test_a_log_read_from_a_file_and_a_run_rebuilt_from_spans_are_calibrated_apart():
    from agenttrace.data.datasets import to_whowhen

    model = CpuAttributor().model
    assert set(model.temperatures) == {"spans", "log"}
    assert model.temperature_for("log") != model.temperature_for("spans")
    transcript = from_whowhen(fx.algorithm_generated(0)).trajectory
    run = Trajectory(run_id="r", trace_id="4ce8", task="sum", steps=[
        Step(index=0, agent="worker", content="", tool_calls=[ToolCall(name="calc", arguments={"a": 1}, result="1")]),
        Step(index=1, agent="worker", content="It is 1.")])
    assert (log_kind(transcript), log_kind(run)) == ("log", "spans")
    assert log_kind(from_whowhen(to_whowhen(run)).trajectory) == "spans"  # an export keeps its trace's id
    x, flows = extract_features(transcript)
    temperature = model.temperature_for("log")
    p = softmax(model.scores(x) / temperature, nameable(flows))
    verdict = CpuAttributor().attribute(transcript)
    assert verdict.confidence == round(float(p[verdict.step]), 4)
    assert model.threshold == 0.5 and verdict.uncertain == (p[verdict.step] < 0.5)
    again = StepModel.from_json(model.to_json())
    for kind, t in model.temperatures.items():
        assert abs(again.temperature_for(kind) - t) < 1e-3
    assert again.temperature_for(None) == again.temperature and (again.by_mass, again.earliest) == (
        model.by_mass, model.earliest)  # one verdict rule for every kind


@pytest.mark.parametrize("temperatures, message", [({"xml": 1.0}, "unknown log kinds"),
                                                   ({"log": "hot"}, "wrong type"),
                                                   ({"log": [1.0, 0.5]}, "wrong type"),
                                                   ([1.0], "wrong type")])
def test_a_model_with_bad_temperatures_is_refused_with_the_reason(temperatures, message):
    data = CpuAttributor().model.to_json() | {"temperatures": temperatures}
    with pytest.raises(AttributorError, match=message):
        StepModel.from_json(data)


def test_take_keeps_the_chosen_trajectories_whole():
    items = [from_whowhen(fx.algorithm_generated(k)) for k in range(4)]
    rows = Rows({"a": Featurised(items[:2]), "b": Featurised(items[2:])}, views=(False,))
    part, steps = take(rows, [1, 3])
    assert len(part) == 2 and part.group == ["a", "b"] and part.kind == ["log", "log"]
    assert (part.x == rows.x[steps]).all()
    for (a, b, t), k in zip(part.segments(), [1, 3]):
        assert b - a == len(items[k].trajectory.steps) and t - a == items[k].label.step
    assert np.array_equal(part.seg, np.repeat([0, 1], [len(items[1].trajectory.steps), len(items[3].trajectory.steps)]))


def test_a_verdict_right_on_agent_and_step_scores_one_and_right_on_the_agent_only_a_half():
    steps = [Step(index=i, agent=a, content=f"turn {i}") for i, a in enumerate(["lead", "worker", "lead"])]
    item = LabelledTrajectory(id="x", subset="g", trajectory=Trajectory(run_id="x", steps=steps),
                              label=Label(agent="lead", step=2))
    rows = Rows({"g": Featurised([item])}, views=(False,))
    named = {2: (True, True), 0: (True, False), 1: (False, False)}
    for pos, (agent_ok, step_ok) in named.items():
        p = np.eye(3)[pos]
        assert verdicts(p, rows, (False, 1.0))[0] == (agent_ok, step_ok)
        assert _hits(verdicts(p, rows, (False, 1.0)))[0] == (agent_ok + step_ok) / 2


def test_the_temperature_makes_the_named_steps_probability_its_hit_rate():
    steps = [Step(index=i, agent=a, content=f"turn {i}") for i, a in enumerate(["lead", "worker", "lead"])]
    items = [LabelledTrajectory(id=f"r{k}", subset="g", trajectory=Trajectory(run_id=f"r{k}", steps=steps),
                                label=Label(agent="lead", step=2 if k % 2 else 0)) for k in range(4)]
    rows = Rows({"g": Featurised(items)}, views=(False,))
    scores = np.tile([0.0, 0.0, 2.0], 4)  # step 2 named every time, right in half the runs
    t = _calibrated_temperature(scores, rows, (False, 1.0))
    named = _named(segment_softmax(scores, rows), rows, (False, 1.0))  # decided untempered, as the attributor does
    assert all(abs(c - 0.5) < 0.05 for c in traced(segment_softmax(scores / t, rows), rows)[named])
    assert segment_softmax(scores, rows)[2] > 0.7  # untempered, it would claim far more than it hits


def test_the_temperature_tempers_the_traced_distribution_so_the_verdict_keeps_its_rank():
    scores, cause = np.array([1.0, 0.8, 0.8]), [0, 1, 1]  # step 2's fault is followed back to step 1
    untempered = trace(softmax(scores), cause)
    assert int(np.argmax(untempered)) == 1  # the verdict: steps 1 and 2 together outweigh step 0
    for t in (0.2, 1.0, 5.0):
        p = tempered(untempered, t)
        assert int(np.argmax(p)) == 1 and p.sum() == pytest.approx(1.0)
    assert tempered(untempered, 0.2)[1] > untempered[1] > tempered(untempered, 5.0)[1]
    # a sharper softmax of the scores, traced afterwards, would report step 0 as the likelier one
    assert int(np.argmax(trace(softmax(scores / 0.2), cause))) == 0


def test_a_bill_total_from_the_reported_prices_is_derived_and_a_wrong_one_is_not():
    def run(total: str) -> Trajectory:
        return Trajectory(run_id="b", task="What do 5 x kettle and 2 x office chair cost in total (region UK)?", steps=[
            Step(index=0, agent="scout", content="", tool_calls=[
                ToolCall(name="price", arguments={"product": "kettle"}, result="kettle in the UK store: 47 EUR"),
                ToolCall(name="price", arguments={"product": "office chair"}, result="office chair: 135 EUR")]),
            Step(index=1, agent="scout", content="Results: kettle: 47 EUR; office chair: 135 EUR."),
            Step(index=2, agent="lead", content=f"In total: {total} EUR."),
        ])
    assert read_flow(run("505"))[2].underived == []  # 5 x 47 + 2 x 135
    assert read_flow(run("525"))[2].underived == ["525"]


def test_a_total_of_reported_values_is_derived_even_when_two_items_have_the_same_value():
    def run(total: str) -> Trajectory:
        return Trajectory(run_id="f", task="How much is the fare of Dublin-Athens, Warsaw-Zurich, Lisbon-Prague in total?",
                          steps=[Step(index=0, agent="a", content="Dublin-Athens: 256 EUR."),
                                 Step(index=1, agent="b", content="Warsaw-Zurich: 256 EUR."),
                                 Step(index=2, agent="a", content="Lisbon-Prague: 134 EUR."),
                                 Step(index=3, agent="calc", content=f"In total: {total} EUR.")])
    assert read_flow(run("646"))[3].underived == []  # 256 + 256 + 134, the 256 counted twice
    assert read_flow(run("656"))[3].underived == ["656"]


def test_the_quote_of_a_step_is_its_own_words_not_the_page_printed_after_them():
    page = "I clicked 'Thriller (album) - Wikipedia'.\n\nHere is a screenshot of [Thriller](https://en.wikipedia.org)."
    traj = Trajectory(run_id="q", task="Which is the fifth single?", steps=[
        Step(index=0, agent="Orchestrator", content="Please open the album's page."),
        Step(index=1, agent="WebSurfer", content=page + " The viewport shows 5 singles: " + "x " * 200),
        Step(index=2, agent="Orchestrator", content="FINAL ANSWER: Human Nature"),
    ])
    att = CpuAttributor()
    x, flows = extract_features(traj)
    view = cl.View(traj)
    [says] = [c for c in att._claims(view, 1, x, flows, causes(traj.steps, flows)) if isinstance(c, cl.Says)]
    assert says.text == "I clicked 'Thriller (album) - Wikipedia'." and says.holds(view)


def test_a_call_that_fails_on_a_word_the_caller_made_up_is_its_own_doing():
    def run(city: str) -> Trajectory:
        return Trajectory(run_id="f", task="What is the forecast high of Porto on Thursday?", steps=[
            Step(index=0, agent="lead", content="scout, get Porto (day: Thursday).", transfer_to="scout"),
            Step(index=1, agent="scout", content="Checking Porto.", tool_calls=[ToolCall(
                name="get_forecast", arguments={"city": city, "day": "Thursday"}, error="the service timed out")]),
            Step(index=2, agent="scout", content="The lookup of Porto failed; I'll assume 25 degrees."),
            Step(index=3, agent="lead", content="Porto: 25 degrees."),
        ])
    typo, flaky = run("Potro"), run("Porto")
    col = FEATURES.index("fails_on_own_argument")
    assert extract_features(typo)[0][:, col].tolist() == [0, 1, 0, 0]
    assert extract_features(flaky)[0][:, col].tolist() == [0, 0, 0, 0]  # the environment failed a right call
    view = cl.View(typo)
    claims = evidence_claims(view, 1, "fails_on_own_argument", read_flow(typo)[1], None)
    assert [type(c).__name__ for c in claims] == ["CallsWithUnseenWord", "ToolFailed"]
    assert all(c.holds(view) for c in claims)
    # a delegation that carries the step's own words is not a lookup with made-up arguments, failed or not
    words = "I'll split this up. scout: get the forecast high of Porto (day: Thursday)."
    delegated = Trajectory(run_id="d", task="What is the forecast high of Porto on Thursday?", steps=[
        Step(index=0, agent="lead", content=words, tool_calls=[ToolCall(name="scout", arguments={"task": words},
                                                                        error="Error while generating output")]),
        Step(index=1, agent="scout", content="Checking Porto.", tool_calls=[_forecast("Porto")]),
    ])
    assert extract_features(delegated)[0][:, col].tolist() == [0, 0]
    assert read_flow(delegated)[0].unseen_argument is None


def _forecast(city: str) -> ToolCall:
    return ToolCall(name="get_forecast", arguments={"city": city, "day": "Thursday"}, result=f"{city}: 21 degrees")


def _col(name: str) -> int:
    return FEATURES.index(name)


def test_a_number_from_a_tool_result_is_not_introduced_by_the_caller():
    traj = Trajectory(run_id="t", task="What are the two highest scores?", answer="93 and 47", steps=[
        Step(index=0, agent="researcher", content="", tool_calls=[
            ToolCall(name="scores", arguments={"top": "two"}, result="93, 47")]),
        Step(index=1, agent="researcher", content="The top scores are 93 and 47."),
        Step(index=2, agent="writer", content="93 and 47"),
    ])
    x, flows = extract_features(traj)
    assert [f.introduced for f in flows] == [[], [], []]
    assert flows[0].returned_to_answer == [("scores", "93"), ("scores", "47")]
    assert x[1, _col("num_introduced")] == 0 and x[0, _col("returned_to_answer")] == 1


def test_a_number_the_task_gives_with_a_unit_glued_on_is_not_introduced():
    traj = Trajectory(run_id="t", task="Which gyms near the park (<200m) open before 7am?", answer="none", steps=[
        Step(index=0, agent="scout", content="I looked 200 metres around the park; none opens before 7 or 6."),
        Step(index=1, agent="writer", content="none"),
    ])
    x, flows = extract_features(traj)
    assert flows[0].introduced == ["6"]
    view = cl.View(traj)
    assert not cl.IntroducesNumber(0, "200").holds(view) and not cl.IntroducesNumber(0, "7").holds(view)
    assert cl.IntroducesNumber(0, "6").holds(view)


def test_a_number_no_input_carries_is_introduced_and_followed_to_the_answer():
    traj = Trajectory(run_id="t", task="A farm has 6 rows with 12 trees each. How many trees are there?",
                      answer="74", steps=[
        Step(index=0, agent="Analyst", content="rows = 6, trees per row = 12"),
        Step(index=1, agent="Programmer", content="6 * 12", tool_calls=[
            ToolCall(name="calculator", arguments={"expression": "6 * 12"}, result="72")]),
        Step(index=2, agent="Reporter", content="The farm has 74 trees."),
    ])
    x, flows = extract_features(traj)
    assert flows[2].introduced == ["74"] and flows[2].introduced_to_answer == ["74"]
    assert flows[0].introduced == [] and flows[1].introduced == []
    assert x[2, _col("introduced_to_answer")] == 1


def test_a_tool_argument_nothing_supports_and_what_its_call_returned():
    traj = eiffel_run(writer_says="300 m")
    _, flows = extract_features(traj)
    (arg,) = flows[0].ungrounded
    assert (arg.tool, arg.argument, arg.number, arg.returned) == ("web_search", "as_of_year", "1889", "300")
    assert flows[1].introduced == []  # the writer relays what the tool returned


def test_a_failed_call_is_repaired_when_the_agent_later_gets_it_to_work():
    def run(second_ok: bool) -> Trajectory:
        return Trajectory(run_id="r", task="add 2 and 3", steps=[
            Step(index=0, agent="worker", content="", tool_calls=[ToolCall(name="calc", arguments={"a": 2}, error="missing b")]),
            Step(index=1, agent="worker", content="Retrying with both numbers.", tool_calls=[
                ToolCall(name="calc", arguments={"a": 2, "b": 3}, result="5" if second_ok else None,
                         error=None if second_ok else "missing b")]),
        ])
    assert read_flow(run(True))[0].repaired and not read_flow(run(False))[0].repaired


def test_going_on_silently_after_a_failed_call_is_ignoring_it():
    traj = Trajectory(run_id="i", task="book a table", steps=[
        Step(index=0, agent="booker", content="", tool_calls=[ToolCall(name="reserve", arguments={"n": 2}, error="timeout")]),
        Step(index=1, agent="booker", content="Your table is booked."),
    ])
    flows = read_flow(traj)
    assert flows[1].ignored_error_at == 0 and flows[0].failed_tool == ("reserve", "timeout")


def test_a_plan_that_leaves_out_part_of_the_task():
    task = "Count only the red boxes with at least 5 items each; exclude damaged boxes."
    traj = Trajectory(run_id="p", task=task, steps=[
        Step(index=0, agent="Planner", content="1. Researcher: list the boxes.\n2. Coder: count them."),
    ])
    flows = read_flow(traj)
    assert flows[0].plan_like and "damaged" in flows[0].dropped and flows[0].constraint_deficit == 1


def test_features_read_no_agent_names():
    item = from_whowhen(fx.algorithm_generated(0))
    renamed = item.trajectory.model_copy(update={"steps": [
        s.model_copy(update={"agent": f"agent{sorted(item.trajectory.agents).index(s.agent)}"})
        for s in item.trajectory.steps]})
    assert (extract_features(item.trajectory)[0] == extract_features(renamed)[0]).all()


def test_a_number_arithmetic_on_the_inputs_gives_is_derived_and_one_it_does_not_is_not():
    traj = Trajectory(run_id="d", task="Add up the fares of Paris-Rome and Oslo-Vienna.", answer="431", steps=[
        Step(index=0, agent="data", content="", tool_calls=[
            ToolCall(name="get_fare", arguments={"route": "Paris-Rome"}, result="Paris-Rome: 353 EUR")]),
        Step(index=1, agent="data", content="", tool_calls=[
            ToolCall(name="get_fare", arguments={"route": "Oslo-Vienna"}, result="Oslo-Vienna: 59 EUR")]),
        Step(index=2, agent="data", content="Paris-Rome: 372 EUR; Oslo-Vienna: 59 EUR."),  # misread 353
        Step(index=3, agent="writer", content="In total 431 EUR."),  # 372 + 59: arithmetic, not invention
    ])
    x, flows = extract_features(traj)
    assert flows[2].underived == ["372"] and flows[3].introduced == ["431"] and flows[3].underived == []
    assert x[2, _col("first_underived")] == 1 and x[3, _col("underived")] == 0


def test_the_first_of_repeated_identical_steps_is_marked():
    call = ToolCall(name="get_fare", arguments={"route": "Dublin-Athens"}, result="125 EUR")
    traj = Trajectory(run_id="loop", task="fare of Dublin-Athens", steps=[
        Step(index=i, agent="data", content="Let me get Dublin-Athens.", tool_calls=[call]) for i in range(4)])
    x, _ = extract_features(traj)
    assert list(x[:, _col("first_repeat")]) == [0, 1, 0, 0]
    assert list(x[:, _col("repeats")]) == [0, 1, 1, 1]


def test_the_same_call_in_other_words_is_a_repeat_and_its_claim_holds():
    from agenttrace.attribution.claims import Repeats, View

    call = ToolCall(name="get_fare", arguments={"route": "Dublin-Athens"}, result="125 EUR")
    traj = Trajectory(run_id="recheck", task="fare of Dublin-Athens", steps=[
        Step(index=0, agent="data", content="Let me get Dublin-Athens.", tool_calls=[call]),
        Step(index=1, agent="data", content="Double-checking Dublin-Athens.", tool_calls=[call]),
        Step(index=2, agent="data", content="Double-checking Dublin-Athens.")])
    _, flows = extract_features(traj)
    assert [f.repeats for f in flows] == [None, 0, None]  # step 2 makes no call: its words are what it does
    view = View(traj)
    claim = Repeats(1, 0)
    assert claim.holds(view) and "same calls as its own step 0" in claim.clause(view)
    assert not Repeats(2, 1).holds(view)


def test_the_same_call_is_a_loop_only_when_it_gets_back_what_it_got_before():
    def turn(i: int, page: str) -> Step:
        return Step(index=i, agent="WebSurfer", content="I scrolled down one page in the browser.",
                    tool_calls=[ToolCall(name="scrolled", arguments=None, result=page)])

    traj = Trajectory(run_id="scroll", task="find the 1998 winner", steps=[
        turn(0, "page 1: winners 1990-1995"), turn(1, "page 2: winners 1996-2001"), turn(2, "page 2: winners 1996-2001")])
    _, flows = extract_features(traj)
    assert [f.repeats for f in flows] == [None, None, 1]  # the second scroll read a new page; the third did not
    retry = Trajectory(run_id="retry", task="fare of Dublin-Athens", steps=[
        Step(index=i, agent="data", content="", tool_calls=[ToolCall(name="get_fare", arguments={"route": "Dublin-Athens"},
                                                                     **answer)])
        for i, answer in enumerate([{"error": "timed out"}, {"result": "125 EUR"}])])
    _, flows = extract_features(retry)
    assert [f.repeats for f in flows] == [None, None]  # a retry that works is not a loop


def test_list_numbers_locators_and_identifiers_are_not_quantities():
    from agenttrace.attribution.flow import numbers

    plan = ("### 1. GIVEN FACTS\n- the store opens at 9\n2. **Search** the shop\n(1) a task and (2) a plan\n"
            "Assign WebSurfer to steps 1 through 4. See ../2023/validation/df6561b2-7ee5-4540.png and "
            "https://example.org/a?q=57 (warning at orchestrator.py:216; File \"x.py\", line 402).\n"
            '{"task_id": "3", "line_number": 12, "taskId": 8}: rent is $5/month, 3/4 of 60 km, paid: 7')
    assert set(numbers(plan)) == {"9", "5", "3", "4", "60", "7"}


def test_a_tracebacks_lines_and_codes_parameters_are_not_quantities():
    """A traceback's line numbers (with the file's full path), a call's keyword arguments, subscripts and slices
    say where things are or how code works; an assignment, a list literal and a price state values."""
    from agenttrace.attribution.flow import numbers

    log = ('  File "/usr/local/lib/python3.11/site-packages/openai/_base_client.py", line 1843, in post\n'
           "df = pd.read_excel(path, skiprows=2)\nrows = df.iloc[3]; head = rows[:12]; tail = rows[4:]\n"
           "total = 45\nrevenue = [71]\nThe lamp costs 66 EUR.")
    assert set(numbers(log)) == {"45", "71", "66"}


def test_numbers_of_long_runs_of_characters_take_linear_time():
    import time

    from agenttrace.attribution.flow import numbers

    started = time.perf_counter()
    for text in ("a" * 40000, "x/" * 20000, "ab_" * 13000 + "id: 5", 'File "' + "a" * 40000, "1." * 20000,
                 "[" * 40000, "a=" * 20000, "[ 1 :" * 10000):
        numbers(text)
    assert time.perf_counter() - started < 2.0


def test_tool_output_a_text_log_prints_into_a_message_is_an_input():
    from agenttrace.attribution.flow import action_text, result_text
    from agenttrace.attribution.observations import split

    assert split("exitcode: 0 (execution succeeded)\nCode output: 124") == ("", "exitcode: 0 (execution succeeded)\nCode output: 124")
    surfer = "I clicked 'Prices'.\n\nHere is a screenshot of [Prices](https://x.org). The viewport shows 40% ..."
    assert split(surfer)[0] == "I clicked 'Prices'."
    browser = "Address: https://en.wikipedia.org/wiki/Dragon\nTitle: Dragon - Wikipedia\nViewport position: 1 of 43."
    assert split(browser) == ("", browser)
    again = ("Address: file:///workspace/talk.mp3\nYou previously visited this page 11 seconds ago.\n"
             "Viewport position: Showing page 1 of 1.\n### Audio Transcript:\nError. Could not transcribe this audio.")
    assert split(again) == ("", again)
    assert split("The address is 5 Main St.\nTitle: none") == ("The address is 5 Main St.\nTitle: none", "")
    traj = Trajectory(run_id="t", task="What is 2 + 2 squared?", steps=[
        Step(index=0, agent="coder", content="```python\nprint((2 + 2) ** 2)\n```"),
        Step(index=1, agent="terminal", content="exitcode: 0 (execution succeeded)\nCode output: 16"),
        Step(index=2, agent="checker", content="The result is 16."),
    ])
    _, flows = extract_features(traj)
    assert action_text(traj.steps[1]) == "" and "16" in result_text(traj.steps[1])
    assert [f.introduced for f in flows] == [[], [], []]


def test_a_runtime_warning_printed_into_a_message_is_neither_the_agents_words_nor_a_result():
    from agenttrace.attribution.flow import action_text, result_text
    from agenttrace.attribution.observations import split

    warning = ("/usr/lib/python3.11/site-packages/client.py:216: UserWarning: Resolved model mismatch. "
               "Model mapping may be incorrect.\n  response = await self._model_client.create(\n")
    plan = f"Plan: search the archive first.\n\n{warning}"
    assert split(plan) == ("Plan: search the archive first.\n\n", "")
    # interleaved output prints the source line again apart from its header; the harness marks its own lines
    ending = f"No agent selected.\n  response = await self._model_client.create(\n{warning}FINAL ANSWER: 6\nRUN.SH COMPLETE !#!#"
    assert split(ending) == ("No agent selected.\nFINAL ANSWER: 6\n", "")
    traj = Trajectory(run_id="t", task="Find the 1994 example sentence.", steps=[
        Step(index=0, agent="Orchestrator", content=plan),
        Step(index=1, agent="WebSurfer", content="I could not find the sentence."),
    ])
    _, flows = extract_features(traj, use_expected=False)
    assert "incorrect" not in action_text(traj.steps[0]) + result_text(traj.steps[0])
    assert flows[0].problem_word is None and flows[1].problem_word == "could not"


def test_a_traceback_printed_into_a_message_is_what_the_environment_answered():
    from agenttrace.attribution.flow import action_text, result_text
    from agenttrace.attribution.observations import split

    crash = ('Traceback (most recent call last):\n  File "/usr/lib/python3.11/site-packages/openai/_base_client.py", '
             'line 1638, in _request\n    raise self._make_status_error_from_response(err.response)\n'
             "openai.BadRequestError: Error code: 400 - {'code': 'content_filter'}")
    text = f"Stalled. Replanning...\n{crash}\nI will try another page."
    assert split(text) == ("Stalled. Replanning...\nI will try another page.", crash)
    # a logger's record of it ("Error processing publish message" with exc_info) and Python's chaining lines
    logged = ("The hours are 3 PM to 8 PM.\nError processing publish message\n" + crash
              + "\n\nThe above exception was the direct cause of the following exception:\n\n" + crash + "\nFINAL ANSWER: 8")
    assert split(logged) == ("The hours are 3 PM to 8 PM.\nFINAL ANSWER: 8",
                             f"Error processing publish message\n{crash}\n{crash}")
    # indented lines right under the exception: the rest of its message, or a source line another stream's header
    # belongs to, are the runtime's too
    under = crash + "\n  response = await client.create(messages)"
    assert split(f"Next speaker Assistant\n{under}\nFINAL ANSWER: 5") == ("Next speaker Assistant\nFINAL ANSWER: 5", under)
    doctest = ">>> f(-1)\nTraceback (most recent call last):\n...\nValueError: negative"  # code's text, not a crash
    assert split(doctest) == (doctest, "")
    traj = Trajectory(run_id="t", task="How many stops are on the line?", steps=[
        Step(index=0, agent="Orchestrator", content=text),
        Step(index=1, agent="Orchestrator", content="FINAL ANSWER: 12"),
    ])
    _, flows = extract_features(traj, use_expected=False)
    assert "400" not in action_text(traj.steps[0]) and "400" in result_text(traj.steps[0])
    assert flows[0].introduced == [] and flows[0].result_problem is not None


def test_the_texts_the_attributor_remembers_are_bounded_in_number_and_length():
    from agenttrace.attribution import observations

    for i in range(observations.READ_CACHE + 50):
        observations.split(f"step {i}: Traceback (most recent call last):\n  File \"x.py\", line {i}\nKeyError: 'k'")
    assert observations.split.cache_info().currsize == observations.READ_CACHE
    long = "I clicked 'Next'.\n" * (observations.CACHED_CHARS // 10)
    hits = observations.split.cache_info().hits
    assert observations.split(long) == observations.split(long) == (long, "")  # read anew each time
    assert observations.split.cache_info().hits == hits


def test_the_field_a_browsing_agent_types_into_is_named_by_the_page_not_by_the_agent():
    from agenttrace.attribution.observations import split

    typed = "I typed 'Are crayfish crustaceans?' into '0 characters out of 2000'."
    assert split(typed) == ("I typed 'Are crayfish crustaceans?'", "into '0 characters out of 2000'.")
    run = from_whowhen({"question": "Are crayfish crustaceans?", "history": [
        {"role": "human", "content": "Are crayfish crustaceans?"},
        {"role": "WebSurfer", "content": f"{typed}\n\nHere is a screenshot of [Bing](https://bing.com). Crayfish are crustaceans."},
        {"role": "Orchestrator (final answer)", "content": "FINAL ANSWER: yes"},
    ]}).trajectory
    _, flows = extract_features(run, use_expected=False)
    assert flows[1].introduced == []  # the 2000 is the field's name on the page


def test_a_click_on_a_control_the_page_does_not_spell_out_gets_no_advice_on_what_to_pass():
    run = from_whowhen({"question": "Which ticket is cheapest?", "history": [
        {"role": "human", "content": "Which ticket is cheapest?"},
        {"role": "WebSurfer", "content": "I clicked 'Daily Passes'.\n\nHere is a screenshot of [Tickets](https://x.org). Adult 12"},
        {"role": "WebSurfer", "content": "I typed 'cheapest ticket Zurich'.\n\nHere is a screenshot of [Bing](https://bing.com). 9"},
        {"role": "Orchestrator (final answer)", "content": "FINAL ANSWER: 12"},
    ]}).trajectory
    view = cl.View(run)
    clicked = cl.CallsWithUnseenWord(1, "clicked", "", "Daily Passes", "daily")
    typed = cl.CallsOffTask(2, "typed", "", "cheapest ticket Zurich", "Zurich")
    assert clicked.holds(view) and typed.holds(view)
    # which control it should have clicked is on the page, which the log has only as text
    assert clicked.advice(view) == "" and cl.CallsOffTask(1, "clicked", "", "Daily Passes", "Daily").advice(view) == ""
    assert typed.advice(view) == "call typed with the task's own values, not 'Zurich'"


def test_a_word_an_input_gave_as_a_possessive_was_given():
    from agenttrace.attribution.flow import word_forms

    assert "jerry" in word_forms("jerry's") and "jerry's" in word_forms("jerry")
    traj = Trajectory(run_id="t", task="Which Ben & Jerry's flavour was retired last?", steps=[
        Step(index=0, agent="surfer", content="Searching.",
             tool_calls=[ToolCall(name="web_search", arguments={"query": "Ben Jerry retired flavour"}, result="...")]),
        Step(index=1, agent="surfer", content="Done."),
    ])
    _, flows = extract_features(traj, use_expected=False)
    assert flows[0].unseen_argument is None


def test_a_function_word_or_a_date_in_an_argument():
    call = lambda args: Trajectory(run_id="t", task="Find the fare of Oslo-Rome on 2025-03-25.", steps=[
        Step(index=0, agent="fetcher", content="Looking.", tool_calls=[ToolCall(name="get_fare", arguments=args, result="1")]),
        Step(index=1, agent="fetcher", content="Done."),
    ])
    _, flows = extract_features(call({"route": "what Oslo-Rome", "date": "2025-03-25"}), use_expected=False)
    assert flows[0].unseen_argument is None  # 'what' says nothing of its own
    _, flows = extract_features(call({"route": "Oslo-Rome", "date": "2025-03-18"}), use_expected=False)
    assert flows[0].unseen_argument == ("get_fare", "date", "2025-03-18", "2025-03-18")  # a date no input gave


def test_the_words_a_delegation_hands_on_are_no_lookup_key():
    delegate = ToolCall(name="delegate_work_to_coworker", result="Oslo-Rome: 120 EUR.",
                        arguments={"task": "Steps: look up Oslo-Rome, then report back.", "coworker": "fetcher"})
    traj = Trajectory(run_id="t", task="Find the fare of Oslo-Rome.", steps=[
        Step(index=0, agent="lead", content="", tool_calls=[delegate], transfer_to="fetcher"),
        Step(index=1, agent="fetcher", content="Oslo-Rome: 120 EUR."),
    ])
    _, flows = extract_features(traj, use_expected=False)
    assert flows[0].unseen_argument is None  # 'steps', 'report' are the lead's words to the fetcher


def test_a_total_worked_out_from_what_the_step_was_given_is_not_said_to_come_from_nowhere():
    traj = Trajectory(run_id="t", task="Add up the fares of Oslo-Rome and Paris-Rome.", steps=[
        Step(index=0, agent="fetcher", content="Looking up.", tool_calls=[
            ToolCall(name="get_fare", arguments={"route": "Oslo-Rome"}, result="Oslo-Rome: 120 EUR"),
            ToolCall(name="get_fare", arguments={"route": "Paris-Rome"}, result="Paris-Rome: 180 EUR")]),
        Step(index=1, agent="writer", content="The total is 300 EUR; with the fee, 345 EUR."),
    ])
    _, flows = extract_features(traj, use_expected=False)
    view = cl.View(traj)
    assert flows[1].introduced == ["300", "345"] and flows[1].underived == ["345"]
    assert evidence_claims(view, 1, "introduced_to_answer", flows[1], None) == [
        cl.IntroducesNumber(1, "345"), cl.ReachesAnswer(1, "345")]
    assert evidence_claims(view, 1, "num_introduced", flows[1], None) == [cl.IntroducesNumber(1, "345")]
    flows[1].underived = []
    assert evidence_claims(view, 1, "introduced_to_answer", flows[1], None) == [cl.ReachesAnswer(1, "300")]
    assert evidence_claims(view, 1, "num_introduced", flows[1], None) == []


def test_the_same_words_twice_in_a_row_are_one_turn_logged_twice_not_a_loop():
    said = "Engineer thinking: the function is written and tested."
    traj = Trajectory(run_id="t", task="write f", steps=[
        Step(index=0, agent="Engineer", content=said), Step(index=1, agent="Engineer", content=said),
        Step(index=2, agent="Lead", content="Please check it again."), Step(index=3, agent="Engineer", content=said),
    ])
    _, flows = extract_features(traj)
    assert [f.repeats for f in flows] == [None, None, None, 1]


def test_a_code_executors_report_is_the_environment_answering_not_an_agent_acting():
    traj = Trajectory(run_id="e", task="Print the sum of 2 and 3.", steps=[
        Step(index=0, agent="Coder", content="```python\nprint(2 + '3')\n```"),
        Step(index=1, agent="Computer_terminal", role="user",
             content="exitcode: 1 (execution failed)\nCode output: TypeError: unsupported operand type(s)"),
        Step(index=2, agent="Coder", content="The sum is 5."),
    ])
    x, flows = extract_features(traj)
    assert flows[1].tool_output and not flows[0].tool_output
    assert x[1, _col("problem_here")] == 0 and x[1, _col("error_words")] == 0  # it decides nothing
    assert x[0, _col("problem_next")] == 1  # the report is the code's outcome, and the coder's
    p = CpuAttributor().step_probabilities(traj)
    assert p[1] == 0 and p.sum() == pytest.approx(1.0)  # and no verdict names it


def _served(user: str, opener_asked: bool = True) -> Trajectory:
    """A customer-service run: ``user`` asks for a price, the assistant asks back, looks it up and answers."""
    question = "Which region should I use?" if opener_asked else "Noted, looking it up now."
    return Trajectory(run_id="u", task="What does a kettle cost in the EU store?", steps=[
        Step(index=0, agent=user, content="Hi! I need the price of a kettle.", transfer_to="assistant",
             tool_calls=[ToolCall(name="transfer_to_assistant", arguments={}, result="transferred")]),
        Step(index=1, agent="assistant", content=question, transfer_to=user,
             tool_calls=[ToolCall(name=f"transfer_to_{user}", arguments={}, result="transferred")]),
        Step(index=2, agent=user, content="APAC, please.", transfer_to="assistant",
             tool_calls=[ToolCall(name="transfer_to_assistant", arguments={}, result="transferred")]),
        Step(index=3, agent="assistant", content="Checking.", tool_calls=[
            ToolCall(name="get_price", arguments={"product": "kettle", "region": "APAC"}, result="kettle: 40 EUR")]),
        Step(index=4, agent="assistant", content="A kettle costs 40 EUR."),
    ])


def test_an_agent_that_plays_the_user_is_read_as_the_user_whatever_its_name():
    played = _served("shopper")
    assert simulated_users(played) == {"shopper"}
    assert [s.role for s in mark_users(played).steps] == ["human", "assistant", "human", "assistant", "assistant"]
    x, flows = extract_features(played)
    assert flows[0].human and flows[2].human and not flows[1].human
    assert x[0, _col("is_request")] == 1 and x[1, _col("first_action")] == 1
    assert x[2, _col("hands_off")] == 0  # its handoff back is not an agent's choice
    # its wrong region reaches the assistant's call: the value originates with the user
    assert x[2, _col("offtask_origin")] == 1
    assert cl.View(played).steps[0].role == "human"  # reasons are checked against the same reading


def test_an_opener_nobody_asks_anything_or_a_transcript_has_no_simulated_user():
    assert simulated_users(_served("intake", opener_asked=False)) == set()
    text_only = Trajectory(run_id="t", task="Sum 2 and 3.", steps=[
        Step(index=0, agent="planner", content="Plan: add the numbers."),
        Step(index=1, agent="coder", content="Should I print it?"),
        Step(index=2, agent="planner", content="Yes."),
        Step(index=3, agent="coder", content="5"),
    ])
    assert simulated_users(text_only) == set() and mark_users(text_only) is text_only


def test_relative_columns_describe_the_acting_steps_only():
    x, _ = extract_features(_served("customer"))
    for name in ("log_len_z", "novelty_z", "agent_len_z", "error_words_z", "introduced_rel", "code_rel"):
        assert x[0, _col(name)] == 0 and x[2, _col(name)] == 0, name
        assert abs(x[[1, 3, 4], _col(name)].mean()) < 1e-9, name


def test_the_plain_verdict_rule_stands_unless_another_beats_it_by_more_than_a_standard_error():
    steps = [Step(index=i, agent=a, content=f"turn {i}") for i, a in enumerate(["lead", "worker", "lead"])]

    def rows(lead_labelled: int, worker_labelled: int) -> Rows:
        labels = [Label(agent="lead", step=0)] * lead_labelled + [Label(agent="worker", step=1)] * worker_labelled
        items = [LabelledTrajectory(id=str(k), subset="g", trajectory=Trajectory(run_id=str(k), steps=steps), label=lab)
                 for k, lab in enumerate(labels)]
        return Rows({"g": Featurised(items)}, views=(False,))

    # the worker's step is the most likely; the lead holds more of the probability over its two steps
    def scores(r: Rows) -> np.ndarray:
        return np.tile([0.9, 1.0, 0.9], len(r))

    near = rows(21, 19)  # by mass is right on 2 runs more of 40: a coin flip
    accuracy, rule = _best_rule(scores(near), near)
    assert rule == PLAIN_RULE and accuracy == pytest.approx(19 / 40)
    clear = rows(36, 4)
    accuracy, rule = _best_rule(scores(clear), clear)
    assert rule[0] and accuracy == pytest.approx(36 / 40)
    # a rule that wins on one group and only ties on the other is that group's trait: the plain rule stands
    one = Featurised([LabelledTrajectory(id=f"a{k}", subset="a", trajectory=Trajectory(run_id=f"a{k}", steps=steps),
                                         label=Label(agent="lead", step=0)) for k in range(36)])
    tied = Featurised([LabelledTrajectory(id=f"b{k}", subset="b", trajectory=Trajectory(run_id=f"b{k}", steps=steps),
                                          label=Label(agent="worker", step=1)) for k in range(36)])
    two = Rows({"a": one, "b": tied}, views=(False,))
    both = np.concatenate([np.tile([0.9, 1.0, 0.9], 36), np.tile([0.0, 3.0, 0.0], 36)])  # group b: one clear step
    accuracy, rule = _best_rule(both, two)
    assert rule == PLAIN_RULE and accuracy == pytest.approx(0.5)


def test_a_value_a_browsing_agent_reads_off_the_page_is_not_its_own():
    page = "Here is a screenshot of [Eiffel Tower history](https://example.org). In 1889 the tower was 300 m tall."
    run = from_whowhen({"question": eiffel.TASK, "history": [
        {"role": "human", "content": eiffel.TASK},
        {"role": "Orchestrator (-> WebSurfer)", "content": "Please find how tall the Eiffel Tower is as it stands today."},
        {"role": "WebSurfer", "content": f"I typed 'Eiffel Tower height 1889' into the browser search bar.\n\n{page}"},
        {"role": "Orchestrator (final answer)", "content": "FINAL ANSWER: 300 m"},
    ]}).trajectory
    verdict = CpuAttributor(use_expected=False).attribute(run)
    assert (verdict.agent, verdict.step) == ("WebSurfer", 2)
    # the 300 is what the page showed, carried to the answer; the WebSurfer never "states" it
    assert "the 300 that typed returned reaches the final answer" in verdict.reason
    assert "states 300" not in verdict.reason


def test_a_run_read_back_from_an_export_chat_messages_or_react_text_gets_the_same_verdict():
    import json

    from agenttrace.data.datasets import to_whowhen

    traj = eiffel_run()
    chat = {"question": eiffel.TASK, "answer": "300 m", "history": [
        {"role": "assistant", "name": "searcher", "content": "Looking it up.", "tool_calls": [
            {"id": "1", "type": "function", "function": {"name": "web_search", "arguments": json.dumps(eiffel.QUERY)}}]},
        {"role": "tool", "tool_call_id": "1", "content": eiffel.RESULT},
        {"role": "assistant", "name": "writer", "content": "The tower is 300 m tall."}]}
    react = {"question": eiffel.TASK, "answer": "300 m", "history": [
        {"role": "assistant", "name": "searcher",
         "content": f"Thought: Looking it up.\nAction: web_search\nAction Input: {json.dumps(eiffel.QUERY)}"},
        {"role": "user", "name": "searcher", "content": f"Observation: {eiffel.RESULT}"},
        {"role": "assistant", "name": "writer", "content": "The tower is 300 m tall."}]}
    attributor = CpuAttributor(use_expected=False)
    direct = attributor.attribute(traj)
    assert (direct.agent, direct.step) == ("searcher", 0) and "as_of_year=1889" in direct.reason
    for read in (from_whowhen(to_whowhen(traj)).trajectory, from_whowhen(chat).trajectory,
                 from_whowhen(react).trajectory):
        verdict = attributor.attribute(read)
        assert (verdict.agent, verdict.step, verdict.reason) == (direct.agent, direct.step, direct.reason)


_TEMPLATE = """# Instructions
Pay close attention to the example provided; you can reuse it for your current situation if it fits.
If you open a file, the line number is displayed at the front of each line you are shown.
You may use any of the available commands to create a plan or to update the plan you already have.
If you finish the current task, you will automatically take the next task in the existing plan.
Review the latest outcome of the plan, focusing on what was achieved and on what is still missing.
Using two editing commands in one command list is forbidden, because they change the line numbers.
In your response, include at least one command; if you want to stop, use the end command.
Some text indicating your thoughts is required before the single json array of your commands."""


def _prompted_run(loop: str = "") -> Trajectory:
    """A log that writes each agent's prompt (a template, the task or the message it was sent) before its reply."""
    task = ("Write a function top3(lst) that returns the 3 largest numbers of a list of integers, in descending "
            "order, as a new list. The input list must not be changed. When the list has fewer than three numbers, "
            "return all of them, largest first. Duplicates count separately: top3([5, 5, 1]) is [5, 5, 1]. Use only "
            "the standard library, add a docstring, and write the solution to the file top3.py in the workspace.")
    ask = ("Coder, please write top3(lst) returning the three largest numbers, largest first, in a new list, "
           "without changing the input; fewer than three numbers come back all, and duplicates count separately.")
    steps = [
        ("Lead", f"Lead thinking:\n# Goal\n{task}\n{_TEMPLATE}"),
        ("Lead", "I will hand this to the coder."),
        ("Lead", f"Lead sends to Coder: {ask}"),
        ("Coder", f"Coder thinking:\n# Goal\n[Message] from Lead: {ask}\n{_TEMPLATE}"),
        ("Coder", "def top3(lst): return sorted(lst)[:3]"),
        ("Coder", f"Coder thinking:\n# Goal\n[Message] from Lead: {ask}\n{_TEMPLATE}"),
        ("Coder", loop or "Done: top3 is written."),
        ("Coder", loop or "Finished."),
        ("Coder", loop or "Ending my turn."),
        ("Lead", "The coder has finished."),
    ]
    return Trajectory(run_id="p", task=task, steps=[Step(index=i, agent=a, content=c) for i, (a, c) in enumerate(steps)])


def test_a_prompt_logged_before_an_agents_reply_is_what_it_was_given_not_an_action():
    from agenttrace.attribution.cpu import _ALSO_HUMAN
    from agenttrace.attribution.echoes import prompt_echoes

    traj = _prompted_run()
    assert prompt_echoes(traj) == {0, 3, 5}
    x, flows = extract_features(traj)
    assert [f.prompt_echo for f in flows] == [i in {0, 3, 5} for i in range(10)]
    actions = [j for j, name in enumerate(FEATURES) if name not in _ALSO_HUMAN]
    assert not x[np.ix_([0, 3, 5], actions)].any()  # as for a user's turn, nothing of what it does is read
    assert x[1, _col("first_action")] == 1  # the lead's first act is its reply, not the prompt it was given
    # the same long words of its own three times over are a loop, not a prompt
    loop = "\n".join(f"I retry the function top3 once more, attempt line {k}: sorted(lst)[:3] fails again."
                     for k in range(14))
    assert prompt_echoes(_prompted_run(loop)) == {0, 3, 5}


def test_a_verdict_on_a_logged_prompt_quotes_the_reply_not_the_prompt():
    traj = _prompted_run()
    view = cl.View(traj)
    x, flows = extract_features(traj)
    claims = CpuAttributor()._claims(view, 3, x, flows, causes(traj.steps, flows))
    said = [c for c in claims if isinstance(c, (cl.Says, cl.PromptBeforeReply))]
    assert said == [cl.PromptBeforeReply(3, "def top3(lst): return sorted(lst)[:3]")]
    assert said[0].clause(view) == ('it is the prompt Coder was given, logged before its reply (step 4): '
                                    '"def top3(lst): return sorted(lst)[:3]"')
    assert not cl.PromptBeforeReply(4, "Done: top3 is written.").holds(view)  # a reply is no prompt
    assert not cl.PromptBeforeReply(3, "Finished.").holds(view)  # not what the reply says


def test_the_system_message_a_chat_log_opens_with_is_what_the_run_was_asked():
    from agenttrace.attribution.flow import is_human

    item = from_whowhen({"question": "Refund order 7 in full.", "history": [
        {"role": "system", "content": "You are a support agent. Refunds above 100 EUR need a manager."},
        {"role": "user", "content": "Please refund order 7, it cost 40 EUR."},
        {"role": "assistant", "name": "agent", "content": "Refunded 45 EUR."}]})
    steps = item.trajectory.steps
    assert [is_human(s) for s in steps] == [True, True, False]
    verdict = CpuAttributor(use_expected=False).attribute(item.trajectory)
    assert (verdict.agent, verdict.step) == ("agent", 2)


def test_the_first_to_write_a_line_the_last_code_keeps_is_where_that_line_comes_from():
    buggy = "```python\ndef vowels(s):\n    return sum(c in 'aeiou' for c in s) + 1\n\nprint(vowels('banana'))\n```"
    fixed = ("```python\ndef vowels(s):\n    return sum(c in 'aeiou' for c in s) + 1\n\n"
             "print(vowels('banana'), vowels(''))\n```")
    traj = Trajectory(run_id="c", task="Count the vowels of 'banana' with a function vowels(s).", steps=[
        Step(index=0, agent="Planner", content="Write vowels(s) and test it on 'banana'."),
        Step(index=1, agent="Coder", content=buggy),
        Step(index=2, agent="Computer_terminal", role="user", content="exitcode: 0 (execution succeeded)\nCode output: 4"),
        Step(index=3, agent="Coder", content=f"Adding the empty case.\n{fixed}"),
        Step(index=4, agent="Computer_terminal", role="user", content="exitcode: 0 (execution succeeded)\nCode output: 4 1"),
        Step(index=5, agent="Planner", content="banana has 4 vowels."),
    ])
    x, flows = extract_features(traj)
    origins = {i: f.code_origin.line for i, f in enumerate(flows) if f.code_origin}
    assert origins == {1: "def vowels(s):", 3: "print(vowels('banana'), vowels(''))"}  # the first new line of each
    assert x[1, _col("code_origin")] == 1 and x[2, _col("code_origin")] == 0
    view = cl.View(traj)
    claim = cl.WritesKeptCode(1, origins[1], 3)
    assert claim.holds(view)
    assert claim.clause(view) == ("it is the first to write the line 'def vowels(s):', "
                                  "which the last code an agent writes (step 3) still has")
    assert not cl.WritesKeptCode(3, origins[1], 3).holds(view)  # step 1 wrote it first
    # code the task hands over is no agent's
    given = traj.model_copy(update={"task": f"Fix this and run it:\n{buggy}"})
    _, flows = extract_features(given)
    assert [i for i, f in enumerate(flows) if f.code_origin] == [3]


def test_a_word_the_task_gives_in_the_plural_is_given_in_the_singular_too():
    traj = Trajectory(run_id="k", task="What do 2 kettles cost in the EU store?", steps=[
        Step(index=0, agent="assistant", content="Looking it up.", tool_calls=[
            ToolCall(name="get_price", arguments={"product": "kettle", "region": "US"}, result="39.5 USD")]),
        Step(index=1, agent="assistant", content="2 kettles cost 79 USD."),
    ])
    _, flows = extract_features(traj)
    assert flows[0].unseen_argument is None  # 'kettles' gives 'kettle' ('us' is too short a word to judge)
    assert [a.token for a in flows[0].off_task] == ["US"]
    view = cl.View(traj)
    assert not cl.CallsWithUnseenWord(0, "get_price", "product", "kettle", "kettle").holds(view)
    assert not cl.CallsOffTask(0, "get_price", "product", "kettle", "kettle").holds(view)
    assert cl.CallsOffTask(0, "get_price", "region", "US", "US").holds(view)
    cited = [c.clause(view) for f in FEATURES for c in evidence_claims(view, 0, f, flows[0], None)]
    assert any("region='US'" in c for c in cited) and not any("kettle'" in c for c in cited)
    assert "kettle'" not in CpuAttributor(use_expected=False).attribute(traj).reason


def test_an_assumption_word_the_task_uses_is_no_guess_of_a_step_restating_it():
    task = "What is the 2020 estimated population of the island?"
    traj = Trajectory(run_id="e", task=task, answer="57000", steps=[
        Step(index=0, agent="planner", content=f"The task: {task} Plan: look it up."),
        Step(index=1, agent="researcher", content="I estimate it at 57000 without verifying."),
    ])
    _, flows = extract_features(traj)
    assert [f.assume_word for f in flows] == [None, "without verifying"]


def test_the_task_words_a_plan_may_leave_out_are_what_it_is_about_not_its_phrasing():
    from agenttrace.attribution.flow import salient_task_words

    task = "Here's the list; what's the cheapest of Jerry's Oreos in 2022? Don't count those that aren't sold."
    assert salient_task_words(task) == ["list", "cheapest", "jerry's", "oreos", "2022", "count", "sold"]
