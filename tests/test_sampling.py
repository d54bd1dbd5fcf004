"""Tail sampling keeps every failed run whole and samples the successful ones (agenttrace.sampling)."""

from __future__ import annotations

import sqlite3

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags

import agenttrace
from agenttrace import semconv as sc
from agenttrace.local_collector import LocalCollector
from agenttrace.sampling import FailureKeepingSampler, sampled_by_trace_id


def two_agent_run(name: str, *, fail: bool = False) -> agenttrace.Run:
    with agenttrace.run(name, task="add 2 and 2") as run:
        with agenttrace.agent_step("Planner", input="add 2 and 2") as step:
            step.output("ask the Calculator")
            step.transfer("Calculator")
        with agenttrace.agent_step("Calculator", input="2+2"):
            with agenttrace.tool_call("add", {"a": 2, "b": 2}) as call:
                call.result(5 if fail else 4)
        if fail:
            run.fail("the sum is wrong", answer="5")
        else:
            run.succeed("4")
    return run


def trace_id_of(run: agenttrace.Run) -> int:
    return run._span.get_span_context().trace_id


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    """A real collector (no attributor: these tests look at what was stored)."""
    workdir = tmp_path_factory.mktemp("sampling")
    with LocalCollector(workdir / "agenttrace.db", attributor="none", log_file=workdir / "collector.log",
                        extra_args=("--settle", "0.2")) as c:
        yield c


def test_at_one_percent_a_failed_run_is_complete_in_the_collector_and_most_successful_runs_are_absent(collector):
    agenttrace.instrument(endpoint=collector.endpoint, service_name="sampling", frameworks=[], sample_rate=0.01)
    try:
        successes = [two_agent_run(f"ok-{i}") for i in range(200)]
        failed = two_agent_run("wrong-sum", fail=True)
        assert agenttrace.flush()
    finally:
        agenttrace.uninstrument()

    trajectory, _ = collector.wait_run(failed.run_id)
    assert [s.agent for s in trajectory.steps] == ["Planner", "Calculator"]
    assert trajectory.steps[1].tool_calls[0].result == "5"
    assert trajectory.outcome.value == "failure"
    sampled = {r.run_id for r in successes if sampled_by_trace_id(trace_id_of(r), 0.01)}
    for run_id in sampled:
        collector.wait_run(run_id)
    with sqlite3.connect(f"file:{collector.db}?mode=ro", uri=True) as db:
        stored = db.execute("SELECT count(*) FROM spans WHERE trace_id = ?",
                            (trace_id_of(failed).to_bytes(16, "big"),)).fetchone()[0]
        listed = {run_id for (run_id,) in db.execute("SELECT run_id FROM runs WHERE outcome = 'success'")}
    assert stored == 4  # the run, two agent steps and the tool call: nothing of the failed run was dropped
    assert listed & {r.run_id for r in successes} == sampled  # exactly the runs the trace-id rule picks
    assert len(sampled) <= 10  # of 200


@pytest.fixture
def provider():
    exported = InMemorySpanExporter()
    sampler = FailureKeepingSampler(SimpleSpanProcessor(exported), sample_rate=0.0, max_buffered_spans=6)
    tp = TracerProvider()
    tp.add_span_processor(sampler)
    tracer = tp.get_tracer("test")
    yield tracer, sampler, exported
    tp.shutdown()


def run_span(tracer, outcome: str, children: int = 2, error_child: bool = False):
    with tracer.start_as_current_span("agenttrace.run r", attributes={sc.SPAN_KIND: "run"}) as root:
        for i in range(children):
            with tracer.start_as_current_span(f"step {i}") as child:
                if error_child and i == 0:
                    child.set_status(Status(StatusCode.ERROR, "tool raised"))
        root.set_attribute(sc.RUN_OUTCOME, outcome)
    return root


def test_a_successful_run_is_dropped_whole_at_rate_zero(provider):
    tracer, sampler, exported = provider
    run_span(tracer, "success")
    assert exported.get_finished_spans() == ()
    assert (sampler.dropped_traces, sampler.dropped_spans, sampler.buffered_spans) == (1, 3, 0)


def test_an_error_inside_a_successful_run_keeps_the_whole_run(provider):
    tracer, _, exported = provider
    run_span(tracer, "success", error_child=True)
    assert sorted(s.name for s in exported.get_finished_spans()) == ["agenttrace.run r", "step 0", "step 1"]


def test_a_run_the_collector_must_judge_is_kept(provider):
    tracer, _, exported = provider
    run_span(tracer, "unknown")  # with ``expected`` set only the collector knows whether it failed
    assert len(exported.get_finished_spans()) == 3


def test_spans_wait_for_the_run_to_end(provider):
    tracer, sampler, exported = provider
    with tracer.start_as_current_span("agenttrace.run r", attributes={sc.SPAN_KIND: "run"}) as root:
        with tracer.start_as_current_span("step"):
            pass
        assert (exported.get_finished_spans(), sampler.buffered_spans) == ((), 1)
        root.set_status(Status(StatusCode.ERROR, "failed"))
    assert len(exported.get_finished_spans()) == 2


def test_a_full_buffer_exports_the_oldest_open_run_instead_of_losing_it(provider):
    tracer, sampler, exported = provider
    with tracer.start_as_current_span("agenttrace.run long", attributes={sc.SPAN_KIND: "run"}) as long_run:
        for i in range(4):
            with tracer.start_as_current_span(f"long {i}"):
                pass
        with trace.use_span(NonRecordingSpan(SpanContext(0, 0, False)), end_on_exit=False):
            run_span(tracer, "success", children=3)  # a second trace: 4 more spans pass the bound of 6
        assert [s.name for s in exported.get_finished_spans()] == [f"long {i}" for i in range(4)]
        assert sampler.overflow_traces == 1
        long_run.set_attribute(sc.RUN_OUTCOME, "success")
    assert exported.get_finished_spans()[-1].name == "agenttrace.run long"  # later spans of that trace follow


def test_a_span_continuing_a_remote_trace_decides_for_this_process(provider):
    tracer, _, exported = provider
    remote = SpanContext(0x5A << 64 | 0xFFFF_FFFF_FFFF_FFFF, 0x1234, is_remote=True, trace_flags=TraceFlags(1))
    token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(remote)))
    try:
        with tracer.start_as_current_span("a2a server") as server:
            with tracer.start_as_current_span("execute_tool search"):
                pass
            server.set_status(Status(StatusCode.ERROR, "upstream agent failed"))
    finally:
        otel_context.detach(token)
    assert sorted(s.name for s in exported.get_finished_spans()) == ["a2a server", "execute_tool search"]


def test_the_trace_id_rule_matches_opentelemetry_ratio_sampling():
    from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased

    ratio = TraceIdRatioBased(0.25)
    for trace_id in range(0, 1 << 64, (1 << 64) // 997):
        expected = ratio.should_sample(None, trace_id, "x").decision is Decision.RECORD_AND_SAMPLE
        assert sampled_by_trace_id(trace_id, 0.25) is expected


def test_a_rate_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="between 0 and 1"):
        FailureKeepingSampler(SimpleSpanProcessor(InMemorySpanExporter()), sample_rate=1.5)
