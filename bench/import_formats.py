"""The cpu attributor on the labelled suite, read the ways a user hands runs to ``agenttrace eval``.

    .venv/bin/python bench/import_formats.py [--suite build/suite]

Each run of build/suite (real framework runs, rebuilt by the collector from spans) is attributed four ways:

* as the collector rebuilt it (the peer: nothing lost);
* written by ``agenttrace export`` (Who&When shape, :func:`to_whowhen`) and read back by ``agenttrace eval``;
* written as OpenAI chat messages (assistant ``tool_calls``, one ``role: "tool"`` message per result, the
  label's step moved to its message) and read back;
* written as Anthropic messages (``tool_use`` blocks, each answered by a ``tool_result`` block that says
  whether the call failed) and read back;
* written as ReAct text (``Thought:``, ``Action:``, ``Action Input:``, ``Observation:`` lines, one message
  per step; a handoff no call names is an ``Action: transfer_to_<agent>``) and read back;
* that ReAct text read as prose (how ``agenttrace eval`` read it before it read ReAct blocks);
* the export read as prose: every step's rendered text, no tool calls (how ``agenttrace eval`` read an
  export before it read tool calls back).

The model is the shipped one, fitted on these runs, so the rows measure what each way of reading loses, not
generalisation (bench/generalisation.py measures that). Prints exact agent and step accuracy and each
reading's ratio to the collector's.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from train_cpu_attributor import load_suite  # noqa: E402

from agenttrace.attribution.cpu import CpuAttributor  # noqa: E402
from agenttrace.attribution.cpu_fit import usable  # noqa: E402
from agenttrace.attribution.flow import is_human  # noqa: E402
from agenttrace.data.datasets import from_whowhen, to_whowhen  # noqa: E402
from agenttrace.data.messages import names_agent  # noqa: E402
from agenttrace.models import Label, LabelledTrajectory, Step, value_text  # noqa: E402


def as_whowhen(item: LabelledTrajectory, messages: Callable[[int, Step], list[dict]]) -> dict:
    """The run in the Who&When shape, ``messages(i, step)`` the history items step ``i`` is written as; the
    label moves to its step's first item."""
    history, moved = [], {}
    for i, step in enumerate(item.trajectory.steps):
        moved[i] = len(history)
        history += messages(i, step)
    label = item.label
    return {"question_ID": item.id, "question": item.trajectory.task, "answer": item.trajectory.answer,
            "history": history, "mistake_agent": label.agent,
            "mistake_step": moved[item.trajectory.position(label.step)]}


def chat_messages(i: int, step: Step) -> list[dict]:
    """A step as OpenAI chat messages: the assistant's, with its ``tool_calls``, then one tool message each."""
    if is_human(step):
        return [{"role": "user", "name": step.agent, "content": step.content}]
    calls = [(call, call.id or f"call_{i}_{j}") for j, call in enumerate(step.tool_calls)]
    return [{"role": "assistant", "name": step.agent, "content": step.content,
             "tool_calls": [{"id": cid, "type": "function", "function": {
                 "name": call.name, "arguments": json.dumps(call.arguments, default=str)}}
                            for call, cid in calls] or None},
            *({"role": "tool", "tool_call_id": cid, "content": call.error or value_text(call.result)}
              for call, cid in calls)]


def anthropic_messages(i: int, step: Step) -> list[dict]:
    """A step as Anthropic messages: the assistant's, with its ``tool_use`` blocks, then a user message of
    ``tool_result`` blocks when it called tools."""
    if is_human(step):
        return [{"role": "user", "name": step.agent, "content": [{"type": "text", "text": step.content}]}]
    uses = [{"type": "tool_use", "id": call.id or f"call_{i}_{j}", "name": call.name, "input": call.arguments}
            for j, call in enumerate(step.tool_calls)]
    out = [{"role": "assistant", "name": step.agent,
            "content": [{"type": "text", "text": step.content}] * bool(step.content) + uses}]
    if uses:
        out.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": use["id"], "is_error": bool(call.error),
             "content": call.error or value_text(call.result)} for use, call in zip(uses, step.tool_calls)]})
    return out


def react_text(step: Step) -> str:
    """A step as a ReAct agent logs it: its words as a thought, then each call and what it returned."""
    if is_human(step):
        return step.content  # a user's turn is plain text
    lines = [f"Thought: {step.content}"] if step.content else []
    for call in step.tool_calls:
        lines += [f"Action: {call.name}", f"Action Input: {json.dumps(call.arguments, default=str)}",
                  f"Observation: {call.error or value_text(call.result)}"]
    if step.transfer_to and not any(names_agent(call, step.transfer_to) for call in step.tool_calls):
        lines += [f"Action: transfer_to_{step.transfer_to}", "Action Input: {}"]
    return "\n".join(lines)


def react_message(i: int, step: Step) -> list[dict]:
    """A step as one ReAct message."""
    return [{"role": "user" if is_human(step) else "assistant", "name": step.agent, "content": react_text(step)}]


def as_prose(item: LabelledTrajectory, text=Step.render) -> LabelledTrajectory:
    steps = [Step(index=s.index, agent=s.agent, role=s.role, content=text(s)) for s in item.trajectory.steps]
    return item.model_copy(update={"trajectory": item.trajectory.model_copy(update={"steps": steps})})


def read_back(data: dict, subset: str) -> LabelledTrajectory:
    return from_whowhen(json.loads(json.dumps(data, default=str)), subset=subset)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default=str(ROOT / "build" / "suite"), help="folder of <framework>.jsonl")
    args = ap.parse_args()
    items = usable(load_suite(Path(args.suite)))
    if not items:
        sys.exit(f"no labelled runs in {args.suite}: generate the suite first (see bench/README.md)")
    readings = {
        "collector (spans)": lambda it: it,
        "agenttrace export -> eval": lambda it: read_back(to_whowhen(it.trajectory, it.label), it.subset),
        "OpenAI chat messages -> eval": lambda it: read_back(as_whowhen(it, chat_messages), it.subset),
        "Anthropic messages -> eval": lambda it: read_back(as_whowhen(it, anthropic_messages), it.subset),
        "ReAct text -> eval": lambda it: read_back(as_whowhen(it, react_message), it.subset),
        "ReAct text read as prose": lambda it: as_prose(it, react_text),
        "export read as prose (before)": as_prose,
    }
    attributor = CpuAttributor(use_expected=False)
    print(f"{len(items)} labelled suite runs; exact accuracy, and the ratio to the collector's reading")
    print(f"{'reading':32s} {'agent':>7s} {'step':>7s} {'agent ratio':>12s} {'step ratio':>11s}")
    base = None
    for name, read in readings.items():
        hits = [0, 0]
        for k, item in enumerate(items):
            it = read(item)
            verdict = attributor.attribute(it.trajectory)
            label: Label = it.label
            hits[0] += verdict.agent == label.agent
            hits[1] += verdict.step == label.step
            if k % 200 == 199:
                print(f"  {name}: {k + 1}/{len(items)}", file=sys.stderr)
        acc = [h / len(items) for h in hits]
        base = base or acc
        print(f"{name:32s} {acc[0]:7.3f} {acc[1]:7.3f} {acc[0] / base[0]:12.2f} {acc[1] / base[1]:11.2f}")


if __name__ == "__main__":
    main()
