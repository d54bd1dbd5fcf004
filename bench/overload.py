"""Overload benchmark: the collector's resource bounds against abusive clients, each beside a baseline run here.

Five scenarios, each on a fresh collector process (SQLite, no attributor) on loopback:

1. uploads   - N concurrent uploads of a ~31 MiB export: the collector's peak RSS and 503s, with the
               default byte budget (--max-pending-bytes 256 MiB) vs an unbounded one (the old behaviour).
2. slowloris - 2,000 connections that never finish their headers: how many are still open after
               --read-timeout + 3 s, and what a normal export gets at once, 1.5 s later and after, vs a
               bare uvicorn server with the same connection limit (the server the collector is built on).
3. grpc      - 4,000 gRPC requests whose bytes are not a protobuf: the collector's RSS growth vs a bare
               grpcio server that lets grpcio deserialize (grpcio's own path, which leaks).
4. bigtrace  - a run of 100,000 spans whose root comes first, in 20 exports: assemblies, time to the final
               assembly and a probe export's latency, with --reassemble-interval 5 vs 0 (the old behaviour).
5. fuzz      - mutated OTLP exports (agenttrace.testing.otlp_fuzz) over HTTP and gRPC from 8 threads:
               status counts (no 5xx expected), and a canary run still assembled.

    .venv/bin/python bench/overload.py                    # all, the sizes above
    .venv/bin/python bench/overload.py --only grpc fuzz --fuzz-cases 2000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "collector"))

from agenttrace.local_collector import LocalCollector  # noqa: E402
from agenttrace.testing.otlp_fuzz import mutate, mutate_body, seed_request  # noqa: E402

PROTOBUF = {"content-type": "application/x-protobuf"}
MiB = 1024 * 1024


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of a process in MB (VmHWM: its peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def collector(workdir: Path, name: str, *args: str) -> LocalCollector:
    return LocalCollector(workdir / f"{name}.db", attributor="none", log_file=workdir / f"{name}.log",
                          extra_args=("--settle", "0.2", *args)).start(timeout=60)


def trace_request(n_spans: int, *, content_bytes: int, trace_id: bytes | None = None) -> ExportTraceServiceRequest:
    """One trace: a root span and ``n_spans - 1`` children, each carrying ``content_bytes`` of message text."""
    rng = random.Random(n_spans)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "overload"
    spans = rs.scope_spans.add().spans
    trace_id = trace_id or os.urandom(16)
    root = os.urandom(8)
    text = "".join(rng.choice("abcdefgh ") for _ in range(content_bytes))
    for i in range(n_spans):
        s = spans.add()
        s.trace_id, s.span_id = trace_id, root if i == 0 else os.urandom(8)
        s.parent_span_id = b"" if i == 0 else root
        s.name = "invoke_agent planner" if i == 0 else "chat model"
        s.start_time_unix_nano, s.end_time_unix_nano = 1_700_000_000_000_000_000 + i, 1_700_000_000_000_001_000 + i
        attr = s.attributes.add()
        attr.key, attr.value.string_value = "gen_ai.output.messages", text
    return req


def post(endpoint: str, body: bytes, client: httpx.Client | None = None) -> int | str:
    """An export's HTTP status, or the name of the error that stopped it."""
    try:
        return (client or httpx).post(f"{endpoint}/v1/traces", content=body, headers=PROTOBUF, timeout=120).status_code
    except httpx.HTTPError as exc:
        return type(exc).__name__


# ---- 1. concurrent big uploads -------------------------------------------------------------------------

def uploads(workdir: Path, n: int, size_mib: int) -> None:
    body = trace_request(size_mib * 32, content_bytes=32 * 1024).SerializeToString()
    print(f"\n1. {n} concurrent uploads of {len(body) / MiB:.1f} MiB")
    print(f"   {'collector':<34}{'RSS before':>11}{'peak RSS':>10}{'RSS after':>10}  statuses")
    for label, args in (("unbounded (old behaviour)", ("--max-pending-bytes", str(1 << 40))),
                        ("--max-pending-bytes 256 MiB (default)", ()),
                        ("--max-pending-bytes 64 MiB", ("--max-pending-bytes", str(64 * MiB)))):
        c = collector(workdir, f"uploads-{len(label)}", *args)
        try:
            before = rss_mb(c.proc.pid)
            gate = threading.Barrier(n)

            def one(_):
                gate.wait()
                return post(c.endpoint, body)

            with ThreadPoolExecutor(n) as pool:
                statuses = Counter(pool.map(one, range(n)))
            peak, after = rss_mb(c.proc.pid, "VmHWM"), rss_mb(c.proc.pid)
        finally:
            c.stop()
        print(f"   {label:<34}{before:>9.0f}MB{peak:>8.0f}MB{after:>8.0f}MB  {dict(statuses)}")


# ---- 2. slow-loris ---------------------------------------------------------------------------------------

BARE_UVICORN = r"""
import socket, sys, uvicorn

async def app(scope, receive, send):  # answers every request 200, as a collector that accepted it would
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(2048)
print(sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="error", limit_concurrency=int(sys.argv[1]))).run(sockets=[sock])
"""


def slowloris(workdir: Path, n: int, read_timeout: float) -> None:
    print(f"\n2. {n} connections that never finish their headers (connection limit 1000); a normal export at once,"
          f" {STALLED_PROBE_S:g} s later, and {read_timeout + 3:g} s later")
    print(f"   {'server':<44}{'still open':>11}  a normal export: at once -> {STALLED_PROBE_S:g} s -> after")
    bare = subprocess.Popen([sys.executable, "-c", BARE_UVICORN, "1000"], stdout=subprocess.PIPE, text=True)
    try:
        port = int(bare.stdout.readline())
        _loris_round("bare uvicorn (limit_concurrency 1000)", f"http://127.0.0.1:{port}", port, n, read_timeout)
    finally:
        bare.kill()
        bare.wait()
    c = collector(workdir, "loris", "--read-timeout", str(read_timeout))
    try:
        _loris_round(f"agenttrace collector (--read-timeout {read_timeout:g})", c.endpoint, c.port, n, read_timeout)
    finally:
        c.stop()


STALLED_PROBE_S = 1.5  # past the collector's STALLED_AFTER_S


def _loris_round(label: str, endpoint: str, port: int, n: int, read_timeout: float) -> None:
    probe = trace_request(3, content_bytes=100).SerializeToString()
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            socks.append(s)
        at_once = post(endpoint, probe)
        time.sleep(STALLED_PROBE_S)
        later = post(endpoint, probe)
        time.sleep(read_timeout + 3 - STALLED_PROBE_S)
        still_open = sum(not _closed(s) for s in socks)
        after = post(endpoint, probe)
    finally:
        for s in socks:
            s.close()
    print(f"   {label:<44}{still_open:>11}  {at_once} -> {later} -> {after}")


def _closed(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


# ---- 3. undecodable gRPC messages ------------------------------------------------------------------------

GRPC_CLIENT = r"""
import sys, grpc
with grpc.insecure_channel(sys.argv[1]) as channel:
    call = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
    for _ in range(int(sys.argv[2])):
        try:
            call(b"\xff" * 2000, timeout=10)
        except grpc.RpcError as exc:
            code = exc.code()
print(code)
"""


BARE_GRPC_SERVER = r"""
from concurrent import futures
import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

class Bare(trace_service_pb2_grpc.TraceServiceServicer):
    def Export(self, request, context):
        return trace_service_pb2.ExportTraceServiceResponse()

server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Bare(), server)
print(server.add_insecure_port("127.0.0.1:0"), flush=True)
server.start()
server.wait_for_termination()
"""


def grpc_garbage(workdir: Path, n: int) -> None:
    print(f"\n3. {n} gRPC requests whose bytes are not a protobuf, sent 3 times")
    print(f"   {'server':<42}{'RSS growth after each round':>30}  answer")
    bare = subprocess.Popen([sys.executable, "-c", BARE_GRPC_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(bare.stdout.readline())
        _grpc_rounds(f"bare grpcio {grpc.__version__} (grpcio deserializes)", bare.pid, f"127.0.0.1:{port}", n)
    finally:
        bare.kill()
        bare.wait()
    c = collector(workdir, "grpc")
    try:
        _grpc_rounds("agenttrace collector (decodes itself)", c.proc.pid, f"127.0.0.1:{c.grpc_port}", n)
    finally:
        c.stop()


def _grpc_rounds(label: str, pid: int, target: str, n: int) -> None:
    start, growth = rss_mb(pid), []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", GRPC_CLIENT, target, str(n)], capture_output=True, text=True,
                             check=True).stdout.strip()
        growth.append(rss_mb(pid) - start)
    print(f"   {label:<42}{' '.join(f'+{g:.0f}MB' for g in growth):>30}  {out}")


# ---- 4. a big run whose root comes first -----------------------------------------------------------------

def big_trace(workdir: Path, n_spans: int, exports: int) -> None:
    print(f"\n4. a run of {n_spans} spans, root first, in {exports} exports")
    print(f"   {'collector':<34}{'assemblies':>11}{'to final':>10}{'probe p50':>11}{'probe max':>11}")
    for interval in ("0", "5"):
        c = collector(workdir, f"big-{interval}", "--reassemble-interval", interval)
        try:
            req = trace_request(n_spans, content_bytes=200)
            spans = list(req.resource_spans[0].scope_spans[0].spans)
            del req.resource_spans[0].scope_spans[0].spans[:]  # the export's envelope, for each part
            step = -(-n_spans // exports)
            probes: list[float] = []
            with httpx.Client(timeout=120) as client:
                for i in range(exports):
                    part = ExportTraceServiceRequest()
                    part.CopyFrom(req)
                    part.resource_spans[0].scope_spans[0].spans.extend(spans[i * step:(i + 1) * step])
                    assert post(c.endpoint, part.SerializeToString(), client) == 200
                    t = time.perf_counter()
                    assert post(c.endpoint, trace_request(3, content_bytes=100).SerializeToString(), client) == 200
                    probes.append(time.perf_counter() - t)
                    time.sleep(0.3)  # past --settle: the run is due again
            sent = time.monotonic()
            while not _assembled(c, spans[0].trace_id):  # since its last spans came
                time.sleep(0.2)
            final = time.monotonic() - sent
        finally:
            c.stop()
        assemblies = sum(1 for r in _log(c) if r.get("event") == "run.assembled"
                         and r.get("run_id") == spans[0].trace_id.hex())
        label = f"--reassemble-interval {interval}" + (" (old behaviour)" if interval == "0" else "")
        print(f"   {label:<34}{assemblies:>11}{final:>9.1f}s{statistics.median(probes):>10.3f}s"
              f"{max(probes):>10.3f}s")


def _log(c: LocalCollector) -> list[dict]:
    return [json.loads(line) for line in c.log_file.read_text().splitlines() if line.startswith("{")]


def _assembled(c: LocalCollector, trace_id: bytes) -> bool:
    """True once the trace is assembled with every span it has (new spans clear ``assembled_at``)."""
    with sqlite3.connect(c.db, timeout=30) as conn:
        row = conn.execute("SELECT assembled_at FROM traces WHERE trace_id = ?", (trace_id,)).fetchone()
    return row is not None and row[0] is not None


# ---- 5. fuzz -----------------------------------------------------------------------------------------------

def fuzz(workdir: Path, cases: int) -> None:
    print(f"\n5. {cases} mutated HTTP exports + {cases // 3} gRPC, 8 threads")
    c = collector(workdir, "fuzz")
    statuses: Counter = Counter()
    try:
        def http_case(i: int) -> None:
            rng = random.Random(i)
            body = mutate(seed_request(rng), rng, rng.randint(1, 6)).SerializeToString()
            statuses[post(c.endpoint, mutate_body(body, rng) if i % 5 == 4 else body)] += 1

        def grpc_case(i: int) -> None:
            rng = random.Random(-i)
            with grpc.insecure_channel(f"127.0.0.1:{c.grpc_port}") as channel:
                try:
                    trace_service_pb2_grpc.TraceServiceStub(channel).Export(mutate(seed_request(rng), rng), timeout=60)
                    statuses["grpc OK"] += 1
                except grpc.RpcError as exc:
                    statuses[f"grpc {exc.code().name}"] += 1

        t = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(http_case, range(cases)))
            list(pool.map(grpc_case, range(cases // 3)))
        elapsed = time.perf_counter() - t
        rng = random.Random(0)
        assert post(c.endpoint, seed_request(rng, run_id="overload-canary").SerializeToString()) == 200
        trajectory, _ = c.wait_run("overload-canary", timeout=120)
        health = c.get("/api/v1/health").json()
    finally:
        c.stop()
    fives = sum(n for s, n in statuses.items() if isinstance(s, int) and s >= 500)
    print(f"   statuses: {dict(sorted(statuses.items(), key=str))} in {elapsed:.0f} s; 5xx: {fives}")
    print(f"   canary assembled with {len(trajectory.steps)} steps; health {health['status']}, "
          f"quarantined {health['quarantined_traces']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=["uploads", "slowloris", "grpc", "bigtrace", "fuzz"])
    parser.add_argument("--uploads", type=int, default=24)
    parser.add_argument("--upload-mib", type=int, default=31)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--read-timeout", type=float, default=5.0)
    parser.add_argument("--grpc-messages", type=int, default=4000)
    parser.add_argument("--trace-spans", type=int, default=100_000)
    parser.add_argument("--trace-exports", type=int, default=20)
    parser.add_argument("--fuzz-cases", type=int, default=3000)
    args = parser.parse_args()
    chosen = set(args.only or ["uploads", "slowloris", "grpc", "bigtrace", "fuzz"])
    with tempfile.TemporaryDirectory(prefix="agenttrace-overload-") as tmp:
        workdir = Path(tmp)
        if "uploads" in chosen:
            uploads(workdir, args.uploads, args.upload_mib)
        if "slowloris" in chosen:
            slowloris(workdir, args.connections, args.read_timeout)
        if "grpc" in chosen:
            grpc_garbage(workdir, args.grpc_messages)
        if "bigtrace" in chosen:
            big_trace(workdir, args.trace_spans, args.trace_exports)
        if "fuzz" in chosen:
            fuzz(workdir, args.fuzz_cases)


if __name__ == "__main__":
    main()
