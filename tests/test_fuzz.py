"""Fuzzing the collector: mutated OTLP never gets a 5xx, never stalls assembly, and never costs another run.

A bounded number of mutated exports (agenttrace.testing.otlp_fuzz) go to a real collector over OTLP/HTTP
(protobuf, JSON, byte-level damage) and OTLP/gRPC; a canary run sent afterwards must still be assembled.
The same mutations run in process through decode -> assemble -> judge, which must take every one of them
(attribute types are coerced per attribute, never fatal). A trace that does raise (its stored bytes are
corrupt) is quarantined with its error, listed by the API, and retried on request.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections import defaultdict

import grpc
import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from agenttrace.models import Outcome
from agenttrace.testing.otlp_fuzz import deep_chain, mutate, mutate_body, seed_request
from agenttrace_collector import otlp
from agenttrace_collector.assemble import assemble, find_run_span
from agenttrace_collector.failure import judge
from agenttrace_collector.spanview import decode
from tests.test_collector_robustness import JSON, PROTOBUF, post, start

HTTP_CASES = 300
GRPC_CASES = 100


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    c = start(tmp_path_factory.mktemp("fuzz"), "fuzz", "--settle", "0.1")
    yield c
    c.stop()


def _as_json(req) -> bytes:
    """OTLP/JSON as the spec spells it: ids in hex, not protobuf's base64."""
    doc = json_format.MessageToDict(req)
    for rs in doc.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = json_format.base64.b64decode(span[key]).hex()
    return json.dumps(doc).encode()


def test_mutated_traces_all_assemble_in_process():
    rng = random.Random(7)
    for i in range(1500):
        req = deep_chain(rng, 1500) if i % 100 == 0 else mutate(seed_request(rng), rng, rng.randint(1, 6))
        by_trace = defaultdict(list)
        for row in otlp.rows(req):
            by_trace[row.trace_id].append(decode(row.data, row.service))
        for spans in by_trace.values():
            trajectory = judge(assemble(spans), find_run_span(spans), spans, True)
            trajectory.model_dump_json()


def test_mutated_exports_never_get_a_5xx_and_a_canary_run_is_still_assembled(target):
    rng = random.Random(11)
    statuses = defaultdict(int)
    with httpx.Client(timeout=30) as client:
        for i in range(HTTP_CASES):
            req = mutate(seed_request(rng), rng, rng.randint(1, 6))
            if i % 3 == 0:
                body, headers = _as_json(req), JSON
            else:
                body, headers = req.SerializeToString(), PROTOBUF
            if i % 5 == 4:
                body = mutate_body(body, rng)
            resp = post(target, body, headers, client)
            statuses[resp.status_code] += 1
            assert resp.status_code < 500, f"case {i}: {resp.status_code} {resp.text[:300]}"
        post(target, deep_chain(rng, 1500).SerializeToString(), PROTOBUF, client)

    with grpc.insecure_channel(f"127.0.0.1:{target.grpc_port}") as channel:
        export = trace_service_pb2_grpc.TraceServiceStub(channel).Export
        for _ in range(GRPC_CASES):
            try:
                export(mutate(seed_request(rng), rng, rng.randint(1, 6)), timeout=30)
                statuses["grpc OK"] += 1
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.details()
                statuses["grpc INVALID_ARGUMENT"] += 1
    assert statuses[200] > HTTP_CASES // 2  # most mutations are valid OTLP and are stored

    canary = seed_request(rng, run_id="fuzz-canary")
    assert post(target, canary.SerializeToString(), PROTOBUF).status_code == 200
    trajectory, _ = target.wait_run("fuzz-canary", timeout=60)
    assert trajectory.outcome is Outcome.FAILURE and [s.agent for s in trajectory.steps][:1] == ["Planner"]
    health = httpx.get(f"{target.endpoint}/api/v1/health", timeout=5).json()
    assert health["status"] in ("ok", "lagging") and health["quarantined_traces"] == 0, health


def poison(target, rng: random.Random, run_id: str, span_name: str):
    """Sends a run, then corrupts one of its stored spans (as a disk fault or an older build's bug would) and queues
    its trace for assembly again; returns the request and the trace id."""
    request = seed_request(rng, run_id=run_id)
    assert post(target, request.SerializeToString(), PROTOBUF).status_code == 200
    target.wait_run(run_id)
    trace_id = request.resource_spans[0].scope_spans[0].spans[0].trace_id
    with sqlite3.connect(target.db, timeout=30) as conn:
        conn.execute("UPDATE spans SET data = X'0a05ff' WHERE trace_id = ? AND name = ?", (trace_id, span_name))
        conn.execute("UPDATE traces SET assembled_at = NULL, last_seen = ? WHERE trace_id = ?", (time.time(), trace_id))
    return request, trace_id


def test_a_trace_that_raises_is_quarantined_listed_and_retried_while_others_assemble(target):
    rng = random.Random(3)
    poisoned, trace_id = poison(target, rng, "poisoned", "invoke_agent Coder")

    after = seed_request(rng, run_id="after-poison")
    assert post(target, after.SerializeToString(), PROTOBUF).status_code == 200
    target.wait_run("after-poison")

    quarantined = httpx.get(f"{target.endpoint}/api/v1/quarantine", timeout=5).json()
    assert [q["trace_id"] for q in quarantined] == [trace_id.hex()]
    assert quarantined[0]["error"].startswith("decode: DecodeError")
    health = httpx.get(f"{target.endpoint}/api/v1/health", timeout=5).json()
    assert health["status"] == "ok" and health["quarantined_traces"] == 1

    with sqlite3.connect(target.db, timeout=30) as conn:  # "the upgrade": the span is readable again
        conn.execute("UPDATE spans SET data = ? WHERE trace_id = ? AND name = 'invoke_agent Coder'",
                     (next(s for s in poisoned.resource_spans[0].scope_spans[0].spans
                           if s.name == "invoke_agent Coder").SerializeToString(), trace_id))
    resp = httpx.post(f"{target.endpoint}/api/v1/quarantine/retry", params={"trace_id": trace_id.hex()}, timeout=5)
    assert resp.json() == {"released": 1}
    deadline = time.monotonic() + 30
    while httpx.get(f"{target.endpoint}/api/v1/quarantine", timeout=5).json() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert httpx.get(f"{target.endpoint}/api/v1/quarantine", timeout=5).json() == []


def test_a_timestamp_beyond_int64_is_clamped_and_fails_no_other_senders_request(target):
    rng = random.Random(5)
    bad = seed_request(rng, run_id="far-future")
    for span in bad.resource_spans[0].scope_spans[0].spans:
        span.start_time_unix_nano = span.end_time_unix_nano = 2**64 - 1
    good = [seed_request(rng) for _ in range(20)]
    with httpx.Client(timeout=30) as client:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda r: post(target, r.SerializeToString(), PROTOBUF, client).status_code,
                                    [bad, *good]))
    assert replies == [200] * 21
    trajectory, _ = target.wait_run("far-future")
    assert trajectory.steps


@pytest.mark.parametrize("path", ["/api/v1/runs?offset=9223372036854775808", "/api/v1/feedback?after=99999999999999999999"])
def test_paging_beyond_int64_is_a_422_not_a_500(target, path):
    assert httpx.get(f"{target.endpoint}{path}", timeout=5).status_code == 422


def test_the_cli_lists_quarantined_traces_and_retries_them(target):
    from click.testing import CliRunner

    from agenttrace.cli import main

    _, trace_id = poison(target, random.Random(9), "cli-poisoned", "agenttrace.run")
    deadline = time.monotonic() + 30
    while not httpx.get(f"{target.endpoint}/api/v1/quarantine", timeout=5).json() and time.monotonic() < deadline:
        time.sleep(0.1)
    runner = CliRunner()
    listed = runner.invoke(main, ["quarantine", "--endpoint", target.endpoint, "list"], terminal_width=200)
    assert listed.exit_code == 0 and trace_id.hex() in listed.output
    as_json = runner.invoke(main, ["quarantine", "--endpoint", target.endpoint, "list", "--json"])
    assert [(q["trace_id"], q["error"].split(":")[:2]) for q in json.loads(as_json.output)] == [
        (trace_id.hex(), ["decode", " DecodeError"])]
    retried = runner.invoke(main, ["quarantine", "--endpoint", target.endpoint, "retry", "--all"])
    assert retried.exit_code == 0 and "1 trace queued for assembly again" in retried.output
    assert runner.invoke(main, ["quarantine", "--endpoint", target.endpoint, "retry"]).exit_code == 2
