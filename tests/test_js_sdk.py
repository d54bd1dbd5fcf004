"""A non-Python client: the official OpenTelemetry JS SDK (from npm, tests/js/) exports a two-agent run to a
real collector over each OTLP protocol, and the collector stores, assembles and judges it like a Python run.

The JS app sets ``agenttrace.run.id``, ``agenttrace.run.expected`` and the answer as numbers, as JavaScript
code naturally does. Its packages are installed with ``npm ci`` from tests/js/package-lock.json on first use.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from agenttrace_collector.otlp import load_span

JS_APP = Path(__file__).resolve().parent / "js"
PROTOCOLS = ["http/json", "http/protobuf", "grpc"]


@pytest.fixture(scope="module")
def node() -> str:
    """The node executable, with tests/js/node_modules installed from the lockfile (again only when it changed)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js (node and npm) is not installed: the JS SDK client cannot run")
    installed = JS_APP / "node_modules" / ".package-lock.json"  # written by npm at the end of an install
    if not installed.exists() or installed.stat().st_mtime < (JS_APP / "package-lock.json").stat().st_mtime:
        done = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=JS_APP,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"npm ci in {JS_APP} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
    return node


def run_js_app(node: str, protocol: str, endpoint: str, run_id: int) -> None:
    env = {**os.environ, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
    done = subprocess.run([node, str(JS_APP / "agent_run.mjs"), str(run_id)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, f"the JS app failed over {protocol}:\n{done.stdout}{done.stderr}"


def stored_span(db: str, span_id: str):
    """The span as the collector stored it (the OTLP protobuf the client sent, decoded)."""
    with sqlite3.connect(db) as conn:
        (data,) = conn.execute("SELECT data FROM spans WHERE span_id = ?", (bytes.fromhex(span_id),)).fetchone()
    return load_span(data)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_js_sdk_run_is_stored_assembled_and_judged(collector, node, protocol):
    run_id = secrets.randbelow(2**52)  # a JavaScript number, sent as an OTLP int
    endpoint = f"http://127.0.0.1:{collector.grpc_port}" if protocol == "grpc" else collector.endpoint
    run_js_app(node, protocol, endpoint, run_id)

    trajectory, verdicts = collector.wait_run(str(run_id), timeout=30, verdict=True)
    assert (trajectory.run_id, trajectory.service, trajectory.name) == (str(run_id), "js-agents", "add")
    assert (trajectory.task, trajectory.expected, trajectory.answer) == ("2+2", "4", "5")
    assert trajectory.outcome.value == "failure"
    assert [step.agent for step in trajectory.steps] == ["Planner", "Calculator"]
    planner, calculator = trajectory.steps
    assert (planner.input, planner.content, planner.transfer_to) == ("2+2", "Calculator, add 2 and 2", "Calculator")
    assert [(c.name, c.arguments, c.result) for c in calculator.tool_calls] == [("add", {"a": 2, "b": 2}, "5")]
    assert calculator.content == "5"

    assert verdicts, "a failed run gets a verdict"
    verdict = verdicts[0]
    assert trajectory.steps[verdict.step].agent == verdict.agent
    assert verdict.reason

    spans = collector.get(f"/api/v1/runs/{run_id}/spans", timeout=10).json()
    assert sorted(s["name"] for s in spans) == sorted([
        "agenttrace.run add", "invoke_agent Planner", "chat gpt-4o-mini", "invoke_agent Calculator",
        "execute_tool add"])
    by_name = {s["name"]: s for s in spans}
    run_span = stored_span(collector.db, by_name["agenttrace.run add"]["span_id"])
    sent = {kv.key: kv.value for kv in run_span.attributes}
    assert sent["agenttrace.run.id"].int_value == run_id and sent["agenttrace.run.expected"].int_value == 4
    chat = by_name["chat gpt-4o-mini"]
    assert (chat["kind"], chat["model"], chat["input_tokens"], chat["output_tokens"]) == ("llm", "gpt-4o-mini", 12, 7)
    assert chat["parent_id"] == by_name["invoke_agent Planner"]["span_id"]


def test_js_turns_that_start_in_the_same_millisecond_are_steps_in_the_order_they_ran(collector, node):
    """A JS app stamps its spans' starts in milliseconds: six turns (each an agent span with a chat span in it)
    that ran one after the other in one millisecond share a start time. The collector keeps the order they
    ran in (the order they were exported and received), not the order of their random span ids."""
    run_id = f"same-ms-{secrets.token_hex(4)}"
    agents = ["Planner", "Researcher", "Coder", "Tester", "Reviewer", "Writer"]
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint}
    done = subprocess.run([node, str(JS_APP / "same_ms_turns.mjs"), run_id, *agents], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"the JS app failed:\n{done.stdout}{done.stderr}"

    trajectory, _ = collector.wait_run(run_id, timeout=30)
    spans = collector.get(f"/api/v1/runs/{run_id}/spans", timeout=10).json()
    assert len(spans) == 1 + 2 * len(agents) and len({s["start"] for s in spans}) == 1, "every span starts in the same millisecond"
    assert [step.agent for step in trajectory.steps] == agents
    assert [step.content for step in trajectory.steps] == [f"{agent} did its part" for agent in agents]
    assert [step.input for step in trajectory.steps] == ["pass it on"] + [f"{a} did its part" for a in agents[:-1]]
    assert trajectory.outcome.value == "success"
