"""Decoding OTLP trace exports (protobuf or JSON, optionally gzip) into rows ready to store.

Only what storage and scheduling need is decoded here (ids, name, times,
status, service); each span's attributes stay in its serialised bytes until a
trajectory is assembled.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import zlib
from dataclasses import dataclass

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


class BadRequest(ValueError):
    """The body cannot be decoded; the message says why, for the client."""


@dataclass(slots=True)
class SpanRow:
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    name: str
    service: str
    start_ns: int
    end_ns: int
    status_code: int
    data: bytes

    @property
    def is_root(self) -> bool:
        return not self.parent_span_id


def decompress(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise BadRequest(f"unsupported content-encoding {encoding!r}; use gzip or none")
    try:
        d = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
        out = d.decompress(body, max_bytes + 1)
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise BadRequest(f"body is not valid {encoding}: {exc}") from None
    if len(out) > max_bytes or d.unconsumed_tail:
        raise TooLarge(max_bytes)
    # A cut-off stream decompresses without error as far as it goes; only ``eof`` says it was complete
    # (gzip: its CRC and length trailer checked).
    if not d.eof:
        raise BadRequest(f"body is not valid {encoding}: the stream is truncated")
    if d.unused_data:
        raise BadRequest(f"body is not valid {encoding}: {len(d.unused_data)} bytes after the end of the stream")
    return out


class TooLarge(ValueError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body exceeds {limit} bytes (after decompression)")
        self.limit = limit


def parse_request(body: bytes, content_type: str | None) -> ExportTraceServiceRequest:
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == PROTOBUF:
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise BadRequest(f"body is not a valid OTLP ExportTraceServiceRequest protobuf: {exc}") from None
        return request
    if kind == JSON:
        return _parse_json(body)
    raise UnsupportedMediaType(kind)


class UnsupportedMediaType(ValueError):
    def __init__(self, kind: str) -> None:
        super().__init__(f"content-type {kind or '(none)'!r} is not supported; send {PROTOBUF} or {JSON}")


def _parse_json(body: bytes) -> ExportTraceServiceRequest:
    try:
        doc = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadRequest(f"JSON body is not valid UTF-8: {exc}") from None
    except ValueError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("JSON body is nested too deeply") from None
    if not isinstance(doc, dict):
        raise BadRequest("JSON body must be an object with 'resourceSpans'")
    # OTLP/JSON spells ids in hex where protobuf's JSON mapping expects base64. Values of the wrong
    # shape are left for ParseDict to reject with a message. Field names may be lowerCamelCase (the
    # spec) or the proto's snake_case (ParseDict reads both); the pre-1.0 ``instrumentationLibrarySpans``
    # layout is read as ``scopeSpans``.
    for rs in _dicts(_field(doc, "resourceSpans")):
        legacy = rs.pop("instrumentationLibrarySpans", None) or rs.pop("instrumentation_library_spans", None)
        if legacy is not None and _field(rs, "scopeSpans") is None:
            rs["scopeSpans"] = legacy
            for ss in _dicts(legacy):
                if "instrumentationLibrary" in ss:
                    ss["scope"] = ss.pop("instrumentationLibrary")
        for ss in _dicts(_field(rs, "scopeSpans")):
            for span in _dicts(ss.get("spans")):
                _hex_ids_to_base64(span)
                for link in _dicts(span.get("links")):
                    _hex_ids_to_base64(link)
    try:
        return json_format.ParseDict(doc, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError, AttributeError, OverflowError, RecursionError) as exc:
        raise BadRequest(f"JSON body is not a valid OTLP trace export: {exc}") from None


def _field(obj: dict, camel: str):
    """A field under its OTLP/JSON (lowerCamelCase) or proto (snake_case) name."""
    if camel in obj:
        return obj[camel]
    return obj.get(re.sub(r"[A-Z]", lambda m: "_" + m.group().lower(), camel))


def _dicts(value) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


_ID_HEX_DIGITS = {"traceId": 32, "spanId": 16, "parentSpanId": 16, "trace_id": 32, "span_id": 16, "parent_span_id": 16}


def _hex_ids_to_base64(obj: dict) -> None:
    for key, digits in _ID_HEX_DIGITS.items():
        value = obj.get(key)
        if isinstance(value, str) and value:
            try:
                if len(value) != digits:
                    raise ValueError
                obj[key] = base64.b64encode(bytes.fromhex(value)).decode()
            except ValueError:
                raise BadRequest(f"{key} {value!r} is not {digits} hex digits") from None


MAX_NANOS = 2**63 - 1  # the stores' signed 64-bit integers; later times are clamped (year 2262)
_NO_TRACE, _NO_SPAN = bytes(16), bytes(8)
_SPAN_KINDS = frozenset(Span.SpanKind.values())
_STATUS_CODES = frozenset(Status.StatusCode.values())


def rows(request: ExportTraceServiceRequest) -> list[SpanRow]:
    """One row per span; spans with malformed ids are rejected with the whole request.

    All-zero ids are invalid (OTLP spec) and rejected; times beyond what the store holds are clamped. A ``kind``
    or ``status.code`` outside its OTLP enum (protobuf enums are open: any int32 decodes) says nothing a receiver
    can interpret, so it is clamped to the spec's "not specified" value, SPAN_KIND_UNSPECIFIED / STATUS_CODE_UNSET,
    rather than failing the request's other spans.
    """
    out: list[SpanRow] = []
    append = out.append
    for rs in request.resource_spans:
        service = ""
        for kv in rs.resource.attributes:
            if kv.key == "service.name":
                service = kv.value.string_value
                break
        for ss in rs.scope_spans:
            for span in ss.spans:
                tid, sid = span.trace_id, span.span_id
                if len(tid) != 16 or len(sid) != 8:
                    raise BadRequest(f"span {span.name[:100]!r} has an invalid trace_id/span_id length "
                                     "(16 and 8 bytes; in OTLP/JSON 32 and 16 hex digits)")
                if tid == _NO_TRACE or sid == _NO_SPAN:
                    raise BadRequest(f"span {span.name[:100]!r} has an all-zero trace_id or span_id, which OTLP "
                                     "defines as invalid")
                if span.parent_span_id and len(span.parent_span_id) != 8:
                    raise BadRequest(f"span {span.name[:100]!r} has an invalid parent_span_id length")
                if span.kind not in _SPAN_KINDS:
                    span.kind = Span.SPAN_KIND_UNSPECIFIED
                if span.status.code not in _STATUS_CODES:
                    span.status.code = Status.STATUS_CODE_UNSET
                append(SpanRow(tid, sid, span.parent_span_id, span.name, service,
                               min(span.start_time_unix_nano, MAX_NANOS), min(span.end_time_unix_nano, MAX_NANOS),
                               span.status.code, span.SerializeToString()))
    return out


def load_span(data: bytes) -> Span:
    span = Span()
    span.ParseFromString(data)
    return span
