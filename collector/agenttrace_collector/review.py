"""A person's review of a failed run's verdict: confirmed as right, or corrected to another step.

A correction names the step and its agent, or the environment (:data:`ENVIRONMENT`): the step whose tool call
a service failed, no agent's fault. A reviewed run is labelled data (``GET /api/v1/reviewed``, ``agenttrace eval
--collector``, ``agenttrace export``). A correction also replaces the lessons the wrong verdict taught: with one
about the right step, or with none when the environment is to blame.
"""

from __future__ import annotations

import time

from fastapi import HTTPException

from agenttrace.lessons import lesson_for
from agenttrace.models import ENVIRONMENT, Attribution, Lesson, Outcome, Trajectory


def judged(traj: Trajectory, verdict: Attribution | None, body, reviewer: str) -> tuple[dict, Lesson | None]:
    """The review row for ``body`` (a ``ReviewIn``) and, for a correction, the lesson that replaces the old one.

    400 for a run that did not fail, a confirmation without a decided verdict, a step the run does not have,
    or an agent that is neither the step's nor the environment.
    """
    if traj.outcome is not Outcome.FAILURE:
        raise HTTPException(400, f"run {traj.run_id} did not fail ({traj.outcome.value}): only failures are reviewed")
    if body.step is None:
        if verdict is None or not verdict.is_decided:
            raise HTTPException(400, "the run has no decided verdict to confirm; give the step of the decisive error")
        if body.agent is not None and body.agent != verdict.agent:
            raise HTTPException(400, f"the verdict blames {verdict.agent!r}, not {body.agent!r}; give the step to "
                                     "correct it")
        agent, step = verdict.agent, verdict.step
    else:
        at = traj.position(body.step)
        if at is None:
            known = f"steps {traj.steps[0].index} to {traj.steps[-1].index}" if traj.steps else "no steps"
            raise HTTPException(400, f"run {traj.run_id} has {known}, not {body.step}")
        agent, step = traj.steps[at].agent, body.step
        if body.agent == ENVIRONMENT:
            agent = ENVIRONMENT
        elif body.agent is not None and body.agent != agent:
            raise HTTPException(400, f"step {step} is {agent!r}'s, not {body.agent!r}'s (or give {ENVIRONMENT!r} "
                                     "when a service failed the step's tool call)")
    confirmed = verdict is not None and (verdict.agent, verdict.step) == (agent, step)
    review = {"run_id": traj.run_id, "service": traj.service, "verdict_seq": verdict.seq if verdict else None,
              "agent": agent, "step": step, "confirmed": confirmed, "note": body.note, "reviewer": reviewer,
              "created_at": time.time()}
    lesson = None if confirmed else lesson_for(Attribution(
        run_id=traj.run_id, agent=agent, step=step, attributor=f"review:{reviewer}",
        reason=body.note or f"A reviewer found the decisive error at step {step}."), traj)
    return review, lesson
