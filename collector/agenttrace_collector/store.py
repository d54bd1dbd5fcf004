"""SQLite storage (WAL): spans, traces awaiting assembly, runs with their trajectories, verdicts, lessons.

One writer connection, used only by the ingest writer thread and the pipeline
under ``write_lock``; readers get their own connection per thread, which WAL
lets run beside the writer.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from agenttrace.models import Attribution, Lesson, Trajectory
from agenttrace_collector.otlp import SpanRow

SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id BLOB NOT NULL,
    span_id BLOB NOT NULL,
    parent_span_id BLOB NOT NULL,
    name TEXT NOT NULL,
    service TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    status_code INTEGER NOT NULL,
    data BLOB NOT NULL,
    UNIQUE (trace_id, span_id)
);
CREATE TABLE IF NOT EXISTS traces (
    trace_id BLOB PRIMARY KEY,
    service TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    root_ended INTEGER NOT NULL DEFAULT 0,
    assembled_at REAL
);
CREATE INDEX IF NOT EXISTS traces_pending ON traces (assembled_at, last_seen);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    trace_id BLOB NOT NULL,
    name TEXT,
    service TEXT,
    outcome TEXT NOT NULL,
    termination TEXT NOT NULL,
    n_steps INTEGER NOT NULL,
    start_time REAL,
    end_time REAL,
    trajectory TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (start_time);
CREATE TABLE IF NOT EXISTS attributions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    service TEXT,
    agent TEXT,
    step INTEGER,
    reason TEXT NOT NULL,
    attributor TEXT NOT NULL,
    confidence REAL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS attributions_by_run ON attributions (run_id);
CREATE TABLE IF NOT EXISTS lessons (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent TEXT NOT NULL,
    text TEXT NOT NULL,
    run_id TEXT,
    step INTEGER,
    created_at REAL NOT NULL
);
"""


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.write_lock = threading.Lock()
        self._writer = self._connect()
        # Ingest writes ~2 KB spans in large transactions: a bigger page cache and fewer, larger WAL
        # checkpoints (about 40 MB of WAL between them) roughly double the commit rate.
        self._writer.execute("PRAGMA cache_size=-65536")
        self._writer.execute("PRAGMA wal_autocheckpoint=10000")
        self._writer.executescript(SCHEMA)
        self._local = threading.local()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives the process being killed (not a power cut).
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def close(self) -> None:
        with self.write_lock:
            self._writer.close()

    # ---- spans ----------------------------------------------------------
    def write_spans(self, batch: Sequence[SpanRow]) -> None:
        """Commits spans (a span seen before is kept once) and marks their traces for assembly."""
        now = time.time()
        traces: dict[bytes, tuple[str, int]] = {}
        for r in batch:
            service, root = traces.get(r.trace_id, (r.service, 0))
            traces[r.trace_id] = (service, root or int(r.is_root))
        with self.write_lock:
            conn = self._writer
            conn.execute("BEGIN")
            try:
                conn.executemany(
                    "INSERT OR IGNORE INTO spans VALUES (?,?,?,?,?,?,?,?,?)",
                    [(r.trace_id, r.span_id, r.parent_span_id, r.name, r.service, r.start_ns, r.end_ns,
                      r.status_code, r.data) for r in batch],
                )
                conn.executemany(
                    "INSERT INTO traces (trace_id, service, first_seen, last_seen, root_ended) VALUES (?,?,?,?,?) "
                    "ON CONFLICT (trace_id) DO UPDATE SET last_seen = excluded.last_seen, "
                    "root_ended = MAX(root_ended, excluded.root_ended), assembled_at = NULL",
                    [(tid, service, now, now, root) for tid, (service, root) in traces.items()],
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def count_spans(self) -> int:
        return self._reader().execute("SELECT COUNT(*) FROM spans").fetchone()[0]

    def trace_spans(self, trace_id: bytes) -> list[tuple[bytes, str]]:
        """(serialised span, service) for every span of a trace."""
        return self._reader().execute("SELECT data, service FROM spans WHERE trace_id = ?", (trace_id,)).fetchall()

    def due_traces(self, settle_s: float, idle_timeout_s: float, limit: int = 100) -> list[tuple[bytes, bool, float]]:
        """Traces to assemble now: root ended and quiet for ``settle_s``, or quiet for ``idle_timeout_s``."""
        now = time.time()
        rows = self._reader().execute(
            "SELECT trace_id, root_ended, last_seen FROM traces WHERE assembled_at IS NULL AND "
            "((root_ended = 1 AND last_seen <= ?) OR last_seen <= ?) ORDER BY last_seen LIMIT ?",
            (now - settle_s, now - idle_timeout_s, limit),
        ).fetchall()
        return [(tid, bool(root), seen) for tid, root, seen in rows]

    def mark_assembled(self, trace_id: bytes, seen_before: float) -> None:
        """Marks a trace done unless spans arrived after ``seen_before`` (then it is assembled again)."""
        with self.write_lock:
            self._writer.execute(
                "UPDATE traces SET assembled_at = ? WHERE trace_id = ? AND last_seen <= ?",
                (time.time(), trace_id, seen_before),
            )

    # ---- runs -------------------------------------------------------------
    def save_run(self, trajectory: Trajectory, trace_id: bytes) -> None:
        t = trajectory
        with self.write_lock:
            self._writer.execute(
                "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (run_id) DO UPDATE SET "
                "name=excluded.name, service=excluded.service, outcome=excluded.outcome, "
                "termination=excluded.termination, n_steps=excluded.n_steps, start_time=excluded.start_time, "
                "end_time=excluded.end_time, trajectory=excluded.trajectory, updated_at=excluded.updated_at",
                (t.run_id, trace_id, t.name, t.service, t.outcome.value, t.termination.value, len(t.steps),
                 t.start_time, t.end_time, t.model_dump_json(), time.time()),
            )

    def get_run(self, run_id: str) -> Trajectory | None:
        row = self._reader().execute("SELECT trajectory FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return Trajectory.model_validate_json(row[0]) if row else None

    def list_runs(self, *, outcome: str | None = None, service: str | None = None, name: str | None = None,
                  limit: int = 50, offset: int = 0) -> list[dict]:
        sql = ("SELECT r.run_id, r.name, r.service, r.outcome, r.termination, r.n_steps, r.start_time, r.end_time, "
               "a.agent, a.step FROM runs r LEFT JOIN attributions a ON a.seq = "
               "(SELECT MAX(seq) FROM attributions WHERE run_id = r.run_id) WHERE 1=1")
        args: list = []
        for column, value in (("outcome", outcome), ("service", service), ("name", name)):
            if value is not None:
                sql += f" AND r.{column} = ?"
                args.append(value)
        sql += " ORDER BY r.start_time DESC LIMIT ? OFFSET ?"
        args += [limit, offset]
        keys = ("run_id", "name", "service", "outcome", "termination", "n_steps", "start_time", "end_time",
                "agent", "step")
        return [dict(zip(keys, row)) for row in self._reader().execute(sql, args).fetchall()]

    # ---- attributions -------------------------------------------------------
    def has_attribution(self, run_id: str) -> bool:
        return self._reader().execute("SELECT 1 FROM attributions WHERE run_id = ?", (run_id,)).fetchone() is not None

    def save_attribution(self, a: Attribution, service: str | None) -> Attribution:
        with self.write_lock:
            cur = self._writer.execute(
                "INSERT INTO attributions (run_id, service, agent, step, reason, attributor, confidence, created_at) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (a.run_id, service, a.agent, a.step, a.reason, a.attributor, a.confidence, a.created_at),
            )
        return a.model_copy(update={"seq": cur.lastrowid})

    def attributions(self, *, after: int = 0, service: str | None = None, run_id: str | None = None,
                     limit: int = 100) -> list[Attribution]:
        sql = "SELECT seq, run_id, agent, step, reason, attributor, confidence, created_at FROM attributions WHERE seq > ?"
        args: list = [after]
        if service is not None:
            sql += " AND service = ?"
            args.append(service)
        if run_id is not None:
            sql += " AND run_id = ?"
            args.append(run_id)
        sql += " ORDER BY seq LIMIT ?"
        args.append(limit)
        keys = ("seq", "run_id", "agent", "step", "reason", "attributor", "confidence", "created_at")
        return [Attribution(**dict(zip(keys, row))) for row in self._reader().execute(sql, args).fetchall()]

    # ---- lessons --------------------------------------------------------------
    def add_lesson(self, lesson: Lesson) -> None:
        with self.write_lock:
            self._writer.execute(
                "INSERT INTO lessons (agent, text, run_id, step, created_at) VALUES (?,?,?,?,?)",
                (lesson.agent, lesson.text, lesson.run_id, lesson.step, lesson.created_at),
            )

    def lessons(self, agent: str | None = None) -> list[Lesson]:
        sql, args = "SELECT agent, text, run_id, step, created_at FROM lessons", []
        if agent is not None:
            sql += " WHERE agent = ?"
            args.append(agent)
        keys = ("agent", "text", "run_id", "step", "created_at")
        return [Lesson(**dict(zip(keys, r))) for r in self._reader().execute(sql + " ORDER BY id", args).fetchall()]

    def clear_lessons(self, agent: str | None = None) -> int:
        with self.write_lock:
            if agent is None:
                return self._writer.execute("DELETE FROM lessons").rowcount
            return self._writer.execute("DELETE FROM lessons WHERE agent = ?", (agent,)).rowcount
