"""The ``cpu`` attributor: no LLM, no GPU, a few milliseconds per trajectory.

It scores every step of a trajectory with a small linear model over hand-designed features (position,
the agent's role and turn count, error words in the step and in what follows it, tool/terminal errors,
assumptions and placeholders, overlap with the task, whether the ground truth or the final answer shows
up, prompt dumps) and turns the scores into a distribution over steps with a softmax (a conditional
logit). The agent is the one holding the most probability mass; the step is that agent's most likely
step. The weights live in ``cpu_model.json`` next to this file; ``bench/train_cpu_attributor.py``
rebuilds them from labelled data and fault-injected synthetic trajectories.

All feature work is linear in the size of the trajectory: each step's text is scanned a constant number
of times, and token features use a bounded window of each step, so a 300k-character step costs no more
than a few milliseconds.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agenttrace.attribution.base import Attributor, AttributorError
from agenttrace.models import Attribution, Trajectory

MODEL_PATH = Path(__file__).with_name("cpu_model.json")

ERROR_WORDS = (
    "error", "exception", "traceback", "failed", "failure", "unable", "cannot", "can't", "could not",
    "not found", "invalid", "incorrect", "sorry", "unfortunately", "404", "timed out", "timeout",
    "no such", "does not exist", "not available", "denied", "blocked", "captcha", "exitcode: 1",
)
ASSUME_WORDS = (
    "assume", "assuming", "assumption", "hypothetical", "placeholder", "simulate", "simulated", "mock",
    "for example", "let's say", "dummy", "sample data", "approximately", "estimate", "likely", "probably",
    "i believe", "without verifying", "instead",
)
DONE_WORDS = ("terminate", "final answer", "the answer is", "in conclusion", "task is complete", "successfully")
PROMPT_DUMP_MARKS = ("# past experience", "<experience>", "# current plan", "# instruction", "## your role")

_TOKEN = re.compile(r"[a-z0-9]+(?:[._'-][a-z0-9]+)*")
_WINDOW = 6000  # characters of each end of a step used for token features

FEATURES = (
    "rel_pos", "is_first", "is_last", "log_index", "first_actor", "is_human", "is_tool_agent",
    "agent_share", "agent_turn_log", "agent_first_turn", "agent_is_planner", "role_thought", "role_instruct",
    "log_len", "err_here", "err_next", "err_next_other", "assume_here", "code_block", "done_here",
    "prompt_dump", "next_same_agent", "task_overlap", "novelty", "final_first_mention",
    "has_expected", "expected_seen_before", "after_first_error",
    # information flow: numbers a step introduces, quantities it restates differently, what reaches the answer
    "num_new", "num_new_rel", "num_new_to_final", "num_conflict", "num_unsupported_input",
    # the first reported error and the step just before it
    "is_first_error", "before_first_error", "err_unrecovered",
    # relative within the trajectory (z-scored over its steps)
    "log_len_z", "err_here_z", "novelty_z", "code_rel",
    # generic role types read from the agent's name (not literal names)
    "role_planner", "role_coder", "role_executor", "role_verifier", "role_searcher", "role_writer",
    # what a plan-like step leaves out of the task, and the earliest anomalous step
    "task_drop", "constraint_deficit", "first_anomaly",
)

_NUM = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.]*\w)")
_ENUM = re.compile(r"^\s*\d+[.)]\s", re.MULTILINE)  # list numbering "1. ", "2) "
# "name = 5", "name: 5", "name is 5" and "5 names"
_NAMED_AFTER = re.compile(r"\b([a-z][a-z_]{2,})[ \t]*(?:=|:|\bis\b|\bwas\b|\bare\b)[ \t]*(-?\d+(?:\.\d+)?)\b")
_NAMED_BEFORE = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?)[ \t]+([a-z][a-z_]{2,})")
_NAME_STOP = {"the", "a", "an", "of", "is", "are", "was", "and", "to", "in", "at", "on", "for", "it", "this",
              "that", "step", "line", "code", "output", "exitcode", "result", "answer", "value", "total",
              "number", "count", "http", "https", "www", "am", "pm"}
_NUM_CAP = 20000
# words and phrases that state a requirement; a plan that states fewer of them than the task may have dropped one
_CONSTRAINT = re.compile(r"\b(?:only|at least|at most|exactly|not|no more than|no less than|each|every|must|should|"
                         r"except|excluding|without|never|unless|within|minimum|maximum|less than|more than|"
                         r"fewer than|between|before|after|required?|subtract|add|minus|plus|total|remaining)\b")
_TASK_STOP = {"what", "which", "when", "where", "there", "their", "this", "that", "with", "from", "have", "does",
              "many", "much", "into", "they", "them", "your", "will", "would", "could", "about", "been", "were",
              "then", "than", "also", "some", "more", "most", "only", "each", "find", "give", "please", "answer"}  # characters of each end of a step scanned for numbers
ROLE_TYPES = {
    "role_planner": ("plan", "orchestrat", "lead", "manager", "coordinat", "captain", "architect", "supervis", "boss"),
    "role_coder": ("code", "coder", "engineer", "programm", "develop", "python", "software"),
    "role_executor": ("terminal", "executor", "computer", "tool", "runner", "interpreter", "shell"),
    "role_verifier": ("verif", "check", "critic", "review", "valid", "qa", "test", "judge"),
    "role_searcher": ("search", "surfer", "research", "browser", "web", "retriev", "file", "extract", "analys",
                      "data"),
    "role_writer": ("writer", "report", "summar", "assistant", "answer", "editor"),
}


def _count_any(text: str, words: tuple[str, ...]) -> int:
    return sum(text.count(w) for w in words)


def _first_hit(text: str, words: tuple[str, ...]) -> str | None:
    best: tuple[int, str] | None = None
    for w in words:
        pos = text.find(w)
        if pos >= 0 and (best is None or pos < best[0]):
            best = (pos, w)
    return None if best is None else best[1]


def _window(text: str) -> str:
    return text if len(text) <= 2 * _WINDOW else text[:_WINDOW] + " " + text[-_WINDOW:]


def _tokens(text: str) -> set[str]:
    return set(_TOKEN.findall(_window(text)))


def _norm(text: str) -> str:
    return " ".join(_TOKEN.findall(text.lower()))


def _is_human(agent: str, role: str) -> bool:
    a, r = agent.lower(), role.lower()
    return a in ("human", "user") or r == "human"


def _numbers_text(text: str) -> str:
    text = text if len(text) <= 2 * _NUM_CAP else text[:_NUM_CAP] + " " + text[-_NUM_CAP:]
    return _ENUM.sub(" ", text)


def _numbers(text: str) -> list[str]:
    """Numbers of a text, normalised ("7.0" -> "7"), list numbering left out."""
    out = []
    for m in _NUM.finditer(text):
        v = m.group(0)
        if "." in v:
            v = v.rstrip("0").rstrip(".") or "0"
        out.append(v)
    return out


def _name_key(name: str) -> str | None:
    words = [w for w in re.split(r"[ _]+", name) if w and w not in _NAME_STOP]
    if not words:
        return None
    w = words[-1]
    return w[:-1] if len(w) > 3 and w.endswith("s") else w


def _named_values(text: str) -> dict[str, set[str]]:
    """Quantities stated with a name: {name: {values}} ("shelves = 8", "8 shelves", "count: 8")."""
    out: dict[str, set[str]] = {}
    text = _window(text)
    for m in _NAMED_AFTER.finditer(text):
        key = _name_key(m.group(1))
        if key:
            out.setdefault(key, set()).update(_numbers(m.group(2)))
    for m in _NAMED_BEFORE.finditer(text):
        key = _name_key(m.group(2))
        if key:
            out.setdefault(key, set()).update(_numbers(m.group(1)))
    return out


def _salient(task: str) -> set[str]:
    """The task's tokens a plan should carry: numbers and content words of four letters or more."""
    return {t for t in _TOKEN.findall(task[: 2 * _WINDOW]) if (any(c.isdigit() for c in t) or len(t) >= 4)
            and t not in _TASK_STOP}


def _plan_like(text: str, role: str, agent: str) -> bool:
    return len(_ENUM.findall(text[: 2 * _WINDOW])) >= 2 or "(->" in role or role_types(agent)["role_planner"] > 0


def role_types(agent: str) -> dict[str, float]:
    a = agent.lower()
    return {k: float(any(w in a for w in words)) for k, words in ROLE_TYPES.items()}


def _is_tool_agent(agent: str) -> bool:
    a = agent.lower()
    return "terminal" in a or a in ("tool", "executor", "computer", "code_executor")


@dataclass
class StepEvidence:
    err_next_word: str | None = None
    err_here_word: str | None = None
    assume_word: str | None = None
    prompt_dump: bool = False
    new_numbers: tuple[str, ...] = ()  # numbers this step is the first to state
    conflict: tuple[str, str, str] | None = None  # (quantity, earlier value, this step's value)
    unsupported: tuple[str, ...] = ()  # numbers absent from the input the agent was given
    dropped: tuple[str, ...] = ()  # task words a plan-like step leaves out


def extract_features(trajectory: Trajectory, *, use_expected: bool = True) -> tuple[np.ndarray, list[StepEvidence]]:
    """The (n_steps, n_features) matrix of a trajectory, and per-step evidence for the reason text."""
    steps = trajectory.steps
    n = len(steps)
    x = np.zeros((n, len(FEATURES)), dtype=float)
    if n == 0:
        return x, []
    texts = [s.render().lower() for s in steps]
    agents = [s.agent for s in steps]
    roles = [s.role or "" for s in steps]
    human = [_is_human(a, r) for a, r in zip(agents, roles)]
    counts: dict[str, int] = {}
    for a in agents:
        counts[a] = counts.get(a, 0) + 1
    actors = [i for i in range(n) if not human[i]]
    first_actor = actors[0] if actors else 0
    planner = agents[first_actor]
    task_lower = (trajectory.task or "").lower()
    task_tokens = _tokens(task_lower)
    task_salient = _salient(task_lower)
    task_constraints = len(_CONSTRAINT.findall(task_lower[: 2 * _WINDOW]))
    anomaly_seen = False
    expected = _norm(trajectory.expected or "") if use_expected else ""
    if len(expected) > 200:
        expected = ""
    final_text = (trajectory.answer or "").lower() or next((texts[i] for i in reversed(actors)), "")
    final_tokens = {t for t in _tokens(final_text[-2000:]) if any(c.isdigit() for c in t) or len(t) > 6}
    final_tokens -= task_tokens

    err = [_count_any(t, ERROR_WORDS) for t in texts]
    num_texts = [_numbers_text(t) for t in texts]
    task_text = _numbers_text((trajectory.task or "").lower())
    nums_seen: set[str] = set(_numbers(task_text))
    named_seen = _named_values(task_text)
    final_nums = set(_numbers(_numbers_text(final_text[-2000:]))) - nums_seen
    last_err = max((i for i in range(n) if err[i] > 0 and not human[i]), default=-1)
    seen: set[str] = set()
    final_seen: set[str] = set()
    expected_seen = False
    first_error = next((i for i in range(n) if err[i] > 0 and not human[i]), n)
    evidence: list[StepEvidence] = []
    turn: dict[str, int] = {}
    for i, (text, agent, role) in enumerate(zip(texts, agents, roles)):
        k = turn.get(agent, 0)
        turn[agent] = k + 1
        nxt = i + 1 if i + 1 < n else None
        nxt_other = next((j for j in range(i + 1, min(n, i + 4)) if agents[j] != agent), None)
        toks = _tokens(text)
        novelty = len(toks - seen) / (len(toks) + 1)
        seen |= toks
        new_final = (final_tokens & toks) - final_seen
        final_seen |= new_final
        head = text[:400]
        dump = any(m in head for m in PROMPT_DUMP_MARKS) or (len(text) > 3000 and text[:200].count("#") >= 2)
        has_expected = bool(expected) and expected in _norm(text[: 4 * _WINDOW])
        nums = _numbers(num_texts[i])
        new_nums = [v for v in dict.fromkeys(nums) if v not in nums_seen]
        named = _named_values(num_texts[i])
        conflict = None
        for key, vals in named.items():
            before = named_seen.get(key)
            if before and not (vals & before):
                conflict = (key, sorted(before)[0], sorted(vals)[0])
                break
        unsupported: list[str] = []
        introduced = new_nums
        if steps[i].input and not human[i]:
            inp = set(_numbers(_numbers_text(steps[i].input.lower())))
            unsupported = [v for v in new_nums if v not in inp]
            introduced = unsupported  # a number copied from the input is relayed, not introduced
        plan = not human[i] and bool(task_salient) and _plan_like(text, role, agent)
        dropped = sorted(task_salient - toks) if plan else []
        deficit = 0.0
        if plan and task_constraints:
            deficit = max(0, task_constraints - len(_CONSTRAINT.findall(text[: 2 * _WINDOW]))) / task_constraints
        assume_n = _count_any(text[: 2 * _WINDOW], ASSUME_WORDS)
        anomalous = not human[i] and bool(conflict or unsupported or assume_n or err[i] or deficit > 0)
        first_anomaly = anomalous and not anomaly_seen
        anomaly_seen = anomaly_seen or anomalous
        nums_seen.update(nums)
        for key, vals in named.items():
            named_seen.setdefault(key, set()).update(vals)
        rt = role_types(agent)
        row = {
            "rel_pos": i / max(n - 1, 1),
            "is_first": float(i == 0),
            "is_last": float(i == n - 1),
            "log_index": math.log1p(i),
            "first_actor": float(i == first_actor),
            "is_human": float(human[i]),
            "is_tool_agent": float(_is_tool_agent(agent)),
            "agent_share": counts[agent] / n,
            "agent_turn_log": math.log1p(k),
            "agent_first_turn": float(k == 0),
            "agent_is_planner": float(agent == planner),
            "role_thought": float("(thought)" in role.lower()),
            "role_instruct": float("(->" in role),
            "log_len": math.log1p(len(text)) / 10.0,
            "err_here": math.log1p(min(err[i], 20)),
            "err_next": math.log1p(min(err[nxt], 20)) if nxt is not None else 0.0,
            "err_next_other": math.log1p(min(err[nxt_other], 20)) if nxt_other is not None else 0.0,
            "assume_here": math.log1p(min(assume_n, 20)),
            "code_block": float("```" in text),
            "done_here": float(any(w in text for w in DONE_WORDS)),
            "prompt_dump": float(dump),
            "next_same_agent": float(nxt is not None and agents[nxt] == agent),
            "task_overlap": len(toks & task_tokens) / (len(task_tokens) + 1),
            "novelty": novelty,
            "final_first_mention": len(new_final) / (len(final_tokens) + 1),
            "has_expected": float(has_expected),
            "expected_seen_before": float(expected_seen),
            "after_first_error": float(i > first_error),
            "num_new": math.log1p(min(len(new_nums), 50)) if not human[i] else 0.0,
            "num_new_rel": 0.0,  # filled in below
            "num_new_to_final": float(any(v in final_nums for v in introduced)) if not human[i] else 0.0,
            "num_conflict": float(conflict is not None and not human[i]),
            "num_unsupported_input": math.log1p(min(len(unsupported), 20)),
            "is_first_error": float(i == first_error),
            "before_first_error": float(i + 1 == first_error or (nxt_other is not None and nxt_other == first_error)),
            "err_unrecovered": float(err[i] > 0 and not human[i] and i == last_err and i >= n - 3),
            "log_len_z": 0.0, "err_here_z": 0.0, "novelty_z": 0.0, "code_rel": 0.0,  # filled in below
            **rt,
            "task_drop": len(dropped) / len(task_salient) if plan else 0.0,
            "constraint_deficit": deficit,
            "first_anomaly": float(first_anomaly),
        }
        expected_seen = expected_seen or has_expected
        x[i] = [row[f] for f in FEATURES]
        evidence.append(
            StepEvidence(
                err_next_word=_first_hit(texts[nxt], ERROR_WORDS) if nxt is not None and err[nxt] else None,
                err_here_word=_first_hit(text, ERROR_WORDS) if err[i] else None,
                assume_word=_first_hit(text[: 2 * _WINDOW], ASSUME_WORDS),
                prompt_dump=dump,
                new_numbers=tuple(new_nums[:3]),
                conflict=conflict,
                unsupported=tuple(unsupported[:3]),
                dropped=tuple(dropped[:3]),
            )
        )
    _relative(x, "num_new", "num_new_rel", z=False)
    _relative(x, "log_len", "log_len_z")
    _relative(x, "err_here", "err_here_z")
    _relative(x, "novelty", "novelty_z")
    _relative(x, "code_block", "code_rel", z=False)
    return x, evidence


_COL = {f: j for j, f in enumerate(FEATURES)}


def _relative(x: np.ndarray, src: str, dst: str, z: bool = True) -> None:
    """``dst`` = ``src`` relative to the trajectory: minus its mean over the steps (and over its std if ``z``)."""
    col = x[:, _COL[src]]
    d = col - col.mean()
    if z:
        sd = col.std()
        d = d / sd if sd > 1e-9 else d * 0.0
    x[:, _COL[dst]] = d


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


class StepModel:
    """A linear scorer over standardised features; ``probabilities`` is the softmax over a trajectory's steps."""

    def __init__(self, weights: np.ndarray, mean: np.ndarray, scale: np.ndarray, meta: dict[str, Any] | None = None):
        self.weights = np.asarray(weights, dtype=float)
        self.mean = np.asarray(mean, dtype=float)
        self.scale = np.asarray(scale, dtype=float)
        self.meta = meta or {}

    def scores(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.weights

    def contributions(self, x_row: np.ndarray, x_all: np.ndarray) -> np.ndarray:
        """How much each feature *present* in this step lifts it above the trajectory's average step.

        Only features with a positive weight on which the step is above average count; a step is never
        "explained" by the absence of something (that makes for misleading sentences).
        """
        z_row = (x_row - self.mean) / self.scale
        z_avg = ((x_all - self.mean) / self.scale).mean(axis=0)
        diff = z_row - z_avg
        return np.where((diff > 0) & (self.weights > 0), diff * self.weights, 0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES),
            "weights": [round(float(v), 6) for v in self.weights],
            "mean": [round(float(v), 6) for v in self.mean],
            "scale": [round(float(v), 6) for v in self.scale],
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepModel:
        if list(data.get("features", [])) != list(FEATURES):
            raise AttributorError("cpu_model.json was built for other features; rebuild it with bench/train_cpu_attributor.py")
        return cls(data["weights"], data["mean"], data["scale"], data.get("meta"))

    @classmethod
    def load(cls, path: str | Path = MODEL_PATH) -> StepModel:
        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise AttributorError(f"no cpu model at {path}; build it with bench/train_cpu_attributor.py") from None


_REASONS = {
    "err_next": "the step right after it reports a problem ({err_next})",
    "err_next_other": "the next agent to speak reports a problem ({err_next})",
    "err_here": "it itself mentions a problem ({err_here})",
    "assume_here": "it rests on an assumption or made-up data ('{assume}')",
    "first_actor": "it is the first action taken on the task, so everything after builds on it",
    "agent_first_turn": "it is {agent}'s first contribution",
    "prompt_dump": "it is the context {agent} acted on in its next turn",
    "next_same_agent": "{agent} acts again right after it",
    "code_block": "it contains code that the rest of the run relies on",
    "final_first_mention": "it is where the run's final answer first shows up",
    "expected_seen_before": "the correct answer had already appeared earlier and was lost here",
    "task_overlap": "it restates the task and commits to an approach",
    "novelty": "it introduces new information that later steps take for granted",
    "done_here": "it declares the work done or gives an answer",
    "role_instruct": "it is an instruction to another agent",
    "role_thought": "it is a planning thought",
    "log_len": "it is a long, substantive turn",
    "rel_pos": "it comes late, where runs typically derail",
    "log_index": "it comes late, where runs typically derail",
    "agent_is_planner": "{agent} leads the run",
    "agent_share": "{agent} does most of the work in this run",
    "agent_turn_log": "{agent} has acted several times by then",
    "is_first": "it opens the run",
    "is_last": "it ends the run",
    "after_first_error": "it follows the first reported error",
    "num_new": "it introduces numbers no earlier step stated ({new_numbers})",
    "num_new_rel": "it introduces numbers no earlier step stated ({new_numbers})",
    "num_new_to_final": "a number it introduces ({new_numbers}) is carried into the final answer",
    "num_conflict": "it gives {conflict_name} as {conflict_new} where earlier it was {conflict_old}",
    "num_unsupported_input": "it states {unsupported}, which is not in the input it was given",
    "is_first_error": "it is where the first problem is reported ({err_here})",
    "before_first_error": "the first problem of the run is reported right after it ({err_next})",
    "err_unrecovered": "it reports a problem ({err_here}) that the run never recovers from",
    "log_len_z": "it is a long, substantive turn",
    "err_here_z": "it itself mentions a problem ({err_here})",
    "novelty_z": "it introduces new information that later steps take for granted",
    "code_rel": "it contains code that the rest of the run relies on",
    "role_planner": "{agent} plans and directs the run",
    "role_coder": "{agent} writes the code",
    "role_executor": "{agent} executes the actions",
    "role_verifier": "{agent} is the one meant to verify the result",
    "role_searcher": "{agent} gathers the facts the run uses",
    "role_writer": "{agent} writes the answer",
    "task_drop": "it plans the work but leaves out parts of the task ({dropped})",
    "constraint_deficit": "it plans the work but states fewer of the task's requirements than the task does",
    "first_anomaly": "it is the earliest step showing a problem, and later steps build on it",
}


class CpuAttributor(Attributor):
    """Learned step scorer; options: ``model_path`` (a cpu_model.json), ``use_expected`` (default True)."""

    name = "cpu"

    def __init__(self, model_path: str | Path | None = None, use_expected: bool = True, model: StepModel | None = None):
        self.model = model or StepModel.load(model_path or MODEL_PATH)
        self.use_expected = use_expected

    def step_probabilities(self, trajectory: Trajectory) -> np.ndarray:
        x, _ = extract_features(trajectory, use_expected=self.use_expected)
        return softmax(self.model.scores(x)) if len(x) else x[:, 0]

    def attribute(self, trajectory: Trajectory) -> Attribution:
        steps = trajectory.steps
        if not steps:
            return Attribution(
                run_id=trajectory.run_id, agent=None, step=None, attributor=self.name, confidence=0.0,
                reason="The trajectory has no steps, so no agent or step can be blamed.",
            )
        x, evidence = extract_features(trajectory, use_expected=self.use_expected)
        p = softmax(self.model.scores(x))
        mass: dict[str, float] = {}
        for s, pi in zip(steps, p):
            mass[s.agent] = mass.get(s.agent, 0.0) + float(pi)
        agent = max(mass, key=lambda a: (mass[a], -next(i for i, s in enumerate(steps) if s.agent == a)))
        candidates = [i for i, s in enumerate(steps) if s.agent == agent]
        pos = max(candidates, key=lambda i: (p[i], -i))
        step = steps[pos]
        reason = self._reason(trajectory, pos, agent, x, evidence[pos], mass[agent], float(p[pos]))
        return Attribution(
            run_id=trajectory.run_id, agent=agent, step=step.index, reason=reason, attributor=self.name,
            confidence=round(float(p[pos]), 4),
        )

    def _reason(self, trajectory: Trajectory, pos: int, agent: str, x: np.ndarray, ev: StepEvidence,
                agent_mass: float, step_p: float) -> str:
        contrib = self.model.contributions(x[pos], x)
        order = np.argsort(-contrib)
        fill = {
            "agent": agent,
            "err_next": f"'{ev.err_next_word}'" if ev.err_next_word else "an error",
            "err_here": f"'{ev.err_here_word}'" if ev.err_here_word else "an error",
            "assume": ev.assume_word or "assume",
            "new_numbers": ", ".join(ev.new_numbers) or "none",
            "conflict_name": f"'{ev.conflict[0]}'" if ev.conflict else "",
            "conflict_old": ev.conflict[1] if ev.conflict else "",
            "conflict_new": ev.conflict[2] if ev.conflict else "",
            "unsupported": ", ".join(ev.unsupported) or "",
            "dropped": ", ".join(f"'{w}'" for w in ev.dropped) or "none",
        }
        clauses: list[str] = []
        for j in order:
            if contrib[j] <= 0 or len(clauses) == 3:
                break
            name = FEATURES[j]
            if name in ("err_next", "err_next_other") and not ev.err_next_word:
                continue
            if name in ("err_here", "err_here_z", "is_first_error", "err_unrecovered") and not ev.err_here_word:
                continue
            if name == "before_first_error" and not ev.err_next_word:
                continue
            if name in ("num_new", "num_new_rel", "num_new_to_final") and not ev.new_numbers:
                continue
            if name == "num_conflict" and not ev.conflict:
                continue
            if name == "num_unsupported_input" and not ev.unsupported:
                continue
            if name == "task_drop" and not ev.dropped:
                continue
            if name == "assume_here" and not ev.assume_word:
                continue
            if name == "prompt_dump" and not ev.prompt_dump:
                continue
            text = _REASONS.get(name)
            if text and text.format(**fill) not in clauses:
                clauses.append(text.format(**fill))
        step = trajectory.steps[pos]
        snippet = " ".join(step.render().split())[:140]
        why = "; ".join(clauses) if clauses else "it scores highest among the steps of the run"
        return (
            f"Step {step.index} by {agent} is the most likely decisive error "
            f"({step_p:.0%} of the step probability; {agent_mass:.0%} of it falls on {agent}): {why}. "
            f"The step begins: \"{snippet}{'...' if len(step.render()) > 140 else ''}\""
        )
