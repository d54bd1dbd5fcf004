"""MaAS (multi-agent architecture search, a research codebase rather than a package): feedback as a callable.

MaAS samples a workflow of *operators* (Generate, ScEnsemble, Programmer, Review, ...) per task, each with
its own prompt. agenttrace's side of the loop is one plain callable::

    reviser(task, attribution) -> {operator name: revised prompt}

which the search loop calls after a failed task; it swaps the returned prompts into its operators before
the next task (``examples/maas_feedback.py`` shows the wiring). :class:`PromptReviser` is the Protocol,
:class:`LessonReviser` the default: it appends the lesson (:func:`agenttrace.lessons.lesson_for`) to the
blamed operator's prompt, keeping the original prompt and at most ``limit`` lessons per operator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from agenttrace.lessons import lesson_for, with_lessons
from agenttrace.models import Attribution, Lesson, Trajectory


@runtime_checkable
class PromptReviser(Protocol):
    def __call__(self, task: Any, attribution: Attribution) -> dict[str, str]:
        """The operators' prompts to use from now on (only those that change)."""
        ...


class LessonReviser:
    """Default reviser: the blamed operator's prompt plus its lessons.

    ``prompts`` maps operator (agent) names to their current prompts. ``trajectories`` (optional) maps a
    run id to its Trajectory, so that a lesson can quote what the operator wrote; ``aliases`` maps names
    the attributor may use (e.g. a step's agent) to operator names.
    """

    def __init__(self, prompts: Mapping[str, str], *, limit: int = 3,
                 trajectories: Callable[[str], Trajectory | None] | Mapping[str, Trajectory] | None = None,
                 aliases: Mapping[str, str] | None = None) -> None:
        self.base = dict(prompts)
        self.prompts = dict(prompts)
        self.limit = limit
        self.aliases = dict(aliases or {})
        self.lessons: dict[str, list[Lesson]] = {}
        self._trajectories = trajectories

    def _trajectory(self, run_id: str) -> Trajectory | None:
        if self._trajectories is None:
            return None
        if callable(self._trajectories):
            return self._trajectories(run_id)
        return self._trajectories.get(run_id)

    def operator_for(self, agent: str) -> str | None:
        if agent in self.base:
            return agent
        if agent in self.aliases:
            return self.aliases[agent]
        low = {name.lower(): name for name in self.base}
        return low.get(agent.lower())

    def __call__(self, task: Any, attribution: Attribution) -> dict[str, str]:
        if not attribution.is_decided:
            return {}
        operator = self.operator_for(attribution.agent)
        if operator is None:
            return {}
        trajectory = self._trajectory(attribution.run_id)
        if trajectory is not None and trajectory.task is None and task is not None:
            trajectory = trajectory.model_copy(update={"task": str(task)})
        lesson = lesson_for(attribution, trajectory)
        lesson = lesson.model_copy(update={"agent": operator})
        self.lessons.setdefault(operator, []).append(lesson)
        self.prompts[operator] = with_lessons(self.base[operator], self.lessons[operator], limit=self.limit)
        return {operator: self.prompts[operator]}
