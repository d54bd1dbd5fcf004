"""Shared test parts: a real collector process on loopback and SDK instrumentation pointed at it."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

import agenttrace
from agenttrace.local_collector import LocalCollector


@pytest.fixture(scope="session")
def collector(tmp_path_factory):
    """A collector child process (SQLite in a temp dir, cpu attributor), shared by the session."""
    workdir = tmp_path_factory.mktemp("collector")
    with LocalCollector(workdir / "agenttrace.db", attributor="cpu", log_file=workdir / "collector.log",
                        extra_args=("--settle", "0.2")) as c:
        yield c


@pytest.fixture
def traced(collector):
    """agenttrace instrumented to export to the session's collector; undone after the test."""
    handle = agenttrace.instrument(endpoint=collector.endpoint, service_name="agenttrace-tests", frameworks=[])
    yield handle
    agenttrace.uninstrument()


PG_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "postgres.sh"


def flush() -> None:
    active = agenttrace.setup.active()
    assert active is not None, "agenttrace is not instrumented"
    assert active.force_flush(), "spans were not exported"


@pytest.fixture(scope="session")
def pg_url():
    """The URL of a PostgreSQL cluster started for the session (installed first if missing), removed after it,
    or by the script's watcher once this process is gone (a run killed midway)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.fail("psycopg is not installed: pip install -e '.[postgres]' (scripts/_venv.sh does)")
    # In /tmp: run as root, the server runs as "postgres", which must reach the directory (TMPDIR may be private).
    state = tempfile.mkdtemp(prefix="agenttrace-pg-", dir="/tmp" if os.path.isdir("/tmp") else None)
    env = {**os.environ, "AGENTTRACE_PG_DIR": state, "AGENTTRACE_PG_OWNER": str(os.getpid())}
    started = subprocess.run([str(PG_SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=1200)
    if started.returncode == 3:
        pytest.skip(f"PostgreSQL is not installed and cannot be installed here: {started.stderr.strip()}")
    assert started.returncode == 0, f"scripts/postgres.sh start failed:\n{started.stderr}"
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(PG_SCRIPT), "stop"], env=env, capture_output=True, timeout=120)


def query(url: str, sql: str, *args) -> list[tuple]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, args).fetchall()
