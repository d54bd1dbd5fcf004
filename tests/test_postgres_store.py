"""The collector on PostgreSQL: a real collector process against a throwaway cluster (scripts/postgres.sh).

The session fixture installs PostgreSQL when it is missing (root and apt-get) and
skips only when it cannot. Checks read the database itself: a span sent twice is
stored once, a failed run is assembled, attributed and its verdict served by the
feedback long-poll, lessons are stored and cleared, and every acknowledged span
survives the collector being killed with SIGKILL mid-ingest.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import agenttrace
from agenttrace.local_collector import LocalCollector
from tests.crash import ingest_until_killed
from agenttrace.models import Attribution, Outcome
from tests.conftest import flush, query

ROOT = Path(__file__).resolve().parent.parent
PROTOBUF = {"content-type": "application/x-protobuf"}


@pytest.fixture(scope="module")
def pg_collector(pg_url, tmp_path_factory):
    log = tmp_path_factory.mktemp("pg") / "collector.log"
    with LocalCollector(pg_url, attributor="cpu", log_file=log, extra_args=("--settle", "0.2")) as c:
        yield c


@pytest.fixture
def pg_traced(pg_collector):
    handle = agenttrace.instrument(endpoint=pg_collector.endpoint, service_name="pg-tests", frameworks=[])
    yield handle
    agenttrace.uninstrument()


def make_request(n_spans: int, service: str = "pg-tests") -> tuple[ExportTraceServiceRequest, bytes, set[bytes]]:
    """One trace of ``n_spans`` spans (a root and its children) with random ids."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", service
    ss = rs.scope_spans.add()
    trace_id, root, ids = os.urandom(16), b"", set()
    for i in range(n_spans):
        span = ss.spans.add()
        span.trace_id, span.span_id = trace_id, os.urandom(8)
        span.parent_span_id = root
        root = root or span.span_id
        span.name = "invoke_agent planner" if i == 0 else "chat gpt-4o"
        span.start_time_unix_nano = 1_700_000_000_000_000_000 + i
        span.end_time_unix_nano = 1_700_000_000_000_000_000 + i + 1000
        attr = span.attributes.add()
        attr.key, attr.value.string_value = "gen_ai.output.messages", "x" * 200
        ids.add(span.span_id)
    return req, trace_id, ids


def post(c: LocalCollector, req: ExportTraceServiceRequest, client: httpx.Client | None = None) -> httpx.Response:
    return (client or httpx).post(f"{c.endpoint}/v1/traces", content=req.SerializeToString(), headers=PROTOBUF,
                                  timeout=30)


def load_team():
    spec = importlib.util.spec_from_file_location("research_team_pg", ROOT / "examples" / "research_team.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_open_store_picks_postgres_for_a_url(pg_url, tmp_path):
    from agenttrace_collector.store import Store, open_store
    from agenttrace_collector.store_postgres import PostgresStore

    pg = open_store(pg_url)
    try:
        assert isinstance(pg, PostgresStore)
        assert isinstance(open_store(pg_url.replace("postgresql://", "postgres://", 1)), PostgresStore)
    finally:
        pg.close()
    assert type(open_store(tmp_path / "a.db")) is Store


def test_a_spans_table_an_earlier_build_made_gets_its_receive_order_column(pg_url):
    """An earlier build's spans table had no ``seq``: opening the store adds it, numbering the rows already
    there, and a trace's spans are then read in that order."""
    import psycopg

    from agenttrace_collector.store_postgres import PostgresStore

    old = f"{pg_url}?options=-csearch_path%3Dearlier_build"  # a schema of its own: the other tests' tables stay as they are
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA earlier_build")
        conn.execute("CREATE TABLE earlier_build.spans (trace_id BYTEA NOT NULL, span_id BYTEA NOT NULL, "
                     "parent_span_id BYTEA NOT NULL, name TEXT NOT NULL, service TEXT NOT NULL, start_ns BIGINT NOT NULL, "
                     "end_ns BIGINT NOT NULL, status_code INTEGER NOT NULL, data BYTEA NOT NULL, "
                     "PRIMARY KEY (trace_id, span_id))")
        for k in range(3):
            conn.execute("INSERT INTO earlier_build.spans VALUES (%s, %s, '', 's', 'svc', 0, 1, 0, %s)",
                         (b"t" * 16, bytes([k]) * 8, f"span {k}".encode()))
    try:
        store = PostgresStore(old)
        try:
            assert [data for data, _ in store.trace_spans(b"t" * 16)] == [b"span 0", b"span 1", b"span 2"]
        finally:
            store.close()
        seqs = [r[0] for r in query(pg_url, "SELECT seq FROM earlier_build.spans ORDER BY span_id")]
        assert len(set(seqs)) == 3 and None not in seqs
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA earlier_build CASCADE")


def test_a_span_sent_twice_is_stored_once(pg_collector, pg_url):
    req, trace_id, ids = make_request(20)
    dup = ExportTraceServiceRequest()
    dup.CopyFrom(req)
    dup.resource_spans[0].scope_spans[0].spans.extend(req.resource_spans[0].scope_spans[0].spans[:5])  # in one request
    assert post(pg_collector, req).status_code == 200
    assert post(pg_collector, dup).status_code == 200
    stored = query(pg_url, "SELECT span_id FROM spans WHERE trace_id = %s", trace_id)
    assert sorted(r[0] for r in stored) == sorted(ids)  # acknowledged means committed: no waiting needed
    [(root_ended,)] = query(pg_url, "SELECT root_ended FROM traces WHERE trace_id = %s", trace_id)
    assert root_ended == 1


def test_a_failed_run_is_assembled_attributed_and_its_verdict_served_by_feedback(pg_collector, pg_traced, pg_url):
    verdicts: queue.Queue = queue.Queue()
    agenttrace.on_feedback(verdicts.put)
    team_mod = load_team()
    run = team_mod.ResearchTeam(seed_error=True).solve()
    flush()

    traj, stored = pg_collector.wait_run(run.run_id, timeout=60, verdict=True)
    assert [s.agent for s in traj.steps] == ["Planner", "Researcher", "Calculator", "Writer"]
    assert traj.steps[2].tool_calls[0].result == "121"
    assert traj.outcome is Outcome.FAILURE and traj.expected == "127" and traj.answer == "121"
    verdict = stored[-1]
    assert verdict.attributor == "cpu" and verdict.agent in traj.agents and verdict.seq

    # The SDK's long-poll got it, and the feedback API serves it after the cursor before it (and not after it).
    got = verdicts.get(timeout=30)
    assert (got.run_id, got.seq) == (run.run_id, verdict.seq)
    batch = httpx.get(f"{pg_collector.endpoint}/api/v1/feedback", params={"after": verdict.seq - 1}, timeout=10).json()
    assert batch["attributions"][0]["run_id"] == run.run_id and batch["cursor"] >= verdict.seq
    later = httpx.get(f"{pg_collector.endpoint}/api/v1/feedback", params={"after": batch["cursor"]}, timeout=10).json()
    assert later == {"attributions": [], "cursor": batch["cursor"]}

    failed = httpx.get(f"{pg_collector.endpoint}/api/v1/runs", params={"outcome": "failure"}, timeout=10).json()
    summary = next(r for r in failed if r["run_id"] == run.run_id)
    assert (summary["agent"], summary["step"]) == (verdict.agent, verdict.step)
    [(outcome, n_steps)] = query(pg_url, "SELECT outcome, n_steps FROM runs WHERE run_id = %s", run.run_id)
    assert (outcome, n_steps) == ("failure", 4)

    ok = team_mod.ResearchTeam(seed_error=False).solve()
    flush()
    traj, none = pg_collector.wait_run(ok.run_id, timeout=30)
    assert traj.outcome is Outcome.SUCCESS and none == []


def test_lessons_are_stored_and_cleared(pg_collector, pg_traced, pg_url):
    run = load_team().ResearchTeam(seed_error=True).solve()
    flush()
    _, stored = pg_collector.wait_run(run.run_id, timeout=60, verdict=True)
    verdict = stored[-1]
    assert verdict.is_decided
    lessons = httpx.get(f"{pg_collector.endpoint}/api/v1/lessons", params={"agent": verdict.agent}, timeout=10).json()
    mine = [lesson for lesson in lessons if lesson["run_id"] == run.run_id]
    assert len(mine) == 1 and mine[0]["step"] == verdict.step
    deleted = httpx.delete(f"{pg_collector.endpoint}/api/v1/lessons", params={"agent": verdict.agent}, timeout=10)
    assert deleted.json()["deleted"] >= 1
    assert httpx.get(f"{pg_collector.endpoint}/api/v1/lessons", params={"agent": verdict.agent}, timeout=10).json() == []
    assert query(pg_url, "SELECT COUNT(*) FROM lessons WHERE agent = %s", verdict.agent) == [(0,)]


def test_every_acknowledged_span_survives_kill_9_during_ingest(pg_url, tmp_path):
    c = LocalCollector(pg_url, attributor="none", log_file=tmp_path / "crash.log").start()
    payloads = [(req, ids) for req, _, ids in (make_request(50) for _ in range(8 * 40))]
    acked = ingest_until_killed(c, payloads, lambda client, req: post(c, req, client).status_code)
    assert len(acked) >= 40 * 50

    again = LocalCollector(pg_url, attributor="none", log_file=tmp_path / "crash-again.log").start()
    try:
        have = {r[0] for r in query(pg_url, "SELECT span_id FROM spans")}
        missing = acked - have
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged spans lost in the crash"
        req, _, ids = make_request(5)
        assert post(again, req).status_code == 200
        assert ids <= {r[0] for r in query(pg_url, "SELECT span_id FROM spans")}
    finally:
        again.stop()


HOLD = 0x686f6c64  # "hold": the test's own advisory lock, on which a verdict insert waits after taking its seq


def advisory_waiters(url: str) -> int:
    return query(url, "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'")[0][0]


def until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_verdict_that_commits_after_a_later_one_is_not_skipped_by_the_feedback_cursor(pg_url):
    """Two collectors on one database save verdicts at once: A takes seq n and is held before its commit (by a
    trigger waiting on a lock the test holds), B takes n+1. A feedback reader between the two commits must not
    move its cursor past A's verdict."""
    from agenttrace_collector.store_postgres import PostgresStore

    import psycopg

    service = f"race-{os.urandom(4).hex()}"
    a, b = PostgresStore(pg_url), PostgresStore(pg_url)  # two collectors' stores (the first creates the tables)
    holder = psycopg.connect(pg_url, autocommit=True)
    holder.execute("CREATE OR REPLACE FUNCTION hold_verdict() RETURNS trigger LANGUAGE plpgsql AS "
                   f"$$ BEGIN PERFORM pg_advisory_xact_lock({HOLD}); RETURN NULL; END $$")
    holder.execute("CREATE TRIGGER hold_verdict AFTER INSERT ON attributions FOR EACH ROW "
                   "WHEN (NEW.reason = 'hold') EXECUTE FUNCTION hold_verdict()")
    holder.execute("SELECT pg_advisory_lock(%s)", (HOLD,))
    try:
        with ThreadPoolExecutor(2) as pool:
            slow = pool.submit(a.save_attribution, Attribution(run_id=f"{service}-a", agent="x", step=0, reason="hold",
                                                               attributor="test"), service)
            until(lambda: advisory_waiters(pg_url) == 1)  # A has its seq and waits before committing
            fast = pool.submit(b.save_attribution, Attribution(run_id=f"{service}-b", agent="x", step=0,
                                                               attributor="test"), service)
            until(lambda: fast.done() or advisory_waiters(pg_url) == 2)

            seen = a.attributions(after=0, service=service)  # what the feedback long-poll reads
            cursor = max([0] + [v.seq for v in seen])
            holder.execute("SELECT pg_advisory_unlock(%s)", (HOLD,))
            saved = [slow.result(timeout=10), fast.result(timeout=10)]
        seen += a.attributions(after=cursor, service=service)
        assert sorted(v.run_id for v in seen) == [f"{service}-a", f"{service}-b"]
        assert [v.seq for v in seen] == sorted(v.seq for v in saved)
    finally:
        holder.execute("DROP TRIGGER hold_verdict ON attributions")
        holder.close()
        a.close()
        b.close()


def test_two_collectors_on_one_database_deliver_each_verdict_once(pg_url, tmp_path):
    """Two collector processes share the database; failed runs are sent to both in turn, and both pipelines
    compete for every trace. A feedback client reading one of them gets each run's verdict exactly once."""
    from agenttrace.feedback import FeedbackClient

    team = load_team().ResearchTeam(seed_error=True)
    args = dict(attributor="cpu", extra_args=("--settle", "0.2"))
    with LocalCollector(pg_url, log_file=tmp_path / "c1.log", **args) as c1, \
            LocalCollector(pg_url, log_file=tmp_path / "c2.log", **args) as c2:
        delivered: queue.Queue = queue.Queue()
        reader = FeedbackClient(c2.endpoint, None, own_runs_only=False, poll_wait=1.0)
        reader.subscribe(lambda a: delivered.put(a.run_id))
        runs: list[str] = []
        try:
            for c in (c1, c2, c1, c2):
                agenttrace.instrument(endpoint=c.endpoint, service_name="pg-two-collectors", frameworks=[])
                try:
                    runs += [team.solve().run_id for _ in range(10)]
                    flush()
                finally:
                    agenttrace.uninstrument()
            got: list[str] = []  # every verdict the client got, this module's earlier ones too
            deadline = time.monotonic() + 60
            while not set(runs) <= set(got) and time.monotonic() < deadline:
                try:
                    got.append(delivered.get(timeout=1))
                except queue.Empty:
                    pass
            time.sleep(1.5)  # a duplicate would arrive within a long-poll or two
            while not delivered.empty():
                got.append(delivered.get())
        finally:
            reader.close()
    assert sorted(r for r in got if r in runs) == sorted(runs)
    per_run = query(pg_url, "SELECT run_id, COUNT(*) FROM attributions WHERE run_id = ANY(%s) GROUP BY run_id", runs)
    assert sorted(per_run) == sorted((run_id, 1) for run_id in runs)
    lessons = query(pg_url, "SELECT run_id, COUNT(*) FROM lessons WHERE run_id = ANY(%s) GROUP BY run_id", runs)
    assert all(n == 1 for _, n in lessons)
