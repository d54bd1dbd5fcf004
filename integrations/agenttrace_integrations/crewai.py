"""CrewAI: agent executions, LLM calls, tool uses and coworker delegations as GenAI spans.

Hooked on CrewAI's own event bus (``crewai.events.crewai_event_bus``). Its
registered handlers run later, in a thread pool, in no fixed order, so a
"started" handler may run after its "completed" one; instead this integration
wraps ``CrewAIEventsBus.emit`` and reads every event synchronously, in the
emitting thread, right after the bus has stamped it with ``event_id``,
``parent_event_id`` (the enclosing crew / task / agent / executor / tool scope)
and ``started_event_id`` (the "started" event a "completed" one closes).
Parentage follows those ids (a :class:`agenttrace.genai.SpanTable`), never
"whatever span is current" (CrewAI runs agent executors on its own event-loop
threads); span times are the events' timestamps.

* ``crew_kickoff_started/completed/failed`` -> ``invoke_workflow {crew name}`` (a crew is a workflow)
  with the kickoff inputs, the crew's team (each agent's role, goal and tools) and the crew's output;
* ``agent_execution_started/completed/error`` (and ``lite_agent_execution_*``
  for ``Agent.kickoff``) -> ``invoke_agent {agent.role}``;
* ``llm_call_started/completed/failed`` -> ``chat {model}`` with the messages and
  the answer (text, or the tool calls of a function-calling turn);
* ``tool_usage_started/finished/error`` -> ``execute_tool {tool_name}`` with
  arguments, result, error status, and the tool call id of the model's call
  it answers when the model made one;
* a coworker tool (``delegate_work_to_coworker`` / ``ask_question_to_coworker``,
  hierarchical crews' manager and ``allow_delegation=True`` agents) carries
  ``agenttrace.transfer.target`` = the role of the coworker whose execution
  runs inside it.

No upstream instrumentor is used. ``openinference-instrumentation-crewai``
(1.1.x) by default wraps ``Crew.kickoff`` / ``Task._execute_core`` /
``ToolUsage._use`` (no LLM calls; tools run by native function calling,
which bypasses ``ToolUsage``, are missed); its opt-in event-listener mode buffers the bus's out-of-order
handlers, but writes OpenInference attributes only (no ``gen_ai.*``, agents
named ``{role}.{task}.execute``), no tool call ids, and no delegation target
(its parent agent is guessed from the crew's agent order). Reading the bus
synchronously needs no buffering and no extra dependency.
"""

from __future__ import annotations

import functools
import json
import threading
from datetime import datetime
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from agenttrace import genai, semconv
from agenttrace.content import maybe_json
from agenttrace.integration import DidNotEnable, Integration

_AGENT_STARTED = ("agent_execution_started", "lite_agent_execution_started")
_AGENT_ENDED = {"agent_execution_completed": None, "lite_agent_execution_completed": None,
                "agent_execution_error": "error", "lite_agent_execution_error": "error"}


def _ns(ts: Any) -> int | None:
    return int(ts.timestamp() * 1_000_000_000) if isinstance(ts, datetime) else None


def _role(agent: Any, fallback: Any = None) -> str:
    role = getattr(agent, "role", None) or (agent.get("role") if isinstance(agent, dict) else None) or fallback
    return str(role).strip() if role else "agent"


def _tool_calls(response: Any) -> list[dict[str, Any]] | None:
    """The OpenAI-style tool calls of a function-calling answer (a list of dicts or SDK objects), else None."""
    if not isinstance(response, list) or not response:
        return None
    calls = []
    for raw in response:
        call = genai._as_dict(raw)
        fn = genai._as_dict(call.get("function") or {})
        if not fn.get("name"):
            return None
        calls.append({"id": call.get("id"), "type": "function",
                      "function": {"name": fn.get("name"), "arguments": fn.get("arguments")}})
    return calls


def _text(response: Any) -> str:
    if isinstance(response, str):
        return response
    dump = getattr(response, "model_dump_json", None)
    if dump is not None:
        try:
            return dump()
        except Exception:  # noqa: BLE001 - any pydantic failure: plain str
            pass
    return str(response)


def _messages(messages: Any) -> Any:
    """CrewAI's OpenAI-style messages without its private keys (``cache_breakpoint``)."""
    if not isinstance(messages, list):
        return messages
    return [{k: v for k, v in m.items() if k != "cache_breakpoint"} if isinstance(m, dict) else m for m in messages]


class _Tracer:
    """Turns bus events into spans; one per installed integration."""

    def __init__(self, scope_starting: frozenset[str] = frozenset()) -> None:
        #: the event types CrewAI opens a scope with (closed by a later event naming it ``started_event_id``)
        self.scope_starting = scope_starting
        self.table = genai.SpanTable()
        # agent span key -> tool calls the agent's model asked for, not yet run: [(name, args, id)]
        self._pending: dict[str, list[tuple[str, Any, str | None]]] = {}
        self._lock = threading.Lock()

    # ---- parentage ------------------------------------------------------------------
    def _parent(self, event: Any) -> Any:
        parent = event.parent_event_id
        found = self.table.parent_of(parent) if parent else None
        return found if found is not None else otel_context.get_current()

    def _agent_key(self, parent_key: str | None) -> str | None:
        for key, span, info in self.table.ancestors(parent_key):
            if span is not None and info == "agent":
                return key
        return None

    def _scope(self, event: Any) -> None:
        """Any other scope-opening event (crew, task, executor flow, ...): no span, but a link in the chain."""
        parent = event.parent_event_id
        self.table.add(event.event_id, None, parent)
        if not parent or not self.table.ancestors(parent):
            self.table.set_root_context(event.event_id, otel_context.get_current())

    # ---- events ----------------------------------------------------------------------
    def handle(self, source: Any, event: Any) -> None:
        kind = getattr(event, "type", None)
        if not isinstance(kind, str) or not getattr(event, "event_id", None):
            return
        if kind == "crew_kickoff_started":
            self._crew_started(source, event)
        elif kind in ("crew_kickoff_completed", "crew_kickoff_failed"):
            error = str(event.error or "crew kickoff failed") if kind == "crew_kickoff_failed" else None
            output = getattr(event, "output", None)  # a CrewOutput
            self._end_scope(event, error, None if output is None else str(output))  # its raw text
        elif kind in _AGENT_STARTED:
            self._agent_started(event, kind)
        elif kind in _AGENT_ENDED:
            self._agent_ended(event, _AGENT_ENDED[kind])
        elif kind == "llm_call_started":
            self._llm_started(source, event)
        elif kind in ("llm_call_completed", "llm_call_failed"):
            self._llm_ended(event, kind)
        elif kind == "tool_usage_started":
            self._tool_started(event)
        elif kind in ("tool_usage_finished", "tool_usage_error"):
            self._tool_ended(event, kind)
        elif kind in self.scope_starting:
            self._scope(event)
        elif event.started_event_id and kind.endswith(("_completed", "_failed", "_finished", "_error", "_paused")):
            self.table.pop(event.started_event_id)

    def _crew_started(self, crew: Any, event: Any) -> None:
        inputs = getattr(event, "inputs", None)
        span = genai.start_workflow(
            event.crew_name or "crew", parent=self._parent(event),
            input=json.dumps(inputs, ensure_ascii=False, default=str) if inputs else None,
            start_time=_ns(event.timestamp), framework="crewai",
        )
        genai.declare_team(span, [(_role(agent), getattr(agent, "goal", None), getattr(agent, "tools", None))
                                  for agent in getattr(crew, "agents", None) or ()])
        self.table.add(event.event_id, span, event.parent_event_id, "workflow")

    def _end_scope(self, event: Any, error: str | None, output: Any) -> None:
        """Ends the span the event's "started" event opened: failed with ``error``, else with ``output``."""
        span, _ = self.table.pop(event.started_event_id) if event.started_event_id else (None, None)
        if span is None:
            return
        if error is None:
            genai.agent_output(span, output)
        genai.end(span, error, end_time=_ns(event.timestamp))

    def _agent_started(self, event: Any, kind: str) -> None:
        if kind == "agent_execution_started":
            agent = event.agent
            name, task_input = _role(agent, event.agent_role), event.task_prompt
            agent_id, goal = getattr(agent, "id", None), getattr(agent, "goal", None)
        else:
            info = event.agent_info or {}
            name, task_input = _role(info, event.agent_role), event.messages
            agent_id, goal = info.get("id"), info.get("goal")
        span = genai.start_agent(
            name, parent=self._parent(event), input=_messages(task_input),
            agent_id=str(agent_id) if agent_id else None, description=str(goal) if goal else None,
            start_time=_ns(event.timestamp), framework="crewai",
        )
        # a coworker running inside a delegation tool: that tool transfers to this agent
        for _, tool_span, info in self.table.ancestors(event.parent_event_id):
            if tool_span is not None:
                if info == "tool":
                    tool_span.set_attribute(semconv.TRANSFER_TARGET, name)
                break
        self.table.add(event.event_id, span, event.parent_event_id, "agent")

    def _agent_ended(self, event: Any, error: str | None) -> None:
        with self._lock:
            self._pending.pop(event.started_event_id, None)
        if error:
            error = str(getattr(event, "error", None) or "agent execution failed")
        self._end_scope(event, error, getattr(event, "output", None))

    def _llm_started(self, source: Any, event: Any) -> None:
        provider = getattr(source, "provider", None)
        span = genai.start_chat(
            event.model or getattr(source, "model", None), _messages(event.messages), parent=self._parent(event),
            provider=str(provider) if provider else "openai", agent=event.agent_role,
            start_time=_ns(event.timestamp),
        )
        self.table.add(event.event_id, span, event.parent_event_id, "llm")

    def _llm_ended(self, event: Any, kind: str) -> None:
        key = event.started_event_id
        span, _ = self.table.pop(key) if key else (None, None)
        if span is None:
            return
        if kind == "llm_call_failed":
            genai.end(span, str(event.error or "LLM call failed"), end_time=_ns(event.timestamp))
            return
        calls = _tool_calls(event.response)
        if calls is not None:
            output: Any = {"role": "assistant", "content": None, "tool_calls": calls}
            agent = self._agent_key(event.parent_event_id)
            if agent is not None:
                with self._lock:
                    self._pending.setdefault(agent, []).extend(
                        (c["function"]["name"], maybe_json(c["function"]["arguments"]), c["id"]) for c in calls)
        else:
            output = {"role": "assistant", "content": _text(event.response)}
        usage = getattr(event, "usage", None) or {}  # usage, finish_reason, response_id: crewai 1.11+
        try:
            genai.chat_response(
                span, output, model=event.model,
                input_tokens=usage.get("prompt_tokens") or usage.get("input_tokens"),
                output_tokens=usage.get("completion_tokens") or usage.get("output_tokens"),
                finish_reason=getattr(event, "finish_reason", None), response_id=getattr(event, "response_id", None),
            )
        finally:
            genai.end(span, end_time=_ns(event.timestamp))

    def _call_id(self, event: Any, name: str, args: Any) -> str | None:
        agent = self._agent_key(event.parent_event_id)
        with self._lock:
            pending = self._pending.get(agent) if agent else None
            if not pending:
                return None
            match = next((i for i, (n, a, _) in enumerate(pending) if n == name and a == args), None)
            if match is None:
                match = next((i for i, (n, _, _) in enumerate(pending) if n == name), None)
            return pending.pop(match)[2] if match is not None else None

    def _tool_started(self, event: Any) -> None:
        name, args = str(event.tool_name), maybe_json(event.tool_args)
        span = genai.start_tool(
            name, args, parent=self._parent(event), call_id=self._call_id(event, name, args),
            start_time=_ns(event.timestamp),
        )
        self.table.add(event.event_id, span, event.parent_event_id, "tool")

    def _tool_ended(self, event: Any, kind: str) -> None:
        key = event.started_event_id
        span, _ = self.table.pop(key) if key else (None, None)
        if span is None:
            return
        end_time = _ns(getattr(event, "finished_at", None)) or _ns(event.timestamp)
        if kind == "tool_usage_error":
            error = event.error
            genai.end(span, error if isinstance(error, BaseException) else str(error or "tool error"),
                      end_time=end_time)
            return
        genai.tool_result(span, event.output)
        failure = getattr(event, "failure", None)
        genai.end(span, str(getattr(failure, "message", None) or failure) if failure else None, end_time=end_time)

    def close(self) -> None:
        for span in self.table.clear():
            span.end()
        with self._lock:
            self._pending.clear()


def _wrap_emit(tracer: _Tracer):
    def make(original):
        def emit(self, source, event):
            result = original(self, source, event)  # stamps the event's ids, then dispatches handlers
            _safe(tracer, source, event)
            return result

        return emit

    return make


def _wrap_aemit(tracer: _Tracer):
    def make(original):
        @functools.wraps(original)
        async def aemit(self, source, event):
            result = await original(self, source, event)
            _safe(tracer, source, event)
            return result

        return aemit

    return make


def _safe(tracer: _Tracer, source: Any, event: Any) -> None:
    try:
        tracer.handle(source, event)
    except Exception:  # noqa: BLE001 - tracing must never break a crew
        import logging

        logging.getLogger(__name__).debug("agenttrace: CrewAI event %r not traced", event, exc_info=True)


class CrewAIIntegration(Integration):
    name = "crewai"
    # event ids: ``started_event_id`` (which "started" event a "completed" one closes) came in 1.10
    requires = ("crewai>=1.10",)

    def __init__(self) -> None:
        self._patches = genai.Patches()
        self._tracer: _Tracer | None = None

    def install(self, tracer_provider: trace.TracerProvider) -> None:
        try:
            from crewai.events.event_bus import CrewAIEventsBus
        except ImportError as exc:  # pragma: no cover - requirements were checked
            raise DidNotEnable(f"crewai: {exc}") from exc
        if self._tracer is not None:
            return
        try:
            from crewai.events.event_context import SCOPE_STARTING_EVENTS
        except ImportError:  # pragma: no cover - older layouts: scopes that carry spans only
            SCOPE_STARTING_EVENTS = frozenset()
        self._tracer = _Tracer(frozenset(SCOPE_STARTING_EVENTS))
        self._patches.wrap(CrewAIEventsBus, "emit", _wrap_emit(self._tracer))
        if "aemit" in CrewAIEventsBus.__dict__:
            self._patches.wrap(CrewAIEventsBus, "aemit", _wrap_aemit(self._tracer))

    def uninstall(self) -> None:
        self._patches.restore()
        if self._tracer is not None:
            self._tracer.close()
            self._tracer = None
