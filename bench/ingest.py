"""Ingest benchmark: spans/s committed from OTLP/HTTP protobuf batches, agenttrace collector vs Arize Phoenix.

Both receivers get the same pre-serialised exports (realistic GenAI spans: about
20 attributes, 1-2 KB of message content in gen_ai.input/output.messages, trees
of invoke_agent / chat / execute_tool), from several concurrent httpx senders.
The clock runs from the first request until every span is in the receiver's
SQLite database (agenttrace: ``spans``; Phoenix: ``spans`` in
$PHOENIX_WORKING_DIR/phoenix.db), so a receiver that answers before it stores
gets no credit for it. A 503 (back-pressure) is retried after
min(Retry-After, 0.25 s); the count of retries is printed.

    .venv/bin/python bench/ingest.py                      # agenttrace + Phoenix (from .venv-bench or PATH)
    .venv/bin/python bench/ingest.py --skip-phoenix
    .venv/bin/python bench/ingest.py --skip-phoenix --db "$(scripts/postgres.sh start)"   # PostgreSQL store
    nox -s bench_ingest                                   # the same in its own venv, Phoenix included
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "collector"))

from agenttrace.local_collector import LocalCollector  # noqa: E402
from agenttrace.testing.phoenix import phoenix_server  # noqa: E402

PROTOBUF = {"content-type": "application/x-protobuf"}

# ---- payloads -------------------------------------------------------------------------------------------

_WORDS = ("the", "agent", "plan", "search", "result", "tool", "answer", "verify", "step", "query", "context",
          "document", "summary", "user", "request", "model", "retrieve", "compute", "check", "final")


def _text(rng: random.Random, n_chars: int) -> str:
    out, size = [], 0
    while size < n_chars:
        w = rng.choice(_WORDS)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)


def _messages(rng: random.Random, role: str, n_chars: int) -> str:
    parts = []
    if role == "input":
        parts.append({"role": "system", "parts": [{"type": "text", "content": _text(rng, 300)}]})
        parts.append({"role": "user", "parts": [{"type": "text", "content": _text(rng, max(100, n_chars - 400))}]})
    else:
        parts.append({"role": "assistant", "parts": [{"type": "text", "content": _text(rng, n_chars - 100)}],
                      "finish_reason": "stop"})
    return json.dumps(parts)


def _kv(key: str, value) -> KeyValue:
    if isinstance(value, bool):
        v = AnyValue(bool_value=value)
    elif isinstance(value, int):
        v = AnyValue(int_value=value)
    elif isinstance(value, float):
        v = AnyValue(double_value=value)
    elif isinstance(value, list):
        v = AnyValue()
        v.array_value.values.extend(AnyValue(string_value=x) for x in value)
    else:
        v = AnyValue(string_value=value)
    return KeyValue(key=key, value=v)


class _TraceBuilder:
    """One multi-agent run: an orchestrator invoking sub-agents, each chatting and calling tools."""

    def __init__(self, rng: random.Random, start_ns: int) -> None:
        self.rng = rng
        self.trace_id = rng.randbytes(16)
        self.run_id = self.trace_id.hex()
        self.t = start_ns
        self.spans: list[Span] = []

    def span(self, name: str, parent: bytes, kind: int, attrs: dict, duration_ns: int, error: bool = False) -> Span:
        s = Span(trace_id=self.trace_id, span_id=self.rng.randbytes(8), parent_span_id=parent, name=name,
                 kind=kind, start_time_unix_nano=self.t, end_time_unix_nano=self.t + duration_ns)
        s.attributes.extend(_kv(k, v) for k, v in attrs.items())
        s.status.code = Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_OK
        self.t += duration_ns // 4
        self.spans.append(s)
        return s

    def common(self, agent: str, step: int) -> dict:
        return {"gen_ai.provider.name": "openai", "gen_ai.agent.name": agent, "gen_ai.agent.id": f"{agent}-1",
                "gen_ai.conversation.id": self.run_id, "agenttrace.run.id": self.run_id, "agenttrace.step": step,
                "server.address": "api.openai.com", "server.port": 443}

    def chat(self, parent: bytes, agent: str, step: int) -> None:
        rng = self.rng
        self.span("chat gpt-4o", parent, Span.SPAN_KIND_CLIENT, {
            **self.common(agent, step), "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.response.id": f"chatcmpl-{rng.randbytes(9).hex()}",
            "gen_ai.request.temperature": 0.2, "gen_ai.request.max_tokens": 1024, "gen_ai.request.top_p": 1.0,
            "gen_ai.response.finish_reasons": ["stop"], "gen_ai.usage.input_tokens": rng.randint(300, 3000),
            "gen_ai.usage.output_tokens": rng.randint(50, 600), "gen_ai.output.type": "text",
            "gen_ai.input.messages": _messages(rng, "input", rng.randint(1000, 1600)),
            "gen_ai.output.messages": _messages(rng, "output", rng.randint(300, 500)),
        }, rng.randint(400_000_000, 3_000_000_000))

    def tool(self, parent: bytes, agent: str, step: int) -> None:
        rng = self.rng
        name = rng.choice(("web_search", "python", "read_file", "sql_query"))
        self.span(f"execute_tool {name}", parent, Span.SPAN_KIND_INTERNAL, {
            **self.common(agent, step), "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name,
            "gen_ai.tool.type": "function", "gen_ai.tool.description": f"Runs {name} and returns its output",
            "gen_ai.tool.call.id": f"call_{rng.randbytes(8).hex()}",
            "gen_ai.tool.call.arguments": json.dumps({"query": _text(rng, 120)}),
            "gen_ai.tool.call.result": _text(rng, rng.randint(900, 1500)),
            "gen_ai.request.model": "gpt-4o", "code.function": name,
        }, rng.randint(50_000_000, 900_000_000), error=rng.random() < 0.05)

    def run(self, n_agents: int) -> list[Span]:
        root = self.span("invoke_agent orchestrator", b"", Span.SPAN_KIND_INTERNAL, {
            **self.common("orchestrator", 0), "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.description": "Plans the task and delegates to specialists",
            "gen_ai.request.model": "gpt-4o", "gen_ai.input.messages": _messages(self.rng, "input", 1200),
            "gen_ai.output.messages": _messages(self.rng, "output", 400), "agenttrace.outcome": "success",
            "gen_ai.usage.input_tokens": 12000, "gen_ai.usage.output_tokens": 2100, "service.version": "1.4.2",
        }, 60_000_000_000)
        step = 1
        for a in range(n_agents):
            agent = ("researcher", "coder", "reviewer", "writer")[a % 4]
            sub = self.span(f"invoke_agent {agent}", root.span_id, Span.SPAN_KIND_INTERNAL, {
                **self.common(agent, step), "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.description": f"The {agent}", "gen_ai.request.model": "gpt-4o",
                "gen_ai.input.messages": _messages(self.rng, "input", 1000),
                "gen_ai.output.messages": _messages(self.rng, "output", 500),
                "gen_ai.usage.input_tokens": 4000, "gen_ai.usage.output_tokens": 700,
                "gen_ai.conversation.turn": a, "service.version": "1.4.2",
            }, 10_000_000_000)
            self.chat(sub.span_id, agent, step)
            self.tool(sub.span_id, agent, step + 1)
            self.chat(sub.span_id, agent, step + 2)
            step += 3
        # Spans are exported as they end: children before their parents.
        return self.spans[::-1]


def make_payloads(n_spans: int, batch_spans: int, seed: int = 7) -> tuple[list[bytes], int, float]:
    """Serialised ExportTraceServiceRequests holding ~``n_spans`` spans; (payloads, spans, mean span bytes)."""
    rng = random.Random(seed)
    spans: list[Span] = []
    t = 1_760_000_000_000_000_000
    while len(spans) < n_spans:
        spans.extend(_TraceBuilder(rng, t).run(n_agents=rng.randint(3, 8)))
        t += 1_000_000_000
    payloads = []
    for i in range(0, len(spans), batch_spans):
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        rs.resource.attributes.extend([_kv("service.name", "bench-agents"), _kv("service.version", "1.4.2"),
                                       _kv("telemetry.sdk.name", "opentelemetry"),
                                       _kv("telemetry.sdk.language", "python"),
                                       _kv("telemetry.sdk.version", "1.38.0")])
        ss = rs.scope_spans.add()
        ss.scope.name = "agenttrace"
        ss.scope.version = "0.1.0"
        ss.spans.extend(spans[i:i + batch_spans])
        payloads.append(req.SerializeToString())
    mean = sum(s.ByteSize() for s in spans) / len(spans)
    return payloads, len(spans), mean


# ---- sending and counting -----------------------------------------------------------------------------------


def count_rows(db: Path | str) -> int:
    if str(db).startswith(("postgresql://", "postgres://")):
        import psycopg

        try:
            with psycopg.connect(str(db), autocommit=True) as conn:
                return conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0]
        except psycopg.errors.UndefinedTable:  # not created yet
            return 0
    db = Path(db)
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created yet / locked
        return 0


def blast(url: str, payloads: list[bytes], senders: int, db: Path | str, expected: int, timeout_s: float) -> dict:
    """Sends every payload from ``senders`` threads; returns timings once ``expected`` spans are stored."""
    refused = [0] * senders
    failures: list[str] = []
    lock = threading.Lock()
    next_i = [0]

    def sender(k: int) -> None:
        with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=1)) as client:
            while True:
                with lock:
                    i = next_i[0]
                    next_i[0] += 1
                if i >= len(payloads):
                    return
                while True:
                    resp = client.post(url, content=payloads[i], headers=PROTOBUF)
                    if resp.status_code == 200:
                        break
                    if resp.status_code == 503:
                        refused[k] += 1
                        time.sleep(min(float(resp.headers.get("retry-after", "1")), 0.25))
                        continue
                    failures.append(f"{resp.status_code}: {resp.text[:200]}")
                    return

    threads = [threading.Thread(target=sender, args=(k,), daemon=True) for k in range(senders)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t_acked = time.perf_counter()
    if failures:
        raise RuntimeError(f"{len(failures)} exports failed, e.g. {failures[0]}")
    deadline = t0 + timeout_s
    stored = count_rows(db)
    while stored < expected and time.perf_counter() < deadline:
        time.sleep(0.02)
        stored = count_rows(db)
    t_stored = time.perf_counter()
    return {"stored": stored, "expected": expected, "ack_s": t_acked - t0, "stored_s": t_stored - t0,
            "spans_per_s": stored / (t_stored - t0), "retried_503": sum(refused)}


# ---- the two receivers --------------------------------------------------------------------------------------


def run_agenttrace(workdir: Path, payloads: list[bytes], n: int, warmup: bytes, args) -> dict:
    db = args.db or workdir / "agenttrace.db"
    with LocalCollector(db, attributor="none", log_file=workdir / "agenttrace.log",
                        extra_args=tuple(args.collector_arg)) as c:
        # A warm-up export of other spans (imports, first-connection costs), then a fresh count.
        httpx.post(f"{c.endpoint}/v1/traces", content=warmup, headers=PROTOBUF, timeout=30).raise_for_status()
        base = count_rows(db)
        result = blast(f"{c.endpoint}/v1/traces", payloads, args.senders, db, base + n, args.timeout)
    result["stored"] -= base
    result["spans_per_s"] = result["stored"] / result["stored_s"]
    return result


def _phoenix_bin(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    for candidate in (Path(sys.executable).parent / "phoenix", ROOT / ".venv-bench" / "bin" / "phoenix"):
        if candidate.exists():
            return str(candidate)
    return shutil.which("phoenix")


def run_phoenix(workdir: Path, payloads: list[bytes], n: int, warmup: bytes, args) -> dict:
    exe = _phoenix_bin(args.phoenix)
    if exe is None:
        raise SystemExit("phoenix not found: `python -m venv .venv-bench && .venv-bench/bin/pip install "
                         "arize-phoenix`, or pass --phoenix PATH, or --skip-phoenix")
    pdir = workdir / "phoenix"
    pdir.mkdir()
    with phoenix_server(exe, pdir) as (base_url, db):
        # The same warm-up as for agenttrace; Phoenix stores it asynchronously, so wait for it.
        httpx.post(f"{base_url}/v1/traces", content=warmup, headers=PROTOBUF, timeout=30).raise_for_status()
        deadline = time.monotonic() + 120
        while count_rows(db) < args.batch and time.monotonic() < deadline:
            time.sleep(0.05)
        base = count_rows(db)
        result = blast(f"{base_url}/v1/traces", payloads, args.senders, db, base + n, args.timeout)
    result["stored"] -= base
    result["spans_per_s"] = result["stored"] / result["stored_s"]
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spans", type=int, default=100_000, help="spans sent to agenttrace")
    p.add_argument("--phoenix-spans", type=int, default=10_000,
                   help="spans sent to Phoenix: the first exports of the same payloads (0: all of them); "
                        "Phoenix stores ~100-150 spans/s here, so all 100k would take over 10 minutes")
    p.add_argument("--batch", type=int, default=256, help="spans per export request")
    p.add_argument("--senders", type=int, default=8, help="concurrent sender connections")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for the spans to be stored")
    p.add_argument("--phoenix", default=None, help="the phoenix executable (default: next to python, "
                                                   ".venv-bench/bin/phoenix, or on PATH)")
    p.add_argument("--skip-phoenix", action="store_true")
    p.add_argument("--db", default=None, help="the agenttrace collector's --db: a postgresql:// URL benchmarks the "
                                             "PostgreSQL store (e.g. from scripts/postgres.sh start); default SQLite "
                                             "in a temp dir")
    p.add_argument("--collector-arg", action="append", default=[], help="extra argument for the collector")
    p.add_argument("--keep", action="store_true", help="keep the databases and logs")
    args = p.parse_args(argv)

    payloads, n, mean = make_payloads(args.spans, args.batch)
    warmup = make_payloads(args.batch, args.batch, seed=1)[0][0]
    mb = sum(map(len, payloads)) / 1e6
    print(f"payload: {n} spans in {len(payloads)} exports of {args.batch} spans, {mb:.1f} MB "
          f"({mean:.0f} B/span, ~{mb / len(payloads) * 1e3:.0f} KB/export); {args.senders} senders")
    workdir = Path(tempfile.mkdtemp(prefix="agenttrace-bench-ingest-"))
    try:
        a = run_agenttrace(workdir, payloads, n, warmup, args)
        print(f"agenttrace: {a['stored']}/{n} spans stored in {a['stored_s']:.2f}s -> {a['spans_per_s']:,.0f} spans/s "
              f"(last ack at {a['ack_s']:.2f}s, {a['retried_503']} exports retried after 503)")
        if args.skip_phoenix:
            return 0 if a["stored"] >= n else 1
        k = len(payloads) if not args.phoenix_spans else max(2, -(-args.phoenix_spans // args.batch))
        sub = payloads[:k]
        pn = sum(len(ExportTraceServiceRequest.FromString(x).resource_spans[0].scope_spans[0].spans) for x in sub)
        ph = run_phoenix(workdir, sub, pn, warmup, args)
        print(f"phoenix:    {ph['stored']}/{pn} spans stored in {ph['stored_s']:.2f}s -> {ph['spans_per_s']:,.0f} "
              f"spans/s (last ack at {ph['ack_s']:.2f}s, {ph['retried_503']} exports retried after 503)")
        print(f"ratio agenttrace/phoenix: {a['spans_per_s'] / ph['spans_per_s']:.1f}x")
        return 0 if a["stored"] >= n and ph["stored"] >= pn else 1
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
