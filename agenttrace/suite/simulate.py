"""A scripted team policy: writes each agent's turns from what the world's tools will return, plants errors.

A topology plays its team through the methods below (``delegate``, ``gather``, ``final`` ...). Each method
registers the *sites* where an error of some kind could sit (the n-th lookup, the first delegation, the final
synthesis ...). Given a ``Fault`` (kind, n-th site of that kind) the policy makes that error there and lets
everything after follow from it; with ``clean=True`` the same run is written without the agent's error (an
environment's transient failure stays, and is then handled well: retried). A transient failure the agent does
not retry is its error, whether it then guesses a value or gives up the way it would at an outage: only the
tool's error text (a timeout that can be retried, or a service unavailable) tells the two apart. A second,
``repair`` fault is a wrong tool argument that the agent notices and fixes in its next turn: present in both
runs, never decisive. A wrong
tool argument is another item, another qualifier, or a misspelt item that the tool rejects, after which the
agent assumes a value instead of fixing its call (the failed call, not the guess, is decisive). With
``notice``, the next agent (or user) to speak after the decisive error voices a doubt about it and goes on
anyway: an error that is noticed but not repaired is still the decisive one.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from agenttrace.models import ENVIRONMENT
from agenttrace.suite.plan import Script, Task, ToolUse, Turn
from agenttrace.suite.taxonomy import DESCRIPTIONS, ErrorKind
from agenttrace.suite.worlds import World

K = ErrorKind
LOOP_REPEATS = 3
# what a teammate says when something looks wrong but it carries on; no numbers or names, so that a doubt
# voiced in the final answer's turn never reads as an answer
DOUBTS = ("Hmm, that doesn't look quite right to me, but let's go on.",
          "I'm not sure that is correct; continuing anyway.",
          "Something seems off there. I'll proceed with it regardless.",
          "That looks suspicious, but we'll go with it.")


def misspelt(value: str) -> str:
    """``value`` with two different neighbouring letters of its last word of four letters or more swapped:
    a typo (kettle -> ketlte, Paris-Rome -> Paris-Rmoe)."""
    words = list(re.finditer(r"[A-Za-z]{4,}", value))
    if not words:
        return value + value[-1:]
    m = words[-1]
    w = m.group(0)
    i = next((i for i in range(len(w) - 3, 0, -1) if w[i] != w[i + 1]), 1)
    return value[:m.start()] + w[:i] + w[i + 1] + w[i] + w[i + 2:] + value[m.end():]


@dataclass(frozen=True)
class Fault:
    kind: ErrorKind
    site: int


@dataclass(frozen=True)
class Site:
    kind: ErrorKind
    turn: int   # index of the next turn when the site was reached


class RunEnds(Exception):
    """The acting agent gave up with a final text: no further turns."""


@dataclass
class Simulation:
    world: World
    task: Task
    seed: str
    tool_of: dict[str, tuple[str, bool]]      # looker agent -> (tool name, reads the stale archive)
    fault: Fault | None = None
    repair: Fault | None = None
    clean: bool = False
    notice: bool = False
    give_up: bool = False  # an ignored tool error: the agent gives up (as at an outage) instead of guessing
    turns: list[Turn] = field(default_factory=list)
    sites: list[Site] = field(default_factory=list)
    flaky: set[str] = field(default_factory=set)
    down: set[str] = field(default_factory=set)
    label: tuple[str, int, str] | None = None          # agent, turn index, reason
    repaired: bool = False
    noticed: bool = False
    answer: str = ""

    def __post_init__(self) -> None:
        self.family = self.task.family
        self.items = list(self.task.items)              # what the team believes the task is about
        self.quantities = dict(self.task.quantities)
        self.qualifier: str | None = self.task.qualifier  # None once a plan dropped it
        self.known: dict[str, int] = {}                 # values reported to the team
        self.planner: str | None = None                 # who wrote the plan (the first brief)
        self._counts: dict[ErrorKind, int] = {}

    # ---------------------------------------------------------------- bookkeeping
    def _site(self, kind: ErrorKind) -> tuple[bool, bool]:
        """Registers a site; returns (the decisive fault is here, the repaired fault is here)."""
        n = self._counts.get(kind, 0)
        self._counts[kind] = n + 1
        self.sites.append(Site(kind, len(self.turns)))
        return self.fault == Fault(kind, n), self.repair == Fault(kind, n)

    def _planted(self, kind: ErrorKind) -> bool:
        """The decisive fault sits here and this is the faulty run."""
        decisive, _ = self._site(kind)
        return decisive and not self.clean

    def _blame(self, agent: str, kind: ErrorKind, turn: int | None = None, **facts) -> None:
        self.label = (agent, len(self.turns) if turn is None else turn, DESCRIPTIONS[kind].format(**facts))

    def _rng(self, *key) -> random.Random:
        return random.Random("|".join(map(str, (self.seed, *key))))

    def _say(self, key: tuple, *choices: str, **values) -> str:
        return self._rng("say", *key).choice(choices).format(**values)

    def _turn(self, agent: str, text: str, calls: tuple[ToolUse, ...] = (), handoff: str | None = None) -> None:
        if self._doubt_due(agent):
            text = f"{self._say(('doubt', agent), *DOUBTS)} {text}"
            self.noticed = True
        self.turns.append(Turn(agent, text, calls, handoff))

    def _doubt_due(self, agent: str) -> bool:
        """The first turn after the decisive error by someone other than its maker, when it is to be noticed."""
        if not self.notice or self.noticed or self.label is None:
            return False
        culprit, turn, _ = self.label
        return culprit not in (agent, ENVIRONMENT) and len(self.turns) > turn

    def _give_up(self, agent: str, text: str) -> None:
        self._turn(agent, text)
        self.answer = text
        raise RunEnds

    def _qualifier_text(self) -> str:
        return f" ({self.family.qualifier_arg}: {self.qualifier})" if self.qualifier else ""

    def _items_text(self, items: list[str]) -> str:
        if self.quantities and self.task.combine == "sum":
            return ", ".join(f"{self.quantities[i]} x {i}" for i in items)
        return ", ".join(items)

    def _other(self, choices, avoid, *key) -> str:
        return self._rng("other", *key).choice([c for c in choices if c not in avoid])

    def _off(self, value: int, *key) -> int:
        """A plausible wrong value: near the right one, never equal."""
        delta = self._rng("off", *key).choice([-1, 1]) * self._rng("delta", *key).randint(3, 30)
        wrong = value + delta
        return wrong if wrong > 0 else value + abs(delta)

    # ---------------------------------------------------------------- team moves
    def delegate(self, agent: str, worker: str, items: list[str], *, stale: str | None = None,
                 brief: bool = False) -> str:
        """``agent`` hands ``items`` to ``worker`` (a plan, when ``brief``); returns who really got them. The
        plan, or a later hand-over by the agent that wrote it (a lead's second delegation), may leave the task's
        qualifier out."""
        if brief:
            self.planner = agent
        if items and self.qualifier and agent == self.planner and self._planted(K.PLAN_DROPS_CONSTRAINT):
            self._blame(agent, K.PLAN_DROPS_CONSTRAINT, argument=self.family.qualifier_arg,
                        right=self.task.qualifier, wrong=self.family.default_qualifier)
            self.qualifier = None
        target = worker
        if stale is not None and self._planted(K.WRONG_HANDOFF):
            self._blame(agent, K.WRONG_HANDOFF, wrong=stale, right=worker)
            target = stale
        what = f"the {self.family.measure} of {self._items_text(items)}{self._qualifier_text()}"
        if not items:
            text = self._say(("turn", agent, target), "{target}, your turn: combine the results.",
                             "Next speaker: {target}, please work out the answer.", target=target)
        elif brief:
            goal = "add them up" if self.task.combine == "sum" else f"find {self.family.highest}"
            text = self._say(("brief", agent), "Plan: look up {what}, then {goal}. {target}, please start.",
                             "Steps: 1) {target} looks up {what}; 2) we {goal}.",
                             "I'll split this up. {target}: get {what}. Then we {goal}.",
                             what=what, goal=goal, target=target)
        else:
            text = self._say(("ask", agent, target, *items), "{target}, please look up {what}.",
                             "Next: {target} should get {what}.", "Handing over to {target} for {what}.",
                             what=what, target=target)
        self._turn(agent, text, handoff=target)
        return target

    def gather(self, agent: str, items: list[str], *, report_to: str) -> None:
        """``agent`` looks each item up with its tool, then reports the values to ``report_to``."""
        found: dict[str, int] = {}
        notes: list[str] = []
        blame_report: tuple[ErrorKind, dict] | None = None
        for n, item in enumerate(items):
            if n > 0 and self._planted(K.STOPPED_EARLY):
                blame_report = (K.STOPPED_EARLY, {"done": n, "total": len(items), "missing": ", ".join(items[n:])})
                break
            if self._planted(K.INVENTED_FACT):
                found[item] = self._off(self._true(agent, item), "invent", item)
                blame_report = (K.INVENTED_FACT, {"item": item, "wrong": found[item], "right": self._true(agent, item)})
                continue
            found[item], note = self._lookup(agent, item, notes)
            if note:
                notes.append(note)
        for item in found:
            if self._planted(K.MISREAD_TOOL_RESULT):
                right, found[item] = found[item], self._off(found[item], "misread", item)
                blame_report = (K.MISREAD_TOOL_RESULT, {"item": item, "wrong": found[item], "right": right,
                                                        "tool": self.tool_of[agent][0]})
        if blame_report:
            self._blame(agent, blame_report[0], **blame_report[1])
        values = "; ".join(f"{item}: {value} {self.family.unit}" for item, value in found.items())
        text = " ".join([*notes, self._say(("report", agent, *items), "Results: {values}.", "Here is what I found: {values}.",
                                          "Done. {values}.", values=values)])
        self._turn(agent, text, handoff=report_to)
        self.known.update(found)

    def _true(self, agent: str, item: str) -> int:
        tool, archived = self.tool_of[agent]
        return self.world.value(item, self.qualifier or self.family.default_qualifier, archived=archived)

    def _lookup(self, agent: str, item: str, notes: list[str]) -> tuple[int, str | None]:
        """The lookup turn(s) of one item: the value the agent takes from them, and a note for its report."""
        tool, archived = self.tool_of[agent]
        f = self.family
        qualifier = self.qualifier or f.default_qualifier
        args = {f.item_arg: item, f.qualifier_arg: qualifier}
        text = " ".join(notes[-1:] + [self._say(("lookup", agent, item), "Looking up {item}.", "Checking {item}.",
                                                 "Let me get {item}.", item=item)])
        notes.clear()
        decisive, repaired = self._site(K.WRONG_TOOL_ARGUMENT)
        if repaired:  # a wrong qualifier, noticed and fixed in the next turn
            wrong = self._other(f.qualifiers, {qualifier}, "repair", item)
            self._turn(agent, text, (ToolUse(tool, args | {f.qualifier_arg: wrong}),))
            text = self._say(("fix", agent, item), "That was the wrong {arg} ({wrong}); retrying with {right}.",
                             "Oops, {wrong} is not the {arg} we need. Again with {right}.",
                             arg=f.qualifier_arg, wrong=wrong, right=qualifier)
            self.repaired = True
        if decisive and not self.clean:
            which = self._rng("which-arg", item).random()
            if which < 1 / 3:
                key, wrong = f.item_arg, self._other(f.items, set(self.task.items), "arg", item)
            elif which < 2 / 3:
                key, wrong = f.qualifier_arg, self._other(f.qualifiers, {qualifier}, "arg", item)
            else:  # a misspelt item: the tool does not know it, and the agent guesses instead of fixing the call
                key, wrong = f.item_arg, misspelt(item)
            self._blame(agent, K.WRONG_TOOL_ARGUMENT, tool=tool, argument=key, wrong=wrong, right=args[key])
            args = args | {key: wrong}
            if not self.world.knows(args[f.item_arg], args[f.qualifier_arg]):
                self._turn(agent, text, (ToolUse(tool, args),))
                guess = self._off(self._true(agent, item), "guess", item)
                return guess, f"The lookup of {item} failed; I'll assume {guess} {f.unit}."
        call = (ToolUse(tool, args),)
        if self._planted(K.ENVIRONMENT_FAULT):
            self.down.add(item)
            self._blame(ENVIRONMENT, K.ENVIRONMENT_FAULT, tool=tool, item=item)
            self._turn(agent, text, call)
            self._give_up(agent, self._say(("down", agent), "{tool} is down, so I cannot finish this task.",
                                           "The {tool} service keeps failing; I have to stop here.", tool=tool))
        flaky, _ = self._site(K.IGNORED_TOOL_ERROR)
        value = self.world.value(args[f.item_arg], args[f.qualifier_arg], archived=archived)
        self._turn(agent, text, call)
        if flaky:
            self.flaky.add(item)
            if not self.clean and self.give_up:
                self._blame(agent, K.IGNORED_TOOL_ERROR, tool=tool, item=item, instead="gave up")
                self._give_up(agent, self._say(("timeout", agent), "{tool} is not responding, so I cannot finish "
                                               "this task.", "The {tool} call failed; I have to stop here.", tool=tool))
            if not self.clean:
                guess = self._off(value, "guess", item)
                self._blame(agent, K.IGNORED_TOOL_ERROR, turn=len(self.turns), tool=tool, item=item,
                            instead=f"assumed {guess}")
                return guess, f"The lookup of {item} failed; I'll assume {guess} {f.unit}."
            self._turn(agent, self._say(("retry", agent, item), "The lookup of {item} timed out; retrying.",
                                        "Timeout on {item}, trying once more.", item=item), call)
        if self._planted(K.LOOPING):
            self._blame(agent, K.LOOPING, turn=len(self.turns), tool=tool, item=item)
            for _ in range(LOOP_REPEATS - 1):
                self._turn(agent, text, call)
            self._give_up(agent, "I keep getting the same result and cannot complete the task.")
        return value, None

    def relay(self, agent: str, items: list[str], *, to: str) -> None:
        """A team lead passes its worker's values up."""
        values = "; ".join(f"{item}: {self.known[item]}" for item in items if item in self.known)
        self._turn(agent, self._say(("relay", agent, *items), "Our part is done: {values}.", "From my team: {values}.",
                                    values=values), handoff=to)

    def analyse(self, agent: str, *, to: str) -> None:
        """``agent`` combines the values and passes the result on (the synthesis happens here)."""
        self.answer = self._combine(agent)
        self._turn(agent, self._say(("analyse", agent), "Computed the answer: {answer}. Please write it up.",
                                    "The result is {answer}; over to you.", answer=self.answer), handoff=to)

    def final(self, agent: str, *, relay: bool = False) -> None:
        """``agent`` writes the run's answer: its own synthesis, or (``relay``) the one passed to it."""
        if not relay:
            self.answer = self._combine(agent)
        if self.task.combine == "sum":
            text = self._say(("final", agent), "The total is {a} {unit}.", "Final answer: {a} {unit} in total.",
                             "In total: {a} {unit}.", a=self.answer, unit=self.family.unit)
        else:
            text = self._say(("final", agent), "{a} is {highest}.", "Final answer: {a}.", "The answer is {a}.",
                             a=self.answer, highest=self.family.highest)
        self._turn(agent, text)

    def _combine(self, agent: str) -> str:
        values = {item: v for item, v in self.known.items() if item in self.items}
        answer = self.task.answer(values, self.quantities)
        if self._planted(K.WRONG_SYNTHESIS):
            if self.task.combine == "sum":
                wrong = str(self._off(int(answer), "synthesis"))
            else:
                wrong = sorted(values, key=values.__getitem__)[-2] if len(values) > 1 else "unknown"
            self._blame(agent, K.WRONG_SYNTHESIS, wrong=wrong, right=answer)
            answer = wrong
        return answer

    # ---------------------------------------------------------------- a simulated user
    def user_request(self, user: str, *, to: str) -> None:
        """The user states what they want; a user error changes one item or quantity."""
        if self._planted(K.USER_ERROR):
            i = self._rng("user-item").randrange(len(self.items))
            item = self.items[i]
            if self.quantities and self.task.combine == "sum":
                wrong = self.quantities[item] + self._rng("user-qty").randint(1, 3)
                self._blame(user, K.USER_ERROR, wrong=f"{wrong} x {item}", right=f"{self.quantities[item]} x {item}")
                self.quantities[item] = wrong
            else:
                other = self._other(self.family.items, set(self.items), "user", item)
                self._blame(user, K.USER_ERROR, wrong=other, right=item)
                self.items[i] = other
        goal = "the total" if self.task.combine == "sum" else self.family.highest
        self._turn(user, self._say(("request", user), "Hi! I need {goal} for {what}.", "Hello, can you tell me {goal} of {what}?",
                                   "I'd like to know {goal} for: {what}.", goal=goal, what=self._items_text(self.items)),
                   handoff=to)

    def ask_user(self, agent: str, user: str) -> None:
        self._turn(agent, self._say(("ask-user", agent), "Which {q} should I use?", "Sure. For which {q}?",
                                    q=self.family.qualifier_arg), handoff=user)

    def user_answers(self, user: str, *, to: str) -> None:
        """The user gives the qualifier; a user error gives a wrong one."""
        self.qualifier = self.task.qualifier
        if self._planted(K.USER_ERROR):
            wrong = self._other(self.family.qualifiers, {self.task.qualifier}, "user-q")
            self._blame(user, K.USER_ERROR, wrong=wrong, right=self.task.qualifier)
            self.qualifier = wrong
        self._turn(user, self._say(("user-q", user), "{q}, please.", "Use {q}.", "It's {q}.", q=self.qualifier), handoff=to)

    def user_confirms(self, user: str, *, to: str) -> None:
        self._turn(user, self._say(("confirm", user), "Thanks, go ahead.", "Great, please finish.", "OK."), handoff=to)

    # ---------------------------------------------------------------- result
    def script(self) -> Script:
        agent, turn, reason = self.label or (None, None, None)
        return Script(tuple(self.turns), frozenset(self.flaky), frozenset(self.down), self.answer, turn, agent, reason,
                      self.repaired, self.noticed)
