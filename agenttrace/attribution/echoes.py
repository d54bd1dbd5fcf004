"""Steps that are an agent's own prompt, logged before its reply.

Some frameworks log the prompt an agent was given as a message of that agent, right before the agent's reply
(MetaGPT's "thinking" entries hold the role's template, the plan and the messages it was sent). Such a step is
what the agent received, not what it did. It shows as a long message of the agent followed by another of its messages, in which:

* almost all the text is text the run has already seen or shows again in at least two later steps (the
  template every prompt repeats);
* a good part is the task's or other agents' earlier messages (what it was sent), so a loop repeating the
  agent's own words is not taken for a prompt.

No framework's wording is looked for.
"""

from __future__ import annotations

from collections import Counter

from agenttrace.attribution import observations
from agenttrace.models import Trajectory

_SHINGLE = 5  # words in a shingle
_MIN_CHARS = 1000  # an echo carries a whole prompt; a short message is a turn
_SEEN_SHARE = 0.9  # of its shingles the run has seen before, or shows in at least two later steps
_SENT_SHARE = 0.25  # of its shingles in the task or in other agents' earlier messages


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = text.lower().split()
    return {tuple(words[j:j + _SHINGLE]) for j in range(len(words) - _SHINGLE + 1)}


def prompt_echoes(trajectory: Trajectory) -> set[int]:
    """The positions of the steps that echo their agent's prompt."""
    steps = trajectory.steps
    words = [observations.split(s.content)[0] if s.content else "" for s in steps]  # tool output left out
    shingles = [_shingles(w) for w in words]
    later = Counter(g for s in shingles for g in s)
    said_by: dict[tuple[str, ...], set[str | None]] = {g: {None} for g in _shingles(trajectory.task or "")}
    out = set()
    for i, (step, own) in enumerate(zip(steps, shingles)):
        later.subtract(own)
        if (own and len(words[i]) >= _MIN_CHARS and i + 1 < len(steps) and steps[i + 1].agent == step.agent
                and sum(1 for g in own if g in said_by or later[g] >= 2) >= _SEEN_SHARE * len(own)):
            sent = sum(1 for g in own if any(who != step.agent for who in said_by.get(g, ())))  # task: None
            if sent >= _SENT_SHARE * len(own):
                out.add(i)
        for g in own:
            said_by.setdefault(g, set()).add(step.agent)
    return out
