"""The manual API: workflows, agent steps, plans, tool calls and LLM calls as GenAI spans, for frameworks without
an integration."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from agenttrace import semconv
from agenttrace.content import messages_attribute, value_attribute

TRACER_NAME = "agenttrace"


def tracer() -> trace.Tracer:
    from agenttrace import __version__

    return trace.get_tracer(TRACER_NAME, __version__)


def set_messages(span: Span, key: str, value: Any, default_role: str) -> None:
    """Puts messages on a span as GenAI JSON, honouring the capture switch and truncation."""
    captured = messages_attribute(value, default_role)
    if captured is None:
        return
    text, truncated = captured
    span.set_attribute(key, text)
    if truncated:
        span.set_attribute(semconv.CONTENT_TRUNCATED, True)


def set_value(span: Span, key: str, value: Any) -> None:
    captured = value_attribute(value)
    if captured is None:
        return
    text, truncated = captured
    span.set_attribute(key, text)
    if truncated:
        span.set_attribute(semconv.CONTENT_TRUNCATED, True)


def record_error(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_attribute(semconv.ERROR_TYPE, type(exc).__qualname__)
    span.set_status(Status(StatusCode.ERROR, str(exc)))


class _Handle:
    def __init__(self, span: Span) -> None:
        self.span = span

    def set_attribute(self, key: str, value: Any) -> None:
        self.span.set_attribute(key, value)


class _Output(_Handle):
    def output(self, content: Any) -> None:
        """What came out: the agent's turn, the plan, the workflow's result (text or messages)."""
        set_messages(self.span, semconv.GEN_AI_OUTPUT_MESSAGES, content, "assistant")


class Workflow(_Output):
    pass


class Plan(_Output):
    pass


class AgentStep(_Output):
    def transfer(self, target: str) -> None:
        """Hands the conversation over to another agent (a handoff or delegation)."""
        self.span.set_attribute(semconv.TRANSFER_TARGET, target)


class ToolCallHandle(_Handle):
    def result(self, value: Any) -> None:
        set_value(self.span, semconv.GEN_AI_TOOL_CALL_RESULT, value)


class LLMCall(_Handle):
    def response(
        self,
        content: Any,
        *,
        model: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        finish_reason: str | None = None,
    ) -> None:
        """The model's answer: a string, or OpenAI-style message(s) with ``tool_calls``."""
        set_messages(self.span, semconv.GEN_AI_OUTPUT_MESSAGES, content, "assistant")
        if model:
            self.span.set_attribute(semconv.GEN_AI_RESPONSE_MODEL, model)
        if input_tokens is not None:
            self.span.set_attribute(semconv.GEN_AI_USAGE_INPUT_TOKENS, input_tokens)
        if output_tokens is not None:
            self.span.set_attribute(semconv.GEN_AI_USAGE_OUTPUT_TOKENS, output_tokens)
        if finish_reason:
            self.span.set_attribute(semconv.GEN_AI_RESPONSE_FINISH_REASONS, [finish_reason])


@contextmanager
def _span(name: str, kind: SpanKind, attributes: dict[str, Any]) -> Iterator[Span]:
    with tracer().start_as_current_span(
        name, kind=kind, attributes={k: v for k, v in attributes.items() if v is not None},
        record_exception=False, set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            record_error(span, exc)
            raise


def workflow_attributes(name: str, framework: str | None = None) -> dict[str, Any]:
    """An ``invoke_workflow`` span's attributes (shared with :func:`agenttrace.genai.start_workflow`)."""
    return {
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_INVOKE_WORKFLOW,
        semconv.GEN_AI_WORKFLOW_NAME: name,
        "agenttrace.framework": framework,
    }


def plan_attributes(agent: str, agent_id: str | None = None) -> dict[str, Any]:
    return {
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_PLAN,
        semconv.GEN_AI_AGENT_NAME: agent,
        semconv.GEN_AI_AGENT_ID: agent_id,
    }


@contextmanager
def workflow(name: str, *, input: Any = None) -> Iterator[Workflow]:
    """A process that coordinates several agents: an ``invoke_workflow {name}`` span their spans nest under.

    ``name`` is the workflow's low-cardinality name (``gen_ai.workflow.name``), e.g. ``"trip-planner"``;
    ``.output(...)`` records its result. It adds no step of its own to the trajectory.
    """
    with _span(f"{semconv.OP_INVOKE_WORKFLOW} {name}", SpanKind.INTERNAL, workflow_attributes(name)) as span:
        if input is not None:
            set_messages(span, semconv.GEN_AI_INPUT_MESSAGES, input, "user")
        yield Workflow(span)


@contextmanager
def plan(agent: str, *, agent_id: str | None = None) -> Iterator[Plan]:
    """``agent`` planning or decomposing its task: a ``plan {agent}`` span.

    The LLM call that drafts the plan nests under it (that call is the agent's step); without one,
    ``.output(plan)`` records the plan itself, and the plan is a step of ``agent``.
    """
    with _span(f"{semconv.OP_PLAN} {agent}", SpanKind.INTERNAL, plan_attributes(agent, agent_id)) as span:
        yield Plan(span)


@contextmanager
def agent_step(
    agent: str, *, input: Any = None, description: str | None = None, agent_id: str | None = None
) -> Iterator[AgentStep]:
    """One turn of ``agent``: an ``invoke_agent`` span; LLM and tool calls inside it nest under it."""
    attrs = {
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_INVOKE_AGENT,
        semconv.GEN_AI_AGENT_NAME: agent,
        semconv.GEN_AI_AGENT_ID: agent_id,
        semconv.GEN_AI_AGENT_DESCRIPTION: description,
    }
    with _span(f"{semconv.OP_INVOKE_AGENT} {agent}", SpanKind.INTERNAL, attrs) as span:
        if input is not None:
            set_messages(span, semconv.GEN_AI_INPUT_MESSAGES, input, "user")
        yield AgentStep(span)


@contextmanager
def tool_call(name: str, arguments: Any = None, *, call_id: str | None = None) -> Iterator[ToolCallHandle]:
    """One tool execution: an ``execute_tool`` span; an escaping exception marks the tool call failed."""
    attrs = {
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_EXECUTE_TOOL,
        semconv.GEN_AI_TOOL_NAME: name,
        semconv.GEN_AI_TOOL_CALL_ID: call_id,
        semconv.GEN_AI_TOOL_TYPE: "function",
    }
    with _span(f"{semconv.OP_EXECUTE_TOOL} {name}", SpanKind.INTERNAL, attrs) as span:
        set_value(span, semconv.GEN_AI_TOOL_CALL_ARGUMENTS, arguments)
        yield ToolCallHandle(span)


@contextmanager
def llm_call(
    model: str, messages: Any = None, *, provider: str = "openai", operation: str = semconv.OP_CHAT
) -> Iterator[LLMCall]:
    """One model call: a ``chat`` span carrying the input messages; call ``.response()`` with the answer."""
    attrs = {
        semconv.GEN_AI_OPERATION_NAME: operation,
        semconv.GEN_AI_PROVIDER_NAME: provider,
        semconv.GEN_AI_REQUEST_MODEL: model,
    }
    with _span(f"{operation} {model}", SpanKind.CLIENT, attrs) as span:
        if messages is not None:
            set_messages(span, semconv.GEN_AI_INPUT_MESSAGES, messages, "user")
        yield LLMCall(span)
