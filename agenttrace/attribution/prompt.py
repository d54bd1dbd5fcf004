"""Trajectories as attribution prompts, AgenTracer-style, fitted to a token budget.

Layout (``build_prompt``)
-------------------------
* **system** - the instruction block (identical for every run, so a local tracer
  can prefill it once and reuse its KV cache): find the *decisive error*, the
  earliest step whose correction turns the failure into a success, and answer
  ``<think>...</think><answer>agent | step</answer>``.
* **user** - ``Task:`` the task; then, only in the *with G* setting,
  ``Ground truth (expected answer):`` ``trajectory.expected`` (the *without G*
  setting omits it); then every step as ``Step {index} - {agent} ({role}):``
  followed by ``step.render()`` (content plus tool calls as text); then a short
  closing question.

Truncation policy (``fit_prompt``)
----------------------------------
Who&When runs reach ~80k tokens and single contents reach 300k characters, so a
prompt is fitted to ``max_tokens`` as follows:

1. **Never cut**: the instruction block, the task, the ground truth, the closing
   question and *every* step header. If these alone exceed the budget, every step
   content is reduced to its omission marker and the result says
   ``over_budget=True`` (the budget cannot be met without losing a header).
2. **Budget for contents** = ``max_tokens`` minus the fixed part. It is shared
   by *water-filling then proportional cuts*: while some content is no longer
   than the fair share (remaining budget / remaining contents) it is kept whole
   and leaves the pool; the contents still in the pool are all longer than the
   fair share and each gets the remaining budget in proportion to its length.
   Short steps thus stay whole and long ones are cut proportionally.
3. **Cutting one content** to its share keeps its head (~40%) and its tail
   (~40%, where final answers and exit codes live) and spends the rest (~20%) on
   *telling* lines from the middle: first lines that mention errors,
   tracebacks/exceptions, ``exitcode``, failures or a final answer, then lines
   with numbers, each kept line capped at 240 characters, in their original
   order. Every gap is replaced by ``[... N chars omitted ...]`` with the exact
   number of characters removed. If no telling line fits, head and tail share the
   whole allowance.
4. Cuts are planned in tokens, applied in characters (using each content's own
   chars/token ratio) and then re-counted; while the whole prompt is still over
   the budget (markers and token boundaries cost a little), the content budget is
   lowered by the excess and the cut redone (a few rounds at most).

Tokens are counted with a tokenizer when one is given (anything with
``encode(text, add_special_tokens=False)``, e.g. a transformers tokenizer) or a
``count_tokens`` callable, else estimated as ``ceil(chars / 4)``. The counts are
of the system and user texts; a chat template adds a few tokens of its own, which
callers with a tokenizer measure and subtract from the budget (``tracer.py`` does).

Everything here is pure: no I/O, no model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agenttrace.models import Step, Trajectory

INSTRUCTIONS = """You are a failure attribution expert for multi-agent systems. You are given the task a team of \
LLM agents tried to solve and the full record of their run, step by step. The run FAILED.

Find the decisive error: the earliest step at which one agent made a mistake such that, had that step been \
corrected, the run would have succeeded instead of failed. Later steps that only follow from an earlier \
mistake are not decisive; a step that merely looks wrong but did not change the outcome is not decisive.

Each step is shown as "Step <number> - <agent> (<role>):" followed by what the agent said and the tools it called.

Reason step by step inside <think>...</think>, then give exactly one verdict as
<answer>agent name | step number</answer>
using the agent name and the step number exactly as they appear in the run, for example:
<answer>Coder | 3</answer>"""

CLOSING = "Which agent, at which step, made the decisive error? Think, then answer as <answer>agent | step</answer>."

# Abduct-Act-Predict (A2P, arXiv 2509.10401): one pass over the whole run, counterfactual reasoning per
# candidate step; the caller applies the earliest-fixing rule to the hypotheses (``parse.parse_a2p``).
A2P_INSTRUCTIONS = """You are a failure attribution expert for multi-agent systems. You are given the task a team of \
LLM agents tried to solve and the full record of their run, step by step. The run FAILED.

Find the decisive error by counterfactual reasoning. For every step that could hold it, in the order of the run:
1. Abduct: infer the hidden cause behind the agent's action at that step (for example a misread input, a \
wrong assumption, a constraint of the task it dropped, a tool result it ignored).
2. Act: state the minimal correction of that step alone - the smallest change to that agent's action that \
removes the cause, leaving every earlier step as it was.
3. Predict: simulate the rest of the run after the corrected step (later steps may change in response) and \
predict whether the run would then succeed.
The decisive error is the earliest step whose correction turns the failure into a success. Also list the \
steps you examined and ruled out (their correction would not save the run).

Each step is shown as "Step <number> - <agent> (<role>):" followed by what the agent said and the tools it called.

Reason first, then end with one JSON object:
{"hypotheses": [{"step": <step number>, "agent": "<agent name>", "abduction": "<hidden cause>", \
"action": "<minimal correction>", "prediction": "success" or "failure", \
"probability": <0 to 1, how likely the corrected run succeeds>}]}
using the step numbers and agent names exactly as they appear in the run."""

A2P_CLOSING = ("Abduct, act and predict for the steps that could hold the decisive error, then end with the JSON "
               "object of hypotheses.")

MARKER = "[... {n} chars omitted ...]"

_STRONG = re.compile(
    r"error|exception|traceback|exit ?code|exitcode|fail|failed|failure|final answer|answer\s*[:=]|wrong|incorrect",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d")
_MAX_LINE = 240

TokenCounter = Callable[[str], int]


def estimate_tokens(text: str) -> int:
    """The chars/4 estimate used when no tokenizer is given."""
    return math.ceil(len(text) / 4)


def token_counter(tokenizer: Any = None, count_tokens: TokenCounter | None = None) -> TokenCounter:
    """A ``str -> int`` counter: ``count_tokens`` if given, else the tokenizer's, else chars/4."""
    if count_tokens is not None:
        return count_tokens
    if tokenizer is not None:
        def count(text: str) -> int:
            return len(tokenizer.encode(text, add_special_tokens=False)) if text else 0
        return count
    return estimate_tokens


def step_header(step: Step) -> str:
    return f"Step {step.index} - {step.agent} ({step.role}):"


@dataclass(frozen=True)
class FittedPrompt:
    """A prompt fitted to a budget, with a record of what was cut."""

    system: str
    user: str
    tokens: int
    budget: int | None
    truncated_steps: tuple[int, ...] = ()
    omitted_chars: int = 0
    over_budget: bool = False
    step_texts: tuple[str, ...] = field(default=(), repr=False)

    @property
    def truncated(self) -> bool:
        return bool(self.truncated_steps)

    @property
    def text(self) -> str:
        """System and user as one text, for models without a chat template."""
        return f"{self.system}\n\n{self.user}"

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]


def preamble(trajectory: Trajectory, *, with_ground_truth: bool) -> str:
    """Task, and the expected answer (G) only in the with-G setting."""
    parts = [f"Task:\n{trajectory.task or '(no task recorded)'}"]
    if with_ground_truth and trajectory.expected is not None:
        parts.append(f"Ground truth (expected answer):\n{trajectory.expected}")
    return "\n\n".join(parts)


def build_prompt(
    trajectory: Trajectory,
    *,
    with_ground_truth: bool = True,
    max_tokens: int | None = None,
    tokenizer: Any = None,
    count_tokens: TokenCounter | None = None,
    instructions: str = INSTRUCTIONS,
    closing: str = CLOSING,
) -> FittedPrompt:
    """The AgenTracer prompt for one trajectory (see the module docstring for layout and truncation)."""
    return fit_prompt(
        system=instructions,
        preamble=preamble(trajectory, with_ground_truth=with_ground_truth),
        steps=trajectory.steps,
        closing=closing,
        max_tokens=max_tokens,
        count=token_counter(tokenizer, count_tokens),
    )


def fit_prompt(
    *,
    system: str,
    preamble: str,
    steps: Sequence[Step],
    closing: str = "",
    max_tokens: int | None = None,
    count: TokenCounter = estimate_tokens,
    contents: Sequence[str] | None = None,
) -> FittedPrompt:
    """Generic form of ``build_prompt``: any system text, preamble, steps and closing line.

    ``contents`` overrides ``step.render()`` per step (same length as ``steps``).
    """
    headers = [step_header(s) for s in steps]
    bodies = list(contents) if contents is not None else [s.render() for s in steps]
    if len(bodies) != len(headers):
        raise ValueError("contents must have one entry per step")

    def assemble(texts: Sequence[str]) -> str:
        blocks = [preamble, "Run:"] + [f"{h}\n{t}" if t else h for h, t in zip(headers, texts)]
        if closing:
            blocks.append(closing)
        return "\n\n".join(blocks)

    def total(user: str) -> int:
        return count(system) + count(user)

    user = assemble(bodies)
    n_tokens = total(user)
    if max_tokens is None or n_tokens <= max_tokens:
        return FittedPrompt(system, user, n_tokens, max_tokens, step_texts=tuple(bodies))

    # Fixed part: everything with every content reduced to its marker.
    stubs = [MARKER.format(n=len(b)) if b else "" for b in bodies]
    fixed = total(assemble(stubs))
    if fixed >= max_tokens:
        return FittedPrompt(
            system, assemble(stubs), fixed, max_tokens,
            truncated_steps=tuple(s.index for s, b in zip(steps, bodies) if b),
            omitted_chars=sum(len(b) for b in bodies), over_budget=fixed > max_tokens, step_texts=tuple(stubs),
        )

    sizes = [count(b) if b else 0 for b in bodies]
    stub_sizes = [count(s) if s else 0 for s in stubs]
    # Contents budget: what is left once the fixed part (which already pays one marker per step) is paid,
    # plus the markers of the steps that will turn out whole.
    content_budget = max_tokens - fixed + sum(stub_sizes)
    texts = list(bodies)
    for _ in range(6):
        shares = allocate(sizes, content_budget)
        texts = [
            b if share >= size else shrink(b, max(0, int(share * len(b) / max(size, 1))))
            for b, size, share in zip(bodies, sizes, shares)
        ]
        user = assemble(texts)
        n_tokens = total(user)
        if n_tokens <= max_tokens:
            break
        content_budget -= max(n_tokens - max_tokens, 1) + max(1, content_budget // 50)
        if content_budget <= 0:
            texts, user = stubs, assemble(stubs)
            n_tokens = total(user)
            break
    return FittedPrompt(
        system, user, n_tokens, max_tokens,
        truncated_steps=tuple(s.index for s, b, t in zip(steps, bodies, texts) if t != b),
        omitted_chars=sum(_omitted(t) for t in texts),
        over_budget=n_tokens > max_tokens, step_texts=tuple(texts),
    )


def allocate(sizes: Sequence[int], budget: int) -> list[int]:
    """Per-content budgets: short ones whole (water-filling), long ones cut in proportion to their size."""
    shares = [0] * len(sizes)
    pool = [i for i, s in enumerate(sizes) if s > 0]
    remaining = max(budget, 0)
    while pool:
        fair = remaining / len(pool)
        short = [i for i in pool if sizes[i] <= fair]
        if not short:
            break
        for i in short:
            shares[i] = sizes[i]
            remaining -= sizes[i]
        pool = [i for i in pool if i not in set(short)]
    if pool:
        long_total = sum(sizes[i] for i in pool)
        for i in pool:
            shares[i] = int(remaining * sizes[i] / long_total)
    return shares


def shrink(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters: head, telling middle lines, tail, with omission markers."""
    if len(text) <= limit:
        return text
    if limit <= len(MARKER.format(n=len(text))) + 2:
        return MARKER.format(n=len(text))
    room = limit - 2 * len(MARKER.format(n=len(text)))  # markers around the middle picks
    head_n = tail_n = max(room * 2 // 5, 0)
    middle_room = max(room - head_n - tail_n, 0)
    head_end = head_n
    tail_start = len(text) - tail_n
    picks = _telling_lines(text, head_end, tail_start, middle_room)
    if not picks:
        extra = middle_room // 2
        head_end += extra
        tail_start -= middle_room - extra
        if head_end >= tail_start:
            return text
    pieces = [text[:head_end]]
    cursor = head_end
    for start, end in picks:
        pieces.append(MARKER.format(n=start - cursor))
        pieces.append(text[start:end])
        cursor = end
    pieces.append(MARKER.format(n=tail_start - cursor))
    pieces.append(text[tail_start:])
    return "\n".join(p for p in pieces if p)


def _telling_lines(text: str, lo: int, hi: int, room: int) -> list[tuple[int, int]]:
    """Spans of telling lines in ``text[lo:hi]`` fitting ``room`` chars (marker cost included), in order."""
    if room <= 0 or hi <= lo:
        return []
    candidates: list[tuple[int, int, int, int]] = []  # (priority, start, end, cost)
    pos = lo
    for line in text[lo:hi].split("\n"):
        start, end = pos, pos + len(line)
        pos = end + 1
        stripped = line.strip()
        if not stripped:
            continue
        if _STRONG.search(stripped):
            prio = 0
        elif _NUMBER.search(stripped):
            prio = 1
        else:
            continue
        end = min(end, start + _MAX_LINE)
        candidates.append((prio, start, end, end - start + len(MARKER.format(n=hi - lo)) + 2))
    chosen: list[tuple[int, int]] = []
    for prio, start, end, cost in sorted(candidates, key=lambda c: (c[0], c[1])):
        if cost <= room:
            chosen.append((start, end))
            room -= cost
    return sorted(chosen)


_MARKER_RE = re.compile(r"\[\.\.\. (\d+) chars omitted \.\.\.\]")


def _omitted(text: str) -> int:
    return sum(int(m) for m in _MARKER_RE.findall(text))
