"""AutoGen AgentChat (0.4+, incl. Magentic-One): its native GenAI spans, completed.

What AutoGen itself emits (checked on 0.7.5), through the global tracer provider:

* ``invoke_agent {name}`` per participant turn in a group chat (the
  ``ChatAgentContainer``) and per ``agent.run()``; the name is the agent's
  ``name``; parentage follows the runtime's message envelopes, so turns stay in
  the trace of the ``agenttrace.run`` that started the team, also when many
  teams run concurrently.
* ``execute_tool {name}`` with the call id, but without arguments or result
  (also from ``run_json_stream``, the streaming tool path).
* runtime ``autogen publish/process/...`` spans (kept; the collector reads them
  as structure only).

What this integration adds:

* a ``chat {model}`` span for every ``create``/``create_stream`` of the
  OpenAI(-compatible) model client, with input messages (AutoGen ``LLMMessage``
  objects converted to GenAI messages), the output (text or tool calls), usage
  and finish reason (AutoGen's normalised one, e.g. ``function_calls``); a
  stream's span covers it to the ``CreateResult`` that ends it; it nests under the
  agent turn that made the call;
* the turn's input (the messages delivered to the agent) and output (its chat
  message) on AutoGen's own ``invoke_agent`` span, so agents without an LLM call
  (a ``CodeExecutorAgent`` - Magentic-One's ComputerTerminal - or a
  ``UserProxyAgent``) are steps with content;
* arguments and result on the tool span, for ``BaseTool.run_json`` and for
  ``BaseStreamTool.run_json_stream`` (stream tools: ``AgentTool``, ``TeamTool``, your
  own; the result is the return value that ends the stream). AssistantAgent runs
  every tool through its ``StaticStreamWorkbench.call_tool_stream``, with or
  without ``model_client_stream``: plain tools reach ``run_json``, stream tools
  ``run_json_stream``. The native span is kept and ended once the result is known;
  a failing tool's span gets the error status and ``error.type`` (the workbench
  then hands the model an error result). Tools behind other workbenches that call
  ``trace_tool_span`` themselves (``McpWorkbench``) keep AutoGen's span as it is;
* turns of the group chat *managers* that think with an LLM: the
  ``MagenticOneOrchestrator`` (task ledger, progress ledger, final answer) and
  the ``SelectorGroupChatManager``'s speaker selection, as ``invoke_agent`` spans
  named after the manager, with ``agenttrace.transfer.target`` = the participant
  it hands the conversation to;
* the team a group chat runs (each participant with its description and tools, ``agenttrace.run.team``),
  declared on the first participant turn in the trace the team was started in, so an agent that never
  acts is known.
"""

from __future__ import annotations

import contextvars
import json
from contextlib import contextmanager
from functools import partial
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import TracerProvider

from agenttrace import genai, semconv
from agenttrace.integration import DidNotEnable, Integration

_FRAMEWORK = "autogen"


class _ToolCall:
    """One ``run_json`` / ``run_json_stream`` call: its arguments, and the tool span AutoGen opens for them.

    The span is claimed when it starts (a tool span opened inside the tool's own body is a nested one)
    and ended by the call's wrapper once the result, or the error, is known.
    """

    __slots__ = ("args", "span")

    def __init__(self, args: Any) -> None:
        self.args = dict(args) if args is not None else None
        self.span: Any = None

    @contextmanager
    def bound(self):
        token = _tool_call.set(self)
        try:
            yield
        finally:
            _tool_call.reset(token)

    def finish(self, tool: Any, result: Any, error: BaseException | None) -> None:
        span, self.span = self.span, None
        if span is None:
            return
        try:
            if error is None:
                genai.tool_result(span, tool.return_value_as_string(result))
        finally:
            genai.end(span, error)


_tool_call: contextvars.ContextVar[_ToolCall | None] = contextvars.ContextVar(
    "agenttrace_autogen_tool", default=None)


class AutoGenIntegration(Integration):
    name = "autogen"
    requires = ("autogen-agentchat>=0.4", "autogen-core>=0.4")

    def __init__(self) -> None:
        self._patches = genai.Patches()

    def install(self, tracer_provider: TracerProvider) -> None:
        try:
            import autogen_agentchat.teams._group_chat._chat_agent_container as container_mod
            import autogen_core.tools._base as tools_base
            from autogen_agentchat.teams import BaseGroupChat
        except ImportError as exc:  # pragma: no cover - checked by requires
            raise DidNotEnable(f"autogen: {exc}") from exc
        p = self._patches
        try:
            p.set(tools_base, "trace_tool_span", _tool_span)
            p.wrap(tools_base.BaseTool, "run_json", _wrap_run_json)
            p.wrap(tools_base.BaseStreamTool, "run_json_stream", _wrap_run_json_stream)
            p.wrap(container_mod.ChatAgentContainer, "_log_message", _wrap_container_log)
            p.wrap(BaseGroupChat, "run_stream", _wrap_team_run_stream)
            self._patch_model_clients()
            self._patch_managers()
        except Exception:
            p.undo()
            raise

    def uninstall(self) -> None:
        self._patches.undo()

    # ------------------------------------------------------------------
    def _patch_model_clients(self) -> None:
        try:
            from autogen_ext.models.openai._openai_client import BaseOpenAIChatCompletionClient
        except ImportError:  # autogen-ext[openai] not installed: other clients keep their own tracing
            return
        self._patches.wrap(BaseOpenAIChatCompletionClient, "create", _wrap_create)
        self._patches.wrap(BaseOpenAIChatCompletionClient, "create_stream", _wrap_create_stream)

    def _patch_managers(self) -> None:
        from autogen_agentchat.teams._group_chat._selector_group_chat import SelectorGroupChatManager

        self._patches.wrap(SelectorGroupChatManager, "_select_speaker", _wrap_select_speaker)
        try:
            from autogen_agentchat.teams._group_chat._magentic_one._magentic_one_orchestrator import (
                MagenticOneOrchestrator,
            )
        except ImportError:  # pragma: no cover
            return
        # handlers are discovered per instance from class attributes marked by @rpc/@event: the
        # wrappers keep those marks (Patches copies __dict__), so orchestrators built later use them
        self._patches.wrap(MagenticOneOrchestrator, "handle_start", _wrap_manager_handler)
        self._patches.wrap(MagenticOneOrchestrator, "handle_agent_response", _wrap_manager_handler)
        self._patches.wrap(MagenticOneOrchestrator, "publish_message", _wrap_manager_publish, inherited=True)


# ---- tools ------------------------------------------------------------------------------
@contextmanager
def _tool_span(tool_name: str, *, tracer: Any = None, parent: Any = None, tool_description: str | None = None,
               tool_call_id: str | None = None):
    """Replaces ``autogen_core.tools._base.trace_tool_span``: same span, plus arguments.

    Inside a ``run_json(_stream)`` call the call ends the span with the result; any other use ends it here.
    """
    call = _tool_call.get()
    if call is not None and call.span is not None:  # the call has its span: this one is nested in the tool
        call = None
    span = genai.start_tool(tool_name, call.args if call else None, parent=parent, call_id=tool_call_id,
                            description=tool_description)
    span.set_attribute(semconv.GEN_AI_SYSTEM, _FRAMEWORK)
    if call is not None:
        call.span = span
    try:
        with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            yield span
    except BaseException as exc:
        if call is None:
            genai.end(span, exc)
        raise
    if call is None:
        genai.end(span)


def _wrap_run_json(original):
    async def run_json(self, args, cancellation_token, call_id=None):
        call = _ToolCall(args)
        try:
            with call.bound():
                result = await original(self, args, cancellation_token, call_id=call_id)
        except BaseException as exc:
            call.finish(self, None, exc)
            raise
        call.finish(self, result, None)
        return result

    return run_json


def _wrap_run_json_stream(original):
    """``BaseStreamTool.run_json_stream`` (AgentTool, TeamTool, ...), which AssistantAgent's workbench uses for
    stream tools: the span gets the arguments, and the last item streamed (the return value) as the result."""
    def run_json_stream(self, args, cancellation_token, call_id=None):
        def start():
            call = _ToolCall(args)
            return original(self, args, cancellation_token, call_id=call_id), call.bound, partial(call.finish, self)

        return _relay(start)

    return run_json_stream


async def _relay(start):
    """An async generator around another, for wrapping streaming methods.

    ``start()`` runs at the first item (when the wrapped generator itself would start) and returns
    ``(gen, step, finish)``: what ``gen`` yields is passed on, each step of it run inside ``step()``; then
    ``finish(last item, None)``, or ``finish(None, exc)`` when it fails or is closed early.
    """
    gen, step, finish = start()
    last = None
    try:
        while True:
            with step():
                try:
                    item = await gen.__anext__()
                except StopAsyncIteration:
                    break
            last = item
            yield item
    except BaseException as exc:
        try:
            await gen.aclose()
        finally:
            finish(None, exc)
        raise
    finish(last, None)


# ---- the team ---------------------------------------------------------------------------
#: trace id -> the team a group chat started in that trace runs, in a list until a turn of the trace declares it.
#: Turns run in the runtime's tasks, not in a copy of the caller's context, but they stay in the caller's trace.
_undeclared_teams: dict[int, list] = {}


def _team(group_chat: Any) -> list[tuple[str, Any, Any]]:
    """Each participant as (name, description, its tools); a workbench's tools (MCP) are not listed."""
    return [(getattr(a, "name", "agent"), getattr(a, "description", None), getattr(a, "_tools", None))
            for a in getattr(group_chat, "_participants", None) or ()]


def _wrap_team_run_stream(original):
    """``BaseGroupChat.run_stream`` (``run`` goes through it): the team waits for the run's first turn, and is
    forgotten when the run ends; a team nested in a team's trace leaves the outer one's in place."""
    async def run_stream(self, *args, **kwargs):
        trace_id = trace.get_current_span().get_span_context().trace_id
        mine = bool(trace_id) and trace_id not in _undeclared_teams
        if mine:
            _undeclared_teams[trace_id] = [_team(self)]
        try:
            async for item in original(self, *args, **kwargs):
                yield item
        finally:
            if mine:
                _undeclared_teams.pop(trace_id, None)

    return run_stream


def _declare_team(span: Any) -> None:
    waiting = _undeclared_teams.get(span.get_span_context().trace_id)
    if waiting:
        genai.declare_team(span, waiting.pop())


# ---- agent turns ------------------------------------------------------------------------
def _is_agent_span(span: Any, name: str | None = None) -> bool:
    attrs = getattr(span, "attributes", None) or {}
    if not span.is_recording() or attrs.get(semconv.GEN_AI_OPERATION_NAME) != semconv.OP_INVOKE_AGENT:
        return False
    return name is None or attrs.get(semconv.GEN_AI_AGENT_NAME) == name


def _wrap_container_log(original):
    async def _log_message(self, message):
        try:
            span = trace.get_current_span()
            agent = getattr(self, "_agent", None)
            name = getattr(agent, "name", None)
            if name and _is_agent_span(span, name) and _is_chat_message(message):
                _declare_team(span)
                attrs = span.attributes or {}
                if semconv.GEN_AI_INPUT_MESSAGES not in attrs:
                    genai.set_messages(span, semconv.GEN_AI_INPUT_MESSAGES,
                                       [_chat_message(m) for m in getattr(self, "_message_buffer", ())], "user")
                if getattr(message, "source", None) == name:
                    genai.agent_output(span, _chat_message(message))
        except Exception:  # tracing must never break the chat
            pass
        return await original(self, message)

    return _log_message


def _is_chat_message(message: Any) -> bool:
    try:
        from autogen_agentchat.messages import BaseChatMessage
    except ImportError:  # pragma: no cover
        return False
    return isinstance(message, BaseChatMessage)


def _chat_message(message: Any) -> dict[str, Any]:
    """An AgentChat message (TextMessage, ToolCallSummaryMessage, ...) as an OpenAI-style dict."""
    try:
        text = message.to_model_text()
    except Exception:  # noqa: BLE001
        text = str(getattr(message, "content", message))
    source = getattr(message, "source", None)
    out: dict[str, Any] = {"role": "user" if source == "user" else "assistant", "content": text}
    if source:
        out["name"] = source
    return out


# ---- group chat managers ----------------------------------------------------------------
def _wrap_select_speaker(original):
    async def _select_speaker(self, *args, **kwargs):
        span = genai.start_agent(self._name, framework=_FRAMEWORK, description="speaker selection")
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                selected = await original(self, *args, **kwargs)
        except BaseException as exc:
            genai.end(span, exc)
            raise
        if isinstance(selected, str) and selected:
            genai.agent_output(span, selected)
            span.set_attribute(semconv.TRANSFER_TARGET, selected)
        genai.end(span)
        return selected

    return _select_speaker


def _wrap_manager_handler(original):
    async def handler(self, message, ctx, *args, **kwargs):
        span = genai.start_agent(self._name, framework=_FRAMEWORK, description="orchestrator")
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                result = await original(self, message, ctx, *args, **kwargs)
        except BaseException as exc:
            genai.end(span, exc)
            raise
        genai.end(span)
        return result

    return handler


def _wrap_manager_publish(original):
    async def publish_message(self, message, topic_id, *args, **kwargs):
        try:
            span = trace.get_current_span()
            if type(message).__name__ == "GroupChatRequestPublish" and _is_agent_span(span, self._name):
                names = {topic: name for name, topic in self._participant_name_to_topic_type.items()}
                target = names.get(getattr(topic_id, "type", None))
                if target:
                    span.set_attribute(semconv.TRANSFER_TARGET, target)
            elif type(message).__name__ == "GroupChatAgentResponse" and _is_agent_span(span, self._name):
                genai.agent_output(span, _chat_message(message.response.chat_message))
        except Exception:  # noqa: BLE001
            pass
        return await original(self, message, topic_id, *args, **kwargs)

    return publish_message


# ---- the model client ---------------------------------------------------------------------
def _model_of(client: Any) -> str | None:
    for attr in ("_create_args", "_raw_config"):
        value = getattr(client, attr, None)
        if isinstance(value, dict) and value.get("model"):
            return str(value["model"])
    return None


def _llm_messages(messages: Any) -> list[dict[str, Any]]:
    """AutoGen ``LLMMessage`` objects (System/User/Assistant/FunctionExecutionResult) as OpenAI-style dicts."""
    out: list[dict[str, Any]] = []
    for m in messages or ():
        kind = type(m).__name__
        content = getattr(m, "content", None)
        if kind == "SystemMessage":
            out.append({"role": "system", "content": content})
        elif kind == "UserMessage":
            msg = {"role": "user", "content": content if isinstance(content, str) else _parts_text(content)}
            if getattr(m, "source", None):
                msg["name"] = m.source
            out.append(msg)
        elif kind == "AssistantMessage":
            if isinstance(content, list):
                msg = {"role": "assistant", "content": getattr(m, "thought", None),
                       "tool_calls": [_function_call(c) for c in content]}
            else:
                msg = {"role": "assistant", "content": content}
            if getattr(m, "source", None):
                msg["name"] = m.source
            out.append(msg)
        elif kind == "FunctionExecutionResultMessage":
            for r in content or ():
                out.append({"role": "tool", "tool_call_id": getattr(r, "call_id", None),
                            "content": getattr(r, "content", None)})
        else:
            out.append({"role": "user", "content": str(content)})
    return out


def _parts_text(content: Any) -> str:
    if not isinstance(content, list):
        return str(content)
    return "\n".join(p if isinstance(p, str) else f"[{type(p).__name__}]" for p in content)


def _function_call(call: Any) -> dict[str, Any]:
    return {"id": getattr(call, "id", None), "type": "function",
            "function": {"name": getattr(call, "name", None), "arguments": getattr(call, "arguments", None)}}


def _record_result(span: Any, result: Any) -> None:
    content = getattr(result, "content", None)
    if isinstance(content, list):
        output = {"role": "assistant", "content": getattr(result, "thought", None),
                  "tool_calls": [_function_call(c) for c in content]}
    else:
        output = {"role": "assistant", "content": content}
    usage = getattr(result, "usage", None)
    genai.chat_response(
        span, output,
        input_tokens=getattr(usage, "prompt_tokens", None), output_tokens=getattr(usage, "completion_tokens", None),
        finish_reason=getattr(result, "finish_reason", None),
    )


def _start_chat(client: Any, args: tuple, kwargs: dict) -> Any:
    messages = kwargs.get("messages", args[0] if args else None)
    span = genai.start_chat(_model_of(client), _llm_messages(messages), provider="openai")
    tools = kwargs.get("tools")
    if tools:
        try:
            names = [getattr(t, "name", None) or (t.get("name") if isinstance(t, dict) else None) for t in tools]
            span.set_attribute(semconv.GEN_AI_TOOL_DEFINITIONS, json.dumps([{"name": n} for n in names if n]))
        except Exception:  # noqa: BLE001
            pass
    return span


def _wrap_create(original):
    async def create(self, *args, **kwargs):
        span = _start_chat(self, args, kwargs)
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                result = await original(self, *args, **kwargs)
        except BaseException as exc:
            genai.end(span, exc)
            raise
        try:
            _record_result(span, result)
        finally:
            genai.end(span)
        return result

    return create


def _wrap_create_stream(original):
    def create_stream(self, *args, **kwargs):
        def start():
            span = _start_chat(self, args, kwargs)

            def step():
                return trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False)

            def finish(last, exc):
                try:
                    if exc is None and last is not None and not isinstance(last, str):
                        _record_result(span, last)  # the CreateResult that ends the stream
                finally:
                    genai.end(span, exc)

            return original(self, *args, **kwargs), step, finish

        return _relay(start)

    return create_stream
