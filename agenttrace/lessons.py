"""Turning a verdict into a lesson for the agent it blames."""

from __future__ import annotations

from agenttrace.attribution.flow import action_text
from agenttrace.models import Attribution, Lesson, Trajectory


def lesson_for(verdict: Attribution, trajectory: Trajectory | None = None) -> Lesson | None:
    """What the blamed agent did wrong, where, and what to do instead (the verdict's advice, or a general rule
    when it has none); None for an undecided verdict or one on the environment (no agent is to learn from a
    service that was down)."""
    if not verdict.blames_an_agent:
        return None
    did = ""
    at = None if trajectory is None else trajectory.position(verdict.step)
    if at is not None:
        own = " ".join(action_text(trajectory.steps[at]).split())[:300]  # not its tool results
        did = f' You wrote: "{own}".' if own else ""
    task = f" on the task {trajectory.task[:200]!r}" if trajectory is not None and trajectory.task else ""
    instead = verdict.advice or ("check every input you rely on against its source and verify your result "
                                 "before handing it on")
    text = (f"In an earlier run{task}, your step {verdict.step} was the decisive error.{did} "
            f"Why: {verdict.reason.strip()} Next time, {instead}.")
    return Lesson(agent=verdict.agent, text=text, run_id=verdict.run_id, step=verdict.step)


LESSONS_HEADER = "Lessons from your earlier runs (apply them in this task):"


def lessons_block(lessons, *, limit: int = 5) -> str:
    """The newest ``limit`` lessons as one instruction block for a system prompt; '' when there are none.

    ``lessons`` holds :class:`Lesson` objects or plain strings.
    """
    texts = [getattr(item, "text", item) for item in lessons][-limit:] if limit else []
    if not texts:
        return ""
    return LESSONS_HEADER + "\n" + "\n".join(f"- {t}" for t in texts)


def with_lessons(instructions: str, lessons, *, limit: int = 5) -> str:
    """``instructions`` followed by the lessons block; an earlier block added by this function is replaced."""
    base = instructions.split("\n\n" + LESSONS_HEADER, 1)[0]
    block = lessons_block(lessons, limit=limit)
    return f"{base}\n\n{block}" if block else base


def fetch_lessons(endpoint: str, agent: str | None = None, *, timeout: float = 10.0) -> list[Lesson]:
    """The lessons a collector keeps (``GET /api/v1/lessons``), optionally for one agent."""
    import httpx

    params = {"agent": agent} if agent is not None else {}
    resp = httpx.get(f"{endpoint.rstrip('/')}/api/v1/lessons", params=params, timeout=timeout)
    resp.raise_for_status()
    return [Lesson.model_validate(item) for item in resp.json()]
