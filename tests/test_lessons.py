"""Lessons: stored by the collector for each decided verdict, listed/cleared by CLI and API, put back into agents."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import httpx
from click.testing import CliRunner

from agenttrace.adapters.camel import WorkforceLessons, find_worker
from agenttrace.adapters.maas import LessonReviser, PromptReviser
from agenttrace.cli.lessons import lessons_group
from agenttrace.lessons import LESSONS_HEADER, lesson_for, lessons_block, with_lessons
from agenttrace.models import Attribution, Lesson, Step, Trajectory
from tests.conftest import flush

ROOT = Path(__file__).resolve().parent.parent


def _team_module():
    spec = importlib.util.spec_from_file_location("research_team_for_lessons", ROOT / "examples" / "research_team.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_collector_stores_a_lesson_per_decided_verdict_and_cli_lists_and_clears(collector, traced):
    team = _team_module().ResearchTeam(seed_error=True)
    run = team.solve()
    flush()
    trajectory, verdicts = collector.wait_run(run.run_id, timeout=60, verdict=True)
    assert trajectory.outcome.value == "failure"
    verdict = verdicts[-1]
    assert verdict.is_decided
    stored = [lesson for lesson in httpx.get(f"{collector.endpoint}/api/v1/lessons", timeout=5).json()
              if lesson["run_id"] == run.run_id]
    assert len(stored) == 1
    assert stored[0]["agent"] == verdict.agent and stored[0]["step"] == verdict.step
    assert f"your step {verdict.step}" in stored[0]["text"]
    # what to do instead comes from the verdict's evidence, and the stored verdict keeps it
    assert verdict.advice and stored[0]["text"].endswith(f"Next time, {verdict.advice}.")

    runner = CliRunner()
    out = runner.invoke(lessons_group, ["--endpoint", collector.endpoint, "list", "--agent", verdict.agent, "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert any(r["run_id"] == run.run_id for r in rows) and all(r["agent"] == verdict.agent for r in rows)
    table = runner.invoke(lessons_group, ["--endpoint", collector.endpoint, "list"])
    assert table.exit_code == 0 and verdict.agent in table.output

    cleared = runner.invoke(lessons_group, ["--endpoint", collector.endpoint, "clear", "--agent", verdict.agent])
    assert cleared.exit_code == 0 and cleared.output.startswith("deleted ")
    after = runner.invoke(lessons_group, ["--endpoint", collector.endpoint, "list", "--agent", verdict.agent, "--json"])
    assert json.loads(after.output) == []


def test_successful_run_leaves_no_lesson(collector, traced):
    run = _team_module().ResearchTeam(seed_error=False).solve()
    flush()
    trajectory, _ = collector.wait_run(run.run_id, timeout=30)
    assert trajectory.outcome.value == "success"
    lessons = httpx.get(f"{collector.endpoint}/api/v1/lessons", timeout=5).json()
    assert not any(lesson["run_id"] == run.run_id for lesson in lessons)


def test_cli_without_collector_fails_cleanly():
    out = CliRunner().invoke(lessons_group, ["--endpoint", "http://127.0.0.1:9", "list"])
    assert out.exit_code != 0 and "no collector" in out.output


def test_undecided_verdict_gives_no_lesson():
    assert lesson_for(Attribution(run_id="r", agent=None, step=None, attributor="x")) is None


def test_with_lessons_replaces_its_own_block():
    once = with_lessons("Be exact.", ["check A"])
    twice = with_lessons(once, ["check A", "check B"])
    assert twice.startswith("Be exact.\n\n" + LESSONS_HEADER) and twice.count(LESSONS_HEADER) == 1
    assert "- check B" in twice and with_lessons(twice, []) == "Be exact."
    assert lessons_block([]) == ""
    assert lessons_block([f"l{i}" for i in range(9)], limit=2).splitlines()[1:] == ["- l7", "- l8"]


# ---- CAMEL Workforce, duck-typed (camel-ai is not installed in the dev venv) ----------------------
class _Msg:
    def __init__(self, role_name: str, content: str) -> None:
        self.role_name, self.content = role_name, content

    def create_new_instance(self, content: str) -> _Msg:
        return _Msg(self.role_name, content)


class _OldAgent:  # camel-ai before update_system_message: private fields + init_messages
    def __init__(self, role: str, content: str) -> None:
        self._system_message = self._original_system_message = _Msg(role, content)
        self.role_name = role
        self.inits = 0

    def init_messages(self) -> None:
        self.inits += 1


class _NewAgent(_OldAgent):
    def update_system_message(self, message, reset_memory: bool = True) -> None:
        self._system_message = self._original_system_message = _Msg(self.role_name, message)


class _Worker:
    def __init__(self, node_id: str, description: str, agent) -> None:
        self.node_id, self.description, self.worker = node_id, description, agent


class _Workforce:
    def __init__(self, children) -> None:
        self._children = children


def _workforce():
    inner = _Workforce([_Worker("w3", "Writes the final report", _NewAgent("Writer", "You write reports."))])
    return _Workforce([_Worker("w1", "Searches the web", _OldAgent("Web Searcher", "You search the web.")),
                       _Worker("w2", "Runs python code", _NewAgent("Coder", "You write code.")), inner])


def test_camel_adapter_puts_the_lesson_into_the_blamed_workers_system_message():
    wf = _workforce()
    adapter = WorkforceLessons(wf)
    traj = Trajectory(run_id="r1", task="sum the list", steps=[
        Step(index=0, agent="web_searcher", content="found 1, 2, 3"), Step(index=1, agent="Coder", content="x = 7")])
    node = adapter.on_verdict(Attribution(run_id="r1", agent="Coder", step=1, reason="wrong sum", attributor="t"), traj)
    assert node is wf._children[1]
    content = node.worker._system_message.content
    assert content.startswith("You write code.") and "wrong sum" in content and "x = 7" in content
    assert wf._children[0].worker._system_message.content == "You search the web."  # others untouched

    old = adapter.apply(Lesson(agent="web_searcher", text="quote the source"))  # name normalised
    assert old is wf._children[0] and old.worker.inits == 1
    assert old.worker._original_system_message.content.endswith("- quote the source")
    assert find_worker(wf, "Writer") is wf._children[2]._children[0]  # nested workforce walked

    adapter.apply(Lesson(agent="Coder", text="second"))
    text = wf._children[1].worker._system_message.content
    assert text.count(LESSONS_HEADER) == 1 and "- second" in text
    assert adapter.apply(Lesson(agent="Nobody", text="x")) is None and adapter.unmatched
    adapter.reset()
    assert wf._children[1].worker._system_message.content == "You write code."


def test_maas_reviser_rewrites_only_the_blamed_operator():
    prompts = {"Generate": "Solve the problem.", "Programmer": "Write python that solves it."}
    reviser = LessonReviser(prompts, aliases={"CodeAgent": "Programmer"})
    assert isinstance(reviser, PromptReviser)
    changed = reviser("add 2 and 2", Attribution(run_id="r", agent="CodeAgent", step=2, reason="off by one",
                                                 attributor="t"))
    assert list(changed) == ["Programmer"]
    assert changed["Programmer"].startswith("Write python that solves it.") and "off by one" in changed["Programmer"]
    assert "add 2 and 2" not in changed["Programmer"]  # no trajectory given -> no task quoted
    assert reviser("t", Attribution(run_id="r", agent=None, step=None, attributor="t")) == {}
    assert reviser("t", Attribution(run_id="r", agent="Unknown", step=0, attributor="t")) == {}
    assert reviser.prompts["Generate"] == "Solve the problem."


def test_a_lesson_quotes_the_step_its_verdict_names_by_index_in_a_run_with_gaps():
    # a run read from chat messages keeps the messages' numbers; a tool's answer leaves a gap (here, 1)
    traj = Trajectory(run_id="g", task="add 2 and 3", steps=[
        Step(index=0, agent="coder", content="calling the adder"),
        Step(index=2, agent="coder", content="The sum is 6."),
    ])
    verdict = Attribution(run_id="g", agent="coder", step=2, attributor="cpu", reason="6 is not 2 + 3.")
    assert 'You wrote: "The sum is 6."' in lesson_for(verdict, traj).text
