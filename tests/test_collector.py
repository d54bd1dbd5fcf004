"""The walking skeleton through a real collector process: spans in, trajectory and verdict out, feedback back."""

from __future__ import annotations

import gzip
import importlib.util
import json
import queue
import sys
import time
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

import agenttrace
from agenttrace.local_collector import LocalCollector, free_port
from agenttrace.models import Outcome, Termination
from tests.conftest import flush

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_team():
    spec = importlib.util.spec_from_file_location("research_team", EXAMPLES / "research_team.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["research_team"] = module
    spec.loader.exec_module(module)
    return module


def test_a_failed_run_becomes_a_trajectory_with_a_verdict_delivered_to_the_app(collector, traced):
    team_mod = load_team()
    verdicts: queue.Queue = queue.Queue()
    agenttrace.on_feedback(verdicts.put)
    run = team_mod.ResearchTeam(seed_error=True).solve()
    flush()

    verdict = verdicts.get(timeout=30)
    assert verdict.run_id == run.run_id
    traj, stored = collector.wait_run(run.run_id, verdict=True)
    assert stored[-1].seq == verdict.seq
    assert [s.agent for s in traj.steps] == ["Planner", "Researcher", "Calculator", "Writer"]
    assert [s.transfer_to for s in traj.steps] == ["Researcher", "Calculator", "Writer", None]
    lookups = traj.steps[1].tool_calls
    assert [c.arguments for c in lookups] == [{"fact": "shelves"}, {"fact": "boxes per shelf"}, {"fact": "boxes shipped"}]
    assert traj.steps[2].tool_calls[0].result == "121"
    assert traj.task == team_mod.TASK and traj.expected == "127" and traj.answer == "121"
    assert traj.outcome is Outcome.FAILURE and "does not match expected" in traj.failure_reason
    assert traj.termination is Termination.COMPLETED
    assert verdict.agent in traj.agents and verdict.attributor == "cpu" and verdict.reason


def test_a_successful_run_is_judged_against_expected_and_not_attributed(collector, traced):
    run = load_team().ResearchTeam(seed_error=False).solve()
    flush()
    traj, verdicts = collector.wait_run(run.run_id)
    assert traj.outcome is Outcome.SUCCESS and verdicts == []


def test_runs_can_be_listed_filtered_and_exported_in_whowhen_shape(collector, traced):
    run = load_team().ResearchTeam(seed_error=True).solve()
    flush()
    collector.wait_run(run.run_id, verdict=True)
    failed = httpx.get(f"{collector.endpoint}/api/v1/runs", params={"outcome": "failure"}).json()
    assert run.run_id in {r["run_id"] for r in failed} and all(r["outcome"] == "failure" for r in failed)
    doc = httpx.get(f"{collector.endpoint}/api/v1/runs/{run.run_id}/whowhen").json()
    assert [h["name"] for h in doc["history"]] == ["Planner", "Researcher", "Calculator", "Writer"]
    assert doc["question"].startswith("A warehouse") and doc["ground_truth"] == "127"
    assert httpx.get(f"{collector.endpoint}/api/v1/runs/nope").status_code == 404


def test_openapi_documents_the_api(collector):
    paths = httpx.get(f"{collector.endpoint}/openapi.json").json()["paths"]
    assert {"/v1/traces", "/api/v1/runs", "/api/v1/runs/{run_id}", "/api/v1/feedback", "/api/v1/health"} <= set(paths)


def _otlp_json(trace_id: str, run_id: str) -> dict:
    now = time.time_ns()

    def attr(k, v):
        return {"key": k, "value": {"stringValue": v}}

    return {"resourceSpans": [{"resource": {"attributes": [attr("service.name", "json-client")]}, "scopeSpans": [{
        "scope": {"name": "hand"}, "spans": [
            {"traceId": trace_id, "spanId": "00000000000000a1", "name": "agenttrace.run j",
             "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 3000),
             "attributes": [attr("agenttrace.span.kind", "run"), attr("agenttrace.run.id", run_id),
                            attr("agenttrace.run.outcome", "failure")], "status": {"code": 2, "message": "gave up"}},
            {"traceId": trace_id, "spanId": "00000000000000a2", "parentSpanId": "00000000000000a1",
             "name": "invoke_agent Solo", "startTimeUnixNano": str(now + 1000), "endTimeUnixNano": str(now + 2000),
             "attributes": [attr("gen_ai.operation.name", "invoke_agent"), attr("gen_ai.agent.name", "Solo"),
                            attr("gen_ai.output.messages",
                                 json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "I quit"}]}]))]},
        ]}]}]}


def test_otlp_json_with_gzip_is_accepted_and_assembled(collector):
    run_id = "json-run-1"
    body = gzip.compress(json.dumps(_otlp_json("5b8efff798038103d269b633813fc60c", run_id)).encode())
    resp = httpx.post(f"{collector.endpoint}/v1/traces", content=body,
                      headers={"content-type": "application/json", "content-encoding": "gzip"})
    assert resp.status_code == 200, resp.text
    traj, verdicts = collector.wait_run(run_id, verdict=True)
    assert traj.service == "json-client" and traj.outcome is Outcome.FAILURE
    assert [(s.agent, s.content) for s in traj.steps] == [("Solo", "I quit")]
    assert verdicts[0].agent == "Solo" and verdicts[0].step == 0


def test_otlp_grpc_receiver_stores_spans(collector, traced):
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from agenttrace.processor import SwitchableProcessor

    exporter = GrpcExporter(endpoint=f"127.0.0.1:{collector.grpc_port}", insecure=True)
    grpc_path = SwitchableProcessor(SimpleSpanProcessor(exporter))
    traced.tracer_provider.add_span_processor(grpc_path)
    with agenttrace.run("grpc-run") as run:
        with agenttrace.agent_step("Echo") as step:
            step.output("hello")
        run.succeed("hello")
    traj, _ = collector.wait_run(run.run_id)  # arrives by both paths; stored once
    assert [s.agent for s in traj.steps] == ["Echo"]
    grpc_path.shutdown()


def test_feedback_reaches_an_app_that_started_before_the_collector(tmp_path):
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    team = load_team().ResearchTeam(seed_error=True)
    agenttrace.instrument(endpoint=endpoint, service_name="early-app", frameworks=[])
    try:
        verdicts: queue.Queue = queue.Queue()
        agenttrace.on_feedback(verdicts.put)
        run = team.solve()  # exported later: the batch exporter retries until the collector is up
        time.sleep(1.0)
        with LocalCollector(tmp_path / "late.db", port=port, log_file=tmp_path / "late.log"):
            flush()
            got = verdicts.get(timeout=30)
            assert got.run_id == run.run_id
            with pytest.raises(queue.Empty):  # delivered once, even across polls
                verdicts.get(timeout=2)
    finally:
        agenttrace.uninstrument()
