"""Finding the planted turn in the trajectory the collector rebuilt, and the labelled record of a run."""

from __future__ import annotations

from agenttrace.models import ENVIRONMENT, Label, LabelledTrajectory, Step, Trajectory
from agenttrace.suite.plan import Turn


def _matches(turn: Turn, step: Step) -> bool:
    """Same agent, same tool calls, and the turn's text (CrewAI's spans drop the text of a reply that
    delegates)."""
    names = [c.name for c in step.tool_calls]
    said = turn.text.strip() in (step.content or "") or (bool(turn.calls or turn.handoff) and not step.content)
    return step.agent == turn.agent and said and all(call.name in names for call in turn.calls)


def align(turns: tuple[Turn, ...], steps: list[Step]) -> list[int | None]:
    """For each turn, the index of the step that shows it (in order; steps the script did not write are skipped)."""
    found: list[int | None] = []
    j = 0
    for turn in turns:
        k = next((k for k in range(j, len(steps)) if _matches(turn, steps[k])), None)
        found.append(k)
        if k is not None:
            j = k + 1
    return found


def labelled_step(turns: tuple[Turn, ...], label_turn: int, traj: Trajectory) -> int | None:
    return align(turns, traj.steps)[label_turn]


def record(id: str, framework: str, traj: Trajectory, agent: str, step: int, reason: str,
           tags: dict[str, str]) -> LabelledTrajectory:
    """``agent`` is the blamed agent, the user's agent name, or ``ENVIRONMENT``."""
    assert agent == ENVIRONMENT or traj.steps[step].agent == agent, (agent, traj.steps[step].agent)
    return LabelledTrajectory(id=id, subset=framework, trajectory=traj, label=Label(agent=agent, step=step, reason=reason),
                              tags={"framework": framework, **tags})
