"""A run's turns as the scripted model's script: each agent's replies in order, routed by its system prompt."""

from __future__ import annotations

from collections.abc import Callable

from agenttrace.suite.plan import AgentSpec, Turn
from agenttrace.testing.scripted_llm import Reply, route_by_system_prompt


def model_script(agents: tuple[AgentSpec, ...], turns: tuple[Turn, ...],
                 handoff_call: Callable[[str], dict]) -> Callable[[dict], Reply]:
    """``handoff_call(target)`` is the framework's tool call that hands over to ``target``."""
    replies: dict[str, list[Reply]] = {f"Your name is {a.name}.": [] for a in agents}
    for turn in turns:
        calls = [{"name": c.name, "arguments": c.arguments} for c in turn.calls]
        if turn.handoff:
            calls.append(handoff_call(turn.handoff))
        replies[f"Your name is {turn.agent}."].append({"content": turn.text, "tool_calls": calls} if calls else turn.text)
    return route_by_system_prompt(replies)
