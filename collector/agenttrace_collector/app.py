"""Putting the collector together: store -> ingest writer -> pipeline, behind the HTTP and gRPC receivers."""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST

from agenttrace.attribution import get_attributor
from agenttrace.logs import get_logger
from agenttrace.models import Attribution, Outcome, Trajectory
from agenttrace_collector.api import api_router
from agenttrace_collector.auth import ConfigError, Forbidden, HostAllowList, HttpGuard, Tokens, check_exposure, \
    forbidden_reply, request_principal
from agenttrace_collector.config import CollectorConfig
from agenttrace_collector.connections import protocol
from agenttrace_collector.forward import Forwarder
from agenttrace_collector.ingest import IngestWriter
from agenttrace_collector.metrics import Metrics
from agenttrace_collector.pipeline import Pipeline
from agenttrace_collector.receiver import grpc_server, http_router
from agenttrace_collector.redaction import Redactor
from agenttrace_collector.retention import Retention
from agenttrace_collector.store import SqlStore, open_store
from agenttrace_collector.verdict_export import VerdictExporter
from agenttrace_collector.workers import AttributionWorkers

log = get_logger("agenttrace.collector")
UI_DIR = Path(__file__).parent / "ui"


class Collector:
    def __init__(self, config: CollectorConfig) -> None:
        self.config = config
        self.tokens = Tokens.configured(config.token_file,
                                        config.admin_token.get_secret_value() if config.admin_token else None)
        check_exposure(config.host, self.tokens, config.insecure)
        self.tls = _tls_files(config)
        self.store = open_store(config.db)
        self.metrics = Metrics()
        self.forwarder = Forwarder.configured(config.forward, config.forward_headers, "spans", self.metrics,
                                              max_queue=config.forward_queue)
        self.forward = self.forwarder.submit if self.forwarder else None
        self.verdicts = VerdictExporter.configured(self.store, config, self.metrics)
        self.workers = attribution_workers(self.store, config, self.metrics, self.verdicts)
        self.redactor = Redactor.configured(builtins=config.redact_builtins, patterns=config.redact_patterns,
                                            pattern_file=config.redact_file)
        self.pipeline = Pipeline(self.store, settle_s=config.settle_s, idle_timeout_s=config.idle_timeout_s,
                                 reassemble_s=config.reassemble_interval_s, max_trace_spans=config.max_trace_spans,
                                 on_run=self._run_saved)
        self.writer = IngestWriter(self.store, max_pending_spans=config.max_pending_spans,
                                   max_pending_bytes=config.max_pending_bytes, on_commit=self.pipeline.wake,
                                   metrics=self.metrics)
        self.retention = Retention(self.store, config.retention_s) if config.retention_s else None
        self.metrics.watch(self._state)
        # No /docs or /redoc: FastAPI's load Swagger UI / ReDoc from a CDN. The schema is at /openapi.json.
        self.app = FastAPI(title="agenttrace collector", version="0.1.0", docs_url=None, redoc_url=None,
                           description="OTLP trace receiver, run trajectories and failure attributions.")
        self.app.add_middleware(HttpGuard, tokens=self.tokens,
                                hosts=HostAllowList(config.host, config.allowed_hosts))
        self.app.add_exception_handler(Forbidden, forbidden_reply)
        self.app.include_router(http_router(self.writer, config.max_body_bytes, self.redactor,
                                            forward=self.forward))
        self.app.include_router(api_router(self.store, self.writer, self.pipeline, config.attributor))
        self.app.add_api_route("/metrics", self._metrics, include_in_schema=False)
        self.app.mount("/ui", StaticFiles(directory=UI_DIR, html=True), name="ui")
        self.app.add_api_route("/", lambda: RedirectResponse("/ui/"), include_in_schema=False)
        self.grpc = None

    def _run_saved(self, trajectory: Trajectory) -> None:
        self.metrics.runs_assembled.labels(trajectory.outcome.value).inc()
        if trajectory.outcome is Outcome.FAILURE and self.workers is not None:
            self.workers.wake()

    def _state(self) -> dict:
        backlog, lag = self.pipeline.backlog()
        return {"agenttrace_ingest_queue_spans": self.writer.pending_spans,
                "agenttrace_ingest_held_bytes": self.writer.bytes.held,
                "agenttrace_assembly_backlog_traces": backlog,
                "agenttrace_assembly_lag_seconds": lag or 0.0,
                "agenttrace_traces_quarantined": self.store.count_quarantined(),
                "agenttrace_attribution_jobs": self.store.job_counts()}

    def _metrics(self, request: Request) -> Response:
        """Collector-wide figures: for tokens that read every service (admin, or read-only of all)."""
        if request_principal(request).service is not None:
            raise Forbidden("/metrics covers every service; it needs an admin or an all-services read token")
        return Response(self.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def serve(self) -> None:
        cfg = self.config
        self.pipeline.start()
        for sender in filter(None, (self.forwarder, self.verdicts)):
            sender.start()
        if self.workers is not None:
            self.workers.start()
        if self.retention is not None:
            self.retention.start()
        if cfg.grpc_port is not None:
            self.grpc, port = grpc_server(self.writer, cfg.host, cfg.grpc_port, cfg.max_body_bytes, self.tokens,
                                          self.tls, self.redactor, forward=self.forward)
            self.grpc.start()
            log.info("collector.grpc", address=f"{cfg.host}:{port}")
        cert, key = self.tls or (None, None)
        server = uvicorn.Server(uvicorn.Config(self.app, host=cfg.host, port=cfg.http_port, log_level="warning",
                                               access_log=False, lifespan="off", ssl_certfile=cert, ssl_keyfile=key,
                                               http=protocol(cfg.read_timeout_s),
                                               limit_concurrency=cfg.max_connections))
        base = f"{'https' if self.tls else 'http'}://{cfg.host}:{cfg.http_port}"
        log.info("collector.http", address=base, db=_masked(cfg.db), attributor=cfg.attributor, ui=f"{base}/ui/",
                 tokens=len(self.tokens.entries) if self.tokens.enabled else "none: open to anyone who can connect")
        try:
            await server.serve()
        finally:
            self.close()

    def close(self) -> None:
        if self.grpc is not None:
            self.grpc.stop(grace=2).wait()
        self.writer.close()
        if self.retention is not None:
            self.retention.stop()
        self.pipeline.stop()
        if self.workers is not None:
            self.workers.stop()
        for sender in filter(None, (self.forwarder, self.verdicts)):
            sender.close()
        self.store.close()
        log.info("collector.stopped")


def attribution_workers(store: SqlStore, config: CollectorConfig, metrics: Metrics,
                        verdicts: VerdictExporter | None) -> AttributionWorkers | None:
    """The workers that attribute queued failed runs, as configured; None without attributor or workers.
    Each verdict they store goes to ``verdicts`` too, when given (``--export-verdicts``)."""
    if not config.attributor or not config.attribution_workers:
        return None
    attributor = get_attributor(config.attributor, **config.attributor_options)

    def stored(verdict: Attribution, trajectory: Trajectory, seconds: float) -> None:
        metrics.attributor_seconds.labels(verdict.attributor).observe(seconds)
        if trajectory.end_time is not None:
            metrics.verdict_latency.observe(max(0.0, time.time() - trajectory.end_time))
        if verdicts is not None:
            verdicts.export(verdict, trajectory)

    return AttributionWorkers(store, attributor, workers=config.attribution_workers, batch_size=config.batch_size,
                              batch_wait_s=config.batch_wait_s, timeout_s=config.attribution_timeout_s,
                              lease_s=1.5 * config.attribution_timeout_s + 5,
                              max_attempts=config.attribution_attempts, concurrency=config.attribution_concurrency,
                              on_verdict=stored)


def run(config: CollectorConfig) -> None:
    """Serves until SIGINT/SIGTERM; queued spans are committed before exit."""
    collector = Collector(config)
    asyncio.run(collector.serve())


def _tls_files(config: CollectorConfig) -> tuple[str, str] | None:
    """(certificate, key) PEM paths when TLS is on; both or neither must be given."""
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ConfigError("TLS needs both --tls-cert and --tls-key")
    if config.tls_cert is None:
        return None
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the TLS certificate {config.tls_cert} with key {config.tls_key}: {exc}") from None
    return config.tls_cert, config.tls_key


def _masked(db: str) -> str:
    """The database location for logs: a URL's password replaced by ***."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", db)
