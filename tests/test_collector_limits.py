"""The collector's resource bounds, each against a real collector process on loopback.

Bytes held for uploads across connections (503 + Retry-After beyond
``--max-pending-bytes``), a deadline for each HTTP request (slow-loris clients are
cut off), a connection limit, assembly work per trace (``--reassemble-interval``,
``--max-trace-spans``) and retention (``--retention``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone

import httpx
import pytest

from agenttrace.local_collector import LocalCollector
from tests.test_collector_robustness import PROTOBUF, make_request

MiB = 1024 * 1024


def start(tmp_path, name: str, *args: str) -> LocalCollector:
    return LocalCollector(tmp_path / f"{name}.db", attributor="none", log_file=tmp_path / f"{name}.log",
                          extra_args=("--settle", "0.1", *args)).start()


def export(c: LocalCollector, body: bytes) -> httpx.Response:
    return httpx.post(f"{c.endpoint}/v1/traces", content=body, headers=PROTOBUF, timeout=30)


def open_upload(c: LocalCollector, declared: int, sent: int) -> socket.socket:
    """A connection that has sent its request headers and ``sent`` of the ``declared`` body bytes, and pauses."""
    sock = socket.create_connection(("127.0.0.1", c.port))
    sock.sendall(f"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
                 f"Content-Length: {declared}\r\n\r\n".encode() + b"\x00" * sent)
    return sock


def closed_by_server(sock: socket.socket, within_s: float) -> bool:
    """True when the server closes the connection (EOF or reset) within ``within_s`` seconds."""
    sock.settimeout(within_s)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def log_events(c: LocalCollector, event: str) -> list[dict]:
    records = [json.loads(line) for line in c.log_file.read_text().splitlines() if line.startswith("{")]
    return [r for r in records if r.get("event") == event]


def test_uploads_beyond_the_byte_budget_get_503_until_the_held_bytes_are_given_back(tmp_path):
    c = start(tmp_path, "budget", "--max-pending-bytes", str(MiB), "--max-body-bytes", str(4 * MiB))
    try:
        held = open_upload(c, declared=2 * MiB, sent=900 * 1024)  # 900 KiB of a 1 MiB budget held
        time.sleep(0.5)
        req, _ = make_request(50, content="y" * 4000)  # ~200 KB
        refused = export(c, req.SerializeToString())
        assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1
        held.close()  # the client goes away: what its upload held is given back
        deadline = time.monotonic() + 5
        while (resp := export(c, req.SerializeToString())).status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert resp.status_code == 200
    finally:
        c.stop()
    assert "Traceback" not in c.log_file.read_text()


def test_slow_clients_are_cut_off_at_the_read_timeout_and_others_are_served(tmp_path):
    c = start(tmp_path, "slow", "--read-timeout", "1")
    try:
        silent = [socket.create_connection(("127.0.0.1", c.port)) for _ in range(100)]
        loris = [socket.create_connection(("127.0.0.1", c.port)) for _ in range(100)]
        for s in loris:
            s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never finished
        trickle = open_upload(c, declared=10_000, sent=100)  # headers in, body trickling
        req, _ = make_request(3)
        assert export(c, req.SerializeToString()).status_code == 200  # served meanwhile
        assert all(closed_by_server(s, within_s=5) for s in silent + loris + [trickle])
        assert export(c, req.SerializeToString()).status_code == 200
    finally:
        c.stop()
    assert "Traceback" not in c.log_file.read_text()
    assert {r["state"] for r in log_events(c, "http.request_timeout")} == {"headers", "body"}


def test_a_request_that_arrived_whole_is_not_cut_off_by_the_read_timeout(tmp_path):
    c = start(tmp_path, "kept", "--read-timeout", "1")
    try:
        with httpx.Client(timeout=10) as client:  # one kept-alive connection, used across the deadline
            req, _ = make_request(3)
            for _ in range(3):
                assert client.post(f"{c.endpoint}/v1/traces", content=req.SerializeToString(),
                                   headers=PROTOBUF).status_code == 200
                time.sleep(0.6)
    finally:
        c.stop()


def test_requests_beyond_the_connection_limit_get_503(tmp_path):
    c = start(tmp_path, "conns", "--max-connections", "20", "--read-timeout", "3")
    try:
        idle = [socket.create_connection(("127.0.0.1", c.port)) for _ in range(20)]
        time.sleep(0.3)
        req, _ = make_request(3)
        assert export(c, req.SerializeToString()).status_code == 503
        for s in idle:
            s.close()
        time.sleep(0.3)
        assert export(c, req.SerializeToString()).status_code == 200
    finally:
        c.stop()


def test_at_the_connection_limit_a_new_client_replaces_connections_stalled_on_their_headers(tmp_path):
    c = start(tmp_path, "stalled", "--max-connections", "20", "--read-timeout", "60")
    try:
        loris = [socket.create_connection(("127.0.0.1", c.port)) for _ in range(20)]
        for s in loris[10:]:
            s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never finished
        time.sleep(1.5)  # past STALLED_AFTER_S, far from the read timeout
        uploading = open_upload(c, declared=10_000, sent=100)  # headers in, body streaming: never replaced
        req, _ = make_request(3)
        assert export(c, req.SerializeToString()).status_code == 200
        closed = [s for s in loris if closed_by_server(s, within_s=0.5)]
        assert 1 <= len(closed) < len(loris)
        assert not closed_by_server(uploading, within_s=0.5)
    finally:
        c.stop()
    assert "Traceback" not in c.log_file.read_text()
    assert log_events(c, "http.stalled_closed")


def _growing_run(c: LocalCollector, batches: int, pause_s: float) -> datetime:
    """A big run whose root span (ended) and first 1,000 children come first, then ``batches`` exports of 20
    children, each followed by a ``pause_s`` pause; returns when the last export was acknowledged."""
    req, _ = make_request(1001 + batches * 20, content="z")
    spans = list(req.resource_spans[0].scope_spans[0].spans)
    parts = [spans[:1001]] + [spans[1001 + 20 * i:1021 + 20 * i] for i in range(batches)]
    for part in parts:
        export_req, _ = make_request(0)
        export_req.resource_spans[0].scope_spans[0].spans.extend(part)
        assert export(c, export_req.SerializeToString()).status_code == 200
        acknowledged = datetime.now(timezone.utc)
        time.sleep(pause_s)
    return acknowledged


def test_a_big_run_still_receiving_spans_is_assembled_at_most_once_per_interval(tmp_path):
    c = start(tmp_path, "growing", "--reassemble-interval", "1.5")
    try:
        started = time.monotonic()
        # 3 s of exports (more on a busy machine), each after the settle. The run's last assembly can come in the
        # pause after the last export, so "after its last spans" is after that export's acknowledgement.
        last_export = _growing_run(c, batches=12, pause_s=0.25)
        streamed_s = time.monotonic() - started
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assemblies = log_events(c, "run.assembled")
            if assemblies and datetime.fromisoformat(assemblies[-1]["timestamp"]) > last_export:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the run was not assembled after its last spans")
        assert c.get("/api/v1/health").json()["backlog_traces"] == 0
    finally:
        c.stop()
    # Without the interval: about one assembly per export (13). With it: one per 1.5 s of the stream, plus the last.
    assert 2 <= len(log_events(c, "run.assembled")) <= streamed_s / 1.5 + 2


def test_a_trace_over_max_trace_spans_is_quarantined_as_too_large(tmp_path):
    c = start(tmp_path, "huge", "--max-trace-spans", "50")
    try:
        big, _ = make_request(60)
        small, _ = make_request(40)
        assert export(c, big.SerializeToString()).status_code == 200
        assert export(c, small.SerializeToString()).status_code == 200
        deadline = time.monotonic() + 10
        while not (quarantined := c.get("/api/v1/quarantine").json()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [q["trace_id"] for q in quarantined] == [big.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()]
        assert "too large: more than 50 spans" in quarantined[0]["error"]
        while not log_events(c, "run.assembled") and time.monotonic() < deadline:
            time.sleep(0.1)
        small_trace = small.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
        assert [r["run_id"] for r in log_events(c, "run.assembled")] == [small_trace]
    finally:
        c.stop()


def test_retention_deletes_old_runs_in_the_background(tmp_path):
    c = start(tmp_path, "retention", "--retention", "3s")
    try:
        req, _ = make_request(5)
        assert export(c, req.SerializeToString()).status_code == 200
        deadline = time.monotonic() + 10
        while not c.get("/api/v1/runs").json() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert c.get("/api/v1/runs").json(), "the run was not assembled"
        deadline = time.monotonic() + 15
        while c.get("/api/v1/runs").json() and time.monotonic() < deadline:
            time.sleep(0.3)
        assert c.get("/api/v1/runs").json() == []
    finally:
        c.stop()
    assert log_events(c, "retention.deleted")


@pytest.mark.parametrize("value", ["30", "ten days", "0d", "-1h"])
def test_a_retention_that_is_not_a_duration_is_refused_with_a_message(tmp_path, value):
    proc = subprocess.run([sys.executable, "-m", "agenttrace_collector", "--db", str(tmp_path / "x.db"),
                           "--retention", value], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--retention" in proc.stderr and "is not a duration" in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    from agenttrace_collector.store import open_store

    db = request.getfixturevalue("pg_url") if request.param == "postgresql" else str(tmp_path / "retention.db")
    s = open_store(db)
    yield s
    s.close()


def _saved_run(store, *, age_s: float) -> tuple[bytes, str]:
    """A trace with its spans, run, verdict, job, review and lesson, everything made ``age_s`` seconds ago."""
    from agenttrace.models import Attribution, Lesson, Outcome, Trajectory
    from agenttrace_collector import otlp

    req, _ = make_request(4)
    trace_id = req.resource_spans[0].scope_spans[0].spans[0].trace_id
    store.write_spans(otlp.rows(req))
    run_id = os.urandom(8).hex()
    store.save_run(Trajectory(run_id=run_id, outcome=Outcome.FAILURE), trace_id, enqueue=True)
    store.save_attribution(Attribution(run_id=run_id, agent="coder", step=1, attributor="test"), None)
    store.save_review({"run_id": run_id, "service": None, "verdict_seq": None, "agent": "coder", "step": 1,
                       "confirmed": True, "note": None, "reviewer": "test", "created_at": time.time()},
                      Lesson(agent="coder", text="check the units", run_id=run_id))
    then = time.time() - age_s
    store._write("UPDATE traces SET first_seen = ?, last_seen = ? WHERE trace_id = ?", (then, then, trace_id))
    for table, column in (("attributions", "created_at"), ("attribution_jobs", "updated_at"),
                          ("reviews", "created_at"), ("lessons", "created_at"), ("runs", "updated_at")):
        store._write(f"UPDATE {table} SET {column} = ? WHERE run_id = ?", (then, run_id))
    return trace_id, run_id


def _rows(store, trace_id: bytes, run_id: str) -> dict[str, int]:
    counts = {table: store._read(f"SELECT COUNT(*) FROM {table} WHERE trace_id = ?", (trace_id,))[0][0]
              for table in ("traces", "spans", "runs")}
    counts |= {table: store._read(f"SELECT COUNT(*) FROM {table} WHERE run_id = ?", (run_id,))[0][0]
               for table in ("attributions", "attribution_jobs", "reviews", "lessons")}
    return counts


def test_retention_deletes_what_is_older_than_the_period_in_batches_and_keeps_the_rest(store):
    from agenttrace_collector.retention import Retention

    old = [_saved_run(store, age_s=40 * 86400) for _ in range(5)]
    recent = _saved_run(store, age_s=3600)
    deleted = Retention(store, keep_s=30 * 86400, batch=2).sweep()  # 5 old traces: 3 batches
    assert deleted >= 5  # the traces; their runs' verdicts, jobs, reviews and lessons went with them
    for trace_id, run_id in old:
        assert set(_rows(store, trace_id, run_id).values()) == {0}
    assert _rows(store, *recent) == {"traces": 1, "spans": 4, "runs": 1, "attributions": 1, "attribution_jobs": 1,
                                     "reviews": 1, "lessons": 1}
    assert Retention(store, keep_s=30 * 86400).sweep() == 0
