"""Deciding whether a run failed, and how it ended (AgentBench's termination labels).

Signals, strongest first: the app's explicit ``run.fail()``; an error status on
the run span; the final answer against ``expected`` (the collector's own
judgement whenever ``expected`` is known); the app's explicit success.
"""

from __future__ import annotations

import re
import unicodedata

from agenttrace.models import Outcome, Step, Termination, Trajectory
from agenttrace_collector.spanview import SpanView

_PATTERNS: list[tuple[Termination, re.Pattern[str]]] = [
    (Termination.CONTEXT_LIMIT_EXCEEDED, re.compile(
        r"context[_ ]length[_ ]exceeded|maximum context length|context window|too many tokens|"
        r"prompt is too long|ContextWindowExceeded", re.I)),
    (Termination.TASK_LIMIT_EXCEEDED, re.compile(
        r"MaxTurnsExceeded|max[_ ]turns|recursion limit|GraphRecursionError|max(imum)?[_ ]iterations|"
        r"max[_ ]rounds|turn limit|step limit|round limit|AgentMaxIterations", re.I)),
    (Termination.INVALID_FORMAT, re.compile(
        r"OutputParser|could not parse|invalid format|parsing error|JSONDecodeError|ModelBehaviorError|"
        r"ValidationError|UnexpectedModelBehavior", re.I)),
    (Termination.INVALID_ACTION, re.compile(
        r"tool .*not found|unknown tool|not a valid tool|ToolNotFound|invalid tool|no such tool|"
        r"invalid action|is not a valid action", re.I)),
]

LOOP_REPEATS = 3


def _normal(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().strip()
    text = re.sub(r"\s+", " ", text)
    return text.strip(" .!\"'`")


def _as_number(text: str) -> float | None:
    try:
        return float(text.replace(",", "").replace("$", "").rstrip("%"))
    except ValueError:
        return None


def answer_matches(answer: str, expected: str) -> bool:
    """Normalised equality, numeric equality, or the expected answer as a whole word/phrase of a longer one."""
    a, e = _normal(answer), _normal(expected)
    if not e:
        return not a
    if a == e:
        return True
    na, ne = _as_number(a), _as_number(e)
    if na is not None and ne is not None:
        return abs(na - ne) <= 1e-9 * max(1.0, abs(ne))
    return re.search(rf"(?<!\w){re.escape(e)}(?!\w)", a) is not None


def termination(traj: Trajectory, spans: list[SpanView], root_ended: bool) -> Termination:
    if not root_ended:
        return Termination.INCOMPLETE
    errors = [s.error for s in spans if s.error]
    finish_reasons = [r for s in spans for r in (s.attrs.get("gen_ai.response.finish_reasons") or ())]
    text = "\n".join(errors + [traj.failure_reason or ""])
    for label, pattern in _PATTERNS:
        if pattern.search(text):
            return label
    if "length" in finish_reasons[-1:]:
        return Termination.CONTEXT_LIMIT_EXCEEDED
    if _repeating(traj.steps):
        return Termination.TASK_LIMIT_EXCEEDED
    run_errors = [s for s in spans if s.error and not s.parent_id]
    return Termination.ERROR if run_errors else Termination.COMPLETED


def _repeating(steps: list[Step]) -> bool:
    """The last ``LOOP_REPEATS`` steps of one agent say the same thing: the run was stuck in a loop."""
    if len(steps) < LOOP_REPEATS:
        return False
    tail = steps[-LOOP_REPEATS:]
    return len({(s.agent, _normal(s.render())) for s in tail}) == 1


def judge(traj: Trajectory, run_span: SpanView | None, spans: list[SpanView], root_ended: bool) -> Trajectory:
    """Fills in outcome, failure reason and termination label."""
    outcome, reason = traj.outcome, traj.failure_reason
    if outcome is not Outcome.FAILURE:
        if run_span is not None and run_span.error:
            outcome, reason = Outcome.FAILURE, reason or run_span.error
        elif traj.expected is not None and traj.answer is not None:
            if answer_matches(str(traj.answer), str(traj.expected)):
                outcome = Outcome.SUCCESS
            else:
                outcome = Outcome.FAILURE
                reason = f"answer {str(traj.answer)[:200]!r} does not match expected {str(traj.expected)[:200]!r}"
        elif traj.expected is not None and root_ended:
            outcome, reason = Outcome.FAILURE, "the run ended without an answer to compare with the expected one"
    label = termination(traj.model_copy(update={"failure_reason": reason}), spans, root_ended)
    if outcome is Outcome.SUCCESS and label is not Termination.INCOMPLETE:
        label = Termination.COMPLETED  # errors on the way were recovered from
    if label in (Termination.TASK_LIMIT_EXCEEDED, Termination.CONTEXT_LIMIT_EXCEEDED) and outcome is Outcome.UNKNOWN:
        outcome = Outcome.FAILURE
        reason = reason or f"run ended by {label.value.replace('_', ' ')}"
    return traj.model_copy(update={"outcome": outcome, "failure_reason": reason, "termination": label})
