"""The claims a reason sentence makes about a trajectory, and the checker that verifies each one.

A reason is built from structured claims (:class:`Claim` subclasses): each renders one clause in the run's
own terms and says, in :meth:`Claim.holds`, how it is verified against the trajectory. The checks read the
whole texts directly (no windows, no learned state), so they are an independent second reading of what
the attributor's features saw: ``check_claims`` returns the claims that are false, and an attributor keeps
only claims that pass. ``render_reason`` is the one way a reason sentence is made from its claims, so a
reason and its claims can always be compared.

Definitions shared with the features (in :mod:`agenttrace.attribution.flow`): a step's *actions* are its own
text, tool-call names and arguments and its handoff; its *inputs* are the task, everything earlier steps
said, the tool results that had arrived (:func:`~agenttrace.attribution.flow.arrivals`), the input it was
handed and what its own tool calls returned.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from agenttrace.attribution.alternatives import name_words, said_words
from agenttrace.attribution.code_origin import code_lines, written_code
from agenttrace.attribution.echoes import prompt_echoes
from agenttrace.attribution.flow import (
    DATES,
    ERROR_WORDS,
    GLUED_NUM,
    RETRYABLE,
    action_text,
    argument_values,
    arrivals,
    calls_a_tool,
    calls_again,
    does_again,
    final_answer,
    is_human,
    mark_users,
    mentions,
    mentions_word,
    norm_number,
    points_at,
    result_text,
    returned_numbers,
    said_text,
    stated_task,
    value_text,
    word_forms,
    work_handovers,
)
from agenttrace.models import Step, ToolCall, Trajectory

_ANY_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?![\w.]*\w)")
_WORD = re.compile(r"[a-z0-9]+(?:[._'-][a-z0-9]+)*")


def _numbers_in(text: str) -> set[str]:
    """Every number of ``text``; dates are not quantities and are left out (as the features do)."""
    return {norm_number(m.group(0)) for m in _ANY_NUMBER.finditer(DATES.sub(" ", text))}


def _given_in(text: str) -> set[str]:
    """Every number a reader takes ``text`` to give: its numbers and those with a unit glued on ("<200m")."""
    text = DATES.sub(" ", text)
    return {norm_number(m.group(0)) for pattern in (_ANY_NUMBER, GLUED_NUM) for m in pattern.finditer(text)}


def _returned(view: View, pos: int, tool: str, value: str) -> bool:
    """Whether a ``tool`` call of step ``pos`` returned ``value``."""
    v = norm_number(value)
    return any(c.name == tool and v in _numbers_in(value_text(c.result)) for c in view.steps[pos].tool_calls)


def _clean(text: str) -> str:
    return " ".join(text.split())


class View:
    """The trajectory's texts, read once: actions, results and the inputs each step had."""

    def __init__(self, trajectory: Trajectory, echoes: set[int] | None = None):
        """``echoes``: the trajectory's :func:`prompt_echoes` when the caller has read them already."""
        trajectory = mark_users(trajectory)
        self.trajectory = trajectory
        self._echoes = echoes
        self.steps = trajectory.steps
        self.actions = [action_text(s) for s in self.steps]
        self.results = [result_text(s) for s in self.steps]
        self.answer = final_answer(trajectory)
        self.arrive = arrivals(self.steps)
        self.task = stated_task(trajectory)

    @cached_property
    def echoes(self) -> set[int]:
        """The steps that are an agent's prompt logged before its reply (:mod:`.echoes`)."""
        return prompt_echoes(self.trajectory) if self._echoes is None else self._echoes

    @cached_property
    def code(self) -> list[list[str]]:
        """Per step, the code lines it writes (:func:`agenttrace.attribution.code_origin.written_code`)."""
        return [written_code(s) for s in self.steps]

    def arrived(self, pos: int) -> list[str]:
        """The tool results that have arrived before step ``pos`` (a relayed delegation result arrives only
        after the steps it relays, as :func:`agenttrace.attribution.flow.arrivals` says)."""
        return [self.results[j] for j in range(pos) if self.arrive[j] < pos]

    def own_results(self, pos: int) -> str:
        """What the step's own tool calls returned to it (nothing when its result is a later relay)."""
        return self.results[pos] if self.arrive[pos] == pos else ""

    @cached_property
    def _numbers_before(self) -> list[set[str]]:
        """Per step: every number in the task, in any earlier step's own text and input, in the tool results
        that have arrived, and in the input it was handed."""
        seen = _given_in(self.trajectory.task or "")
        out = []
        for pos, step in enumerate(self.steps):
            arrived = set().union(*(_given_in(self.results[j]) for j in range(pos) if self.arrive[j] == pos - 1))
            seen = seen | arrived
            out.append(seen | _given_in(step.input or ""))
            seen = out[-1] | _given_in(self.actions[pos])
        return out

    def number_before_calls(self, pos: int, value: str) -> bool:
        """Whether ``value`` was in the step's inputs before its own tool calls returned."""
        return norm_number(value) in self._numbers_before[pos]

    def number_given(self, pos: int, value: str) -> bool:
        """Whether ``value`` is in any input of the step, its own tool results included."""
        return self.number_before_calls(pos, value) or norm_number(value) in _given_in(self.own_results(pos))

    def in_step(self, pos: int) -> bool:
        return 0 <= pos < len(self.steps)

    def in_order(self, *positions: int) -> bool:
        """Whether each position is a step of the run and each comes after the one before it."""
        return all(map(self.in_step, positions)) and all(a < b for a, b in zip(positions, positions[1:]))

    def inputs_before_calls(self, pos: int) -> str:
        """The task, the input the step was handed and everything earlier steps said, got back or were handed."""
        parts = [self.trajectory.task or "", self.steps[pos].input or ""]
        for j in range(pos):
            parts += [self.actions[j], self.steps[j].input or ""]
        return "\n".join(parts + self.arrived(pos))

    def inputs_text(self, pos: int) -> str:
        return self.inputs_before_calls(pos) + "\n" + self.own_results(pos)

    def problem_word_at(self, pos: int) -> str | None:
        text = (self.actions[pos] + "\n" + self.results[pos]).lower()
        if any(c.error for c in self.steps[pos].tool_calls):
            return "error"
        return next((w for w in ERROR_WORDS if w in text), None)


@dataclass(frozen=True)
class Claim:
    """One checkable statement about step ``pos`` (a position in ``trajectory.steps``)."""

    pos: int

    def clause(self, view: View) -> str:
        raise NotImplementedError

    def holds(self, view: View) -> bool:
        raise NotImplementedError

    def cites(self) -> tuple:
        """The evidence the claim points at: a reason says one thing of it once."""
        return (self,)

    def advice(self, view: View) -> str:
        """What the step's agent should do instead, when the claim says what it did wrong ('' when not)."""
        return ""


@dataclass(frozen=True)
class Says(Claim):
    """The step's own text contains ``text`` (whitespace-normalised)."""

    text: str

    def clause(self, view: View) -> str:
        return f'it says "{self.text}"'

    def holds(self, view: View) -> bool:
        return view.in_step(self.pos) and bool(self.text) and _clean(self.text) in _clean(view.actions[self.pos])


@dataclass(frozen=True)
class PromptBeforeReply(Claim):
    """The step is its agent's prompt, logged right before its reply (:mod:`.echoes`), and the reply (the next
    step) contains ``text``: what the step holds is what the agent was given, so the reason quotes the reply."""

    text: str

    def clause(self, view: View) -> str:
        reply = view.steps[self.pos + 1]
        return f'it is the prompt {reply.agent} was given, logged before its reply (step {reply.index}): "{self.text}"'

    def holds(self, view: View) -> bool:  # an echo is always followed by its agent's reply
        return (self.pos in view.echoes and bool(self.text)
                and _clean(self.text) in _clean(view.actions[self.pos + 1]))


#: what an assumption word other than an assumption's own ("assume", "hypothetical", "without verifying") says
_ASSUMPTION_KINDS = {
    **dict.fromkeys(("placeholder", "simulate", "simulated", "mock", "dummy", "sample data"), "it works with a stand-in"),
    **dict.fromkeys(("approximately", "estimate", "probably", "i believe"), "it hedges"),
    "instead": "it goes another way",
}


@dataclass(frozen=True)
class Assumes(Says):
    """The step's own text contains ``text``, which holds the assumption word ``word``
    (:data:`agenttrace.attribution.flow.ASSUME_WORDS`); the clause says what kind of word it is."""

    word: str = ""

    def clause(self, view: View) -> str:
        return f'{_ASSUMPTION_KINDS.get(self.word, "it rests on an assumption")}: "{self.text}"'

    def advice(self, view: View) -> str:
        return "look up a value you lack, or say that you lack it, instead of assuming one"

    def holds(self, view: View) -> bool:
        return super().holds(view) and self.word in self.text.lower()


@dataclass(frozen=True)
class IntroducesNumber(Claim):
    """The step's actions state ``value``, and no input of the step carries it."""

    value: str

    def clause(self, view: View) -> str:
        return f"it states {self.value}, which is in neither the task nor anything it was given"

    def advice(self, view: View) -> str:
        return "state only values the task or your inputs give, or show how you worked one out from them"

    def holds(self, view: View) -> bool:
        return (view.in_step(self.pos) and norm_number(self.value) in _numbers_in(view.actions[self.pos])
                and not view.number_given(self.pos, self.value))


@dataclass(frozen=True)
class ReachesAnswer(Claim):
    """``value`` is in the run's final answer."""

    value: str

    def clause(self, view: View) -> str:
        return f"the {self.value} reaches the final answer"

    def holds(self, view: View) -> bool:
        return norm_number(self.value) in _numbers_in(view.answer)


def _argument(argument: str, value: str) -> str:
    """A call's argument as a reason quotes it: ``name='value'``, or ``'value'`` for a bare one."""
    return f"{argument}={value!r}" if argument else repr(value)


def _made_call(view: View, pos: int, tool: str, argument: str, value: str) -> bool:
    """Whether step ``pos`` called ``tool`` with ``argument`` = ``value`` (compared on the first 80 characters)."""
    if not view.in_step(pos):
        return False
    calls = [c for c in view.steps[pos].tool_calls if c.name == tool]
    return any((argument, value[:80]) in [(a, v[:80]) for a, v in argument_values(c.arguments)] for c in calls)


@dataclass(frozen=True)
class OwnCall(Claim):
    """A claim about a call the step made: ``tool`` with ``argument`` = ``value``."""

    tool: str
    argument: str
    value: str

    def made(self, view: View) -> bool:
        return _made_call(view, self.pos, self.tool, self.argument, self.value)

    def cites(self) -> tuple:
        """Claims citing the same word or number of the same argument, in any case, say one thing once."""
        return ("call", self.pos, self.tool, self.argument, self.point().lower())

    def point(self) -> str:
        """What of the argument the claim is about (the whole value unless a word or number of it)."""
        return self.value


@dataclass(frozen=True)
class CallsWithUngivenArgument(OwnCall):
    """The step calls ``tool`` with ``argument`` = ``value``, and ``number`` of that value was in no input it had
    before the call (the task, earlier steps, the input it was handed)."""

    number: str

    def point(self) -> str:
        return self.number

    def clause(self, view: View) -> str:
        arg = f"{self.argument}={self.value}" if self.argument else self.value
        return f"it called {self.tool} with {arg}, whose {self.number} is in neither the task nor anything it was given"

    def advice(self, view: View) -> str:
        return f"call {self.tool} with values the task or your inputs give; {self.number} came from neither"

    def holds(self, view: View) -> bool:
        if not self.made(view):
            return False
        return (norm_number(self.number) in _numbers_in(self.value)
                and not view.number_before_calls(self.pos, self.number))


@dataclass(frozen=True)
class CallsWithUnseenWord(OwnCall):
    """The step calls ``tool`` with ``argument`` = ``value``, and ``word`` of that value was in no input it had
    before the call (the task, earlier steps, the input it was handed), in the singular or the plural."""

    word: str

    def point(self) -> str:
        return self.word

    def clause(self, view: View) -> str:
        arg = _argument(self.argument, self.value)
        return f"it called {self.tool} with {arg}, although '{self.word}' is in neither the task nor anything it was given"

    def advice(self, view: View) -> str:
        if points_at(self.tool):
            return ""
        return f"call {self.tool} with words the task or your inputs give; '{self.word}' came from neither"

    def holds(self, view: View) -> bool:
        if not self.made(view):
            return False
        before = set(_WORD.findall(view.inputs_before_calls(self.pos).lower()))
        return self.word in _WORD.findall(self.value.lower()) and not word_forms(self.word) & before


@dataclass(frozen=True)
class ToolReturnReachesAnswer(Claim):
    """A ``tool`` call of the step returned ``value``, which no earlier input had, and it is in the final answer."""

    tool: str
    value: str

    def clause(self, view: View) -> str:
        return f"the {self.value} that {self.tool} returned reaches the final answer"

    def holds(self, view: View) -> bool:
        if not view.in_step(self.pos):
            return False
        return _returned(view, self.pos, self.tool, self.value) and norm_number(self.value) in _numbers_in(view.answer)


@dataclass(frozen=True)
class RestatesDifferently(Claim):
    """The step gives quantity ``name`` as ``new``; an input gave it as ``old``, and the step does not say ``old``."""

    name: str
    old: str
    new: str

    def clause(self, view: View) -> str:
        return f"it gives {self.name} as {self.new} where its input gave {self.old}"

    def advice(self, view: View) -> str:
        return f"carry {self.name} over as your input gave it ({self.old})"

    def holds(self, view: View) -> bool:
        if not view.in_step(self.pos):
            return False
        mine = view.actions[self.pos].lower()
        given = view.inputs_text(self.pos).lower()
        return (self.name in mine and norm_number(self.new) in _numbers_in(mine)
                and norm_number(self.old) not in _numbers_in(mine)
                and self.name in given and norm_number(self.old) in _numbers_in(given))


def _retry_or_say(tool: str) -> str:
    return f"when {tool} fails, call it again or say that it failed, not go on as if it had answered"


def _quoted(words: Iterable[str]) -> str:
    return ", ".join(f"'{w}'" for w in words)


def _as_written(text: str, word: str) -> str:
    """``word`` (lower-cased) as ``text`` first writes it: "APAC", not "apac"."""
    m = re.search(rf"(?<![\w']){re.escape(word)}(?![\w'])", text, re.IGNORECASE)
    return m.group(0) if m else word


@dataclass(frozen=True)
class LeavesOut(Claim):
    """The task has each of ``words``; the step's own text (its actions) mentions none of them."""

    words: tuple[str, ...]

    def clause(self, view: View) -> str:
        task = view.trajectory.task or ""
        listed = _quoted(_as_written(task, w) for w in self.words)
        return f"what it writes leaves out the task's {listed}"

    def holds(self, view: View) -> bool:
        if not view.in_step(self.pos) or not self.words:
            return False
        task = set(_WORD.findall((view.trajectory.task or "").lower()))
        mine = set(_WORD.findall(view.actions[self.pos].lower()))
        return all(w in task and w not in mine for w in self.words)


@dataclass(frozen=True)
class ReportsProblem(Claim):
    """The step's own text contains ``word`` (an error word)."""

    word: str

    def clause(self, view: View) -> str:
        return f"it reports a problem ('{self.word}')"

    def holds(self, view: View) -> bool:
        return view.in_step(self.pos) and self.word in ERROR_WORDS and self.word in view.actions[self.pos].lower()


@dataclass(frozen=True)
class ToolFailed(Claim):
    """A ``tool`` call of the step ended in an error whose text contains ``error``."""

    tool: str
    error: str

    def cites(self) -> tuple:
        return ("failed", self.pos, self.tool)

    def clause(self, view: View) -> str:
        return f"its {self.tool} call failed ('{self.error}')" if self.tool else f"it failed ('{self.error}')"

    def holds(self, view: View) -> bool:
        if not view.in_step(self.pos):
            return False
        step = view.steps[self.pos]
        if not self.tool:
            return bool(step.error) and self.error in step.error
        return any(c.name == self.tool and c.error and self.error in c.error for c in step.tool_calls)


@dataclass(frozen=True)
class IgnoresFailure(Claim):
    """A ``tool`` call of the same agent failed at ``earlier``, the agent's next step is this one, and its text
    neither reports a problem nor names the tool."""

    earlier: int
    tool: str

    def clause(self, view: View) -> str:
        return (f"it goes on without a word about the failure of {self.tool} at step "
                f"{view.steps[self.earlier].index}")

    def advice(self, view: View) -> str:
        return _retry_or_say(self.tool)

    def holds(self, view: View) -> bool:
        if not view.in_order(self.earlier, self.pos):
            return False
        agent = view.steps[self.pos].agent
        between = [s for s in view.steps[self.earlier + 1:self.pos] if s.agent == agent]
        failed = any(c.name == self.tool and c.error for c in view.steps[self.earlier].tool_calls) or (
            not self.tool and bool(view.steps[self.earlier].error))
        mine = view.actions[self.pos].lower()
        said = view.steps[self.pos].content.lower()
        return (view.steps[self.earlier].agent == agent and not between and failed
                and not any(w in mine for w in ERROR_WORDS) and not (self.tool and self.tool.lower() in said))


@dataclass(frozen=True)
class NextReportsProblem(Claim):
    """The step right after this one reports ``word`` (in its text or its tool results)."""

    word: str

    def clause(self, view: View) -> str:
        nxt = view.steps[self.pos + 1]
        return f"the next step ({nxt.agent}, step {nxt.index}) reports a problem ('{self.word}')"

    def holds(self, view: View) -> bool:
        if not view.in_step(self.pos + 1) or self.word not in ERROR_WORDS:
            return False
        text = (view.actions[self.pos + 1] + "\n" + view.results[self.pos + 1]).lower()
        return self.word in text


@dataclass(frozen=True)
class FirstProblem(Claim):
    """The step shows ``word`` and no earlier agent step shows any problem."""

    word: str

    def clause(self, view: View) -> str:
        return f"it is the first step of the run where a problem shows ('{self.word}')"

    def holds(self, view: View) -> bool:
        if not view.in_step(self.pos):
            return False
        here = (view.actions[self.pos] + "\n" + view.results[self.pos]).lower()
        if self.word not in here:
            return False
        return all(is_human(view.steps[j]) or view.problem_word_at(j) is None for j in range(self.pos))


@dataclass(frozen=True)
class GoesOnAfterFailure(Claim):
    """A ``tool`` call of the same agent at ``earlier`` failed with ``error`` (the start of the call's error,
    whitespace-normalised), the agent's next step is this one, and it does not make that call again."""

    earlier: int
    tool: str
    error: str

    def clause(self, view: View) -> str:
        return (f"its {self.tool} call at step {view.steps[self.earlier].index} failed ('{self.error}'), and it "
                "goes on without making that call again")

    def advice(self, view: View) -> str:
        return _retry_or_say(self.tool)

    def holds(self, view: View) -> bool:
        if not view.in_order(self.earlier, self.pos):
            return False
        step, failed = view.steps[self.pos], _failed_calls(view.steps[self.earlier], self.tool, self.error)
        return bool(failed) and _next_act(view, self.earlier, self.pos) and not calls_again(step, failed)


def _failed_calls(step: Step, tool: str, error: str) -> list[ToolCall]:
    """The step's ``tool`` calls whose error starts with ``error`` (whitespace-normalised)."""
    return [c for c in step.tool_calls if c.name == tool and c.error and " ".join(c.error.split()).startswith(error)]


def _next_act(view: View, earlier: int, later: int) -> bool:
    """Whether step ``later`` is the next step of step ``earlier``'s agent."""
    agent = view.steps[earlier].agent
    return view.steps[later].agent == agent and not any(s.agent == agent for s in view.steps[earlier + 1:later])


@dataclass(frozen=True)
class StopsAtFailure(Claim):
    """The step's ``tool`` call failed with ``error``, and every word and number of its arguments was in the
    step's inputs (the environment failed it, not a value of the caller's); its agent's next step, ``stop``,
    names the tool, and from there on no step calls a tool (:func:`calls_a_tool`) or states a number its
    inputs did not have."""

    stop: int
    tool: str
    error: str

    def cites(self) -> tuple:
        return ("failed", self.pos, self.tool)  # it says what ToolFailed would, and more

    def clause(self, view: View) -> str:
        return (f"its {self.tool} call failed ('{self.error}') on arguments its inputs gave, and from its agent's "
                f"next step ({view.steps[self.stop].index}), which names {self.tool}, no step calls a tool or states "
                "a number of its own")

    def holds(self, view: View) -> bool:
        if not view.in_order(self.pos, self.stop):
            return False
        failed = _failed_calls(view.steps[self.pos], self.tool, self.error)
        given = set(_WORD.findall(view.inputs_before_calls(self.pos).lower()))
        grounded = all(set(_WORD.findall(v.lower())) <= given for c in failed for _, v in argument_values(c.arguments))
        quiet = all(not calls_a_tool(view.steps[j]) and all(view.number_given(j, n) for n in _numbers_in(view.actions[j]))
                    for j in range(self.stop, len(view.steps)))
        return (bool(failed) and grounded and _next_act(view, self.pos, self.stop)
                and self.tool.lower() in view.steps[self.stop].content.lower() and quiet)


@dataclass(frozen=True)
class GivesUpAtRetryable(Claim):
    """A ``tool`` call of the same agent at ``earlier`` failed with ``error``, an error that says the call can be
    made again (:data:`~agenttrace.attribution.flow.RETRYABLE`: a timeout, a rate limit), and no step of that
    agent had made the call before; this step is the agent's next, names the tool, and neither it nor any
    later step calls the tool again."""

    earlier: int
    tool: str
    error: str

    def clause(self, view: View) -> str:
        return (f"it gives up after its {self.tool} call at step {view.steps[self.earlier].index} failed "
                f"('{self.error}'), an error to retry on, and {self.tool} is never called again")

    def advice(self, view: View) -> str:
        return f"when {self.tool} fails with an error that says to try again, call it again before giving up"

    def holds(self, view: View) -> bool:
        if not view.in_order(self.earlier, self.pos):
            return False
        failed = [c for c in _failed_calls(view.steps[self.earlier], self.tool, self.error) if RETRYABLE.search(c.error)]
        agent = view.steps[self.earlier].agent
        tried_before = any(s.agent == agent and calls_again(s, failed) for s in view.steps[:self.earlier])
        called_after = any(c.name == self.tool for s in view.steps[self.pos:] for c in s.tool_calls)
        return (bool(failed) and not tried_before and not called_after and _next_act(view, self.earlier, self.pos)
                and self.tool.lower() in view.steps[self.pos].content.lower())


@dataclass(frozen=True)
class FailureGoneAround(Claim):
    """The step's ``tool`` call failed with ``error``, and its agent's next step, ``later``, goes on without making
    that call again (:class:`GoesOnAfterFailure` of ``later``)."""

    later: int
    tool: str
    error: str

    def clause(self, view: View) -> str:
        later = view.steps[self.later]
        return (f"its {self.tool} call failed ('{self.error}'), and its next step ({later.agent}, step {later.index}) "
                "goes on without making that call again")

    def advice(self, view: View) -> str:
        return f"when your {self.tool} call fails, check its arguments against the task and call it again"

    def holds(self, view: View) -> bool:
        return GoesOnAfterFailure(self.later, self.pos, self.tool, self.error).holds(view)


@dataclass(frozen=True)
class AnswerBuiltOn(Claim):
    """The step states ``operand`` (``tool`` empty) or its ``tool`` call returned it, and no input of the step had
    it; a ``later`` step had it among its inputs and states ``number``, which none of its inputs gives and which
    is in the final answer."""

    later: int
    tool: str
    operand: str
    number: str

    def clause(self, view: View) -> str:
        later = view.steps[self.later]
        source = f"its {self.tool} call returned" if self.tool else "it states"
        return (f"the {self.operand} {source} is among the inputs of step {later.index} ({later.agent}), which "
                f"answers {self.number}")

    def holds(self, view: View) -> bool:
        if not view.in_order(self.pos, self.later):
            return False
        made_up = ((_returned(view, self.pos, self.tool, self.operand)
                    and not view.number_before_calls(self.pos, self.operand)) if self.tool
                   else IntroducesNumber(self.pos, self.operand).holds(view))
        return (made_up and view.number_before_calls(self.later, self.operand)
                and IntroducesNumber(self.later, self.number).holds(view)
                and ReachesAnswer(self.later, self.number).holds(view))


@dataclass(frozen=True)
class AnswerWithout(Claim):
    """The step's turn ends without ``items`` that step ``handed_by`` handed it (:class:`HandsBackWithout`); a
    ``later`` step of another agent states ``number``, which none of its inputs gives and which is in the final
    answer, and no step from this one to it names any of the items."""

    handed_by: int
    items: tuple[str, ...]
    later: int
    number: str

    def clause(self, view: View) -> str:
        later = view.steps[self.later]
        listed = HandsBackWithout(self.pos, self.handed_by, self.items).listed(view)
        return f"step {later.index} ({later.agent}) works out its {self.number} without {listed}"

    def holds(self, view: View) -> bool:
        return (view.in_order(self.pos, self.later)
                and view.steps[self.later].agent != view.steps[self.pos].agent
                and HandsBackWithout(self.pos, self.handed_by, self.items).holds(view)
                and not any(mentions(view.actions[k], i)
                            for k in range(self.pos + 1, self.later + 1) for i in self.items)
                and IntroducesNumber(self.later, self.number).holds(view)
                and ReachesAnswer(self.later, self.number).holds(view))


@dataclass(frozen=True)
class Repeats(Claim):
    """The step does what an ``earlier`` step of the same agent did (:func:`~.flow.does_again`: the same calls,
    or without calls the same words), and its calls got back what that step's got."""

    earlier: int

    def clause(self, view: View) -> str:
        earlier = view.steps[self.earlier].index
        if view.steps[self.pos].tool_calls:
            return f"it makes the same calls as its own step {earlier} and gets back what it got then"
        return f"it repeats its own step {earlier} word for word"

    def advice(self, view: View) -> str:
        return "when a call gets back what it got before, change it or report what is missing instead of repeating it"

    def holds(self, view: View) -> bool:
        if not view.in_order(self.earlier, self.pos):
            return False
        step, earlier = view.steps[self.pos], view.steps[self.earlier]
        return earlier.agent == step.agent and does_again(step, earlier)


@dataclass(frozen=True)
class FirstTurn(Claim):
    """No earlier step belongs to this step's agent."""

    def clause(self, view: View) -> str:
        return f"it is {view.steps[self.pos].agent}'s first turn, and what follows builds on it"

    def holds(self, view: View) -> bool:
        return view.in_step(self.pos) and all(s.agent != view.steps[self.pos].agent for s in view.steps[:self.pos])


@dataclass(frozen=True)
class FirstAction(Claim):
    """Every earlier step is a human/user turn."""

    def clause(self, view: View) -> str:
        return "it is the first action taken on the task"

    def holds(self, view: View) -> bool:
        return (view.in_step(self.pos) and not is_human(view.steps[self.pos])
                and all(is_human(s) for s in view.steps[:self.pos]))


@dataclass(frozen=True)
class HandsOff(Claim):
    """The step hands the work to ``target``."""

    target: str

    def clause(self, view: View) -> str:
        return f"it hands the work to {self.target}"

    def holds(self, view: View) -> bool:
        return view.in_step(self.pos) and view.steps[self.pos].transfer_to == self.target


@dataclass(frozen=True)
class LosesExpected(Claim):
    """The expected answer is in step ``earlier``'s text and not in the final answer."""

    earlier: int

    def clause(self, view: View) -> str:
        return (f"the correct answer ({view.trajectory.expected}) was already in step "
                f"{view.steps[self.earlier].index} and did not reach the final answer")

    def holds(self, view: View) -> bool:
        exp = _clean(view.trajectory.expected or "").lower()
        return (bool(exp) and view.in_step(self.earlier) and self.earlier <= self.pos
                and exp in _clean(view.actions[self.earlier] + " " + view.results[self.earlier]).lower()
                and exp not in _clean(view.answer).lower())


def _data_before(view: View, pos: int) -> str:
    """The task as stated (:func:`stated_task`) and every tool result before step ``pos``: what the run was given,
    not what agents wrote."""
    return "\n".join([view.task, *view.arrived(pos)])


@dataclass(frozen=True)
class CallsOffTask(OwnCall):
    """The step calls ``tool`` with ``argument`` = ``value``, whose ``token`` is in neither the task nor any tool
    result before the step, in the singular or the plural."""

    token: str

    def point(self) -> str:
        return self.token

    def clause(self, view: View) -> str:
        arg = _argument(self.argument, self.value)
        return f"it called {self.tool} with {arg}, and neither the task nor any tool result before it has '{self.token}'"

    def advice(self, view: View) -> str:
        if points_at(self.tool):
            return ""
        return f"call {self.tool} with the task's own values, not '{self.token}'"

    def holds(self, view: View) -> bool:
        return (self.made(view) and mentions(self.value, self.token)
                and not mentions_word(_data_before(view, self.pos), self.token))


@dataclass(frozen=True)
class WritesKeptCode(Claim):
    """The step is the first to write the code line ``line`` (the task and earlier steps have no such line),
    and step ``last``, after which no agent writes code (a prompt a log shows is not written), still has it."""

    line: str
    last: int

    def clause(self, view: View) -> str:
        return (f"it is the first to write the line '{self.line}', which the last code an agent writes "
                f"(step {view.steps[self.last].index}) still has")

    def holds(self, view: View) -> bool:
        if not (view.in_step(self.pos) and view.in_step(self.last) and self.pos <= self.last):
            return False
        written = view.code
        return (self.line in written[self.pos] and self.line in written[self.last]
                and self.line not in code_lines(view.trajectory.task or "")
                and not any(self.line in written[j] for j in range(self.pos))
                and not any(written[j] for j in range(self.last + 1, len(view.steps)) if j not in view.echoes))


@dataclass(frozen=True)
class FirstToState(Claim):
    """The step's own text is the first in the run to state ``token``, which the task does not contain, and step
    ``call`` (later) called ``tool`` with ``argument`` = ``value`` holding it."""

    token: str
    call: int
    tool: str
    argument: str
    value: str

    def clause(self, view: View) -> str:
        arg = _argument(self.argument, self.value)
        return (f"it is the first to say '{self.token}', which is not in the task; step {view.steps[self.call].index} "
                f"then called {self.tool} with {arg}")

    def holds(self, view: View) -> bool:
        return (view.in_order(self.pos, self.call) and mentions(view.actions[self.pos], self.token)
                and not any(mentions(view.actions[j], self.token) for j in range(self.pos))
                and not mentions_word(_data_before(view, self.call), self.token)
                and _made_call(view, self.call, self.tool, self.argument, self.value) and mentions(self.value, self.token))


@dataclass(frozen=True)
class HadTaskValue(Claim):
    """The task has ``value``, and step ``given`` (before this one) states it."""

    given: int
    value: str

    def clause(self, view: View) -> str:
        where = "its own earlier turn" if view.steps[self.given].agent == view.steps[self.pos].agent else \
            f"step {view.steps[self.given].index} by {view.steps[self.given].agent}"
        return f"the task's '{self.value}' was in {where}"

    def holds(self, view: View) -> bool:
        return (view.in_order(self.given, self.pos) and mentions(view.trajectory.task or "", self.value)
                and mentions(view.actions[self.given], self.value))


@dataclass(frozen=True)
class DropsTaskValue(Claim):
    """The task has each of ``values``; the step's own text restates the task without any of them; no earlier
    step states one, or the step is one of the hand-overs that brought step ``call``'s agent its work; step
    ``call`` then called ``tool`` with ``argument`` = ``value`` instead."""

    values: tuple[str, ...]
    call: int
    tool: str
    argument: str
    value: str

    def clause(self, view: View) -> str:
        listed = _quoted(self.values)
        arg = _argument(self.argument, self.value)
        return (f"it passes the task on without its {listed}, and step {view.steps[self.call].index} then called "
                f"{self.tool} with {arg}")

    def advice(self, view: View) -> str:
        return f"pass the task's {_quoted(self.values)} on with the work you hand on"

    def holds(self, view: View) -> bool:
        task = view.trajectory.task or ""
        return (view.in_order(self.pos, self.call) and bool(self.values)
                and all(mentions(task, v) for v in self.values)
                and not any(mentions(view.actions[self.pos], v) for v in self.values)
                and (_brought_work(view, self.pos, self.call, self.values)
                     or not any(mentions(view.actions[j], v) for j in range(self.pos) for v in self.values))
                and _made_call(view, self.call, self.tool, self.argument, self.value)
                and not any(mentions(self.value, v) for v in self.values))


def _brought_work(view: View, pos: int, call: int, values: tuple[str, ...]) -> bool:
    """Whether step ``pos`` is one of the hand-overs of work (:func:`work_handovers`, back from step ``call``) that
    brought step ``call``'s agent its work, none of them stating any of ``values``."""
    for h in work_handovers(view.steps, call, returned_numbers(view.arrived(call), view.task)):
        if h < pos or any(mentions(view.actions[h], v) for v in values):
            return False
        if h == pos:
            return True
    return False


def _number(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class PicksAgainstInputs(Claim):
    """The task asks for the ``word`` one; the step names ``chosen``, reported earlier as ``chosen_value``, while
    ``best`` was reported as ``best_value``, further in that direction."""

    word: str
    higher: bool
    chosen: str
    chosen_value: float
    best: str
    best_value: float

    def clause(self, view: View) -> str:
        more = "higher" if self.higher else "lower"
        return (f"it names {self.chosen} ({_number(self.chosen_value)}) although {self.best} was reported as "
                f"{_number(self.best_value)}, {more}, and the task asks for the {self.word}")

    def advice(self, view: View) -> str:
        return f"compare the values your inputs report before you pick ({self.best}: {_number(self.best_value)})"

    def holds(self, view: View) -> bool:
        if not view.in_step(self.pos) or not mentions(view.trajectory.task or "", self.word):
            return False
        earlier = "\n".join(view.actions[:self.pos] + view.arrived(self.pos)).lower()

        def reported(name: str, value: float) -> bool:
            return re.search(rf"{re.escape(name.lower())}\s*[:=]\s*{re.escape(_number(value))}(?![\d.])", earlier) is not None

        further = self.best_value > self.chosen_value if self.higher else self.best_value < self.chosen_value
        return (further and mentions(view.actions[self.pos], self.chosen) and reported(self.chosen, self.chosen_value)
                and reported(self.best, self.best_value))


@dataclass(frozen=True)
class HandsBackWithout(Claim):
    """Step ``handed_by`` (another agent's, just before this agent's run of steps, naming it; or a user's, with
    only the user and this agent speaking since) names each of ``items``; none of this agent's steps from then
    up to this one, the last of its run, names any of them."""

    handed_by: int
    items: tuple[str, ...]

    def listed(self, view: View) -> str:
        """The items as the handing step writes them ("Milan-Budapest", not "milan-budapest")."""
        return _quoted(_as_written(view.actions[self.handed_by], i) for i in self.items)

    def clause(self, view: View) -> str:
        by = view.steps[self.handed_by]
        return (f"its turn ends without {self.listed(view)}, which step {by.index} by {by.agent} "
                + ("asked for" if is_human(by) else "handed it"))

    def advice(self, view: View) -> str:
        return f"do not hand back without {self.listed(view)}, which you were handed"

    def holds(self, view: View) -> bool:
        if not (view.in_order(self.handed_by, self.pos) and self.items):
            return False
        agent = view.steps[self.pos].agent
        by = view.steps[self.handed_by]
        turn = range(self.handed_by + 1, self.pos + 1)
        last = self.pos + 1 == len(view.steps) or view.steps[self.pos + 1].agent != agent
        own = [j for j in turn if view.steps[j].agent == agent]
        if is_human(by):
            handed = all(view.steps[j].agent == agent or is_human(view.steps[j]) for j in turn)
        else:
            handed = mentions(view.actions[self.handed_by], agent) and len(own) == len(turn)
        return (last and by.agent != agent and handed
                and all(mentions(view.actions[self.handed_by], i) for i in self.items)
                and not any(mentions(view.actions[j], i) for j in own for i in self.items))


def _argument_names(view: View, tool: str) -> set[frozenset[str]]:
    """The argument names ``tool`` is called with in the run, and its parameters in the declared team."""
    out = {frozenset(c.arguments) for s in view.steps for c in s.tool_calls
           if c.name == tool and isinstance(c.arguments, dict) and c.arguments}
    return out | {frozenset(t.parameters) for m in view.trajectory.team for t in m.tools
                  if t.name == tool and t.parameters}


def _team_gives(view: View, agent: str, tool: str) -> bool:
    return any(m.name == agent and any(t.name == tool for t in m.tools) for m in view.trajectory.team)


@dataclass(frozen=True)
class CallsOffRequest(Claim):
    """The step calls ``tool``, whose name has ``words``, which neither ``alternative``'s name, the task nor any
    step's own words before it have; ``alternative`` takes the same argument names (as the run calls it, or as
    the declared team gives it), and every word of its name that ``tool``'s lacks is in the task or said
    before the step."""

    tool: str
    alternative: str
    words: tuple[str, ...]

    def clause(self, view: View) -> str:
        listed = _quoted(self.words)
        return (f"it called {self.tool}, although nothing before it asks for {listed}, and {self.alternative} "
                f"takes the same arguments")

    def advice(self, view: View) -> str:
        return f"call {self.alternative}, which takes the same arguments, unless something asks for {self.tool}"

    def holds(self, view: View) -> bool:
        if not (view.in_step(self.pos) and self.words):
            return False
        own = {frozenset(c.arguments) for c in view.steps[self.pos].tool_calls
               if c.name == self.tool and isinstance(c.arguments, dict) and c.arguments}
        asked = said_words(" ".join([view.trajectory.task or ""] + [said_text(s) for s in view.steps[:self.pos]]))
        mine, other = name_words(self.tool), name_words(self.alternative)
        return (bool(own & _argument_names(view, self.alternative)) and set(self.words) <= mine - other
                and not set(self.words) & asked and other - mine <= asked)


@dataclass(frozen=True)
class HandsToOffRequest(Claim):
    """The step is the other agent's right before the turn of the agent of step ``call``, which calls ``tool``
    as :class:`CallsOffRequest` says, and that agent never calls ``alternative`` nor has it in the declared
    team; ``owner``, when given, is the teammate the declared team gives it to."""

    call: int
    tool: str
    alternative: str
    words: tuple[str, ...]
    owner: str | None = None

    def clause(self, view: View) -> str:
        callee = view.steps[self.call]
        held = f" and is {self.owner}'s" if self.owner else ""
        return (f"it hands the work to {callee.agent}, who then calls {self.tool} (step {callee.index}) although "
                f"nothing before asks for {', '.join(repr(w) for w in self.words)}, and never {self.alternative}, "
                f"which takes the same arguments{held}")

    def advice(self, view: View) -> str:
        to = self.owner or f"an agent that calls {self.alternative}"
        return f"hand this work to {to}, not to {view.steps[self.call].agent}"

    def holds(self, view: View) -> bool:
        if not view.in_order(self.pos, self.call):
            return False
        callee = view.steps[self.call].agent
        return (view.steps[self.pos].agent != callee
                and all(view.steps[j].agent == callee for j in range(self.pos + 1, self.call + 1))
                and CallsOffRequest(self.call, self.tool, self.alternative, self.words).holds(view)
                and not any(c.name == self.alternative for s in view.steps if s.agent == callee
                            for c in s.tool_calls)
                and not _team_gives(view, callee, self.alternative)
                and (self.owner is None or (self.owner != callee and _team_gives(view, self.owner, self.alternative))))


def check_claims(trajectory: Trajectory, claims: list[Claim], view: View | None = None) -> list[Claim]:
    """The claims that do not hold of the trajectory (an empty list when every one is true)."""
    view = view or View(trajectory)
    return [c for c in claims if not c.holds(view)]


def render_reason(view: View, pos: int, claims: list[Claim], head: str) -> str:
    """The reason sentence: ``head``, then one clause per claim; the one way reasons are written."""
    clauses = [c.clause(view) for c in claims]
    step = view.steps[pos]
    body = "; ".join(clauses) if clauses else "no single piece of evidence stands out; it scores highest overall"
    return f"Step {step.index} by {step.agent} {head}: {body}."


def render_advice(view: View, pos: int, claims: list[Claim], most: int = 2) -> str:
    """What the agent of step ``pos`` should do instead, from the claims about that step that say what it did
    wrong (at most ``most``, each once); '' when none does."""
    advice = dict.fromkeys(a for c in claims if c.pos == pos and (a := c.advice(view)))
    return "; ".join(list(advice)[:most])
