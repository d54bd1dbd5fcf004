"""The tool calls a logged message records, read back as :class:`ToolCall` objects.

A Who&When-shaped ``history`` entry is a chat message; two conventions put tool calls in one:

* OpenAI chat messages (tau-bench, LangChain and OpenAI Agents SDK dumps, most chat transcripts): an
  assistant message's ``tool_calls``, ``[{"id", "type": "function", "function": {"name", "arguments"}}]``
  with the arguments as JSON text, each answered by a ``role: "tool"`` message carrying its ``tool_call_id``
  (or, in the older shape, a ``role: "function"`` message carrying the function's ``name``);
* agenttrace's own rendering (:meth:`agenttrace.models.Step.render`, what ``agenttrace export`` and the fault
  injector write): the agent's words, then one line per call, ``[tool call] name(arguments) -> result`` or
  ``-> error: ...``, then ``[transfer] -> agent`` and ``[error] ...``;
* ReAct text (LangChain's and LlamaIndex's ReAct agents, most research logs): lines ``Action: name`` and
  ``Action Input: arguments`` (text or JSON), or ``Action:`` and a JSON blob ``{"action": ..., "action_input":
  ...}``, each answered by the ``Observation: ...`` after it, in the same message or in the next message
  that starts with it. ``Thought:`` and ``Final Answer:`` lines are the agent's words.

A chat or ReAct log records a handoff only as a call: a call that names the next turn's agent is read as the
handoff to it (:func:`handed_to`). Without all this a run's tool calls read as prose: the attributor would see neither
which values a tool returned nor which arguments an agent chose.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from agenttrace.models import ToolCall, value_text

TOOL_ROLES = ("tool", "function")  # roles of a message that is a tool's answer, not an agent's turn

_MARKER = re.compile(r"^\[(tool call|transfer|error)\] ", re.MULTILINE)
_REACT = re.compile(r"^(Thought|Action Input|Action|Observation|Final Answer):[ \t]*", re.MULTILINE)
_FENCE = re.compile(r"^```\w*\s*|\s*```$")
_JSON_NAME_KEYS = ("action", "name", "tool")
_JSON_INPUT_KEYS = ("action_input", "arguments", "tool_input", "input")
_CALL_HEAD = re.compile(r"([^\s(]+)\(")
_ERROR = "error: "
_ARROW = " -> "


class MessageError(ValueError):
    """A message's tool calls do not have the expected shape; ``field`` is where, within the message."""

    def __init__(self, field: str, problem: str):
        self.field = field
        super().__init__(problem)


@dataclass
class Rendered:
    """A rendered step's parts: the agent's own words and what the rendering appended to them."""

    words: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    transfer_to: str | None = None
    error: str | None = None
    answer: str | None = None  # what the message answers an earlier message's call with (a ReAct observation)

    def records(self) -> bool:
        """Whether the text recorded a call, a handoff or an error beside the words."""
        return bool(self.tool_calls or self.transfer_to or self.error)


def openai_tool_calls(raw: Any) -> list[ToolCall]:
    """An OpenAI message's ``tool_calls``. Arguments that are JSON text are decoded; a ``result``/``error``
    key beside ``function`` (a log that answers a call in place) is kept."""
    if not isinstance(raw, list):
        raise MessageError("tool_calls", f"expected a list, got {type(raw).__name__}")
    calls = []
    for j, item in enumerate(raw):
        where = f"tool_calls[{j}]"
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise MessageError(f"{where}.function", 'expected {"name": ..., "arguments": ...} with a name')
        error = item.get("error")
        if error is not None and not isinstance(error, str):
            raise MessageError(f"{where}.error", f"expected a string, got {type(error).__name__}")
        call_id = item.get("id")
        calls.append(ToolCall(id=None if call_id is None else str(call_id), name=function["name"],
                              arguments=_decoded(function.get("arguments")), result=item.get("result"),
                              error=error))
    return calls


def answer_call(calls: list[ToolCall], message: dict[str, Any]) -> ToolCall | None:
    """The call among ``calls`` (the run's so far, oldest first) that a tool message answers: the one with its
    ``tool_call_id``, else the latest unanswered call of its ``name``, else the latest unanswered call."""
    call_id = message.get("tool_call_id")
    if call_id is not None:
        return next((c for c in calls if c.id == str(call_id)), None)
    open_calls = [c for c in calls if c.result is None and c.error is None]
    name = message.get("name")
    return next((c for c in reversed(open_calls) if c.name == name), open_calls[-1] if open_calls else None)


def handed_to(calls: list[ToolCall], agent: str, next_agent: str) -> str | None:
    """The agent a turn's calls hand over to: the next turn's agent, when it is another and a call names it
    (``transfer_to_billing``, ``handoff(to_agent="billing")``); a chat log records a handoff only as a call."""
    if next_agent == agent:
        return None
    return next_agent if any(names_agent(c, next_agent) for c in calls) else None


def names_agent(call: ToolCall, agent: str) -> bool:
    """Whether ``call`` names ``agent`` (case-insensitive), in its name or in its arguments."""
    target = agent.lower()
    return target in call.name.lower() or target in value_text(call.arguments).lower()


def unrender(content: str) -> Rendered:
    """``content`` as :meth:`Step.render` wrote it, split back into the step's parts; content without the
    rendering's lines is all words."""
    marks = [m for m in _MARKER.finditer(content) if _renders(content, m)]
    if not marks:
        return Rendered(content)
    out = Rendered(content[:marks[0].start()].removesuffix("\n"))
    for m, nxt in zip(marks, [*marks[1:], None]):
        body = content[m.end():nxt.start() - 1 if nxt else len(content)]
        if m.group(1) == "tool call":
            out.tool_calls.append(_call(body))
        elif m.group(1) == "transfer":
            out.transfer_to = body.removeprefix("-> ")
        else:
            out.error = body
    return out


def read_calls(content: str) -> Rendered:
    """A message's words and the calls its text records: agenttrace's rendering, else ReAct's blocks, else all
    words."""
    rendered = unrender(content)
    return rendered if rendered.records() else read_react(content) or rendered


def renders_handoffs(content: str) -> bool:
    """Whether ``content`` is agenttrace's rendering, which writes a handoff itself (``[transfer] -> X``): none
    of its calls stands for one."""
    return unrender(content).records()


def read_react(content: str) -> Rendered | None:
    """``content`` in the ReAct format: the agent's words (text before the first block, each thought without
    its ``Thought:`` label, ``Final Answer`` blocks), its calls, each with the ``Observation`` after it, and an
    ``Observation`` that comes before any call (it answers a call of an earlier message:
    :attr:`Rendered.answer`); None when it has no ReAct line."""
    marks = list(_REACT.finditer(content))
    if not marks:
        return None
    blocks = [(m.group(1), content[m.end():nxt.start() if nxt else len(content)].strip(), m.start(),
               nxt.start() if nxt else len(content)) for m, nxt in zip(marks, [*marks[1:], None])]
    out = Rendered(content[:marks[0].start()].strip())
    words = [out.words]
    for k, (kind, body, start, end) in enumerate(blocks):
        follows = blocks[k + 1][:2] if k + 1 < len(blocks) else ("", "")
        call = _react_call(body, follows[1] if follows[0] == "Action Input" else None) if kind == "Action" else None
        if call is not None:
            out.tool_calls.append(call)
        elif kind == "Observation" and not out.tool_calls and out.answer is None:
            out.answer = body
        elif kind == "Observation" and out.tool_calls and out.tool_calls[-1].result is None:
            out.tool_calls[-1].result = body
        elif kind == "Thought":
            words.append(body)  # the label is the format's, the thought the agent's
        elif not (kind == "Action Input" and k > 0 and blocks[k - 1][0] == "Action" and out.tool_calls):
            words.append(content[start:end].strip())
    out.words = "\n".join(w for w in words if w)
    return out


def _react_call(body: str, action_input: str | None) -> ToolCall | None:
    """An ``Action`` block as a call: a tool's name with its ``Action Input``, or a JSON blob naming both."""
    if action_input is None:
        blob = _decoded(_FENCE.sub("", body))
        if not isinstance(blob, dict):
            return None
        name = next((blob[k] for k in _JSON_NAME_KEYS if isinstance(blob.get(k), str) and blob[k]), None)
        arguments = next((blob[k] for k in _JSON_INPUT_KEYS if k in blob), None)
        return ToolCall(name=name, arguments=arguments) if name else None
    name = body.splitlines()[0].strip() if body else ""
    return ToolCall(name=name, arguments=_decoded(action_input.strip())) if name else None


def _renders(content: str, mark: re.Match) -> bool:
    """Whether the marker starts a block of the rendering: every block after the words is one."""
    rest = content[mark.start():]
    if mark.group(1) == "transfer":
        return rest.startswith("[transfer] -> ")
    if mark.group(1) == "tool call":
        return _CALL_HEAD.match(rest, len("[tool call] ")) is not None
    return True


def _call(body: str) -> ToolCall:
    """``name(arguments) -> result`` (or ``-> error: ...``, or nothing after the call) as a ToolCall. JSON
    arguments are decoded; text arguments end at the first ``) -> `` (text that holds one is cut there). The
    result stays the text it was rendered as (an attributor reads results as text)."""
    head = _CALL_HEAD.match(body)
    name, at = head.group(1), head.end()
    try:
        arguments, end = json.JSONDecoder().raw_decode(body, at)
        if not body.startswith(")", end):
            raise ValueError("more follows the JSON: the arguments were a string")
    except ValueError:
        end = body.find(")" + _ARROW, at)
        end = end if end >= 0 else len(body.rstrip()) - 1
        arguments = body[at:end] or None
    after = body[end + 1:]
    if not after.startswith(_ARROW):
        return ToolCall(name=name, arguments=arguments)
    answer = after[len(_ARROW):]
    if answer.startswith(_ERROR):
        return ToolCall(name=name, arguments=arguments, error=answer[len(_ERROR):])
    return ToolCall(name=name, arguments=arguments, result=answer)


def _decoded(arguments: Any) -> Any:
    if not isinstance(arguments, str):
        return arguments
    try:
        return json.loads(arguments)
    except json.JSONDecodeError:
        return arguments or None
