"""Carries contextvars (the OpenTelemetry context and the current run) into threads and thread pools.

Python copies context into asyncio tasks but not into ``threading.Thread`` or
``ThreadPoolExecutor`` work, which is where agent frameworks lose parent/child
links. ``install()`` patches both, once; ``uninstall()`` restores them.
"""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

_lock = threading.Lock()
_originals: dict[str, object] = {}


def _submit(self, fn, /, *args, **kwargs):
    ctx = contextvars.copy_context()
    return _originals["submit"](self, ctx.run, fn, *args, **kwargs)


def _thread_start(self):
    ctx = contextvars.copy_context()
    run = self.run
    self.run = lambda: ctx.run(run)
    return _originals["start"](self)


def install() -> None:
    with _lock:
        if _originals:
            return
        _originals["submit"] = ThreadPoolExecutor.submit
        _originals["start"] = threading.Thread.start
        ThreadPoolExecutor.submit = _submit
        threading.Thread.start = _thread_start


def uninstall() -> None:
    with _lock:
        if not _originals:
            return
        ThreadPoolExecutor.submit = _originals.pop("submit")
        threading.Thread.start = _originals.pop("start")
