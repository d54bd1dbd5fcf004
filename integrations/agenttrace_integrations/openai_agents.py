"""OpenAI Agents SDK: a TracingProcessor (the SDK's own tracing interface) turning its spans into GenAI spans.

SDK span -> OpenTelemetry span:

* ``agent``      -> ``invoke_agent {agent.name}`` (one per agent activation; a handoff starts the next agent's)
* ``generation`` (Chat Completions models) and ``response`` (Responses API) -> ``chat {model}`` with the
  input/output messages, tool calls as parts, token usage
* ``function``   -> ``execute_tool {name}`` with arguments, result, and the SDK's span error as the tool's error
  (the SDK reports a tool failure it handed back to the model as a non-fatal span error)
* ``handoff``    -> a handoff span carrying ``agenttrace.transfer.target`` (the target's exact agent name)
* ``guardrail``  -> an ``execute_tool guardrail:{name}`` span, failed when it tripped

The first ``invoke_agent`` span of each run declares the run's team (``agenttrace.run.team``): the starting
agent and every agent its handoffs reach, each with its tools, read when ``Runner.run``, ``run_sync`` or
``run_streamed`` is called (those are wrapped), so an agent that never acts is in it too. A handoff built with
``handoff(agent)`` names its agent but does not hold it: that agent is listed without tools.

Other SDK spans (task, turn, custom, MCP) get no span of their own but keep the
tree: children hang under the nearest ancestor that has one. Each SDK trace's
root hangs under the OpenTelemetry context current when it began (the app's
``agenttrace.run``). Parentage follows the SDK's span ids, not the current
context. The processor is added next to the SDK's own (export to OpenAI keeps
working when the app has it on); the SDK hands it span contents only when
``trace_include_sensitive_data`` is on (the SDK default), and a tool's error text only when the tool has its own
``failure_error_function``: with the SDK's default one the span error reads "Tool execution failed. Error details
are redacted.", so a timeout and a service that is down look the same in the trace.
"""

from __future__ import annotations

import contextvars
import json
from typing import Any

from agenttrace import genai, semconv
from agenttrace.integration import DidNotEnable, Integration

_TRACE = "trace:"
# the team of the run being started in this context (set by the wrapped Runner entry points)
_starting_team: contextvars.ContextVar[list | None] = contextvars.ContextVar("agenttrace_oa_team", default=None)


def _team(starting_agent: Any) -> list[tuple[str, Any, Any]]:
    """The starting agent and every agent its handoffs reach, breadth first, each with its tools."""
    out, seen, todo = [], set(), [starting_agent]
    while todo:
        agent = todo.pop(0)
        name = getattr(agent, "name", None) or getattr(agent, "agent_name", None)  # an Agent, or a Handoff
        if not isinstance(name, str) or name in seen:
            continue
        seen.add(name)
        out.append((name, getattr(agent, "handoff_description", None), getattr(agent, "tools", None) or ()))
        todo += list(getattr(agent, "handoffs", None) or ())
    return out


def _wrap_run(original):
    async def run(self, starting_agent, *args, **kwargs):
        token = _starting_team.set(_team(starting_agent))
        try:
            return await original(self, starting_agent, *args, **kwargs)
        finally:
            _starting_team.reset(token)

    return run


def _wrap_run_streamed(original):
    def run_streamed(self, starting_agent, *args, **kwargs):
        token = _starting_team.set(_team(starting_agent))
        try:  # the task that runs the stream copies this context when it is created, in here
            return original(self, starting_agent, *args, **kwargs)
        finally:
            _starting_team.reset(token)

    return run_streamed


def _make_processor_class():
    from agents.tracing import TracingProcessor

    class AgentTraceProcessor(TracingProcessor):
        def __init__(self) -> None:
            self.table = genai.SpanTable()
            self.enabled = True
            self.teams: dict[str, list] = {}  # SDK trace id -> the team its first agent span declares

        # -- traces -----------------------------------------------------------------
        def on_trace_start(self, trace) -> None:
            if self.enabled:
                key = _TRACE + trace.trace_id
                self.table.add(key, None, None)
                self.table.set_root_context(key, genai.current_context())
                if team := _starting_team.get():
                    self.teams[trace.trace_id] = team

        def on_trace_end(self, trace) -> None:
            self.table.pop(_TRACE + trace.trace_id)
            self.teams.pop(trace.trace_id, None)

        # -- spans ------------------------------------------------------------------------
        def _parent(self, span):
            key = span.parent_id or (_TRACE + span.trace_id)
            parent = self.table.parent_of(key)
            return parent if parent is not None else genai.current_context()

        def _agent_name(self, span) -> str | None:
            for _, _, info in self.table.ancestors(span.parent_id):
                if isinstance(info, str):
                    return info
            return None

        def on_span_start(self, span) -> None:
            if not self.enabled:
                return
            data = span.span_data
            kind = getattr(data, "type", None)
            otel = None
            info = None
            if kind == "agent":
                info = data.name or "agent"
                otel = genai.start_agent(info, parent=self._parent(span), framework="openai_agents")
                if team := self.teams.pop(span.trace_id, None):
                    genai.declare_team(otel, team)
                if data.tools:
                    otel.set_attribute("agenttrace.agent.tools", list(data.tools))
                if data.handoffs:
                    otel.set_attribute("agenttrace.agent.handoffs", list(data.handoffs))
            elif kind in ("generation", "response"):
                model = getattr(data, "model", None)
                otel = genai.start_chat(model, None, parent=self._parent(span), agent=self._agent_name(span))
            elif kind == "function":
                otel = genai.start_tool(data.name, None, parent=self._parent(span))
            elif kind == "guardrail":
                otel = genai.start_tool(f"guardrail:{data.name}", None, parent=self._parent(span),
                                        tool_type="guardrail")
            self.table.add(span.span_id, otel, span.parent_id or (_TRACE + span.trace_id), info)

        def on_span_end(self, span) -> None:
            data = span.span_data
            kind = getattr(data, "type", None)
            otel, _ = self.table.pop(span.span_id)
            if kind == "handoff" and self.enabled and data.to_agent:
                otel = genai.start_handoff(data.from_agent, data.to_agent, parent=self._parent(span))
            if otel is None:
                return
            error = _error_text(span.error)
            if kind == "generation":
                _record_generation(otel, data)
            elif kind == "response":
                _record_response(otel, data)
            elif kind == "function":
                from agenttrace.spans import set_value

                set_value(otel, semconv.GEN_AI_TOOL_CALL_ARGUMENTS, _maybe_json(data.input))
                if data.output is not None:
                    genai.tool_result(otel, _maybe_json(data.output) if isinstance(data.output, str)
                                      else str(data.output))
            elif kind == "guardrail" and data.triggered:
                error = error or f"guardrail {data.name} tripped"
            genai.end(otel, error)

        def shutdown(self) -> None:
            for span in self.table.clear():
                span.end()

        def force_flush(self) -> None:
            pass

    return AgentTraceProcessor


def _error_text(err: Any) -> str | None:
    if not err:
        return None
    message = err.get("message") if isinstance(err, dict) else str(err)
    data = err.get("data") if isinstance(err, dict) else None
    detail = data.get("error") if isinstance(data, dict) else None
    return f"{message}: {detail}" if detail else (message or "error")


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _record_generation(otel, data) -> None:
    from agenttrace.spans import set_messages

    if data.input:
        set_messages(otel, semconv.GEN_AI_INPUT_MESSAGES, list(data.input), "user")
    usage = data.usage or {}
    output: list = []
    for item in data.output or ():
        if isinstance(item, dict) and isinstance(item.get("output"), list) and "role" not in item:
            # a streamed Chat Completions call records the adapter's Responses-shaped object
            output.extend(genai.responses_items_to_messages(item["output"], "assistant"))
        else:
            output.append(item)
    genai.chat_response(otel, output, model=data.model,
                        input_tokens=usage.get("input_tokens"), output_tokens=usage.get("output_tokens"))


def _record_response(otel, data) -> None:
    from agenttrace.spans import set_messages

    if data.input is not None:
        set_messages(otel, semconv.GEN_AI_INPUT_MESSAGES, genai.responses_items_to_messages(data.input, "user"),
                     "user")
    resp = data.response
    if resp is None:
        return
    usage = getattr(resp, "usage", None)
    model = getattr(resp, "model", None)
    if model:
        otel.set_attribute(semconv.GEN_AI_REQUEST_MODEL, model)
    genai.chat_response(
        otel, genai.responses_items_to_messages(getattr(resp, "output", None) or (), "assistant"),
        model=model, response_id=getattr(resp, "id", None),
        input_tokens=getattr(usage, "input_tokens", None), output_tokens=getattr(usage, "output_tokens", None),
    )
    instructions = getattr(resp, "instructions", None)
    if isinstance(instructions, str) and instructions:
        set_messages(otel, semconv.GEN_AI_SYSTEM_INSTRUCTIONS, instructions, "system")


class OpenAIAgentsIntegration(Integration):
    name = "openai_agents"
    requires = ("openai-agents>=0.1",)

    def __init__(self) -> None:
        self.processor = None
        self._patches = genai.Patches()

    def install(self, tracer_provider) -> None:
        try:
            from agents.run import AgentRunner
            from agents.tracing import add_trace_processor
        except ImportError as exc:  # pragma: no cover - guarded by requires
            raise DidNotEnable(f"openai_agents: {exc}") from exc
        self._patches.wrap(AgentRunner, "run", _wrap_run)  # run_sync runs it too
        self._patches.wrap(AgentRunner, "run_streamed", _wrap_run_streamed)
        self.processor = _make_processor_class()()
        add_trace_processor(self.processor)

    def uninstall(self) -> None:
        self._patches.restore()
        if self.processor is None:
            return
        self.processor.enabled = False
        try:  # the SDK has no public "remove": drop ours from its multi-processor
            from agents.tracing import get_trace_provider

            multi = getattr(get_trace_provider(), "_multi_processor", None)
            lock = getattr(multi, "_lock", None)
            if multi is not None and lock is not None:
                with lock:
                    multi._processors = tuple(p for p in multi._processors if p is not self.processor)
        except Exception:  # noqa: BLE001 - a disabled processor left behind is harmless
            pass
        self.processor.shutdown()
        self.processor = None
