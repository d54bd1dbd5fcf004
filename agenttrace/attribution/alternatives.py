"""Tools that stand in for each other, and calls to the one nothing in the run asked for.

Two tools are *alternatives* when they take the same argument names (``get_fare`` and ``get_archived_fare``,
both with ``route`` and ``date``): the names the run calls them with, or, for a tool of the team the run
declared (:attr:`agenttrace.models.Trajectory.team`), its parameters, so a tool nobody called counts too. A
call goes *off the request* when its tool's name has a word that the alternative's name lacks and that
neither the task nor any message before the call contains (a step's words, or the task a delegation hands
on), while every word of the alternative's name that it lacks is in one of them ("archived" in
``get_archived_fare`` when nothing asks for archived data, while ``get_fare`` adds no word of its own).

Whose choice it was: an agent that calls both tools, or has both in the declared team, chose the wrong one
itself. An agent without the alternative had no such choice, so the message that handed it the work (the
other agent's step right before its turn) chose the wrong agent for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agenttrace.attribution.flow import handed_by, said_text, speaks
from agenttrace.models import Trajectory

_NAME_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_TEXT_WORD = re.compile(r"[a-z0-9]+")


def said_words(text: str) -> set[str]:
    """The words of a text, lower-cased: what it asks for, when matched against a tool's name words."""
    return set(_TEXT_WORD.findall(text.lower()))


def name_words(name: str) -> set[str]:
    """The words of a tool's name, lower-cased: snake_case, kebab-case and camelCase are split."""
    return {w.lower() for w in _NAME_WORD.findall(name)}


@dataclass(frozen=True)
class OffRequestCall:
    """Step ``pos`` calls ``tool``, whose ``words`` nothing asked for, where ``alternative`` takes the same
    arguments; ``handed_by`` is the step that handed the caller its work when the caller never calls the
    alternative itself (None when it does, or a user handed it the work)."""

    pos: int
    tool: str
    alternative: str
    words: tuple[str, ...]
    handed_by: int | None
    owner: str | None = None  # the teammate the declared team gives the alternative to, when not the caller


def declared_tools(trajectory: Trajectory) -> dict[str, dict[str, frozenset[str]]]:
    """Each declared teammate's tools: agent -> tool name -> its parameter names (empty without a team)."""
    return {m.name: {t.name: frozenset(t.parameters) for t in m.tools} for m in trajectory.team}


def off_request_calls(trajectory: Trajectory) -> list[OffRequestCall]:
    """The first call of each off-request tool, by each agent, in step order."""
    steps = trajectory.steps
    calls = [(pos, c) for pos, s in enumerate(steps) for c in s.tool_calls
             if isinstance(c.arguments, dict) and c.arguments and not speaks(s, c)]
    team = declared_tools(trajectory)
    tools_of: dict[frozenset[str], set[str]] = {}
    has: dict[str, set[str]] = {agent: set(tools) for agent, tools in team.items()}
    for tools in team.values():
        for name, parameters in tools.items():
            if parameters:
                tools_of.setdefault(parameters, set()).add(name)
    for pos, c in calls:
        tools_of.setdefault(frozenset(c.arguments), set()).add(c.name)
        has.setdefault(steps[pos].agent, set()).add(c.name)
    asked = said_words(trajectory.task or "")
    said_to = 0  # steps whose words are in ``asked``
    out, seen = [], set()
    for pos, c in calls:
        while said_to < pos:
            asked |= said_words(said_text(steps[said_to]))
            said_to += 1
        agent = steps[pos].agent
        if (agent, c.name) in seen:
            continue
        words = name_words(c.name)
        for alternative in sorted(tools_of[frozenset(c.arguments)] - {c.name}):
            other = name_words(alternative)
            unasked = tuple(sorted(words - other - asked))
            if unasked and other - words <= asked:
                seen.add((agent, c.name))
                if alternative in has[agent]:  # it had the right tool: its own choice
                    out.append(OffRequestCall(pos, c.name, alternative, unasked, None))
                else:
                    owner = next((a for a, tools in team.items() if alternative in tools), None)
                    out.append(OffRequestCall(pos, c.name, alternative, unasked, handed_by(trajectory.steps, pos), owner))
                break
    return out
