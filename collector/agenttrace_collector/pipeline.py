"""After ingest: assemble due traces into trajectories, judge them, queue the failed ones for attribution.

Runs on its own thread, woken by each commit and by a timer. Stages talk in
plain data: spans -> Trajectory -> judged Trajectory. A failed run is saved
with its attribution job in one transaction; the attribution workers
(``workers.py``) take it from there, so assembly never waits for an attributor.
A trace is processed under ``store.claim_trace``, so that of several collectors
on one PostgreSQL database only one assembles it at a time.

A trace whose spans make decoding, assembly or judging raise is quarantined
with its error (``store.quarantine``): logged once, counted, listed by the API
and CLI, retried when new spans arrive or when released (after an upgrade),
and never in the way of other traces. Store errors are not the trace's fault:
they leave it due, and the pipeline tries again on the next tick.

Work per trace is bounded: a trace of ``big_trace_spans`` spans or more is
assembled again at most every ``reassemble_s`` while its spans keep coming (a
long run whose root span came first would otherwise be rebuilt at every
export; small traces cost little and are rebuilt at once), and a trace of more
than ``max_trace_spans`` spans is quarantined with that reason, not assembled.
"""

from __future__ import annotations

import threading
import traceback

from collections.abc import Callable

from agenttrace.logs import get_logger
from agenttrace.models import Outcome, Trajectory
from agenttrace_collector.assemble import assemble, find_run_span
from agenttrace_collector.failure import judge
from agenttrace_collector.spanview import decode
from agenttrace_collector.store import Store
from agenttrace_collector.usage import run_usage

log = get_logger("agenttrace.collector.pipeline")


class Pipeline:
    def __init__(self, store: Store, *, settle_s: float = 0.5, idle_timeout_s: float = 30.0, tick_s: float = 0.25,
                 reassemble_s: float = 0.0, big_trace_spans: int = 1000, max_trace_spans: int = 100_000,
                 on_run: Callable[[Trajectory], None] | None = None) -> None:
        self.store = store
        self.settle_s = settle_s
        self.idle_timeout_s = idle_timeout_s
        self.reassemble_s = reassemble_s
        self.big_trace_spans = big_trace_spans
        self.max_trace_spans = max_trace_spans
        self.tick_s = tick_s
        self.on_run = on_run  # called after each run is saved (its failure's job, if any, queued)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agenttrace-pipeline", daemon=True)
        self.consecutive_failures = 0  # ticks in a row that failed (the store is unreachable, say)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def backlog(self) -> tuple[int, float | None]:
        """(traces due for assembly now, seconds the oldest of them has been due)."""
        return self.store.pipeline_backlog(self.settle_s, self.idle_timeout_s, self.reassemble_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.tick_s)
            self._wake.clear()
            try:
                self.process_due()
            except Exception as exc:
                self.consecutive_failures += 1
                if self.consecutive_failures == 1:
                    log.exception("pipeline.failed")
                elif self.consecutive_failures % 100 == 0:  # once a while, not a traceback per tick
                    log.warning("pipeline.still_failing", ticks=self.consecutive_failures, error=_describe(exc))
            else:
                if self.consecutive_failures:
                    log.info("pipeline.recovered", after_ticks=self.consecutive_failures)
                self.consecutive_failures = 0

    def process_due(self) -> int:
        done = 0
        while not self._stop.is_set():
            claimed = 0
            for trace_id, root_ended, seen in self.store.due_traces(self.settle_s, self.idle_timeout_s,
                                                                          self.reassemble_s):
                with self.store.claim_trace(trace_id) as mine:
                    if not mine:
                        continue  # another collector on this database has it (PostgreSQL)
                    spans = self.process_trace(trace_id, root_ended, seen)
                    if spans is not None:
                        self.store.mark_assembled(trace_id, seen, hold=spans >= self.big_trace_spans)
                    claimed += 1
            if not claimed:  # none due, or all taken by others: wait for the next wake or tick
                return done
            done += claimed
        return done

    def process_trace(self, trace_id: bytes, root_ended: bool, seen: float) -> int | None:
        """Assembles, judges and saves one trace (queueing a failed run for attribution): its span count, or None
        if quarantined."""
        if self.store.trace_span_count(trace_id, self.max_trace_spans + 1) > self.max_trace_spans:
            self._quarantine(trace_id, seen, f"too large: more than {self.max_trace_spans} spans (--max-trace-spans); "
                                             "not assembled", spans=self.max_trace_spans + 1)
            return None
        rows = self.store.trace_spans(trace_id)
        stage = "decode"
        try:
            spans = [decode(data, service) for data, service in rows]
            if not spans:
                return 0
            stage = "assemble"
            trajectory = assemble(spans)
            stage = "judge"
            trajectory = judge(trajectory, find_run_span(spans), spans, root_ended)
        except Exception as exc:  # the trace's own data: set it aside, go on with the others
            self._quarantine(trace_id, seen, f"{stage}: {_describe(exc)}", spans=len(rows))
            return None
        failed = trajectory.outcome is Outcome.FAILURE
        self.store.save_run(trajectory, trace_id, enqueue=failed, usage=run_usage(spans))
        log.info("run.assembled", run_id=trajectory.run_id, steps=len(trajectory.steps),
                 outcome=trajectory.outcome.value, termination=trajectory.termination.value)
        if self.on_run is not None:
            self.on_run(trajectory)
        return len(rows)

    def _quarantine(self, trace_id: bytes, seen: float, error: str, *, spans: int) -> None:
        self.store.quarantine(trace_id, seen, error, hold=spans >= self.big_trace_spans)
        log.warning("trace.quarantined", trace_id=trace_id.hex(), spans=spans, error=error)


def _describe(exc: BaseException) -> str:
    """One line for a log or the quarantine list: the exception and where it was raised (no traceback)."""
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {frame[0].filename.rsplit('/', 1)[-1]}:{frame[0].lineno})" if frame else ""
    return f"{type(exc).__name__}: {str(exc)[:500]}{where}"
