"""Where a tool call's off-task argument came from, and where the task's value for it was lost.

A token of a tool argument is *off-task* when neither the task nor any tool result that arrived before the
call (:func:`~agenttrace.attribution.flow.arrivals`) contains it: nothing the run was given justifies it, so
some step's own text made it up. Its *origin* is the first step whose own text (content, tool arguments) states it: a user's turn, a planner's message, or the calling
step itself. When the caller made it up, the task's value it replaced tells whose error it is. That value
is a task token of the same kind (a date, a number, a capitalised name, a word) that no tool argument of the
run uses (any task token of that kind when every one is used). If an earlier step's text carries it, the
caller had the right value in front of it and used another; if none does, the value was lost on the way, at
the first step that restated the task without it.

Only short argument values (names, dates, amounts: at most :data:`MAX_VALUE` characters) are read; free
text such as queries, code or delegated instructions is not an argument value in this sense. A short value
that carries a task token ("Harkness Memorial State Park address") is a query built from the task: its
lower-case words are its phrasing, and only its dates, numbers, names and misspelt task words ("water
botlte") are read. Handoff calls
(naming the agent the step hands over to) and agents' names are the team's routing, not data, and calls
that only carry the step's own words (:func:`~agenttrace.attribution.flow.speaks`) are not lookups. A call that
its agent makes again with the token replaced (same tool, same other arguments), saying so (or saying nothing
and never repeating what the first call returned), was repaired, and is left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

from agenttrace.attribution.flow import (
    DATES,
    FUNCTION_WORDS,
    action_text,
    argument_values,
    arrivals,
    is_handoff,
    is_human,
    numbers,
    result_text,
    returned_numbers,
    salient_task_words,
    speaks,
    stated_task,
    value_text,
    word_forms,
    work_handovers,
)
from agenttrace.models import Step, Trajectory

MAX_VALUE = 60
TOKEN = re.compile(r"[A-Za-z0-9]+(?:[._'/-][A-Za-z0-9]+)*")
_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)*")
_SENTENCE_START = re.compile(r"(?:^|[.!?:]\s+)([A-Za-z0-9]+)")


def kind(token: str) -> str:
    """``date``, ``number``, ``name`` (capitalised) or ``word``."""
    if DATES.fullmatch(token):
        return "date"
    if _NUMBER.fullmatch(token):
        return "number"
    return "name" if token[:1].isupper() else "word"


def _meaningful(token: str) -> bool:
    return len(token) >= 3 or any(c.isdigit() for c in token) or (len(token) == 2 and token.isupper())


def task_value_tokens(task: str) -> list[str]:
    """The task's tokens that can be values (no short words, no capitalised sentence openers), in order."""
    firsts = {m.group(1) for m in _SENTENCE_START.finditer(task)}
    return [t for t in dict.fromkeys(TOKEN.findall(task)) if _meaningful(t) and t not in firsts]


def task_values(task: str, argument: str, token: str, candidates: list[str], used: set[str]) -> tuple[str, ...]:
    """The task's values ``token`` (an argument's off-task token) stands in for: the value the task gives right
    after the argument's name ("priority high", "date: 2025-03-18"), else its tokens of the same kind that no
    call uses (all of them when every one is used); words (lower-case) only by the argument's name."""
    if argument:
        keyed = re.search(rf"(?<![\w-]){re.escape(argument)}(?![\w-])\s*[:=]?\s*({TOKEN.pattern})", task, re.IGNORECASE)
        if keyed and keyed.group(1).lower() != token.lower():
            return (keyed.group(1),)
    k = kind(token)
    if k == "word":
        return ()
    same = [t for t in candidates if kind(t) == k]
    return tuple(t for t in same if t.lower() not in used) or tuple(same)


def lower_tokens(text: str) -> set[str]:
    return {t.lower() for t in TOKEN.findall(text)}


@dataclass(frozen=True)
class OffTaskArgument:
    """A tool argument ``token`` that neither the task nor any earlier tool result contains."""

    call: int  # position of the step making the call
    tool: str
    argument: str
    value: str
    token: str
    origin: int  # the first step whose own text states the token
    task_values: tuple[str, ...]  # the task's values of the same kind the token stands in for
    given_at: int | None  # the latest earlier step whose own text carries one of them
    # where they were lost: when no step carries one, the first agent step restating the task without them;
    # when one does, the earliest of the hand-overs since that brought the work to the caller, each restating
    # the task without them
    lost_at: int | None


def off_task_arguments(trajectory: Trajectory) -> list[OffTaskArgument]:
    """Every off-task argument token of the run's tool calls, with where it and the task's value went."""
    steps = trajectory.steps
    task = trajectory.task or ""
    asked = stated_task(trajectory)
    task_lower = lower_tokens(asked)
    task_words = task_lower - FUNCTION_WORDS
    task_tokens = task_value_tokens(task)
    actions = [lower_tokens(action_text(s)) for s in steps]
    used = set()
    for s in steps:
        for call in s.tool_calls:
            for _, text in argument_values(call.arguments):
                used |= lower_tokens(text)
    salient = salient_task_words(task)
    team = {s.agent.lower() for s in steps}
    out: list[OffTaskArgument] = []
    data: set[str] = set()  # tokens of every tool result so far
    returned: set[str] = set()  # the numbers of every tool result so far that the task does not give
    arrive = arrivals(steps)
    for pos, step in enumerate(steps):
        if not is_human(step):
            for c, call in enumerate(step.tool_calls):
                if is_handoff(step, call) or speaks(step, call):
                    continue
                for arg, text in argument_values(call.arguments):
                    if len(text) > MAX_VALUE or text.lower() in team:
                        continue
                    tokens = TOKEN.findall(text)
                    built = any(_meaningful(t) and t.lower() in task_words for t in tokens)
                    for token in tokens:
                        low = token.lower()
                        if not _meaningful(token) or any(f in task_lower or f in data for f in word_forms(low)):
                            continue
                        if built and kind(token) == "word" and not _misspells(low, task_words):
                            continue
                        if _redone(steps, pos, c, arg, low):
                            continue
                        origin = next(j for j in range(pos + 1) if low in actions[j] or j == pos)
                        values = task_values(task, arg, token, task_tokens, used)
                        wanted = {v.lower() for v in values}
                        given = next((j for j in reversed(range(pos)) if wanted & actions[j]), None)
                        lost = None
                        if given is None and wanted:
                            lost = next((j for j in range(pos)
                                         if not is_human(steps[j]) and not actions[j].isdisjoint(salient)), None)
                        elif wanted:  # back along the hand-overs since, each restating the task without them
                            for h in work_handovers(steps, pos, returned):
                                if h <= given or actions[h].isdisjoint(salient):
                                    break
                                lost = h
                        out.append(OffTaskArgument(pos, call.name, arg, text, token, origin, values, given, lost))
        arrived = [result_text(steps[j]) for j in range(pos + 1) if arrive[j] == pos]
        data |= {t for text in arrived for t in lower_tokens(text)}
        returned |= returned_numbers(arrived, asked)
    return out


def resemblance(a: str, b: str) -> float:
    """How alike two tokens are, in any case (0 to 1): 'Tukru' and 'Turku' are .8."""
    return SequenceMatcher(None, a.lower(), b.lower()).ratio()


def _misspells(word: str, task_words: set[str]) -> bool:
    """Whether ``word`` is a task word spelt wrong: as long as one, and nearly the same letters."""
    return any(len(w) >= 4 and abs(len(w) - len(word)) <= 1 and resemblance(word, w) >= 0.8 for w in task_words)


def _redone(steps: list[Step], pos: int, index: int, argument: str, token: str) -> bool:
    """Whether the call was repaired: the same agent calls the same tool again with the same other arguments and
    ``argument`` without ``token``, in a step whose text names ``token`` (it says what it is correcting), or
    that has no text (some frameworks record none) when nothing the first call returned is repeated later."""
    call = steps[pos].tool_calls[index]
    others = sorted((a, v) for a, v in argument_values(call.arguments) if a != argument)
    returned = set(numbers(value_text(call.result)))
    dropped = not any(returned & set(numbers(action_text(s))) for s in steps[pos + 1:])
    for later_pos in range(pos, len(steps)):
        later_step = steps[later_pos]
        says = token in lower_tokens(later_step.content) or (not later_step.content.strip() and dropped)
        if later_step.agent != steps[pos].agent or not says:
            continue
        for j, later in enumerate(later_step.tool_calls):
            args = argument_values(later.arguments)
            if ((later_pos, j) > (pos, index) and later.name == call.name
                    and sorted((a, v) for a, v in args if a != argument) == others
                    and any(a == argument and token not in lower_tokens(v) for a, v in args)):
                return True
    return False
