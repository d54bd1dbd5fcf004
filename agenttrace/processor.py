"""Span processors: stamping every span of a run with the run id and a step index; exporting a run when it ends."""

from __future__ import annotations

import threading

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from agenttrace import semconv
from agenttrace.context import current_run


class RunStampingProcessor(SpanProcessor):
    """Adds ``agenttrace.run.id`` and ``agenttrace.step.index`` to spans, whoever created them.

    Upstream instrumentors and framework-native tracing create spans agenttrace
    never sees being built; stamping them at start gives every span of a run the
    same overlay, in the order the spans began.
    """

    def __init__(self) -> None:
        self.enabled = True

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if not self.enabled:
            return
        run = current_run()
        if run is None or span.attributes.get(semconv.SPAN_KIND) == "run":
            return
        span.set_attribute(semconv.RUN_ID, run.run_id)
        span.set_attribute(semconv.STEP_INDEX, run.next_step())

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        self.enabled = False

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class SwitchableProcessor(SpanProcessor):
    """Wraps a processor so that ``uninstrument()`` can detach it from a provider it cannot remove from."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner
        self.enabled = True

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self.enabled:
            self.inner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if self.enabled:
            self.inner.on_end(span)

    def shutdown(self) -> None:
        if self.enabled:
            self.enabled = False
            self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis) if self.enabled else True


class ExportOnRunEnd(SpanProcessor):
    """Has the export processor send its queue as soon as a run's root span ends, not at its next tick.

    The verdict on a failed run can only start once the collector has the run, so this takes the batch
    exporter's delay (up to 5 s) out of the time from a run's end to its feedback. The export runs on a
    thread of its own: the app never waits for it, and run ends that come together share one export.
    """

    def __init__(self, export: SpanProcessor, timeout_millis: int = 10_000) -> None:
        self.export = export
        self.timeout_millis = timeout_millis
        self._due = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if span.attributes.get(semconv.SPAN_KIND) != "run" or self._closed:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="agenttrace-run-export", daemon=True)
                self._thread.start()
        self._due.set()

    def _run(self) -> None:
        while True:
            self._due.wait()
            if self._closed:
                return
            self._due.clear()
            self.export.force_flush(self.timeout_millis)

    def shutdown(self) -> None:
        self._closed = True
        self._due.set()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
