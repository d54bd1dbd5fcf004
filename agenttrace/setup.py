"""``agenttrace.instrument()``: tracing on, exporting to the collector, for every known framework installed."""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from agenttrace import integration, propagation
from agenttrace.feedback import close_feedback
from agenttrace.content import ContentPolicy, Redactor, set_policy
from agenttrace.logs import get_logger
from agenttrace.redaction import redacted
from agenttrace.span_rewrite import RewritingExporter, rebuilt
from agenttrace.sampling import FailureKeepingSampler
from agenttrace.processor import ExportOnRunEnd, RunStampingProcessor, SwitchableProcessor

DEFAULT_ENDPOINT = "http://127.0.0.1:4318"
EXIT_FLUSH_TIMEOUT_S = 10.0  # an exiting script waits at most this long for its last spans
log = get_logger("agenttrace.setup")


def resolve_endpoint(endpoint: str | None = None) -> str:
    """The collector's base URL: argument, AGENTTRACE_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT, or the default."""
    for value in (endpoint, os.environ.get("AGENTTRACE_ENDPOINT"), os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")):
        if value:
            return value.rstrip("/")
    return DEFAULT_ENDPOINT


def resolve_token(token: str | None = None) -> str | None:
    """The collector token: argument, AGENTTRACE_TOKEN, or the Bearer token in OTEL_EXPORTER_OTLP_TRACES_HEADERS
    or OTEL_EXPORTER_OTLP_HEADERS (``authorization=Bearer%20<token>``, as OTel exporters read them)."""
    for value in (token, os.environ.get("AGENTTRACE_TOKEN")):
        if value:
            return value.strip()
    scheme, _, found = _otlp_env_headers().get("authorization", "").partition(" ")
    return found.strip() if scheme.lower() == "bearer" and found.strip() else None


def auth_headers(token: str | None = None) -> dict[str, str]:
    """``{"Authorization": "Bearer <token>"}`` for calls to the collector, or nothing when no token is set."""
    found = resolve_token(token)
    return {"Authorization": f"Bearer {found}"} if found else {}


def _otlp_env_headers() -> dict[str, str]:
    """The headers OTel exporters send: OTEL_EXPORTER_OTLP_TRACES_HEADERS, else OTEL_EXPORTER_OTLP_HEADERS."""
    from opentelemetry.util.re import parse_env_headers

    raw = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or os.environ.get("OTEL_EXPORTER_OTLP_HEADERS") or ""
    return {k.lower(): v for k, v in parse_env_headers(raw, liberal=True).items()}


def _exporter_headers(token: str | None) -> dict[str, str] | None:
    """The OTLP exporter's headers when agenttrace has a token of its own (argument or AGENTTRACE_TOKEN): those
    of the environment with that token. None leaves the exporter to read the environment itself."""
    own = token or os.environ.get("AGENTTRACE_TOKEN")
    if not own:
        return None
    return {k: v for k, v in _otlp_env_headers().items() if k != "authorization"} | auth_headers(own)


def _traces_url(base: str) -> str:
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or f"{base}/v1/traces"


@dataclass
class Instrumentation:
    """What ``instrument()`` turned on; ``shutdown()`` flushes and turns it off."""

    endpoint: str
    service_name: str
    tracer_provider: TracerProvider | None
    token: str | None = field(default=None, repr=False)
    integrations: dict[str, integration.Integration] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    _processors: list = field(default_factory=list)

    @property
    def enabled(self) -> bool:
        return self.tracer_provider is not None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return all(p.force_flush(timeout_millis) for p in self._processors)

    def shutdown(self) -> None:
        uninstrument()


_lock = threading.RLock()
_active: Instrumentation | None = None
_own_provider: TracerProvider | None = None  # the global provider agenttrace made, if it made it


def instrument(
    endpoint: str | None = None,
    service_name: str | None = None,
    frameworks: Iterable[str] | None = None,
    capture_content: bool | None = None,
    *,
    redact: Redactor | None = None,
    max_content_chars: int = 32_000,
    exporter: SpanExporter | None = None,
    token: str | None = None,
    sample_rate: float | None = None,
) -> Instrumentation:
    """Turns on agenttrace. Idempotent: a second call returns the first handle.

    ``service_name`` (default: OTEL_SERVICE_NAME, else the script's name) is the service spans carry and
    verdicts are filtered by; an app's own SDK TracerProvider keeps its own. After ``uninstrument()``, a new
    name takes effect: OTel sets the global provider once, so spans are given it at export.

    ``frameworks`` names the integrations to enable (default: every installed one);
    an integration asked for by name that cannot run raises ``DidNotEnable``.
    ``redact(text) -> text`` runs over every string attribute of every exported span, whoever
    wrote it (JSON texts stay valid). ``exporter`` replaces the OTLP exporter (tests, custom back ends).
    ``token`` is the collector's bearer token (default: AGENTTRACE_TOKEN, or the Authorization in
    OTEL_EXPORTER_OTLP_HEADERS), sent with the spans and the feedback long-poll.
    ``sample_rate`` (0 to 1) tail-samples successful runs and keeps every span of each failed or erroring
    run (``agenttrace.sampling.FailureKeepingSampler``); None exports everything.
    """
    global _active
    with _lock:
        if _active is not None:
            return _active
        base = resolve_endpoint(endpoint)
        name = service_name or os.environ.get("OTEL_SERVICE_NAME") or _default_service_name()
        if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            log.info("instrument.disabled", reason="OTEL_SDK_DISABLED=true")
            _active = Instrumentation(base, name, None)
            return _active

        set_policy(ContentPolicy.from_env(capture_content, max_content_chars))
        provider = _provider(name)
        if provider is not _own_provider:
            # An app's own provider keeps its service name; verdicts are filtered by the name spans carry.
            name = str(provider.resource.attributes.get(SERVICE_NAME) or name)
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=_traces_url(base), headers=_exporter_headers(token))
        if redact is not None:
            exporter = RewritingExporter(exporter, lambda span: redacted(span, redact))
        if provider.resource.attributes.get(SERVICE_NAME) != name:
            # The provider agenttrace made global on an earlier instrument() under another name (OTel sets it once):
            # this instrumentation's spans take the name verdicts are filtered by on the way out.
            renamed = provider.resource.merge(Resource({SERVICE_NAME: name}))
            exporter = RewritingExporter(exporter, lambda span: rebuilt(span, resource=renamed))
        stamping = RunStampingProcessor()
        batch = BatchSpanProcessor(exporter)
        export = SwitchableProcessor(batch if sample_rate is None else FailureKeepingSampler(batch, sample_rate))
        on_run_end = SwitchableProcessor(ExportOnRunEnd(export))
        provider.add_span_processor(stamping)
        provider.add_span_processor(export)
        provider.add_span_processor(on_run_end)
        propagation.install()

        active = Instrumentation(base, name, provider, resolve_token(token),
                                 _processors=[stamping, export, on_run_end])
        _enable_integrations(active, frameworks)
        _active = active
        atexit.register(_flush_at_exit)
        log.info("instrument.on", endpoint=base, service=name, integrations=sorted(active.integrations))
        for skipped, why in active.skipped.items():
            log.debug("integration.skipped", integration=skipped, reason=why)
        return active


def flush(timeout: float = 30.0) -> bool:
    """Sends every span ended so far, waiting at most ``timeout`` seconds; True when all were sent.

    A short script calls it before waiting for a verdict; it also runs when the interpreter exits.
    """
    inst = _active
    if inst is None or not inst.enabled:
        return True
    return inst.force_flush(int(timeout * 1000))


def _flush_at_exit() -> None:
    if not flush(timeout=EXIT_FLUSH_TIMEOUT_S):
        log.warning("flush.incomplete", endpoint=_active.endpoint, timeout_s=EXIT_FLUSH_TIMEOUT_S)


def uninstrument() -> None:
    """Flushes pending spans, removes every integration and stops exporting."""
    global _active
    with _lock:
        if _active is None:
            return
        for name, plugin in _active.integrations.items():
            try:
                plugin.uninstall()
            except Exception:  # an integration failing to undo must not block the others
                log.exception("uninstrument.failed", integration=name)
        for proc in _active._processors:
            proc.force_flush()
            proc.shutdown()
        propagation.uninstall()
        close_feedback()
        atexit.unregister(_flush_at_exit)
        _active = None


def active() -> Instrumentation | None:
    return _active


def _default_service_name() -> str:
    argv0 = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return os.path.splitext(argv0)[0] or "agenttrace-app"


def _provider(service_name: str) -> TracerProvider:
    """The global SDK TracerProvider: the app's, or the one agenttrace made global on its first instrument()."""
    global _own_provider
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:  # something else won the one-time set
        raise RuntimeError("a non-SDK TracerProvider is already set globally; agenttrace cannot add to it")
    _own_provider = provider
    return provider


def _enable_integrations(active: Instrumentation, frameworks: Iterable[str] | None) -> None:
    available = integration.discover()
    requested = None if frameworks is None else list(frameworks)
    for name in requested or []:
        if name not in available:
            raise integration.DidNotEnable(
                f"no agenttrace integration named {name!r}; installed: {', '.join(sorted(available)) or 'none'}"
            )
    for name in requested if requested is not None else sorted(available):
        try:
            try:
                cls = integration.load(available[name])
            except ImportError as exc:
                raise integration.DidNotEnable(f"{name}: {exc}") from exc
            cls.check_requirements()
            plugin = cls()
            plugin.install(active.tracer_provider)
        except integration.DidNotEnable as exc:
            if requested is not None:
                raise
            active.skipped[name] = str(exc)
            continue
        active.integrations[name] = plugin
