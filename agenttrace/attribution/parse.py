"""Tolerant parsing of attributor answers, with an explicit failure state - never a guess.

Two formats:

* AgenTracer: ``<think>...</think><answer>agent | step</answer>`` (``parse_tracer_output``).
  Tolerated: any case in tags, whitespace, a missing ``</think>``, a missing
  ``</answer>`` at the very end, several ``<answer>`` blocks (the last one outside
  a closed ``<think>`` wins), and answer bodies such as ``Coder | 3``,
  ``Coder | Step 3``, ``3 | Coder``, ``agent: Coder, step: 3``, ``Coder, step 3``,
  ``Coder at step 3``.
* Who&When all-at-once: ``Agent Name: X`` / ``Step Number: Y`` /
  ``Reason for Mistake: Z`` (``parse_all_at_once``), markdown bold tolerated.
* Abduct-Act-Predict: free reasoning ending with a JSON object
  ``{"hypotheses": [{"step", "agent", "abduction", "action", "prediction", "probability"}]}``
  (``parse_a2p``); the last such object outside ``<think>`` counts. The verdict is the
  earliest step whose correction is predicted to succeed (see ``earliest_fix``); a
  well-formed answer in which no correction succeeds is parsed but names no step.

Agent names are matched to the trajectory's agents: exactly, then
case-insensitively, then ignoring non-alphanumerics (``web_surfer`` ->
``WebSurfer``), then by a close fuzzy match (difflib ratio >= 0.8, and only if one
candidate is clearly best). A name that matches none of them, a step that is not
in the run, or a missing/ambiguous answer gives ``parsed=False`` with ``error``
saying why. ``ParsedAnswer.require()`` raises ``ParseError`` instead.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from agenttrace.models import Candidate


class ParseError(ValueError):
    """The output holds no well-formed verdict."""


@dataclass(frozen=True)
class ParsedAnswer:
    parsed: bool
    agent: str | None = None
    step: int | None = None
    reason: str = ""
    error: str | None = None
    raw: str = ""
    confidence: float | None = None
    candidates: tuple[Candidate, ...] = ()
    advice: str = ""  # what the blamed agent should have done (A2P's minimal correction)

    def require(self) -> ParsedAnswer:
        if not self.parsed:
            raise ParseError(self.error or "unparseable")
        return self


def _fail(raw: str, why: str) -> ParsedAnswer:
    return ParsedAnswer(parsed=False, error=why, raw=raw)


_THINK_BLOCK = re.compile(r"<\s*think\s*>.*?<\s*/\s*think\s*>", re.IGNORECASE | re.DOTALL)
_THINK_OPEN = re.compile(r"<\s*think\s*>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"<\s*/\s*think\s*>", re.IGNORECASE)
_ANSWER = re.compile(r"<\s*answer\s*>(.*?)(?:<\s*/\s*answer\s*>|(?=<\s*answer\s*>)|\Z)", re.IGNORECASE | re.DOTALL)
_STEP_WORD = re.compile(r"^\s*(?:step|steps|step\s*number|step\s*no\.?)\s*[:=#]?\s*", re.IGNORECASE)
_AGENT_WORD = re.compile(r"^\s*(?:agent(?:\s*name)?)\s*[:=]\s*", re.IGNORECASE)
_INT = re.compile(r"^[#\s]*(-?\d+)\s*\.?\s*$")


def parse_tracer_output(
    text: str, agents: Sequence[str] | None = None, steps: Collection[int] | None = None
) -> ParsedAnswer:
    """The verdict in AgenTracer's format; ``agents``/``steps`` are the run's, for validation."""
    raw = text or ""
    think = ""
    m = _THINK_BLOCK.search(raw)
    if m:
        think = _THINK_OPEN.sub("", _THINK_CLOSE.sub("", m.group(0))).strip()
    outside = _THINK_BLOCK.sub(" ", raw)
    answers = list(_ANSWER.finditer(outside))
    if not answers:
        if _ANSWER.search(raw):
            return _fail(raw, "the only <answer> is inside <think>")
        return _fail(raw, "no <answer> block")
    body = answers[-1].group(1).strip()
    if not think:
        # An unclosed <think>: everything between it and the answer is the reasoning.
        opened = _THINK_OPEN.search(raw)
        if opened:
            think = raw[opened.end():answers[-1].start()].strip() if answers[-1].start() > opened.end() else ""
    if not body:
        return _fail(raw, "empty <answer> block")
    result = parse_answer_body(body, agents=agents, steps=steps)
    if not result.parsed:
        return _fail(raw, result.error or "unparseable answer")
    return ParsedAnswer(True, result.agent, result.step, reason=think, raw=raw)


def parse_answer_body(
    body: str, agents: Sequence[str] | None = None, steps: Collection[int] | None = None
) -> ParsedAnswer:
    """``agent | step`` and its common variants."""
    body = body.strip().strip("`*\"'").strip()
    agent_txt: str | None = None
    step_txt: str | None = None
    m = re.match(
        r"^\s*agent(?:\s*name)?\s*[:=]\s*(?P<a>.+?)\s*[,;|\n]\s*step(?:\s*number)?\s*[:=#]?\s*(?P<s>-?\d+)\s*\.?\s*$",
        body, re.IGNORECASE | re.DOTALL,
    ) or re.match(
        r"^\s*step(?:\s*number)?\s*[:=#]?\s*(?P<s>-?\d+)\s*[,;|\n]\s*agent(?:\s*name)?\s*[:=]\s*(?P<a>.+?)\s*\.?\s*$",
        body, re.IGNORECASE | re.DOTALL,
    )
    if m:
        agent_txt, step_txt = m.group("a"), m.group("s")
    elif "|" in body:
        parts = [p.strip() for p in body.split("|")]
        parts = [p for p in parts if p]
        if len(parts) != 2:
            return _fail(body, f"expected 'agent | step', got {len(parts)} fields: {body!r}")
        a, b = (_AGENT_WORD.sub("", p).strip() for p in parts)
        sa, sb = _as_step(a), _as_step(b)
        if sb is not None and sa is None:
            agent_txt, step_txt = a, str(sb)
        elif sa is not None and sb is None:
            agent_txt, step_txt = b, str(sa)
        else:
            return _fail(body, f"cannot tell agent from step in {body!r}")
    else:
        m = re.match(r"^\s*(?P<a>.+?)\s*(?:[,;:(\-]\s*|\s+)(?:at\s+|in\s+)?step\s*[:=#]?\s*(?P<s>-?\d+)\s*\)?\s*\.?\s*$",
                     body, re.IGNORECASE | re.DOTALL)
        if not m:
            return _fail(body, f"answer is not 'agent | step': {body!r}")
        agent_txt, step_txt = _AGENT_WORD.sub("", m.group("a")), m.group("s")
    return _validated(body, agent_txt, step_txt, agents, steps)


def _as_step(text: str) -> int | None:
    m = _INT.match(_STEP_WORD.sub("", text))
    return int(m.group(1)) if m else None


def _validated(raw: str, agent_txt: str | None, step_txt: str | None,
               agents: Sequence[str] | None, steps: Collection[int] | None) -> ParsedAnswer:
    agent_txt = (agent_txt or "").strip().strip("`*\"'[]").strip()
    if not agent_txt:
        return _fail(raw, "no agent name")
    try:
        step = int(str(step_txt).strip())
    except (TypeError, ValueError):
        return _fail(raw, f"step is not a number: {step_txt!r}")
    agent: str | None = agent_txt
    if agents:
        agent = match_agent(agent_txt, agents)
        if agent is None:
            return _fail(raw, f"agent {agent_txt!r} is not one of the run's agents {list(agents)}")
    if steps is not None and step not in steps:
        return _fail(raw, f"step {step} is not a step of the run")
    return ParsedAnswer(True, agent, step, raw=raw)


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def match_agent(name: str, agents: Sequence[str]) -> str | None:
    """The run's agent that ``name`` refers to, or None when none (or no single one) fits."""
    name = name.strip()
    if name in agents:
        return name
    for kind in (str.lower, _norm):
        hits = [a for a in agents if kind(a) == kind(name)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            return None
    if not _norm(name):
        return None
    scored = sorted(((difflib.SequenceMatcher(None, _norm(name), _norm(a)).ratio(), a) for a in agents), reverse=True)
    if scored and scored[0][0] >= 0.8 and (len(scored) == 1 or scored[0][0] - scored[1][0] >= 0.1):
        return scored[0][1]
    return None


_WW_AGENT = re.compile(r"agent\s*name\s*[:=]\s*(.+)", re.IGNORECASE)
_WW_STEP = re.compile(r"step\s*number\s*[:=]\s*(.+)", re.IGNORECASE)
_WW_REASON = re.compile(r"reason\s*for\s*mistake\s*[:=]\s*(.*)", re.IGNORECASE | re.DOTALL)


def parse_all_at_once(
    text: str, agents: Sequence[str] | None = None, steps: Collection[int] | None = None
) -> ParsedAnswer:
    """Who&When's all-at-once answer: ``Agent Name: X`` / ``Step Number: Y`` / ``Reason for Mistake: Z``."""
    raw = text or ""
    clean = raw.replace("**", "").replace("__", "")
    a = list(_WW_AGENT.finditer(clean))
    s = list(_WW_STEP.finditer(clean))
    if not a:
        return _fail(raw, "no 'Agent Name:' line")
    if not s:
        return _fail(raw, "no 'Step Number:' line")
    agent_txt = a[-1].group(1).split("\n")[0].strip().rstrip(".").strip("()[]")
    step_line = s[-1].group(1).split("\n")[0].strip()
    m = re.match(r"^\(?\s*(?:step\s*)?#?\s*(-?\d+)\s*\)?\s*\.?\s*$", step_line, re.IGNORECASE)
    if not m:
        return _fail(raw, f"step number is not a number: {step_line!r}")
    r = _WW_REASON.search(clean)
    result = _validated(raw, agent_txt, m.group(1), agents, steps)
    if not result.parsed:
        return result
    return ParsedAnswer(True, result.agent, result.step, reason=(r.group(1).strip() if r else ""), raw=raw)


_YES = re.compile(r"^\W*(?:\d+\s*[.)]\s*)?(yes|no)\b", re.IGNORECASE)


def parse_yes_no(text: str) -> bool | None:
    """Step-by-step's ``1. Yes/No. 2. Reason: ...``: True, False, or None when neither leads the answer."""
    clean = (text or "").replace("**", "").strip()
    clean = _THINK_BLOCK.sub("", clean).strip()
    m = _YES.match(clean)
    if m:
        return m.group(1).lower() == "yes"
    words = set(re.findall(r"\b(yes|no)\b", clean.lower()))
    if len(words) == 1:
        return words.pop() == "yes"
    return None


def parse_half(text: str) -> str | None:
    """Binary search's answer: ``"upper"`` (first half), ``"lower"`` (second half), or None."""
    clean = _THINK_BLOCK.sub("", (text or "").replace("**", "")).lower()
    found = set(re.findall(r"\b(upper|lower|first|second)\s+half\b", clean))
    halves = {"upper" if f in ("upper", "first") else "lower" for f in found}
    if len(halves) == 1:
        return halves.pop()
    return None


# ---------------------------------------------------------------- Abduct-Act-Predict

TOP_CANDIDATES = 5
_SUCCESS = frozenset({"success", "successful", "succeeds", "succeed", "yes", "true"})
_FAILURE = frozenset({"failure", "fails", "fail", "failed", "no", "false"})


@dataclass(frozen=True)
class Hypothesis:
    """One step examined by A2P: the cause abduced, the minimal correction, the predicted outcome."""

    agent: str
    step: int
    abduction: str
    action: str
    succeeds: bool
    probability: float | None  # the model's chance that the corrected run succeeds, when it gave one


def parse_a2p(
    text: str, agents: Sequence[str] | None = None, steps: Collection[int] | None = None
) -> ParsedAnswer:
    """An A2P answer read into hypotheses, and the earliest-fixing rule applied to them."""
    raw = text or ""
    try:
        hypotheses = read_hypotheses(raw, agents, steps)
    except ParseError as exc:
        return _fail(raw, str(exc))
    return earliest_fix(hypotheses, raw)


def read_hypotheses(
    text: str, agents: Sequence[str] | None = None, steps: Collection[int] | None = None
) -> list[Hypothesis]:
    """The hypotheses of the last ``{"hypotheses": [...]}`` object outside ``<think>``; ParseError says what is wrong."""
    answer = _last_json_object(_THINK_BLOCK.sub(" ", text), "hypotheses")
    if answer is None:
        raise ParseError('no JSON object with a "hypotheses" list')
    items = answer["hypotheses"]
    if not isinstance(items, list) or not items:
        raise ParseError('"hypotheses" is not a non-empty list')
    hypotheses = [_hypothesis(f"hypothesis {n}", item, agents, steps) for n, item in enumerate(items, 1)]
    seen: set[int] = set()
    for h in hypotheses:
        if h.step in seen:
            raise ParseError(f"step {h.step} has two hypotheses")
        seen.add(h.step)
    return hypotheses


def earliest_fix(hypotheses: Sequence[Hypothesis], raw: str = "") -> ParsedAnswer:
    """A2P's rule: the decisive error is the earliest step whose correction is predicted to make the run succeed.

    When every hypothesis carries a probability p, step k is the earliest fix with probability
    ``p_k * prod(1 - p_j for the examined steps j < k)`` (the predictions taken as independent). That is the
    verdict's confidence, and it ranks the candidates: the verdict first, then the others by probability.
    A well-formed answer in which no correction succeeds is parsed, names no step, and says so in ``reason``.
    """
    ordered = sorted(hypotheses, key=lambda h: h.step)
    fixes = [h for h in ordered if h.succeeds]
    if not fixes:
        examined = ", ".join(str(h.step) for h in ordered)
        return ParsedAnswer(True, reason=f"no correction of the steps examined ({examined}) is predicted to make "
                                         "the run succeed", raw=raw)
    chosen = fixes[0]
    reason = f"cause: {chosen.abduction}; minimal correction: {chosen.action}; predicted: the corrected run succeeds"
    if chosen.probability is not None:
        reason += f" (p={chosen.probability:.2f})"
    chances = _earliest_fix_chances(ordered)
    if chances is None:
        return ParsedAnswer(True, chosen.agent, chosen.step, reason=reason, raw=raw, advice=chosen.action)
    others = sorted((h for h in ordered if h is not chosen and chances[h.step] > 0), key=lambda h: -chances[h.step])
    candidates = tuple(Candidate(agent=h.agent, step=h.step, probability=chances[h.step])
                       for h in [chosen, *others][:TOP_CANDIDATES])
    return ParsedAnswer(True, chosen.agent, chosen.step, reason=reason, raw=raw,
                        confidence=chances[chosen.step], candidates=candidates, advice=chosen.action)


def _earliest_fix_chances(ordered: Sequence[Hypothesis]) -> dict[int, float] | None:
    if any(h.probability is None for h in ordered):
        return None
    chances: dict[int, float] = {}
    no_earlier_fix = 1.0
    for h in ordered:
        chances[h.step] = h.probability * no_earlier_fix
        no_earlier_fix *= 1.0 - h.probability
    return chances


def _hypothesis(where: str, item: Any, agents: Sequence[str] | None, steps: Collection[int] | None) -> Hypothesis:
    if not isinstance(item, dict):
        raise ParseError(f"{where} is not an object")
    for key in ("abduction", "action"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise ParseError(f"{where} has no {key!r}")
    step = item.get("step")
    if isinstance(step, str) and (number := _as_step(step)) is not None:
        step = number  # "Step 3"
    checked = _validated(json.dumps(item), str(item.get("agent") or ""), step, agents, steps)
    if not checked.parsed:
        raise ParseError(f"{where}: {checked.error}")
    probability = _probability(item.get("probability"), where)
    return Hypothesis(checked.agent, checked.step, item["abduction"].strip(), item["action"].strip(),
                      _prediction(item.get("prediction"), probability, where), probability)


def _probability(value: Any, where: str) -> float | None:
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, str) and value.strip().endswith("%"):
            p = float(value.strip()[:-1]) / 100
        else:
            p = float(value)
    except ValueError:
        raise ParseError(f"{where}: probability {value!r} is not a number") from None
    if not 0.0 <= p <= 1.0:
        raise ParseError(f"{where}: probability {value!r} is not between 0 and 1")
    return p


def _prediction(value: Any, probability: float | None, where: str) -> bool:
    """The predicted outcome: ``success``/``failure`` (or yes/no, true/false); from the probability when absent."""
    if isinstance(value, bool):
        return value
    word = re.match(r"\W*([a-z]+)", str(value).lower()) if value is not None else None
    if word and word.group(1) in _SUCCESS:
        return True
    if word and word.group(1) in _FAILURE:
        return False
    if value is None and probability is not None:
        return probability >= 0.5
    raise ParseError(f"{where}: prediction {value!r} is neither success nor failure")


def _last_json_object(text: str, key: str) -> dict[str, Any] | None:
    """The last JSON object in ``text`` that has ``key`` (objects nested in it are skipped)."""
    decoder = json.JSONDecoder()
    for m in reversed(list(re.finditer(r"\{", text))):
        try:
            obj, _ = decoder.raw_decode(text, m.start())
        except ValueError:
            continue
        if isinstance(obj, dict) and key in obj:
            return obj
    return None
