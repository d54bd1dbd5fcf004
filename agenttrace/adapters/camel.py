"""CAMEL / OWL ``Workforce``: the lesson goes into the responsible worker's system message for its next task.

Usage::

    from agenttrace.adapters.camel import WorkforceLessons

    lessons = WorkforceLessons(workforce)            # remembers each worker's original instructions
    agenttrace.on_feedback(lessons.on_verdict)       # verdict -> lesson_for -> the blamed worker's system message
    # or, with the lessons the collector keeps:  lessons.load(fetch_lessons(endpoint))

camel-ai is imported lazily and only to build a system message of the agent's own message type; the
adapter itself works on the Workforce's public shape, which is all it relies on:

* ``workforce._children``: the worker nodes (nested ``Workforce`` nodes are walked);
* a ``SingleAgentWorker`` node has ``.worker`` (a ``ChatAgent``), ``.description`` and ``.node_id``;
* a ``ChatAgent`` has ``update_system_message(...)`` (camel-ai >= 0.2.6x) or, in older releases,
  ``_system_message`` / ``_original_system_message`` (a ``BaseMessage`` with ``content``, ``role_name``
  and ``create_new_instance``) and ``init_messages()``.

A verdict's agent is matched to a worker by the agent's ``role_name``, the node id, then the worker
description (exactly, then ignoring case and non-alphanumerics, then by containment).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from agenttrace.lessons import lesson_for, with_lessons
from agenttrace.models import Attribution, Lesson, Trajectory


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", (name or "").lower())


def iter_workers(workforce: Any) -> Iterable[Any]:
    """Every single-agent worker node under ``workforce`` (nested workforces walked)."""
    for child in getattr(workforce, "_children", None) or getattr(workforce, "children", None) or []:
        if hasattr(child, "worker"):
            yield child
        elif hasattr(child, "_children"):
            yield from iter_workers(child)


def _system_message(agent: Any) -> Any:
    return getattr(agent, "_original_system_message", None) or getattr(agent, "_system_message", None) \
        or getattr(agent, "system_message", None)


def _content(message: Any) -> str:
    if message is None:
        return ""
    return message if isinstance(message, str) else str(getattr(message, "content", "") or "")


def worker_names(node: Any) -> list[str]:
    """The names a worker answers to: its agent's role name, its node id, its description."""
    agent = node.worker
    names = [getattr(agent, "role_name", None), getattr(_system_message(agent), "role_name", None),
             getattr(agent, "agent_id", None), getattr(node, "node_id", None), getattr(node, "description", None)]
    return [n for n in names if isinstance(n, str) and n]


def find_worker(workforce: Any, agent_name: str) -> Any | None:
    """The worker node an attributed agent name refers to, or None."""
    workers = list(iter_workers(workforce))
    for match in (lambda n: n == agent_name, lambda n: _norm(n) == _norm(agent_name),
                  lambda n: _norm(agent_name) and (_norm(agent_name) in _norm(n) or _norm(n) in _norm(agent_name))):
        found = [w for w in workers if any(match(n) for n in worker_names(w))]
        if len(found) == 1:
            return found[0]
        if found:
            return found[0]
    return None


def set_instructions(agent: Any, content: str) -> None:
    """Replaces a ChatAgent's system message content, keeping its message type and role."""
    updater = getattr(agent, "update_system_message", None)
    if callable(updater):
        try:
            updater(content, reset_memory=True)
            return
        except TypeError:
            updater(content)
            return
    current = getattr(agent, "_system_message", None)
    if current is not None and hasattr(current, "create_new_instance"):
        new = current.create_new_instance(content)
    elif current is not None and not isinstance(current, str) and hasattr(current, "content"):
        new = _message_like(current, content)
    else:
        new = content
    agent._system_message = new
    if hasattr(agent, "_original_system_message"):
        agent._original_system_message = new
    init = getattr(agent, "init_messages", None)
    if callable(init):
        init()


def _message_like(message: Any, content: str) -> Any:
    try:
        from camel.messages import BaseMessage  # lazy: only when the agent holds a CAMEL message

        if isinstance(message, BaseMessage):
            return message.create_new_instance(content)
    except ImportError:
        pass
    import copy

    new = copy.copy(message)
    new.content = content
    return new


class WorkforceLessons:
    """Keeps lessons per worker and writes them into that worker's instructions, original text kept."""

    def __init__(self, workforce: Any, *, limit: int = 5) -> None:
        self.workforce = workforce
        self.limit = limit
        self.lessons: dict[str, list[Lesson]] = {}
        self._base: dict[int, str] = {}
        self.unmatched: list[Lesson] = []

    def apply(self, lesson: Lesson) -> Any | None:
        """Adds one lesson to its agent's worker; returns the worker node, or None if no worker matches."""
        node = find_worker(self.workforce, lesson.agent)
        if node is None:
            self.unmatched.append(lesson)
            return None
        agent = node.worker
        base = self._base.setdefault(id(agent), _content(_system_message(agent)))
        key = worker_names(node)[0]
        self.lessons.setdefault(key, []).append(lesson)
        set_instructions(agent, with_lessons(base, self.lessons[key], limit=self.limit))
        return node

    def load(self, lessons: Iterable[Lesson]) -> int:
        """Applies stored lessons (e.g. ``fetch_lessons(endpoint)``); returns how many found a worker."""
        return sum(self.apply(lesson) is not None for lesson in lessons)

    def on_verdict(self, verdict: Attribution, trajectory: Trajectory | None = None) -> Any | None:
        """An ``on_feedback`` callback: the verdict's lesson into the blamed worker."""
        lesson = lesson_for(verdict, trajectory)
        return None if lesson is None else self.apply(lesson)

    def reset(self) -> None:
        """Puts every worker's original instructions back."""
        for node in iter_workers(self.workforce):
            base = self._base.get(id(node.worker))
            if base is not None:
                set_instructions(node.worker, base)
        self.lessons.clear()
