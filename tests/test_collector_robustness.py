"""The collector under abuse: killed mid-ingest, fed malformed bodies, duplicates, and more than it can queue.

Every test runs real collector processes on loopback and checks the store
itself (SQLite, read directly): an acknowledged span must be there, a rejected
request must leave what was accepted before intact, and the collector must keep
accepting afterwards.
"""

from __future__ import annotations

import base64
import gzip
import itertools
import json
import sqlite3
import threading

import grpc
import httpx
import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from agenttrace.local_collector import LocalCollector
from agenttrace_collector.otlp import load_span
from tests.crash import ingest_until_killed

PROTOBUF = {"content-type": "application/x-protobuf"}
JSON = {"content-type": "application/json"}
MAX_BODY = 64 * 1024

_ids = itertools.count(1)
_ids_lock = threading.Lock()


def _next_id() -> int:
    with _ids_lock:
        return next(_ids)


def make_request(n_spans: int, *, service: str = "robustness", content: str = "x" * 40) -> tuple[
        ExportTraceServiceRequest, set[bytes]]:
    """One trace of ``n_spans`` spans (a root and its children) with ids never used before in this test run."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", service
    ss = rs.scope_spans.add()
    ss.scope.name = "tests"
    trace_id = _next_id().to_bytes(16, "big")
    root = None
    ids = set()
    for i in range(n_spans):
        span = ss.spans.add()
        span.trace_id = trace_id
        span.span_id = _next_id().to_bytes(8, "big")
        if root is not None:
            span.parent_span_id = root
        else:
            root = span.span_id
        span.name = "invoke_agent planner" if i == 0 else "chat gpt-4o"
        span.start_time_unix_nano = 1_700_000_000_000_000_000 + i
        span.end_time_unix_nano = 1_700_000_000_000_000_000 + i + 1000
        attr = span.attributes.add()
        attr.key, attr.value.string_value = "gen_ai.output.messages", content
        ids.add(span.span_id)
    return req, ids


def stored_ids(db) -> set[bytes]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return {row[0] for row in conn.execute("SELECT span_id FROM spans")}
    finally:
        conn.close()


def stored_count(db) -> int:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0]
    finally:
        conn.close()


def post(c: LocalCollector, body: bytes, headers: dict, client: httpx.Client | None = None) -> httpx.Response:
    return (client or httpx).post(f"{c.endpoint}/v1/traces", content=body, headers=headers, timeout=30)


def error_message(resp: httpx.Response) -> str:
    """The google.rpc.Status message OTLP/HTTP puts in an error reply (protobuf or JSON)."""
    if resp.headers.get("content-type", "").startswith("application/json"):
        return resp.json()["message"]
    return status_pb2.Status.FromString(resp.content).message


def start(tmp_path, name: str, *args: str) -> LocalCollector:
    return LocalCollector(tmp_path / f"{name}.db", attributor="none", log_file=tmp_path / f"{name}.log",
                          extra_args=args).start()


# ---- crash safety ---------------------------------------------------------------------------------------


def test_every_acknowledged_span_survives_kill_9_during_ingest(tmp_path):
    c = start(tmp_path, "crash")
    payloads = [(req.SerializeToString(), ids) for req, ids in (make_request(50) for _ in range(8 * 60))]
    acked = ingest_until_killed(c, payloads, lambda client, body: post(c, body, PROTOBUF, client).status_code)
    assert len(acked) >= 40 * 50

    conn = sqlite3.connect(c.db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()

    again = LocalCollector(c.db, attributor="none", log_file=tmp_path / "crash-again.log").start()
    try:
        have = stored_ids(c.db)
        missing = acked - have
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged spans lost in the crash"
        health = httpx.get(f"{again.endpoint}/api/v1/health", timeout=5).json()
        assert health["status"] == "ok"
        req, ids = make_request(5)
        assert post(again, req.SerializeToString(), PROTOBUF).status_code == 200
        assert ids <= stored_ids(c.db)
    finally:
        again.stop()


# ---- bad input --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A collector with a 64 KiB body limit; the test module shares it (every case also checks it still works)."""
    tmp = tmp_path_factory.mktemp("robust")
    c = start(tmp, "small", "--max-body-bytes", str(MAX_BODY))
    yield c
    c.stop()


def _otlp_json(trace_id: str, span_id: str, *, name: str = "chat", parent: str = "") -> dict:
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "robustness"}}]},
        "scopeSpans": [{"scope": {"name": "tests"}, "spans": [{
            "traceId": trace_id, "spanId": span_id, "parentSpanId": parent, "name": name, "kind": 1,
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000001000000000",
            "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}],
        }]}],
    }]}


def _invalid_utf8_protobuf() -> bytes:
    req, _ = make_request(1, content="marker-0123")
    raw = req.SerializeToString()
    assert raw.count(b"marker-0123") == 1
    return raw.replace(b"marker-0123", b"marker\xff\xfe\xc3(1")  # same length, not UTF-8


def _oversized_protobuf() -> bytes:
    req, _ = make_request(1, content="y" * (MAX_BODY + 1024))
    return req.SerializeToString()


def _chunks(data: bytes, size: int = 8192):
    for i in range(0, len(data), size):
        yield data[i:i + size]


BAD_INPUTS = {
    # name: (body, headers, expected status, a phrase the error message must contain)
    "malformed-protobuf": (b"\x0a\xff\xff\xff\xff\x0fnot a protobuf", PROTOBUF, 400, "protobuf"),
    "truncated-protobuf": (lambda: make_request(3)[0].SerializeToString()[:-7], PROTOBUF, 400, "protobuf"),
    "wrong-content-type": (lambda: make_request(1)[0].SerializeToString(), {"content-type": "text/plain"}, 415,
                           "content-type"),
    "no-content-type": (lambda: make_request(1)[0].SerializeToString(), {}, 415, "content-type"),
    "oversized": (_oversized_protobuf, PROTOBUF, 413, "exceeds"),
    "oversized-chunked": (lambda: _chunks(_oversized_protobuf()), PROTOBUF, 413, "exceeds"),
    "oversized-after-gunzip": (lambda: gzip.compress(_oversized_protobuf()),
                               {**PROTOBUF, "content-encoding": "gzip"}, 413, "exceeds"),
    "invalid-utf8-json": (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "\xff\xfe"}]}]}]}', JSON, 400,
                          "UTF-8"),
    "invalid-utf8-protobuf-string": (_invalid_utf8_protobuf, PROTOBUF, 400, "UTF-8"),
    "not-gzip": (b"this is not gzip", {**PROTOBUF, "content-encoding": "gzip"}, 400, "gzip"),
    "truncated-gzip": (lambda: gzip.compress(make_request(3)[0].SerializeToString())[:-12],
                       {**PROTOBUF, "content-encoding": "gzip"}, 400, "truncated"),
    "gzip-with-trailing-junk": (lambda: gzip.compress(make_request(3)[0].SerializeToString()) + b"junk",
                                {**PROTOBUF, "content-encoding": "gzip"}, 400, "after the end"),
    "unknown-encoding": (lambda: make_request(1)[0].SerializeToString(), {**PROTOBUF, "content-encoding": "br"},
                         400, "content-encoding"),
    "json-short-trace-id": (json.dumps(_otlp_json("0af7651916cd43dd", "b7ad6b7169203331")).encode(), JSON, 400,
                            "traceId"),
    "json-long-span-id": (json.dumps(_otlp_json("0af7651916cd43dd8448eb211c80319c", "b7ad6b716920333100")).encode(),
                          JSON, 400, "spanId"),
    "json-odd-length-parent-id": (json.dumps(_otlp_json("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331",
                                                        parent="abc")).encode(), JSON, 400, "parentSpanId"),
    "json-non-hex-id": (json.dumps(_otlp_json("zzf7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")).encode(),
                        JSON, 400, "traceId"),
    "json-missing-ids": (json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "x"}]}]}]}).encode(),
                         JSON, 400, "span_id"),
    "json-wrong-shape": (b'{"resourceSpans": 5}', JSON, 400, "resourceSpans"),
    "json-not-an-object": (b"[1, 2]", JSON, 400, "object"),
    "not-json": (b"{resourceSpans:", JSON, 400, "JSON"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gets_a_clear_4xx_and_harms_nothing(small, case):
    body, headers, status, phrase = BAD_INPUTS[case]
    body = body() if callable(body) else body
    before, before_ids = make_request(4)
    assert post(small, before.SerializeToString(), PROTOBUF).status_code == 200
    count = stored_count(small.db)

    resp = post(small, body, headers)
    assert resp.status_code == status, resp.content[:300]
    message = error_message(resp)
    assert phrase.lower() in message.lower(), message
    if headers.get("content-type") == "application/json":
        assert resp.headers["content-type"].startswith("application/json")

    assert stored_count(small.db) == count, "a rejected request stored spans"
    assert before_ids <= stored_ids(small.db)
    after, after_ids = make_request(4)
    assert post(small, after.SerializeToString(), PROTOBUF).status_code == 200
    assert (before_ids | after_ids) <= stored_ids(small.db)


def test_grpc_rejects_bad_ids_and_oversized_messages(small):
    with grpc.insecure_channel(f"127.0.0.1:{small.grpc_port}") as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        req, _ = make_request(2)
        req.resource_spans[0].scope_spans[0].spans[1].span_id = b"\x01\x02"
        with pytest.raises(grpc.RpcError) as err:
            stub.Export(req, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "span_id" in err.value.details()
        big, _ = make_request(1, content="z" * (MAX_BODY + 1))
        with pytest.raises(grpc.RpcError) as err:
            stub.Export(big, timeout=10)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        ok, ok_ids = make_request(3)
        stub.Export(ok, timeout=10)
    assert ok_ids <= stored_ids(small.db)


# (kind, status.code) as sent -> as stored: OTLP's SpanKind is 0-5 and StatusCode 0-2; a value outside them cannot be
# interpreted, so it is stored as "not specified" (UNSPECIFIED / UNSET) and the span is kept.
ENUM_CLAMPS = [((9, 7), (0, 0)), ((-1, -3), (0, 0)), ((3, 2), (3, 2))]


def stored_kind_and_status(db, span_hex: str) -> tuple[int, int]:
    conn = sqlite3.connect(db, timeout=30)
    (status_code, data), = conn.execute("SELECT status_code, data FROM spans WHERE span_id = ?",
                                        (bytes.fromhex(span_hex),)).fetchall()
    conn.close()
    span = load_span(data)
    assert status_code == span.status.code
    return span.kind, span.status.code


@pytest.mark.parametrize("path", ["otlp-json", "grpc"])
def test_kind_and_status_code_outside_their_otlp_enums_are_stored_as_unspecified(small, path):
    n = next(_ids)
    trace_hex, root_hex = f"{n:032x}", f"{n:012x}0000"
    span_hexes = [f"{n:012x}{i:04x}" for i in range(1, len(ENUM_CLAMPS) + 1)]
    doc = _otlp_json(trace_hex, root_hex, name="invoke_agent planner")
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    for span_hex, ((kind, code), _) in zip(span_hexes, ENUM_CLAMPS):
        spans.append({**spans[0], "spanId": span_hex, "parentSpanId": root_hex, "name": "chat", "kind": kind,
                      "status": {"code": code}})
    if path == "otlp-json":
        assert post(small, json.dumps(doc).encode(), JSON).status_code == 200
    else:  # the same spans as protobuf (ids in base64, protobuf's JSON mapping)
        for span in spans:
            for key in ("traceId", "spanId", "parentSpanId"):
                span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
        with grpc.insecure_channel(f"127.0.0.1:{small.grpc_port}") as channel:
            trace_service_pb2_grpc.TraceServiceStub(channel).Export(
                json_format.ParseDict(doc, ExportTraceServiceRequest()), timeout=10)
    assert [stored_kind_and_status(small.db, h) for h in span_hexes] == [stored for _, stored in ENUM_CLAMPS]


# ---- each path stores, duplicates once -------------------------------------------------------------------


def test_a_span_sent_twice_is_stored_once_whatever_the_path(small):
    req, ids = make_request(6)
    raw = req.SerializeToString()
    count = stored_count(small.db)
    assert post(small, raw, PROTOBUF).status_code == 200
    assert post(small, raw, PROTOBUF).status_code == 200
    assert post(small, gzip.compress(raw), {**PROTOBUF, "content-encoding": "gzip"}).status_code == 200
    with grpc.insecure_channel(f"127.0.0.1:{small.grpc_port}") as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(req, timeout=10)
    assert stored_count(small.db) == count + len(ids)

    doc = _otlp_json("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174")
    body = json.dumps(doc).encode()
    assert post(small, body, JSON).status_code == 200
    assert post(small, body, JSON).status_code == 200
    conn = sqlite3.connect(small.db)
    n = conn.execute("SELECT COUNT(*) FROM spans WHERE span_id = ?", (bytes.fromhex("eee19b7ec3c1b174"),)).fetchone()
    conn.close()
    assert n[0] == 1


def test_otlp_json_gzip_and_grpc_exporter_paths_store_spans(small):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    # OTLP/JSON (hex ids), gzip'd.
    trace_hex, span_hex, child_hex = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "00f067aa0ba902b8"
    doc = _otlp_json(trace_hex, span_hex, name="invoke_agent planner")
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"].append(
        _otlp_json(trace_hex, child_hex, name="execute_tool search", parent=span_hex)
        ["resourceSpans"][0]["scopeSpans"][0]["spans"][0])
    resp = post(small, gzip.compress(json.dumps(doc).encode()), {**JSON, "content-encoding": "gzip"})
    assert resp.status_code == 200 and resp.json() == {}
    conn = sqlite3.connect(small.db)
    rows = conn.execute("SELECT span_id, parent_span_id, name, service FROM spans WHERE trace_id = ? ORDER BY span_id",
                        (bytes.fromhex(trace_hex),)).fetchall()
    conn.close()
    assert rows == [(bytes.fromhex(span_hex), b"", "invoke_agent planner", "robustness"),
                    (bytes.fromhex(child_hex), bytes.fromhex(span_hex), "execute_tool search", "robustness")]

    # Protobuf, gzip'd.
    req, ids = make_request(7)
    resp = post(small, gzip.compress(req.SerializeToString()), {**PROTOBUF, "content-encoding": "gzip"})
    assert resp.status_code == 200
    assert ids <= stored_ids(small.db)

    # gRPC, through the official OTLP exporter.
    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{small.grpc_port}", insecure=True, timeout=10)
    provider = TracerProvider(resource=Resource.create({"service.name": "grpc-exporter"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("invoke_agent planner") as root:
        with tracer.start_as_current_span("chat gpt-4o") as child:
            pass
    provider.shutdown()
    want = {root.get_span_context().span_id.to_bytes(8, "big"), child.get_span_context().span_id.to_bytes(8, "big")}
    conn = sqlite3.connect(small.db)
    got = conn.execute("SELECT span_id, service FROM spans WHERE trace_id = ?",
                       (root.get_span_context().trace_id.to_bytes(16, "big"),)).fetchall()
    conn.close()
    assert {sid for sid, _ in got} == want
    assert {svc for _, svc in got} == {"grpc-exporter"}


# ---- back-pressure ----------------------------------------------------------------------------------------


def test_a_full_queue_answers_503_with_retry_after_and_never_drops_an_acknowledged_span(tmp_path):
    c = start(tmp_path, "pressure", "--max-pending-spans", "100")
    acked: set[bytes] = set()
    refused: set[bytes] = set()
    statuses: list[int] = []
    retry_after: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()
    # Exports of 80 spans against a 100-span queue: a second one queued beside another is refused.
    payloads = [make_request(80, content="m" * 300) for _ in range(8 * 40)]

    def sender(k: int) -> None:
        with httpx.Client(timeout=30) as client:
            for req, ids in payloads[k::8]:
                if enough.is_set():
                    return
                resp = post(c, req.SerializeToString(), PROTOBUF, client)
                with lock:
                    statuses.append(resp.status_code)
                    if resp.status_code == 200:
                        acked.update(ids)
                    elif resp.status_code == 503:
                        refused.update(ids)
                        retry_after.append(resp.headers.get("retry-after", ""))
                        assert "capacity" in error_message(resp)
                        if len(retry_after) >= 10:
                            enough.set()

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert set(statuses) <= {200, 503}, statuses
        assert retry_after, "no export was refused: the queue limit did not apply"
        assert all(v.isdigit() and int(v) >= 1 for v in retry_after), retry_after
        assert acked, "nothing was accepted"
        have = stored_ids(c.db)
        assert acked <= have, "an acknowledged span was dropped"
        assert not (refused & have), "a refused export was stored anyway (the client would resend it)"
        # Once the load is gone the collector takes exports again, even one bigger than its whole queue.
        big, big_ids = make_request(150)
        assert post(c, big.SerializeToString(), PROTOBUF).status_code == 200
        assert big_ids <= stored_ids(c.db)
    finally:
        enough.set()
        c.stop()
