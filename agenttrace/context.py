"""The current run, kept in a contextvar so it follows asyncio tasks and (once patched) threads."""

from __future__ import annotations

import contextvars
import itertools
import threading
from dataclasses import dataclass, field


@dataclass
class RunState:
    run_id: str
    name: str
    _steps: itertools.count = field(default_factory=itertools.count, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def next_step(self) -> int:
        """A step index unique and increasing within the run, safe across threads."""
        with self._lock:
            return next(self._steps)


_current_run: contextvars.ContextVar[RunState | None] = contextvars.ContextVar("agenttrace_run", default=None)

_started_runs: set[str] = set()
_started_lock = threading.Lock()


def current_run() -> RunState | None:
    return _current_run.get()


def enter_run(state: RunState) -> contextvars.Token:
    with _started_lock:
        _started_runs.add(state.run_id)
    return _current_run.set(state)


def exit_run(token: contextvars.Token) -> None:
    _current_run.reset(token)


def started_here(run_id: str) -> bool:
    """Whether this process opened the run (feedback is delivered for those)."""
    with _started_lock:
        return run_id in _started_runs
