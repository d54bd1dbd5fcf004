"""Self-improvement with attribution feedback - a SIMULATION with scripted agents and injected faults.

A four-agent team (Planner -> Researcher -> Coder -> Writer) solves warehouse-arithmetic tasks. Every agent
makes exactly one model call, ``llm(messages)``, with its instructions (and any lessons) in the system
message. By default the model is *scripted*: it writes the correct output, and then - on the tasks where
that agent has an injected weakness - :mod:`agenttrace.faults` perturbs it (Planner: dropped constraint,
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

Real model: set ``AGENTTRACE_LLM_BASE_URL`` (an OpenAI-compatible ``.../v1``), ``AGENTTRACE_LLM_MODEL`` and
optionally ``AGENTTRACE_LLM_API_KEY``; then every agent calls that model, no fault is injected (the model
makes its own mistakes) and the same loop runs. Run: ``python examples/self_improvement.py``.
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass, field

from agenttrace.faults import perturb_step
from agenttrace.lessons import LESSONS_HEADER, lesson_for, with_lessons
from agenttrace.models import Outcome, Step, Trajectory

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
    lessons: dict[str, list[str]] = field(default_factory=dict)
    retry: bool = False

    def system(self, agent: str) -> str:
        text = with_lessons(INSTRUCTIONS[agent], self.lessons.get(agent, []))
        return f"{text}\n\n{RETRY_NOTE}" if self.retry else text

    def solve(self, task: Task, run_id: str) -> Trajectory:
        steps: list[Step] = []
        transcript = f"Task: {task.text}"
        text = ""
        for agent in AGENTS:
            if agent == "Writer":
                transcript += f"\n\n[code output]\n{_run_code(text)}"
            out = self.llm([{"role": "system", "content": self.system(agent)},
                            {"role": "user", "content": transcript}])
            steps.append(Step(index=len(steps), agent=agent, content=out, input=transcript))
            transcript += f"\n\n[{agent}]\n{out}"
            text = out
        nums = re.findall(r"-?\d+", text)
        answer = nums[-1] if nums else None
        ok = answer == task.expected
        return Trajectory(run_id=run_id, task=task.text, expected=task.expected, answer=answer, steps=steps,
                          outcome=Outcome.SUCCESS if ok else Outcome.FAILURE,
                          failure_reason=None if ok else f"answer {answer} != expected {task.expected}")


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


def live_llm_from_env():
    base = os.environ.get("AGENTTRACE_LLM_BASE_URL")
    if not base:
        return None
    from agenttrace.replay import openai_llm

    return openai_llm(base, os.environ.get("AGENTTRACE_LLM_MODEL", "gpt-4o-mini"),
                      api_key=os.environ.get("AGENTTRACE_LLM_API_KEY"), temperature=0)


def main(n_tasks: int = 30, rounds: int = 3, seed: int = 0, attributor_name: str = "cpu") -> list[dict]:
    from agenttrace.attribution import get_attributor

    attributor = get_attributor(attributor_name)
    llm = live_llm_from_env()
    tasks = make_tasks(n_tasks, seed)
    if llm is not None:
        tasks = [Task(t.id, t.shelves, t.per_shelf, t.shipped, None) for t in tasks]
    results = [run_condition(c, tasks, rounds, attributor=attributor, llm=llm, seed=seed)
               for c in ("attribution", "retry", "none")]
    results[0]["condition"] = f"attr:{attributor_name}"
    if llm is None:  # the upper bound needs the injected faults, so only in the simulation
        oracle = run_condition("attribution", tasks, rounds, attributor=InjectedFaultOracle(tasks), seed=seed)
        oracle["condition"] = "attr:oracle"
        results.insert(1, oracle)
    mode = "live model " + os.environ.get("AGENTTRACE_LLM_MODEL", "") if llm else "SIMULATION (scripted agents)"
    print(f"{mode}: {n_tasks} tasks, {rounds} rounds, attributor {attributor_name}")
    print(f"{'feedback':<12}" + "".join(f"round {i + 1:<4}" for i in range(rounds)) + "attribution acc.")
    for res in results:
        acc = "" if res["attribution_accuracy"] is None else f"{res['attribution_accuracy']:.0%}"
        print(f"{res['condition']:<12}" + "".join(f"{x:<10.0%}" for x in res["rates"]) + acc)
    return results


if __name__ == "__main__":
    main()
