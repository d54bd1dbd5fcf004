"""Feedback across re-instrumentation: a verdict reaches the process once, whatever instrument() calls follow."""

from __future__ import annotations

import queue

import agenttrace
from tests.conftest import flush
from tests.test_collector import load_team


def failed_run_and_first_verdict(collector, team):
    """Instruments, subscribes, runs a failing team, uninstruments; the run and the first verdict the callback got."""
    delivered: queue.Queue = queue.Queue()
    agenttrace.instrument(endpoint=collector.endpoint, service_name="reinstrument-tests", frameworks=[])
    try:
        agenttrace.on_feedback(delivered.put)
        run = team.solve()
        flush()
        verdict = delivered.get(timeout=30)
    finally:
        agenttrace.uninstrument()
    return run, verdict


def test_a_verdict_is_not_delivered_again_after_uninstrument_and_instrument(collector):
    team = load_team().ResearchTeam(seed_error=True)
    first, got_first = failed_run_and_first_verdict(collector, team)
    assert got_first.run_id == first.run_id
    second, got_second = failed_run_and_first_verdict(collector, team)
    # A client that started from 0 again would hand over the first run's verdict at once, before the second's.
    assert got_second.run_id == second.run_id
    assert got_second.seq > got_first.seq
