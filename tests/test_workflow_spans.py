"""The manual API's workflow and plan spans (semantic-conventions-genai gen-ai/1.42: ``invoke_workflow``, ``plan``):
the attributes they carry, and the trajectory a real collector rebuilds from them."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import agenttrace
from agenttrace import semconv as sc
from tests.conftest import flush


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    agenttrace.instrument(service_name="workflow-tests", frameworks=[], exporter=exporter)
    yield lambda: (flush(), {s.name: s for s in exporter.get_finished_spans()})[1]
    agenttrace.uninstrument()


def trip(booked: str = "booked flight AF1") -> None:
    """A two-agent workflow whose planner records its plan itself (no model call drafts it)."""
    with agenttrace.workflow("trip-planner", input="Book me a flight to Paris") as flow:
        with agenttrace.agent_step("Planner", input="Book me a flight to Paris") as step:
            with agenttrace.plan("Planner") as plan:
                plan.output("1. find flights 2. book the cheapest")
            step.output("Booker, book the cheapest flight to Paris.")
            step.transfer("Booker")
        with agenttrace.agent_step("Booker") as step:
            step.output(booked)
        flow.output(booked)


def test_workflow_and_plan_spans_carry_the_conventions_attributes(spans):
    with agenttrace.run("trip", task="Book me a flight to Paris"):
        trip()
    by_name = spans()
    flow, plan = by_name["invoke_workflow trip-planner"], by_name["plan Planner"]
    assert flow.kind is SpanKind.INTERNAL and plan.kind is SpanKind.INTERNAL
    assert flow.attributes[sc.GEN_AI_OPERATION_NAME] == "invoke_workflow"
    assert flow.attributes[sc.GEN_AI_WORKFLOW_NAME] == "trip-planner"
    assert json.loads(flow.attributes[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Book me a flight to Paris"}]}]
    assert json.loads(flow.attributes[sc.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == "booked flight AF1"
    assert plan.attributes[sc.GEN_AI_OPERATION_NAME] == "plan" and plan.attributes[sc.GEN_AI_AGENT_NAME] == "Planner"
    assert json.loads(plan.attributes[sc.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == (
        "1. find flights 2. book the cheapest")
    # nesting: run > workflow > agent > plan
    planner = by_name["invoke_agent Planner"]
    assert plan.parent.span_id == planner.context.span_id
    assert planner.parent.span_id == flow.context.span_id
    assert flow.parent.span_id == by_name["agenttrace.run trip"].context.span_id


def test_an_exception_inside_a_workflow_or_plan_marks_both_failed(spans):
    with pytest.raises(TimeoutError), agenttrace.workflow("flaky"), agenttrace.plan("Planner"):
        raise TimeoutError("planner model timed out")
    by_name = spans()
    for name in ("invoke_workflow flaky", "plan Planner"):
        assert by_name[name].status.status_code is StatusCode.ERROR
        assert by_name[name].attributes[sc.ERROR_TYPE] == "TimeoutError"


def test_the_collector_reads_a_recorded_plan_as_the_planners_step(traced, collector):
    with agenttrace.run("trip", task="Book me a flight to Paris", expected="booked flight AF7") as run:
        trip(booked="booked flight AF7")
        run.finish("booked flight AF7")
    flush()
    traj, _ = collector.wait_run(run.run_id)
    assert [(s.agent, s.content, s.transfer_to) for s in traj.steps] == [
        ("Planner", "1. find flights 2. book the cheapest", None),
        ("Planner", "Booker, book the cheapest flight to Paris.", "Booker"),
        ("Booker", "booked flight AF7", None),
    ]
    assert traj.outcome.value == "success" and traj.answer == "booked flight AF7"  # judged against expected
    kinds = {s["name"]: s["kind"] for s in collector.get(f"/api/v1/runs/{run.run_id}/spans").json()}
    assert kinds["invoke_workflow trip-planner"] == "other" and kinds["plan Planner"] == "plan"


def test_a_plan_drafted_by_a_model_call_is_that_calls_step_only(traced, collector):
    with agenttrace.run("drafted-plan", task="Plan a trip") as run:
        with agenttrace.agent_step("Planner", input="Plan a trip") as step:
            with agenttrace.plan("Planner") as plan, agenttrace.llm_call("m", "Plan a trip") as llm:
                llm.response("1. flights 2. hotel")
                plan.output("1. flights 2. hotel")
            step.output("1. flights 2. hotel")
        run.succeed("planned")
    flush()
    traj, _ = collector.wait_run(run.run_id)
    assert [(s.agent, s.content) for s in traj.steps] == [("Planner", "1. flights 2. hotel")]
