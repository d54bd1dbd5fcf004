"""The command line shows agent text as written, finds runs by id prefix and filters runs by substring.

Agent text is data: brackets in it (``[/INST]``, ``[/etc/app.yaml]``, ``[tool call]``, ``[ticket T-1]``) are
printed literally by ``runs show``, ``runs list``, ``lessons list`` and ``attribute``, never read as rich markup.
Runs come from an app using the SDK, through a real collector (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import httpx
import pytest
from click.testing import CliRunner

from agenttrace.cli import main

BRACKETS = ["[/INST]", "[/etc/app.yaml]", "[tool call]", "[ticket T-1]", "[bold]", "path\\"]
AGENT = "Coder [v2]"


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), terminal_width=400)
    assert result.exit_code == 0, result.output
    return result.output


def cli_error(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), terminal_width=400)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return result.output


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Rich wraps table cells at the console's width; a wide console keeps each text on one line."""
    import agenttrace.cli
    import agenttrace.cli.lessons

    monkeypatch.setenv("COLUMNS", "400")
    for module in (agenttrace.cli, agenttrace.cli.lessons):
        monkeypatch.setattr(module.console, "width", 400)


# An app, in its own process (its verdicts reach no other test's feedback), with runs named on its command line:
# each fails, and its blamed step is full of brackets.
APP = r"""
import sys

import agenttrace

agenttrace.instrument(service_name="agenttrace-tests", frameworks=[])
for name, run_id in zip(sys.argv[1::2], sys.argv[2::2]):
    with agenttrace.run(name, task="Which port does [/etc/app.yaml] set?", expected="8080", run_id=run_id) as run:
        with agenttrace.agent_step("Reader", input="read the config") as step:
            step.output("The config file is [/etc/app.yaml].")
            step.transfer("Coder [v2]")
        with agenttrace.agent_step("Coder [v2]", input="the config") as step:
            with agenttrace.tool_call("grep", {"pattern": "[port]"}) as call:
                call.result("[ticket T-1] port: 8080")
            step.output("[/INST] The port is 9090, see [ticket T-1] and [bold]path\\")
        run.finish("9090")
"""


def failed_runs(collector, *names: str, run_ids: list[str] | None = None) -> list[str]:
    """Runs of APP with these names, assembled and attributed by the collector; their ids."""
    run_ids = run_ids or [uuid.uuid4().hex for _ in names]
    args = [x for pair in zip(names, run_ids) for x in pair]
    done = subprocess.run([sys.executable, "-c", APP, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "AGENTTRACE_ENDPOINT": collector.endpoint})
    assert done.returncode == 0, done.stderr
    for run_id in run_ids:
        collector.wait_run(run_id, timeout=60, verdict=True)
    return run_ids


@pytest.fixture
def bracket_run(collector) -> str:
    return failed_runs(collector, "bracket-check")[0]


def test_runs_show_prints_agent_text_literally(collector, bracket_run):
    out = cli("runs", "--endpoint", collector.endpoint, "show", bracket_run)
    for text in [*BRACKETS, AGENT, "Which port does [/etc/app.yaml] set?"]:
        assert text in out, text
    assert "[tool call] grep(" in out  # the step's own tool-call line, kept as well


def test_runs_list_prints_names_literally_and_lessons_list_the_blamed_text(collector):
    [run_id] = failed_runs(collector, "nightly [ticket T-1] [/INST]")
    listed = cli("runs", "--endpoint", collector.endpoint, "list", "--name", "nightly [ticket")
    assert "nightly [ticket T-1] [/INST]" in listed and run_id[:12] in listed
    lessons = cli("lessons", "--endpoint", collector.endpoint, "list")
    assert "[ticket T-1]" in lessons and "[/INST]" in lessons


def test_attribute_prints_the_reason_literally(tmp_path):
    history = [{"role": "user", "name": "Planner", "content": "Plan: read [/etc/app.yaml] and report the port."},
               {"role": "assistant", "name": "Reader", "content": "[/INST] I will assume the port is 9090 "
                "without reading [/etc/app.yaml] ([ticket T-1])."},
               {"role": "assistant", "name": "Writer", "content": "FINAL ANSWER: 9090"}]
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"question": "Which port?", "ground_truth": "8080", "history": history,
                                "mistake_agent": "Reader", "mistake_step": "1"}))
    out = cli("attribute", str(path))
    assert "[/INST] I will assume" in out and "[ticket T-1]" in out


def test_run_ids_resolve_from_a_unique_prefix_in_api_and_cli(collector):
    shared = uuid.uuid4().hex[:16]
    first, second = failed_runs(collector, "prefix-a", "prefix-b", run_ids=[shared + "a" * 16, shared + "b" * 16])

    detail = httpx.get(f"{collector.endpoint}/api/v1/runs/{shared}a", timeout=5)
    assert detail.status_code == 200 and detail.json()["trajectory"]["run_id"] == first
    assert cli("runs", "--endpoint", collector.endpoint, "show", shared + "b").count("prefix-b") == 1

    ambiguous = httpx.get(f"{collector.endpoint}/api/v1/runs/{shared}", timeout=5)
    assert ambiguous.status_code == 409
    assert first in ambiguous.json()["detail"] and second in ambiguous.json()["detail"]
    out = cli_error("runs", "--endpoint", collector.endpoint, "show", shared)
    assert "ambiguous" in out and first in out and second in out

    missing = httpx.get(f"{collector.endpoint}/api/v1/runs/{shared}c", timeout=5)
    assert missing.status_code == 404
    assert "no run" in cli_error("runs", "--endpoint", collector.endpoint, "show", shared + "c")


def test_name_and_service_filters_match_substrings_in_any_case_with_wildcards_taken_literally(collector):
    tag = uuid.uuid4().hex[:8]
    names = [f"{tag} 100%_done", f"{tag} 100 done", f"{tag} Weekly-Report"]
    failed_runs(collector, *names)

    def listed(**params) -> set[str]:
        rows = httpx.get(f"{collector.endpoint}/api/v1/runs", params={"limit": 1000, **params}, timeout=5).json()
        return {r["name"] for r in rows}

    assert listed(name=tag) == set(names)
    assert listed(name=f"{tag} 100%_") == {names[0]}  # % and _ are characters here, not LIKE wildcards
    assert listed(name=f"{tag} weekly") == {names[2]}
    assert names[2] in listed(service="TESTS", name=tag)  # the service is "agenttrace-tests"
    assert listed(service="no-such-service", name=tag) == set()
    out = cli("runs", "--endpoint", collector.endpoint, "list", "--name", f"{tag} WEEKLY", "--service", "tests")
    assert names[2] in out and names[0] not in out
