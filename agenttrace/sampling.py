"""Tail sampling that never loses a failed run: ``FailureKeepingSampler``.

Head samplers decide when a trace starts, before anyone knows whether the run will fail, so at 1% they
drop 99% of failures too. This span processor decides when a run is over instead. It holds the ended
spans of each trace in memory until the run's root span ends (the ``agenttrace.run`` span, or the first
span of the trace in this process: one without a parent or with a remote one), then hands the whole
group to the export processor or drops it:

- kept, always: any span of the group has an error status, or a run span of the group did not end as
  ``success`` (``run.fail()``, an exception, or a run whose answer the collector judges against
  ``expected``: this process cannot know that outcome, so it keeps the run);
- kept at ``sample_rate`` otherwise, decided by the trace id as OpenTelemetry's ``TraceIdRatioBased``
  does, so every process that takes part in a trace samples it alike.

Spans of a kept trace that end after the decision go straight through. Memory is bounded by
``max_buffered_spans``: past it, the trace buffered longest is exported as if kept (memory pressure
costs sampling, never a failure), counted in ``overflow_traces``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

from agenttrace import semconv
from agenttrace.logs import get_logger
from agenttrace.models import Outcome

log = get_logger("agenttrace.sampling")
_TRACE_ID_LIMIT = (1 << 64) - 1
KEPT_TRACES_REMEMBERED = 10_000  # kept trace ids whose later spans pass straight through


def sampled_by_trace_id(trace_id: int, rate: float) -> bool:
    """OpenTelemetry's ``TraceIdRatioBased`` rule: the low 64 bits of the trace id below ``rate`` of their range."""
    return trace_id & _TRACE_ID_LIMIT < round(rate * (_TRACE_ID_LIMIT + 1))


def _failed(span: ReadableSpan) -> bool:
    if span.status.status_code is StatusCode.ERROR:
        return True
    attrs = span.attributes or {}
    return attrs.get(semconv.SPAN_KIND) == "run" and attrs.get(semconv.RUN_OUTCOME) != Outcome.SUCCESS.value


def _decides(span: ReadableSpan) -> bool:
    """The span whose end closes its group: a run's root, or the first span of the trace in this process."""
    parent = span.parent
    return (span.attributes or {}).get(semconv.SPAN_KIND) == "run" or parent is None or parent.is_remote


class FailureKeepingSampler(SpanProcessor):
    """Wraps the export processor (a ``BatchSpanProcessor``, say): ``FailureKeepingSampler(export, 0.01)``.

    With an SDK ``TracerProvider`` of your own: ``provider.add_span_processor(FailureKeepingSampler(
    BatchSpanProcessor(OTLPSpanExporter(...)), sample_rate=0.01))``; ``agenttrace.instrument(sample_rate=0.01)``
    does that for agenttrace's exporter.
    """

    def __init__(self, export: SpanProcessor, sample_rate: float, *, max_buffered_spans: int = 100_000) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be between 0 and 1, got {sample_rate!r}")
        if max_buffered_spans < 1:
            raise ValueError(f"max_buffered_spans must be at least 1, got {max_buffered_spans!r}")
        self.export = export
        self.sample_rate = sample_rate
        self.max_buffered_spans = max_buffered_spans
        self.kept_traces = 0
        self.dropped_traces = 0
        self.dropped_spans = 0
        self.overflow_traces = 0
        self._buffers: OrderedDict[int, list[ReadableSpan]] = OrderedDict()  # trace id -> ended spans, oldest first
        self._buffered = 0
        self._kept: OrderedDict[int, None] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def buffered_spans(self) -> int:
        return self._buffered

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.export.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        trace_id = span.context.trace_id
        with self._lock:
            if trace_id in self._kept:
                out = [span]
            else:
                self._buffers.setdefault(trace_id, []).append(span)
                self._buffered += 1
                out = self._decide(trace_id) if _decides(span) else []
                out += self._overflow()
        for ended in out:
            self.export.on_end(ended)

    def _decide(self, trace_id: int) -> list[ReadableSpan]:
        group = self._take(trace_id)
        if any(map(_failed, group)) or sampled_by_trace_id(trace_id, self.sample_rate):
            self._keep(trace_id)
            return group
        self.dropped_traces += 1
        self.dropped_spans += len(group)
        return []

    def _overflow(self) -> list[ReadableSpan]:
        out: list[ReadableSpan] = []
        while self._buffered > self.max_buffered_spans:
            trace_id = next(iter(self._buffers))
            out += self._take(trace_id)
            self._keep(trace_id)
            self.overflow_traces += 1
            log.warning("sampling.buffer_full", max_buffered_spans=self.max_buffered_spans,
                        exported_unsampled=f"{trace_id:032x}")
        return out

    def _take(self, trace_id: int) -> list[ReadableSpan]:
        group = self._buffers.pop(trace_id)
        self._buffered -= len(group)
        return group

    def _keep(self, trace_id: int) -> None:
        self.kept_traces += 1
        self._kept[trace_id] = None
        if len(self._kept) > KEPT_TRACES_REMEMBERED:
            self._kept.popitem(last=False)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flushes what was kept; runs still open stay buffered until they end."""
        return self.export.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Exports the spans of runs still open (their outcome is unknown, so they are kept), then shuts down."""
        with self._lock:
            pending = [span for trace_id in list(self._buffers) for span in self._take(trace_id)]
        for span in pending:
            self.export.on_end(span)
        self.export.shutdown()
