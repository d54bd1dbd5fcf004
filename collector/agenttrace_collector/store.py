"""Storage: spans, traces awaiting assembly, runs with their trajectories, verdicts, lessons.

``SqlStore`` holds every query the back ends share, written once with ``?``
placeholders; a back end supplies its connections (``_read``/``_write``), its
schema and the bulk span insert. ``Store`` is SQLite (WAL), the default;
``store_postgres.PostgresStore`` is PostgreSQL. ``open_store`` picks one from the
``--db`` value.

SQLite: one writer connection, used only by the ingest writer thread and the
pipeline under ``write_lock``; readers get their own connection per thread, which
WAL lets run beside the writer. The feedback cursor (``attributions.seq``) is safe
here as it is: SQLite has one write transaction at a time per database file, and a
verdict's seq is assigned inside it, so verdicts commit in seq order. A SQLite file
is for one collector (``claim_trace`` claims nothing); several collectors share a
PostgreSQL database instead (``store_postgres``).
"""

from __future__ import annotations

import json
import sqlite3
from abc import ABC, abstractmethod
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agenttrace.models import Attribution, Lesson, Trajectory
from agenttrace_collector.otlp import SpanRow
from agenttrace_collector.usage import Usage

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
    assembled_at REAL,
    error TEXT,
    failed_at REAL,
    last_assembled REAL
);
CREATE INDEX IF NOT EXISTS traces_pending ON traces (assembled_at, last_seen);
CREATE INDEX IF NOT EXISTS traces_by_age ON traces (last_seen);
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
    updated_at REAL NOT NULL,
    task TEXT,
    answer TEXT,
    agents TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cost REAL
);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (start_time);
CREATE INDEX IF NOT EXISTS runs_by_trace ON runs (trace_id);
CREATE TABLE IF NOT EXISTS attributions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    service TEXT,
    agent TEXT,
    step INTEGER,
    reason TEXT NOT NULL,
    attributor TEXT NOT NULL,
    confidence REAL,
    created_at REAL NOT NULL,
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
    lease_until REAL,
    not_before REAL NOT NULL,
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_ready ON attribution_jobs (state, not_before);
CREATE INDEX IF NOT EXISTS traces_quarantined ON traces (failed_at) WHERE error IS NOT NULL;
CREATE TABLE IF NOT EXISTS reviews (
    run_id TEXT PRIMARY KEY,
    service TEXT,
    verdict_seq INTEGER,
    agent TEXT NOT NULL,
    step INTEGER NOT NULL,
    confirmed INTEGER NOT NULL,
    note TEXT,
    reviewer TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS lessons (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent TEXT NOT NULL,
    text TEXT NOT NULL,
    run_id TEXT,
    step INTEGER,
    created_at REAL NOT NULL
);
"""


# Columns added after the first release, for databases created by an earlier build: (table, column, type).
UPGRADES = [("traces", "error", "TEXT"), ("traces", "failed_at", "DOUBLE PRECISION"),
            ("attributions", "candidates", "TEXT"), ("attributions", "uncertain", "INTEGER NOT NULL DEFAULT 0"),
            ("attributions", "opinions", "TEXT"), ("attributions", "advice", "TEXT"), ("runs", "task", "TEXT"),
            ("runs", "answer", "TEXT"), ("runs", "agents", "TEXT"), ("runs", "input_tokens", "INTEGER"),
            ("runs", "output_tokens", "INTEGER"), ("runs", "cost", "DOUBLE PRECISION"),
            ("traces", "last_assembled", "DOUBLE PRECISION")]
REVIEW_COLUMNS = ("run_id", "service", "verdict_seq", "agent", "step", "confirmed", "note", "reviewer", "created_at")
RUN_COLUMNS = ("run_id", "name", "service", "outcome", "termination", "n_steps", "start_time", "end_time",
               "input_tokens", "output_tokens", "cost")

JOB_STATES = ("queued", "running", "done", "failed")

# A run's latest verdict (a), attribution job (j) and review (v), for listing and filtering runs.
VERDICT_JOINS = ("LEFT JOIN attributions a ON a.seq = (SELECT MAX(seq) FROM attributions WHERE run_id = r.run_id) "
                 "LEFT JOIN attribution_jobs j ON j.run_id = r.run_id LEFT JOIN reviews v ON v.run_id = r.run_id")


def _like(part: str) -> str:
    """A LIKE pattern matching ``part`` anywhere, its wildcards escaped (used with ESCAPE '\\')."""
    return "%" + part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass
class RunFilter:
    """Which runs to list. Text fields match substrings in any case; ``only_service`` (a token's scope), outcome,
    termination and the verdict's agent match exactly; ``since``/``until`` bound the start time (seconds)."""

    search: str | None = None  # run id, task, answer or an agent's name
    service: str | None = None
    name: str | None = None
    outcome: str | None = None
    termination: str | None = None
    agent: str | None = None
    since: float | None = None
    until: float | None = None
    only_service: str | None = None

    def where(self) -> tuple[str, list]:
        clauses, args = ["1=1"], []
        for column, value in (("r.outcome", self.outcome), ("r.termination", self.termination),
                              ("r.service", self.only_service), ("COALESCE(v.agent, a.agent)", self.agent)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if self.since is not None:
            clauses.append("r.start_time >= ?")
            args.append(self.since)
        if self.until is not None:
            clauses.append("r.start_time < ?")
            args.append(self.until)
        contains = "LOWER({}) LIKE LOWER(?) ESCAPE '\\'"  # lower-cased on both sides for PostgreSQL
        for column, part in (("r.service", self.service), ("r.name", self.name)):
            if part:
                clauses.append(contains.format(column))
                args.append(_like(part))
        if self.search:
            columns = ("r.run_id", "r.task", "r.answer", "r.agents")
            clauses.append("(" + " OR ".join(contains.format(c) for c in columns) + ")")
            args += [_like(self.search)] * len(columns)
        return " AND ".join(clauses), args



def trace_marks(batch: Sequence[SpanRow]) -> list[tuple[bytes, str, int]]:
    """(trace_id, service, root_ended) for each trace in a span batch, sorted by trace_id.

    The service is the first span's; root_ended is 1 when the batch holds the root span. Sorted, so that
    two writers upserting the same traces take their row locks in one order (PostgreSQL).
    """
    traces: dict[bytes, tuple[str, int]] = {}
    for r in batch:
        service, root = traces.get(r.trace_id, (r.service, 0))
        traces[r.trace_id] = (service, root or int(r.is_root))
    return [(tid, service, root) for tid, (service, root) in sorted(traces.items())]


class SqlStore(ABC):
    """The queries both back ends share (``?`` placeholders). A subclass provides the connections:

    ``_read(sql, args)`` -> all rows, on a reader connection; ``_write(sql, args, returning=False)`` -> the
    row count (or the first column of the first returned row, None if none), committed before it returns,
    under ``write_lock``; and ``write_spans``, ``close``. PostgreSQL also overrides ``claim_trace`` and
    ``_insert_verdict``, for several collectors on one database.
    """

    write_lock: threading.Lock

    @abstractmethod
    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]: ...

    @abstractmethod
    def _write(self, sql: str, args: Sequence[Any] = (), *, returning: bool = False) -> Any: ...

    @abstractmethod
    def _write_returning(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        """A write whose RETURNING rows are all wanted, committed before it returns, under ``write_lock``."""

    @abstractmethod
    def _write_all(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Runs the statements in one transaction, committed before it returns, under ``write_lock``."""

    # Appended to the job-leasing subquery: PostgreSQL locks the rows it picks and skips those another
    # worker holds; SQLite has one writer at a time, so its subquery needs nothing.
    LEASE_LOCK = ""

    # The column that numbers spans in the order they were received: SQLite's rowid, PostgreSQL's spans.seq.
    RECEIVED = "rowid"

    @abstractmethod
    def write_spans(self, batch: Sequence[SpanRow]) -> None:
        """Commits spans (a span seen before is kept once) and marks their traces for assembly."""

    @abstractmethod
    def close(self) -> None: ...

    # ---- spans ----------------------------------------------------------
    def count_spans(self) -> int:
        return self._read("SELECT COUNT(*) FROM spans")[0][0]

    def trace_spans(self, trace_id: bytes) -> list[tuple[bytes, str]]:
        """(serialised span, service) for every span of a trace, in the order they were received (assembly orders
        spans that start at the same time so: see ``build_tree``)."""
        return self._read(f"SELECT data, service FROM spans WHERE trace_id = ? ORDER BY {self.RECEIVED}", (trace_id,))

    def trace_span_count(self, trace_id: bytes, cap: int) -> int:
        """How many spans a trace has, counted up to ``cap`` (so a huge trace costs no more than ``cap``)."""
        return self._read("SELECT COUNT(*) FROM (SELECT 1 FROM spans WHERE trace_id = ? LIMIT ?) AS s",
                          (trace_id, cap))[0][0]

    # A trace is due when it is unassembled, root ended and quiet for settle_s (or quiet for idle_timeout_s),
    # and not held: marked with ``hold`` within the last reassemble_s (a big run still receiving spans).
    # Arguments: now - settle_s, now - idle_timeout_s, now - reassemble_s.
    DUE = ("assembled_at IS NULL AND ((root_ended = 1 AND last_seen <= ?) OR last_seen <= ?) "
           "AND (last_assembled IS NULL OR last_assembled <= ?)")

    def due_traces(self, settle_s: float, idle_timeout_s: float, reassemble_s: float = 0.0,
                   limit: int = 100) -> list[tuple[bytes, bool, float]]:
        """Traces to assemble now (see ``DUE``), longest quiet first."""
        now = time.time()
        rows = self._read(f"SELECT trace_id, root_ended, last_seen FROM traces WHERE {self.DUE} "
                          "ORDER BY last_seen LIMIT ?", (now - settle_s, now - idle_timeout_s, now - reassemble_s, limit))
        return [(tid, bool(root), seen) for tid, root, seen in rows]

    @contextmanager
    def claim_trace(self, trace_id: bytes) -> Iterator[bool]:
        """``with store.claim_trace(tid) as mine:`` - True when this collector may process the trace now.

        One collector per SQLite file, so always True here.
        """
        yield True

    def mark_assembled(self, trace_id: bytes, seen_before: float, *, hold: bool = False) -> None:
        """Marks a trace done unless spans arrived after ``seen_before`` (then it is assembled again); with
        ``hold``, it is not due again within ``due_traces``'s ``reassemble_s``, however soon spans arrive."""
        now = time.time()
        held = now if hold else None
        self._write_all([("UPDATE traces SET last_assembled = ? WHERE trace_id = ?", (held, trace_id)),
                         ("UPDATE traces SET assembled_at = ?, error = NULL, failed_at = NULL "
                          "WHERE trace_id = ? AND last_seen <= ?", (now, trace_id, seen_before))])

    # ---- quarantine: traces the pipeline could not process ---------------------------
    def quarantine(self, trace_id: bytes, seen_before: float, error: str, *, hold: bool = False) -> None:
        """Sets a trace aside with the error it raised, so it is not tried again until released or new spans come
        (``hold``: as ``mark_assembled``'s)."""
        now = time.time()
        held = now if hold else None
        self._write_all([("UPDATE traces SET last_assembled = ? WHERE trace_id = ?", (held, trace_id)),
                         ("UPDATE traces SET assembled_at = ?, error = ?, failed_at = ? WHERE trace_id = ? AND "
                          "last_seen <= ?", (now, error, now, trace_id, seen_before))])

    def quarantined(self, limit: int = 100) -> list[dict]:
        """Quarantined traces, most recent failure first: trace id (hex), service, error, when it failed."""
        rows = self._read("SELECT trace_id, service, error, failed_at FROM traces WHERE error IS NOT NULL "
                          "ORDER BY failed_at DESC LIMIT ?", (limit,))
        return [{"trace_id": bytes(t).hex(), "service": svc, "error": err, "failed_at": at} for t, svc, err, at in rows]

    def count_quarantined(self) -> int:
        return self._read("SELECT COUNT(*) FROM traces WHERE error IS NOT NULL")[0][0]

    def release_quarantined(self, trace_id: bytes | None = None) -> int:
        """Queues quarantined traces (one, or all) for assembly again, e.g. after an upgrade; returns how many."""
        if trace_id is None:
            return self._write("UPDATE traces SET assembled_at = NULL WHERE error IS NOT NULL")
        return self._write("UPDATE traces SET assembled_at = NULL WHERE error IS NOT NULL AND trace_id = ?",
                           (trace_id,))

    def pipeline_backlog(self, settle_s: float, idle_timeout_s: float, reassemble_s: float = 0.0
                         ) -> tuple[int, float | None]:
        """(traces due for assembly now, seconds the oldest of them has been due) - the pipeline's lag."""
        now = time.time()
        count, oldest_root, oldest_idle = self._read(
            "SELECT COUNT(*), MIN(CASE WHEN root_ended = 1 THEN last_seen END), "
            f"MIN(CASE WHEN root_ended = 0 THEN last_seen END) FROM traces WHERE {self.DUE}",
            (now - settle_s, now - idle_timeout_s, now - reassemble_s))[0]
        due_since = [t + settle_s for t in (oldest_root,) if t is not None]
        due_since += [t + idle_timeout_s for t in (oldest_idle,) if t is not None]
        return count, (now - min(due_since)) if due_since else None

    # ---- runs -------------------------------------------------------------
    def save_run(self, trajectory: Trajectory, trace_id: bytes, *, enqueue: bool = False,
                 usage: Usage | None = None) -> None:
        """Saves (or updates) a run with its LLM ``usage``; with ``enqueue``, queues its attribution job in the
        same transaction. A run that has a verdict or a job already gets no new job (late spans re-assemble runs).

        Task, answer and the agents (one a line) are kept in columns of their own, for the runs search.
        """
        t, now, usage = trajectory, time.time(), usage or Usage()
        agents = "\n".join(dict.fromkeys(s.agent for s in t.steps))
        statements: list[tuple[str, Sequence[Any]]] = [(
            "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (run_id) DO UPDATE SET "
            "name=excluded.name, service=excluded.service, outcome=excluded.outcome, "
            "termination=excluded.termination, n_steps=excluded.n_steps, start_time=excluded.start_time, "
            "end_time=excluded.end_time, trajectory=excluded.trajectory, updated_at=excluded.updated_at, "
            "task=excluded.task, answer=excluded.answer, agents=excluded.agents, "
            "input_tokens=excluded.input_tokens, output_tokens=excluded.output_tokens, cost=excluded.cost",
            (t.run_id, trace_id, t.name, t.service, t.outcome.value, t.termination.value, len(t.steps),
             t.start_time, t.end_time, t.model_dump_json(), now, t.task, t.answer, agents,
             usage.input_tokens, usage.output_tokens, usage.cost),
        )]
        if enqueue:
            statements.append((
                "INSERT INTO attribution_jobs (run_id, service, state, not_before, created_at, updated_at) "
                "SELECT ?, ?, 'queued', ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM attributions WHERE run_id = ?) "
                "ON CONFLICT (run_id) DO NOTHING",
                (t.run_id, t.service, now, now, now, t.run_id)))
        self._write_all(statements)

    def get_run(self, run_id: str) -> Trajectory | None:
        rows = self._read("SELECT trajectory FROM runs WHERE run_id = ?", (run_id,))
        return Trajectory.model_validate_json(rows[0][0]) if rows else None

    def run_usage(self, run_id: str) -> Usage:
        rows = self._read("SELECT input_tokens, output_tokens, cost FROM runs WHERE run_id = ?", (run_id,))
        return Usage(rows[0][0] or 0, rows[0][1] or 0, rows[0][2]) if rows else Usage()

    def run_trace(self, run_id: str) -> bytes | None:
        rows = self._read("SELECT trace_id FROM runs WHERE run_id = ?", (run_id,))
        return bytes(rows[0][0]) if rows else None

    def run_ids_starting_with(self, prefix: str, limit: int = 10, *, only_service: str | None = None) -> list[str]:
        """The run ids that begin with ``prefix`` (at most ``limit``; of ``only_service``), for unique-prefix lookups."""
        scoped = " AND service = ?" if only_service is not None else ""
        rows = self._read(f"SELECT run_id FROM runs WHERE substr(run_id, 1, ?) = ?{scoped} ORDER BY run_id LIMIT ?",
                          (len(prefix), prefix, *([only_service] if scoped else []), limit))
        return [r[0] for r in rows]

    def list_runs(self, filters: RunFilter | None = None, *, limit: int = 50, offset: int = 0) -> list[dict]:
        """Runs matching ``filters``, newest first, each with its latest verdict's agent and step and its review."""
        where, args = (filters or RunFilter()).where()
        columns = ", ".join(f"r.{c}" for c in RUN_COLUMNS)
        sql = (f"SELECT {columns}, a.agent, a.step, a.confidence, a.uncertain, j.state, v.confirmed "
               f"FROM runs r {VERDICT_JOINS} WHERE {where} "
               # NULLS LAST: SQLite's default for DESC, spelled out for PostgreSQL (whose default is NULLS FIRST).
               "ORDER BY r.start_time DESC NULLS LAST, r.run_id LIMIT ? OFFSET ?")
        keys = RUN_COLUMNS + ("agent", "step", "confidence", "uncertain", "job_state", "reviewed")
        rows = [dict(zip(keys, row)) for row in self._read(sql, [*args, limit, offset])]
        for row in rows:
            row["uncertain"] = bool(row["uncertain"])
            row["reviewed"] = None if row["reviewed"] is None else ("confirmed" if row["reviewed"] else "corrected")
        return rows

    def count_runs(self, filters: RunFilter | None = None) -> int:
        where, args = (filters or RunFilter()).where()
        return self._read(f"SELECT COUNT(*) FROM runs r {VERDICT_JOINS} WHERE {where}", args)[0][0]

    def failure_verdicts(self, since: float, until: float, *, only_service: str | None = None) -> list[tuple]:
        """(blamed agent, termination, verdict time) of the verdicts made in [since, until), oldest first;
        a reviewed run's agent is the reviewer's."""
        scoped = " AND a.service = ?" if only_service is not None else ""
        return self._read("SELECT COALESCE(v.agent, a.agent), r.termination, a.created_at FROM attributions a "
                          "JOIN runs r ON r.run_id = a.run_id LEFT JOIN reviews v ON v.run_id = a.run_id "
                          f"WHERE a.created_at >= ? AND a.created_at < ?{scoped} "
                          "ORDER BY a.created_at", (since, until, *([only_service] if scoped else [])))

    # ---- attributions -------------------------------------------------------
    def has_attribution(self, run_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM attributions WHERE run_id = ? LIMIT 1", (run_id,)))

    def save_attribution(self, a: Attribution, service: str | None) -> Attribution | None:
        """Stores the run's verdict with its feedback seq; None (nothing stored) if the run has one already."""
        candidates = json.dumps([c.model_dump() for c in a.candidates]) if a.candidates else None
        opinions = json.dumps([o.model_dump() for o in a.opinions]) if a.opinions else None
        seq = self._insert_verdict(
            "INSERT INTO attributions (run_id, service, agent, step, reason, attributor, confidence, created_at, "
            "candidates, uncertain, opinions, advice) "
            "SELECT ?,?,?,?,?,?,?,?,?,?,?,? WHERE NOT EXISTS (SELECT 1 FROM attributions WHERE run_id = ?) "
            "RETURNING seq",
            (a.run_id, service, a.agent, a.step, a.reason, a.attributor, a.confidence, a.created_at, candidates,
             int(a.uncertain), opinions, a.advice or None, a.run_id),
        )
        return None if seq is None else a.model_copy(update={"seq": seq})

    def _insert_verdict(self, sql: str, args: Sequence[Any]) -> int | None:
        return self._write(sql, args, returning=True)

    def attributions(self, *, after: int = 0, service: str | None = None, run_id: str | None = None,
                     limit: int = 100) -> list[Attribution]:
        sql = ("SELECT seq, run_id, agent, step, reason, attributor, confidence, created_at, candidates, uncertain, "
               "opinions, advice FROM attributions WHERE seq > ?")
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
        return [Attribution(**dict(zip(keys, row)), candidates=json.loads(row[8]) if row[8] else [],
                            uncertain=bool(row[9]), opinions=json.loads(row[10]) if row[10] else [],
                            advice=row[11] or "")
                for row in self._read(sql, args)]

    # ---- attribution jobs: the durable queue between assembly and the attributors ----------
    def lease_jobs(self, owner: str, limit: int, lease_s: float) -> list[tuple[str, int]]:
        """Takes up to ``limit`` ready jobs (queued and due, or running with an expired lease) for ``owner``.

        Returns (run_id, attempt number) pairs; each lease counts as an attempt, so a job whose worker keeps
        dying still runs out of attempts.
        """
        now = time.time()
        rows = self._write_returning(
            "UPDATE attribution_jobs SET state = 'running', lease_owner = ?, lease_until = ?, attempts = attempts + 1, "
            "updated_at = ? WHERE run_id IN (SELECT run_id FROM attribution_jobs WHERE "
            "(state = 'queued' AND not_before <= ?) OR (state = 'running' AND lease_until < ?) "
            f"ORDER BY created_at LIMIT ?{self.LEASE_LOCK}) RETURNING run_id, attempts",
            (owner, now + lease_s, now, now, now, limit))
        return [(run_id, attempts) for run_id, attempts in rows]

    def finish_job(self, run_id: str, owner: str) -> None:
        self._write("UPDATE attribution_jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, "
                    "last_error = NULL, updated_at = ? WHERE run_id = ? AND lease_owner = ?", (time.time(), run_id, owner))

    def retry_job(self, run_id: str, owner: str, error: str, *, delay_s: float, final: bool) -> None:
        """Records a failed attempt: queued again after ``delay_s``, or ``failed`` for good when ``final``."""
        now = time.time()
        self._write("UPDATE attribution_jobs SET state = ?, lease_owner = NULL, lease_until = NULL, not_before = ?, "
                    "last_error = ?, updated_at = ? WHERE run_id = ? AND lease_owner = ?",
                    ("failed" if final else "queued", now + delay_s, error, now, run_id, owner))

    def release_jobs(self, owner: str) -> int:
        """Hands back the jobs ``owner`` holds (a worker stopping cleanly), without counting the attempt."""
        return self._write("UPDATE attribution_jobs SET state = 'queued', attempts = attempts - 1, lease_owner = NULL, "
                           "lease_until = NULL, updated_at = ? WHERE state = 'running' AND lease_owner = ?",
                           (time.time(), owner))

    def job_owners(self) -> list[str]:
        """The workers holding leases now."""
        return [r[0] for r in self._read("SELECT DISTINCT lease_owner FROM attribution_jobs WHERE state = 'running' "
                                         "AND lease_owner IS NOT NULL")]

    def expire_leases(self, owner: str) -> int:
        """Ends ``owner``'s leases now (its process is gone): its jobs can be leased again at once."""
        return self._write("UPDATE attribution_jobs SET lease_until = 0 WHERE state = 'running' AND lease_owner = ?",
                           (owner,))

    def job(self, run_id: str) -> dict | None:
        rows = self._read("SELECT state, attempts, last_error, created_at, updated_at FROM attribution_jobs "
                          "WHERE run_id = ?", (run_id,))
        keys = ("state", "attempts", "last_error", "created_at", "updated_at")
        return dict(zip(keys, rows[0])) if rows else None

    def job_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(JOB_STATES, 0)
        counts.update(self._read("SELECT state, COUNT(*) FROM attribution_jobs GROUP BY state"))
        return counts

    # ---- reviews: a person's judgement of a run's verdict ------------------------------
    def save_review(self, review: dict, lesson: Lesson | None = None) -> None:
        """Stores (or replaces) a run's review (``REVIEW_COLUMNS``); a correction replaces the run's lessons with
        ``lesson`` (none: a correction to the environment teaches no agent)."""
        statements: list[tuple[str, Sequence[Any]]] = [(
            "INSERT INTO reviews VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (run_id) DO UPDATE SET "
            "service=excluded.service, verdict_seq=excluded.verdict_seq, agent=excluded.agent, step=excluded.step, "
            "confirmed=excluded.confirmed, note=excluded.note, reviewer=excluded.reviewer, "
            "created_at=excluded.created_at",
            tuple(int(review[k]) if k == "confirmed" else review[k] for k in REVIEW_COLUMNS))]
        if not review["confirmed"]:
            statements.append(("DELETE FROM lessons WHERE run_id = ?", (review["run_id"],)))
        if lesson is not None:
            statements.append(("INSERT INTO lessons (agent, text, run_id, step, created_at) VALUES (?,?,?,?,?)",
                               (lesson.agent, lesson.text, lesson.run_id, lesson.step, lesson.created_at)))
        self._write_all(statements)

    def reviews(self, *, run_id: str | None = None, only_service: str | None = None,
                limit: int = 1000, offset: int = 0) -> list[dict]:
        """Reviews, oldest first: one run's, or all (of ``only_service``)."""
        sql, args = f"SELECT {', '.join(REVIEW_COLUMNS)} FROM reviews WHERE 1=1", []
        for column, value in (("run_id", run_id), ("service", only_service)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        rows = self._read(sql + " ORDER BY created_at, run_id LIMIT ? OFFSET ?", [*args, limit, offset])
        return [dict(zip(REVIEW_COLUMNS, row)) | {"confirmed": bool(row[5])} for row in rows]

    # ---- retention -------------------------------------------------------------
    def delete_older_than(self, cutoff: float, max_rows: int = 100) -> int:
        """Deletes one batch of what is older than ``cutoff`` (seconds since the epoch); returns the rows it counted.

        Up to ``max_rows`` traces last seen before it go with their spans, runs and their verdicts, jobs, reviews
        and lessons; and up to ``max_rows`` each of verdicts, jobs, reviews and lessons made before it. 0: nothing
        old is left.
        """
        ids = [bytes(r[0]) for r in self._read("SELECT trace_id FROM traces WHERE last_seen < ? ORDER BY last_seen "
                                               "LIMIT ?", (cutoff, max_rows))]
        statements: list[tuple[str, Sequence[Any]]] = []
        if ids:
            traces = ",".join("?" * len(ids))
            runs = f"SELECT run_id FROM runs WHERE trace_id IN ({traces})"
            statements += [(f"DELETE FROM {table} WHERE run_id IN ({runs})", ids)
                           for table in ("attributions", "attribution_jobs", "reviews", "lessons")]
            statements += [(f"DELETE FROM {table} WHERE trace_id IN ({traces})", ids) for table in ("runs", "spans")]
            statements.append((f"DELETE FROM traces WHERE trace_id IN ({traces})", ids))
        old = {"attributions": ("seq", "created_at"), "attribution_jobs": ("run_id", "updated_at"),
               "reviews": ("run_id", "created_at"), "lessons": ("id", "created_at")}
        counts = [len(ids)]
        for table, (key, made) in old.items():
            keys = [r[0] for r in self._read(f"SELECT {key} FROM {table} WHERE {made} < ? LIMIT ?", (cutoff, max_rows))]
            if keys:
                statements.append((f"DELETE FROM {table} WHERE {key} IN ({','.join('?' * len(keys))})", keys))
            counts.append(len(keys))
        if statements:
            self._write_all(statements)
        return sum(counts)

    # ---- lessons --------------------------------------------------------------
    def add_lesson(self, lesson: Lesson) -> None:
        self._write("INSERT INTO lessons (agent, text, run_id, step, created_at) VALUES (?,?,?,?,?)",
                    (lesson.agent, lesson.text, lesson.run_id, lesson.step, lesson.created_at))

    def lessons(self, agent: str | None = None, *, only_service: str | None = None) -> list[Lesson]:
        """Lessons, oldest first: all, one agent's, and/or those from runs of ``only_service``."""
        sql, args = "SELECT agent, text, run_id, step, created_at FROM lessons WHERE 1=1", []
        if agent is not None:
            sql += " AND agent = ?"
            args.append(agent)
        if only_service is not None:
            sql += " AND run_id IN (SELECT run_id FROM runs WHERE service = ?)"
            args.append(only_service)
        keys = ("agent", "text", "run_id", "step", "created_at")
        return [Lesson(**dict(zip(keys, r))) for r in self._read(sql + " ORDER BY id", args)]

    def clear_lessons(self, agent: str | None = None) -> int:
        if agent is None:
            return self._write("DELETE FROM lessons")
        return self._write("DELETE FROM lessons WHERE agent = ?", (agent,))


class Store(SqlStore):
    """SQLite (WAL): the default store, one file."""

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
        self._upgrade()
        self._writer.executescript(SCHEMA)
        self._local = threading.local()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives the process being killed (not a power cut).
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def _upgrade(self) -> None:
        """Adds the columns an earlier build's database lacks (SQLite has no ADD COLUMN IF NOT EXISTS)."""
        for table, column, kind in UPGRADES:
            have = {row[1] for row in self._writer.execute(f"PRAGMA table_info({table})")}
            if have and column not in have:
                self._writer.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        return self._reader().execute(sql, args).fetchall()

    def _write(self, sql: str, args: Sequence[Any] = (), *, returning: bool = False) -> Any:
        with self.write_lock:  # autocommit: the statement is committed when it has run
            cur = self._writer.execute(sql, args)
            if not returning:
                return cur.rowcount
            row = cur.fetchone()
            return row[0] if row else None

    def _write_returning(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        with self.write_lock:
            return self._writer.execute(sql, args).fetchall()

    def _write_all(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        with self.write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    conn.execute(sql, args)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self.write_lock:
            self._writer.close()

    def write_spans(self, batch: Sequence[SpanRow]) -> None:
        now = time.time()
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
                    [(tid, service, now, now, root) for tid, service, root in trace_marks(batch)],
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise


def open_store(db: str | Path) -> SqlStore:
    """The store for a ``--db`` value: a ``postgresql://`` (or ``postgres://``) URL is PostgreSQL, else a SQLite file."""
    if str(db).startswith(("postgresql://", "postgres://")):
        from agenttrace_collector.store_postgres import PostgresStore

        return PostgresStore(str(db))
    return Store(db)
