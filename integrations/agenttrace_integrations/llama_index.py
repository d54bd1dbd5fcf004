"""LlamaIndex agent workflows (``AgentWorkflow`` with ``FunctionAgent``/``ReActAgent``s and handoffs) as GenAI spans.

Hooked on LlamaIndex's agent API rather than its instrumentation dispatcher or
``openinference-instrumentation-llama-index``: those report workflow steps and
LLM calls but not which agent of a workflow is speaking, and the workflow runs
each step (agent turn, tool call) as its own task, so "current span" parentage
does not link a tool call to the turn that asked for it. Here:

* ``BaseWorkflowAgent.take_step`` (each agent class's) -> ``invoke_agent {agent.name}``;
* ``FunctionAgent._get_response`` / ``_get_streaming_response`` -> ``chat {model}``
  with the input messages and the reply's tool calls as LlamaIndex parsed them;
* ``AgentWorkflow._call_tool`` -> ``execute_tool {tool}``, parented to the turn
  whose reply asked for that call (matched on tool name and arguments within the
  trace) and carrying its call id; ``ToolOutput.is_error`` marks it failed; the
  ``handoff`` tool carries ``agenttrace.transfer.target`` = ``to_agent``.

``ReActAgent``/``CodeActAgent`` turns get agent and tool spans but no chat span
(they call the LLM directly); each turn is one LLM call, so the trajectory's
steps are still one per turn, with the turn's text as content.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from opentelemetry import trace

from agenttrace import genai, semconv
from agenttrace.integration import DidNotEnable, Integration
from agenttrace.spans import llm_call


def _key(name: str, kwargs: Any) -> tuple[str, str, str]:
    ctx = trace.get_current_span().get_span_context()
    trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else ""
    return trace_id, name, json.dumps(kwargs, sort_keys=True, default=str)


class _PendingCalls:
    """Tool calls an agent turn asked for, awaiting execution in another workflow task."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[tuple[str, str, str], list[tuple[str | None, trace.Span]]] = {}

    def add(self, key: tuple[str, str, str], call_id: str | None, turn: trace.Span) -> None:
        with self._lock:
            self._calls.setdefault(key, []).append((call_id, turn))

    def take(self, key: tuple[str, str, str]) -> tuple[str | None, trace.Span | None]:
        with self._lock:
            for k in (key, ("",) + key[1:]):
                queue = self._calls.get(k)
                if queue:
                    found = queue.pop(0)
                    if not queue:
                        del self._calls[k]
                    return found
        return None, None


_pending = _PendingCalls()


def _message(msg: Any) -> dict[str, Any]:
    role = getattr(getattr(msg, "role", None), "value", None) or "user"
    out: dict[str, Any] = {"role": role, "content": getattr(msg, "content", None)}
    kwargs = getattr(msg, "additional_kwargs", None) or {}
    calls = kwargs.get("tool_calls")
    if calls:
        out["tool_calls"] = [_tool_call_dict(c) for c in calls]
    if role == "tool":
        out["tool_call_id"] = kwargs.get("tool_call_id")
    return out


def _tool_call_dict(call: Any) -> dict[str, Any]:
    if not isinstance(call, dict):
        dump = getattr(call, "model_dump", None)
        call = dump() if dump else {}
    fn = call.get("function") or {}
    return {"id": call.get("id"), "function": {"name": fn.get("name"), "arguments": fn.get("arguments")}}


def _last_user(messages: Any) -> Any:
    for msg in reversed(list(messages or ())):
        if getattr(getattr(msg, "role", None), "value", None) == "user":
            return getattr(msg, "content", None)
    return None


def _model(agent: Any) -> str:
    llm = getattr(agent, "llm", None)
    return str(getattr(llm, "model", None) or getattr(getattr(llm, "metadata", None), "model_name", None) or "unknown")


def _record_reply(agent: Any, call, response: Any) -> None:
    message = getattr(response, "message", None)
    out: dict[str, Any] = {"role": "assistant", "content": getattr(message, "content", None)}
    try:
        selections = agent.llm.get_tool_calls_from_response(response, error_on_no_tool_call=False) or []
    except Exception:  # noqa: BLE001 - an unparsable reply: its text is still recorded
        selections = []
    if selections:
        out["tool_calls"] = [{"id": s.tool_id, "function": {"name": s.tool_name, "arguments": s.tool_kwargs}}
                             for s in selections]
    raw = getattr(response, "raw", None)
    usage = raw.get("usage") if isinstance(raw, dict) else getattr(raw, "usage", None)
    get = (lambda k: usage.get(k)) if isinstance(usage, dict) else (lambda k: getattr(usage, k, None))
    call.response(out, input_tokens=get("prompt_tokens") if usage else None,
                  output_tokens=get("completion_tokens") if usage else None)


def _wrap_get_response(original):
    async def get_response(self, current_llm_input, tools, *args, **kwargs):
        with llm_call(_model(self), [_message(m) for m in current_llm_input]) as call:
            response = await original(self, current_llm_input, tools, *args, **kwargs)
            _record_reply(self, call, response)
            return response

    return get_response


def _wrap_get_streaming_response(original):
    async def get_streaming_response(self, ctx, current_llm_input, tools, *args, **kwargs):
        with llm_call(_model(self), [_message(m) for m in current_llm_input]) as call:
            response = await original(self, ctx, current_llm_input, tools, *args, **kwargs)
            _record_reply(self, call, response)
            return response

    return get_streaming_response


def _wrap_take_step(original):
    async def take_step(self, ctx, llm_input, tools, memory, *args, **kwargs):
        name = str(getattr(self, "name", None) or "agent")
        span = genai.start_agent(name, parent=genai.current_context(), input=_last_user(llm_input),
                                 description=getattr(self, "description", None), framework="llama_index")
        try:
            with trace.use_span(span, end_on_exit=False):
                output = await original(self, ctx, llm_input, tools, memory, *args, **kwargs)
        except BaseException as exc:
            genai.end(span, exc)
            raise
        response = getattr(output, "response", None)
        if response is not None and getattr(response, "content", None):
            genai.agent_output(span, response.content)
        for selection in getattr(output, "tool_calls", None) or ():
            _pending.add(_key(selection.tool_name, selection.tool_kwargs), selection.tool_id, span)
        genai.end(span)
        return output

    return take_step


def _wrap_call_tool(original):
    async def call_tool(self, ctx, tool, tool_input, *args, **kwargs):
        metadata = getattr(tool, "metadata", None)
        name = metadata.get_name() if metadata is not None else str(tool)
        call_id, turn = _pending.take(_key(name, tool_input))
        span = genai.start_tool(name, tool_input, parent=turn or genai.current_context(), call_id=call_id,
                                description=getattr(metadata, "description", None))
        if name == "handoff" and isinstance(tool_input, dict) and tool_input.get("to_agent"):
            span.set_attribute(semconv.TRANSFER_TARGET, str(tool_input["to_agent"]))
        try:
            with trace.use_span(span, end_on_exit=False):
                output = await original(self, ctx, tool, tool_input, *args, **kwargs)
        except BaseException as exc:
            genai.end(span, exc)
            raise
        genai.tool_result(span, getattr(output, "content", None))
        if getattr(output, "is_error", False):
            exc = getattr(output, "exception", None)
            genai.end(span, exc if exc is not None else str(getattr(output, "content", "tool error")))
        else:
            genai.end(span)
        return output

    return call_tool


class LlamaIndexIntegration(Integration):
    name = "llama_index"
    requires = ("llama-index-core>=0.12",)

    def __init__(self) -> None:
        self._patches = genai.Patches()

    def install(self, tracer_provider: trace.TracerProvider) -> None:
        try:
            from llama_index.core.agent.workflow import base_agent, function_agent, multi_agent_workflow
            import llama_index.core.agent.workflow as workflows  # noqa: F401 - loads every agent class
        except ImportError as exc:  # pragma: no cover - requirements were checked
            raise DidNotEnable(f"llama_index: {exc}") from exc
        for cls in genai.all_subclasses(base_agent.BaseWorkflowAgent):
            self._patches.wrap(cls, "take_step", _wrap_take_step)
            self._patches.wrap(cls, "_call_tool", _wrap_call_tool)  # a single agent runs its own tools
        self._patches.wrap(function_agent.FunctionAgent, "_get_response", _wrap_get_response)
        self._patches.wrap(function_agent.FunctionAgent, "_get_streaming_response", _wrap_get_streaming_response)
        self._patches.wrap(multi_agent_workflow.AgentWorkflow, "_call_tool", _wrap_call_tool)

    def uninstall(self) -> None:
        self._patches.restore()
