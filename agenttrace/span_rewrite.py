"""Spans changed on their way out (redacted, given another service name): a span rebuilt with some of its
fields replaced, and an exporter that sends each span as a function makes it. A rebuilt span loses the SDK's
counts of dropped attributes, events and links."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


def rebuilt(span: ReadableSpan, **changes: Any) -> ReadableSpan:
    """``span`` with the fields named in ``changes`` (name, resource, attributes, events, status, ...) replaced."""
    fields = dict(name=span.name, context=span.context, parent=span.parent, resource=span.resource,
                  attributes=span.attributes, events=span.events, links=span.links, kind=span.kind,
                  status=span.status, start_time=span.start_time, end_time=span.end_time,
                  instrumentation_scope=span.instrumentation_scope)
    return ReadableSpan(**(fields | changes))


class RewritingExporter(SpanExporter):
    """Exports each span as ``rewrite`` makes it, through ``inner``."""

    def __init__(self, inner: SpanExporter, rewrite: Callable[[ReadableSpan], ReadableSpan]) -> None:
        self.inner = inner
        self.rewrite = rewrite

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([self.rewrite(s) for s in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)
