"""Self-improvement with attribution feedback - a SIMULATION with scripted agents and injected faults.

A four-agent team (Planner -> Researcher -> Coder -> Writer) solves warehouse-arithmetic tasks. Every agent
makes exactly one model call, ``llm(messages)``, with its instructions (and any lessons) in the system
message. By default the model is *scripted*: it writes the correct output, and then - on the tasks where
that agent has an injected weakness - :mod:`agenttrace.data.faults` perturbs it (Planner: dropped constraint,
Researcher: wrong number, Coder: off-by-one / wrong return value in its code, Writer: wrong number). A
scripted agent resists its weakness with probability ``P_FIX_LESSON`` when its system message holds a
lesson, and ``P_FIX_RETRY`` when it only holds the generic "try again" note. These probabilities are
assumptions of the simulation, not measurements: what the simulation measures is how often the feedback
reaches the agent that actually needs it, i.e. the attributor's accuracy inside the loop.

Three conditions, ``rounds`` rounds each over the same tasks (lessons persist across tasks and rounds):

* ``attribution``: each failed run is attributed (any Attributor; the cpu one by default) and
  :func:`agenttrace.lessons.lesson_for` gives the blamed agent a lesson;
* ``retry``: each failed run puts a generic "the last run failed, try again" note into every agent;
* ``none``: no feedback.

Two modes. ``--mode collector`` (the default) runs every condition through the product path: each run is
traced with agenttrace's SDK and exported to a real collector (a child process on loopback, SQLite in a temp
dir, the ``--attributor`` attributor), which judges the answer and attributes the failed runs; the verdicts
come back through ``agenttrace.on_feedback`` and, in the ``attribution`` condition, the agents fetch the
lessons the collector stored (``GET /api/v1/lessons``) before each task (about 0.4 s a run on 2 cores:
~100 s for the default 30 tasks x 3 rounds x 3 conditions). ``--mode inprocess`` calls the attributor
directly and builds the lessons itself (under a second; ``bench/self_improvement.py`` uses it).
``attr:oracle`` runs in process in both modes.

Real model: set ``AGENTTRACE_LLM_BASE_URL`` (an OpenAI-compatible ``.../v1``), ``AGENTTRACE_LLM_MODEL`` and
optionally ``AGENTTRACE_LLM_API_KEY``; then every agent calls that model, no fault is injected (the model
makes its own mistakes) and the same loop runs. Run: ``python examples/self_improvement.py [--mode inprocess]
[--tasks 30] [--rounds 3] [--seed 0] [--attributor cpu]``.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

import agenttrace
from agenttrace.data.faults import perturb_step
from agenttrace.lessons import LESSONS_HEADER, fetch_lessons, lesson_for, with_lessons
from agenttrace.models import Attribution, Outcome, Step, Trajectory

AGENTS = ("Planner", "Researcher", "Coder", "Writer")
INSTRUCTIONS = {
    "Planner": "You are Planner. Write a numbered plan for the team.",
    "Researcher": "You are Researcher. Extract every quantity of the task as 'name = value'.",
    "Coder": "You are Coder. Follow the plan: write a python function solve() in a ```python block that "
             "returns the answer, using the Researcher's values.",
    "Writer": "You are Writer. State the final number from the code's output.",
}
WEAKNESS = {"Planner": "dropped_constraint", "Researcher": "wrong_number", "Coder": ("off_by_one", "wrong_return"),
            "Writer": "wrong_number"}
RETRY_NOTE = "Note: the team's last run failed. Try again, more carefully."
P_FIX_LESSON = 0.85
P_FIX_RETRY = 0.15


@dataclass
class Task:
    id: int
    shelves: int
    per_shelf: int
    shipped: int
    faulty: str | None  # the agent with an injected weakness on this task

    @property
    def text(self) -> str:
        return (f"A warehouse has {self.shelves} shelves holding {self.per_shelf} boxes each. "
                f"{self.shipped} boxes are shipped out today. How many boxes are left?")

    @property
    def expected(self) -> str:
        return str(self.shelves * self.per_shelf - self.shipped)


def make_tasks(n: int, seed: int = 0, fault_rate: float = 0.8) -> list[Task]:
    rng = random.Random(seed)
    return [Task(i, rng.randint(2, 9), rng.randint(11, 60), rng.randint(1, 10),
                 rng.choice(AGENTS) if rng.random() < fault_rate else None) for i in range(n)]


# ---- the scripted model ----------------------------------------------------------------------------
def correct_output(agent: str, user: str) -> str:
    if agent == "Planner":
        return ("1. Researcher: extract the number of shelves, boxes per shelf and boxes shipped.\n"
                "2. Coder: multiply shelves by boxes per shelf. Then you must subtract the boxes shipped.\n"
                "3. Writer: state the number.")
    if agent == "Researcher":
        shelves, per, shipped = re.findall(r"\d+", user.split("\n")[0])[:3]
        return f"shelves = {shelves}\nboxes per shelf = {per}\nboxes shipped = {shipped}"
    if agent == "Coder":
        vals = dict(re.findall(r"^(shelves|boxes per shelf|boxes shipped) = (-?\d+)$", user, re.MULTILINE))
        subtract = "subtract" in user
        body = (f"def solve():\n    shelves = {vals['shelves']}\n    per_shelf = {vals['boxes per shelf']}\n"
                f"    shipped = {vals['boxes shipped']}\n"
                f"    return shelves * per_shelf{' - shipped' if subtract else ''}\n")
        return f"```python\n{body}```"
    if agent == "Writer":
        last = re.findall(r"-?\d+", user.rsplit("[code output]", 1)[-1])[-1]
        return f"The warehouse has {last} boxes left."
    raise ValueError(agent)


class ScriptedModel:
    """The simulation's model: correct output, then the task's injected weakness unless the agent resists."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.task: Task | None = None
        self.round = 0

    def __call__(self, messages: list[dict]) -> str:
        system, user = messages[0]["content"], messages[1]["content"]
        agent = system.split(".")[0].removeprefix("You are ").strip()
        out = correct_output(agent, user)
        if self.task is None or self.task.faulty != agent:
            return out
        rng = random.Random(f"{self.seed}/{self.task.id}/{self.round}/{agent}")
        p_fix = P_FIX_LESSON if LESSONS_HEADER in system else P_FIX_RETRY if RETRY_NOTE in system else 0.0
        if rng.random() < p_fix:
            return out
        kinds = WEAKNESS[agent] if isinstance(WEAKNESS[agent], tuple) else (WEAKNESS[agent],)
        perturbed = perturb_step(Step(index=0, agent=agent, content=out), rng.choice(kinds), rng)
        return perturbed[0].content if perturbed else out


# ---- the team --------------------------------------------------------------------------------------
@dataclass
class Team:
    llm: object
    lessons: dict[str, list] = field(default_factory=dict)  # lesson texts, or Lesson objects from a collector
    retry: bool = False
    applied: dict[str, set[str]] = field(default_factory=dict)  # agent -> run ids of the lessons it was shown

    def system(self, agent: str) -> str:
        lessons = self.lessons.get(agent, [])
        shown = lessons[-5:]  # with_lessons keeps the newest five
        self.applied.setdefault(agent, set()).update(l.run_id for l in shown if getattr(l, "run_id", None))
        text = with_lessons(INSTRUCTIONS[agent], lessons)
        return f"{text}\n\n{RETRY_NOTE}" if self.retry else text

    def solve(self, task: Task, run_id: str, *, traced: bool = False) -> Trajectory:
        """One run; ``traced`` makes it an ``agenttrace.run`` with an agent step and an LLM call per agent."""
        steps: list[Step] = []
        transcript = f"Task: {task.text}"
        text = ""
        with _maybe(traced, lambda: agenttrace.run("warehouse-count", task=task.text, expected=task.expected,
                                                   run_id=run_id)) as run:
            for i, agent in enumerate(AGENTS):
                if agent == "Writer":
                    transcript += f"\n\n[code output]\n{_run_code(text)}"
                messages = [{"role": "system", "content": self.system(agent)}, {"role": "user", "content": transcript}]
                with _maybe(traced, lambda: agenttrace.agent_step(agent, input=transcript)) as step:
                    with _maybe(traced, lambda: agenttrace.llm_call("scripted" if isinstance(self.llm, ScriptedModel)
                                                                    else "model", messages)) as call:
                        out = self.llm(messages)
                        if call is not None:
                            call.response(out)
                    if step is not None:
                        step.output(out)
                        if i + 1 < len(AGENTS):
                            step.transfer(AGENTS[i + 1])
                steps.append(Step(index=len(steps), agent=agent, content=out, input=transcript))
                transcript += f"\n\n[{agent}]\n{out}"
                text = out
            nums = re.findall(r"-?\d+", text)
            answer = nums[-1] if nums else None
            if run is not None:
                run.finish(answer)  # with ``expected`` set, the collector judges the answer
        ok = answer == task.expected
        return Trajectory(run_id=run_id, task=task.text, expected=task.expected, answer=answer, steps=steps,
                          outcome=Outcome.SUCCESS if ok else Outcome.FAILURE,
                          failure_reason=None if ok else f"answer {answer} != expected {task.expected}")


@contextlib.contextmanager
def _maybe(enabled: bool, make):
    """``make()`` as a context manager when ``enabled``, else a no-op that yields None."""
    if not enabled:
        yield None
        return
    with make() as value:
        yield value


def _run_code(coder_output: str) -> str:
    m = re.search(r"```python\n(.*?)```", coder_output, re.DOTALL)
    if not m:
        return "Output: error (no code block)"
    ns: dict = {}
    try:
        exec(m.group(1), ns)  # noqa: S102 - the simulation's own scripted code (or the model's, in real mode)
        return f"Output: {ns['solve']()}"
    except Exception as exc:
        return f"Output: error ({type(exc).__name__}: {exc})"


class InjectedFaultOracle:
    """Upper bound, not an attributor: blames the agent whose weakness was injected (its step in the run)."""

    name = "oracle"

    def __init__(self, tasks: list[Task]) -> None:
        self.by_text = {t.text: t for t in tasks}

    def attribute(self, trajectory: Trajectory):
        from agenttrace.models import Attribution

        task = self.by_text.get(trajectory.task)
        agent = task.faulty if task else None
        step = AGENTS.index(agent) if agent else None
        return Attribution(run_id=trajectory.run_id, agent=agent, step=step, attributor=self.name,
                           reason="the injected fault was in this step.")


def run_condition(condition: str, tasks: list[Task], rounds: int = 3, *, attributor=None, llm=None,
                  seed: int = 0) -> dict:
    """Success rate per round, and how often the attribution blamed the agent with the injected weakness."""
    scripted = llm is None
    model = llm or ScriptedModel(seed)
    team = Team(model)
    rates, blamed_right, attributed = [], 0, 0
    for r in range(rounds):
        ok = 0
        for task in tasks:
            if scripted:
                model.task, model.round = task, r
            traj = team.solve(task, f"{condition}-{r}-{task.id}")
            if traj.outcome is Outcome.SUCCESS:
                ok += 1
                continue
            if condition == "attribution":
                verdict = attributor.attribute(traj)
                attributed += 1
                blamed_right += verdict.agent == task.faulty
                lesson = lesson_for(verdict, traj)
                if lesson is not None:
                    team.lessons.setdefault(lesson.agent, []).append(lesson.text)
            elif condition == "retry":
                team.retry = True
        rates.append(ok / len(tasks))
    return {"condition": condition, "rates": rates,
            "attribution_accuracy": blamed_right / attributed if attributed else None,
            "lessons": {a: len(v) for a, v in team.lessons.items()}}


# ---- through the collector -------------------------------------------------------------------------
class VerdictInbox:
    """The verdicts ``agenttrace.on_feedback`` delivers, waited for by run id."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._got: dict[str, Attribution] = {}

    def __call__(self, verdict: Attribution) -> None:
        with self._cond:
            self._got[verdict.run_id] = verdict
            self._cond.notify_all()

    def wait(self, run_id: str, timeout: float = 30.0) -> Attribution | None:
        with self._cond:
            self._cond.wait_for(lambda: run_id in self._got, timeout)
            return self._got.get(run_id)


def judged_run(endpoint: str, run_id: str, timeout: float = 30.0) -> Trajectory:
    """The run as the collector rebuilt and judged it (``GET /api/v1/runs/{id}``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = httpx.get(f"{endpoint}/api/v1/runs/{run_id}", timeout=5)
        if resp.status_code == 200:
            return Trajectory.model_validate(resp.json()["trajectory"])
        time.sleep(0.05)
    raise TimeoutError(f"the collector at {endpoint} did not assemble run {run_id} within {timeout}s")


def run_condition_collector(condition: str, tasks: list[Task], rounds: int = 3, *, endpoint: str,
                            inbox: VerdictInbox, llm=None, seed: int = 0, verdict_timeout: float = 30.0) -> dict:
    """:func:`run_condition` through the product path.

    Each run is traced with agenttrace (``agenttrace.run``, an ``agent_step`` and an ``llm_call`` per agent)
    and exported to the collector at ``endpoint``, which judges it against the expected answer and attributes
    it when it failed. Verdicts come back through ``agenttrace.on_feedback`` (into ``inbox``). In the
    ``attribution`` condition the team fetches the collector's lessons (``GET /api/v1/lessons``) before every
    task and puts each agent's into its system message; ``retry`` sets the "try again" note once a verdict on a
    failed run arrives; ``none`` ignores the verdicts. agenttrace must be instrumented to ``endpoint``.
    """
    scripted = llm is None
    model = llm or ScriptedModel(seed)
    team = Team(model)
    if condition == "attribution":  # lessons left by an earlier condition on this collector would leak in
        httpx.delete(f"{endpoint}/api/v1/lessons", timeout=10).raise_for_status()
    rates: list[float] = []
    failed: list[str] = []
    verdicts: list[Attribution] = []
    missing: list[str] = []
    blamed_right = 0
    for r in range(rounds):
        ok = 0
        for task in tasks:
            if condition == "attribution":
                team.lessons = {}
                for lesson in fetch_lessons(endpoint):
                    team.lessons.setdefault(lesson.agent, []).append(lesson)
            if scripted:
                model.task, model.round = task, r
            run_id = f"{condition}-{r}-{task.id}-{uuid.uuid4().hex[:8]}"
            team.solve(task, run_id, traced=True)
            agenttrace.setup.active().force_flush()
            if judged_run(endpoint, run_id).outcome is not Outcome.FAILURE:
                ok += 1
                continue
            failed.append(run_id)
            verdict = inbox.wait(run_id, verdict_timeout)
            if verdict is None:
                missing.append(run_id)
                continue
            verdicts.append(verdict)
            blamed_right += verdict.agent == task.faulty
            if condition == "retry":
                team.retry = True
        rates.append(ok / len(tasks))
    lessons: dict[str, int] = {}
    if condition == "attribution":
        for lesson in fetch_lessons(endpoint):
            lessons[lesson.agent] = lessons.get(lesson.agent, 0) + 1
    return {"condition": condition, "rates": rates,
            "attribution_accuracy": blamed_right / len(verdicts) if verdicts and condition == "attribution" else None,
            "lessons": lessons, "failed_runs": failed, "missing_verdicts": missing,
            "verdicts": [v.model_dump(mode="json") for v in verdicts],
            "lessons_applied": {a: sorted(ids) for a, ids in team.applied.items() if ids}}


def live_llm_from_env():
    base = os.environ.get("AGENTTRACE_LLM_BASE_URL")
    if not base:
        return None
    from agenttrace.data.replay import openai_llm

    return openai_llm(base, os.environ.get("AGENTTRACE_LLM_MODEL", "gpt-4o-mini"),
                      api_key=os.environ.get("AGENTTRACE_LLM_API_KEY"), temperature=0)


def main(n_tasks: int = 30, rounds: int = 3, seed: int = 0, attributor_name: str = "cpu",
         mode: str = "collector") -> list[dict]:
    """Prints and returns the per-round success rates of each condition.

    ``mode="collector"`` (the default) runs every condition through a real collector child process (the
    product path, see :func:`run_condition_collector`); ``mode="inprocess"`` calls the attributor directly,
    which is much faster (the benchmark uses it). ``attr:oracle`` always runs in process: it needs the
    injected faults, which no collector-side attributor knows.
    """
    llm = live_llm_from_env()
    tasks = make_tasks(n_tasks, seed)
    if llm is not None:
        tasks = [Task(t.id, t.shelves, t.per_shelf, t.shipped, None) for t in tasks]
    if mode == "collector":
        results = _through_collector(tasks, rounds, seed=seed, attributor_name=attributor_name, llm=llm)
    elif mode == "inprocess":
        from agenttrace.attribution import get_attributor

        attributor = get_attributor(attributor_name)
        results = [run_condition(c, tasks, rounds, attributor=attributor, llm=llm, seed=seed)
                   for c in ("attribution", "retry", "none")]
    else:
        raise ValueError(f"mode is 'collector' or 'inprocess', not {mode!r}")
    results[0]["condition"] = f"attr:{attributor_name}"
    if llm is None:  # the upper bound needs the injected faults, so only in the simulation
        oracle = run_condition("attribution", tasks, rounds, attributor=InjectedFaultOracle(tasks), seed=seed)
        oracle["condition"] = "attr:oracle"
        results.insert(1, oracle)
    what = "live model " + os.environ.get("AGENTTRACE_LLM_MODEL", "") if llm else "SIMULATION (scripted agents)"
    where = ("through a collector (traced runs, on_feedback verdicts, stored lessons; attr:oracle in process)"
             if mode == "collector" else "in process")
    print(f"{what}, {where}: {n_tasks} tasks, {rounds} rounds, attributor {attributor_name}")
    print(f"{'feedback':<12}" + "".join(f"round {i + 1:<4}" for i in range(rounds)) + "attribution acc.")
    for res in results:
        acc = "" if res["attribution_accuracy"] is None else f"{res['attribution_accuracy']:.0%}"
        print(f"{res['condition']:<12}" + "".join(f"{x:<10.0%}" for x in res["rates"]) + acc)
    if mode == "collector":
        for res in results:
            if "failed_runs" in res:
                print(f"{res['condition']}: {len(res['failed_runs'])} failed runs, {len(res['verdicts'])} verdicts "
                      f"delivered" + (f", lessons stored per agent {res['lessons']}" if res["lessons"] else ""))
    return results


def _through_collector(tasks: list[Task], rounds: int, *, seed: int, attributor_name: str, llm) -> list[dict]:
    from agenttrace.local_collector import LocalCollector

    with (tempfile.TemporaryDirectory(prefix="agenttrace-self-improvement-") as workdir,
          LocalCollector(os.path.join(workdir, "agenttrace.db"), attributor=attributor_name,
                         extra_args=("--settle", "0.2"), log_file=Path(workdir) / "collector.log") as collector):
        agenttrace.instrument(endpoint=collector.endpoint, service_name="self-improvement", frameworks=[])
        try:
            inbox = VerdictInbox()
            agenttrace.on_feedback(inbox)
            return [run_condition_collector(c, tasks, rounds, endpoint=collector.endpoint, inbox=inbox, llm=llm,
                                            seed=seed) for c in ("attribution", "retry", "none")]
        finally:
            agenttrace.uninstrument()


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("collector", "inprocess"), default="collector",
                    help="collector: every run through a real collector (default); inprocess: the attributor "
                         "called directly (faster).")
    ap.add_argument("--tasks", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--attributor", default="cpu")
    a = ap.parse_args()
    main(a.tasks, a.rounds, a.seed, a.attributor, a.mode)
