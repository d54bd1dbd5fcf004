"""``agenttrace.run``: the root span of one multi-agent run, ended with its outcome."""

from __future__ import annotations

import functools
import inspect
import uuid
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode

from agenttrace import semconv
from agenttrace import team as teams
from agenttrace.context import RunState, enter_run, exit_run
from agenttrace.models import Outcome
from agenttrace.spans import record_error, set_value, tracer


class Run:
    """A run in progress. Use as ``with agenttrace.run(...) as run:``, ``async with`` or ``@agenttrace.run(...)``.
    ``team`` declares every agent with the tools it can call (:func:`agenttrace.team.teammates`), so a verdict
    can tell a hand-off to the agent with the wrong tool while the one with the right tool never acts."""

    def __init__(self, name: str, *, task: Any = None, expected: Any = None, run_id: str | None = None,
                 team: Any = None) -> None:
        self.name = name
        self.task = task
        self.expected = expected
        self.team = teams.teammates(team) if team is not None else []
        self.run_id = run_id or uuid.uuid4().hex
        self.outcome = Outcome.UNKNOWN
        self.answer: Any = None
        self._span_cm = None
        self._span = None
        self._token = None

    # outcome -----------------------------------------------------------
    def succeed(self, answer: Any = None) -> None:
        """Marks the run successful, with its final answer."""
        self.outcome = Outcome.SUCCESS
        self.finish(answer)

    def fail(self, reason: str, answer: Any = None) -> None:
        """Marks the run failed, with the reason the app knows."""
        self.outcome = Outcome.FAILURE
        if answer is not None:
            self.finish(answer)
        if self._span is not None:
            self._span.set_attribute(semconv.RUN_FAILURE_REASON, reason)

    def finish(self, answer: Any) -> None:
        """Records the final answer without judging it (with ``expected`` set, the collector judges)."""
        self.answer = answer
        if self._span is not None and answer is not None:
            set_value(self._span, semconv.RUN_ANSWER, answer)

    # context manager ---------------------------------------------------
    def __enter__(self) -> Run:
        attrs = {semconv.SPAN_KIND: "run", semconv.RUN_ID: self.run_id, semconv.RUN_NAME: self.name}
        self._span_cm = tracer().start_as_current_span(
            f"{semconv.RUN_SPAN_NAME} {self.name}", kind=SpanKind.INTERNAL, attributes=attrs,
            record_exception=False, set_status_on_exception=False,
        )
        self._span = self._span_cm.__enter__()
        if self.task is not None:
            set_value(self._span, semconv.RUN_TASK, self.task)
        if self.expected is not None:
            set_value(self._span, semconv.RUN_EXPECTED, self.expected)
        if self.team:
            self._span.set_attribute(semconv.RUN_TEAM, teams.encode(self.team))
        self._token = enter_run(RunState(self.run_id, self.name))
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        span = self._span
        if exc is not None:
            self.outcome = Outcome.FAILURE
            record_error(span, exc)
            span.set_attribute(semconv.RUN_FAILURE_REASON, f"{type(exc).__name__}: {exc}")
        elif self.outcome is Outcome.FAILURE:
            span.set_status(Status(StatusCode.ERROR, "run failed"))
        span.set_attribute(semconv.RUN_OUTCOME, self.outcome.value)
        exit_run(self._token)
        self._span_cm.__exit__(None, None, None)
        return False

    async def __aenter__(self) -> Run:
        return self.__enter__()

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        return self.__exit__(exc_type, exc, tb)

    # decorator ---------------------------------------------------------
    def __call__(self, fn):
        """Decorator form: each call of ``fn`` is one run; its return value is the answer."""
        name, task, expected, team = self.name, self.task, self.expected, self.team

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def arun(*args, **kwargs):
                with Run(name, task=task, expected=expected, team=team) as r:
                    result = await fn(*args, **kwargs)
                    _record_return(r, result)
                    return result
            return arun

        @functools.wraps(fn)
        def srun(*args, **kwargs):
            with Run(name, task=task, expected=expected, team=team) as r:
                result = fn(*args, **kwargs)
                _record_return(r, result)
                return result
        return srun


def _record_return(run: Run, result: Any) -> None:
    if run.outcome is Outcome.UNKNOWN and run.expected is None:
        run.succeed(result)
    elif run.answer is None:
        run.finish(result)


def run(name: str, *, task: Any = None, expected: Any = None, run_id: str | None = None, team: Any = None) -> Run:
    """Opens one multi-agent run. See :class:`Run`."""
    return Run(name, task=task, expected=expected, run_id=run_id, team=team)
