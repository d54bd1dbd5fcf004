"""LlamaIndex agent workflows (``AgentWorkflow``: Function, ReAct and CodeAct agents, handoffs) as GenAI spans.

Hooked on LlamaIndex's agent API rather than its instrumentation dispatcher or
``openinference-instrumentation-llama-index``: those report workflow steps and
LLM calls but not which agent of a workflow is speaking, and the workflow runs
each step (agent turn, tool call) as its own task, so "current span" parentage
does not link a tool call to the turn that asked for it. Here:

* ``BaseWorkflowAgent.take_step`` (each agent class's) -> ``invoke_agent {agent.name}``;
* each LLM call a turn makes -> ``chat {model}`` under it, for every agent class:
  the agent's LLM class gets ``achat`` / ``astream_chat`` wrapped (once per class,
  when an agent first uses it), which ``FunctionAgent`` reaches through
  ``achat_with_tools`` and ``ReActAgent``/``CodeActAgent`` call directly; only
  calls made inside a running ``take_step`` are recorded. The span carries the
  messages as sent, the reply's text and tool calls as LlamaIndex parsed them (a
  ReAct agent's action is text: its parsed call is the ``execute_tool`` span),
  usage, finish reason and response model/id where the provider's raw response
  has them; a streamed call's span ends with its stream;
* ``AgentWorkflow.run`` declares the workflow's team (each agent with its description and tools,
  ``agenttrace.run.team``) on the first agent turn of that run, so an agent that never acts is known;
* ``AgentWorkflow._call_tool`` -> ``execute_tool {tool}``, parented to the turn
  whose reply asked for that call (matched on tool name and arguments within the
  trace) and carrying its call id; ``ToolOutput.is_error`` marks it failed; the
  ``handoff`` tool carries ``agenttrace.transfer.target`` = ``to_agent``.
"""

from __future__ import annotations

import json
import threading
from contextvars import ContextVar, Token
from typing import Any

from opentelemetry import trace

from agenttrace import genai, semconv
from agenttrace.integration import DidNotEnable, Integration


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


#: The agent name and ``invoke_agent`` span of the turn running in this task: set while ``take_step`` runs,
#: cleared inside a recorded LLM call so the provider's own nested calls (``super().achat``) add no span.
_turn: ContextVar[tuple[str, trace.Span] | None] = ContextVar("agenttrace_llama_index_turn", default=None)

#: The team an ``AgentWorkflow.run`` starting in this context declares, until its first agent turn takes it:
#: a shared list, as the workflow's tasks each run in a copy of the context the run started in.
_undeclared_team: ContextVar[list | None] = ContextVar("agenttrace_llama_index_team", default=None)

#: ``llama_index.llms.<package>`` -> ``gen_ai.provider.name``; other packages are named as they are.
_PROVIDERS = {"openai_like": "openai", "azure_openai": "azure.ai.openai", "bedrock_converse": "aws.bedrock",
              "bedrock": "aws.bedrock", "mistralai": "mistral_ai", "vertex": "gcp.vertex_ai",
              "gemini": "gcp.gemini", "google_genai": "gcp.gen_ai"}


def _model(llm: Any) -> str:
    return str(getattr(llm, "model", None) or getattr(getattr(llm, "metadata", None), "model_name", None) or "unknown")


def _provider(llm: Any) -> str:
    parts = type(llm).__module__.split(".")
    package = parts[2] if parts[:2] == ["llama_index", "llms"] and len(parts) > 2 else "llama_index"
    return _PROVIDERS.get(package, package)


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def _facts(response: Any) -> dict[str, Any]:
    """Usage, finish reason, model and id of one ``ChatResponse`` (or stream chunk), from its OpenAI-shaped
    ``raw`` where it has one, else from LlamaIndex's token counts in ``additional_kwargs``."""
    raw = getattr(response, "raw", None)
    usage = _get(raw, "usage")
    extra = getattr(response, "additional_kwargs", None) or {}
    choices = _get(raw, "choices") or ()
    facts = {
        "input_tokens": _get(usage, "prompt_tokens") or _get(usage, "input_tokens") or extra.get("prompt_tokens"),
        "output_tokens": (_get(usage, "completion_tokens") or _get(usage, "output_tokens")
                          or extra.get("completion_tokens")),
        "finish_reason": (_get(choices[0], "finish_reason") if choices else None) or _get(raw, "stop_reason"),
        "model": _get(raw, "model"),
        "response_id": _get(raw, "id"),
    }
    return {k: v for k, v in facts.items() if v is not None}


def _record_reply(llm: Any, span: trace.Span, response: Any, facts: dict[str, Any]) -> None:
    message = getattr(response, "message", None)
    out: dict[str, Any] = {"role": "assistant", "content": getattr(message, "content", None)}
    try:
        selections = llm.get_tool_calls_from_response(response, error_on_no_tool_call=False) or []
    except Exception:  # noqa: BLE001 - no function calling, or an unparsable reply: its text is still recorded
        selections = []
    if selections:
        out["tool_calls"] = [{"id": s.tool_id, "function": {"name": s.tool_name, "arguments": s.tool_kwargs}}
                             for s in selections]
    genai.chat_response(span, out, **facts)


def _start_chat(llm: Any, messages: Any) -> tuple[trace.Span, Token] | None:
    """A ``chat`` span under the running agent turn, or None outside a turn (or inside a recorded call)."""
    turn = _turn.get()
    if turn is None:
        return None
    agent, parent = turn
    span = genai.start_chat(_model(llm), [_message(m) for m in messages or ()], parent=parent,
                            provider=_provider(llm), agent=agent)
    return span, _turn.set(None)


def _wrapped_llm_call(original, finish):
    """``achat``/``astream_chat`` as a ``chat`` span inside an agent turn; ``finish(llm, span, result)`` records
    the result and ends the span (a stream ends it when it is consumed)."""

    async def call(self, messages, *args, **kwargs):
        started = _start_chat(self, messages)
        if started is None:
            return await original(self, messages, *args, **kwargs)
        span, token = started
        try:
            with trace.use_span(span, end_on_exit=False):
                result = await original(self, messages, *args, **kwargs)
        except BaseException as exc:
            genai.end(span, exc)
            raise
        finally:
            _turn.reset(token)
        return finish(self, span, result)

    return call


def _recorded_reply(llm: Any, span: trace.Span, response: Any) -> Any:
    _record_reply(llm, span, response, _facts(response))
    genai.end(span)
    return response


async def _recorded_stream(llm: Any, span: trace.Span, stream: Any):
    """The stream as it was, its last chunk (the whole reply so far) recorded when it ends or is left."""
    last, facts, error = None, {}, None
    try:
        async for chunk in stream:
            last = chunk
            facts.update(_facts(chunk))  # finish reason and usage come on the last chunks only
            yield chunk
    except GeneratorExit:  # the caller stopped reading: the reply so far is recorded
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        if last is not None:
            _record_reply(llm, span, last, facts)
        genai.end(span, error)


def _wrap_take_step(original, watch_llm):
    async def take_step(self, ctx, llm_input, tools, memory, *args, **kwargs):
        name = str(getattr(self, "name", None) or "agent")
        span = genai.start_agent(name, parent=genai.current_context(), input=_last_user(llm_input),
                                 description=getattr(self, "description", None), framework="llama_index")
        if team := _undeclared_team.get():
            genai.declare_team(span, team.pop())
        llm = getattr(self, "llm", None)
        if llm is not None:
            watch_llm(llm)
        token = _turn.set((name, span))
        try:
            with trace.use_span(span, end_on_exit=False):
                output = await original(self, ctx, llm_input, tools, memory, *args, **kwargs)
        except BaseException as exc:
            genai.end(span, exc)
            raise
        finally:
            _turn.reset(token)
        response = getattr(output, "response", None)
        if response is not None and getattr(response, "content", None):
            genai.agent_output(span, response.content)
        for selection in getattr(output, "tool_calls", None) or ():
            _pending.add(_key(selection.tool_name, selection.tool_kwargs), selection.tool_id, span)
        genai.end(span)
        return output

    return take_step


def _wrap_workflow_run(original):
    def run(self, *args, **kwargs):
        team = [(name, getattr(agent, "description", None), getattr(agent, "tools", None))
                for name, agent in (getattr(self, "agents", None) or {}).items()]
        token = _undeclared_team.set([team] if team else None)
        try:
            return original(self, *args, **kwargs)  # schedules the run's tasks, which copy the context now
        finally:
            _undeclared_team.reset(token)

    return run


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
        self._lock = threading.Lock()
        self._llm_classes: set[type] = set()

    def install(self, tracer_provider: trace.TracerProvider) -> None:
        try:
            from llama_index.core.agent.workflow import base_agent, multi_agent_workflow
            import llama_index.core.agent.workflow as workflows  # noqa: F401 - loads every agent class
        except ImportError as exc:  # pragma: no cover - requirements were checked
            raise DidNotEnable(f"llama_index: {exc}") from exc
        for cls in genai.all_subclasses(base_agent.BaseWorkflowAgent):
            self._patches.wrap(cls, "take_step", lambda original: _wrap_take_step(original, self._watch_llm))
            self._patches.wrap(cls, "_call_tool", _wrap_call_tool)  # a single agent runs its own tools
        self._patches.wrap(multi_agent_workflow.AgentWorkflow, "_call_tool", _wrap_call_tool)
        self._patches.wrap(multi_agent_workflow.AgentWorkflow, "run", _wrap_workflow_run)

    def _watch_llm(self, llm: Any) -> None:
        """Wraps the chat methods of ``llm``'s class, once: LLM classes are many and may load after install."""
        cls = type(llm)
        if cls in self._llm_classes:
            return
        with self._lock:
            if cls not in self._llm_classes:
                self._patches.wrap(cls, "achat", lambda f: _wrapped_llm_call(f, _recorded_reply), inherited=True)
                self._patches.wrap(cls, "astream_chat", lambda f: _wrapped_llm_call(f, _recorded_stream),
                                   inherited=True)
                self._llm_classes.add(cls)

    def uninstall(self) -> None:
        with self._lock:
            self._patches.restore()
            self._llm_classes.clear()
