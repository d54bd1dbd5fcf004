"""Helpers of the OTLP interoperability tests (forwarding, verdict export, the OTel Collector, Phoenix)."""

from __future__ import annotations

import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

import agenttrace


def send_run(endpoint: str, *, answer: str) -> agenttrace.Run:
    """Traces one run to ``endpoint``: the Planner hands "2+2" to the Calculator, which answers ``answer``
    (the expected answer is "4", so "5" fails at step 1)."""
    agenttrace.instrument(endpoint=endpoint, service_name="verdicts", frameworks=[])
    try:
        with agenttrace.run("add", task="2+2", expected="4") as run:
            with agenttrace.agent_step("Planner", input="2+2") as step:
                step.output("Calculator, add them")
                step.transfer("Calculator")
            with agenttrace.agent_step("Calculator", input="2+2") as step:
                step.output(answer)
            run.finish(answer)
        assert agenttrace.flush()
    finally:
        agenttrace.uninstrument()
    return run


def wait_for(condition, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := condition()):
            return value
        time.sleep(0.1)
    raise TimeoutError(f"{what} not met within {timeout}s")


def export(trace: int, spans: int = 5) -> bytes:
    """An OTLP/HTTP protobuf body: one trace of ``spans`` spans under a root."""
    trace_id = trace.to_bytes(16, "big")
    now = time.time_ns()
    items = [Span(trace_id=trace_id, span_id=(trace * 100 + i + 1).to_bytes(8, "big"),
                  parent_span_id=b"" if i == 0 else (trace * 100 + 1).to_bytes(8, "big"),
                  name=f"span {i}", start_time_unix_nano=now, end_time_unix_nano=now + 1000) for i in range(spans)]
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="forwarding"))])
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=resource, scope_spans=[ScopeSpans(spans=items)])]).SerializeToString()


def span(trace: int, span: int, parent: int, name: str, start_ns: int, end_ns: int, **attrs: str) -> Span:
    """One OTLP span of trace ``trace`` (ids as small numbers; ``parent`` 0 for a root) with string attributes."""
    return Span(trace_id=trace.to_bytes(16, "big"), span_id=span.to_bytes(8, "big"),
                parent_span_id=parent.to_bytes(8, "big") if parent else b"", name=name,
                start_time_unix_nano=start_ns, end_time_unix_nano=end_ns,
                attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attrs.items()])


def request(spans: list[Span], service: str = "otlp-helpers") -> bytes:
    """An OTLP/HTTP protobuf body holding ``spans``, in that order, from ``service``."""
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))])
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=resource, scope_spans=[ScopeSpans(spans=spans)])]).SerializeToString()
