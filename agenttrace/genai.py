"""Shared building blocks for framework integrations: GenAI spans started and ended explicitly.

Framework hooks (LangChain callbacks, OpenAI Agents tracing processors, event
buses) report "X started" and "X ended" as separate calls, often on other
threads or tasks than the one that started the run. These helpers start
``invoke_workflow`` / ``invoke_agent`` / ``chat`` / ``execute_tool`` spans under an explicit parent
(never "whatever is current"), record their content through :mod:`agenttrace.spans`
(capture switch, redaction, truncation) and end them. :class:`SpanTable` maps
a framework's own run/span ids to the spans, so parentage follows the
framework's ids across threads and tasks.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from agenttrace import semconv
from agenttrace.content import maybe_json
from agenttrace.models import Teammate
from agenttrace.spans import record_error, set_messages, set_value, tracer, workflow_attributes
from agenttrace.team import encode as encode_team
from agenttrace.team import tool_spec

Parent = Span | Context | None

#: LangGraph node names that are parts of one agent (a prebuilt react agent's inner nodes,
#: langgraph-supervisor's wrapper, LangGraph's default graph name), never agents of their own.
#: Shared by the LangChain integration and the collector's reading of other instrumentors' spans.
LANGGRAPH_INTERNAL_NODES = frozenset({
    "agent", "call_agent", "call_model", "tools", "pre_model_hook", "post_model_hook",
    "generate_structured_response", "model", "model_request", "LangGraph",
})


def _ctx(parent: Parent) -> Context | None:
    if parent is None:
        return None
    if isinstance(parent, Span):
        return trace.set_span_in_context(parent)
    return parent


def _start(name: str, kind: SpanKind, parent: Parent, attrs: dict[str, Any], start_time: int | None) -> Span:
    return tracer().start_span(
        name, context=_ctx(parent), kind=kind,
        attributes={k: v for k, v in attrs.items() if v is not None}, start_time=start_time,
    )


def start_agent(
    name: str, *, parent: Parent = None, input: Any = None, agent_id: str | None = None,
    description: str | None = None, start_time: int | None = None, framework: str | None = None,
) -> Span:
    """An ``invoke_agent {name}`` span: one turn (or one activation) of the agent ``name``."""
    span = _start(f"{semconv.OP_INVOKE_AGENT} {name}", SpanKind.INTERNAL, parent, {
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_INVOKE_AGENT,
        semconv.GEN_AI_AGENT_NAME: name,
        semconv.GEN_AI_AGENT_ID: agent_id,
        semconv.GEN_AI_AGENT_DESCRIPTION: description,
        "agenttrace.framework": framework,  # not gen_ai.provider.name: that names the model's provider
    }, start_time)
    if input is not None:
        set_messages(span, semconv.GEN_AI_INPUT_MESSAGES, input, "user")
    return span


def declare_team(span: Span, members: Iterable[tuple[str, Any, Iterable[Any]]]) -> None:
    """Records the team a workflow coordinates, each agent as (name, description, its tool objects), on the
    workflow's span as ``agenttrace.run.team``: the collector takes it when the app's run declares none. A tool
    whose name and parameters cannot be read is left out; recording never breaks the framework's run."""
    team = []
    for name, description, tools in members:
        specs = []
        for tool in tools or ():
            try:
                specs.append(tool_spec(tool))
            except (TypeError, ValueError):
                continue
        team.append(Teammate(name=str(name), description=description if isinstance(description, str) else None,
                             tools=specs))
    if team:
        span.set_attribute(semconv.RUN_TEAM, encode_team(team))


def agent_output(span: Span, output: Any) -> None:
    """The output of an agent's turn, or of a workflow (``start_workflow``)."""
    set_messages(span, semconv.GEN_AI_OUTPUT_MESSAGES, output, "assistant")


def start_workflow(
    name: str, *, parent: Parent = None, input: Any = None, start_time: int | None = None,
    framework: str | None = None,
) -> Span:
    """An ``invoke_workflow {name}`` span: one invocation of a graph or crew that coordinates agents."""
    span = _start(f"{semconv.OP_INVOKE_WORKFLOW} {name}", SpanKind.INTERNAL, parent,
                  workflow_attributes(name, framework), start_time)
    if input is not None:
        set_messages(span, semconv.GEN_AI_INPUT_MESSAGES, input, "user")
    return span


def start_chat(
    model: str | None, messages: Any = None, *, parent: Parent = None, provider: str = "openai",
    agent: str | None = None, system_instructions: Any = None, start_time: int | None = None,
    operation: str = semconv.OP_CHAT,
) -> Span:
    """A ``chat {model}`` span with its input messages (OpenAI-style dicts or GenAI messages)."""
    span = _start(f"{operation} {model or 'unknown'}", SpanKind.CLIENT, parent, {
        semconv.GEN_AI_OPERATION_NAME: operation,
        semconv.GEN_AI_PROVIDER_NAME: provider,
        semconv.GEN_AI_REQUEST_MODEL: model,
        semconv.GEN_AI_AGENT_NAME: agent,
    }, start_time)
    if messages is not None:
        set_messages(span, semconv.GEN_AI_INPUT_MESSAGES, messages, "user")
    if system_instructions:
        set_messages(span, semconv.GEN_AI_SYSTEM_INSTRUCTIONS, system_instructions, "system")
    return span


def chat_response(
    span: Span, output: Any, *, model: str | None = None, input_tokens: int | None = None,
    output_tokens: int | None = None, finish_reason: str | None = None, response_id: str | None = None,
) -> None:
    """The model's answer on a chat span: text, or OpenAI-style message(s) with ``tool_calls``."""
    set_messages(span, semconv.GEN_AI_OUTPUT_MESSAGES, output, "assistant")
    for key, value in ((semconv.GEN_AI_RESPONSE_MODEL, model), (semconv.GEN_AI_USAGE_INPUT_TOKENS, input_tokens),
                       (semconv.GEN_AI_USAGE_OUTPUT_TOKENS, output_tokens), (semconv.GEN_AI_RESPONSE_ID, response_id)):
        if value is not None:
            span.set_attribute(key, value)
    if finish_reason:
        span.set_attribute(semconv.GEN_AI_RESPONSE_FINISH_REASONS, [finish_reason])


def start_tool(
    name: str, arguments: Any = None, *, parent: Parent = None, call_id: str | None = None,
    description: str | None = None, start_time: int | None = None, tool_type: str = "function",
) -> Span:
    """An ``execute_tool {name}`` span with the call's arguments."""
    span = _start(f"{semconv.OP_EXECUTE_TOOL} {name}", SpanKind.INTERNAL, parent, {
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_EXECUTE_TOOL,
        semconv.GEN_AI_TOOL_NAME: name,
        semconv.GEN_AI_TOOL_CALL_ID: call_id,
        semconv.GEN_AI_TOOL_TYPE: tool_type,
        semconv.GEN_AI_TOOL_DESCRIPTION: description,
    }, start_time)
    set_value(span, semconv.GEN_AI_TOOL_CALL_ARGUMENTS, arguments)
    return span


def tool_result(span: Span, result: Any) -> None:
    set_value(span, semconv.GEN_AI_TOOL_CALL_RESULT, result)


def start_handoff(source: str | None, target: str, *, parent: Parent = None, start_time: int | None = None) -> Span:
    """A handoff from ``source`` to ``target``, under the turn that hands off. The collector reads the first
    handoff of a turn as the step's ``transfer_to``; a turn with several gets a ``transfer_to_{target}``
    tool call for each."""
    return _start(f"handoff {target}", SpanKind.INTERNAL, parent, {
        semconv.TRANSFER_TARGET: target, "agenttrace.transfer.source": source,
    }, start_time)


def end(span: Span, error: BaseException | str | None = None, *, end_time: int | None = None) -> None:
    """Ends a span, marking it failed with ``error`` (an exception or a message)."""
    if isinstance(error, BaseException):
        record_error(span, error)
    elif error:
        span.set_attribute(semconv.ERROR_TYPE, "error")
        span.set_status(Status(StatusCode.ERROR, str(error)))
    span.end(end_time=end_time)


def current_context() -> Context:
    return otel_context.get_current()


# ---- OpenAI-shaped content --------------------------------------------------------
def responses_items_to_messages(items: Iterable[Any] | str | None, default_role: str) -> list[dict[str, Any]]:
    """OpenAI Responses API input/output items (dicts or SDK objects) as GenAI messages with parts."""
    if items is None:
        return []
    if isinstance(items, str):
        return [{"role": default_role, "parts": [{"type": "text", "content": items}]}]
    out: list[dict[str, Any]] = []
    for raw in items:
        item = _as_dict(raw)
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            content = item.get("content")
            if isinstance(content, str):
                parts = [{"type": "text", "content": content}] if content else []
            else:
                parts = [{"type": "text", "content": p.get("text") or p.get("refusal") or ""}
                         for p in map(_as_dict, content or ()) if p.get("type") in (
                             "output_text", "input_text", "text", "refusal")]
            out.append({"role": item.get("role") or default_role, "parts": parts})
        elif kind == "function_call":
            part = {"type": "tool_call", "id": item.get("call_id") or item.get("id"), "name": item.get("name"),
                    "arguments": maybe_json(item.get("arguments"))}
            if out and out[-1]["role"] == "assistant" and out[-1].get("_calls"):
                out[-1]["parts"].append(part)
            else:
                out.append({"role": "assistant", "parts": [part], "_calls": True})
        elif kind == "function_call_output":
            out.append({"role": "tool", "parts": [{"type": "tool_call_response", "id": item.get("call_id"),
                                                   "response": item.get("output")}]})
        elif kind == "reasoning":
            text = " ".join(_as_dict(s).get("text", "") for s in item.get("summary") or ())
            if text:
                out.append({"role": "assistant", "parts": [{"type": "reasoning", "content": text}]})
    for msg in out:
        msg.pop("_calls", None)
    return out


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, Mapping):
        return dict(obj)
    dump = getattr(obj, "model_dump", None)
    if dump is not None:
        try:
            return dump(exclude_none=True)
        except Exception:  # noqa: BLE001 - any pydantic failure: fall back to attributes
            pass
    return dict(getattr(obj, "__dict__", {}) or {})


# ---- framework ids -> spans ---------------------------------------------------------
class SpanTable:
    """Spans by a framework's own ids, with each id's parent id, thread-safe.

    Entries without a span (framework runs that are not worth a span) still
    record their parent, so :meth:`parent_of` finds the nearest ancestor that
    has one; the root of each tree remembers the OpenTelemetry context that was
    current when it began (the app's ``agenttrace.run`` span).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[Span | None, Hashable | None, Any]] = {}
        self._roots: dict[Hashable, Context] = {}

    def add(self, key: Hashable, span: Span | None, parent_key: Hashable | None, info: Any = None) -> None:
        with self._lock:
            self._entries[key] = (span, parent_key, info)

    def set_root_context(self, key: Hashable, ctx: Context) -> None:
        with self._lock:
            self._roots[key] = ctx

    def pop(self, key: Hashable) -> tuple[Span | None, Any]:
        with self._lock:
            span, _, info = self._entries.pop(key, (None, None, None))
            self._roots.pop(key, None)
            return span, info

    def get(self, key: Hashable) -> tuple[Span | None, Any]:
        with self._lock:
            span, _, info = self._entries.get(key, (None, None, None))
            return span, info

    def ancestors(self, key: Hashable | None) -> Iterable[tuple[Hashable, Span | None, Any]]:
        """``key`` and its ancestors, nearest first, as ``(key, span, info)``."""
        with self._lock:
            seen = set()
            chain = []
            while key is not None and key in self._entries and key not in seen:
                seen.add(key)
                span, parent, info = self._entries[key]
                chain.append((key, span, info))
                key = parent
        return chain

    def parent_of(self, parent_key: Hashable | None) -> Span | Context | None:
        """The span to start a child of ``parent_key`` under: nearest ancestor span, else the tree's root context."""
        chain = list(self.ancestors(parent_key))
        for _, span, _ in chain:
            if span is not None:
                return span
        with self._lock:
            for key, _, _ in reversed(chain):
                if key in self._roots:
                    return self._roots[key]
        return None

    def root_context(self, key: Hashable) -> Context | None:
        with self._lock:
            return self._roots.get(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> list[Span]:
        with self._lock:
            spans = [s for s, _, _ in self._entries.values() if s is not None]
            self._entries.clear()
            self._roots.clear()
            return spans


# ---- monkey patches, undone symmetrically ---------------------------------------------
class Patches:
    """Method wrappers (and plain attribute replacements) on framework classes/modules, undone in reverse order.

    ``wrap(cls, "name", make)`` replaces ``cls.name`` with ``make(original)``. By
    default only an attribute in ``cls.__dict__`` is wrapped (subclasses that
    inherit it are covered once; returns False when there is none or it is
    already wrapped); ``inherited=True`` also wraps an inherited one on ``cls``
    itself, removed again on undo. The wrapper keeps the original's ``__dict__``
    (framework decorators mark handlers with attributes) and ``__wrapped__``;
    static/class methods stay static/class methods. ``set(owner, "name", value)``
    replaces a module or class attribute outright. ``restore()`` (alias
    ``undo()``) puts every original back. Idempotent both ways.
    """

    def __init__(self) -> None:
        self._done: list[tuple[Any, str, Any, bool]] = []

    def wrap(self, owner: Any, attr: str, make: Any, *, inherited: bool = False) -> bool:
        import functools

        own = attr in getattr(owner, "__dict__", {})
        if isinstance(owner, type) and not own and not inherited:
            return False
        original = owner.__dict__[attr] if own else getattr(owner, attr, None)
        if original is None or getattr(original, "__agenttrace_wrapped__", False):
            return False
        func = original.__func__ if isinstance(original, (staticmethod, classmethod)) else original
        wrapper = make(func)
        try:
            functools.update_wrapper(wrapper, func)
        except (AttributeError, TypeError):
            pass
        try:
            wrapper.__agenttrace_wrapped__ = True
        except (AttributeError, TypeError):
            pass
        if isinstance(original, staticmethod):
            wrapper = staticmethod(wrapper)
        elif isinstance(original, classmethod):
            wrapper = classmethod(wrapper)
        setattr(owner, attr, wrapper)
        self._done.append((owner, attr, original, own))
        return True

    def set(self, owner: Any, attr: str, value: Any) -> Any:
        own = attr in getattr(owner, "__dict__", {})
        original = owner.__dict__[attr] if own else getattr(owner, attr)
        setattr(owner, attr, value)
        self._done.append((owner, attr, original, own))
        return original

    def restore(self) -> None:
        while self._done:
            owner, attr, original, own = self._done.pop()
            if own:
                setattr(owner, attr, original)
            else:
                try:
                    delattr(owner, attr)
                except AttributeError:
                    pass

    undo = restore

    def __bool__(self) -> bool:
        return bool(self._done)


def all_subclasses(base: type) -> list[type]:
    """``base`` and every class derived from it, as loaded now (to patch methods each subclass overrides)."""
    seen, todo = [], [base]
    while todo:
        cls = todo.pop()
        if cls not in seen:
            seen.append(cls)
            todo.extend(cls.__subclasses__())
    return seen
