"""AG2 (the classic ``autogen`` ConversableAgent / GroupChat API): AG2's own OpenTelemetry, switched on for every agent.

AG2 (0.10+) ships GenAI instrumentation in ``autogen.opentelemetry``:
``instrument_agent(agent)`` emits ``invoke_agent {name}`` per ``generate_reply``
(input and output messages), ``conversation`` spans for ``initiate_chat`` /
``run_chat``, ``execute_tool {name}`` for function calls (call id, arguments,
result, error status) and code-execution spans, and propagates the context
into the executor thread AG2 runs its LLM calls on; ``instrument_llm_wrapper``
emits a ``chat`` span per ``OpenAIWrapper.create`` with messages. It is good,
so this integration builds on it and adds only:

* instrumenting every ``ConversableAgent`` when it is built (upstream asks for
  ``instrument_agent(agent)`` per instance) - group chat members and nested-chat
  (CaptainAgent-style) inner agents alike - and undoing it on ``uninstall``;
* one ``speaker_selection {manager}`` span per ``speaker_selection_method="auto"``
  choice, in place of the internal two-agent chat AG2 runs for it
  (``checking_agent`` / ``speaker_selection_agent``, retries included): that
  chat's spans are not recorded, as its agents are no GroupChat speakers and
  its LLM calls would read as their turns. The span carries the candidates,
  the chosen speaker (``ag2.speaker_selection.selected``, as upstream's own
  ``instrument_groupchat`` names it), the model's answers and the token usage.
  It sets no ``agenttrace.transfer.target``: it is no step, so the collector
  would give that handoff to an enclosing agent's step (the captain of a
  nested group chat), and the next step's agent already says who was chosen;
* no ``invoke_agent`` span for a ``GroupChatManager``'s own reply: the manager
  only relays, and a span enclosing every member's turn would be read as one
  extra, empty turn;
* a failed function execution (AG2 catches the exception and returns it as
  the tool's output) marks the upstream ``execute_tool`` span failed, with
  that output as the error and result - upstream only sets ``error.type``;
* the team a ``GroupChatManager`` runs (each member with its description and the tools it calls,
  ``agenttrace.run.team``), declared on the span current when its chat starts (upstream's ``conversation``
  span) unless that span declares one already, so an agent that never speaks is known;
* content capture following agenttrace's switch (``capture_messages``);
* messages written in GenAI's parts layout as they are: upstream's
  ``message_to_otel`` keeps only the tool calls of a reply that also has text
  (the text is lost on the ``invoke_agent`` and ``chat`` spans alike), and
  writes a function-execution reply (``{"role": "tool", "tool_responses":
  [...]}``) as a text part, so the tool's output reads as the executing
  agent's own words. Here the text stays next to the calls, and each tool response is
  a ``tool_call_response`` part with its call id.

How AG2 runs map onto steps: each GroupChat message is one step of the agent
that spoke it (its ``name``), except a function execution; choosing the next
speaker, by any method, is no step. AG2 executes the functions an LLM reply
asks for on a turn of its own (of the caller itself, when it is its own
executor, or of a user proxy); that turn is no step: each call's result (or
error) is attached to the call on the step of the reply that asked for it (the
collector matches them by call id). Code execution by a user proxy (Who&When's
``Computer_terminal``) is that proxy's own turn: its step's content is the
execution output.

Not covered: AG2 1.x (the ``ag2`` package without ``autogen``), which replaced
this API - it raises ``DidNotEnable``.
"""

from __future__ import annotations

import contextvars
import json
import weakref
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, Status, StatusCode, TracerProvider

from agenttrace import genai, semconv
from agenttrace.content import policy
from agenttrace.integration import DidNotEnable, Integration

_REPLY_METHODS = ("generate_reply", "a_generate_reply")
_SELECTION_OP = "speaker_selection"
_selection: contextvars.ContextVar[Span | None] = contextvars.ContextVar("agenttrace_ag2_selection", default=None)


class AG2Integration(Integration):
    name = "ag2"
    requires = ("ag2>=0.10",)

    def __init__(self) -> None:
        self._patches = genai.Patches()
        self._agents: weakref.WeakSet = weakref.WeakSet()
        self._wrapper_create = None

    def install(self, tracer_provider: TracerProvider) -> None:
        try:
            from autogen import ConversableAgent, GroupChat, GroupChatManager
            from autogen.oai.client import OpenAIWrapper
            from autogen.opentelemetry import instrument_agent, instrument_llm_wrapper
        except ImportError as exc:
            raise DidNotEnable(f"ag2: needs the classic autogen API with autogen.opentelemetry ({exc})") from exc

        self._wrapper_create = (OpenAIWrapper, OpenAIWrapper.__dict__["create"])
        self._patch_message_conversion()
        instrument_llm_wrapper(tracer_provider=tracer_provider, capture_messages=policy().capture)
        agents = self._agents

        def make_init(original):
            def __init__(self, *args, **kwargs):
                original(self, *args, **kwargs)
                try:
                    instrument_agent(self, tracer_provider=tracer_provider)
                    if isinstance(self, GroupChatManager):
                        for attr in _REPLY_METHODS:
                            self.__dict__.pop(attr, None)
                    agents.add(self)
                except Exception:  # noqa: BLE001 - tracing must never break building an agent
                    pass

            return __init__

        self._patches.wrap(ConversableAgent, "__init__", make_init)
        self._patches.wrap(ConversableAgent, "execute_function", _wrap_execute_function)
        self._patches.wrap(ConversableAgent, "a_execute_function", _wrap_a_execute_function)
        tracer = tracer_provider.get_tracer(__name__)
        self._patches.wrap(GroupChat, "_auto_select_speaker", lambda original: _wrap_auto_select(original, tracer))
        self._patches.wrap(GroupChat, "a_auto_select_speaker", lambda original: _wrap_a_auto_select(original, tracer))
        self._patches.wrap(GroupChat, "_process_speaker_selection_result", _wrap_selection_result)
        self._patches.wrap(GroupChatManager, "run_chat", _wrap_run_chat)
        self._patches.wrap(GroupChatManager, "a_run_chat", _wrap_a_run_chat)

    def _patch_message_conversion(self) -> None:
        """Upstream's converter, where it is looked up: ``utils`` (``messages_to_otel`` and ``reply_to_otel_message``
        call it there) and ``llm_wrapper`` (which imported it by name)."""
        import importlib

        for module in ("autogen.opentelemetry.utils", "autogen.opentelemetry.instrumentators.llm_wrapper"):
            try:
                owner = importlib.import_module(module)
            except ImportError:
                continue
            if callable(getattr(owner, "message_to_otel", None)):
                self._patches.set(owner, "message_to_otel", _message_to_otel)

    def uninstall(self) -> None:
        self._patches.restore()
        if self._wrapper_create is not None:
            owner, create = self._wrapper_create
            owner.create = create
            self._wrapper_create = None
        for agent in list(self._agents):
            for attr, value in list(vars(agent).items()):
                if getattr(value, "__otel_wrapped__", False):
                    delattr(agent, attr)
        self._agents = weakref.WeakSet()


def _message_to_otel(message: dict) -> dict:
    """One AG2 (OpenAI-style) message in GenAI's parts layout: its text, then its tool calls; a function
    execution's message (``tool_responses``, or a single ``tool_call_id``) as ``tool_call_response`` parts."""
    try:
        return _convert(message)
    except Exception:  # noqa: BLE001 - upstream calls this inside the agent's reply: tracing must never break it
        return {"role": str(message.get("role") or "user") if isinstance(message, dict) else "user", "parts": []}


def _convert(message: dict) -> dict:
    role = message.get("role") or "user"
    responses = message.get("tool_responses")
    if not isinstance(responses, list) or not responses:
        responses = [message] if role == "tool" and "tool_call_id" in message else []
    if responses:
        return {"role": "tool", "parts": [
            {"type": "tool_call_response", "id": r.get("tool_call_id") or "", "response": r.get("content", "")}
            for r in responses if isinstance(r, dict)]}
    parts: list[dict] = []
    content = message.get("content")
    if isinstance(content, str) and content:
        parts.append({"type": "text", "content": content})
    elif isinstance(content, list):  # multimodal content parts
        parts.extend({"type": "text", "content": item} if isinstance(item, str) else item
                     for item in content if isinstance(item, (str, dict)))
    for call in message.get("tool_calls") or ():
        if not isinstance(call, dict):
            continue
        function = call.get("function") or {}
        arguments = function.get("arguments", "{}")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except ValueError:
                pass
        parts.append({"type": "tool_call", "id": call.get("id") or "", "name": function.get("name") or "",
                      "arguments": arguments})
    return {"role": role, "parts": parts}


def _mark_failed(outcome):
    """After AG2's own execute_function: a failure becomes the current execute_tool span's error status."""
    try:
        ok, result = outcome
        span = trace.get_current_span()
        attrs = getattr(span, "attributes", None) or {}
        if not ok and span.is_recording() and attrs.get(semconv.GEN_AI_OPERATION_NAME) == semconv.OP_EXECUTE_TOOL:
            content = result.get("content") if isinstance(result, dict) else result
            genai.tool_result(span, content)
            span.set_status(Status(StatusCode.ERROR, str(content)))
    except Exception:  # noqa: BLE001
        pass
    return outcome


def _declare_team(manager, config) -> None:
    """The chat's members as the team, on the current span unless it declares one already."""
    try:
        span = trace.get_current_span()
        chat = config if config is not None else getattr(manager, "groupchat", None)
        if span.is_recording() and semconv.RUN_TEAM not in (getattr(span, "attributes", None) or {}):
            genai.declare_team(span, [(a.name, getattr(a, "description", None), getattr(a, "tools", None))
                                      for a in getattr(chat, "agents", None) or ()])
    except Exception:  # noqa: BLE001 - tracing must never break the chat
        pass


def _wrap_run_chat(original):
    """``GroupChatManager.run_chat``, a reply function the manager registers when it is built (as is
    ``a_run_chat``: AG2 tells them apart by being coroutine functions, so each keeps its kind)."""
    def run_chat(self, messages=None, sender=None, config=None, *args, **kwargs):
        _declare_team(self, config)
        return original(self, messages, sender, config, *args, **kwargs)

    return run_chat


def _wrap_a_run_chat(original):
    async def a_run_chat(self, messages=None, sender=None, config=None, *args, **kwargs):
        _declare_team(self, config)
        return await original(self, messages, sender, config, *args, **kwargs)

    return a_run_chat


def _wrap_execute_function(original):
    def execute_function(self, *args, **kwargs):
        return _mark_failed(original(self, *args, **kwargs))

    return execute_function


def _wrap_a_execute_function(original):
    async def a_execute_function(self, *args, **kwargs):
        return _mark_failed(await original(self, *args, **kwargs))

    return a_execute_function


# ---- "auto" speaker selection: one span, its internal chat unrecorded ----------------------------
@contextmanager
def _selecting(tracer, groupchat, selector, agents):
    candidates = [a.name for a in (agents if agents is not None else groupchat.agents)]
    with tracer.start_as_current_span(f"{_SELECTION_OP} {selector.name}", attributes={
        semconv.GEN_AI_OPERATION_NAME: _SELECTION_OP,
        semconv.GEN_AI_AGENT_NAME: selector.name,
        "ag2.speaker_selection.candidates": json.dumps(candidates),
    }) as span:
        # spans started under an unsampled parent are not recorded (agenttrace's provider keeps the SDK's
        # ParentBased sampler): this drops the internal chat's spans, also on the executor thread AG2's
        # async replies use (upstream carries the OpenTelemetry context there)
        ids = span.get_span_context()
        unsampled = NonRecordingSpan(SpanContext(ids.trace_id, ids.span_id, is_remote=False))
        token = _selection.set(span)
        try:
            with trace.use_span(unsampled):
                yield span
        finally:
            _selection.reset(token)


def _wrap_auto_select(original, tracer):
    def _auto_select_speaker(self, last_speaker, selector, messages, agents):
        with _selecting(tracer, self, selector, agents) as span:
            speaker = original(self, last_speaker, selector, messages, agents)
            if speaker is not None:
                span.set_attribute("ag2.speaker_selection.selected", speaker.name)
            return speaker

    return _auto_select_speaker


def _wrap_a_auto_select(original, tracer):
    async def a_auto_select_speaker(self, last_speaker, selector, messages, agents):
        with _selecting(tracer, self, selector, agents) as span:
            speaker = await original(self, last_speaker, selector, messages, agents)
            if speaker is not None:
                span.set_attribute("ag2.speaker_selection.selected", speaker.name)
            return speaker

    return a_auto_select_speaker


def _wrap_selection_result(original):
    def _process_speaker_selection_result(self, result, *args, **kwargs):
        span = _selection.get()
        if span is not None:
            try:
                _record_selection_chat(span, result)
            except Exception:  # noqa: BLE001 - tracing must never break the group chat
                pass
        return original(self, result, *args, **kwargs)

    return _process_speaker_selection_result


def _record_selection_chat(span, result):
    """The internal chat's ``ChatResult``: the model's answers and its token usage, onto the selection span."""
    answers = [m.get("content") for m in result.chat_history if m.get("name") == "speaker_selection_agent"]
    genai.agent_output(span, [{"role": "assistant", "content": a} for a in answers])
    by_model = result.cost["usage_including_cached_inference"]  # {model: usage, "total_cost": float}
    usage = {model: u for model, u in by_model.items() if isinstance(u, dict)}
    if usage:
        span.set_attribute(semconv.GEN_AI_RESPONSE_MODEL, ", ".join(usage))
        span.set_attribute(semconv.GEN_AI_USAGE_INPUT_TOKENS, sum(u.get("prompt_tokens", 0) for u in usage.values()))
        span.set_attribute(semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
                           sum(u.get("completion_tokens", 0) for u in usage.values()))
