"""CAMEL (and OWL, which runs on it): ``ChatAgent`` turns and ``Workforce`` task assignment as GenAI spans.

Hooked on camel-ai's own API (there is no upstream OpenTelemetry instrumentor):

* ``ChatAgent.step`` / ``astep`` -> ``invoke_agent {name}``; its model calls
  (``_get_model_response`` / ``_aget_model_response``) -> ``chat {model}`` and
  tool executions (``_execute_tool`` / ``_aexecute_tool``) -> ``execute_tool {tool}``
  nested inside. CAMEL swallows tool exceptions into a "Tool execution failed"
  result; that result marks the tool span as failed.
* ``SingleAgentWorker._process_task`` names the (cloned) worker agent after its
  worker: the agent's role name unless it is CAMEL's default "Assistant", else the
  worker description (what :mod:`agenttrace.adapters.camel` matches lessons on).
  The coordinator and task planner keep their role names ("Workforce Manager",
  "Task Planner" by default).
* a ``WorkforceCallback`` added to every ``Workforce`` turns ``task_assigned``
  into a handoff span from the coordinator's last turn to the assigned worker
  (one per assignment, with ``agenttrace.camel.task_id``), and ``task_failed``
  into an error event. One coordinator turn usually assigns every subtask; the
  collector then shows that step's ``transfer_to`` as the first worker and each
  assignment as a ``transfer_to_{worker}`` tool call.
"""

from __future__ import annotations

import contextvars
import json
import weakref
from typing import Any

from opentelemetry import trace

from agenttrace import genai, semconv
from agenttrace.integration import DidNotEnable, Integration
from agenttrace.spans import agent_step, llm_call, tool_call

DEFAULT_ROLE_NAMES = {"", "assistant", "user", "system"}
COORDINATOR, PLANNER = "Workforce Manager", "Task Planner"  # CAMEL's own role names for the two
TOOL_FAILED_PREFIX = "Tool execution failed"

# (name, node id, description) of the worker whose task is being processed here
_worker: contextvars.ContextVar[tuple[str, str | None, str | None] | None] = contextvars.ContextVar(
    "agenttrace_camel_worker", default=None)
_last_turn: weakref.WeakKeyDictionary[Any, trace.Span] = weakref.WeakKeyDictionary()
_names: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()  # coordinator / planner agents


def _own_role(agent: Any) -> str | None:
    role = str(getattr(agent, "role_name", "") or "")
    return role if role.strip().lower() not in DEFAULT_ROLE_NAMES else None


def worker_name(node: Any) -> str:
    """The name a worker node's agent is traced under: a non-default role name, else the description."""
    return _own_role(getattr(node, "worker", None)) or str(
        getattr(node, "description", None) or getattr(node, "node_id", None) or "worker")


def agent_name(agent: Any) -> tuple[str, str | None, str | None]:
    current = _worker.get()
    if current is not None:
        return current
    name = _names.get(agent) or str(getattr(agent, "role_name", "") or "") or "assistant"
    return name, getattr(agent, "agent_id", None), None


def _input(message: Any) -> Any:
    return message if isinstance(message, str) else getattr(message, "content", None) or str(message)


def _output(response: Any) -> str | None:
    msgs = getattr(response, "msgs", None)
    if msgs:
        return "\n".join(str(getattr(m, "content", "") or "") for m in msgs)
    return None


def _start_turn(self, input_message) -> Any:
    name, agent_id, description = agent_name(self)
    return agent_step(name, input=_input(input_message), agent_id=agent_id, description=description)


def _wrap_step(original):
    def step(self, input_message, *args, **kwargs):
        with _start_turn(self, input_message) as turn:
            response = original(self, input_message, *args, **kwargs)
            turn.output(_output(response))
            _last_turn[self] = turn.span
            return response

    return step


def _wrap_astep(original):
    async def astep(self, input_message, *args, **kwargs):
        with _start_turn(self, input_message) as turn:
            response = await original(self, input_message, *args, **kwargs)
            turn.output(_output(response))
            _last_turn[self] = turn.span
            return response

    return astep


def _model_name(agent: Any) -> str:
    backend = getattr(agent, "model_backend", None)
    model_type = getattr(backend, "model_type", None)
    return str(getattr(model_type, "value", model_type) or "unknown")


def _record_model(call, model_response: Any) -> None:
    completion = getattr(model_response, "response", None)
    choices = getattr(completion, "choices", None)
    if not choices:
        call.response(None)
        return
    message = choices[0].message
    out: dict[str, Any] = {"role": "assistant", "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [{"id": c.id, "function": {"name": c.function.name, "arguments": c.function.arguments}}
                             for c in message.tool_calls]
    usage = getattr(completion, "usage", None)
    call.response(out, model=getattr(completion, "model", None),
                  input_tokens=getattr(usage, "prompt_tokens", None),
                  output_tokens=getattr(usage, "completion_tokens", None),
                  finish_reason=getattr(choices[0], "finish_reason", None))


def _wrap_model(original):
    def get_model_response(self, openai_messages, *args, **kwargs):
        with llm_call(_model_name(self), list(openai_messages or ())) as call:
            response = original(self, openai_messages, *args, **kwargs)
            _record_model(call, response)
            return response

    return get_model_response


def _wrap_amodel(original):
    async def aget_model_response(self, openai_messages, *args, **kwargs):
        with llm_call(_model_name(self), list(openai_messages or ())) as call:
            response = await original(self, openai_messages, *args, **kwargs)
            _record_model(call, response)
            return response

    return aget_model_response


def _tool_outcome(handle, record: Any) -> None:
    result = getattr(record, "result", None)
    handle.result(result if isinstance(result, (str, int, float, bool, dict, list)) else str(result))
    if isinstance(result, str) and result.startswith(TOOL_FAILED_PREFIX):
        _fail(handle.span, result)


def _fail(span: trace.Span, message: str) -> None:
    span.set_attribute(semconv.ERROR_TYPE, "tool_error")
    span.set_status(trace.Status(trace.StatusCode.ERROR, message))


def _wrap_tool(original):
    def execute_tool(self, request, *args, **kwargs):
        with tool_call(request.tool_name, request.args, call_id=request.tool_call_id) as handle:
            record = original(self, request, *args, **kwargs)
            _tool_outcome(handle, record)
            return record

    return execute_tool


def _wrap_atool(original):
    async def aexecute_tool(self, request, *args, **kwargs):
        with tool_call(request.tool_name, request.args, call_id=request.tool_call_id) as handle:
            record = await original(self, request, *args, **kwargs)
            _tool_outcome(handle, record)
            return record

    return aexecute_tool


def _wrap_process_task(original):
    async def process_task(self, task, *args, **kwargs):
        token = _worker.set((worker_name(self), getattr(self, "node_id", None), getattr(self, "description", None)))
        try:
            return await original(self, task, *args, **kwargs)
        finally:
            _worker.reset(token)

    return process_task


def _find_node(workforce: Any, node_id: str) -> Any | None:
    for child in getattr(workforce, "_children", None) or ():
        if getattr(child, "node_id", None) == node_id:
            return child
    return None


def _make_callback_class():
    from camel.societies.workforce.workforce_callback import WorkforceCallback

    class AgentTraceWorkforceCallback(WorkforceCallback):
        """Task assignments as handoff spans under the coordinator's deciding turn, one per assigned task."""

        def __init__(self, workforce: Any) -> None:
            self._workforce = weakref.ref(workforce)

        def log_task_assigned(self, event) -> None:
            workforce = self._workforce()
            if workforce is None:
                return
            node = _find_node(workforce, event.worker_id)
            target = worker_name(node) if node is not None else event.worker_id
            coordinator = getattr(workforce, "coordinator_agent", None)
            parent = _last_turn.get(coordinator) if coordinator is not None else None
            if parent is None:
                return
            span = genai.start_handoff(agent_name(coordinator)[0], target, parent=parent)
            span.set_attribute("agenttrace.camel.task_id", event.task_id)
            genai.end(span)

        def log_task_failed(self, event) -> None:
            span = trace.get_current_span()
            if span.is_recording():
                span.add_event("camel.task_failed", {"task_id": event.task_id,
                                                    "error": json.dumps(event.error_message)[:2000]})

        # the remaining events carry nothing the trajectory needs
        def log_message(self, event) -> None: ...
        def log_task_created(self, event) -> None: ...
        def log_task_decomposed(self, event) -> None: ...
        def log_task_started(self, event) -> None: ...
        def log_task_updated(self, event) -> None: ...
        def log_task_completed(self, event) -> None: ...
        def log_worker_created(self, event) -> None: ...
        def log_worker_deleted(self, event) -> None: ...
        def log_all_tasks_completed(self, event) -> None: ...

    return AgentTraceWorkforceCallback


class CamelIntegration(Integration):
    name = "camel"
    requires = ("camel-ai>=0.2.70",)

    def __init__(self) -> None:
        self._patches = genai.Patches()

    def install(self, tracer_provider: trace.TracerProvider) -> None:
        try:
            from camel.agents import ChatAgent
            from camel.societies.workforce import single_agent_worker, workforce
        except ImportError as exc:  # pragma: no cover - requirements were checked
            raise DidNotEnable(f"camel: {exc}") from exc
        callback_class = _make_callback_class()
        self._patches.wrap(ChatAgent, "step", _wrap_step)
        self._patches.wrap(ChatAgent, "astep", _wrap_astep)
        self._patches.wrap(ChatAgent, "_get_model_response", _wrap_model)
        self._patches.wrap(ChatAgent, "_aget_model_response", _wrap_amodel)
        self._patches.wrap(ChatAgent, "_execute_tool", _wrap_tool)
        self._patches.wrap(ChatAgent, "_aexecute_tool", _wrap_atool)
        self._patches.wrap(single_agent_worker.SingleAgentWorker, "_process_task", _wrap_process_task)

        def make_init(original):
            def init(self, *args, **kwargs):
                original(self, *args, **kwargs)
                for attr, default in (("coordinator_agent", COORDINATOR), ("task_agent", PLANNER)):
                    agent = getattr(self, attr, None)
                    if agent is not None:
                        _names[agent] = _own_role(agent) or default
                callbacks = getattr(self, "_callbacks", None)
                if isinstance(callbacks, list) and not any(isinstance(cb, callback_class) for cb in callbacks):
                    callbacks.append(callback_class(self))

            return init

        self._patches.wrap(workforce.Workforce, "__init__", make_init)

    def uninstall(self) -> None:
        self._patches.restore()
