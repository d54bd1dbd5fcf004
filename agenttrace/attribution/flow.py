"""What each step of a trajectory *does* and what it *receives*, and where values come from.

An agent's own text, its tool-call arguments and its handoff choices are its **actions**; tool results,
other agents' messages, the task, the user's turns and the input it was handed are its **inputs**. A
value (a number, an argument) is *introduced* by a step when it is in the step's actions and in none of
its inputs: a number that first shows up in a tool result is the tool's, not the caller's (0 and 1, which
count, index and flag everything, are never introduced). A count of something the task counts, given
differently ("4 x wall clock" where the task says 3), is a conflict, by an agent or by the user. Values are
followed to the run's final answer, tool arguments are compared with everything the caller was given,
and an error counts as *repaired* when the same agent later gets past it (the failing tool succeeds, or
the agent goes on without reporting a problem).

Work is linear in the trajectory's size: each text is scanned once, and only a bounded window of each
end of a very long text is read for values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agenttrace.attribution import observations
from agenttrace.attribution.echoes import prompt_echoes
from agenttrace.data.messages import TOOL_ROLES, names_agent
from agenttrace.models import Step, ToolCall, Trajectory, value_text

if TYPE_CHECKING:
    from agenttrace.attribution.alternatives import OffRequestCall
    from agenttrace.attribution.code_origin import CodeOrigin
    from agenttrace.attribution.coverage import LeftOut
    from agenttrace.attribution.picks import Pick
    from agenttrace.attribution.provenance import OffTaskArgument

WINDOW = 20000  # characters of each end of a text read for values and words

ERROR_WORDS = (
    "error", "exception", "traceback", "failed", "failure", "failing", "fails", "unable", "cannot", "can't", "could not",
    "not found", "invalid", "incorrect", "unfortunately", "timed out", "timeout", "no such",
    "does not exist", "not available", "denied", "blocked", "exitcode: 1",
)
ASSUME_WORDS = (
    "assume", "assuming", "assumption", "hypothetical", "placeholder", "simulate", "simulated", "mock",
    "let's say", "dummy", "sample data", "approximately", "estimate", "probably", "i believe",
    "without verifying", "instead",
)
# an error that says the call may work if made again: a timeout, a rate limit, a temporary fault, a retry hint, or
# an HTTP status that means one (408 request timeout, 429 too many requests, 504 gateway timeout) given as a status;
# a bare 503 (service unavailable) reads as an outage unless its text says to retry
RETRYABLE = re.compile(r"\b(?:timed out|time-?out|retr(?:y|ied)|try again|rate[ -]?limit(?:ed)?|too many requests|"
                       r"temporar(?:y|ily)|(?:http|status|code|error)\W{0,3}(?:408|429|504))\b", re.I)
DONE_WORDS = ("terminate", "final answer", "the answer is", "in conclusion", "task is complete", "successfully")

_NUM = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?![\w.]*\w)")
# a number with a unit or suffix glued on ("<200m", "7am", "1980s", "3x3"): not a quantity a step states, but
# one a reader takes its text to give
GLUED_NUM = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?=[A-Za-z])")
DATES = re.compile(r"\b\d{4}-\d{1,2}-\d{1,2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b")
# list numbering "1. ", "2) ", "3. **Check": at a line's start, or after a sentence's end ("... shipped. 2. Calculator:
# ..."); and inline "(1) a task and (2) a plan"
_ENUM = re.compile(r"(?:^\s*(?:#{1,6}\s*|[-*+]\s+)?|(?<=[.;:!?] ))\d{1,2}[.)]\s+(?=[*_#\[(]*[A-Za-z])"
                   r"|(?<!\w)\(\d{1,2}\)(?=\s+[A-Za-z])", re.MULTILINE)
# where things are, not how many: source locations ("orchestrator.py:216", 'File "x.py", line 402'), references to
# steps ("steps 1 through 4"), a value given to a key that names an identifier or a position ("task_id": "1",
# line_number=3); every repetition is bounded, so a long run of characters costs linear time
_LOCATOR = re.compile(r"\b[\w-]{1,80}\.[a-z]{1,4}:\d+\b|\bFile \"[^\"\n]{0,300}\", line \d+|"
                      r"\b[Ss]teps? \d+(?:\s{0,3}(?:-|to|through|and)\s{0,3}\d+)?|"
                      r"(?:\b(?:\w{0,40}_)?(?i:id|ids|index|idx|line|lineno|line_number|page|position|offset)|"
                      r"\b[a-z]{1,40}(?:Id|Index|Line|Page|Position|Offset))[\"']?\s{0,3}[:=]\s{0,3}[\"']?-?\d+")
# how code works, not what it states: a keyword argument ("skiprows=2", "round(x, ndigits=2)"; an assignment
# statement spaced as "x = 5" states a value and stays) and a subscript or slice ("rows[2]", "df.iloc[:3]"; a
# list literal "= [71]" states its value and stays)
_PARAMETER = re.compile(r"\b[A-Za-z_]\w{0,40}=-?\d+(?:\.\d+)?\b"
                        r"|(?<=[\w)\]])\[\s{0,3}(?:-?\d+\s{0,3}(?::\s{0,3}(?:-?\d+)?)?|:\s{0,3}-?\d+)\s{0,3}\]")
_WORD = re.compile(r"\S+")
_LETTER = re.compile(r"[A-Za-z_]")


def _not_path(m: re.Match) -> str:
    """A URL or a file path ("https://x.org/a?id=5", "../2023/validation/df65.png") as a blank; other words as
    they are (a rate such as "5/month", a fraction "3/4")."""
    word = m.group(0)
    path = "://" in word or word.startswith("/") or word.count("/") >= 2
    return " " if path and _LETTER.search(word) else word


_TOKEN = re.compile(r"[a-z0-9]+(?:[._'-][a-z0-9]+)*")
_NAMED_AFTER = re.compile(r"\b([a-z][a-z_]{2,})[ \t]*(?:=|:|\bis\b|\bwas\b|\bare\b)[ \t]*(-?\d+(?:\.\d+)?)\b")
# "5 x kettle", "2 × office chair": a count of an item, up to the next separator
_COUNTED = re.compile(r"\b(\d{1,4})[ \t]*[x\u00d7][ \t]+([a-z][a-z -]{0,40}?)[ \t]*(?=[,;.()?!]|\band\b|$)", re.M)
# grammatical words that carry no content of their own: one an argument uses and no input gave is no evidence
# of anything (words of quantity, order or place - "only", "each", "most", "before", "without" - are left out:
# they state a task's constraints)
FUNCTION_WORDS = {
    "the", "and", "but", "nor", "yet", "can", "will", "just", "what", "which", "who", "whom", "whose", "when",
    "where", "why", "how", "this", "that", "these", "those", "with", "from", "into", "onto", "upon", "about",
    "via", "has", "have", "had", "having", "does", "did", "doing", "done", "are", "was", "were", "been", "being",
    "its", "his", "her", "hers", "their", "theirs", "them", "they", "our", "ours", "your", "yours", "you", "she",
    "him", "there", "here", "then", "also", "would", "could", "might", "shall", "may", "whether", "either",
    "neither", "because", "though", "although", "i'll", "i'm", "i've", "i'd", "it's", "let's", "we'll", "we're",
    "we've", "you're", "you'll", "you've", "they're", "he's", "she's", "here's", "there's", "that's", "what's",
    "who's", "where's", "how's", "don't", "doesn't", "didn't", "isn't", "aren't", "wasn't", "can't", "won't",
}
# the words of a request's phrasing ("how many ... please find"), which say nothing of what a task is about
_TASK_STOP = FUNCTION_WORDS | {"many", "much", "than", "some", "more", "most", "only", "each", "find", "give", "please",
                               "answer"}
# words that name no quantity of their own in "name: 5" ("step: 3", "the total is 40")
_NAME_STOP = FUNCTION_WORDS | {"a", "an", "of", "is", "to", "in", "at", "on", "for", "it", "step", "line", "code",
                               "output", "exitcode", "result", "answer", "value", "total", "number", "count", "http",
                               "https", "www", "am", "pm", "id", "index", "port", "version"}
# words that state a requirement; a plan that states fewer of them than the task may have dropped one
_CONSTRAINT = re.compile(r"\b(?:only|at least|at most|exactly|not|no more than|no less than|each|every|must|should|"
                         r"except|excluding|without|never|unless|within|minimum|maximum|less than|more than|"
                         r"fewer than|between|before|after|required?|subtract|add|minus|plus|total|remaining)\b")
_HUMAN = {"human", "user", "customer", "simulated_user", "client"}
_ASKING_ROLES = {"human", "system", "developer"}


def window(text: str, size: int = WINDOW) -> str:
    return text if len(text) <= 2 * size else text[:size] + "\n" + text[-size:]


def norm_number(surface: str) -> str:
    """``"1,000.50"`` -> ``"1000.5"``; ``"7.0"`` -> ``"7"``."""
    v = surface.replace(",", "")
    if "." in v:
        v = v.rstrip("0").rstrip(".") or "0"
    return v


def numbers(text: str, *, glued: bool = False) -> dict[str, str]:
    """The numbers of a text, list numbering, dates and locators (not quantities) left out: normalised value ->
    first surface form. ``glued`` adds the numbers with a unit or suffix glued on ("<200m" gives 200): what
    an input gives, as against what a step states."""
    out: dict[str, str] = {}
    text = _quantities_text(text)
    for pattern in (_NUM, GLUED_NUM) if glued else (_NUM,):
        for m in pattern.finditer(text):
            out.setdefault(norm_number(m.group(0)), m.group(0))
    return out


@observations.remembered
def _quantities_text(text: str) -> str:
    """``text`` (its :func:`window`) with what states no quantity blanked: list numbering, locators, parameters,
    paths and dates. Remembered (:func:`observations.remembered`): :func:`numbers` reads most texts more than once."""
    # locators before paths: a traceback's 'File "/usr/lib/x.py", line 402' is a locator only with its path
    return DATES.sub(" ", _WORD.sub(_not_path, _PARAMETER.sub(" ", _LOCATOR.sub(" ", _ENUM.sub(" ", window(text))))))


def tokens(text: str) -> set[str]:
    return set(_TOKEN.findall(window(text.lower(), 6000)))


def mentions(text: str, phrase: str) -> bool:
    """Whether ``phrase`` is in ``text`` as a whole word or words (case-insensitive)."""
    return re.search(rf"(?<![a-z0-9]){re.escape(phrase.lower())}(?![a-z0-9])", text.lower()) is not None


def mentions_word(text: str, word: str) -> bool:
    """Whether ``text`` has ``word`` as a whole word in any of its :func:`word_forms`."""
    return any(mentions(text, form) for form in word_forms(word.lower()))


def first_word(text: str, words: tuple[str, ...]) -> str | None:
    """The word of ``words`` that occurs first in ``text`` (lower-cased), or None."""
    best: tuple[int, str] | None = None
    for w in words:
        pos = text.find(w)
        if pos >= 0 and (best is None or pos < best[0]):
            best = (pos, w)
    return None if best is None else best[1]


def count_words(text: str, words: tuple[str, ...]) -> int:
    return sum(text.count(w) for w in words)


def is_human(step: Step) -> bool:
    """A user's turn: by the speaker's name or a "human" role (AG2 records agents with role "user", so that role
    alone says nothing), or the instructions a chat log opens with (a "system" or "developer" message): what
    the run was asked, not an agent's doing. :func:`mark_users` gives the role "human" to the agents that act
    as the user."""
    return step.agent.lower() in _HUMAN or (step.role or "").lower() in _ASKING_ROLES


def handed_by(steps: list[Step], pos: int) -> int | None:
    """The other agent's step right before the turn that holds step ``pos``: the one that handed that agent the
    work (None when it is a user's turn, or there is none)."""
    start = pos
    while start > 0 and steps[start - 1].agent == steps[pos].agent:
        start -= 1
    return start - 1 if start > 0 and not is_human(steps[start - 1]) else None


def returned_numbers(results: list[str], asked: str) -> set[str]:
    """The numbers (their :func:`tokens`) of tool ``results`` that what the run was ``asked`` does not give."""
    return {t for text in results for t in tokens(text) if t[0].isdigit()} - tokens(asked)


def hands_work(step: Step, agent: str, returned: set[str]) -> bool:
    """Whether the step hands work to ``agent``: it names it ("fetcher, please look up ...") and states none of
    the numbers tools ``returned`` (:func:`returned_numbers`), as a report handed back ("Results: kettle: 40.
    Next speaker: lead") does."""
    said = said_text(step)
    return agent.lower() in said.lower() and not any(t[0].isdigit() and t in returned for t in tokens(said))


def work_handovers(steps: list[Step], pos: int, returned: set[str]) -> Iterator[int]:
    """The hand-overs of work that brought step ``pos``'s agent its work, latest first: the step that handed that
    agent its turn (:func:`handed_by`) while it hands work to it (:func:`hands_work`), then the one that handed
    that step's agent its work, and so on."""
    to, h = pos, handed_by(steps, pos)
    while h is not None and hands_work(steps[h], steps[to].agent, returned):
        yield h
        to, h = h, handed_by(steps, h)


def stated_task(trajectory: Trajectory) -> str:
    """What the run was asked: the task, and the user's opening turns that state it, with what they attach (a
    file's contents after the question): a value there was given to the run, not made up by whoever repeats it."""
    task = (trajectory.task or "").strip()
    parts = [trajectory.task or ""]
    for step in trajectory.steps:
        if not is_human(step):
            break
        if task and task in step.content:
            parts.append(step.content)
    return "\n".join(parts)


def is_tool_output(step: Step) -> bool:
    """Whether the step is a tool's answer logged as a message of its own (a ``role: "tool"`` message, a code
    executor's report): an input of the run, in which no agent decides anything."""
    return (step.role or "").lower() in TOOL_ROLES or (
        not step.tool_calls and observations.is_execution_report(step.content))


def asks(text: str) -> bool:
    """It ends in a question, on its last line or the one before (then followed by a line such as who is to
    answer)."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return any(line.endswith("?") for line in lines[-2:])


def is_handoff(step: Step, call: ToolCall) -> bool:
    """Whether ``call`` is the step's handoff: the step hands over, and the call names the agent it hands to."""
    return bool(step.transfer_to) and names_agent(call, step.transfer_to)


def said_text(step: Step) -> str:
    """What the step says to the others: its words, and the message its handoff call carries (a delegation's
    task text, which is all CrewAI's spans keep of a reply that delegates)."""
    handed = [v for c in step.tool_calls if is_handoff(step, c) for _, v in argument_values(c.arguments)]
    return "\n".join(p for p in [step.content, *handed] if p)


def simulated_users(trajectory: Trajectory) -> set[str]:
    """The agents that play the user, whatever their names, in a run that records its tool calls: the agent
    that opens the run, is asked a question by another agent at least once, never calls a tool itself
    (handoffs aside) while another agent does, and does not have the last word."""
    steps = trajectory.steps
    if not steps or not any(c for s in steps for c in s.tool_calls if not is_handoff(s, c)):
        return set()
    who = steps[0].agent
    mine = [i for i, s in enumerate(steps) if s.agent == who]
    acts = any(not is_handoff(steps[i], c) for i in mine for c in steps[i].tool_calls)
    asked = any(i > 0 and steps[i - 1].agent != who and asks(steps[i - 1].content or "") for i in mine)
    return {who} if asked and not acts and mine[-1] != len(steps) - 1 else set()


def mark_users(trajectory: Trajectory) -> Trajectory:
    """The trajectory with the steps of :func:`simulated_users` given the role "human" (itself when none)."""
    users = simulated_users(trajectory)
    if not users:
        return trajectory
    steps = [s.model_copy(update={"role": "human"}) if s.agent in users else s for s in trajectory.steps]
    return trajectory.model_copy(update={"steps": steps})


def action_text(step: Step) -> str:
    """What the step's agent itself produced: its text (tool output a text log printed into it left out, see
    :mod:`agenttrace.attribution.observations`), its tool calls' names and arguments, its handoff."""
    own = observations.split(step.content)[0] if step.content else ""
    parts = [own] if own else []
    parts += _call_texts(step)
    if step.transfer_to:
        parts.append(f"transfer to {step.transfer_to}")
    return "\n".join(parts)


def deed_text(step: Step) -> str:
    """What the step does, for telling whether it does it again: the calls of a step that calls tools (a
    second "Double-checking X" with the same call is the same lookup as "Looking up X"); the actions of one
    that hands over (what it hands over is in its words) or makes no call."""
    if not step.tool_calls or step.transfer_to:
        return action_text(step)
    return "\n".join(_call_texts(step))


def does_again(step: Step, earlier: Step) -> bool:
    """Whether ``step`` does what ``earlier`` did (the same :func:`deed_text`, not empty) and its calls got back
    what ``earlier``'s got: a repeat, where a retry that works or a second page scrolled to is not."""
    deeds = deed_text(step)
    return bool(deeds.strip()) and deeds == deed_text(earlier) and step.answers() == earlier.answers()


def _call_texts(step: Step) -> list[str]:
    """Each of the step's tool calls as ``name(arguments)``."""
    return [f"{c.name}({value_text(c.arguments)})" for c in step.tool_calls]


def speaks(step: Step, call: ToolCall) -> bool:
    """Whether ``call`` only carries the step's own words (a ``final_answer`` tool, a managed agent handed the
    step's text): one of its arguments, 15 characters or more, is (nearly all of) the step's text. Its
    arguments are not a lookup, and its result (an echo, or the delegate's words, which are steps of their
    own) is not data."""
    said = " ".join(step.content.split())
    for _, v in argument_values(call.arguments):
        v = " ".join(v.split())
        if len(v) >= max(15, 0.8 * len(said)) and v in said:
            return True
    return False


def points_at(tool: str) -> bool:
    """Whether a call of ``tool`` clicks or hovers over a control of the page its agent sees ("I clicked
    'Close'."): which control it should have chosen is on the page, which a text log records only in part
    (its text, not its buttons), so there is no telling the agent what to pass instead."""
    return tool.lower().startswith(("click", "hover"))


def result_text(step: Step) -> str:
    """What the environment answered to the step's tool calls (results and errors), calls that only carry the
    step's own words (:func:`speaks`) left out, and tool output a text log printed into the step's text."""
    printed = observations.split(step.content)[1] if step.content else ""
    parts = [printed] if printed else []
    for c in step.tool_calls:
        if c.error:
            parts.append(c.error)
        if c.result is not None and not speaks(step, c):
            parts.append(value_text(c.result))
    if step.error and not step.tool_calls:
        parts.append(step.error)
    return "\n".join(parts)


def arrivals(steps: list[Step]) -> list[int]:
    """Per step, the position after which its tool results are an input of the run: its own, except for a
    delegation whose result relays what a later step says (a managed agent's final answer, a coworker's
    reply), which arrives only after the last step it relays."""
    out = list(range(len(steps)))
    said = [" ".join(s.content.split()) for s in steps]
    for pos, step in enumerate(steps):
        results = " ".join(result_text(step).split()) if step.tool_calls else ""
        if results:
            out[pos] = max((j for j in range(pos + 1, len(steps)) if len(said[j]) >= 15 and said[j] in results), default=pos)
    return out


def final_answer(trajectory: Trajectory) -> str:
    """The run's answer: the recorded one, else the last non-human step's own text."""
    if trajectory.answer:
        return trajectory.answer
    last = next((s for s in reversed(trajectory.steps) if not is_human(s)), None)
    return action_text(last) if last is not None else ""


def argument_values(arguments: Any) -> list[tuple[str, str]]:
    """(argument name, value as text) of a tool call's scalar arguments; a bare argument is named ''."""
    if isinstance(arguments, dict):
        return [(str(k), value_text(v)) for k, v in arguments.items()
                if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
    if isinstance(arguments, (str, int, float)) and not isinstance(arguments, bool):
        return [("", value_text(arguments))]
    return []


@dataclass
class UngroundedArgument:
    tool: str
    argument: str
    value: str  # the value as the call gives it
    number: str  # a number of that value no input of the step carries
    returned: str | None = None  # a number that call returned which reaches the final answer


@dataclass(frozen=True)
class BuiltOn:
    """A step works ``number`` (which reaches the final answer) out of ``operand``, which step ``pos`` made up:
    it first stated it, and neither an input nor arithmetic on its inputs gives it (``tool`` empty), or a ``tool``
    call of that step returned it, a call with an argument no input gave (:meth:`StepFlow.made_up_argument`)."""

    pos: int
    tool: str
    operand: str
    number: str


@dataclass
class StepFlow:
    """What one step does with what it receives."""

    human: bool = False
    tool_output: bool = False  # its whole message is what a tool answered (a tool message, an executor's report)
    prompt_echo: bool = False  # the agent's own prompt, logged before its reply (:mod:`.echoes`): what it was given
    introduced: list[str] = field(default_factory=list)  # surface forms of numbers its actions introduce
    introduced_to_answer: list[str] = field(default_factory=list)
    underived: list[str] = field(default_factory=list)  # introduced numbers no sum/difference/product/ratio of inputs gives
    unseen_argument: tuple[str, str, str, str] | None = None  # (tool, argument, value, a word no input carried)
    returned_to_answer: list[tuple[str, str]] = field(default_factory=list)  # (tool, number) from its results
    ungrounded: list[UngroundedArgument] = field(default_factory=list)
    conflict: tuple[str, str, str] | None = None  # (quantity, earlier value, this step's value)
    dropped: list[str] = field(default_factory=list)  # task words a plan-like step leaves out, in the task's order
    constraint_deficit: float = 0.0
    plan_like: bool = False
    problem_word: str | None = None  # a problem its own text reports
    failed_tool: tuple[str, str] | None = None  # (tool, error text) of a call of its that failed
    result_problem: str | None = None  # a problem word in what its tools returned
    ignored_error_at: int | None = None  # an earlier failed call of this agent it goes on from without a word
    works_around: int | None = None  # an earlier failed call of this agent it goes on without, see _mark_work_arounds
    stops_at: int | None = None  # an earlier call of this agent the environment failed, that it stops at: _mark_stops
    gives_up_at: int | None = None  # an earlier call of this agent that failed as one to retry, that it stops at instead
    built_on: BuiltOn | None = None  # a made-up number a number it works out and answers with uses
    repaired: bool = False  # its problem is got past later by the same agent
    repeats: int | None = None  # position of an earlier step of the same agent with the same actions
    assume_word: str | None = None
    has_code: bool = False
    done: bool = False
    answer_tokens_first: float = 0.0  # share of the answer's distinctive tokens this step is first to state
    # filled in from agenttrace.attribution.provenance, .picks, .coverage, .alternatives and .code_origin:
    off_task: list[OffTaskArgument] = field(default_factory=list)  # its own calls' off-task arguments
    originates: list[OffTaskArgument] = field(default_factory=list)  # off-task arguments of later calls it first stated
    loses: list[OffTaskArgument] = field(default_factory=list)  # off-task arguments whose task value it dropped
    pick: Pick | None = None
    left_out: LeftOut | None = None  # items its turn was handed and it ends without
    off_request: OffRequestCall | None = None  # its own call of a tool nothing asked for, beside an alternative
    hands_off_request: OffRequestCall | None = None  # a call of such a tool by the agent it handed the work to
    code_origin: CodeOrigin | None = None  # a line of the run's last code it is the first to write

    def made_up_argument(self, tool: str) -> bool:
        """Whether its call of ``tool`` had an argument no input gave it (a typo, a made-up id, another item)."""
        return ((self.unseen_argument is not None and self.unseen_argument[0] == tool)
                or any(u.tool == tool for u in self.ungrounded))

    def caused_its_failure(self) -> bool:
        """Whether its failed call had an argument no input gave it: the caller's doing, not the environment's."""
        return self.failed_tool is not None and self.made_up_argument(self.failed_tool[0])

    @property
    def acts(self) -> bool:
        """Whether what it says is an agent's own doing (not a user's turn, not a prompt a log shows)."""
        return not (self.human or self.prompt_echo)

    @property
    def has_problem(self) -> bool:
        return bool(self.problem_word or self.failed_tool or self.result_problem)


def _named_pairs(text: str) -> list[tuple[str, str]]:
    """(name, value) of each "name: 5" / "name = 5" / "name is 5" in ``text`` (any case), in order; a date is
    no value ("date: 2025-03-11" gives none)."""
    pairs = []
    for m in _NAMED_AFTER.finditer(DATES.sub(" ", window(text, 6000).lower())):
        words = [w for w in re.split(r"[ _]+", m.group(1)) if w and w not in _NAME_STOP]
        if words:
            pairs.append((words[-1], norm_number(m.group(2))))
    return pairs


def _by_name(pairs: list[tuple[str, str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name, value in pairs:
        out.setdefault(name, set()).add(value)
    return out


def counted_items(task: str) -> list[tuple[tuple[str, ...], float]]:
    """The items a task counts ("5 x kettle", "2 × office chair"): the first words of each item's name, and
    how many."""
    out = []
    for m in _COUNTED.finditer(window(task.lower(), 6000)):
        words = tuple(w for w in re.split(r"[ _-]+", m.group(2).strip()) if w and w not in _NAME_STOP)[:3]
        if words:
            out.append((words, float(m.group(1))))
    return out


# a number a step may work out, and the numbers it is worked out of
Derivable = tuple[str, tuple[str, ...]]


def weighted_totals(counted: list[tuple[tuple[str, ...], float]], latest: dict[str, str]) -> list[Derivable]:
    """Each counted item's count times the value last reported for it (under the last word of its name that
    has one), and the total of those: what a step given the values may compute (5 x kettle at 47 and
    2 x office chair at 135 total 505)."""
    parts = []
    for words, count in counted:
        name = next((w for w in reversed(words) if w in latest), None)
        value = _as_float(latest[name]) if name else None
        if value is not None:
            parts.append((count * value, latest[name]))
    out = [(str(x), (v,)) for x, v in parts]
    if len(parts) > 1:
        out.append((str(sum(x for x, _ in parts)), tuple(v for _, v in parts)))
    return out


def named_total(task: str, latest: dict[str, str]) -> list[Derivable]:
    """The sum of the values last given for the items the task names, when two or more have one: what a step
    given "Dublin-Athens: 256 EUR" and "Warsaw-Zurich: 256 EUR" may total, the same value counted twice."""
    given = [value for name, value in latest.items() if mentions(task, name) and _as_float(value) is not None]
    return [(str(sum(float(v) for v in given)), tuple(given))] if len(given) > 1 else []


def salient_task_words(task: str) -> list[str]:
    """The task's words a plan should carry, in the order the task first says them: numbers and content words of
    four letters or more."""
    return list(dict.fromkeys(t for t in _TOKEN.findall(window(task.lower(), 6000))
                              if (any(c.isdigit() for c in t) or len(t) >= 4) and t not in _TASK_STOP))


_TRIVIAL = {"0", "1"}  # they count, index and flag everything: no step makes them up
_POOL = 30  # the most recent distinct numbers an introduced number may be derived from
_SUM_RUN = 8  # longest run of consecutive recent numbers whose sum counts as derived


def _count(n: float) -> str:
    return norm_number(str(n))


def _as_float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def derivation(value: str, pool: list[Derivable]) -> tuple[str, ...] | None:
    """The numbers ``value`` is worked out of when it is a total ``pool`` has the parts of, a sum, difference,
    product or ratio of two of its numbers (recent first-seen order), or the sum of a run of consecutive ones:
    arithmetic on what the step was given, not an invention. None when it is none of these. The most direct
    way is taken (two numbers may make it by chance: 35 + 8 as well as the 19 + 24 the step was given)."""
    v = _as_float(value)
    if v is None:
        return ()
    nums = [(x, made_of) for p, made_of in pool[-_POOL:] if (x := _as_float(p)) is not None]
    # to the cent first, then within 1% (a quoted result rounded): a near sum must not hide the exact one
    for tolerance in (0.005, 0.01 * max(1.0, abs(v))):
        close = lambda a: abs(a - v) <= tolerance  # noqa: E731
        for x, made_of in nums:
            if close(x):
                return made_of
        for i, (a, of_a) in enumerate(nums):
            for b, of_b in nums[i + 1:]:
                if (close(a + b) or close(a - b) or close(b - a) or close(a * b) or (b and close(a / b))
                        or (a and close(b / a))):
                    return of_a + of_b
        for start in range(len(nums)):
            total, made_of = nums[start]
            for x, of_x in nums[start + 1:start + _SUM_RUN]:
                total, made_of = total + x, made_of + of_x
                if close(total):
                    return made_of
    return None


def word_forms(word: str) -> set[str]:
    """``word`` and its plural or singular by a trailing s, es or ies ("kettle", "kettles"; "city", "cities"),
    and its possessive ("jerry", "jerry's"): a word an input gave in any of these forms was given."""
    if word.endswith("'s"):
        return {word} | word_forms(word[:-2])
    forms = {word, word + "s", word + "es", word + "'s"}
    if word.endswith("ies"):
        forms.add(word[:-3] + "y")
    elif word.endswith("es"):
        forms |= {word[:-2], word[:-1]}
    elif word.endswith("s"):
        forms.add(word[:-1])
    if word.endswith("y"):
        forms.add(word[:-1] + "ies")
    return forms


def _unseen_argument(call: ToolCall, seen_words: set[str]) -> tuple[str, str, str, str] | None:
    """The call's first argument with a word (three letters or more, not a function word; no digits, or a whole
    date) that no input carries in any form (:func:`word_forms`), and the word."""
    for arg, text in argument_values(call.arguments):
        unseen = [w for w in _TOKEN.findall(text.lower())
                  if len(w) >= 3 and (DATES.fullmatch(w) or not any(c.isdigit() for c in w))
                  and w not in FUNCTION_WORDS and not word_forms(w) & seen_words]
        if unseen:
            return call.name, arg, text[:80], unseen[0]
    return None


def read_flow(trajectory: Trajectory) -> list[StepFlow]:
    """One :class:`StepFlow` per step of the trajectory."""
    steps = trajectory.steps
    task = trajectory.task or ""
    recent = list(numbers(task, glued=True))  # every number any input so far has carried, in the order first seen
    seen_numbers = set(recent)
    seen_words = tokens(task)
    named_seen = _by_name(_named_pairs(task))
    counted = counted_items(task)
    task_counts = dict(counted)
    latest: dict[str, str] = {}  # name -> the value any input last gave it
    answer = final_answer(trajectory)
    answer_numbers = set(numbers(answer))
    task_words = tokens(task)
    answer_tokens = {t for t in tokens(answer[-2000:]) if any(c.isdigit() for c in t) or len(t) > 6} - task_words
    answer_seen: set[str] = set()
    salient = salient_task_words(task)
    task_constraints = len(_CONSTRAINT.findall(window(task.lower(), 6000)))
    asked = stated_task(trajectory).lower()
    own_assume_words = tuple(w for w in ASSUME_WORDS if w not in asked)  # the task's "estimated" is no guess of a step
    last_acts: dict[str, int] = {}  # agent -> position of its latest step
    pending_failure: dict[str, int] = {}  # agent -> position of its latest failed tool call not yet got past
    made_up: dict[str, tuple[int, str]] = {}  # a number -> the step that made it up (and the call that returned it)
    flows: list[StepFlow] = []
    arrive = arrivals(steps)
    echoes = prompt_echoes(trajectory)
    relayed: dict[int, list[str]] = {}  # position -> results of earlier delegations that arrive after it
    for pos, step in enumerate(steps):
        f = StepFlow(human=is_human(step), tool_output=is_tool_output(step), prompt_echo=pos in echoes)
        actions = action_text(step)
        low = window(actions.lower())
        results = result_text(step) if arrive[pos] == pos else ""
        if arrive[pos] != pos:
            relayed.setdefault(arrive[pos], []).append(result_text(step))
        handed = numbers(step.input or "", glued=True)  # what it had before calling its tools, beside seen_numbers
        given = dict.fromkeys([*handed, *numbers(results, glued=True)])  # ordered: runs are reproducible
        latest.update(_named_pairs(results))
        own = numbers(actions)
        if f.acts:
            f.introduced = [s for v, s in own.items() if v not in seen_numbers and v not in given and v not in _TRIVIAL]
            f.introduced_to_answer = [s for s in f.introduced if norm_number(s) in answer_numbers]
            pool = ([(v, (v,)) for v in recent + [v for v in given if v not in seen_numbers]]
                    + weighted_totals(counted, latest) + named_total(task, latest))
            made_of = {s: derivation(norm_number(s), pool) for s in f.introduced}
            f.underived = [s for s in f.introduced if made_of[s] is None]
            f.built_on = next((BuiltOn(*made_up[v], v, s) for s in f.introduced_to_answer for v in made_of[s] or ()
                               if v in made_up), None)
            for s in f.underived:
                made_up.setdefault(norm_number(s), (pos, ""))
            known_words = seen_words | tokens(step.input or "")
            inputs = seen_numbers | set(handed)
            lookups = []
            for call in step.tool_calls:
                # in the order the result gives them; a relayed delegation result is the delegate's, not the tool's
                returned = numbers(value_text(call.result)) if arrive[pos] == pos else {}
                lookups.append((call.name, returned))
                reaching = [surface for v, surface in returned.items()
                            if v in answer_numbers and v not in seen_numbers and v not in own]
                f.returned_to_answer += [(call.name, r) for r in reaching]
                if speaks(step, call) or is_handoff(step, call):  # words to another agent, not a lookup's key
                    continue
                if f.unseen_argument is None:
                    f.unseen_argument = _unseen_argument(call, known_words)
                for arg, text in argument_values(call.arguments):
                    missing = [surface for v, surface in numbers(text).items() if v not in inputs]
                    if missing:
                        f.ungrounded.append(UngroundedArgument(call.name, arg, text[:80], missing[0],
                                                               reaching[0] if reaching else None))
            for tool, returned in lookups:  # what a call with a made-up argument returned is made up too
                if f.made_up_argument(tool):
                    for v in returned:
                        if v not in inputs:
                            made_up.setdefault(v, (pos, tool))
        pairs = _named_pairs(low)
        named = _by_name(pairs)
        for key, vals in named.items():
            before = named_seen.get(key)
            if before and not (vals & before) and f.acts and f.conflict is None:
                f.conflict = (key, sorted(before)[0], sorted(vals)[0])
        for key, vals in named.items():
            named_seen.setdefault(key, set()).update(vals)
        if f.conflict is None and not f.prompt_echo:  # a count of the task's given differently, by an agent or the user
            f.conflict = next(((" ".join(words), _count(task_counts[words]), _count(n)) for words, n in
                               counted_items(low) if words in task_counts and n != task_counts[words]), None)
        latest.update(pairs)
        step_tokens = tokens(actions)
        f.plan_like = f.acts and not asks(step.content) and (
            len(_ENUM.findall(window(actions, 6000))) >= 2 or bool(step.transfer_to) or "->" in (step.role or ""))
        if f.plan_like and salient:
            f.dropped = [w for w in salient if w not in step_tokens]
            if task_constraints:
                stated = len(_CONSTRAINT.findall(window(low, 6000)))
                f.constraint_deficit = max(0, task_constraints - stated) / task_constraints
        new_answer = (answer_tokens & step_tokens) - answer_seen
        answer_seen |= new_answer
        f.answer_tokens_first = len(new_answer) / (len(answer_tokens) + 1)
        if f.acts:
            f.problem_word = first_word(low, ERROR_WORDS)
            failed = next((c for c in step.tool_calls if c.error), None)
            if failed is not None:
                f.failed_tool = (failed.name, failed.error[:120])
            elif step.error and not step.tool_calls:
                f.failed_tool = ("", step.error[:120])
            f.result_problem = first_word(window(results.lower()), ERROR_WORDS)
            f.assume_word = first_word(window(actions.lower(), 6000), own_assume_words)
            f.has_code = "```" in actions or "def " in actions
            f.done = any(w in low for w in DONE_WORDS)
            earlier = last_acts.get(step.agent)
            # the same deeds again after something came back (a tool result, another agent's turn) is a repeat; the
            # same words twice in a row with nothing in between is one turn logged twice (a thought and its message)
            if (earlier is not None and does_again(step, steps[earlier])
                    and (earlier < pos - 1 or step.tool_calls or steps[earlier].tool_calls)):
                f.repeats = earlier
            failed_before = pending_failure.get(step.agent)
            if failed_before is not None and f.problem_word is None and not _names_failed_tool(steps[failed_before], step):
                f.ignored_error_at = failed_before
            last_acts[step.agent] = pos
            if f.failed_tool:
                pending_failure[step.agent] = pos
            else:
                pending_failure.pop(step.agent, None)
        stated = numbers(actions, glued=True)
        recent += [v for v in (*stated, *given) if v not in seen_numbers]
        seen_numbers |= set(stated) | set(given)
        seen_words |= step_tokens | tokens(results) | tokens(step.input or "")
        for text in relayed.pop(pos, []):
            arrived = numbers(text, glued=True)
            recent += [v for v in arrived if v not in seen_numbers]
            seen_numbers |= set(arrived)
            seen_words |= tokens(text)
        flows.append(f)
    _mark_repaired(steps, flows)
    _mark_work_arounds(steps, flows)
    _mark_stops(steps, flows)
    return flows


def _mark_work_arounds(steps: list[Step], flows: list[StepFlow]) -> None:
    """A step *works around* a failed call when the call was its agent's, the step is that agent's next act,
    it does not make the call again, and it goes on with a value of its own: an assumption, or a number no
    input gives. Whose fault the failure was (the caller's argument, or the environment's: a timeout, a
    service down) is :meth:`StepFlow.caused_its_failure`; :mod:`~agenttrace.attribution.trace_back` follows
    the fault one way or the other."""
    for pos, f in enumerate(flows):
        if f.failed_tool is None or not f.failed_tool[0]:
            continue
        after = _next_act(steps, flows, pos)
        if after is None:
            continue
        failed = [c for c in steps[pos].tool_calls if c.error]
        if not calls_again(steps[after], failed) and (flows[after].assume_word or flows[after].underived):
            flows[after].works_around = pos


def _mark_stops(steps: list[Step], flows: list[StepFlow]) -> None:
    """A step *stops at* a failed call when the environment failed it (every argument an input gave: a service
    down; not :meth:`StepFlow.caused_its_failure`), the call was its agent's, and the step is that agent's next
    act: it names the failing tool, calls nothing and states no number of its own, and no step after it calls a
    tool or states one (a call that only carries a step's words, smolagents' ``final_answer``, or hands over is
    no call). The run ends on the failure, which no agent's correction removes.

    Unless the error says the call can be made again (:data:`RETRYABLE`: a timeout, a rate limit) and the agent
    never made it before: the step then *gives up at* the call (:attr:`StepFlow.gives_up_at`), which a retry
    would have got past, so the stop is the agent's error, not the environment's. A call that fails again
    when retried is the environment's, whatever its error says."""
    quiet_from = [True] * (len(steps) + 1)  # from step j on, no step calls a tool or states a value of its own
    for j in reversed(range(len(steps))):
        quiet_from[j] = (quiet_from[j + 1] and not calls_a_tool(steps[j]) and not flows[j].introduced
                         and not flows[j].assume_word)
    for pos, f in enumerate(flows):
        if f.failed_tool is None or not f.failed_tool[0] or f.caused_its_failure():
            continue
        after = _next_act(steps, flows, pos)
        if after is None or not _names_failed_tool(steps[pos], steps[after]) or not quiet_from[after]:
            continue
        failed = [c for c in steps[pos].tool_calls if c.error]
        retried = any(steps[k].agent == steps[pos].agent and calls_again(steps[k], failed) for k in range(pos))
        if not retried and any(RETRYABLE.search(c.error) for c in failed):
            flows[after].gives_up_at = pos
        else:
            flows[after].stops_at = pos


def _next_act(steps: list[Step], flows: list[StepFlow], pos: int) -> int | None:
    """The next step after ``pos`` in which its agent itself acts (not a tool's answer logged as a message)."""
    agent = steps[pos].agent
    return next((j for j in range(pos + 1, len(steps))
                 if steps[j].agent == agent and flows[j].acts and not flows[j].tool_output), None)


def calls_a_tool(step: Step) -> bool:
    """Whether the step calls a tool for something: not only to say its words or to hand over."""
    return any(not speaks(step, c) and not is_handoff(step, c) for c in step.tool_calls)


def calls_again(step: Step, calls: list[ToolCall]) -> bool:
    """Whether ``step`` makes one of ``calls`` again: the same tool with the same arguments."""
    return any(c.name == x.name and c.arguments == x.arguments for c in step.tool_calls for x in calls)


def _names_failed_tool(failed: Step, step: Step) -> bool:
    """Whether ``step``'s text names a tool whose call failed in ``failed`` (it speaks of the failure)."""
    said = step.content.lower()
    return any(c.error and c.name.lower() in said for c in failed.tool_calls)


def _mark_repaired(steps: list[Step], flows: list[StepFlow]) -> None:
    """A step's problem is repaired when the same agent later calls the failing tool without an error,
    or (a problem in its own words) acts again without reporting one."""
    for pos, f in enumerate(flows):
        if not f.has_problem:
            continue
        agent = steps[pos].agent
        tool = f.failed_tool[0] if f.failed_tool else None
        for later in range(pos + 1, len(steps)):
            s, g = steps[later], flows[later]
            if s.agent != agent:
                continue
            if tool and any(c.name == tool and not c.error for c in s.tool_calls):
                f.repaired = True
                break
            if not tool and not g.has_problem:
                f.repaired = True
                break
