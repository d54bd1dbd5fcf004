"""Shared by the framework tests: agenttrace on one framework, exporting to the collector and to memory."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agenttrace
from agenttrace.processor import SwitchableProcessor


@pytest.fixture
def memory():
    """The spans of one test, for checking parentage the collector's trajectory does not show."""
    return InMemorySpanExporter()


@pytest.fixture
def instrumented(collector, memory):
    """``instrumented("crewai")`` -> the handle of agenttrace on that framework only, exporting to the
    session's collector and to ``memory`` (or ``exporter=``); undone after the test."""
    tees: list[SwitchableProcessor] = []

    def start(framework: str, *, exporter: InMemorySpanExporter | None = None):
        handle = agenttrace.instrument(endpoint=collector.endpoint, service_name=f"{framework}-tests",
                                       frameworks=[framework])
        assert framework in handle.integrations, handle.skipped
        tee = SwitchableProcessor(SimpleSpanProcessor(exporter or memory))
        handle.tracer_provider.add_span_processor(tee)
        tees.append(tee)
        return handle

    yield start
    for tee in tees:
        tee.enabled = False  # detached, not shut down: a module-level exporter serves the next test
    agenttrace.uninstrument()


@pytest.fixture
def owner(memory):
    """``owner(span)`` -> the ``gen_ai.agent.name`` of the span's nearest ``invoke_agent`` ancestor in ``memory``."""

    def find(span):
        spans = {s.context.span_id: s for s in memory.get_finished_spans()}
        while span.parent is not None and span.parent.span_id in spans:
            span = spans[span.parent.span_id]
            if span.attributes.get("gen_ai.operation.name") == "invoke_agent":
                return span.attributes["gen_ai.agent.name"]
        return None

    return find
