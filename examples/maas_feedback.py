"""MaAS-style operators with agenttrace feedback: a failed task's verdict rewrites the blamed operator's prompt.

MaAS (multi-agent architecture search) is a research codebase, not a package, so this example stands in a
tiny operator pipeline for its sampled workflow: ``Generate`` drafts, ``Programmer`` computes, ``Format``
states the answer. The operators are scripted: ``Programmer`` drops the "minus shipped" constraint unless
its prompt carries a lesson. After a failed task, the attributor's verdict goes through
``LessonReviser(task, attribution) -> revised prompts``, and the next task runs with them.

Run: ``python examples/maas_feedback.py`` (no collector, no model: the cpu attributor runs in-process).
"""

from __future__ import annotations

from agenttrace.adapters.maas import LessonReviser
from agenttrace.attribution import get_attributor
from agenttrace.lessons import LESSONS_HEADER
from agenttrace.models import Outcome, Step, Trajectory

TASK = "3 shelves hold 48 boxes each; 17 boxes are shipped. How many boxes are left?"
EXPECTED = "127"
PROMPTS = {
    "Generate": "Restate the task and list the quantities.",
    "Programmer": "Write and run python that computes the answer.",
    "Format": "State the final number only.",
}


def run_workflow(prompts: dict[str, str], run_id: str) -> Trajectory:
    steps = [Step(index=0, agent="Generate", content="Quantities: shelves = 3, boxes per shelf = 48, shipped = 17.")]
    careful = LESSONS_HEADER in prompts["Programmer"]
    code = "print(3 * 48 - 17)" if careful else "print(3 * 48)"  # the uncareful operator drops a constraint
    value = 127 if careful else 144
    steps.append(Step(index=1, agent="Programmer", content=f"```python\n{code}\n```\nOutput: {value}"))
    steps.append(Step(index=2, agent="Format", content=f"Final answer: {value}"))
    ok = str(value) == EXPECTED
    return Trajectory(run_id=run_id, task=TASK, expected=EXPECTED, answer=str(value), steps=steps,
                      outcome=Outcome.SUCCESS if ok else Outcome.FAILURE,
                      failure_reason=None if ok else f"answer {value} != expected {EXPECTED}")


def main() -> int:
    attributor = get_attributor("cpu")
    runs: dict[str, Trajectory] = {}
    reviser = LessonReviser(PROMPTS, trajectories=runs)
    prompts = dict(PROMPTS)
    for attempt in range(1, 4):
        traj = run_workflow(prompts, f"maas-{attempt}")
        runs[traj.run_id] = traj
        print(f"task {attempt}: answer {traj.answer} -> {traj.outcome.value}")
        if traj.outcome is Outcome.SUCCESS:
            return 0
        verdict = attributor.attribute(traj)
        print(f"  verdict: {verdict.agent} @ step {verdict.step}")
        changed = reviser(TASK, verdict)
        prompts.update(changed)
        for name, prompt in changed.items():
            print(f"  revised prompt of {name}:\n    " + prompt.replace("\n", "\n    "))
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
