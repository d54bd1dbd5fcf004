"""Verdicts back into OpenTelemetry: ``--export-verdicts URL`` sends each stored verdict as a span of the run's trace.

The span ``agenttrace.attribution`` is a child of the run's root span (so it shows in the same trace in
Phoenix, Jaeger, Langfuse or Datadog) and links to the blamed step's span. Its attributes carry the
verdict: ``agenttrace.attribution.agent``, ``.step``, ``.reason``, ``.advice`` (when it has one),
``.confidence``, ``.attributor``, ``.uncertain`` and ``.blamed_span_id`` (the link as an attribute too, for
back ends that drop links); it
runs from the run's end to the verdict, so its duration is the attribution latency. Delivery is the
forwarder's: a bounded queue per target, retries, drops counted and logged.
"""

from __future__ import annotations

import os

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from agenttrace import semconv
from agenttrace.logs import get_logger
from agenttrace.models import Attribution, Trajectory
from agenttrace_collector.assemble import find_run_span
from agenttrace_collector.config import CollectorConfig
from agenttrace_collector.forward import Forwarder
from agenttrace_collector.metrics import Metrics
from agenttrace_collector.spanview import decode
from agenttrace_collector.store import SqlStore

log = get_logger("agenttrace.collector.verdict_export")
SPAN_NAME = "agenttrace.attribution"
ATTR = "agenttrace.attribution"
# Phoenix files a span by its OpenInference kind; a verdict is an evaluation of the run
OPENINFERENCE_SPAN_KIND = "openinference.span.kind"


def _value(value: str | int | float | bool) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=value)


def _attributes(values: dict[str, str | int | float | bool | None]) -> list[KeyValue]:
    return [KeyValue(key=k, value=_value(v)) for k, v in values.items() if v is not None]


def verdict_span(verdict: Attribution, trajectory: Trajectory, root_span_id: bytes) -> ExportTraceServiceRequest:
    """The OTLP export of one verdict: a span in the run's trace under its root, linked to the blamed step."""
    trace_id = bytes.fromhex(trajectory.trace_id)
    blamed = next((s for s in trajectory.steps if s.index == verdict.step), None)
    blamed_span = bytes.fromhex(blamed.span_id) if blamed is not None and blamed.span_id else None
    end_ns = int(verdict.created_at * 1e9)
    run_end_ns = int(trajectory.end_time * 1e9) if trajectory.end_time else end_ns
    span = Span(
        trace_id=trace_id, span_id=os.urandom(8), parent_span_id=root_span_id, name=SPAN_NAME,
        kind=Span.SPAN_KIND_INTERNAL, start_time_unix_nano=min(run_end_ns, end_ns), end_time_unix_nano=end_ns,
        attributes=_attributes({
            semconv.RUN_ID: verdict.run_id, f"{ATTR}.agent": verdict.agent, f"{ATTR}.step": verdict.step,
            f"{ATTR}.reason": verdict.reason, f"{ATTR}.advice": verdict.advice or None,
            f"{ATTR}.confidence": verdict.confidence,
            f"{ATTR}.attributor": verdict.attributor, f"{ATTR}.uncertain": verdict.uncertain,
            f"{ATTR}.blamed_span_id": blamed_span.hex() if blamed_span else None,
            OPENINFERENCE_SPAN_KIND: "EVALUATOR",
        }),
        links=[Span.Link(trace_id=trace_id, span_id=blamed_span,
                         attributes=_attributes({f"{ATTR}.link": "blamed_step"}))] if blamed_span else [],
    )
    resource = Resource(attributes=_attributes({"service.name": trajectory.service or "agenttrace"}))
    scope = InstrumentationScope(name="agenttrace.collector")
    return ExportTraceServiceRequest(resource_spans=[
        ResourceSpans(resource=resource, scope_spans=[ScopeSpans(scope=scope, spans=[span])])])


class VerdictExporter:
    """The workers' ``on_verdict`` hook: each stored verdict goes to the targets as a span of its run's trace."""

    def __init__(self, store: SqlStore, forwarder: Forwarder) -> None:
        self.store = store
        self.forwarder = forwarder

    @classmethod
    def configured(cls, store: SqlStore, config: CollectorConfig, metrics: Metrics) -> VerdictExporter | None:
        """The exporter to ``--export-verdicts`` targets, or None without any."""
        forwarder = Forwarder.configured(config.export_verdicts, config.export_verdicts_headers, "verdicts", metrics)
        return cls(store, forwarder) if forwarder else None

    def start(self) -> None:
        self.forwarder.start()

    def close(self) -> None:
        """Sends what is queued (briefly), then stops: after the workers, so that their last verdicts go too."""
        self.forwarder.close()

    def export(self, verdict: Attribution, trajectory: Trajectory) -> None:
        root = self._root_span_id(trajectory)
        if root is None:
            log.warning("verdict_export.no_trace", run_id=verdict.run_id)
            return
        self.forwarder.submit(verdict_span(verdict, trajectory, root), 1)

    def _root_span_id(self, trajectory: Trajectory) -> bytes | None:
        if not trajectory.trace_id:
            return None
        spans = [decode(data, service) for data, service in self.store.trace_spans(bytes.fromhex(trajectory.trace_id))]
        run_span = find_run_span(spans)
        return bytes.fromhex(run_span.span_id) if run_span is not None else None
