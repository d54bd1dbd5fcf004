"""PostgreSQL storage: the same tables and queries as the SQLite store, for a collector at scale.

Selected by a ``postgresql://`` (or ``postgres://``) ``--db`` URL (see
``store.open_store``). One writer connection, used under ``write_lock`` by the
ingest writer thread and the pipeline, like SQLite's; reads borrow a connection
from a small pool of idle ones. Every connection is in autocommit mode, so a
write has committed (``synchronous_commit`` as the server has it, ``on`` by
default) before the method returns, and a request is acknowledged only after
that. Spans go in by binary ``COPY`` into a temporary staging table, then one
``INSERT ... SELECT ... ON CONFLICT DO NOTHING``: a span sent twice is stored once.

The feedback cursor (``attributions.seq``, a BIGSERIAL) relies on verdicts being
committed in ``seq`` order, which one collector per database guarantees (its
pipeline thread is the only writer of verdicts).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Sequence
from typing import Any

import psycopg

from agenttrace_collector.otlp import SpanRow
from agenttrace_collector.store import SqlStore, trace_marks

SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id BYTEA NOT NULL,
    span_id BYTEA NOT NULL,
    parent_span_id BYTEA NOT NULL,
    name TEXT NOT NULL,
    service TEXT NOT NULL,
    start_ns BIGINT NOT NULL,
    end_ns BIGINT NOT NULL,
    status_code INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (trace_id, span_id)
);
CREATE TABLE IF NOT EXISTS traces (
    trace_id BYTEA PRIMARY KEY,
    service TEXT NOT NULL,
    first_seen DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL,
    root_ended INTEGER NOT NULL DEFAULT 0,
    assembled_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS traces_pending ON traces (assembled_at, last_seen);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    trace_id BYTEA NOT NULL,
    name TEXT,
    service TEXT,
    outcome TEXT NOT NULL,
    termination TEXT NOT NULL,
    n_steps INTEGER NOT NULL,
    start_time DOUBLE PRECISION,
    end_time DOUBLE PRECISION,
    trajectory TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (start_time);
CREATE TABLE IF NOT EXISTS attributions (
    seq BIGSERIAL PRIMARY KEY,
    run_id TEXT NOT NULL,
    service TEXT,
    agent TEXT,
    step INTEGER,
    reason TEXT NOT NULL,
    attributor TEXT NOT NULL,
    confidence DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS attributions_by_run ON attributions (run_id);
CREATE TABLE IF NOT EXISTS lessons (
    id BIGSERIAL PRIMARY KEY,
    agent TEXT NOT NULL,
    text TEXT NOT NULL,
    run_id TEXT,
    step INTEGER,
    created_at DOUBLE PRECISION NOT NULL
)
"""

# Taken while creating the schema, so that collectors starting together on one database don't race.
SCHEMA_LOCK = 0x61677472  # "agtr"

# Rows of the staging table are dropped at each commit of the writer connection.
STAGING = "CREATE TEMP TABLE IF NOT EXISTS spans_in (LIKE spans) ON COMMIT DELETE ROWS"
SPAN_TYPES = ["bytea", "bytea", "bytea", "text", "text", "int8", "int8", "int4", "bytea"]
TRACES_UPSERT = (
    "INSERT INTO traces (trace_id, service, first_seen, last_seen, root_ended) "
    "SELECT t.trace_id, t.service, %(now)s, %(now)s, t.root_ended "
    "FROM unnest(%(ids)s::bytea[], %(services)s::text[], %(roots)s::int4[]) AS t(trace_id, service, root_ended) "
    "ON CONFLICT (trace_id) DO UPDATE SET last_seen = excluded.last_seen, "
    "root_ended = GREATEST(traces.root_ended, excluded.root_ended), assembled_at = NULL"
)
IDLE_READERS = 8


@functools.lru_cache(maxsize=256)
def _pg(sql: str) -> str:
    """The shared queries' ``?`` placeholders as psycopg's ``%s`` (none of them holds a literal ``?`` or ``%``)."""
    return sql.replace("?", "%s")


def _text(value: str) -> str:
    # PostgreSQL text cannot hold NUL, which OTLP strings may; SQLite keeps it, PostgreSQL gets U+FFFD.
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _args(args: Sequence[Any]) -> list[Any]:
    return [_text(a) if isinstance(a, str) else a for a in args]


class PostgresStore(SqlStore):
    def __init__(self, url: str) -> None:
        self.url = url
        self.write_lock = threading.Lock()
        self._idle: list[psycopg.Connection] = []
        self._idle_lock = threading.Lock()
        with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            for statement in SCHEMA.split(";"):
                conn.execute(statement)
        self._writer = self._connect_writer()

    def _connect_writer(self) -> psycopg.Connection:
        conn = psycopg.connect(self.url, autocommit=True)
        conn.execute(STAGING)
        return conn

    def _writer_conn(self) -> psycopg.Connection:
        """The writer connection, opened again if the server dropped it (the failed write was answered with an error)."""
        if self._writer.closed or self._writer.broken:
            self._writer.close()
            self._writer = self._connect_writer()
        return self._writer

    def close(self) -> None:
        with self.write_lock:
            self._writer.close()
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        with self._idle_lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = psycopg.connect(self.url, autocommit=True)
        try:
            return conn.execute(_pg(sql), _args(args)).fetchall()
        finally:
            with self._idle_lock:
                keep = not (conn.closed or conn.broken) and len(self._idle) < IDLE_READERS
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    def _write(self, sql: str, args: Sequence[Any] = (), *, returning: bool = False) -> Any:
        with self.write_lock:  # autocommit: the statement is committed when it has run
            cur = self._writer_conn().execute(_pg(sql), _args(args))
            return cur.fetchone()[0] if returning else cur.rowcount

    def write_spans(self, batch: Sequence[SpanRow]) -> None:
        """Commits spans (a span seen before is kept once) and marks their traces for assembly."""
        marks = trace_marks(batch)
        params = {"now": time.time(), "ids": [tid for tid, _, _ in marks],
                  "services": [_text(service) for _, service, _ in marks], "roots": [root for _, _, root in marks]}
        with self.write_lock:
            conn = self._writer_conn()
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy("COPY spans_in FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(SPAN_TYPES)
                    for r in batch:
                        copy.write_row((r.trace_id, r.span_id, r.parent_span_id, _text(r.name), _text(r.service),
                                        r.start_ns, r.end_ns, r.status_code, r.data))
                cur.execute("INSERT INTO spans SELECT * FROM spans_in ON CONFLICT DO NOTHING")
                cur.execute(TRACES_UPSERT, params)
