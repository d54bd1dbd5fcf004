"""Sending OTLP exports on to other back ends: ``--forward URL`` (spans) and ``--export-verdicts URL`` (verdicts).

``Forwarder.submit(request, spans)`` never waits: it puts the export in each target's bounded queue and
returns. One thread per target sends from its queue (OTLP/HTTP protobuf to ``http(s)://``, OTLP/gRPC to
``grpc://`` or ``grpcs://``), retrying what the target may accept later (connection errors, HTTP 429/502/503/504,
gRPC UNAVAILABLE / RESOURCE_EXHAUSTED / DEADLINE_EXCEEDED) with exponential backoff. What cannot be
delivered is counted per target and reason in ``agenttrace_forward_dropped_spans`` and logged: ``queue_full``
(the target is slower than ingest, or down long enough to fill its queue), ``unreachable`` (retries
exhausted) or ``rejected`` (the target refused the export). A slow or dead target never slows ingest or
another target.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import grpc
import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from agenttrace.logs import get_logger
from agenttrace_collector import otlp
from agenttrace_collector.auth import ConfigError
from agenttrace_collector.metrics import Metrics

log = get_logger("agenttrace.collector.forward")

RETRYABLE_HTTP = {429, 502, 503, 504}
RETRYABLE_GRPC = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED}
SEND_TIMEOUT_S = 10.0


class Undelivered(Exception):
    """An export the target did not take; ``retry`` says whether it may take it later."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def parse_headers(pairs: list[str]) -> dict[str, str]:
    """``["Authorization=Bearer x", ...]`` -> headers; a pair without ``=`` is a configuration error."""
    headers = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"header {pair!r} is not NAME=VALUE")
        headers[name.strip()] = value.strip()
    return headers


@dataclass
class Target:
    """Where exports go: an OTLP/HTTP URL (``/v1/traces`` added to a bare base URL) or a gRPC address."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https", "grpc", "grpcs") or not parts.netloc:
            raise ConfigError(f"cannot forward to {self.url!r}: use http(s)://host:port[/v1/traces] "
                              "(OTLP/HTTP) or grpc(s)://host:port (OTLP/gRPC)")
        if parts.scheme.startswith("http") and parts.path in ("", "/"):
            self.url = f"{self.url.rstrip('/')}/v1/traces"

    @property
    def label(self) -> str:
        """The URL without credentials, for metrics and logs."""
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


class _HttpSender:
    def __init__(self, target: Target) -> None:
        self.url = target.url
        self.client = httpx.Client(timeout=SEND_TIMEOUT_S, headers={**target.headers, "content-type": otlp.PROTOBUF})

    def send(self, request: ExportTraceServiceRequest) -> None:
        try:
            resp = self.client.post(self.url, content=request.SerializeToString())
        except httpx.HTTPError as exc:
            raise Undelivered(f"{type(exc).__name__}: {exc}", retry=True) from None
        if resp.status_code >= 300:
            raise Undelivered(f"HTTP {resp.status_code}", retry=resp.status_code in RETRYABLE_HTTP)

    def close(self) -> None:
        self.client.close()


class _GrpcSender:
    def __init__(self, target: Target) -> None:
        parts = urlsplit(target.url)
        address = f"{parts.hostname}:{parts.port or 4317}"
        self.channel = (grpc.secure_channel(address, grpc.ssl_channel_credentials()) if parts.scheme == "grpcs"
                        else grpc.insecure_channel(address))
        self.stub = TraceServiceStub(self.channel)
        self.metadata = tuple((k.lower(), v) for k, v in target.headers.items())

    def send(self, request: ExportTraceServiceRequest) -> None:
        try:
            self.stub.Export(request, metadata=self.metadata, timeout=SEND_TIMEOUT_S)
        except grpc.RpcError as exc:
            raise Undelivered(f"gRPC {exc.code().name}: {exc.details()}", retry=exc.code() in RETRYABLE_GRPC) from None

    def close(self) -> None:
        self.channel.close()


class _TargetQueue:
    """One target's bounded queue and the thread that sends from it."""

    def __init__(self, target: Target, stream: str, metrics: Metrics, max_queue: int, max_attempts: int,
                 backoff_s: float) -> None:
        self.target = target
        self.stream = stream
        self.metrics = metrics
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.queue: queue.Queue[tuple[ExportTraceServiceRequest, int] | None] = queue.Queue(max_queue)
        self.sender = _GrpcSender(target) if target.url.startswith("grpc") else _HttpSender(target)
        self.dropping: set[str] = set()  # reasons of the drops since the last delivery
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"agenttrace-forward-{stream}", daemon=True)

    def put(self, request: ExportTraceServiceRequest, spans: int) -> None:
        try:
            self.queue.put_nowait((request, spans))
        except queue.Full:
            self._dropped(spans, "queue_full", f"queue of {self.queue.maxsize} exports is full")

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            request, spans = item
            try:
                self._deliver(request)
            except Undelivered as exc:
                self._dropped(spans, "unreachable" if exc.retry else "rejected", str(exc))
                continue
            self.metrics.forwarded_spans.labels(self.stream, self.target.label).inc(spans)
            if self.dropping:
                self.dropping.clear()
                log.info("forward.recovered", stream=self.stream, target=self.target.label)

    def _deliver(self, request: ExportTraceServiceRequest) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self.sender.send(request)
            except Undelivered as exc:
                last = not exc.retry or attempt == self.max_attempts
                if last or self._stop.wait(self.backoff_s * 2 ** (attempt - 1)):  # stopping: no more retries
                    raise

    def _dropped(self, spans: int, reason: str, why: str) -> None:
        self.metrics.forward_dropped_spans.labels(self.stream, self.target.label, reason).inc(spans)
        # every drop is counted; the log warns when drops of a kind start, and has each drop past it at debug level
        (log.debug if reason in self.dropping else log.warning)(
            "forward.dropped", stream=self.stream, target=self.target.label, reason=reason, spans=spans, error=why)
        self.dropping.add(reason)

    def close(self, timeout: float) -> None:
        """Sends what is queued for at most ``timeout`` seconds (no more retries), then stops."""
        self.max_attempts = 1
        self._stop.set()
        try:
            self.queue.put(None, timeout=timeout)
        except queue.Full:
            pass
        self.thread.join(timeout)
        self.sender.close()


class Forwarder:
    """Exports to several targets, each with its own queue: ``Forwarder(targets, "spans", metrics).start()``."""

    def __init__(self, targets: list[Target], stream: str, metrics: Metrics, *, max_queue: int = 1000,
                 max_attempts: int = 5, backoff_s: float = 0.5) -> None:
        self.queues = [_TargetQueue(t, stream, metrics, max_queue, max_attempts, backoff_s) for t in targets]

    @classmethod
    def configured(cls, urls: list[str], header_pairs: list[str], stream: str, metrics: Metrics,
                   **options) -> Forwarder | None:
        """A forwarder to ``urls`` with the ``NAME=VALUE`` headers, or None without URLs."""
        if not urls:
            return None
        headers = parse_headers(header_pairs)
        return cls([Target(url, headers) for url in urls], stream, metrics, **options)

    def start(self) -> Forwarder:
        for q in self.queues:
            q.thread.start()
            log.info("forward.on", stream=q.stream, target=q.target.label, queue=q.queue.maxsize)
        return self

    def submit(self, request: ExportTraceServiceRequest, spans: int) -> None:
        """Queues ``request`` (``spans`` spans) for every target; never blocks."""
        for q in self.queues:
            q.put(request, spans)

    def close(self, timeout: float = 5.0) -> None:
        for q in self.queues:
            q.close(timeout)
