"""smolagents: agents, managed-agent delegation, model calls and tools as GenAI spans.

Hooked on smolagents' own API (no upstream instrumentor is used:
``openinference-instrumentation-smolagents`` names agent spans ``<name>.run``
without ``agent.name``, and marks no delegation):

* ``MultiStepAgent.run`` -> ``invoke_agent {agent.name}`` (streaming runs too); a manager's declares its
  team: itself and the agents it manages, each with its tools;
* ``MultiStepAgent.__call__`` (a manager calling a managed agent, from a tool
  call or from CodeAgent code) -> ``execute_tool {name}`` carrying
  ``agenttrace.transfer.target``, with the managed agent's run nested inside;
* ``Model.generate`` / ``generate_stream`` of every model class -> ``chat {model_id}``;
* ``Tool.__call__`` -> ``execute_tool {tool.name}`` (errors marked on the span).

An agent without a ``name`` (smolagents allows it for the top-level agent) is
called ``manager`` when it manages agents, else ``agent``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from agenttrace import genai, semconv
from agenttrace.integration import DidNotEnable, Integration
from agenttrace.spans import agent_step, llm_call, tool_call

_in_model = contextvars.ContextVar("agenttrace_smolagents_in_model", default=False)


def agent_name(agent: Any) -> str:
    name = getattr(agent, "name", None)
    if name:
        return str(name)
    return "manager" if getattr(agent, "managed_agents", None) else "agent"


def _role(role: Any) -> str:
    value = getattr(role, "value", role)
    return {"tool-call": "assistant", "tool-response": "tool"}.get(str(value), str(value))


def _tool_calls(calls: Any) -> list[dict[str, Any]]:
    out = []
    for call in calls or ():
        fn = getattr(call, "function", None)
        if fn is None and isinstance(call, dict):
            fn = call.get("function", call)
            out.append({"id": call.get("id"), "function": {"name": fn.get("name"), "arguments": fn.get("arguments")}})
            continue
        out.append({"id": getattr(call, "id", None),
                    "function": {"name": getattr(fn, "name", None), "arguments": getattr(fn, "arguments", None)}})
    return out


def _message(msg: Any) -> dict[str, Any]:
    """A smolagents ChatMessage (or dict) as an OpenAI-style message dict."""
    if isinstance(msg, dict):
        role, content, calls = msg.get("role"), msg.get("content"), msg.get("tool_calls")
    else:
        role, content = getattr(msg, "role", None), getattr(msg, "content", None)
        calls = getattr(msg, "tool_calls", None)
    out: dict[str, Any] = {"role": _role(role or "user"), "content": content}
    if calls:
        out["tool_calls"] = _tool_calls(calls)
    return out


def _record_output(call, message: Any, model: str | None) -> None:
    usage = getattr(message, "token_usage", None)
    call.response(
        _message(message) | {"role": "assistant"}, model=model,
        input_tokens=getattr(usage, "input_tokens", None), output_tokens=getattr(usage, "output_tokens", None),
    )


def _wrap_generate(original):
    def generate(self, messages, *args, **kwargs):
        if _in_model.get():
            return original(self, messages, *args, **kwargs)
        token = _in_model.set(True)
        try:
            model = str(getattr(self, "model_id", None) or type(self).__name__)
            with llm_call(model, [_message(m) for m in messages or ()]) as call:
                result = original(self, messages, *args, **kwargs)
                _record_output(call, result, model)
                return result
        finally:
            _in_model.reset(token)

    return generate


def _wrap_generate_stream(original):
    def generate_stream(self, messages, *args, **kwargs):
        model = str(getattr(self, "model_id", None) or type(self).__name__)
        span = genai.start_chat(model, [_message(m) for m in messages or ()], parent=otel_context.get_current())
        ctx = trace.set_span_in_context(span)

        def events() -> Iterator[Any]:
            texts: list[str] = []
            try:
                for event in _in_context(ctx, original(self, messages, *args, **kwargs)):
                    if getattr(event, "content", None):
                        texts.append(str(event.content))
                    yield event
            except BaseException as exc:
                genai.end(span, exc)
                raise
            genai.chat_response(span, "".join(texts), model=model)
            genai.end(span)

        return events()

    return generate_stream


def _in_context(ctx, iterator) -> Iterator[Any]:
    """Iterates ``iterator`` with ``ctx`` current during each step (spans opened inside nest correctly)."""
    it = iter(iterator)
    while True:
        token = otel_context.attach(ctx)
        try:
            item = next(it)
        except StopIteration:
            return
        finally:
            otel_context.detach(token)
        yield item


def _team(agent: Any) -> list[tuple[str, Any, Any]]:
    """The agent and, depth first, the agents it manages, each with its own tools."""
    return [(agent_name(agent), getattr(agent, "description", None), (getattr(agent, "tools", None) or {}).values()),
            *(member for sub in (getattr(agent, "managed_agents", None) or {}).values() for member in _team(sub))]


def _declare_team(span: trace.Span, agent: Any) -> None:
    """A manager's span declares its team; an agent that manages none declares nothing."""
    if getattr(agent, "managed_agents", None):
        genai.declare_team(span, _team(agent))


def _wrap_run(original):
    def run(self, task, *args, **kwargs):
        stream = kwargs.get("stream", args[0] if args else False)
        name = agent_name(self)
        if not stream:
            with agent_step(name, input=task, description=getattr(self, "description", None)) as step:
                _declare_team(step.span, self)
                result = original(self, task, *args, **kwargs)
                step.output(str(getattr(result, "output", result)))
                return result

        def steps() -> Iterator[Any]:
            span = genai.start_agent(name, parent=otel_context.get_current(), input=task,
                                     description=getattr(self, "description", None))
            _declare_team(span, self)
            last = None
            try:
                for event in _in_context(trace.set_span_in_context(span), original(self, task, *args, **kwargs)):
                    last = event
                    yield event
            except BaseException as exc:
                genai.end(span, exc)
                raise
            output = getattr(last, "output", None) if last is not None else None
            if output is not None:
                genai.agent_output(span, str(output))
            genai.end(span)

        return steps()

    return run


def _wrap_agent_call(original):
    def call(self, task, *args, **kwargs):
        name = agent_name(self)
        with tool_call(name, {"task": task, **kwargs}) as handle:
            handle.set_attribute(semconv.TRANSFER_TARGET, name)
            handle.set_attribute(semconv.GEN_AI_TOOL_TYPE, "agent")
            result = original(self, task, *args, **kwargs)
            handle.result(result)
            return result

    return call


def _wrap_tool_call(original):
    def call(self, *args, sanitize_inputs_outputs: bool = False, **kwargs):
        name = str(getattr(self, "name", None) or type(self).__name__)
        arguments: Any = kwargs if kwargs or not args else (args[0] if len(args) == 1 else list(args))
        with tool_call(name, arguments) as handle:
            result = original(self, *args, sanitize_inputs_outputs=sanitize_inputs_outputs, **kwargs)
            handle.result(str(result) if not isinstance(result, (str, int, float, bool, dict, list)) else result)
            return result

    return call


class SmolagentsIntegration(Integration):
    name = "smolagents"
    requires = ("smolagents>=1.0",)

    def __init__(self) -> None:
        self._patches = genai.Patches()

    def install(self, tracer_provider: trace.TracerProvider) -> None:
        try:
            from smolagents import agents, models, tools
        except ImportError as exc:  # pragma: no cover - requirements were checked
            raise DidNotEnable(f"smolagents: {exc}") from exc
        self._patches.wrap(agents.MultiStepAgent, "run", _wrap_run)
        self._patches.wrap(agents.MultiStepAgent, "__call__", _wrap_agent_call)
        self._patches.wrap(tools.Tool, "__call__", _wrap_tool_call)
        for cls in genai.all_subclasses(models.Model):
            self._patches.wrap(cls, "generate", _wrap_generate)
            self._patches.wrap(cls, "generate_stream", _wrap_generate_stream)

    def uninstall(self) -> None:
        self._patches.restore()
