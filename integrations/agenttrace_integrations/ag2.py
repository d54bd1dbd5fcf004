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
  ``instrument_agent(agent)`` per instance) - group chat members, nested-chat
  (CaptainAgent-style) inner agents and the GroupChat's speaker-selection agents
  alike - and undoing it on ``uninstall``;
* no ``invoke_agent`` span for a ``GroupChatManager``'s own reply: the manager
  only relays, and a span enclosing every member's turn would be read as one
  extra, empty turn;
* a failed function execution (AG2 catches the exception and returns it as
  the tool's output) marks the upstream ``execute_tool`` span failed, with
  that output as the error and result - upstream only sets ``error.type``;
* content capture following agenttrace's switch (``capture_messages``).

How AG2 runs map onto steps: each GroupChat message is one step of the agent
that spoke it (its ``name``). Code execution and function execution by a user
proxy (Who&When's ``Computer_terminal``) are that proxy's own turn: its step's
content is the execution output, and a function it executes is a tool call on
its step (with arguments and result); the calling agent's step carries the
tool-call request.

Not covered: AG2 1.x (the ``ag2`` package without ``autogen``), which replaced
this API - it raises ``DidNotEnable``.
"""

from __future__ import annotations

import weakref

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode, TracerProvider

from agenttrace import genai, semconv
from agenttrace.content import policy
from agenttrace.integration import DidNotEnable, Integration

_REPLY_METHODS = ("generate_reply", "a_generate_reply")


class AG2Integration(Integration):
    name = "ag2"
    requires = ("ag2>=0.10",)

    def __init__(self) -> None:
        self._patches = genai.Patches()
        self._agents: weakref.WeakSet = weakref.WeakSet()
        self._wrapper_create = None

    def install(self, tracer_provider: TracerProvider) -> None:
        try:
            from autogen import ConversableAgent, GroupChatManager
            from autogen.oai.client import OpenAIWrapper
            from autogen.opentelemetry import instrument_agent, instrument_llm_wrapper
        except ImportError as exc:
            raise DidNotEnable(f"ag2: needs the classic autogen API with autogen.opentelemetry ({exc})") from exc

        self._wrapper_create = (OpenAIWrapper, OpenAIWrapper.__dict__["create"])
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


def _wrap_execute_function(original):
    def execute_function(self, *args, **kwargs):
        return _mark_failed(original(self, *args, **kwargs))

    return execute_function


def _wrap_a_execute_function(original):
    async def a_execute_function(self, *args, **kwargs):
        return _mark_failed(await original(self, *args, **kwargs))

    return a_execute_function
