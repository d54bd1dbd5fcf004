"""``--forward``: every export a collector stores goes on, unchanged, to other OTLP back ends (real collectors here)."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from agenttrace.local_collector import LocalCollector, free_port
from tests.otlp_helpers import export, send_run, wait_for

TOKEN = "downstream-admin-token-0001"
TOKEN_FILE = f'[[tokens]]\ntoken = "{TOKEN}"\nscope = "admin"\n'


def stored_spans(collector: LocalCollector) -> set[tuple[bytes, bytes]]:
    """(span id, the span as stored) for every span in the collector's database."""
    with sqlite3.connect(f"file:{collector.db}?mode=ro", uri=True) as db:
        return {(bytes(i), bytes(d)) for i, d in db.execute("SELECT span_id, data FROM spans")}


def metric(collector: LocalCollector, name: str, **labels) -> float:
    text = collector.get("/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def downstreams(tmp_path):
    """Two collectors that need a token: one is forwarded to over OTLP/HTTP, the other over OTLP/gRPC."""
    (tmp_path / "tokens.toml").write_text(TOKEN_FILE)
    with LocalCollector(tmp_path / "http.db", attributor="none", token_file=tmp_path / "tokens.toml", token=TOKEN,
                        log_file=tmp_path / "http.log") as over_http, \
            LocalCollector(tmp_path / "grpc.db", attributor="none", token_file=tmp_path / "tokens.toml",
                           token=TOKEN, log_file=tmp_path / "grpc.log") as over_grpc:
        yield over_http, over_grpc


def test_every_stored_span_reaches_the_downstreams_unchanged_over_http_and_grpc_with_auth(tmp_path, downstreams):
    over_http, over_grpc = downstreams
    forward = ("--forward", over_http.endpoint, "--forward", f"grpc://127.0.0.1:{over_grpc.grpc_port}",
               "--forward-header", f"Authorization=Bearer {TOKEN}", "--settle", "0.2")
    with LocalCollector(tmp_path / "front.db", attributor="none", extra_args=forward,
                        log_file=tmp_path / "front.log") as front:
        run = send_run(front.endpoint, answer="4")
        front.wait_run(run.run_id)
        sent = stored_spans(front)
        for downstream in (over_http, over_grpc):
            assert wait_for(lambda d=downstream: stored_spans(d) == sent, what="all spans forwarded")
            trajectory, _ = downstream.wait_run(run.run_id)
            assert [s.agent for s in trajectory.steps] == ["Planner", "Calculator"]
        assert metric(front, "agenttrace_forward_sent_spans_total") == 2 * len(sent)
        assert metric(front, "agenttrace_forward_dropped_spans_total") == 0


def test_a_downstream_that_is_down_never_slows_ingest_and_every_drop_is_counted_and_logged(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    log = tmp_path / "front.log"
    with LocalCollector(tmp_path / "front.db", attributor="none", log_file=log,
                        extra_args=("--forward", dead, "--forward-queue", "2")) as front:
        url = f"{front.endpoint}/v1/traces"
        slowest = 0.0
        with httpx.Client(headers={"content-type": "application/x-protobuf"}) as client:
            for trace in range(1, 41):
                started = time.perf_counter()
                assert client.post(url, content=export(trace)).status_code == 200
                slowest = max(slowest, time.perf_counter() - started)
        assert slowest < 1.0  # the forwarder retries for ~7 s per export; none of that reaches the sender
        assert len(stored_spans(front)) == 200
        # 40 exports of 5 spans: one being retried, 2 queued, the rest dropped at once for a full queue
        full = metric(front, "agenttrace_forward_dropped_spans_total", reason="queue_full")
        assert full >= 5 * (40 - 3)
        wait_for(lambda: metric(front, "agenttrace_forward_dropped_spans_total", reason="unreachable") >= 5,
                 timeout=20, what="the export being retried given up")
    text = log.read_text()
    assert re.search(r'"event": "forward.dropped".*"reason": "queue_full"', text)
    assert re.search(r'"event": "forward.dropped".*"reason": "unreachable"', text)


def test_an_export_waits_in_the_queue_for_a_downstream_that_starts_late(tmp_path):
    port = free_port()
    with LocalCollector(tmp_path / "front.db", attributor="none", log_file=tmp_path / "front.log",
                        extra_args=("--forward", f"http://127.0.0.1:{port}")) as front:
        body = export(7, spans=3)
        assert httpx.post(f"{front.endpoint}/v1/traces", content=body,
                          headers={"content-type": "application/x-protobuf"}).status_code == 200
        with LocalCollector(tmp_path / "late.db", port=port, attributor="none") as late:
            assert wait_for(lambda: stored_spans(late) == stored_spans(front), what="the retried export")
        assert metric(front, "agenttrace_forward_dropped_spans_total") == 0


@pytest.mark.parametrize(("args", "message"), [
    (("--forward", "ftp://example.com"), "cannot forward to 'ftp://example.com'"),
    (("--forward", "http://127.0.0.1:9", "--forward-header", "Authorization"),
     "header 'Authorization' is not NAME=VALUE"),
    (("--export-verdicts", "127.0.0.1:6006"), "cannot forward to '127.0.0.1:6006'"),
])
def test_a_bad_forward_option_is_a_clear_error(tmp_path, args, message):
    result = subprocess.run([sys.executable, "-m", "agenttrace_collector", "--db", str(tmp_path / "x.db"),
                             "--port", str(free_port()), "--grpc-port", "0", "--attributor", "none", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
