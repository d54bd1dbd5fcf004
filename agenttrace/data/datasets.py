"""Import and export of the failure-attribution data sets: Who&When (ICML 2025) and TracerTraj (AgenTracer).

Who&When ships one JSON object per failed run::

    {"history": [{"content": ..., "role": ..., "name": ...}, ...],
     "question": ..., "ground_truth": ...,
     "mistake_agent": "WebSurfer", "mistake_step": "12", "mistake_reason": ...}

``mistake_step`` is a 0-based index into ``history``, as a string. The two subsets name their agents
differently:

* Hand-Crafted (Magentic-One): no ``name``; the agent is in ``role``, e.g. ``"Orchestrator (thought)"``,
  ``"Orchestrator (-> WebSurfer)"``, ``"WebSurfer"``, and ``history[0]`` is the ``"human"`` request.
  The step's agent is the role without its parenthesised suffix (``"Orchestrator"``, which is how
  ``mistake_agent`` names it); the raw role is kept in :attr:`Step.role`.
* Algorithm-Generated (AG2 CaptainAgent): the agent is in ``name``; ``role`` is ``"assistant"``/``"user"``.

TracerTraj is JSONL, one such object per line, with ``question_ID`` and ``history`` items
``{content, name, role, step}``.

A history item's tool calls are read as such in each convention :mod:`agenttrace.data.messages` knows (OpenAI,
LangChain and Anthropic messages, smolagents' memory steps, ReAct text, the lines :meth:`Step.render` writes
...), and each tool answer is folded into the call it answers, so a run written by :func:`to_whowhen`
(``agenttrace export``, the fault injector) reads back with its calls, results, handoffs and the prompt each
step was given (``input``), and its indices unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agenttrace.data.messages import (
    TOOL_ROLES,
    Answer,
    Message,
    MessageError,
    answer_call,
    handed_to,
    read_message,
    smolagents_step,
)
from agenttrace.models import Label, LabelledTrajectory, Outcome, Step, ToolCall, Trajectory
from agenttrace.team import decode as decode_team

HAND_CRAFTED = "Hand-Crafted"
ALGORITHM_GENERATED = "Algorithm-Generated"
CHAT = "chat"  # chat messages (tool calls, tool answers, typed items ...)

_ROLE_SUFFIX = re.compile(r"\s*\(.*\)\s*$")


class DatasetError(ValueError):
    """A data set file does not have the expected shape; the message names the file and the field."""

    def __init__(self, source: str, field: str, problem: str):
        self.source = source
        self.field = field
        super().__init__(f"{source}: field {field!r}: {problem}")


def agent_from_role(role: str) -> str:
    """``"Orchestrator (-> WebSurfer)"`` -> ``"Orchestrator"``; ``"WebSurfer"`` stays as it is."""
    base = _ROLE_SUFFIX.sub("", role).strip()
    return base or role


def _detect_subset(history: list[dict[str, Any]]) -> str:
    """``chat`` for chat messages (tool calls, tool answers, a system message, typed items or content parts) and
    smolagents' memory steps, else the Who&When subset the history's shape matches."""
    items = [item for item in history if isinstance(item, dict)]
    if any(item.get("tool_calls") or item.get("type") or not isinstance(item.get("content", ""), str)
           or item.get("role") in (*TOOL_ROLES, "system", "developer") or smolagents_step(item) for item in items):
        return CHAT
    return ALGORITHM_GENERATED if any("name" in item for item in items) else HAND_CRAFTED


def from_whowhen(
    data: Any, *, subset: str | None = None, id: str | None = None, source: str = "<dict>"
) -> LabelledTrajectory:
    """One Who&When/TracerTraj-shaped object as a :class:`LabelledTrajectory`.

    ``subset`` defaults to the object's ``subset`` key, else to the Who&When subset its shape matches.
    ``id`` defaults to ``question_ID``. Raises :class:`DatasetError` on a malformed object.
    """
    if not isinstance(data, dict):
        raise DatasetError(source, "<root>", f"expected a JSON object, got {type(data).__name__}")
    if "history" not in data:
        raise DatasetError(source, "history", "missing")
    history = data["history"]
    if not isinstance(history, list):
        raise DatasetError(source, "history", f"expected a list, got {type(history).__name__}")
    steps: list[Step] = []
    calls: list[tuple[ToolCall, int]] = []  # the run's tool calls so far, each with its step's index
    folded: dict[int, int] = {}  # a tool message's index -> the index of the step whose call it answers
    may_hand_off: set[int] = set()  # the steps whose calls may stand for a handoff (not agenttrace's rendering)
    for i, item in enumerate(history):
        step, message = _history_step(item, i, source)
        so_far = [c for c, _ in calls]
        answered = [_fold(answer, so_far) for answer in message.answers]
        if message.answers and not (step.content or step.tool_calls):
            if all(call is not None for call in answered):
                folded[i] = next(k for c, k in calls if c is answered[0])  # a tool's answer is not a turn
                continue
            step = step.model_copy(update={"content": "\n".join(a.text for a in message.answers)})
        calls += [(c, i) for c in step.tool_calls]
        steps.append(step)
        if message.calls_hand_off:
            may_hand_off.add(i)
    for k, step in enumerate(steps[:-1]):
        if step.tool_calls and step.index in may_hand_off:
            target = handed_to(step.tool_calls, step.agent, steps[k + 1].agent)
            steps[k] = step.model_copy(update={"transfer_to": target}) if target else step

    for key in ("question", "ground_truth", "answer", "trace_id"):
        value = data.get(key)
        if value is not None and not isinstance(value, (str, int, float)):
            raise DatasetError(source, key, f"expected a string, got {type(value).__name__}")
    question = data.get("question")
    truth = data.get("ground_truth")
    answer = data.get("answer")  # the run's recorded answer (agenttrace's exports), not the expected one
    trace_id = data.get("trace_id")  # an export of a run the collector rebuilt from its spans
    try:  # the team the run declared (agenttrace's exports)
        team = decode_team(data["team"]) if "team" in data else []
    except ValueError as exc:
        raise DatasetError(source, "team", str(exc)) from None

    label = None
    agent = data.get("mistake_agent")
    raw_step = data.get("mistake_step")
    if agent is not None or raw_step is not None:
        if not isinstance(agent, str) or not agent:
            raise DatasetError(source, "mistake_agent", f"expected a non-empty string, got {agent!r}")
        if isinstance(raw_step, bool) or not isinstance(raw_step, (str, int)):
            raise DatasetError(source, "mistake_step", f"expected an integer (or its string), got {raw_step!r}")
        try:
            step = int(str(raw_step).strip())
        except ValueError:
            raise DatasetError(source, "mistake_step", f"expected an integer (or its string), got {raw_step!r}") from None
        if step < 0:
            raise DatasetError(source, "mistake_step", f"must be >= 0, got {step}")
        step = folded.get(step, step)  # a tool's wrong answer: the step that called it
        reason = data.get("mistake_reason")
        label = Label(agent=agent, step=step, reason=None if reason is None else str(reason))

    qid = data.get("question_ID")
    item_id = id or (str(qid) if qid is not None else source)
    trajectory = Trajectory(
        run_id=item_id,
        task=None if question is None else str(question),
        expected=None if truth is None else str(truth),
        answer=None if answer is None else str(answer),
        trace_id=None if trace_id is None else str(trace_id),
        outcome=Outcome.FAILURE if label is not None else Outcome.UNKNOWN,
        steps=steps,
        team=team,
    )
    return LabelledTrajectory(
        id=item_id, subset=subset or data.get("subset") or _detect_subset(history), trajectory=trajectory, label=label
    )


def _history_step(item: Any, i: int, source: str) -> tuple[Step, Message]:
    """One history item as a step (its index is its place in the history), tool calls read back, and the
    item as read (the tool answers it carries)."""
    where = f"history[{i}]"
    if not isinstance(item, dict):
        raise DatasetError(source, where, f"expected an object, got {type(item).__name__}")
    try:
        message = read_message(item)
    except MessageError as exc:
        raise DatasetError(source, f"{where}.{exc.field}", str(exc)) from None
    prompt = item.get("input")
    if prompt is not None and not isinstance(prompt, str):
        raise DatasetError(source, f"{where}.input", f"expected a string, got {type(prompt).__name__}")
    role, name = message.role, message.name
    if not (name or role):
        raise DatasetError(source, where, "has neither 'name' nor 'role', so its agent is unknown")
    step = Step(index=i, agent=name or agent_from_role(role), role=role or "assistant", content=message.words,
                input=prompt, tool_calls=message.tool_calls, transfer_to=message.transfer_to, error=message.error)
    return step, message


def _fold(answer: Answer, calls: list[ToolCall]) -> ToolCall | None:
    """Puts ``answer`` on the call it answers, when that call is still open; the call, else None."""
    call = answer_call(calls, answer)
    if call is None or call.result is not None or call.error is not None:
        return None
    if answer.error:
        call.error = answer.text
    else:
        call.result = answer.text
    return call


def to_whowhen(trajectory: Trajectory, label: Label | None = None) -> dict[str, Any]:
    """A trajectory (and its label) in the Who&When shape, plus the run's recorded ``answer``, ``trace_id`` and
    declared ``team``;
    each step's content is :meth:`Step.render`, and the prompt it was given, when recorded, its ``input``."""
    out: dict[str, Any] = {
        "question_ID": trajectory.run_id,
        "question": trajectory.task,
        "ground_truth": trajectory.expected,
        "answer": trajectory.answer,
        "trace_id": trajectory.trace_id,
        "history": [
            {"content": step.render(), "name": step.agent, "role": step.role, "step": i}
            | ({"input": step.input} if step.input else {})
            for i, step in enumerate(trajectory.steps)
        ],
    }
    if trajectory.team:
        out["team"] = [m.model_dump(exclude_none=True) for m in trajectory.team]
    if label is not None:
        out["mistake_agent"] = label.agent
        at = trajectory.position(label.step)  # the history written is numbered afresh
        out["mistake_step"] = str(label.step if at is None else at)
        out["mistake_reason"] = label.reason
    return out


def load_whowhen_file(path: str | Path, subset: str | None = None) -> LabelledTrajectory:
    """One Who&When JSON file; its id is ``<subset>/<file stem>``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(str(path), "<root>", f"not valid JSON ({exc})") from None
    history = data.get("history") if isinstance(data, dict) else None
    if subset is None and isinstance(history, list):
        subset = _detect_subset([h for h in history if isinstance(h, dict)])
    return from_whowhen(data, subset=subset, id=f"{subset or 'whowhen'}/{path.stem}", source=str(path))


def _numeric_key(path: Path) -> tuple[int, str]:
    return (int(path.stem), "") if path.stem.isdigit() else (10**12, path.stem)


def load_whowhen_dir(path: str | Path, subset: str | None = None) -> list[LabelledTrajectory]:
    """Every ``*.json`` of a Who&When folder, in numeric file order."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(str(path), "<path>", "not a folder")
    return [load_whowhen_file(p, subset=subset) for p in sorted(path.glob("*.json"), key=_numeric_key)]


def load_tracertraj(path: str | Path, subset: str | None = None) -> list[LabelledTrajectory]:
    """A TracerTraj JSONL file; subset defaults to the file stem (e.g. ``code-dev``)."""
    path = Path(path)
    subset = subset or path.stem
    items: list[LabelledTrajectory] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            source = f"{path}:{lineno}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(source, "<line>", f"not valid JSON ({exc})") from None
            qid = data.get("question_ID") if isinstance(data, dict) else None
            item_id = f"{subset}/{qid if qid is not None else lineno}"
            items.append(from_whowhen(data, subset=subset, id=item_id, source=source))
    return items


def load_any(path: str | Path) -> list[LabelledTrajectory]:
    """A folder of Who&When JSON files, one ``.json`` file, or a ``.jsonl`` file."""
    path = Path(path)
    if path.is_dir():
        if not any(path.glob("*.json")):
            # a folder of folders, e.g. whowhen/ with Hand-Crafted/ and Algorithm-Generated/
            out: list[LabelledTrajectory] = []
            for sub in sorted(p for p in path.iterdir() if p.is_dir()):
                out.extend(load_any(sub))
            for f in sorted(path.glob("*.jsonl")):
                out.extend(load_tracertraj(f))
            return out
        subset = path.name if path.name in (HAND_CRAFTED, ALGORITHM_GENERATED) else None
        return load_whowhen_dir(path, subset=subset)
    if not path.exists():
        raise DatasetError(str(path), "<path>", "no such file or folder")
    if path.suffix == ".jsonl":
        return load_tracertraj(path)
    return [load_trajectory_file(path)]


def load_trajectory_file(path: str | Path) -> LabelledTrajectory:
    """One ``.json`` file: Who&When-shaped, or a trajectory as written by ``Trajectory.model_dump_json()``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(str(path), "<root>", f"not valid JSON ({exc})") from None
    if isinstance(data, dict) and "history" not in data and "steps" in data and "run_id" in data:
        try:
            trajectory = Trajectory.model_validate(data)
        except Exception as exc:  # pydantic.ValidationError
            raise DatasetError(str(path), "steps", f"not a valid trajectory ({exc})") from None
        return LabelledTrajectory(id=trajectory.run_id, subset="trajectory", trajectory=trajectory)
    parent = path.parent.name
    return load_whowhen_file(path, subset=parent if parent in (HAND_CRAFTED, ALGORITHM_GENERATED) else None)


def iter_paths(paths: Iterable[str | Path]) -> list[LabelledTrajectory]:
    """All items of several paths, each path as :func:`load_any` reads it."""
    out: list[LabelledTrajectory] = []
    for p in paths:
        out.extend(load_any(p))
    return out
