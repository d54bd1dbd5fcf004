"""The SDK's promises, checked on the spans it produces (in-memory exporter, no collector needed)."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agenttrace
from agenttrace import semconv as sc


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    agenttrace.instrument(service_name="sdk-tests", frameworks=[], exporter=exporter)
    yield lambda: (agenttrace.setup.active().force_flush(), exporter.get_finished_spans())[1]
    agenttrace.uninstrument()


def by_run(finished):
    runs = {}
    for s in finished:
        runs.setdefault(s.attributes.get(sc.RUN_ID), []).append(s)
    return runs


def test_run_span_carries_id_task_outcome_and_answer(spans):
    with agenttrace.run("solve", task="2+2?", expected="4") as run:
        with agenttrace.agent_step("Solver") as step:
            step.output("4")
        run.finish("4")
    root = next(s for s in spans() if s.attributes.get(sc.SPAN_KIND) == "run")
    assert root.attributes[sc.RUN_ID] == run.run_id
    assert root.attributes[sc.RUN_TASK] == "2+2?"
    assert root.attributes[sc.RUN_EXPECTED] == "4"
    assert root.attributes[sc.RUN_ANSWER] == "4"
    assert root.attributes[sc.RUN_OUTCOME] == "unknown"  # with expected set, the collector judges


def test_manual_api_emits_genai_spans_with_increasing_step_indices(spans):
    with agenttrace.run("r") as run:
        with agenttrace.agent_step("Planner", input="task") as step:
            with agenttrace.llm_call("gpt-x", [{"role": "user", "content": "plan it"}]) as llm:
                llm.response({"role": "assistant", "content": None,
                              "tool_calls": [{"id": "c1", "function": {"name": "search", "arguments": '{"q": "x"}'}}]},
                             input_tokens=5, output_tokens=7)
            with agenttrace.tool_call("search", {"q": "x"}, call_id="c1") as tool:
                tool.result({"hits": 3})
            step.output("done")
        run.succeed("done")
    finished = spans()
    names = [s.name for s in sorted(finished, key=lambda s: s.start_time)]
    assert names == ["agenttrace.run r", "invoke_agent Planner", "chat gpt-x", "execute_tool search"]
    children = [s for s in finished if s.attributes.get(sc.SPAN_KIND) != "run"]
    assert all(s.attributes[sc.RUN_ID] == run.run_id for s in children)
    indices = [s.attributes[sc.STEP_INDEX] for s in sorted(children, key=lambda s: s.start_time)]
    assert indices == [0, 1, 2]
    chat = next(s for s in finished if s.name.startswith("chat"))
    assert chat.attributes[sc.GEN_AI_OPERATION_NAME] == "chat"
    out = json.loads(chat.attributes[sc.GEN_AI_OUTPUT_MESSAGES])
    assert out[0]["parts"][0] == {"type": "tool_call", "id": "c1", "name": "search", "arguments": {"q": "x"}}
    assert json.loads(chat.attributes[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "plan it"}]}]
    agent = next(s for s in finished if s.name == "invoke_agent Planner")
    assert chat.parent.span_id == agent.context.span_id
    tool = next(s for s in finished if s.name == "execute_tool search")
    assert json.loads(tool.attributes[sc.GEN_AI_TOOL_CALL_RESULT]) == {"hits": 3}


def test_an_escaping_exception_fails_the_run_and_marks_the_error(spans):
    with pytest.raises(ZeroDivisionError):
        with agenttrace.run("boom"):
            with agenttrace.tool_call("divide", {"a": 1, "b": 0}):
                1 / 0  # noqa: B018
    finished = spans()
    root = next(s for s in finished if s.attributes.get(sc.SPAN_KIND) == "run")
    tool = next(s for s in finished if s.name == "execute_tool divide")
    assert root.attributes[sc.RUN_OUTCOME] == "failure"
    assert root.status.status_code is trace.StatusCode.ERROR
    assert tool.attributes[sc.ERROR_TYPE] == "ZeroDivisionError"


def test_decorator_form_records_the_return_value_sync_and_async(spans):
    @agenttrace.run("sync-run")
    def solve():
        return "42"

    @agenttrace.run("async-run")
    async def asolve():
        await asyncio.sleep(0)
        return "43"

    assert solve() == "42"
    assert asyncio.run(asolve()) == "43"
    roots = {s.attributes[sc.RUN_NAME]: s for s in spans() if s.attributes.get(sc.SPAN_KIND) == "run"}
    assert roots["sync-run"].attributes[sc.RUN_OUTCOME] == "success"
    assert roots["async-run"].attributes[sc.RUN_ANSWER] == "43"


def _three_steps(i: int) -> str:
    with agenttrace.run(f"run-{i}") as run:
        def worker(k):
            with agenttrace.agent_step(f"Worker{k}") as step:
                step.output(f"{i}-{k}")
        with ThreadPoolExecutor(2) as pool:  # context must follow into the pool
            list(pool.map(worker, range(3)))
    return run.run_id


def test_runs_in_threads_keep_their_own_ids_and_step_sequences(spans):
    with ThreadPoolExecutor(8) as pool:
        run_ids = list(pool.map(_three_steps, range(20)))
    runs = by_run(spans())
    for run_id in run_ids:
        steps = [s for s in runs[run_id] if s.attributes.get(sc.SPAN_KIND) != "run"]
        assert sorted(s.attributes[sc.STEP_INDEX] for s in steps) == [0, 1, 2]
        root = next(s for s in runs[run_id] if s.attributes.get(sc.SPAN_KIND) == "run")
        assert all(s.parent.span_id == root.context.span_id for s in steps)


def test_runs_in_asyncio_tasks_keep_their_own_ids(spans):
    async def one(i):
        async with agenttrace.run(f"a{i}") as run:
            for k in range(2):
                await asyncio.sleep(0)
                with agenttrace.agent_step(f"A{k}"):
                    await asyncio.sleep(0)
        return run.run_id

    async def main():
        return await asyncio.gather(*(one(i) for i in range(20)))

    run_ids = asyncio.run(main())
    runs = by_run(spans())
    assert all(sorted(s.attributes[sc.STEP_INDEX] for s in runs[r] if sc.STEP_INDEX in s.attributes) == [0, 1]
               for r in run_ids)


def test_content_capture_switch_redaction_and_truncation(monkeypatch):
    exporter = InMemorySpanExporter()
    agenttrace.instrument(frameworks=[], exporter=exporter, redact=lambda t: t.replace("secret", "[redacted]"),
                          max_content_chars=50)
    try:
        with agenttrace.agent_step("A", input="my secret is " + "x" * 100):
            pass
        agenttrace.setup.active().force_flush()
    finally:
        agenttrace.uninstrument()
    (span,) = exporter.get_finished_spans()
    messages = json.loads(span.attributes[sc.GEN_AI_INPUT_MESSAGES])  # still valid JSON
    text = messages[0]["parts"][0]["content"]
    assert text.startswith("my [redacted] is xx") and "truncated" in text
    assert span.attributes[sc.CONTENT_TRUNCATED] is True

    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "false")
    exporter = InMemorySpanExporter()
    agenttrace.instrument(frameworks=[], exporter=exporter)
    try:
        with agenttrace.agent_step("A", input="hidden") as step:
            step.output("hidden too")
        agenttrace.setup.active().force_flush()
    finally:
        agenttrace.uninstrument()
    (span,) = exporter.get_finished_spans()
    assert sc.GEN_AI_INPUT_MESSAGES not in span.attributes
    assert sc.GEN_AI_OUTPUT_MESSAGES not in span.attributes
    assert span.attributes[sc.GEN_AI_AGENT_NAME] == "A"


def test_redaction_covers_spans_written_by_other_instrumentors():
    exporter = InMemorySpanExporter()
    agenttrace.instrument(frameworks=[], exporter=exporter, redact=lambda t: t.replace("4111", "****"))
    try:
        foreign = trace.get_tracer("some.upstream.instrumentor")
        with foreign.start_as_current_span("llm", attributes={
                "input.value": "card 4111 please", "llm.input_messages.0.message.content": '{"card": "4111"}'}) as s:
            s.add_event("gen_ai.user.message", {"content": "4111 again"})
        agenttrace.setup.active().force_flush()
    finally:
        agenttrace.uninstrument()
    (span,) = exporter.get_finished_spans()
    assert span.attributes["input.value"] == "card **** please"
    assert json.loads(span.attributes["llm.input_messages.0.message.content"]) == {"card": "****"}
    assert span.events[0].attributes["content"] == "**** again"


def test_instrument_is_idempotent_and_honours_otel_sdk_disabled(monkeypatch):
    exporter = InMemorySpanExporter()
    first = agenttrace.instrument(frameworks=[], exporter=exporter)
    assert agenttrace.instrument(frameworks=[]) is first
    agenttrace.uninstrument()
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    handle = agenttrace.instrument(frameworks=[])
    assert not handle.enabled
    agenttrace.uninstrument()


def test_asking_for_an_unknown_framework_says_what_is_installed():
    with pytest.raises(agenttrace.DidNotEnable, match="no agenttrace integration named 'nope'"):
        agenttrace.instrument(frameworks=["nope"], exporter=InMemorySpanExporter())
    assert agenttrace.setup.active() is None


def test_endpoint_comes_from_the_standard_variable(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9999/")
    assert agenttrace.setup.resolve_endpoint() == "http://127.0.0.1:9999"
    assert agenttrace.setup.resolve_endpoint("http://x:1") == "http://x:1"


def test_instrument_again_under_another_service_name_exports_under_that_name():
    """OTel sets the global provider once; a re-instrument's spans, the app's own too, still carry its name."""
    for service in ("first-service", "second-service"):
        exporter = InMemorySpanExporter()
        agenttrace.instrument(service_name=service, frameworks=[], exporter=exporter)
        try:
            assert agenttrace.setup.active().service_name == service  # the name verdicts are filtered by
            with agenttrace.agent_step("A"):
                trace.get_tracer("the.app").start_span("own work").end()
            agenttrace.setup.active().force_flush()
        finally:
            agenttrace.uninstrument()
        finished = exporter.get_finished_spans()
        assert sorted(s.name for s in finished) == ["invoke_agent A", "own work"]
        assert {s.resource.attributes["service.name"] for s in finished} == {service}


def test_a_declared_team_rides_on_the_run_span_and_comes_back_with_the_trajectory(spans):
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from agenttrace_collector import otlp
    from agenttrace_collector.assemble import assemble
    from agenttrace_collector.spanview import decode

    def get_price(product: str, region: str = "EU") -> str:
        """The current unit price of a product.

        Args: ..."""
        return "1 EUR"

    archive = {"name": "get_archived_price", "parameters": ["product", "region"]}
    team = {"lead": [], "pricing": [get_price], "archivist": [archive]}
    with agenttrace.run("prices", task="What does a kettle cost?", team=team):
        with agenttrace.agent_step("lead") as step:
            step.output("archivist, look the kettle up.")
    finished = spans()
    root = next(s for s in finished if s.attributes.get(sc.SPAN_KIND) == "run")
    assert json.loads(root.attributes[sc.RUN_TEAM])[1] == {"name": "pricing", "tools": [
        {"name": "get_price", "parameters": ["product", "region"], "description": "The current unit price of a product."}]}
    request = otlp.parse_request(encode_spans(finished).SerializeToString(), otlp.PROTOBUF)
    trajectory = assemble([decode(r.data, r.service) for r in otlp.rows(request)])
    assert [m.name for m in trajectory.team] == ["lead", "pricing", "archivist"]
    assert trajectory.team[2].tools[0].parameters == ["product", "region"] and trajectory.agents == ["lead"]


@pytest.mark.parametrize("team, message", [([42], "a teammate is a Teammate or a dict"),
                                           ({"lead": [3.5]}, "a tool is a function, a name"),
                                           ({"lead": [{"parameters": ["x"]}]}, "name")])
def test_a_team_that_is_not_one_is_refused_with_the_reason(team, message):
    with pytest.raises((TypeError, ValueError), match=message):
        agenttrace.run("r", team=team)
