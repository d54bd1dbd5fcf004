"""Counterfactual replay: the earliest step whose correction fixes the run labels it."""

from __future__ import annotations

import re

import agenttrace
from agenttrace.attribution import Attributor
from agenttrace.models import Attribution, Outcome, Trajectory
from agenttrace.data.replay import (GENERIC_HINT, Hint, Recording, Replayable, attributor_corrector, find_decisive_step,
                               model_corrector, openai_llm, replayable, search_decisive_step)
from agenttrace.testing.scripted_llm import ScriptedLLM
from tests.conftest import flush

TASK = "3 shelves hold 48 boxes each; 17 boxes are shipped. How many are left?"
AGENTS = ("Planner", "Researcher", "Calculator", "Writer")


def team_llm(messages) -> str:
    """The model behind all four agents, deterministic. The Calculator misreads 48 as 46 unless told to re-check."""
    system, user = messages[0]["content"], messages[1]["content"]
    hinted = len(messages) > 2
    if "Planner" in system:
        return "Plan: Researcher finds the numbers; Calculator computes shelves * per_shelf - shipped."
    if "Researcher" in system:
        nums = re.findall(r"\d+", TASK)
        return f"Facts: shelves={nums[0]}, per_shelf={nums[1]}, shipped={nums[2]}"
    if "Calculator" in system:
        shelves, per, shipped = (int(x) for x in re.findall(r"=(\d+)", user))
        if not hinted and per == 48:
            per = 46
        return f"{shelves} * {per} - {shipped} = {shelves * per - shipped}"
    if "Writer" in system:
        last = re.findall(r"-?\d+", user)[-1]
        return f"Answer: {last}"
    raise AssertionError(system)


def team(task: str, *, llm) -> str:
    text = task
    for agent in AGENTS:
        text = llm([{"role": "system", "content": f"You are {agent}."}, {"role": "user", "content": text}], agent=agent)
    return text.removeprefix("Answer: ")


RIGHT = {0: "Plan: Researcher finds the numbers; Calculator computes shelves * per_shelf - shipped.",
         1: "Facts: shelves=3, per_shelf=48, shipped=17", 2: "3 * 48 - 17 = 127", 3: "Answer: 127"}


def oracle(trajectory: Trajectory, t: int) -> str:
    return RIGHT[t]


def test_earliest_fixing_correction_labels_the_run():
    run = Replayable(team, team_llm, success=lambda answer: answer == "127")
    failed = run.record(TASK)
    assert failed.success is False and failed.result == "121" and len(failed.calls) == 4
    search = search_decisive_step(run, failed, oracle, TASK)
    assert search.label is not None and (search.label.agent, search.label.step) == ("Calculator", 2)
    assert [t.step for t in search.trials] == [0, 1, 2]
    assert [t.outcome.success for t in search.trials] == [False, False, True]  # earlier corrections don't fix it
    fixed = search.trials[-1].outcome
    assert [c.source for c in fixed.calls] == ["recorded", "recorded", "corrected", "live"]
    assert fixed.result == "127"
    assert find_decisive_step(run, failed, oracle, TASK) == search.label


def test_replay_serves_recorded_calls_and_goes_live_on_divergence():
    run = Replayable(team, team_llm, success=lambda a: a == "127")
    failed = run.record(TASK)
    changed = run.replay(failed, 1, "Facts: shelves=3, per_shelf=50, shipped=17", TASK)
    assert [c.source for c in changed.calls] == ["recorded", "corrected", "live", "live"]
    assert changed.result == str(3 * 50 - 17)
    # a recorded response whose input no longer matches is not served: that call diverges and runs live
    tampered = Recording(calls=[c for c in failed.calls], success=False)
    tampered.calls[1].messages = [{"role": "user", "content": "something else"}]
    out = run.replay(tampered, 3, "Answer: 127", TASK)
    assert out.calls[1].diverged and out.calls[1].source == "live" and out.success


def test_decorator_hint_corrections_and_attributor():
    @replayable(team_llm, success=lambda a: a == "127")
    def decorated(task, *, llm):
        return team(task, llm=llm)

    assert decorated(TASK) == "121"  # a plain call runs live
    failed = decorated.record(TASK)

    class BlameCalculator(Attributor):
        name = "fixed"

        def attribute(self, trajectory):
            return Attribution(run_id=trajectory.run_id, agent="Calculator", step=2, reason="48 misread",
                               attributor=self.name)

    search = search_decisive_step(decorated, failed, attributor_corrector(BlameCalculator(), generic=None), TASK)
    assert search.label.step == 2 and [t.step for t in search.trials] == [2]
    assert search.trials[0].outcome.calls[2].source == "hinted"
    # a generic hint at every step: the Planner's and Researcher's re-runs do not fix it, the Calculator's does
    generic = search_decisive_step(decorated, failed, lambda tr, t: Hint(GENERIC_HINT), TASK)
    assert generic.label.step == 2 and [t.outcome.success for t in generic.trials] == [False, False, True]
    assert find_decisive_step(decorated, failed, lambda tr, t: None, TASK) is None
    crashed = decorated.replay(failed, 2, "no numbers here", TASK)
    assert crashed.success is False and crashed.error and "IndexError" in crashed.error


def _router(body):
    return team_llm(body["messages"])


def traced_team(task: str, *, llm) -> str:
    """The same team, traced: one agent_step per model call, the model's text as the step's output."""
    with agenttrace.run("replay-team", task=task, expected="127") as run:
        text = task
        for agent in AGENTS:
            with agenttrace.agent_step(agent, input=text) as step:
                text = llm.chat.completions.create(
                    model="scripted-model",
                    messages=[{"role": "system", "content": f"You are {agent}."}, {"role": "user", "content": text}],
                ).choices[0].message.content
                step.output(text)
        run.finish(text.removeprefix("Answer: "))
    return run.answer


def _last_run_id(collector) -> str:
    import time

    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = httpx.get(f"{collector.endpoint}/api/v1/runs", params={"name": "replay-team"}, timeout=5).json()
        if rows:
            return rows[0]["run_id"]
        time.sleep(0.1)
    raise TimeoutError("the traced run never reached the collector")


def test_collector_trajectory_with_scripted_llm_and_model_corrector(collector, traced):
    with ScriptedLLM(_router) as model:
        run = Replayable(traced_team, openai_llm(model.base_url, "scripted-model"), success=lambda a: a == "127")
        assert run(TASK) == "121"
        flush()
        trajectory, _ = collector.wait_run(_last_run_id(collector), timeout=30)
        assert trajectory.outcome is Outcome.FAILURE and [s.agent for s in trajectory.steps] == list(AGENTS)
        n_before = len(model.requests)
        label = find_decisive_step(run, trajectory, oracle, TASK)
        assert (label.agent, label.step) == ("Calculator", 2)

    with ScriptedLLM(lambda body: "3 * 48 - 17 = 127") as fixer:
        correct = model_corrector(fixer.base_url, "fixer")
        assert correct(trajectory, 2) == "3 * 48 - 17 = 127"
        assert "Step 2 - Calculator" in fixer.requests[0]["messages"][1]["content"]
        assert "Step 3" not in fixer.requests[0]["messages"][1]["content"]
    assert n_before == 4
