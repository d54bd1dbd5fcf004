"""The command line shows agent text as written, finds runs by id prefix and filters runs by substring.

Agent text is data: brackets in it (``[/INST]``, ``[/etc/app.yaml]``, ``[tool call]``, ``[ticket T-1]``) are
printed literally by ``runs show``, ``runs list``, ``lessons list`` and ``attribute``, never read as rich markup.
Runs come from the SDK through a real collector (tests/conftest.py).
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from click.testing import CliRunner

import agenttrace
from agenttrace.cli import main
from tests.conftest import flush

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
    import agenttrace.cli_lessons

    monkeypatch.setenv("COLUMNS", "400")
    for module in (agenttrace.cli, agenttrace.cli_lessons):
        monkeypatch.setattr(module.console, "width", 400)


def failed_run(name: str, run_id: str) -> str:
    """A run whose blamed step is full of brackets; returns its id once the collector has its verdict."""
    with agenttrace.run(name, task="Which port does [/etc/app.yaml] set?", expected="8080", run_id=run_id) as run:
        with agenttrace.agent_step("Reader", input="read the config") as step:
            step.output("The config file is [/etc/app.yaml].")
            step.transfer(AGENT)
        with agenttrace.agent_step(AGENT, input="the config") as step:
            with agenttrace.tool_call("grep", {"pattern": "[port]"}) as call:
                call.result("[ticket T-1] port: 8080")
            step.output("[/INST] The port is 9090, see [ticket T-1] and [bold]path\\")
        run.finish("9090")
    return run.run_id


@pytest.fixture
def bracket_run(collector, traced) -> str:
    run_id = failed_run("bracket-check", uuid.uuid4().hex)
    flush()
    collector.wait_run(run_id, timeout=60, verdict=True)
    return run_id


def test_runs_show_prints_agent_text_literally(collector, bracket_run):
    out = cli("runs", "--endpoint", collector.endpoint, "show", bracket_run)
    for text in [*BRACKETS, AGENT, "Which port does [/etc/app.yaml] set?"]:
        assert text in out, text
    assert "[tool call] grep(" in out  # the step's own tool-call line, kept as well


def test_runs_list_prints_names_literally_and_lessons_list_the_blamed_text(collector, traced):
    run_id = failed_run("nightly [ticket T-1] [/INST]", uuid.uuid4().hex)
    flush()
    collector.wait_run(run_id, timeout=60, verdict=True)
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


def test_run_ids_resolve_from_a_unique_prefix_in_api_and_cli(collector, traced):
    shared = uuid.uuid4().hex[:16]
    first, second = failed_run("prefix-a", shared + "a" * 16), failed_run("prefix-b", shared + "b" * 16)
    flush()
    for run_id in (first, second):
        collector.wait_run(run_id, timeout=60)

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


def test_name_and_service_filters_match_substrings_in_any_case_with_wildcards_taken_literally(collector, traced):
    tag = uuid.uuid4().hex[:8]
    names = [f"{tag} 100%_done", f"{tag} 100 done", f"{tag} Weekly-Report"]
    ids = [failed_run(name, uuid.uuid4().hex) for name in names]
    flush()
    for run_id in ids:
        collector.wait_run(run_id, timeout=60)

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
