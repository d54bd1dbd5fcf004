"""Redaction: secrets never reach the collector's database, and the SDK's hook covers every string it exports.

The collector's redactor (``--redact-secrets``, ``--redact REGEX``, ``--redact-file``) rewrites span names,
status messages, attribute values (in arrays and key-value lists too), event names and attributes and link
attributes before storage, over OTLP/HTTP (protobuf and JSON) and gRPC alike; JSON texts stay valid JSON.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time

import grpc
import httpx
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

import agenttrace
from agenttrace.local_collector import LocalCollector
from agenttrace_collector.auth import ConfigError
from agenttrace_collector.otlp import load_span
from agenttrace_collector.redaction import Redactor
from tests.test_collector_robustness import make_request

OPENAI_KEY = "sk-proj-Abc123Def456Ghi789Jkl0"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
BEARER = "Bearer eyJhbGciOiJIUzI1NiJ9.payload.signature"
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
EMAIL = "ada.lovelace@example.org"
CUSTOM = "ACME-4242"  # the operator's own pattern: ACME-[0-9]+
SECRETS = (OPENAI_KEY, AWS_KEY, "eyJhbGciOiJIUzI1NiJ9", "MIIEowIBAAKCAQEA", EMAIL, CUSTOM)


def secret_request(name: str = "redaction") -> ExportTraceServiceRequest:
    """One trace whose every kind of string holds a secret."""
    req, _ = make_request(2, service=name)
    span = req.resource_spans[0].scope_spans[0].spans[1]
    span.name = f"chat with key {OPENAI_KEY}"
    span.status.code, span.status.message = 2, f"401 for {BEARER}"
    messages = [{"role": "user", "parts": [{"type": "text", "content": f"my key is {OPENAI_KEY}, mail {EMAIL}"}]}]
    for key, value in (("gen_ai.input.messages", json.dumps(messages)), ("aws", f"id={AWS_KEY}"),
                       ("pem", PRIVATE_KEY), ("ticket", f"see {CUSTOM}")):
        kv = span.attributes.add()
        kv.key, kv.value.string_value = key, value
    listed = span.attributes.add()
    listed.key = "list"
    listed.value.array_value.values.add().string_value = EMAIL
    nested = listed.value.array_value.values.add().kvlist_value.values.add()
    nested.key, nested.value.string_value = "inner", CUSTOM
    event = span.events.add()
    event.name = f"exception for {EMAIL}"
    kv = event.attributes.add()
    kv.key, kv.value.string_value = "exception.message", f"KeyError: {OPENAI_KEY}"
    link = span.links.add()
    link.trace_id, link.span_id = span.trace_id, span.parent_span_id
    kv = link.attributes.add()
    kv.key, kv.value.string_value = "why", AWS_KEY
    return req


def test_the_redactor_rewrites_every_string_of_a_span_and_keeps_json_valid():
    req = secret_request()
    Redactor.configured(builtins=True, patterns=[r"ACME-[0-9]+"]).request(req)
    span = req.resource_spans[0].scope_spans[0].spans[1]
    text = str(span)
    assert not [s for s in SECRETS if s in text]
    assert span.name == "chat with key [REDACTED:api_key]"
    assert span.status.message == "401 for [REDACTED:bearer_token]"
    attrs = {kv.key: kv.value for kv in span.attributes}
    assert json.loads(attrs["gen_ai.input.messages"].string_value)[0]["parts"][0]["content"] == \
        "my key is [REDACTED:api_key], mail [REDACTED:email]"
    assert attrs["pem"].string_value == "[REDACTED:private_key]"
    assert attrs["ticket"].string_value == "see [REDACTED:pattern1]"
    assert attrs["gen_ai.output.messages"].string_value == "x" * 40  # nothing to redact: left as it was


def test_a_collector_without_patterns_has_no_redactor():
    assert Redactor.configured(builtins=False) is None


def test_a_pattern_that_does_not_compile_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not compile"):
        Redactor.configured(builtins=False, patterns=["(unclosed"])
    proc = subprocess.run([sys.executable, "-m", "agenttrace_collector", "--db", str(tmp_path / "x.db"),
                           "--redact", "(unclosed", "--attributor", "none"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "does not compile" in proc.stderr and "Traceback" not in proc.stderr


def test_secrets_sent_over_http_and_grpc_never_reach_the_database(tmp_path):
    patterns = tmp_path / "patterns.txt"
    patterns.write_text("# the operator's own\nACME-[0-9]+\n")
    c = LocalCollector(tmp_path / "redact.db", attributor="none", log_file=tmp_path / "redact.log",
                       extra_args=("--redact-secrets", "--redact-file", str(patterns))).start()
    try:
        resp = httpx.post(f"{c.endpoint}/v1/traces", content=secret_request("http").SerializeToString(),
                          headers={"content-type": "application/x-protobuf"}, timeout=10)
        assert resp.status_code == 200
        with grpc.insecure_channel(f"127.0.0.1:{c.grpc_port}") as channel:
            trace_service_pb2_grpc.TraceServiceStub(channel).Export(secret_request("grpc"), timeout=10)
        deadline = time.monotonic() + 10
        while len(c.get("/api/v1/runs").json()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        runs = c.get("/api/v1/runs").json()
    finally:
        c.stop()
    assert len(runs) == 2
    with sqlite3.connect(c.db) as conn:
        stored = conn.execute("SELECT name, data FROM spans").fetchall()
        trajectories = [row[0] for row in conn.execute("SELECT trajectory FROM runs")]
    everything = " ".join(f"{name} {load_span(data)}" for name, data in stored) + " ".join(trajectories)
    assert not [s for s in SECRETS if s in everything]
    assert sum(name == "chat with key [REDACTED:api_key]" for name, _ in stored) == 2
    assert everything.count("[REDACTED:pattern1]") >= 4  # the file's pattern, in both exports


def test_the_sdk_hook_covers_span_names_status_messages_and_exception_messages():
    exporter = InMemorySpanExporter()
    agenttrace.instrument(frameworks=[], exporter=exporter, redact=lambda t: t.replace(OPENAI_KEY, "[key]"))
    try:
        with trace.get_tracer("tests").start_as_current_span(f"call with {OPENAI_KEY}") as span:
            span.record_exception(ValueError(f"bad key {OPENAI_KEY}"))
            span.set_status(Status(StatusCode.ERROR, f"rejected {OPENAI_KEY}"))
        agenttrace.setup.active().force_flush()
    finally:
        agenttrace.uninstrument()
    (span,) = exporter.get_finished_spans()
    assert span.name == "call with [key]"
    assert span.status.status_code is StatusCode.ERROR and span.status.description == "rejected [key]"
    assert span.events[0].attributes["exception.message"] == "bad key [key]"
    assert OPENAI_KEY not in span.events[0].attributes["exception.stacktrace"]
