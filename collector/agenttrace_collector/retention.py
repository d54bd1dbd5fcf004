"""Retention: data older than ``--retention`` (``30d``, ``12h``, ``90m``, ``45s``) is deleted in the background.

A thread deletes in small batches (``store.delete_older_than``), one short
transaction each with a pause between them, so ingest and assembly keep their
turns at the writer; it sleeps while nothing old is left. Age is a trace's last
span for traces, spans and runs (with their verdicts, jobs, reviews and
lessons), and the creation time for verdicts, jobs, reviews and lessons on
their own. SQLite reuses
the freed pages; the file does not shrink (``VACUUM`` does that, offline).
"""

from __future__ import annotations

import re
import threading
import time

from agenttrace.logs import get_logger
from agenttrace_collector.store import SqlStore

log = get_logger("agenttrace.collector.retention")

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in ``30d``, ``12h``, ``90m`` or ``45s``; ValueError with a message for anything else."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text or "")
    if not match or float(match[1]) <= 0:
        raise ValueError(f"{text!r} is not a duration: a positive number and a unit, s, m, h or d (e.g. 30d, 12h)")
    return float(match[1]) * UNITS[match[2]]


class Retention:
    def __init__(self, store: SqlStore, keep_s: float, *, batch: int = 100, pause_s: float = 0.05) -> None:
        self.store = store
        self.keep_s = keep_s
        self.batch = batch
        self.pause_s = pause_s
        self.check_every_s = min(300.0, max(1.0, keep_s / 10))  # how often to look for old data
        self.deleted = 0  # rows counted by the batches since start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agenttrace-retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def sweep(self) -> int:
        """Deletes everything older than the retention period, batch by batch; returns the rows counted."""
        cutoff, total = time.time() - self.keep_s, 0
        while not self._stop.is_set():
            n = self.store.delete_older_than(cutoff, self.batch)
            if not n:
                break
            total += n
            self._stop.wait(self.pause_s)
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                n = self.sweep()
            except Exception as exc:  # the store is unavailable: try again at the next check
                log.warning("retention.failed", error=f"{type(exc).__name__}: {exc}")
            else:
                if n:
                    self.deleted += n
                    log.info("retention.deleted", rows=n, older_than_s=self.keep_s)
            self._stop.wait(self.check_every_s)
