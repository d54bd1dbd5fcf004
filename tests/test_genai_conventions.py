"""The GenAI conventions of semantic-conventions-genai (gen-ai/1.42): workflow and plan spans (a plan span is a container
for the model call that drafts the plan, or a step when it carries the plan itself), MCP tool calls,
A2A calls between agents, including one run across two processes joined by W3C trace context."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

import agenttrace
from agenttrace.local_collector import LocalCollector
from tests.test_assemble import emit  # noqa: F401 - spans encoded as the OTLP exporter sends them, then assembled

OUT = "gen_ai.output.messages"


def said(text: str) -> str:
    return json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": text}]}])


def asked_tool(name: str, call_id: str, arguments: dict) -> str:
    return json.dumps([{"role": "assistant", "parts": [
        {"type": "tool_call", "id": call_id, "name": name, "arguments": arguments}]}])


def plan_drafted_by_a_model_call(tracer):
    with tracer.start_as_current_span("invoke_agent Planner", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "Planner"}):
        with tracer.start_as_current_span("plan Planner", attributes={
                "gen_ai.operation.name": "plan", "gen_ai.agent.name": "Planner",
                "gen_ai.provider.name": "openai", "gen_ai.request.model": "m"}):
            with tracer.start_as_current_span("chat m", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.request.model": "m", OUT: said("1. find 2. book")}):
                pass


def plan_recorded_outside_any_agent_span(tracer):
    with tracer.start_as_current_span("plan Planner", attributes={
            "gen_ai.operation.name": "plan", "gen_ai.agent.name": "Planner", OUT: said("1. find 2. book")}):
        pass


@pytest.mark.parametrize("planner", [plan_drafted_by_a_model_call, plan_recorded_outside_any_agent_span])
def test_a_workflow_contains_its_agents_steps_and_a_plan_is_a_step_of_the_planner(emit, planner):  # noqa: F811
    """A plan span holds the model call that drafts the plan (that call is the step), or carries the plan itself."""
    tracer, trajectory = emit
    with tracer.start_as_current_span("invoke_workflow trip", attributes={
            "gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": "trip"}):
        planner(tracer)
        with tracer.start_as_current_span("invoke_agent Booker", attributes={
                "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "Booker", OUT: said("booked")}):
            pass
    steps = trajectory().steps
    assert [(s.agent, s.content) for s in steps] == [("Planner", "1. find 2. book"), ("Booker", "booked")]


def test_an_mcp_tool_call_traced_by_client_and_server_is_one_call_with_its_result(emit):  # noqa: F811
    tracer, trajectory = emit
    with tracer.start_as_current_span("invoke_agent Researcher", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "Researcher"}):
        with tracer.start_as_current_span("chat m", attributes={
                "gen_ai.operation.name": "chat", OUT: asked_tool("search", "c1", {"q": "Eiffel"})}):
            pass
        with tracer.start_as_current_span("tools/call search", kind=SpanKind.CLIENT, attributes={
                "mcp.method.name": "tools/call", "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search",
                "gen_ai.tool.call.id": "c1", "gen_ai.tool.call.result": '{"year": 1889}'}):
            with tracer.start_as_current_span("POST", kind=SpanKind.CLIENT, attributes={"http.request.method": "POST"}):
                with tracer.start_as_current_span("tools/call search", kind=SpanKind.SERVER, attributes={
                        "mcp.method.name": "tools/call", "gen_ai.operation.name": "execute_tool",
                        "gen_ai.tool.name": "search", "gen_ai.tool.call.result": '{"year": 1889}'}):
                    pass
    [step] = trajectory().steps
    assert [(c.name, c.arguments, c.result) for c in step.tool_calls] == [("search", {"q": "Eiffel"}, {"year": 1889})]


def test_an_mcp_span_without_genai_attributes_is_still_a_tool_call(emit):  # noqa: F811
    tracer, trajectory = emit
    with tracer.start_as_current_span("invoke_agent Researcher", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "Researcher", OUT: said("done")}):
        with tracer.start_as_current_span("tools/call fetch", kind=SpanKind.CLIENT,
                                          attributes={"mcp.method.name": "tools/call"}):
            pass
    [step] = trajectory().steps
    assert [c.name for c in step.tool_calls] == ["fetch"]


def test_an_a2a_call_hands_off_to_the_remote_agent_whose_steps_follow(emit):  # noqa: F811
    tracer, trajectory = emit
    with tracer.start_as_current_span("invoke_agent Coordinator", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "Coordinator", OUT: said("ask research")}):
        with tracer.start_as_current_span("SendMessage", kind=SpanKind.CLIENT, attributes={
                "a2a.method.name": "SendMessage"}):  # no Agent Card name: the agent it runs is the target
            with tracer.start_as_current_span("SendMessage", kind=SpanKind.SERVER, attributes={
                    "a2a.method.name": "SendMessage", "gen_ai.agent.name": "Researcher"}):
                with tracer.start_as_current_span("invoke_agent Researcher", attributes={
                        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "Researcher",
                        OUT: said("1889")}):
                    pass
    steps = trajectory().steps
    assert [(s.agent, s.content, s.transfer_to) for s in steps] == [
        ("Coordinator", "ask research", "Researcher"), ("Researcher", "1889", None)]


REMOTE_AGENT = textwrap.dedent("""
    import json, sys
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind
    import agenttrace

    endpoint, carrier = sys.argv[1], json.loads(sys.argv[2])
    agenttrace.instrument(endpoint=endpoint, service_name="research-service", frameworks=[])
    tracer = trace.get_tracer("a2a-server")
    with tracer.start_as_current_span("SendMessage", context=propagate.extract(carrier), kind=SpanKind.SERVER,
                                      attributes={"a2a.method.name": "SendMessage"}):
        with agenttrace.agent_step("Researcher", input="When was the Eiffel Tower completed?") as step:
            step.output("It was completed in 1899.")
    assert agenttrace.flush()
""")


def test_a_run_across_two_processes_joined_by_trace_context_is_one_trajectory(tmp_path):
    with LocalCollector(tmp_path / "agenttrace.db", attributor="none", log_file=tmp_path / "collector.log",
                        extra_args=("--settle", "0.5")) as collector:
        agenttrace.instrument(endpoint=collector.endpoint, service_name="coordinator-service", frameworks=[])
        try:
            with agenttrace.run("eiffel", task="When was the Eiffel Tower completed?", expected="1889") as run:
                with agenttrace.agent_step("Coordinator") as step:
                    step.output("Researcher, find the year.")
                    with trace.get_tracer("a2a-client").start_as_current_span(
                            "SendMessage", kind=SpanKind.CLIENT,
                            attributes={"a2a.method.name": "SendMessage", "gen_ai.agent.name": "Researcher"}):
                        carrier: dict[str, str] = {}
                        propagate.inject(carrier)  # W3C traceparent, as an A2A client sends it
                        subprocess.run([sys.executable, "-c", REMOTE_AGENT, collector.endpoint, json.dumps(carrier)],
                                       check=True, timeout=60)
                run.finish("1899")
            assert agenttrace.flush()
        finally:
            agenttrace.uninstrument()
        trajectory, _ = collector.wait_run(run.run_id)
    assert [(s.agent, s.transfer_to) for s in trajectory.steps] == [("Coordinator", "Researcher"), ("Researcher", None)]
    assert trajectory.steps[1].content == "It was completed in 1899."
    assert trajectory.outcome.value == "failure"  # judged against "1889": the remote agent's answer is in the run
