"""A run's turns as the scripted model's script: each agent's replies in order, routed by its system prompt."""

from __future__ import annotations

from collections.abc import Callable

from agenttrace.suite.plan import AgentSpec, Turn
from agenttrace.testing.scripted_llm import Reply, route_by_system_prompt


# how a turn names the next speaker where a framework hands over on a line of text, not a tool call
NEXT_SPEAKER = "Next speaker: "


def model_script(agents: tuple[AgentSpec, ...], turns: tuple[Turn, ...],
                 handoff_call: Callable[[str], dict | None]) -> Callable[[dict], Reply]:
    """``handoff_call(target)`` is the framework's tool call that hands over to ``target``, or None where the
    turn's text ends with a ``NEXT_SPEAKER`` line instead."""
    replies: dict[str, list[Reply]] = {f"Your name is {a.name}.": [] for a in agents}
    for turn in turns:
        text = turn.text
        calls = [{"name": c.name, "arguments": c.arguments} for c in turn.calls]
        if turn.handoff and (call := handoff_call(turn.handoff)) is not None:
            calls.append(call)
        elif turn.handoff:
            text = f"{text}\n{NEXT_SPEAKER}{turn.handoff}"
        replies[f"Your name is {turn.agent}."].append({"content": text, "tool_calls": calls} if calls else text)
    return route_by_system_prompt(replies)
