"""Collector settings, with the defaults of the embedded set-up (SQLite, loopback, CPU attributor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr

DEFAULT_DB = Path.home() / ".agenttrace" / "agenttrace.db"


class CollectorConfig(BaseModel):
    db: str = str(DEFAULT_DB)
    host: str = "127.0.0.1"
    http_port: int = 4318
    grpc_port: int | None = 4317
    attributor: str | None = "cpu"
    attributor_options: dict[str, Any] = Field(default_factory=dict)
    attribution_workers: int = 1  # threads attributing queued jobs; 0 leaves them to `agenttrace worker` processes
    batch_size: int = 8  # runs per attribute_batch call
    batch_wait_s: float = 0.05  # how long a worker gathers jobs into a batch
    attribution_timeout_s: float = 240.0
    attribution_attempts: int = 3
    attribution_concurrency: int | None = None  # attributor calls at once (default: one per worker)
    settle_s: float = 0.2
    idle_timeout_s: float = 30.0
    max_body_bytes: int = 32 * 1024 * 1024
    max_pending_spans: int = 200_000
    max_pending_bytes: int = 256 * 1024 * 1024  # bytes held for requests being read, decoded or queued
    max_connections: int = 1000  # HTTP connections (and requests in progress); more get 503
    read_timeout_s: float = 30.0  # time a client has to send one whole HTTP request (headers and body)
    reassemble_interval_s: float = 5.0  # a trace of 1,000+ spans still growing is assembled at most this often
    max_trace_spans: int = 100_000  # a trace with more spans is quarantined, not assembled
    retention_s: float | None = None  # data older than this is deleted in the background
    redact_builtins: bool = False  # redact API keys, AWS keys, bearer tokens, private keys, emails
    redact_patterns: list[str] = Field(default_factory=list)  # the operator's regular expressions
    redact_file: str | None = None  # a file of regular expressions, one per line
    forward: list[str] = Field(default_factory=list)  # OTLP targets every stored export is passed on to
    forward_headers: list[str] = Field(default_factory=list)  # NAME=VALUE headers sent to the forward targets
    forward_queue: int = 1000  # exports queued per forward target before new ones are dropped (and counted)
    export_verdicts: list[str] = Field(default_factory=list)  # OTLP targets of verdict spans (agenttrace.attribution)
    export_verdicts_headers: list[str] = Field(default_factory=list)
    token_file: str | None = None  # TOML [[tokens]] entries, see agenttrace_collector.auth
    admin_token: SecretStr | None = None
    insecure: bool = False  # serve without tokens on a non-loopback address
    allowed_hosts: list[str] = Field(default_factory=list)  # Host names besides loopback and the bound address
    tls_cert: str | None = None  # PEM files: HTTPS and gRPC over TLS when both are given
    tls_key: str | None = None
