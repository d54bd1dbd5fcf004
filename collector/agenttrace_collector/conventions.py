"""Reading a span in any convention: OpenTelemetry GenAI (gen-ai/1.42 and older), OpenInference, OpenLLMetry.

GenAI's ``invoke_workflow`` spans are containers: the agent and model spans under them make the steps. A ``plan``
span is a container for the LLM call that drafts the plan; one that carries the plan itself (its output messages,
no model call under it) is a step of the planning agent. An MCP ``tools/call`` span is a tool call; an A2A ``SendMessage`` span is a handoff to the agent it
calls, which may run in another process (the trace context joins them). When both the client and the server
of one MCP or A2A call are traced, the server's span (under the client's) is read as a container.

Each span is normalised into a :class:`Normalized` - what kind of step-bearing
thing it is (run, agent, LLM call, tool call, handoff) and its content as
GenAI messages - so trajectory assembly is written once for all conventions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from agenttrace import semconv as sc
from agenttrace.genai import LANGGRAPH_INTERNAL_NODES
from agenttrace_collector.spanview import SpanView


class Kind(str, Enum):
    RUN = "run"
    AGENT = "agent"
    LLM = "llm"
    TOOL = "tool"
    HANDOFF = "handoff"
    PLAN = "plan"
    OTHER = "other"


@dataclass
class Normalized:
    kind: Kind
    agent: str | None = None
    input_messages: list[dict[str, Any]] = field(default_factory=list)
    output_messages: list[dict[str, Any]] = field(default_factory=list)
    tool_name: str | None = None
    tool_call_id: str | None = None
    tool_arguments: Any = None
    tool_result: Any = None
    transfer_to: str | None = None
    input_text: str | None = None
    output_text: str | None = None


LLM_OPERATIONS = {"chat", "text_completion", "generate_content", "completion"}
AGENT_OPERATIONS = {"invoke_agent"}
CONTAINER_OPERATIONS = {"invoke_workflow"}
PLAN_OPERATION = "plan"
MCP_METHOD = "mcp.method.name"
MCP_TOOL_CALL = "tools/call"
A2A_METHOD = "a2a.method.name"
A2A_MESSAGE_METHODS = {"SendMessage", "SendStreamingMessage", "message/send", "message/stream"}  # 1.0 and 0.x names
OPENINFERENCE_KINDS = {"AGENT": Kind.AGENT, "LLM": Kind.LLM, "TOOL": Kind.TOOL}
TRACELOOP_KINDS = {"agent": Kind.AGENT, "tool": Kind.TOOL}


def normalize(span: SpanView) -> Normalized:
    a = span.attrs
    if a.get(sc.SPAN_KIND) == "run":
        return Normalized(Kind.RUN, input_text=_text(a.get(sc.RUN_TASK)), output_text=_text(a.get(sc.RUN_ANSWER)))
    op = a.get(sc.GEN_AI_OPERATION_NAME)
    if op in CONTAINER_OPERATIONS:
        return Normalized(Kind.OTHER)
    if op == PLAN_OPERATION:
        return _genai(span, Kind.PLAN)
    if a.get(A2A_METHOD) in A2A_MESSAGE_METHODS:  # the called agent's name comes from its Agent Card, if known
        return Normalized(Kind.HANDOFF, transfer_to=a.get(sc.GEN_AI_AGENT_NAME))
    if op in AGENT_OPERATIONS and "gen_ai.workflow.nodes" in a:
        # OpenLLMetry's LangGraph graph-invocation marker: a sibling of the agent's work, not its parent
        return Normalized(Kind.OTHER)
    if op in AGENT_OPERATIONS:
        return _genai(span, Kind.AGENT)
    if op in LLM_OPERATIONS:
        return _genai(span, Kind.LLM)
    if op == sc.OP_EXECUTE_TOOL or a.get(MCP_METHOD) == MCP_TOOL_CALL:
        return _genai(span, Kind.TOOL)
    if "openinference.span.kind" in a:
        return _openinference(span)
    if "traceloop.span.kind" in a or any(k.startswith("gen_ai.prompt.") for k in a):
        return _openllmetry(span)
    if not op and (a.get(sc.GEN_AI_SYSTEM) or a.get(sc.GEN_AI_PROVIDER_NAME)) and a.get(sc.GEN_AI_REQUEST_MODEL):
        return _genai(span, Kind.LLM)
    if a.get(sc.TRANSFER_TARGET):
        return Normalized(Kind.HANDOFF, transfer_to=a[sc.TRANSFER_TARGET])
    if a.get("gen_ai.handoff.to_agent"):  # opentelemetry-instrumentation-openai-agents-v2 ("agent_handoff")
        return Normalized(Kind.HANDOFF, transfer_to=a["gen_ai.handoff.to_agent"])
    return Normalized(Kind.OTHER)


# ---- OpenTelemetry GenAI -------------------------------------------------------
def _genai(span: SpanView, kind: Kind) -> Normalized:
    a = span.attrs
    n = Normalized(kind, agent=a.get(sc.GEN_AI_AGENT_NAME))
    n.input_messages = _json_list(a.get(sc.GEN_AI_INPUT_MESSAGES))
    n.output_messages = _json_list(a.get(sc.GEN_AI_OUTPUT_MESSAGES))
    _genai_events(span, n)
    if kind is Kind.LLM:
        n.output_messages = [_unrepr_message(m) for m in n.output_messages]
    if kind in (Kind.AGENT, Kind.PLAN) and not n.agent:
        n.agent = _strip_prefix(span.name, "invoke_agent" if kind is Kind.AGENT else PLAN_OPERATION)
    if kind is Kind.TOOL:
        n.tool_name = (a.get(sc.GEN_AI_TOOL_NAME) or _strip_prefix(span.name, "execute_tool")
                       or _strip_prefix(span.name, MCP_TOOL_CALL))
        n.tool_call_id = a.get(sc.GEN_AI_TOOL_CALL_ID)
        n.tool_arguments = _maybe_json(a.get(sc.GEN_AI_TOOL_CALL_ARGUMENTS))
        n.tool_result = _maybe_json(a.get(sc.GEN_AI_TOOL_CALL_RESULT))
        if "traceloop.span.kind" in a:  # OpenLLMetry wraps them: {"input_str": ...}, {"output": ToolMessage}
            n.tool_arguments, n.tool_result = _traceloop_tool_io(n.tool_arguments, n.tool_result)
    n.transfer_to = a.get(sc.TRANSFER_TARGET)
    return n


_EVENT_ROLES = {
    "gen_ai.system.message": "system", "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool",
}


def _genai_events(span: SpanView, n: Normalized) -> None:
    """Content carried on events: the util-genai details event, or the pre-1.37 per-message events."""
    for name, attrs in span.events:
        if sc.GEN_AI_INPUT_MESSAGES in attrs and not n.input_messages:
            n.input_messages = _json_list(attrs[sc.GEN_AI_INPUT_MESSAGES])
        if sc.GEN_AI_OUTPUT_MESSAGES in attrs and not n.output_messages:
            n.output_messages = _json_list(attrs[sc.GEN_AI_OUTPUT_MESSAGES])
        if name in _EVENT_ROLES:
            n.input_messages.append(_message(_EVENT_ROLES[name], attrs.get("content"), attrs.get("tool_calls")))
        elif name == "gen_ai.choice":
            msg = _maybe_json(attrs.get("message")) or {}
            if isinstance(msg, dict):
                n.output_messages.append(_message("assistant", msg.get("content"), msg.get("tool_calls")))


# ---- OpenInference ---------------------------------------------------------------
def _openinference(span: SpanView) -> Normalized:
    a = span.attrs
    kind = OPENINFERENCE_KINDS.get(str(a.get("openinference.span.kind")).upper(), Kind.OTHER)
    if kind is Kind.AGENT and not a.get("agent.name") and span.name in LANGGRAPH_INTERNAL_NODES:
        kind = Kind.OTHER  # OpenInference-LangChain calls a react agent's inner "agent" node an AGENT
    elif kind is Kind.OTHER and _langgraph_agent_node(span.name, _maybe_json(a.get("metadata"))):
        kind = Kind.AGENT  # a LangGraph node (supervisor / swarm member, function node) is the agent
    elif kind is Kind.TOOL and span.name.startswith("handoff to ") and not a.get("tool.name"):
        return Normalized(Kind.HANDOFF, transfer_to=_text(a.get("output.value")) or span.name[len("handoff to "):])
    n = Normalized(kind, input_text=_text(a.get("input.value")), output_text=_text(a.get("output.value")))
    if kind is Kind.AGENT:
        n.agent = a.get("agent.name") or a.get("graph.node.id") or span.name
    elif kind is Kind.LLM:
        n.input_messages = _flat_messages(a, "llm.input_messages.")
        n.output_messages = _flat_messages(a, "llm.output_messages.")
        n.agent = a.get("agent.name")
    elif kind is Kind.TOOL:
        n.tool_name = a.get("tool.name") or span.name
        n.tool_call_id = a.get("tool_call.id") or a.get("tool.id")
        # tool.parameters is the tool's JSON schema in OpenInference, not the call's arguments
        n.tool_arguments = _maybe_json(a.get("input.value") or a.get("tool_call.function.arguments"))
        n.tool_result = _maybe_json(a.get("output.value"))
    return n


def _flat_messages(a: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """OpenInference's flattened ``llm.input_messages.{i}.message.*`` keys back into messages."""
    out = []
    for fields in _indexed(a, prefix):
        calls = _indexed(fields, "message.tool_calls.", strip="tool_call.")
        content = fields.get("message.content")
        if content is None:
            texts = [v for k, v in sorted(fields.items()) if k.endswith("message_content.text")]
            content = "\n".join(texts) if texts else None
        tool_calls = [
            {"id": c.get("id"), "function": {"name": c.get("function.name"), "arguments": c.get("function.arguments")}}
            for c in calls
        ]
        out.append(_message(fields.get("message.role", "assistant"), content, tool_calls,
                            fields.get("message.tool_call_id")))
    return out


def _indexed(a: dict[str, Any], prefix: str, strip: str = "") -> list[dict[str, Any]]:
    """Flattened ``{prefix}{i}.{rest}`` keys grouped back by index ``i``, in index order, as ``{rest: value}``."""
    grouped: dict[int, dict[str, Any]] = {}
    for key, value in a.items():
        if key.startswith(prefix):
            idx, _, rest = key[len(prefix):].partition(".")
            if idx.isdigit():
                grouped.setdefault(int(idx), {})[rest.removeprefix(strip)] = value
    return [fields for _, fields in sorted(grouped.items())]


# ---- OpenLLMetry (Traceloop) --------------------------------------------------------
def _openllmetry(span: SpanView) -> Normalized:
    a = span.attrs
    tl_kind = a.get("traceloop.span.kind")
    if tl_kind in TRACELOOP_KINDS:
        kind = TRACELOOP_KINDS[tl_kind]
        name = a.get("traceloop.entity.name") or span.name
        n = Normalized(kind, input_text=_entity(a.get("traceloop.entity.input")),
                       output_text=_entity(a.get("traceloop.entity.output")))
        if kind is Kind.AGENT:
            n.agent = name
        else:
            n.tool_name = name
            n.tool_arguments = _maybe_json(a.get("traceloop.entity.input"))
            n.tool_result = _maybe_json(a.get("traceloop.entity.output"))
        return n
    if tl_kind == "task" and a.get("traceloop.entity.path") == "" and _langgraph_agent_node(
            a.get("traceloop.entity.name"), {"langgraph_node": a.get("traceloop.association.properties.langgraph_node")}):
        # OpenLLMetry-LangChain: a node of the top-level graph is an agent turn (its own invoke_agent span
        # is a sibling of the work, so it cannot be the scope)
        return Normalized(Kind.AGENT, agent=a["traceloop.entity.name"],
                          input_text=_entity(a.get("traceloop.entity.input")),
                          output_text=_entity(a.get("traceloop.entity.output")))
    if any(k.startswith("gen_ai.prompt.") or k.startswith("gen_ai.completion.") for k in a):
        return Normalized(Kind.LLM, input_messages=_indexed_messages(a, "gen_ai.prompt."),
                          output_messages=_indexed_messages(a, "gen_ai.completion."))
    return Normalized(Kind.OTHER)


def _unrepr_message(msg: dict[str, Any]) -> dict[str, Any]:
    """A message whose only text part is the Python repr of an OpenAI message dict, read back into parts.

    opentelemetry-instrumentation-openai-agents-v2 0.1 writes a Chat Completions answer with tool calls
    as ``str(message_dict)``; without this the step would lose its tool calls and handoff.
    """
    parts = msg.get("parts") or ()
    if len(parts) != 1 or parts[0].get("type") != "text":
        return msg
    text = parts[0].get("content")
    if not (isinstance(text, str) and text.startswith("{'") and "'role'" in text):
        return msg
    import ast

    try:
        doc = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return msg
    if not isinstance(doc, dict):
        return msg
    return _message(msg.get("role") or doc.get("role") or "assistant", doc.get("content"), doc.get("tool_calls"))


def _langgraph_agent_node(name: Any, metadata: Any) -> bool:
    """Whether a span is a LangGraph node run that stands for an agent (named like its node, not internal)."""
    return (isinstance(name, str) and isinstance(metadata, dict) and metadata.get("langgraph_node") == name
            and name not in LANGGRAPH_INTERNAL_NODES and not name.startswith("__"))


def _traceloop_tool_io(arguments: Any, result: Any) -> tuple[Any, Any]:
    if isinstance(arguments, dict) and "input_str" in arguments:
        raw = arguments["input_str"]
        arguments = _maybe_json(raw)
        if isinstance(arguments, str):
            import ast

            try:
                arguments = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                arguments = raw
    if isinstance(result, dict) and "output" in result:
        result = result["output"]
        if isinstance(result, dict) and isinstance(result.get("kwargs"), dict) and "content" in result["kwargs"]:
            result = result["kwargs"]["content"]  # a serialised ToolMessage
    return arguments, result


def _indexed_messages(a: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    out = []
    for fields in _indexed(a, prefix):
        calls = _indexed(fields, "tool_calls.")
        tool_calls = [{"id": c.get("id"), "function": {"name": c.get("name"), "arguments": c.get("arguments")}}
                      for c in calls]
        out.append(_message(fields.get("role", "assistant"), fields.get("content"), tool_calls,
                            fields.get("tool_call_id")))
    return out


def _entity(value: Any) -> str | None:
    """Traceloop entity input/output: JSON wrapping ``inputs``/``outputs``; the readable part as text."""
    doc = _maybe_json(value)
    if isinstance(doc, dict):
        for key in ("outputs", "inputs", "output", "input"):
            if key in doc:
                doc = doc[key]
                break
    return _text(doc)


# ---- shared helpers ------------------------------------------------------------------
def _message(role: str, content: Any, tool_calls: Any = None, tool_call_id: str | None = None) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if role == "tool":
        return {"role": "tool", "parts": [{"type": "tool_call_response", "id": tool_call_id, "response": content}]}
    if content not in (None, ""):
        parts.append({"type": "text", "content": content if isinstance(content, str) else _text(content)})
    for call in _maybe_json(tool_calls) or ():
        if not isinstance(call, dict):
            continue
        fn = call.get("function") or call
        if isinstance(fn, dict) and fn.get("name"):
            parts.append({"type": "tool_call", "id": _scalar_text(call.get("id")), "name": _scalar_text(fn["name"]),
                          "arguments": _maybe_json(fn.get("arguments"))})
    return {"role": role, "parts": parts}


def message_text(messages: list[dict[str, Any]]) -> str:
    """The text parts of messages, joined."""
    texts = []
    for msg in messages:
        for part in msg.get("parts") or ():
            if part.get("type") == "text" and part.get("content"):
                texts.append(str(part["content"]))
            elif part.get("type") == "reasoning" and part.get("content"):
                texts.append(f"[reasoning] {part['content']}")
        if "parts" not in msg and msg.get("content"):  # pre-parts layout
            texts.append(_text(msg["content"]) or "")
    return "\n".join(t for t in texts if t)


def message_tool_calls(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    calls = []
    for msg in messages:
        for part in msg.get("parts") or ():
            if part.get("type") == "tool_call":  # arguments may be a JSON string (PydanticAI, others)
                calls.append({**part, "arguments": _maybe_json(part.get("arguments"))})
        for call in msg.get("tool_calls") or ():  # pre-parts layout
            fn = call.get("function", call)
            calls.append({"id": call.get("id"), "name": fn.get("name"), "arguments": _maybe_json(fn.get("arguments"))})
    return calls


def last_user_text(messages: list[dict[str, Any]]) -> str | None:
    for msg in reversed(messages):
        if msg.get("role") in ("user", "human"):
            return message_text([msg]) or None
    return None


def _json_list(value: Any) -> list[dict[str, Any]]:
    """Messages from a JSON attribute, each cleaned to the shape the readers below expect."""
    doc = _maybe_json(value)
    if isinstance(doc, dict):
        doc = [doc]
    return [_clean_message(m) for m in doc if isinstance(m, dict)] if isinstance(doc, list) else []


def _clean_message(msg: dict[str, Any]) -> dict[str, Any]:
    """A sender's message with only well-formed parts and tool calls: objects, with text names.

    Senders write what they like into these attributes (``{"parts": [1]}``, a tool call whose name is a
    number); what cannot be read is dropped here, one part at a time, so the rest of the message stays.
    """
    out = dict(msg)
    if "parts" in msg:
        out["parts"] = [_named(p) for p in msg["parts"] if isinstance(p, dict)] if isinstance(msg["parts"], list) else []
    if "tool_calls" in msg:
        calls = msg["tool_calls"] if isinstance(msg["tool_calls"], list) else []
        out["tool_calls"] = [_named(_function_named(c)) for c in calls if isinstance(c, dict)]
    if not isinstance(out.get("role"), (str, type(None))):
        out["role"] = str(out["role"])
    return out


def _function_named(call: dict[str, Any]) -> dict[str, Any]:
    """A pre-parts tool call whose ``function`` is an object with a text name, or which has no ``function``."""
    fn = call.get("function")
    rest = {k: v for k, v in call.items() if k != "function"}
    return rest | ({"function": _named(fn)} if isinstance(fn, dict) else {})


def _named(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with its ``name``, ``id`` and ``type`` as text (or None)."""
    return {**obj, **{k: _scalar_text(obj[k]) for k in ("name", "id", "type") if k in obj}}


def _scalar_text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else _text(value)


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "[", '"'):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        doc = _maybe_json(value)
        if isinstance(doc, str):
            return doc
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _strip_prefix(name: str, prefix: str) -> str | None:
    if name.startswith(prefix + " "):
        return name[len(prefix) + 1:].strip() or None
    return None


HANDOFF_TOOL = re.compile(r"^(?:transfer_to_|transfer_back_to_|handoff_to_)(?P<target>.+)$")


def handoff_target(tool_name: str | None, arguments: Any) -> str | None:
    """The agent a handoff-style tool call transfers to (LangGraph supervisor/swarm, OpenAI Agents handoffs)."""
    if not tool_name:
        return None
    m = HANDOFF_TOOL.match(tool_name)
    if m:
        return m.group("target")
    # CrewAI's coworker tools: ``delegate_work_to_coworker`` / ``ask_question_to_coworker`` with function
    # calling, "Delegate work to coworker" / "Ask question to coworker" in its ReAct text format
    if tool_name.strip().lower().replace(" ", "_") in (
            "transfer_to_agent", "handoff", "delegate_work_to_coworker", "ask_question_to_coworker") \
            and isinstance(arguments, dict):
        return _scalar_text(arguments.get("agent_name") or arguments.get("coworker") or arguments.get("agent"))
    return None
