"""PostgreSQL storage: the same tables and queries as the SQLite store, for a collector at scale.

Selected by a ``postgresql://`` (or ``postgres://``) ``--db`` URL (see
``store.open_store``). One writer connection, used under ``write_lock`` by the
ingest writer thread and the pipeline, like SQLite's; reads borrow a connection
from a small pool of idle ones. Every connection is in autocommit mode, so a
write has committed (``synchronous_commit`` as the server has it, ``on`` by
default) before the method returns, and a request is acknowledged only after
that. Spans go in by binary ``COPY`` into a temporary staging table, then one
``INSERT ... SELECT ... ON CONFLICT DO NOTHING``: a span sent twice is stored once.

Several collectors may share one database:

- The feedback cursor (``attributions.seq``, a BIGSERIAL) needs verdicts to
  become visible in ``seq`` order: otherwise a reader that sees seq 6 moves its
  cursor past a seq 5 still uncommitted elsewhere, and never gets it. So a
  verdict is inserted in a transaction that first takes one advisory lock
  (``pg_advisory_xact_lock(VERDICT_LOCK)``), and ``nextval`` runs under it: the
  next verdict's seq is taken only after the previous one has committed (the lock
  is released after the commit is visible). Verdicts are rare, so serialising them
  costs nothing worth measuring; the alternative, a reader that stops before the
  oldest open transaction's seq (xid8 bookkeeping), is more code for no gain here.
  The insert also skips a run that has a verdict already: one verdict per run.
- Every collector's pipeline polls the same due traces. ``claim_trace`` takes a
  session advisory lock on the trace (``pg_try_advisory_lock(CLAIMS, key)``, on
  a connection of its own) for as long as it is being assembled and attributed;
  another collector skips it, so one attributor call is made per run. A collector
  that dies drops its session and so its claims; the trace is still unassembled
  and another collector takes it. The key is 32 bits of the trace id: two traces
  that share it are processed one after the other, not together. Should a claim's
  connection break mid-way, a second collector may attribute the run as well: its
  verdict is not stored (one per run), its lesson is.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from agenttrace_collector.otlp import SpanRow
from agenttrace_collector.store import UPGRADES, SqlStore, trace_marks

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
    seq BIGSERIAL,
    PRIMARY KEY (trace_id, span_id)
);
CREATE TABLE IF NOT EXISTS traces (
    trace_id BYTEA PRIMARY KEY,
    service TEXT NOT NULL,
    first_seen DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL,
    root_ended INTEGER NOT NULL DEFAULT 0,
    assembled_at DOUBLE PRECISION,
    error TEXT,
    failed_at DOUBLE PRECISION,
    last_assembled DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS traces_pending ON traces (assembled_at, last_seen);
CREATE INDEX IF NOT EXISTS traces_by_age ON traces (last_seen);
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
    updated_at DOUBLE PRECISION NOT NULL,
    task TEXT,
    answer TEXT,
    agents TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cost DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (start_time);
CREATE INDEX IF NOT EXISTS runs_by_trace ON runs (trace_id);
CREATE TABLE IF NOT EXISTS attributions (
    seq BIGSERIAL PRIMARY KEY,
    run_id TEXT NOT NULL,
    service TEXT,
    agent TEXT,
    step INTEGER,
    reason TEXT NOT NULL,
    attributor TEXT NOT NULL,
    confidence DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    candidates TEXT,
    uncertain INTEGER NOT NULL DEFAULT 0,
    opinions TEXT,
    advice TEXT
);
CREATE INDEX IF NOT EXISTS attributions_by_run ON attributions (run_id);
CREATE TABLE IF NOT EXISTS attribution_jobs (
    run_id TEXT PRIMARY KEY,
    service TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until DOUBLE PRECISION,
    not_before DOUBLE PRECISION NOT NULL,
    last_error TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_ready ON attribution_jobs (state, not_before);
CREATE INDEX IF NOT EXISTS traces_quarantined ON traces (failed_at) WHERE error IS NOT NULL;
CREATE TABLE IF NOT EXISTS reviews (
    run_id TEXT PRIMARY KEY,
    service TEXT,
    verdict_seq BIGINT,
    agent TEXT NOT NULL,
    step INTEGER NOT NULL,
    confirmed INTEGER NOT NULL,
    note TEXT,
    reviewer TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
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
# Held by each verdict insert until it commits, so that verdicts commit in seq order (see the module docstring).
VERDICT_LOCK = 0x61677476  # "agtv"
# The first key of a trace's claim; the second is the trace id's first 4 bytes.
CLAIMS = 0x61677463  # "agtc"

# Rows of the staging table are dropped at each commit of the writer connection.
# spans.seq numbers spans in the order they were received (SQLite's rowid does it there), which assembly uses to
# order spans that start at the same time; n keeps a batch's order on its way through the staging table.
SPAN_COLUMNS = "trace_id, span_id, parent_span_id, name, service, start_ns, end_ns, status_code, data"
STAGING = (f"CREATE TEMP TABLE IF NOT EXISTS spans_in ON COMMIT DELETE ROWS AS SELECT {SPAN_COLUMNS}, 0::int8 AS n "
           "FROM spans WITH NO DATA")
SPAN_TYPES = ["bytea", "bytea", "bytea", "text", "text", "int8", "int8", "int4", "bytea", "int8"]
PG_UPGRADES = [("spans", "seq", "BIGSERIAL")]  # a spans table an earlier build made: its rows get numbers too
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
    LEASE_LOCK = " FOR UPDATE SKIP LOCKED"  # workers on several machines never lease the same job
    RECEIVED = "seq"

    def __init__(self, url: str) -> None:
        self.url = url
        self.write_lock = threading.Lock()
        self._idle: list[psycopg.Connection] = []
        self._idle_lock = threading.Lock()
        self._claims: psycopg.Connection | None = None  # opened by the first claim_trace
        self._claims_lock = threading.Lock()
        with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            for table, column, kind in [*UPGRADES, *PG_UPGRADES]:  # a database created by an earlier build
                conn.execute(f"ALTER TABLE IF EXISTS {table} ADD COLUMN IF NOT EXISTS {column} {kind}")
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
        with self._claims_lock:
            if self._claims is not None:
                self._claims.close()
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
            if not returning:
                return cur.rowcount
            row = cur.fetchone()
            return row[0] if row else None

    def _write_returning(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        with self.write_lock:
            return self._writer_conn().execute(_pg(sql), _args(args)).fetchall()

    def _write_all(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        with self.write_lock:
            conn = self._writer_conn()
            with conn.transaction():
                for sql, args in statements:
                    conn.execute(_pg(sql), _args(args))

    def _insert_verdict(self, sql: str, args: Sequence[Any]) -> int | None:
        """The verdict insert, its seq taken under ``VERDICT_LOCK`` and committed before the lock is let go."""
        with self.write_lock:
            conn = self._writer_conn()
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (VERDICT_LOCK,))
                row = conn.execute(_pg(sql), _args(args)).fetchone()
            return row[0] if row else None

    @contextmanager
    def claim_trace(self, trace_id: bytes) -> Iterator[bool]:
        """True when no other collector is processing the trace and it is still unassembled; held until the end."""
        key = (CLAIMS, int.from_bytes(trace_id[:4], "big", signed=True))
        with self._claims_lock:
            if self._claims is None or self._claims.closed or self._claims.broken:
                self._claims = psycopg.connect(self.url, autocommit=True)
            conn = self._claims
            mine = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()[0]
            if mine and not conn.execute("SELECT 1 FROM traces WHERE trace_id = %s AND assembled_at IS NULL",
                                         (trace_id,)).fetchone():
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)  # another collector did it meanwhile
                mine = False
        try:
            yield mine
        finally:
            if mine:
                with self._claims_lock:
                    if not conn.broken:  # a broken connection's session, and its locks, are gone already
                        conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)

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
                    for n, r in enumerate(batch):
                        copy.write_row((r.trace_id, r.span_id, r.parent_span_id, _text(r.name), _text(r.service),
                                        r.start_ns, r.end_ns, r.status_code, r.data, n))
                cur.execute(f"INSERT INTO spans ({SPAN_COLUMNS}) SELECT {SPAN_COLUMNS} FROM spans_in ORDER BY n "
                            "ON CONFLICT DO NOTHING")
                cur.execute(TRACES_UPSERT, params)
