"""Arize Phoenix (from PyPI, on loopback) shows agenttrace's verdict in the run's own trace.

The app exports to agenttrace only; the collector forwards the spans to Phoenix (``--forward``) and,
once the run is attributed, the verdict (``--export-verdicts``). Checked in Phoenix's database: the
``agenttrace.attribution`` span sits under the run's root span with the blamed agent and step.
Run with ``nox -s phoenix_verdict`` (not a default session: arize-phoenix is a large install).
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from agenttrace.local_collector import LocalCollector
from agenttrace.testing.phoenix import phoenix_server
from agenttrace.testing.scripted_llm import ScriptedLLM
from tests.otlp_helpers import send_run

PHOENIX = Path(sys.executable).parent / "phoenix"


@pytest.fixture
def phoenix(tmp_path):
    """A Phoenix server on loopback (SQLite in tmp_path): yields (OTLP/HTTP traces URL, database path)."""
    if not PHOENIX.exists():
        pytest.fail(f"{PHOENIX} is missing: run this test with `nox -s phoenix_verdict`, which installs arize-phoenix")
    with phoenix_server(PHOENIX, tmp_path) as (base_url, db):
        yield f"{base_url}/v1/traces", db


def phoenix_trace(db: Path, trace_id: str) -> dict[str, dict]:
    """Phoenix's spans of one trace: name -> {span_id, parent_id, attributes}."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT s.name, s.span_id, s.parent_id, s.attributes FROM spans s "
                            "JOIN traces t ON t.id = s.trace_rowid WHERE t.trace_id = ?", (trace_id,)).fetchall()
    return {name: {"span_id": sid, "parent_id": pid, "attributes": json.loads(attrs)} for name, sid, pid, attrs in rows}


def test_the_verdict_is_in_phoenix_under_the_run_trace(tmp_path, phoenix):
    phoenix_url, phoenix_db = phoenix
    with ScriptedLLM(["<think>the Calculator added wrong</think><answer>Calculator | 1</answer>"]) as llm, \
            LocalCollector(tmp_path / "agenttrace.db", attributor="openai", log_file=tmp_path / "collector.log",
                           extra_args=("-o", f"base_url={llm.base_url}", "-o", "model=m", "--settle", "0.2",
                                       "--forward", phoenix_url, "--export-verdicts", phoenix_url)) as collector:
        run = send_run(collector.endpoint, answer="5")
        trajectory, [verdict] = collector.wait_run(run.run_id, verdict=True)

        deadline = time.monotonic() + 60  # Phoenix stores what it receives asynchronously
        while "agenttrace.attribution" not in (spans := phoenix_trace(phoenix_db, trajectory.trace_id)):
            assert time.monotonic() < deadline, f"no verdict span in Phoenix; it has {sorted(spans)}"
            time.sleep(0.25)
    verdict_span, root = spans["agenttrace.attribution"], spans["agenttrace.run add"]
    assert {"invoke_agent Planner", "invoke_agent Calculator"} <= set(spans)  # the forwarded run itself
    assert verdict_span["parent_id"] == root["span_id"]
    found = verdict_span["attributes"]["agenttrace"]["attribution"]
    assert (found["agent"], found["step"], found["attributor"]) == ("Calculator", 1, "openai") \
        == (verdict.agent, verdict.step, verdict.attributor)
    assert found["reason"] == "the Calculator added wrong"
    assert found["blamed_span_id"] == trajectory.steps[1].span_id == spans["invoke_agent Calculator"]["span_id"]
