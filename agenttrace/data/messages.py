"""A logged message, whatever convention wrote it, read back as words, tool calls and tool answers.

A Who&When-shaped ``history`` entry is a message; these conventions put tool calls in one:

* OpenAI chat messages (tau-bench, most chat transcripts): an assistant message's ``tool_calls``,
  ``[{"id", "type": "function", "function": {"name", "arguments"}}]`` with the arguments as JSON text, each
  answered by a ``role: "tool"`` message carrying its ``tool_call_id`` (or, in the older shape, a ``role:
  "function"`` message carrying the function's ``name``); ``content`` may be a list of parts
  (``{"type": "text", "text": ...}``);
* LangChain's message dicts: ``type`` ``ai``/``human``/``tool``/``system`` for the role, ``tool_calls`` as
  ``[{"name", "args", "id"}]``, ``invalid_tool_calls`` (arguments the model wrote that did not parse: calls that
  fail with the parser's error), a tool message's ``status: "error"`` marking a failed call; and the same
  messages serialized by ``langchain_core.load.dumpd``: ``{"lc": 1, "type": "constructor", "id": [...,
  "AIMessage"], "kwargs": {...}}``, the class for the type and the kwargs for the dict;
* Anthropic's content blocks: ``tool_use`` blocks (``id``, ``name``, ``input``) are calls, ``tool_result``
  blocks (``tool_use_id``, ``content``, ``is_error``) answers;
* the OpenAI Responses API items an OpenAI Agents SDK run's ``to_input_list()`` gives: ``{"type":
  "function_call", "call_id", "name", "arguments"}`` and ``{"type": "function_call_output", "call_id",
  "output"}`` beside its messages;
* smolagents' memory messages: a ``tool-call`` message, ``Calling tools:`` and the calls as a Python list,
  answered by a ``tool-response`` message, ``Call id: ...`` and ``Observation:`` (or ``Error:``) text;
* smolagents' memory steps (``agent.memory.get_full_steps()``): an action step's ``model_output`` is the
  agent's words, its ``tool_calls`` its calls, answered by its ``observations`` or failed by its ``error``; a
  task step's ``task`` is the user's words and a planning step's ``plan`` the agent's;
* AG2/AutoGen's: the older ``function_call`` (one call) and ``tool_responses`` (answers by call id);
* a browsing agent's report (autogen's MultimodalWebSurfer, Magentic-One): its action in the first person,
  ``I typed 'X' into 'Y'.``, then, after a blank line, the page it sees: one call whose result is the page;
* agenttrace's own rendering (:meth:`agenttrace.models.Step.render`, what ``agenttrace export`` and the fault
  injector write): the agent's words, then one line per call, ``[tool call] name(arguments) -> result`` or
  ``-> error: ...``, then ``[transfer] -> agent`` and ``[error] ...``;
* ReAct text (LangChain's and LlamaIndex's ReAct agents, most research logs): lines ``Action: name`` and
  ``Action Input: arguments`` (text or JSON), or ``Action:`` and a JSON blob ``{"action": ..., "action_input":
  ...}``, each answered by the ``Observation: ...`` after it, in the same message or in the next message
  that starts with it. ``Thought:`` and ``Final Answer:`` lines are the agent's words.

A tool answer that a log does not mark as failed is failed when its text starts the way frameworks write a
failure (``Error: ...``, ``ValueError: ...``, a Python traceback: :func:`reads_as_failure`).

A log other than agenttrace's records a handoff only as a call: a call that names the next turn's agent is
read as the handoff to it (:func:`handed_to`). Without all this a run's tool calls read as prose: the
attributor would see neither which values a tool returned nor which arguments an agent chose.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from agenttrace.models import ToolCall, value_text

TOOL_ROLES = ("tool", "function", "tool-response")  # roles of a message that is a tool's answer, not a turn
TEXT_PARTS = ("text", "input_text", "output_text", "summary_text")  # content parts that are words (others: images, files ...)
_LANGCHAIN_ROLES = {"ai": "assistant", "human": "user", "tool": "tool", "system": "system", "function": "function"}

_MARKER = re.compile(r"^\[(tool call|transfer|error)\] ", re.MULTILINE)
_FAILURE = re.compile(r"\A\s*(?:(?:error|exception)\s*[:\n]|traceback \(most recent call last\)|an error occurred"
                      r"|[\w.]*(?:error|exception)\s*[:(])", re.IGNORECASE)
_SMOL_CALLS = "Calling tools:"
_SMOL_CALL_ID = re.compile(r"\ACall id: *(\S+)\n")
# smolagents' memory steps, each told by keys its dict always has (older releases write ``step``, not ``step_number``)
_SMOL_STEPS = {"action": ("model_output", "observations", "tool_calls"), "planning": ("plan", "model_input_messages"),
               "task": ("task", "task_images")}
_LC_MESSAGE = re.compile(r"(\w+)Message(?:Chunk)?")  # a LangChain message class: AIMessage, ToolMessageChunk ...
# a browsing agent's report: its action in the first person on the first line, then what the page shows
# (autogen's MultimodalWebSurfer, Magentic-One)
_BROWSER_ACTION = re.compile(r"\AI (typed|clicked|scrolled|input|hovered over|answered|summarized|am waiting)\b([^\n]*)"
                             r"\n\n(.+)\Z", re.DOTALL)
_QUOTED = re.compile(r"'([^']*)'")
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


@dataclass
class Answer:
    """A tool's answer that a message carries, and what says which call it answers."""

    text: str
    call_id: str | None = None
    name: str | None = None
    error: bool = False


@dataclass
class Message:
    """A history item as the loader needs it: who speaks, their words, the calls they make, the answers the
    item carries, and whether a call may stand for a handoff (not in agenttrace's rendering, which writes
    handoffs itself)."""

    role: str | None
    name: str | None
    words: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    transfer_to: str | None = None
    error: str | None = None
    answers: list[Answer] = field(default_factory=list)
    calls_hand_off: bool = True


def read_message(item: dict[str, Any]) -> Message:
    """One history item in any of the module's conventions; a :class:`MessageError` says which field is not
    the shape it should be."""
    kind = item.get("type")
    if kind == "constructor" and "lc" in item:
        return _langchain_serialized(item)
    if (step := smolagents_step(item)) is not None:
        return _smolagents_step(item, step)
    if kind == "function_call":
        name = _string(item, "name")
        if not name:
            raise MessageError("name", "a function_call item needs the function's name")
        return Message("assistant", None, tool_calls=[
            ToolCall(id=_string(item, "call_id"), name=name, arguments=_decoded(item.get("arguments")))])
    if kind == "function_call_output":
        words, _, _ = _content(item.get("output"), "output")
        return Message("tool", None, answers=[_tool_answer(words, _string(item, "call_id"))])
    if kind == "reasoning":  # a model's reasoning summary: the agent's words
        return Message("assistant", None, _content(item.get("summary"), "summary")[0])
    role = _string(item, "role") or (_LANGCHAIN_ROLES.get(kind) if isinstance(kind, str) else None)
    name = _string(item, "name")
    words, calls, answers = _content(item.get("content"), "content")
    if item.get("tool_responses") is not None:  # AG2: the answers, each with its tool_call_id
        answers += [_tool_answer(_content(r.get("content"), "tool_responses")[0], _string(r, "tool_call_id"))
                    for r in _objects(item["tool_responses"], "tool_responses")]
        return Message(role, name, answers=answers)
    if (role or "").lower() in TOOL_ROLES:
        return Message(role, name, answers=[_tool_answer(words, _string(item, "tool_call_id"), name,
                                                         item.get("status"))])
    if role == "tool-call" and words.startswith(_SMOL_CALLS):
        return Message("assistant", name, tool_calls=openai_tool_calls(_literal(words[len(_SMOL_CALLS):])))
    if item.get("tool_calls") or item.get("invalid_tool_calls"):  # an empty list (dumpd writes one) is no call
        calls = openai_tool_calls(item["tool_calls"]) if item.get("tool_calls") else []
        return Message(role, name, words, calls + _invalid_tool_calls(item.get("invalid_tool_calls")), answers=answers)
    if item.get("function_call") is not None:
        return Message(role, name, words, openai_tool_calls([{"function": item["function_call"]}]), answers=answers)
    if calls or answers:
        return Message(role, name, words, calls, answers=answers)
    rendered = unrender(words)
    if rendered.records():
        return Message(role, name, rendered.words, rendered.tool_calls, rendered.transfer_to, rendered.error,
                       calls_hand_off=False)
    if (browsed := read_browser_action(words)) is not None:
        return Message(role, name, browsed.words, browsed.tool_calls)
    react = read_react(words)
    if react is None:
        return Message(role, name, words)
    return Message(role, name, react.words, react.tool_calls,
                   answers=[_tool_answer(react.answer)] if react.answer is not None else [])


def smolagents_step(item: dict[str, Any]) -> str | None:
    """Which smolagents memory step ``item`` is (``"action"``, ``"planning"``, ``"task"``), told by the keys its
    ``dict()`` always writes; None for any other item."""
    return next((step for step, keys in _SMOL_STEPS.items() if all(k in item for k in keys)), None)


def _smolagents_step(item: dict[str, Any], step: str) -> Message:
    """A smolagents memory step. The task is the user's words, a plan the agent's; an action step's words are
    its ``model_output``, and its ``observations`` answer its calls, or its ``error`` fails them (the step
    fails itself when it made none). ``model_input_messages`` is the prompt the step was given: an input,
    never the agent's words. A ``role`` or ``name`` beside the step's keys, as a Who&When item gives it, names
    the agent."""
    role, name = _string(item, "role"), _string(item, "name")
    if step == "task":
        return Message(role or "user", name, _string(item, "task") or "")
    if step == "planning":
        return Message(role or "assistant", name, _string(item, "plan") or "")
    words, _, _ = _content(item.get("model_output"), "model_output")
    calls = openai_tool_calls(item["tool_calls"]) if item["tool_calls"] else _unrecorded_calls(item)
    result, error = _string(item, "observations"), _smolagents_error(item.get("error"))
    if error is None and result is not None and reads_as_failure(result):
        result, error = None, result
    for call in calls:  # parallel calls share one answer: smolagents joins their outputs into one text
        call.result, call.error = result, error
    return Message(role or "assistant", name, words, calls, error=None if calls else error)


def _unrecorded_calls(item: dict[str, Any]) -> list[ToolCall]:
    """The calls in an action step's ``model_output_message``: smolagents records a step's ``tool_calls``
    only once every call has run, so a step whose call raised has its calls only there."""
    message = item.get("model_output_message")
    if not isinstance(message, dict) or not message.get("tool_calls"):
        return []
    with _within("model_output_message"):
        return openai_tool_calls(message["tool_calls"])


def _smolagents_error(error: Any) -> str | None:
    """An action step's error, as smolagents showed it to the model: its ``message`` (``AgentError.dict()``
    writes ``{"type", "message"}``), or the text a log wrote instead."""
    if error is None or isinstance(error, str):
        return error
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    raise MessageError("error", 'expected a string or {"type": ..., "message": ...}')


def _langchain_serialized(item: dict[str, Any]) -> Message:
    """A LangChain message as ``dumpd`` writes it: its kwargs read as LangChain's message dict, typed by the
    class's name without ``Message`` (``AIMessageChunk`` -> ``ai``; a chunk's kwargs give the class's name as
    its type). A ``name`` or ``role`` beside the serialization, as a Who&When item gives it, names the agent."""
    path = item.get("id")
    cls = path[-1] if isinstance(path, list) and path and isinstance(path[-1], str) else ""
    if (m := _LC_MESSAGE.fullmatch(cls)) is None:
        raise MessageError("id", f"expected a LangChain message class path such as [..., 'AIMessage'], got {path!r}")
    if not isinstance(item.get("kwargs"), dict):
        raise MessageError("kwargs", f"expected an object, got {type(item.get('kwargs')).__name__}")
    with _within("kwargs"):
        message = read_message(item["kwargs"] | {"type": m.group(1).lower()})
    message.name = _string(item, "name") or message.name
    message.role = _string(item, "role") or message.role
    return message


@contextmanager
def _within(where: str) -> Iterator[None]:
    """Names a :class:`MessageError` of a nested object's fields from the item (``kwargs.tool_calls[0]``)."""
    try:
        yield
    except MessageError as exc:
        raise MessageError(f"{where}.{exc.field}", str(exc)) from None


def reads_as_failure(text: str) -> bool:
    """Whether a tool's answer reads as a failure: ``Error: ...``, ``ValueError(...)``, ``An error occurred
    ...``, a Python traceback."""
    return bool(_FAILURE.match(text))


def _tool_answer(text: str, call_id: str | None = None, name: str | None = None, status: Any = None) -> Answer:
    """A tool's answer: failed when the log says so (``status``) or, when it says nothing, when it reads as a
    failure; smolagents' ``Call id:`` line names the call and its ``Observation:`` label goes."""
    if (m := _SMOL_CALL_ID.match(text)) is not None:
        call_id, text = call_id or m.group(1), text[m.end():]
    text = text.removeprefix("Observation:\n")
    failed = status == "error" if status in ("error", "success") else reads_as_failure(text)
    return Answer(text, call_id, name, failed)


def _literal(text: str) -> Any:
    """A Python literal written by ``str()`` (smolagents' calls), or JSON."""
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return _decoded(text.strip())


def _objects(raw: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        raise MessageError(where, "expected a list of objects")
    return raw


def _id(value: Any) -> str | None:
    """A call id as text (logs write some as numbers)."""
    return None if value is None else str(value)


def _string(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and key.endswith("id"):
        return str(value)
    raise MessageError(key, f"expected a string, got {type(value).__name__}")


def _content(content: Any, where: str) -> tuple[str, list[ToolCall], list[Answer]]:
    """A message's content: a string, or a list of parts (text parts, Anthropic's ``tool_use`` and
    ``tool_result`` blocks; other parts, such as images, carry no words)."""
    if content is None:
        return "", [], []
    if isinstance(content, str):
        return content, [], []
    if not isinstance(content, list):
        raise MessageError(where, f"expected a string or a list of parts, got {type(content).__name__}")
    texts: list[str] = []
    calls: list[ToolCall] = []
    answers: list[Answer] = []
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            raise MessageError(at, f"expected a string or an object with a 'type', got {type(part).__name__}")
        kind = part.get("type")
        if kind in TEXT_PARTS:
            if not isinstance(part.get("text"), str):
                raise MessageError(f"{at}.text", "a text part needs its text as a string")
            texts.append(part["text"])
        elif kind == "tool_use":
            if not isinstance(part.get("name"), str) or not part["name"]:
                raise MessageError(f"{at}.name", "a tool_use block needs the tool's name")
            calls.append(ToolCall(id=_id(part.get("id")), name=part["name"], arguments=part.get("input")))
        elif kind == "tool_result":
            text, _, _ = _content(part.get("content"), f"{at}.content")
            answers.append(Answer(text, _id(part.get("tool_use_id")), error=part.get("is_error") is True))
    return "\n".join(texts), calls, answers


def openai_tool_calls(raw: Any) -> list[ToolCall]:
    """A message's ``tool_calls``, OpenAI's shape or LangChain's. Arguments that are JSON text are decoded; a
    ``result``/``error`` key beside ``function`` (a log that answers a call in place) is kept."""
    if not isinstance(raw, list):
        raise MessageError("tool_calls", f"expected a list, got {type(raw).__name__}")
    calls = []
    for j, item in enumerate(raw):
        where = f"tool_calls[{j}]"
        function = item.get("function") if isinstance(item, dict) else None
        if function is None and isinstance(item, dict) and "args" in item:  # LangChain: {"name", "args", "id"}
            function = {"name": item.get("name"), "arguments": item["args"]}
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise MessageError(f"{where}.function", 'expected {"name": ..., "arguments": ...} with a name')
        error = item.get("error")
        if error is not None and not isinstance(error, str):
            raise MessageError(f"{where}.error", f"expected a string, got {type(error).__name__}")
        calls.append(ToolCall(id=_id(item.get("id")), name=function["name"],
                              arguments=_decoded(function.get("arguments")), result=item.get("result"),
                              error=error))
    return calls


def _invalid_tool_calls(raw: Any) -> list[ToolCall]:
    """LangChain's ``invalid_tool_calls``: calls the model wrote whose arguments did not parse. Nothing runs
    them; each fails with the parser's error, a failure of the agent's own making."""
    calls = []
    for j, item in enumerate(_objects(raw or [], "invalid_tool_calls")):
        with _within(f"invalid_tool_calls[{j}]"):
            calls.append(ToolCall(id=_id(item.get("id")), name=_string(item, "name") or "(unnamed)",
                                  arguments=_decoded(item.get("args")),
                                  error=_string(item, "error") or "its arguments could not be parsed"))
    return calls


def answer_call(calls: list[ToolCall], answer: Answer) -> ToolCall | None:
    """The call among ``calls`` (the run's so far, oldest first) that ``answer`` answers: the one with its call
    id, else the latest unanswered call of its tool's name, else the latest unanswered call."""
    if answer.call_id is not None:
        return next((c for c in calls if c.id == answer.call_id), None)
    open_calls = [c for c in calls if c.result is None and c.error is None]
    return next((c for c in reversed(open_calls) if c.name == answer.name), open_calls[-1] if open_calls else None)


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


def read_browser_action(content: str) -> Rendered | None:
    """A browsing agent's report, ``I typed 'X' into 'Y'.`` then the page it sees, as its words (the action's
    sentence) and one call (the verb, the first quoted text as its argument) whose result is the page; None for
    other text."""
    m = _BROWSER_ACTION.match(content)
    if m is None:
        return None
    verb, rest, page = m.groups()
    quoted = _QUOTED.search(rest)
    call = ToolCall(name=verb.replace(" ", "_"), arguments=quoted.group(1) if quoted else None, result=page.strip())
    return Rendered(f"I {verb}{rest}", [call])


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
        elif kind == "Observation" and out.tool_calls and out.tool_calls[-1].result is None \
                and out.tool_calls[-1].error is None:
            if reads_as_failure(body):
                out.tool_calls[-1].error = body
            else:
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
