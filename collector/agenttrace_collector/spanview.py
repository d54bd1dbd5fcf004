"""A stored span decoded into plain Python: ids in hex, times in seconds, attributes as a dict.

Attribute values arrive in whatever type the sender chose (a JavaScript app sends a run id or an expected
answer as a number). Decoding gives every attribute the one shape the collector reads it in: text, except
the few numeric attributes (token counts, the step index) and the list-valued ones (finish reasons), so no
later stage meets a type it did not expect.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from agenttrace_collector.otlp import load_span

STATUS_ERROR = 2

NUMERIC_KEYS = frozenset({
    "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.request.max_tokens",
    "gen_ai.request.temperature", "gen_ai.request.top_p", "agenttrace.step.index",
    "llm.token_count.prompt", "llm.token_count.completion", "llm.token_count.total",
    "gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens", "llm.usage.total_tokens",
})
LIST_KEYS = frozenset({"gen_ai.response.finish_reasons", "gen_ai.request.stop_sequences"})


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
    start_ns: int = 0  # the exact times, for ordering (``start`` and ``end`` in seconds lose a few hundred ns)
    end_ns: int = 0

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


def shaped(key: str, value: Any) -> Any:
    """An attribute value in the shape the collector reads that attribute in (see the module doc)."""
    if key in LIST_KEYS:
        items = value if isinstance(value, list) else [value]
        return [_as_text(v) for v in items if v is not None]
    if key in NUMERIC_KEYS:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, (int, float)):
            return value if math.isfinite(value) else None
        try:
            return float(value) if "." in str(value) else int(value)
        except (TypeError, ValueError):
            return None
    return _as_text(value)


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _attributes(kvs) -> dict[str, Any]:
    return {kv.key: shaped(kv.key, any_value(kv.value)) for kv in kvs}


def decode(data: bytes, service: str) -> SpanView:
    span = load_span(data)
    attrs = _attributes(span.attributes)
    events = [(e.name, _attributes(e.attributes)) for e in span.events]
    error = None
    if span.status.code == STATUS_ERROR:
        error = span.status.message or _exception_message(events) or "error"
    return SpanView(
        span_id=span.span_id.hex(), parent_id=span.parent_span_id.hex(), trace_id=span.trace_id.hex(),
        name=span.name, start=span.start_time_unix_nano / 1e9, end=span.end_time_unix_nano / 1e9,
        attrs=attrs, service=service, error=error, events=events,
        start_ns=span.start_time_unix_nano, end_ns=span.end_time_unix_nano,
    )


def _exception_message(events: list[tuple[str, dict[str, Any]]]) -> str | None:
    for name, attrs in events:
        if name == "exception":
            kind, msg = attrs.get("exception.type", ""), attrs.get("exception.message", "")
            return f"{kind}: {msg}".strip(": ") or None
    return None


MAX_DEPTH = 128  # span nesting kept by build_tree; deeper chains are flattened (no agent run nests this deep)


def build_tree(spans: list[SpanView]) -> list[SpanView]:
    """Links children to parents (sorted by start); returns the roots.

    ``spans`` come in the order the collector received them (the store keeps it), and spans that start at the
    same time keep that order. Senders with millisecond start times (JavaScript apps: the OpenTelemetry JS SDK
    stamps a start with ``Date.now()``) give turns that start in the same millisecond one start time. The
    receive order is then the order they ran: a batch processor exports spans as they end, and of two siblings
    that ran one after the other the first ended first. End times cannot break the tie: the JS SDK times an
    end as the truncated start plus a duration measured in fractions of a millisecond, so a long first turn can
    end "after" a short second one.

    A span is a root when its parent is absent, is itself, or lies on a cycle of parent links; a span deeper
    than ``MAX_DEPTH`` becomes a sibling of its parent, so walking the tree stays within the recursion limit.
    """
    by_id = {s.span_id: s for s in spans}
    placed: dict[str, tuple[SpanView | None, int]] = {}  # span id -> (parent in the tree, depth)
    for s in spans:
        path, seen, node = [], set(), s
        while node.span_id not in placed:  # climb to a placed ancestor, a root or a cycle (iteratively)
            parent = by_id.get(node.parent_id) if node.parent_id and node.parent_id != node.span_id else None
            if parent is None or node.span_id in seen:
                placed[node.span_id] = (None, 0)
                break
            seen.add(node.span_id)
            path.append(node)
            node = parent
        for child in reversed(path):
            if child.span_id in placed:
                continue
            parent = by_id[child.parent_id]
            grandparent, depth = placed[parent.span_id]
            placed[child.span_id] = (parent, depth + 1) if depth + 1 < MAX_DEPTH else (grandparent, depth)
    roots = []
    for s in spans:
        parent = placed[s.span_id][0]
        (parent.children if parent is not None else roots).append(s)
    for s in spans:
        s.children.sort(key=lambda c: c.start_ns)  # stable: ties keep the receive order
    roots.sort(key=lambda c: c.start_ns)
    return roots
