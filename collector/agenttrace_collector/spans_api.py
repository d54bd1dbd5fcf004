"""A stored span as the API shows it: tree links, times, status, and what it is - an LLM call with its model,
messages, tokens and cost, a tool call with its arguments and result, an agent turn - plus its attributes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from agenttrace_collector.conventions import Kind, normalize
from agenttrace_collector.spanview import SpanView
from agenttrace_collector.usage import model_of, span_usage

MAX_ATTRIBUTE_CHARS = 4000  # an attribute's text beyond this is cut (the messages are given whole, parsed)


class SpanOut(BaseModel):
    span_id: str
    parent_id: str | None
    name: str
    start: float
    end: float
    status: str = Field(description="ok or error")
    error: str | None
    kind: str = Field(description="run, agent, llm, tool, handoff, plan or other")
    agent: str | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None
    input_messages: list[dict[str, Any]] = Field(default_factory=list, description="GenAI message shape: role, parts")
    output_messages: list[dict[str, Any]] = Field(default_factory=list)
    tool_name: str | None = None
    tool_arguments: Any = None
    tool_result: Any = None
    attributes: dict[str, Any] = Field(description=f"the span's attributes, text cut at {MAX_ATTRIBUTE_CHARS} chars")


def span_out(span: SpanView) -> SpanOut:
    n = normalize(span)
    usage = span_usage(span)
    return SpanOut(
        span_id=span.span_id, parent_id=span.parent_id or None, name=span.name, start=span.start, end=span.end,
        status="error" if span.error else "ok", error=span.error, kind=n.kind.value, agent=n.agent,
        model=model_of(span) if n.kind is Kind.LLM else None,
        input_tokens=usage.input_tokens if usage else None, output_tokens=usage.output_tokens if usage else None,
        cost=usage.cost if usage else None, input_messages=n.input_messages, output_messages=n.output_messages,
        tool_name=n.tool_name, tool_arguments=n.tool_arguments, tool_result=n.tool_result,
        attributes={k: _cut(v) for k, v in span.attrs.items()})


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_CHARS:
        return value[:MAX_ATTRIBUTE_CHARS] + f"… ({len(value) - MAX_ATTRIBUTE_CHARS} more characters)"
    return value
