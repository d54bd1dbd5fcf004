"""Turning a verdict into a lesson for the agent it blames."""

from __future__ import annotations

from agenttrace.models import Attribution, Lesson, Trajectory


def lesson_for(verdict: Attribution, trajectory: Trajectory | None = None) -> Lesson | None:
    """What the blamed agent did wrong, where, and what to do instead; None for an undecided verdict."""
    if not verdict.is_decided:
        return None
    did = ""
    if trajectory is not None and 0 <= verdict.step < len(trajectory.steps):
        did = f' You wrote: "{trajectory.steps[verdict.step].render()[:300]}".'
    task = f" on the task {trajectory.task[:200]!r}" if trajectory is not None and trajectory.task else ""
    text = (f"In an earlier run{task}, your step {verdict.step} was the decisive error.{did} "
            f"Why: {verdict.reason.strip()} Next time, check every input you rely on against its source "
            f"and verify your result before handing it on.")
    return Lesson(agent=verdict.agent, text=text, run_id=verdict.run_id, step=verdict.step)
