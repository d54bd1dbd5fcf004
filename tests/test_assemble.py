"""Trajectory assembly and failure detection on spans encoded exactly as the OTLP exporter sends them."""

from __future__ import annotations

import json

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from agenttrace.models import Outcome, Termination
from agenttrace_collector import otlp
from agenttrace_collector.assemble import assemble, find_run_span
from agenttrace_collector.failure import answer_matches, judge
from agenttrace_collector.spanview import decode
from tests import otlp_helpers


@pytest.fixture
def emit():
    """A private provider: tests set exact attributes, as another instrumentor would."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "conv-tests"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")

    def trajectory(root_ended: bool = True):
        request = otlp.parse_request(encode_spans(exporter.get_finished_spans()).SerializeToString(), otlp.PROTOBUF)
        views = [decode(r.data, r.service) for r in otlp.rows(request)]
        return judge(assemble(views), find_run_span(views), views, root_ended)

    return tracer, trajectory


def test_openinference_spans_become_steps_with_tool_results(emit):
    tracer, trajectory = emit
    with tracer.start_as_current_span("graph", attributes={"openinference.span.kind": "CHAIN",
                                                          "input.value": "What is 2+3?"}):
        with tracer.start_as_current_span("math_agent", attributes={"openinference.span.kind": "AGENT"}):
            with tracer.start_as_current_span("ChatOpenAI", attributes={
                "openinference.span.kind": "LLM",
                "llm.input_messages.0.message.role": "user",
                "llm.input_messages.0.message.content": "What is 2+3?",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.tool_calls.0.tool_call.id": "t1",
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "add",
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"a": 2, "b": 3}',
            }):
                pass
            with tracer.start_as_current_span("add", attributes={
                "openinference.span.kind": "TOOL", "tool.name": "add", "input.value": '{"a": 2, "b": 3}',
                "output.value": "5"}):
                pass
    traj = trajectory()
    assert traj.task == "What is 2+3?"
    (step,) = traj.steps
    assert step.agent == "math_agent" and step.input == "What is 2+3?"
    assert (step.tool_calls[0].name, step.tool_calls[0].arguments, step.tool_calls[0].result) == ("add", {"a": 2, "b": 3}, "5")


def test_openllmetry_spans_become_steps(emit):
    tracer, trajectory = emit
    with tracer.start_as_current_span("crew.workflow", attributes={"traceloop.span.kind": "workflow"}):
        with tracer.start_as_current_span("Writer.agent", attributes={
                "traceloop.span.kind": "agent", "traceloop.entity.name": "Writer"}):
            with tracer.start_as_current_span("openai.chat", attributes={
                "gen_ai.system": "openai", "gen_ai.request.model": "m",
                "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "write",
                "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "a poem",
            }):
                pass
    (step,) = trajectory().steps
    assert (step.agent, step.content, step.input) == ("Writer", "a poem", "write")


def test_parallel_branches_are_ordered_by_time_and_tool_errors_do_not_fail_a_recovered_run(emit):
    tracer, trajectory = emit

    def agent(name, text):
        return tracer.start_as_current_span(f"invoke_agent {name}", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name,
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": text}]}])})

    with tracer.start_as_current_span("agenttrace.run r", attributes={
            "agenttrace.span.kind": "run", "agenttrace.run.id": "r1", "agenttrace.run.outcome": "success"}):
        a = agent("A", "first")
        a.__enter__()
        b = agent("B", "second")
        b.__enter__()
        with tracer.start_as_current_span("execute_tool fetch", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "fetch"}) as tool:
            tool.set_status(Status(StatusCode.ERROR, "timeout"))
        b.__exit__(None, None, None)
        a.__exit__(None, None, None)
    traj = trajectory()
    assert [s.agent for s in traj.steps] == ["A", "B"]
    assert traj.steps[1].tool_calls[0].error == "timeout"
    assert traj.outcome is Outcome.SUCCESS and traj.termination is Termination.COMPLETED


def _turn(trace, span_id, parent, agent, text, start_ns, end_ns):
    return otlp_helpers.span(trace, span_id, parent, f"invoke_agent {agent}", start_ns, end_ns, **{
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent,
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": text}]}])})


def _assembled(spans):
    """The trajectory of OTLP spans received in the order given (as the store hands them to assembly)."""
    views = [decode(r.data, r.service) for r in otlp.rows(otlp.parse_request(otlp_helpers.request(spans),
                                                                               otlp.PROTOBUF))]
    return assemble(views)


MS = 1_700_000_000_000 * 1_000_000  # a start time in whole milliseconds, in ns


def test_turns_that_start_in_the_same_millisecond_keep_the_order_they_ran_in():
    """A JavaScript app's turns in one millisecond share a start time; the JS SDK's end time is that truncated
    start plus a measured duration, so a long first turn "ends" after a short second one. The order they were
    received in (a batch processor exports spans as they end) is the order they ran, whatever their span ids."""
    run = otlp_helpers.span(7, 99, 0, "agenttrace.run r", MS, MS + 3_000_000, **{
        "agenttrace.span.kind": "run", "agenttrace.run.id": "same-ms"})
    turns = [_turn(7, 30, 99, "Planner", "plan", MS, MS + 900_000),  # received first, highest span id
             _turn(7, 20, 99, "Coder", "code", MS, MS + 100_000),
             _turn(7, 10, 99, "Reviewer", "ok", MS, MS + 500_000)]
    assert [s.agent for s in _assembled([*turns, run]).steps] == ["Planner", "Coder", "Reviewer"]
    # received the other way round, the same spans are steps in that order: nothing else tells them apart
    assert [s.agent for s in _assembled([*reversed(turns), run]).steps] == ["Reviewer", "Coder", "Planner"]
    # starts a nanosecond apart are no tie: they are ordered by start time, however they were received
    apart = [_turn(7, 30 - i, 99, agent, "x", MS + i, MS + 900_000) for i, agent in enumerate(["A", "B", "C"])]
    assert [s.agent for s in _assembled([*reversed(apart), run]).steps] == ["A", "B", "C"]


def test_a_turn_and_a_turn_it_delegates_to_in_the_same_millisecond_are_in_that_order():
    """A turn starts before the turns nested in it, so with equal start times its step comes first too."""
    run = otlp_helpers.span(8, 99, 0, "agenttrace.run r", MS, MS + 3_000_000, **{
        "agenttrace.span.kind": "run", "agenttrace.run.id": "nested"})
    boss = _turn(8, 20, 99, "Boss", "delegated it", MS, MS + 2_000_000)
    helper = _turn(8, 10, 20, "Helper", "done", MS, MS + 1_000_000)
    assert [s.agent for s in _assembled([helper, boss, run]).steps] == ["Boss", "Helper"]


def _coordinator_turn(tracer, tool_calls=(), handoffs=(), failed=()):
    """An agent turn: one chat span (answering with ``tool_calls``), then a handoff span per target."""
    with tracer.start_as_current_span("agenttrace.run r", attributes={
            "agenttrace.span.kind": "run", "agenttrace.run.id": "h1"}):
        with tracer.start_as_current_span("invoke_agent Coordinator", attributes={
                "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "Coordinator"}):
            parts = [{"type": "text", "content": "assigning"}] + [{"type": "tool_call", "id": f"c{i}", "name": name,
                                                                   "arguments": {}} for i, name in enumerate(tool_calls)]
            with tracer.start_as_current_span("chat m", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                    "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": parts}])}):
                pass
            for target in handoffs:
                with tracer.start_as_current_span(f"handoff {target}", attributes={
                        "agenttrace.transfer.target": target, "agenttrace.transfer.source": "Coordinator"}) as h:
                    if target in failed:
                        h.set_status(Status(StatusCode.ERROR, "worker gone"))


def test_a_turn_with_several_handoff_spans_lists_every_target_on_its_step(emit):
    tracer, trajectory = emit
    _coordinator_turn(tracer, handoffs=["Researcher", "Writer: writes the answer", "Checker"], failed=["Checker"])
    (step,) = trajectory().steps
    assert (step.agent, step.content, step.transfer_to) == ("Coordinator", "assigning", "Researcher")
    assert [(c.name, c.error) for c in step.tool_calls] == [
        ("transfer_to_Researcher", None), ("transfer_to_Writer: writes the answer", None),
        ("transfer_to_Checker", "worker gone")]
    rendered = step.render()
    assert "[transfer] -> Researcher" in rendered and "transfer_to_Checker() -> error: worker gone" in rendered


def test_handoff_spans_that_match_handoff_tool_calls_add_no_calls_and_respell_the_target(emit):
    tracer, trajectory = emit
    _coordinator_turn(tracer, tool_calls=["transfer_to_billing_agent", "transfer_to_refunds_agent"],
                      handoffs=["Billing agent", "Refunds agent"])
    (step,) = trajectory().steps
    assert [c.name for c in step.tool_calls] == ["transfer_to_billing_agent", "transfer_to_refunds_agent"]
    assert step.transfer_to == "Billing agent"


def test_a_single_handoff_span_is_the_steps_transfer_and_no_tool_call(emit):
    tracer, trajectory = emit
    _coordinator_turn(tracer, handoffs=["Researcher"])
    (step,) = trajectory().steps
    assert (step.transfer_to, step.tool_calls) == ("Researcher", [])


def test_a_handoff_span_beside_a_different_handoff_tool_call_is_added_to_the_step(emit):
    tracer, trajectory = emit
    _coordinator_turn(tracer, tool_calls=["transfer_to_researcher"], handoffs=["Writer"])
    (step,) = trajectory().steps
    assert [c.name for c in step.tool_calls] == ["transfer_to_researcher", "transfer_to_Writer"]
    assert step.transfer_to == "researcher"


@pytest.mark.parametrize(("error", "label"), [
    ("MaxTurnsExceeded: Max turns (10) exceeded", Termination.TASK_LIMIT_EXCEEDED),
    ("This model's maximum context length is 8192 tokens", Termination.CONTEXT_LIMIT_EXCEEDED),
    ("OutputParserException: Could not parse LLM output", Termination.INVALID_FORMAT),
    ("Tool 'serch' not found", Termination.INVALID_ACTION),
    ("KeyError: 'x'", Termination.ERROR),
])
def test_failed_runs_get_a_termination_label(emit, error, label):
    tracer, trajectory = emit
    with tracer.start_as_current_span("agenttrace.run r", attributes={
            "agenttrace.span.kind": "run", "agenttrace.run.id": "r2"}) as root:
        root.set_status(Status(StatusCode.ERROR, error))
    traj = trajectory()
    assert traj.outcome is Outcome.FAILURE and traj.termination is label


def test_a_repeating_loop_is_a_task_limit_failure_and_an_unfinished_run_is_incomplete(emit):
    tracer, trajectory = emit
    with tracer.start_as_current_span("agenttrace.run r", attributes={
            "agenttrace.span.kind": "run", "agenttrace.run.id": "r3"}):
        for _ in range(4):
            with tracer.start_as_current_span("invoke_agent Looper", attributes={
                    "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "Looper",
                    "gen_ai.output.messages": '[{"role":"assistant","parts":[{"type":"text","content":"retrying"}]}]'}):
                pass
    traj = trajectory()
    assert traj.termination is Termination.TASK_LIMIT_EXCEEDED and traj.outcome is Outcome.FAILURE
    assert trajectory(root_ended=False).termination is Termination.INCOMPLETE


@pytest.mark.parametrize(("answer", "expected", "match"), [
    ("127", "127", True), ("The answer is 127.", "127", True), ("1270", "127", False),
    ("3.50", "3.5", True), ("Paris", "paris", True), ("Parisian", "Paris", False),
])
def test_answers_are_compared_after_normalisation(answer, expected, match):
    assert answer_matches(answer, expected) is match


def test_an_unreadable_team_is_left_out_and_the_run_still_assembles(emit):
    from agenttrace import semconv as sc

    tracer, trajectory = emit
    with tracer.start_as_current_span("agenttrace.run r", attributes={
            sc.SPAN_KIND: "run", sc.RUN_ID: "r1", sc.RUN_TASK: "2+3?", sc.RUN_TEAM: '[{"tools": "not a list"}]'}):
        with tracer.start_as_current_span("invoke_agent solver", attributes={
                "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "solver"}):
            pass
    traj = trajectory()
    assert traj.team == [] and [s.agent for s in traj.steps] == ["solver"] and traj.task == "2+3?"
