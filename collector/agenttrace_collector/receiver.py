"""OTLP receivers: HTTP ``POST /v1/traces`` (protobuf or JSON, gzip) and gRPC ``TraceService/Export``.

Both decode, redact (when configured), hand the spans to the ingest writer and
answer only once those spans are committed. Bad input gets a 4xx naming the
problem; a full queue gets back-pressure (HTTP 503 with Retry-After, gRPC
UNAVAILABLE). What a request holds in memory (its body as it streams in, its
decompressed form, its decoded spans) counts against the writer's byte budget
until it is answered, so many large uploads at once get 503s rather than the
memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent import futures
from pathlib import Path

import grpc
from fastapi import APIRouter, Request, Response
from starlette.requests import ClientDisconnect
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from agenttrace.logs import get_logger
from agenttrace_collector import otlp
from agenttrace_collector.auth import Forbidden, Tokens, Unauthenticated, grpc_principal, request_principal
from agenttrace_collector.ingest import Held, IngestWriter, Overloaded, Rejected
from agenttrace_collector.redaction import Redactor

log = get_logger("agenttrace.collector.receiver")
SERVICE = trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].full_name
Forward = Callable[[trace_service_pb2.ExportTraceServiceRequest, int], None]  # (stored export, its span count)


def _error(status: int, message: str, content_type: str, headers: dict[str, str] | None = None) -> Response:
    message = printable(message)
    st = status_pb2.Status(code=3 if status < 500 else 14, message=message)
    if content_type == otlp.PROTOBUF:
        return Response(st.SerializeToString(), status, headers=headers, media_type=otlp.PROTOBUF)
    return Response(json_format.MessageToJson(st), status, headers=headers, media_type=otlp.JSON)


def printable(message: str, limit: int = 1000) -> str:
    """An error message safe to send and log: valid UTF-8 (a sender's lone surrogates escaped), bounded."""
    message = message if len(message) <= limit else message[:limit] + "..."
    return message.encode("utf-8", "backslashreplace").decode("utf-8")


def http_router(writer: IngestWriter, max_body_bytes: int, redactor: Redactor | None = None,
                forward: Forward | None = None) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/traces", tags=["otlp"], summary="OTLP/HTTP trace export (protobuf or JSON)")
    async def export(request: Request) -> Response:
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        # Answer in the client's encoding; a client that sent neither gets JSON if it reads JSON.
        json_client = ctype == otlp.JSON or (ctype != otlp.PROTOBUF and "json" in
                                             f"{ctype} {request.headers.get('accept', '')}".lower())
        reply_type = otlp.JSON if json_client else otlp.PROTOBUF
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body_bytes:
            return _error(413, f"request body exceeds {max_body_bytes} bytes", reply_type)
        try:
            with writer.bytes.request() as held:
                return await _export(request, ctype, reply_type, held)
        except Overloaded as exc:
            return _error(503, str(exc), reply_type, {"Retry-After": str(max(1, round(exc.retry_after_s)))})
        except ClientDisconnect:  # gone before its body was in (or cut off by the read timeout): no one to answer
            return Response(status_code=400)

    async def _export(request: Request, ctype: str, reply_type: str, held: Held) -> Response:
        body = bytearray()
        async for chunk in request.stream():
            held.take(len(chunk))
            body += chunk
            if len(body) > max_body_bytes:
                return _error(413, f"request body exceeds {max_body_bytes} bytes", reply_type)
        try:
            raw = otlp.decompress(body, request.headers.get("content-encoding"), max_body_bytes)
            wire = len(body) if raw is body else len(body) + len(raw)  # the body as sent, and decompressed
            if raw is not body:
                held.take(len(raw))
            held.take(len(raw))  # the message decoded from it, about as large
            parsed = otlp.parse_request(raw, ctype)
            del body, raw  # decoded: the bytes are given back
            held.give_back(wire)
            if redactor is not None:
                redactor.request(parsed)
            rows = otlp.rows(parsed)
            held.take(sum(len(r.data) for r in rows))  # the decoded spans, held until committed
        except otlp.UnsupportedMediaType as exc:
            return _error(415, str(exc), reply_type)
        except otlp.TooLarge as exc:
            return _error(413, str(exc), reply_type)
        except otlp.BadRequest as exc:
            log.info("otlp.rejected", reason=printable(str(exc), 300))
            return _error(400, str(exc), reply_type)
        try:
            request_principal(request).check_ingest(r.service for r in rows)
        except Forbidden as exc:
            return _error(403, str(exc), reply_type)
        try:
            await asyncio.wrap_future(writer.submit(rows))
        except Rejected as exc:
            return _error(400, str(exc), reply_type)
        except Overloaded:
            raise
        except Exception as exc:  # the store is unavailable: the spans were not stored, the client may retry
            return _error(503, f"spans not stored, retry later: {type(exc).__name__}", reply_type, {"Retry-After": "5"})
        if forward is not None:  # stored: pass it on (queued, never waited for)
            forward(parsed, len(rows))
        ok = trace_service_pb2.ExportTraceServiceResponse()
        if reply_type == otlp.PROTOBUF:
            return Response(ok.SerializeToString(), 200, media_type=otlp.PROTOBUF)
        return Response("{}", 200, media_type=otlp.JSON)

    return router


class _TraceService:
    """``TraceService/Export``, registered to take the request's bytes: decoding them here answers bytes that
    are not an OTLP export with INVALID_ARGUMENT, and avoids grpcio's own deserializer, whose failures leak
    ~19 KB each (grpcio 1.85; 4,000 such requests: +77 MB RSS, for good; measured in bench/overload.py).
    """

    def __init__(self, writer: IngestWriter, tokens: Tokens, redactor: Redactor | None,
                 forward: Forward | None = None) -> None:
        self.writer = writer
        self.forward = forward
        self.tokens = tokens
        self.redactor = redactor

    def Export(self, raw: bytes, context):  # noqa: N802 - gRPC's name
        try:
            principal = grpc_principal(self.tokens, context.invocation_metadata())
        except Unauthenticated as exc:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        with self.writer.bytes.request() as held:
            try:
                held.take(len(raw))
            except Overloaded as exc:
                self._unavailable(context, exc)
            try:
                request = otlp.parse_request(raw, otlp.PROTOBUF)
            except otlp.BadRequest as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, printable(str(exc)))
            return self._export(request, context, principal, held)

    def _export(self, request, context, principal, held: Held):
        if self.redactor is not None:
            self.redactor.request(request)
        try:
            rows = otlp.rows(request)
            held.take(sum(len(r.data) for r in rows))  # the decoded spans, held until committed
        except otlp.BadRequest as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, printable(str(exc)))
        except Overloaded as exc:
            self._unavailable(context, exc)
        try:
            principal.check_ingest(r.service for r in rows)
        except Forbidden as exc:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        try:
            self.writer.submit(rows).result()
        except Overloaded as exc:
            self._unavailable(context, exc)
        except Rejected as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, printable(str(exc)))
        except Exception as exc:  # the store is unavailable: not stored, the exporter retries UNAVAILABLE
            context.abort(grpc.StatusCode.UNAVAILABLE, f"spans not stored, retry later: {type(exc).__name__}")
        if self.forward is not None:  # stored: pass it on (queued, never waited for)
            self.forward(request, len(rows))
        return trace_service_pb2.ExportTraceServiceResponse()

    @staticmethod
    def _unavailable(context, exc: Overloaded) -> None:
        context.set_trailing_metadata((("retry-after", str(exc.retry_after_s)),))
        context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))


def grpc_server(writer: IngestWriter, host: str, port: int, max_body_bytes: int, tokens: Tokens,
                tls: tuple[str, str] | None = None, redactor: Redactor | None = None,
                forward: Forward | None = None) -> tuple[grpc.Server, int]:
    """The gRPC receiver, over TLS when ``tls`` names a (certificate, key) pair of PEM files."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="agenttrace-grpc"),
        options=[("grpc.max_receive_message_length", max_body_bytes)],
    )
    export = grpc.unary_unary_rpc_method_handler(  # no request_deserializer: Export gets the bytes
        _TraceService(writer, tokens, redactor, forward).Export,
        response_serializer=trace_service_pb2.ExportTraceServiceResponse.SerializeToString)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": export}),))
    if tls is None:
        bound = server.add_insecure_port(f"{host}:{port}")
    else:
        cert, key = (Path(f).read_bytes() for f in tls)
        bound = server.add_secure_port(f"{host}:{port}", grpc.ssl_server_credentials([(key, cert)]))
    if bound == 0:
        raise OSError(f"cannot bind gRPC receiver to {host}:{port}")
    return server, bound
