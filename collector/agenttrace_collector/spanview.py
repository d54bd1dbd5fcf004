"""A stored span decoded into plain Python: ids in hex, times in seconds, attributes as a dict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from agenttrace_collector.otlp import load_span

STATUS_ERROR = 2


@dataclass
class SpanView:
    span_id: str
    parent_id: str
    trace_id: str
    name: str
    start: float
    end: float
    attrs: dict[str, Any]
    service: str
    error: str | None = None
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    children: list[SpanView] = field(default_factory=list)

    def get(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


def any_value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind == "int_value":
        return v.int_value
    if kind == "double_value":
        return v.double_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return None


def decode(data: bytes, service: str) -> SpanView:
    span = load_span(data)
    attrs = {kv.key: any_value(kv.value) for kv in span.attributes}
    events = [(e.name, {kv.key: any_value(kv.value) for kv in e.attributes}) for e in span.events]
    error = None
    if span.status.code == STATUS_ERROR:
        error = span.status.message or _exception_message(events) or "error"
    return SpanView(
        span_id=span.span_id.hex(), parent_id=span.parent_span_id.hex(), trace_id=span.trace_id.hex(),
        name=span.name, start=span.start_time_unix_nano / 1e9, end=span.end_time_unix_nano / 1e9,
        attrs=attrs, service=service, error=error, events=events,
    )


def _exception_message(events: list[tuple[str, dict[str, Any]]]) -> str | None:
    for name, attrs in events:
        if name == "exception":
            kind, msg = attrs.get("exception.type", ""), attrs.get("exception.message", "")
            return f"{kind}: {msg}".strip(": ") or None
    return None


def build_tree(spans: list[SpanView]) -> list[SpanView]:
    """Links children to parents (sorted by start); returns the roots (spans whose parent is absent)."""
    by_id = {s.span_id: s for s in spans}
    roots = []
    for s in spans:
        parent = by_id.get(s.parent_id) if s.parent_id else None
        (parent.children if parent is not None else roots).append(s)
    for s in spans:
        s.children.sort(key=lambda c: (c.start, c.end))
    roots.sort(key=lambda c: (c.start, c.end))
    return roots
