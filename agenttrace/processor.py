"""The span processor that stamps every span started inside a run with the run id and a step index."""

from __future__ import annotations

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
