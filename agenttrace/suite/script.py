"""A run's turns as the scripted model's script: each agent's replies in order, routed by its system prompt.

Frameworks pass control in one of two ways. *Handoffs*: any agent hands over to any other with a tool call
(or, in AG2 here, a ``Next speaker:`` line), and a plain text reply is the run's answer. *Delegation*: an agent
calls a teammate like a tool and gets its final answer back as the result (smolagents' managed agents); a
handoff back to the caller is then the teammate's final answer.
"""

from __future__ import annotations

from collections.abc import Callable

from agenttrace.suite.plan import AgentSpec, Turn
from agenttrace.testing.scripted_llm import Reply, route_by_system_prompt

NEXT_SPEAKER = "Next speaker: "

Call = dict
AgentReply = tuple[str, Reply]


def model_script(agents: tuple[AgentSpec, ...], replies: list[AgentReply]) -> Callable[[dict], Reply]:
    queues: dict[str, list[Reply]] = {f"Your name is {a.name}.": [] for a in agents}
    for agent, reply in replies:
        queues[f"Your name is {agent}."].append(reply)
    return route_by_system_prompt(queues)


def _reply(text: str, calls: list[Call]) -> Reply:
    return {"content": text, "tool_calls": calls} if calls else text


def _tool_calls(turn: Turn) -> list[Call]:
    return [{"name": c.name, "arguments": c.arguments} for c in turn.calls]


def handoff_replies(turns: tuple[Turn, ...], handoff_call: Callable[[str], Call | None]) -> list[AgentReply]:
    """``handoff_call(target)``: the tool call that hands over, or None to name the next speaker in the text."""
    replies = []
    for turn in turns:
        text, calls = turn.text, _tool_calls(turn)
        if turn.handoff and (call := handoff_call(turn.handoff)) is not None:
            calls.append(call)
        elif turn.handoff:
            text = f"{text}\n{NEXT_SPEAKER}{turn.handoff}"
        replies.append((turn.agent, _reply(text, calls)))
    return replies


def _delegation_moves(turns: tuple[Turn, ...]) -> list[tuple[Turn, str | None]]:
    """Each turn with its move: "delegate" (to ``turn.handoff``), "return" (to the agent that delegated to the
    speaker), "answer" (a final text) or None (tool calls only). A run that ends inside a delegation (a
    teammate gives up) still returns control to each waiting caller, which passes the last text on as its
    own final answer."""
    callers: list[str] = []
    moves = []
    for turn in turns:
        if turn.handoff and callers and turn.handoff == callers[-1]:
            callers.pop()
            moves.append((turn, "return"))
        elif turn.handoff:
            callers.append(turn.agent)
            moves.append((turn, "delegate"))
        else:
            moves.append((turn, None if turn.calls else "answer"))
    if moves and moves[-1][1] == "answer":
        moves += [(Turn(caller, turns[-1].text), "answer") for caller in reversed(callers)]
    return moves


def delegations(turns: tuple[Turn, ...]) -> set[tuple[str, str]]:
    """(caller, teammate) pairs: who delegates to whom."""
    return {(turn.agent, turn.handoff) for turn, move in _delegation_moves(turns) if move == "delegate"}


def delegation_replies(turns: tuple[Turn, ...], delegate_call: Callable[[str, str], Call],
                       answer_call: Callable[[str], Call | None]) -> list[AgentReply]:
    """A delegation is ``delegate_call(target, text)``; a return to the caller and a final text are
    ``answer_call(text)``, or the plain text where that is None."""
    replies = []
    for turn, move in _delegation_moves(turns):
        calls = _tool_calls(turn)
        if move == "delegate":
            calls.append(delegate_call(turn.handoff, turn.text))
        elif move in ("return", "answer") and (answer := answer_call(turn.text)) is not None:
            calls.append(answer)
        replies.append((turn.agent, _reply(turn.text, calls)))
    return replies
