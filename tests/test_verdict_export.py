"""``--export-verdicts``: a verdict goes back into the run's trace as an ``agenttrace.attribution`` span."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from agenttrace.local_collector import LocalCollector
from agenttrace.models import Attribution, Step, Trajectory
from agenttrace.testing.scripted_llm import ScriptedLLM
from agenttrace_collector.otlp import load_span
from agenttrace_collector.verdict_export import verdict_span
from tests.otlp_helpers import send_run, wait_for

VERDICT = "<think>the Calculator added wrong</think><answer>Calculator | 1</answer>"


def spans_named(collector: LocalCollector, name: str) -> list[Span]:
    with sqlite3.connect(f"file:{collector.db}?mode=ro", uri=True) as db:
        return [load_span(bytes(d)) for (d,) in db.execute("SELECT data FROM spans WHERE name = ?", (name,))]


def attributes(span: Span) -> dict:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in span.attributes}


def test_a_verdict_is_a_span_under_the_run_root_linked_to_the_blamed_step_in_the_downstream_trace(tmp_path):
    with ScriptedLLM([VERDICT]) as llm, \
            LocalCollector(tmp_path / "downstream.db", attributor="none", log_file=tmp_path / "down.log") as down, \
            LocalCollector(tmp_path / "front.db", attributor="openai", log_file=tmp_path / "front.log",
                           extra_args=("-o", f"base_url={llm.base_url}", "-o", "model=m", "--settle", "0.2",
                                       "--forward", down.endpoint, "--export-verdicts", down.endpoint)) as front:
        run = send_run(front.endpoint, answer="5")
        trajectory, [verdict] = front.wait_run(run.run_id, verdict=True)
        [span] = wait_for(lambda: spans_named(down, "agenttrace.attribution"), what="the verdict span downstream")
        [root] = spans_named(down, "agenttrace.run add")
        assert span.trace_id == root.trace_id and span.parent_span_id == root.span_id
        blamed = trajectory.steps[1]
        assert [link.span_id.hex() for link in span.links] == [blamed.span_id]
        attrs = attributes(span)
        assert attrs.pop("agenttrace.attribution.confidence", None) == verdict.confidence  # absent when None
        assert attrs == {
            "agenttrace.run.id": run.run_id, "agenttrace.attribution.agent": "Calculator",
            "agenttrace.attribution.step": 1, "agenttrace.attribution.reason": "the Calculator added wrong",
            "agenttrace.attribution.attributor": "openai", "agenttrace.attribution.uncertain": verdict.uncertain,
            "agenttrace.attribution.blamed_span_id": blamed.span_id, "openinference.span.kind": "EVALUATOR"}
        assert span.end_time_unix_nano == int(verdict.created_at * 1e9) >= span.start_time_unix_nano
        downstream_run, _ = down.wait_run(run.run_id)
        assert [s.agent for s in downstream_run.steps] == ["Planner", "Calculator"]  # the verdict span adds no step


def test_a_worker_process_exports_its_verdicts_and_sends_the_last_one_before_it_exits(tmp_path):
    """`agenttrace worker --export-verdicts`, stopped (SIGTERM) while the attributor is still answering: it stores
    the verdict, then sends its span before it exits."""
    with ScriptedLLM([VERDICT], delay_s=3) as llm, \
            LocalCollector(tmp_path / "downstream.db", attributor="none", log_file=tmp_path / "down.log") as down, \
            LocalCollector(tmp_path / "front.db", attributor="none", log_file=tmp_path / "front.log",
                           extra_args=("--settle", "0.2", "--attribution-workers", "0",
                                       "--forward", down.endpoint)) as front:
        with open(tmp_path / "worker.log", "wb") as log:
            worker = subprocess.Popen([str(Path(sys.executable).with_name("agenttrace")), "worker", "--db", front.db,
                                       "--attributor", "openai", "-o", f"base_url={llm.base_url}", "-o", "model=m",
                                       "--export-verdicts", down.endpoint], stdout=log, stderr=log)
            try:
                run = send_run(front.endpoint, answer="5")
                wait_for(lambda: llm.in_flight, what="the worker asking the attributor")
                worker.send_signal(signal.SIGTERM)
                assert worker.wait(timeout=30) == 0
            finally:
                worker.kill()
                worker.wait()
        trajectory, [verdict] = front.wait_run(run.run_id, verdict=True)
        [span] = wait_for(lambda: spans_named(down, "agenttrace.attribution"), what="the verdict span downstream")
        [root] = spans_named(down, "agenttrace.run add")
        assert span.trace_id == root.trace_id and span.parent_span_id == root.span_id
        attrs = attributes(span)
        assert (attrs["agenttrace.run.id"], attrs["agenttrace.attribution.agent"], attrs["agenttrace.attribution.step"],
                attrs["agenttrace.attribution.attributor"]) == (run.run_id, "Calculator", 1, "openai")
        assert attrs["agenttrace.attribution.blamed_span_id"] == trajectory.steps[1].span_id
        assert span.end_time_unix_nano == int(verdict.created_at * 1e9)


def test_an_undecided_verdict_has_no_link_and_no_agent():
    trajectory = Trajectory(run_id="r1", trace_id="ab" * 16, service="svc", end_time=10.0,
                            steps=[Step(index=0, agent="A", span_id="cd" * 8)])
    request = verdict_span(Attribution(run_id="r1", agent=None, step=None, reason="no decisive step",
                                       attributor="cpu", created_at=12.5), trajectory, bytes.fromhex("ef" * 8))
    [resource_spans] = request.resource_spans
    [span] = resource_spans.scope_spans[0].spans
    assert not span.links
    assert "agenttrace.attribution.agent" not in attributes(span)
    assert (span.start_time_unix_nano, span.end_time_unix_nano) == (10_000_000_000, 12_500_000_000)
    assert resource_spans.resource.attributes[0].value.string_value == "svc"


def test_a_verdicts_advice_is_an_attribute_when_it_has_one():
    trajectory = Trajectory(run_id="r1", trace_id="ab" * 16, steps=[Step(index=0, agent="A", span_id="cd" * 8)])
    advised = Attribution(run_id="r1", agent="A", step=0, reason="it assumed 95 EUR", attributor="cpu",
                          advice="look up a value you lack, or say that you lack it, instead of assuming one")
    [span] = verdict_span(advised, trajectory, bytes.fromhex("ef" * 8)).resource_spans[0].scope_spans[0].spans
    assert attributes(span)["agenttrace.attribution.advice"] == advised.advice
    [span] = verdict_span(advised.model_copy(update={"advice": ""}), trajectory,
                          bytes.fromhex("ef" * 8)).resource_spans[0].scope_spans[0].spans
    assert "agenttrace.attribution.advice" not in attributes(span)
