"""Shared test parts: a real collector process on loopback and SDK instrumentation pointed at it."""

from __future__ import annotations

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


def flush() -> None:
    active = agenttrace.setup.active()
    assert active is not None, "agenttrace is not instrumented"
    assert active.force_flush(), "spans were not exported"
