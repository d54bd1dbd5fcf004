"""Tool calls executed on a later turn than the one that asked for them (AG2's function-execution replies): the
result goes onto the asking step's call, matched by call id, and the executing turn is no step - also for spans
written by AG2's own instrumentation alone, whose execution reply is a ``tool`` message with the output as text."""

from __future__ import annotations

import json

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agenttrace_collector import otlp
from agenttrace_collector.assemble import assemble
from agenttrace_collector.spanview import decode

OUTPUT = "economy fare Lisbon-Prague on 2025-03-25: 174 EUR"
ARGS = {"route": "Lisbon-Prague", "date": "2025-03-25"}


@pytest.fixture
def emit():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "tool-turn-tests"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    def steps():
        request = otlp.parse_request(encode_spans(exporter.get_finished_spans()).SerializeToString(), otlp.PROTOBUF)
        return assemble([decode(r.data, r.service) for r in otlp.rows(request)]).steps

    return provider.get_tracer("t"), steps


def _agent(tracer, name, output):
    return tracer.start_as_current_span(f"invoke_agent {name}", attributes={
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name,
        "gen_ai.output.messages": json.dumps(output)})


def _chat(tracer, name, parts):
    with tracer.start_as_current_span("chat m", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.agent.name": name,
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": parts}])}):
        pass


def _execute(tracer, call_id, result=OUTPUT, args=ARGS):
    with tracer.start_as_current_span("execute_tool get_fare", attributes={
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_fare", "gen_ai.tool.call.id": call_id,
            "gen_ai.tool.call.arguments": json.dumps(args), "gen_ai.tool.call.result": result}):
        pass


CALL = {"type": "tool_call", "id": "call_1", "name": "get_fare", "arguments": ARGS}
# AG2's upstream conversion of a function-execution reply, and agenttrace's
UPSTREAM_REPLY = [{"role": "tool", "parts": [{"type": "text", "content": OUTPUT}]}]
AGENTTRACE_REPLY = [{"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": OUTPUT}]}]


@pytest.mark.parametrize("reply", [UPSTREAM_REPLY, AGENTTRACE_REPLY], ids=["upstream", "agenttrace"])
@pytest.mark.parametrize("executor", ["lookup_agent", "user_proxy"])
def test_a_turn_that_only_executes_earlier_calls_is_no_step(emit, reply, executor):
    tracer, steps = emit
    with tracer.start_as_current_span("run", attributes={"agenttrace.span.kind": "run"}):
        with _agent(tracer, "lookup_agent", [{"role": "assistant", "parts": [{"type": "text", "content": "Looking."},
                                                                              CALL]}]):
            _chat(tracer, "lookup_agent", [{"type": "text", "content": "Looking."}, CALL])
        with _agent(tracer, executor, reply):
            _execute(tracer, "call_1")
        answer = {"type": "text", "content": "174 EUR."}
        with _agent(tracer, "lookup_agent", [{"role": "assistant", "parts": [answer]}]):
            _chat(tracer, "lookup_agent", [answer])
    got = steps()
    assert [(s.agent, s.content) for s in got] == [("lookup_agent", "Looking."), ("lookup_agent", "174 EUR.")]
    (call,) = got[0].tool_calls
    assert (call.id, call.arguments, call.result, call.error) == ("call_1", ARGS, OUTPUT, None)
    assert not got[1].tool_calls


def test_an_execution_nobody_asked_for_stays_a_call_on_the_executing_turn_without_the_output_as_content(emit):
    tracer, steps = emit
    with tracer.start_as_current_span("run", attributes={"agenttrace.span.kind": "run"}):
        with _agent(tracer, "user_proxy", UPSTREAM_REPLY):
            _execute(tracer, "call_9")
    (step,) = steps()
    assert step.agent == "user_proxy" and step.content == ""
    assert [(c.id, c.result) for c in step.tool_calls] == [("call_9", OUTPUT)]


def test_an_answered_call_is_not_answered_again_and_a_repeat_gets_its_own_result(emit):
    """A call id seen again (a model that numbers its calls per reply) answers the latest unanswered call."""
    tracer, steps = emit
    with tracer.start_as_current_span("run", attributes={"agenttrace.span.kind": "run"}):
        for result in (OUTPUT, "second"):
            with _agent(tracer, "lookup_agent", [{"role": "assistant", "parts": [CALL]}]):
                _chat(tracer, "lookup_agent", [CALL])
            with _agent(tracer, "lookup_agent", AGENTTRACE_REPLY):
                _execute(tracer, "call_1", result=result)
    got = steps()
    assert [[c.result for c in s.tool_calls] for s in got] == [[OUTPUT], ["second"]]


def test_an_executing_turn_that_failed_stays_a_step(emit):
    from opentelemetry.trace import Status, StatusCode

    tracer, steps = emit
    with tracer.start_as_current_span("run", attributes={"agenttrace.span.kind": "run"}):
        with _agent(tracer, "lookup_agent", [{"role": "assistant", "parts": [CALL]}]):
            _chat(tracer, "lookup_agent", [CALL])
        with _agent(tracer, "user_proxy", AGENTTRACE_REPLY) as span:
            _execute(tracer, "call_1")
            span.set_status(Status(StatusCode.ERROR, "executor crashed"))
    got = steps()
    assert [(s.agent, s.error is not None) for s in got] == [("lookup_agent", False), ("user_proxy", True)]
    assert got[0].tool_calls[0].result == OUTPUT and not got[1].tool_calls
