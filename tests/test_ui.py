"""The collector's web UI at /ui/, driven in a real headless Chromium (Debian's, via scripts/chromium.sh)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

import agenttrace
from agenttrace.local_collector import LocalCollector
from tests.conftest import flush

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = '<script>window.__pwned = "script"</script><img src=x onerror="window.__pwned = \'img\'">'
LONG = "The coder's notes, line by line. " * 40


@pytest.fixture(scope="module")
def browser():
    found = subprocess.run([str(ROOT / "scripts" / "chromium.sh")], capture_output=True, text=True, timeout=600)
    if found.returncode == 3:
        pytest.skip(f"no Chromium: {found.stderr.strip()}")
    assert found.returncode == 0, found.stderr
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=found.stdout.strip(), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    pg = context.new_page()
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    context.close()


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    """A collector of this module's own: the session's one would hand its verdict to other tests' feedback."""
    workdir = tmp_path_factory.mktemp("ui-collector")
    with LocalCollector(workdir / "agenttrace.db", attributor="cpu", log_file=workdir / "collector.log",
                        extra_args=("--settle", "0.2")) as c:
        yield c


@pytest.fixture(scope="module")
def failed_run(collector):
    """A failing three-agent run with a tool call, a failed tool call, long content and hostile content,
    after a successful one."""
    agenttrace.instrument(endpoint=collector.endpoint, service_name="ui-tests", frameworks=[])
    try:
        with agenttrace.run("ui-ok", task="Say hi.", expected="hi") as ok:
            with agenttrace.agent_step("Greeter") as step:
                step.output("hi")
            ok.finish("hi")
        flush()
        collector.wait_run(ok.run_id)
        with agenttrace.run("ui-hostile", task="Add 2 and 2. " + HOSTILE, expected="4") as run:
            with agenttrace.agent_step("Planner", input="Add 2 and 2.") as step:
                step.output("Coder: compute 2 + 2 with the add tool.")
                step.transfer("Coder")
            with agenttrace.agent_step("Coder") as step:
                with agenttrace.tool_call("add", {"a": 2, "b": 2}) as call:
                    call.result(5)
                try:
                    with agenttrace.tool_call("check", {"value": 5}):
                        raise ValueError("checker offline")
                except ValueError:
                    pass
                step.output(HOSTILE + " The sum is 5. " + LONG)
                step.transfer("Reviewer")
            with agenttrace.agent_step("Reviewer") as step:
                step.output("Looks right: 5.")
            run.finish("5")
        flush()
    finally:
        agenttrace.uninstrument()
    traj, verdicts = collector.wait_run(run.run_id, verdict=True)
    return traj, verdicts[-1], ok.run_id


def open_view(page, url: str, route: str) -> None:
    page.goto(url)
    page.wait_for_selector(f'#view[data-route="{route}"]', timeout=15_000)


def assert_nothing_injected(page) -> None:
    assert page.evaluate("window.__pwned") is None and page.dialogs == []
    assert page.locator("#view script, #view img").count() == 0


def test_the_runs_list_shows_the_failed_run_with_its_verdict(collector, failed_run, page):
    traj, verdict, ok_id = failed_run
    open_view(page, collector.endpoint + "/", "/runs")  # / redirects to /ui/
    assert page.url == f"{collector.endpoint}/ui/"
    row = page.locator(f'tr[data-run-id="{traj.run_id}"]')
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == traj.run_id and cells[1] == traj.service and cells[2] == "ui-hostile"
    assert cells[3] == "failure / completed" and cells[5] == "3"
    assert cells[6] == f"{verdict.agent} @ step {verdict.step}"

    assert page.locator("tr.run").evaluate_all("rows => rows.map(r => r.dataset.runId)") == [traj.run_id, ok_id]

    page.select_option("#outcome-filter", "success")
    page.wait_for_selector('#view[data-route="/runs?outcome=success"]')
    assert page.locator("tr.run").evaluate_all("rows => rows.map(r => r.dataset.runId)") == [ok_id]
    assert page.locator("tr.run td:nth-child(4)").all_inner_texts() == ["success / completed"]
    assert page.locator("tr.run td:nth-child(7)").all_inner_texts() == [""]


def test_a_run_url_opens_its_trajectory_with_the_decisive_step_highlighted(collector, failed_run, page):
    traj, verdict, _ = failed_run
    open_view(page, f"{collector.endpoint}/ui/#/runs/{traj.run_id}", f"/runs/{traj.run_id}")
    facts = page.locator("#run-facts")
    assert facts.locator('dd[data-field="Expected"]').inner_text() == "4"
    assert facts.locator('dd[data-field="Answer"]').inner_text() == "5"
    assert "does not match expected" in facts.locator('dd[data-field="Failure reason"]').inner_text()

    steps = page.locator("li.step")
    assert steps.locator(".step-agent").all_inner_texts() == ["Planner", "Coder", "Reviewer"]
    assert steps.evaluate_all("ss => ss.map(s => s.dataset.index)") == ["0", "1", "2"]
    assert page.locator(".handoff").all_inner_texts() == ["→ hands off to Coder", "→ hands off to Reviewer"]

    coder = steps.nth(1)
    assert coder.locator(".tool-name").all_inner_texts() == ["add", "check"]
    assert '"a": 2' in coder.locator(".tool-arguments").first.inner_text()
    assert coder.locator(".tool-result").first.inner_text() == "5"
    assert "checker offline" in coder.locator(".tool-error").inner_text()

    decisive = page.locator("li.step.decisive")
    assert decisive.count() == 1 and decisive.get_attribute("data-index") == str(verdict.step)
    assert decisive.locator(".verdict-agent").inner_text() == verdict.agent == traj.steps[verdict.step].agent
    assert decisive.locator(".verdict-attributor").inner_text() == "cpu"
    assert decisive.locator(".verdict-reason").inner_text() == verdict.reason.strip() != ""


def test_hostile_step_content_is_shown_as_text_and_long_content_collapses(collector, failed_run, page):
    traj, _, _ = failed_run
    open_view(page, f"{collector.endpoint}/ui/#/runs/{traj.run_id}", f"/runs/{traj.run_id}")
    content = page.locator('li.step[data-agent="Coder"] pre.step-content')
    assert content.inner_text().startswith(HOSTILE)
    assert page.locator('dd[data-field="Task"]').inner_text() == "Add 2 and 2. " + HOSTILE
    assert_nothing_injected(page)

    assert "collapsed" in content.get_attribute("class")
    collapsed_height = content.bounding_box()["height"]
    page.locator('li.step[data-agent="Coder"] button.toggle').click()
    assert "collapsed" not in content.get_attribute("class")
    assert content.bounding_box()["height"] > 2 * collapsed_height


def test_lessons_are_listed_per_agent(collector, failed_run, page):
    traj, verdict, _ = failed_run
    expected = [lesson["text"] for lesson in httpx.get(f"{collector.endpoint}/api/v1/lessons",
                                                       params={"agent": verdict.agent}).json()
                if lesson["run_id"] == traj.run_id]
    assert expected, "the collector stored no lesson for the verdict"
    open_view(page, f"{collector.endpoint}/ui/#/lessons", "/lessons")
    section = page.locator("section.agent-lessons", has=page.locator(f'h3:text-is("{verdict.agent}")'))
    shown = section.locator("li.lesson").all_inner_texts()
    assert any(text.startswith(expected[0]) and traj.run_id in text for text in shown)
    assert HOSTILE in expected[0]  # the lesson quotes the hostile task, and it stays text
    assert_nothing_injected(page)
