"""The ``cpu`` attributor: no LLM, no GPU, a few milliseconds per trajectory.

Each step is described by features of what it *does* versus what it *receives* (see
:mod:`agenttrace.attribution.flow`): numbers its own actions introduce, whether arithmetic on its inputs
gives them and whether they reach the final answer, tool arguments (numbers or words) that nothing it was
given supports and what those calls returned, quantities it restates differently, what a plan leaves out of
the task, problems in its own words versus in its tool results, a call that fails on an argument the step
made up (the caller's doing, not the environment's), a turn that hands back without what it was handed, a
tool nothing asked for beside one that takes the same arguments (or handing work to the agent that calls
it), the first writing of a line the run's last code keeps, failures it goes on from without a word,
errors that are repaired later, loops, the earliest anomalous step, plus generic structure (relative
position, first action, an agent's turn count, handoffs, relative length and novelty) and agent-level terms
(the agent opens or closes the run, its share of steps and of problems). A user's turn, a tool's answer logged
as a message (a code executor's report) and an agent's prompt logged before its reply
(:mod:`agenttrace.attribution.echoes`) are inputs, not actions: only what they contradict of the task is read
of them. No feature reads an agent's name, a data set's phrasing or an absolute step position.

A linear model scores the steps and a softmax turns the scores into a distribution over the steps a verdict may
name (a conditional logit; :func:`nameable`: not a tool's answer logged as a message). Each step's probability
is then moved to the earlier step its fault was inherited from, when the trajectory shows one (the first repeat
of a loop, the plan or user's turn a wrong call follows, the hand-off to an agent with only the wrong tool:
:mod:`agenttrace.attribution.trace_back`), a rule built in, not learned per kind of error. The verdict is read off
the traced distribution by :func:`decide` (the agent by probability mass or by the top step, then that agent's
earliest near-best step), unless the run ends at a call the environment failed: the verdict then names the
environment at that call (:func:`~agenttrace.attribution.trace_back.environment_end`). The reported
probabilities are that traced distribution tempered (:func:`tempered`), and
the verdict carries the top candidates and is ``uncertain`` when its calibrated probability is below the model's
threshold: one half (the verdict is then more likely wrong than right), unless a user sets another.
The temperature is chosen per kind of log (:func:`log_kind`): a run the collector rebuilt from its spans, or
a log read from a file (a transcript, a chat log), whose verdicts are far less often right; the verdict rule is
chosen on every kind at once (a rule chosen on the two or three sources of one kind did not carry to another).
Which features count, the regularisation, the verdict rule and the temperatures are all chosen
by leave-one-group-out over the training data (:mod:`agenttrace.attribution.cpu_fit`). The reason is built from
claims (:mod:`agenttrace.attribution.claims`) and only claims the checker verifies are said.

The weights, temperatures and threshold live in ``cpu_model.json`` next to this file;
``bench/train_cpu_attributor.py`` rebuilds it.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from agenttrace.attribution import claims as cl
from agenttrace.attribution import observations
from agenttrace.attribution.base import Attributor, AttributorError
from agenttrace.attribution.alternatives import off_request_calls
from agenttrace.attribution.code_origin import code_origins
from agenttrace.attribution.coverage import left_out
from agenttrace.attribution.flow import (
    ERROR_WORDS,
    FUNCTION_WORDS,
    StepFlow,
    action_text,
    count_words,
    mark_users,
    read_flow,
    result_text,
    tokens,
    window,
)
from agenttrace.attribution.picks import picks
from agenttrace.attribution.provenance import kind, off_task_arguments, resemblance, task_value_tokens
from agenttrace.attribution.trace_back import causes, environment_end, link_claims, trace
from agenttrace.models import ENVIRONMENT, Attribution, Candidate, Trajectory

MODEL_PATH = Path(__file__).with_name("cpu_model.json")

FEATURES = (
    # structure
    "is_request", "is_first", "first_action", "is_last", "rel_pos", "agent_first_turn", "agent_turn_log",
    "first_turn_given_work", "agent_share", "agent_len_z", "next_same_agent", "hands_off", "log_len", "log_len_z",
    "novelty", "novelty_z", "task_overlap", "answer_first", "done_here", "code_here", "code_rel", "code_origin",
    "plan_like",
    # the agent as a whole: the same value on each of its steps, so it moves probability between agents
    "agent_opens", "agent_closes", "agent_problem_share", "agent_to_answer",
    # what its actions introduce, and where values go
    "num_introduced", "introduced_rel", "introduced_to_answer", "underived", "first_underived", "returned_to_answer",
    "arg_ungrounded", "arg_unseen",
    "arg_ungrounded_to_answer", "num_conflict", "task_drop", "constraint_deficit", "assume_here",
    # where an off-task tool argument came from, and where the task's value for it was lost; picks; coverage
    "offtask_origin", "offtask_given", "offtask_ungiven", "constraint_lost", "pick_contradicts", "pick_agrees",
    "leaves_out_items", "calls_off_request", "hands_to_off_request",
    # problems: in its own words, from its tools (one that failed on an argument it made up), right after it,
    # ignored, repaired, repeated
    "problem_here", "tool_failed", "fails_on_own_argument", "result_problem", "problem_next", "problem_next_other",
    "first_problem", "before_first_problem", "after_first_problem", "ignores_failure", "repaired", "last_unrepaired",
    "late_unrepaired", "repeats", "first_repeat", "error_words", "error_words_z", "error_words_next", "first_anomaly",
    # with the ground truth
    "has_expected", "expected_seen_before",
)
_COL = {f: j for j, f in enumerate(FEATURES)}
_ALSO_HUMAN = ("is_request", "agent_share", "offtask_origin", "num_conflict")  # the rest describe agents' actions
_SENTENCE = re.compile(r"(?:[^.!?\n]|[.!?](?=\S))+[.!?]?")  # a decimal point or "e.g." does not end one
_QUOTE_CHARS = 120


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+(?:[._'-][a-z0-9]+)*", text.lower()))


def extract_features(trajectory: Trajectory, *, use_expected: bool = True) -> tuple[np.ndarray, list[StepFlow]]:
    """The (n_steps, n_features) matrix of a trajectory, and each step's flow (the evidence for reasons)."""
    trajectory = mark_users(trajectory)
    steps = trajectory.steps
    n = len(steps)
    x = np.zeros((n, len(FEATURES)), dtype=float)
    if n == 0:
        return x, []
    flows = read_flow(trajectory)
    acting = np.array([f.acts and not f.tool_output for f in flows])  # an agent acts (not an input)
    off_task = off_task_arguments(trajectory)
    calls_with = {(a.call, a.token) for a in off_task}
    for arg in off_task:
        if arg.origin == arg.call:
            flows[arg.call].off_task.append(arg)
        elif (arg.origin, arg.token) not in calls_with:  # not a repeat of its own earlier call's value
            flows[arg.origin].originates.append(arg)
        if arg.lost_at is not None and (arg.origin, arg.token) in calls_with:  # a caller's value, not another's text
            flows[arg.lost_at].loses.append(arg)
    for pick in picks(trajectory):
        flows[pick.pos].pick = pick
    for gap in left_out(trajectory):
        flows[gap.pos].left_out = gap
    for origin in code_origins(trajectory, list(acting)).values():
        flows[origin.pos].code_origin = origin
    for call in off_request_calls(trajectory):
        if call.handed_by is None:
            flows[call.pos].off_request = flows[call.pos].off_request or call
        else:
            flows[call.handed_by].hands_off_request = flows[call.handed_by].hands_off_request or call
    counts: dict[str, int] = {}
    for s in steps:
        counts[s.agent] = counts.get(s.agent, 0) + 1
    task_tokens = tokens(trajectory.task or "")
    expected = _norm(trajectory.expected or "") if use_expected else ""
    if len(expected) > 200:
        expected = ""
    problems = [not f.human and f.has_problem for f in flows]
    first_problem = next((i for i in range(n) if problems[i]), n)
    last_unrepaired = max((i for i in range(n) if problems[i] and not flows[i].repaired), default=-1)
    first_action = next((i for i in range(n) if flows[i].acts), 0)
    last_action = next((i for i in reversed(range(n)) if flows[i].acts), n - 1)
    error_words = [math.log1p(min(count_words(window(f"{action_text(s)}\n{result_text(s)}".lower(), 6000), ERROR_WORDS), 20))
                   for s in steps]
    anomalies = [not f.human and bool(f.underived or f.ungrounded or f.unseen_argument or f.conflict or f.dropped
                                      or f.assume_word or f.has_problem or f.ignored_error_at is not None
                                      or f.repeats is not None) for f in flows]
    first_anomaly = next((i for i in range(n) if anomalies[i]), n)
    first_underived = next((i for i in range(n) if flows[i].underived), n)
    by_agent: dict[str, list[int]] = {}
    for i, s in enumerate(steps):
        by_agent.setdefault(s.agent, []).append(i)
    problem_share = {a: sum(problems[i] for i in idx) / len(idx) for a, idx in by_agent.items()}
    to_answer = {a: float(any(flows[i].introduced_to_answer or flows[i].returned_to_answer for i in idx))
                 for a, idx in by_agent.items()}
    seen: set[str] = set()
    turned: dict[str, int] = {}
    expected_seen = False
    for i, (step, f) in enumerate(zip(steps, flows)):
        actions = action_text(step)
        toks = tokens(actions)
        novelty = len(toks - seen) / (len(toks) + 1)
        seen |= toks | tokens(step.input or "")
        nxt = i + 1 if i + 1 < n else None
        nxt_other = next((j for j in range(i + 1, min(n, i + 4)) if steps[j].agent != step.agent), None)
        has_expected = bool(expected) and expected in _norm(window(actions, 12000))
        row = {
            # the user's request defines the task unless it says what the task does not; a later reply can be wrong
            "is_request": float(f.human and i < first_action and not f.originates and f.conflict is None),
            "is_first": float(i == 0),
            "first_action": float(i == first_action),
            "is_last": float(i == n - 1),
            "rel_pos": i / max(n - 1, 1),
            "agent_first_turn": float(step.agent not in turned),
            "agent_turn_log": math.log1p(turned.get(step.agent, 0)),
            "first_turn_given_work": float(step.agent not in turned and i > first_action),
            "agent_len_z": 0.0,  # filled in below
            "agent_share": counts[step.agent] / n,
            "next_same_agent": float(nxt is not None and steps[nxt].agent == step.agent),
            "hands_off": float(bool(step.transfer_to) or "->" in (step.role or "")),
            "log_len": math.log1p(len(actions)) / 10,
            "log_len_z": math.log1p(len(actions)),
            "novelty": novelty,
            "novelty_z": novelty,
            "task_overlap": len(toks & task_tokens) / (len(task_tokens) + 1),
            "answer_first": f.answer_tokens_first,
            "done_here": float(f.done),
            "code_here": float(f.has_code),
            "code_rel": float(f.has_code),
            "code_origin": float(f.code_origin is not None),
            "plan_like": float(f.plan_like),
            "agent_opens": float(step.agent == steps[first_action].agent),
            "agent_closes": float(step.agent == steps[last_action].agent),
            "agent_problem_share": problem_share[step.agent],
            "agent_to_answer": to_answer[step.agent],
            "num_introduced": math.log1p(min(len(f.introduced), 50)),
            "introduced_rel": math.log1p(min(len(f.introduced), 50)),
            "introduced_to_answer": float(bool(f.introduced_to_answer)),
            "underived": float(bool(f.underived)),
            "first_underived": float(i == first_underived),
            "returned_to_answer": float(bool(f.returned_to_answer)),
            "arg_unseen": float(f.unseen_argument is not None),
            "arg_ungrounded": float(bool(f.ungrounded)),
            "arg_ungrounded_to_answer": float(any(u.returned for u in f.ungrounded)),
            "num_conflict": float(f.conflict is not None),
            "task_drop": len(f.dropped) / max(len(f.dropped) + len(toks & task_tokens), 1) if f.plan_like else 0.0,
            "constraint_deficit": f.constraint_deficit,
            "assume_here": float(f.assume_word is not None),
            "offtask_origin": float(bool(f.originates) or any(a.origin == a.call for a in f.off_task)),
            "offtask_given": float(any(a.given_at is not None for a in f.off_task)),
            "offtask_ungiven": float(any(a.given_at is None for a in f.off_task)),
            "constraint_lost": float(bool(f.loses)),
            "pick_contradicts": float(f.pick is not None and not f.pick.agrees),
            "pick_agrees": float(f.pick is not None and f.pick.agrees),
            "leaves_out_items": float(f.left_out is not None),
            "calls_off_request": float(f.off_request is not None),
            "hands_to_off_request": float(f.hands_off_request is not None),
            "problem_here": float(f.problem_word is not None),
            "tool_failed": float(f.failed_tool is not None),
            "fails_on_own_argument": float(_own_failing_argument(i, f) is not None),
            "result_problem": float(f.result_problem is not None),
            "problem_next": float(nxt is not None and problems[nxt]),
            "problem_next_other": float(nxt_other is not None and problems[nxt_other]),
            "first_problem": float(i == first_problem),
            "before_first_problem": float(first_problem < n and (i + 1 == first_problem or nxt_other == first_problem)),
            "after_first_problem": float(i > first_problem),
            "ignores_failure": float(f.ignored_error_at is not None),
            "repaired": float(f.repaired),
            "last_unrepaired": float(i == last_unrepaired),
            "late_unrepaired": float(i == last_unrepaired and i >= n - 3),
            "repeats": float(f.repeats is not None),
            "first_repeat": float(f.repeats is not None and flows[f.repeats].repeats is None),
            "error_words": error_words[i],
            "error_words_z": error_words[i],
            "error_words_next": error_words[nxt] if nxt is not None else 0.0,
            "first_anomaly": float(i == first_anomaly),
            "has_expected": float(has_expected),
            "expected_seen_before": float(expected_seen and not has_expected),
        }
        x[i] = [row[name] * (1.0 if name in _ALSO_HUMAN else float(acting[i])) for name in FEATURES]
        turned[step.agent] = turned.get(step.agent, 0) + 1
        expected_seen = expected_seen or has_expected
    lengths = x[:, _COL["log_len_z"]]
    x[:, _COL["agent_len_z"]] = [lengths[by_agent[s.agent]].mean() for s in steps]
    for name in ("log_len_z", "novelty_z", "agent_len_z", "error_words_z"):
        _relative(x, name, acting, z=True)
    for name in ("introduced_rel", "code_rel"):
        _relative(x, name, acting, z=False)
    return x, flows


def _relative(x: np.ndarray, name: str, acting: np.ndarray, z: bool) -> None:
    """The column relative to the steps where an agent acts: minus its mean over them (and over its std if
    ``z``); 0 on the other steps (a user's turn, an executor's report), which it does not describe."""
    col = x[:, _COL[name]]
    if not acting.any():
        x[:, _COL[name]] = 0.0
        return
    d = col - col[acting].mean()
    if z:
        sd = col[acting].std()
        d = d / sd if sd > 1e-9 else d * 0.0
    x[:, _COL[name]] = np.where(acting, d, 0.0)


LOG_KINDS = ("spans", "log")


def log_kind(trajectory: Trajectory) -> str:
    """``spans`` when the collector rebuilt the run from a trace (it has the trace's id; ``agenttrace export``
    keeps it), ``log`` when it was read from a log (published transcripts and chat logs), whose tool calls and
    handoffs, where it has any, were read out of messages."""
    return "spans" if trajectory.trace_id else "log"


def nameable(flows: list[StepFlow]) -> np.ndarray:
    """Which steps a verdict may name: an agent's act, a user's turn, a prompt a log shows; not a tool's answer
    logged as a message of its own (an executor's report), which decides nothing."""
    out = np.array([not f.tool_output for f in flows], dtype=bool)
    return out if out.any() else np.ones(len(flows), dtype=bool)


def softmax(z: np.ndarray, among: np.ndarray | None = None) -> np.ndarray:
    """The softmax of ``z``, over the steps ``among`` only (the others get 0) when given."""
    if among is not None:
        z = np.where(among, z, -np.inf)
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


def tempered(p: np.ndarray, temperature: float) -> np.ndarray:
    """``p`` calibrated by a temperature: ``p ** (1 / temperature)``, renormalised. It is applied to the
    distribution the fault links have already moved (:func:`trace`), the one the verdict is read off, so every
    step keeps its rank there: tempering the scores instead would let a sharper softmax make another step
    the most likely once the links have summed their steps' probabilities."""
    q = p ** (1.0 / temperature)
    return q / q.sum()


def decide(p: np.ndarray, agents: list[str], earliest: float = 1.0, by_mass: bool = True) -> int:
    """The position of the verdict's step given the step distribution ``p``. The agent is the one holding the
    most probability mass (``by_mass``; the earlier one on a tie) or the one of the most likely step; the step
    is that agent's earliest step whose probability is within ``earliest`` times its most likely step's (the
    decisive error is the earliest one whose correction fixes the run, so among near-equal suspects the
    earlier wins)."""
    if by_mass:
        mass: dict[str, float] = {}
        for a, pi in zip(agents, p):
            mass[a] = mass.get(a, 0.0) + float(pi)
        agent = max(mass, key=lambda a: (mass[a], -agents.index(a)))
    else:
        agent = agents[int(np.argmax(p))]
    mine = [i for i, a in enumerate(agents) if a == agent]
    top = max(p[i] for i in mine)
    return next(i for i in mine if p[i] >= earliest * top)


class StepModel:
    """A linear scorer over standardised features; ``probabilities`` is the softmax over the steps, which the
    attributor traces (:func:`trace`) and then tempers by the log kind's temperature (:func:`tempered`).
    A verdict whose calibrated probability is below ``threshold`` is uncertain. The verdict rule (``by_mass``,
    ``earliest``: :func:`decide`) is the same for every kind of log; the temperature is the kind's own where
    ``temperatures`` has one, else the pooled ``temperature``."""

    def __init__(self, weights, mean, scale, meta: dict[str, Any] | None = None, *, temperature: float = 1.0,
                 threshold: float = 0.5, earliest: float = 1.0, by_mass: bool = True,
                 temperatures: dict[str, float] | None = None):
        self.weights = np.asarray(weights, dtype=float)
        self.mean = np.asarray(mean, dtype=float)
        self.scale = np.asarray(scale, dtype=float)
        self.meta = meta or {}
        self.temperature = float(temperature)
        self.threshold = float(threshold)
        self.earliest = float(earliest)
        self.by_mass = bool(by_mass)
        self.temperatures = {kind: float(t) for kind, t in (temperatures or {}).items()}  # log kind -> its own

    def temperature_for(self, kind: str | None = None) -> float:
        """The temperature of a kind of log (:func:`log_kind`)."""
        return self.temperatures.get(kind, self.temperature)

    def scores(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.weights

    def probabilities(self, x: np.ndarray, among: np.ndarray | None = None) -> np.ndarray:
        """The untempered distribution over the steps (over ``among`` only, when given: see :func:`nameable`)."""
        return softmax(self.scores(x), among) if len(x) else np.zeros(0)

    def contributions(self, x_row: np.ndarray, x_all: np.ndarray) -> np.ndarray:
        """How much each feature *present* in this step lifts it above the trajectory's average step
        (a step is never explained by the absence of something)."""
        diff = (x_row - x_all.mean(axis=0)) / self.scale
        return np.where((diff > 0) & (self.weights > 0), diff * self.weights, 0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES),
            "weights": [round(float(v), 6) for v in self.weights],
            "mean": [round(float(v), 6) for v in self.mean],
            "scale": [round(float(v), 6) for v in self.scale],
            "temperature": round(self.temperature, 4),
            "threshold": self.threshold,
            "earliest": self.earliest,
            "agent_by_mass": self.by_mass,
            "temperatures": {kind: round(t, 4) for kind, t in self.temperatures.items()},
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepModel:
        if not isinstance(data, dict):
            raise AttributorError("a cpu model is a JSON object with features, weights, mean and scale")
        if list(data.get("features", [])) != list(FEATURES):
            raise AttributorError("the model was built for other features; refit it "
                                  "(agenttrace train --attributor cpu) or rebuild it with bench/train_cpu_attributor.py")
        try:
            model = cls(data["weights"], data["mean"], data["scale"], data.get("meta"),
                        temperature=data.get("temperature", 1.0), threshold=data.get("threshold", 0.5),
                        earliest=data.get("earliest", 1.0), by_mass=data.get("agent_by_mass", True),
                        temperatures=data.get("temperatures", {}))
        except KeyError as exc:
            raise AttributorError(f"the model has no {exc.args[0]!r}") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise AttributorError(f"the model has a value of the wrong type: {exc}") from None
        if unknown := set(model.temperatures) - set(LOG_KINDS):
            raise AttributorError(f"the model calibrates unknown log kinds {sorted(unknown)}; known: {list(LOG_KINDS)}")
        for name in ("weights", "mean", "scale"):
            if getattr(model, name).shape != (len(FEATURES),):
                raise AttributorError(f"the model's {name} must be {len(FEATURES)} numbers, one per feature")
        return model

    @classmethod
    def load(cls, path: str | Path = MODEL_PATH) -> StepModel:
        """The model in the JSON file ``path``; an :class:`AttributorError` says why a file is not one."""
        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise AttributorError(f"no cpu model at {path}; fit one with agenttrace train --attributor cpu") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AttributorError(f"cannot read the cpu model {path}: {exc}") from None
        except AttributorError as exc:
            raise AttributorError(f"{path} is not a usable cpu model: {exc}") from None


def _own_failing_argument(pos: int, f: StepFlow) -> cl.Claim | None:
    """When the step's failed tool call had an argument with a word or number no input gave it (the caller's
    doing, not the environment's: a typo, a made-up id), the claim that says so."""
    if not f.caused_its_failure():
        return None
    tool = f.failed_tool[0]
    if f.unseen_argument is not None and f.unseen_argument[0] == tool:
        return cl.CallsWithUnseenWord(pos, *f.unseen_argument)
    u = next(u for u in f.ungrounded if u.tool == tool)
    return cl.CallsWithUngivenArgument(pos, u.tool, u.argument, u.value, u.number)


def _assumption(text: str, word: str) -> str | None:
    at = text.lower().find(word)
    if at < 0:
        return None
    m = next((m for m in _SENTENCE.finditer(text) if m.start() <= at < m.end()), None)
    return _excerpt(m.group(0), word) if m else None


def _excerpt(sentence: str, word: str = "") -> str:
    """``sentence`` whitespace-normalised; when longer than a quote, as many of its words as fit one, from its
    start or from shortly before ``word``."""
    text = " ".join(sentence.split())
    if len(text) <= _QUOTE_CHARS:
        return text
    start = text.rfind(" ", 0, max(text.lower().find(word) - 20, 0)) + 1 if word else 0
    return text[start:start + _QUOTE_CHARS].rsplit(" ", 1)[0]


def _most_telling(view: cl.View, pos: int, dropped: list[str], most: int = 3) -> tuple[str, ...]:
    """The task words a step leaves out that a reason names: values first (a name, a number, a date: "APAC",
    "2025-03-18"), then words no later step's actions name either (lost from then on, as a dropped constraint
    is), then the others, each in the task's order."""
    values = {t.lower() for t in task_value_tokens(view.trajectory.task or "") if kind(t) != "word"}
    later = set().union(*(tokens(text) for text in view.actions[pos + 1:]))
    ranked = sorted(dropped, key=lambda w: (w not in values, w in later))  # a stable sort keeps the task's order
    return tuple(ranked[:most])


def evidence_claims(view: cl.View, pos: int, feature: str, f: StepFlow, expected_at: int | None) -> list[cl.Claim]:
    """The claims that say, in the run's own terms, what ``feature`` saw at step ``pos``."""
    # a number worked out from what the step was given (a total of the prices it had) is not said to be
    # "in neither the task nor anything it was given": true, but it reads as an invention
    if feature == "introduced_to_answer" and f.introduced_to_answer:
        v = next((v for v in f.introduced_to_answer if v in f.underived), f.introduced_to_answer[0])
        return ([cl.IntroducesNumber(pos, v)] if v in f.underived else []) + [cl.ReachesAnswer(pos, v)]
    if feature in ("underived", "first_underived") and f.underived:
        v = f.underived[0]
        return [cl.IntroducesNumber(pos, v)] + ([cl.ReachesAnswer(pos, v)] if v in f.introduced_to_answer else [])
    if feature in ("num_introduced", "introduced_rel") and f.underived:
        return [cl.IntroducesNumber(pos, f.underived[0])]
    if feature == "arg_unseen" and f.unseen_argument:
        return [cl.CallsWithUnseenWord(pos, *f.unseen_argument)]
    if feature in ("arg_ungrounded", "arg_ungrounded_to_answer") and f.ungrounded:
        u = next((u for u in f.ungrounded if u.returned), f.ungrounded[0])
        out: list[cl.Claim] = [cl.CallsWithUngivenArgument(pos, u.tool, u.argument, u.value, u.number)]
        return out + ([cl.ToolReturnReachesAnswer(pos, u.tool, u.returned)] if u.returned else [])
    if feature == "returned_to_answer" and f.returned_to_answer:
        tool, v = f.returned_to_answer[0]
        return [cl.ToolReturnReachesAnswer(pos, tool, v)]
    if feature == "num_conflict" and f.conflict:
        return [cl.RestatesDifferently(pos, *f.conflict)]
    if feature in ("task_drop", "constraint_deficit") and f.dropped:
        return [cl.LeavesOut(pos, _most_telling(view, pos, f.dropped))]
    if feature == "assume_here" and f.assume_word:
        sentence = _assumption(view.actions[pos], f.assume_word)
        return [cl.Assumes(pos, sentence, f.assume_word)] if sentence else []
    if feature in ("problem_here", "error_words") and f.problem_word:
        return [cl.ReportsProblem(pos, f.problem_word)]
    if feature == "tool_failed" and f.failed_tool:
        return [cl.ToolFailed(pos, f.failed_tool[0], f.failed_tool[1][:60])]
    if feature == "fails_on_own_argument" and (own := _own_failing_argument(pos, f)) is not None:
        return [own, cl.ToolFailed(pos, f.failed_tool[0], f.failed_tool[1][:60])]
    if feature in ("problem_next", "before_first_problem", "problem_next_other", "error_words_next"):
        word = view.problem_word_at(pos + 1) if pos + 1 < len(view.steps) else None
        return [cl.NextReportsProblem(pos, word)] if word else []
    if feature == "first_problem":
        word = view.problem_word_at(pos)
        return [cl.FirstProblem(pos, word)] if word else []
    if feature == "ignores_failure" and f.ignored_error_at is not None:
        failed = view.steps[f.ignored_error_at]
        tool = next((c.name for c in failed.tool_calls if c.error), "")
        return [cl.IgnoresFailure(pos, f.ignored_error_at, tool)]
    if feature == "code_origin" and f.code_origin is not None:
        return [cl.WritesKeptCode(pos, f.code_origin.line, f.code_origin.last)]
    if feature in ("repeats", "first_repeat") and f.repeats is not None:
        return [cl.Repeats(pos, f.repeats)]
    # an off-task word that is a function word ("what" in a query the agent wrote) is true, and no evidence
    if feature == "offtask_origin" and (
            originates := [a for a in f.originates if a.token.lower() not in FUNCTION_WORDS]):
        a = originates[0]
        return [cl.FirstToState(pos, a.token, a.call, a.tool, a.argument, a.value)]
    if feature in ("offtask_given", "offtask_ungiven") and (
            off_task := [a for a in f.off_task if a.token.lower() not in FUNCTION_WORDS]):
        a = next((a for a in off_task if (a.given_at is not None) == (feature == "offtask_given")), off_task[0])
        out = [cl.CallsOffTask(pos, a.tool, a.argument, a.value, a.token)]
        # the task's value it stands for, when the token is the whole argument (a word inside a label, "Pause
        # (k)", stands for none) and among several the one it most resembles (a misspelt "Tukru": "Turku")
        had = [v for v in a.task_values if v.lower() in view.actions[a.given_at].lower()] \
            if a.given_at is not None and a.token == a.value.strip() else []
        if had:
            out.append(cl.HadTaskValue(pos, a.given_at, max(had, key=lambda v: resemblance(v, a.token))))
        return out
    if feature == "constraint_lost" and f.loses:
        a = f.loses[0]
        return [cl.DropsTaskValue(pos, a.task_values[:3], a.call, a.tool, a.argument, a.value)]
    if feature == "pick_contradicts" and f.pick is not None and not f.pick.agrees:
        p = f.pick
        return [cl.PicksAgainstInputs(pos, p.word, p.higher, p.chosen, p.chosen_value, p.best, p.best_value)]
    if feature == "leaves_out_items" and f.left_out is not None:
        return [cl.HandsBackWithout(pos, f.left_out.handed_by, f.left_out.items[:3])]
    if feature == "calls_off_request" and (c := f.off_request) is not None:
        return [cl.CallsOffRequest(pos, c.tool, c.alternative, c.words)]
    if feature == "hands_to_off_request" and (c := f.hands_off_request) is not None:
        return [cl.HandsToOffRequest(pos, c.pos, c.tool, c.alternative, c.words, c.owner)]
    if feature == "agent_first_turn":
        return [cl.FirstTurn(pos)]
    if feature == "first_action":
        return [cl.FirstAction(pos)]
    if feature == "hands_off" and view.steps[pos].transfer_to:
        return [cl.HandsOff(pos, view.steps[pos].transfer_to)]
    if feature == "expected_seen_before" and expected_at is not None:
        return [cl.LosesExpected(pos, expected_at)]
    return []


class CpuAttributor(Attributor):
    """Learned step scorer; options: ``model_path`` (a cpu_model.json), ``use_expected`` (default True)."""

    name = "cpu"
    max_evidence = 3

    def __init__(self, model_path: str | Path | None = None, use_expected: bool = True, model: StepModel | None = None):
        self.model = model or StepModel.load(model_path or MODEL_PATH)
        self.use_expected = use_expected

    def step_probabilities(self, trajectory: Trajectory) -> np.ndarray:
        """The calibrated probability that each step is the decisive error, each step's fault followed to the
        step it was inherited from or passed on to (:mod:`agenttrace.attribution.trace_back`)."""
        x, flows = extract_features(trajectory, use_expected=self.use_expected)
        p = trace(self.model.probabilities(x, nameable(flows)), causes(trajectory.steps, flows))
        return tempered(p, self.model.temperature_for(log_kind(trajectory)))

    def attribute(self, trajectory: Trajectory) -> Attribution:
        return self.explain(trajectory)[0]

    def explain(self, trajectory: Trajectory) -> tuple[Attribution, list[cl.Claim]]:
        """The verdict and the checked claims its reason is made of."""
        steps = trajectory.steps
        if not steps:
            return Attribution(
                run_id=trajectory.run_id, agent=None, step=None, attributor=self.name, confidence=0.0,
                uncertain=True, reason="The trajectory has no steps, so no agent or step can be blamed.",
            ), []
        x, flows = extract_features(trajectory, use_expected=self.use_expected)
        kind = log_kind(trajectory)
        among = nameable(flows)
        agents = [s.agent for s in steps]
        cause = causes(steps, flows)
        untempered = trace(self.model.probabilities(x, among), cause)
        # the verdict is read off the untempered distribution, as training chose the rule on it; the
        # temperature only calibrates the probabilities reported
        end = environment_end(flows, cause)  # the run ends at a failure no agent's correction removes
        environment = end is not None
        pos = end if environment else decide(untempered, agents, self.model.earliest, self.model.by_mass)
        p = tempered(untempered, self.model.temperature_for(kind))
        caller = steps[pos].agent
        agent = ENVIRONMENT if environment else caller
        others = [i for i in np.argsort(-p, kind="stable") if i != pos and among[i]][:2]
        candidates = [Candidate(agent=agent if i == pos else steps[i].agent, step=steps[i].index,
                                probability=round(float(p[i]), 4)) for i in [pos, *others]]
        confidence = float(p[pos])
        uncertain = confidence < self.model.threshold
        view = cl.View(trajectory, echoes={i for i, f in enumerate(flows) if f.prompt_echo})
        claims = self._claims(view, pos, x, flows, cause)
        sure = f"{confidence:.0%} calibrated probability{', uncertain' if uncertain else ''}"
        if environment:  # named by the run's end, which need not be the distribution's most likely step
            head = (f"is where the run ends on a failure no agent's correction removes ({sure}; the environment's "
                    f"doing, not {caller}'s)")
        else:
            agent_mass = float(sum(pi for s, pi in zip(steps, p) if s.agent == agent))
            head = f"is the most likely decisive error ({sure}; {agent_mass:.0%} of it falls on {agent})"
        return Attribution(
            run_id=trajectory.run_id, agent=agent, step=steps[pos].index, attributor=self.name,
            reason=cl.render_reason(view, pos, claims, head), confidence=round(confidence, 4),
            candidates=candidates, uncertain=uncertain,
            advice="" if environment else cl.render_advice(view, pos, claims),
        ), claims

    def _claims(self, view: cl.View, pos: int, x: np.ndarray, flows: list[StepFlow],
                cause: list[int]) -> list[cl.Claim]:
        """Why other steps' faults were followed to the step, then evidence claims for the features that lift
        it most, each checked; then a quote of the step."""
        contrib = self.model.contributions(x[pos], x)
        expected_at = next((i for i in range(pos + 1) if x[i, _COL["has_expected"]] > 0), None)
        chosen = [c for c in link_claims(pos, view.steps, flows, cause) if c.holds(view)]
        for j in np.argsort(-contrib, kind="stable"):
            if contrib[j] <= 0 or len(chosen) >= self.max_evidence:
                break
            for claim in evidence_claims(view, pos, FEATURES[j], flows[pos], expected_at):
                if claim.cites() not in {c.cites() for c in chosen} and claim.holds(view):
                    chosen.append(claim)
        # its own words (tool output a text log printed after them is not what it says), unless a claim quotes them;
        # a logged prompt holds what the agent was given, so its reply is quoted instead
        echo = pos in view.echoes
        quoted = pos + 1 if echo else pos
        quote = _excerpt(observations.split(view.steps[quoted].content)[0])
        if echo and quote:
            chosen.append(cl.PromptBeforeReply(pos, quote))
        elif quote and not any(isinstance(c, cl.Says) and (c.text in quote or quote in c.text) for c in chosen):
            chosen.append(cl.Says(pos, quote))
        return chosen

