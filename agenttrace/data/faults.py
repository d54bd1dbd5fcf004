"""Programmatic fault injection: labelled failures made from successful trajectories by perturbing one step.

Perturbations (each returns the new text, or None where it does not apply):

* code, on the Python blocks (```` ```python ... ``` ````, or a whole content that parses as Python with a
  ``def``), rewritten with :mod:`ast` (comments and formatting of the block are lost by ``ast.unparse``):
  ``flip_comparison`` (``<`` <-> ``>=``, ``==`` <-> ``!=``, ``in`` <-> ``not in`` ...), ``off_by_one`` (an
  integer constant +-1), ``wrong_return`` (a returned number +1, a returned condition negated, else ``None``);
* text: ``wrong_number`` (one number changed), ``dropped_constraint`` (a sentence stating a constraint -
  must, only, at least, exactly, minus, except, ... - removed), ``contradicted_fact`` (``is`` -> ``is not``,
  true <-> false, more <-> less, ...);
* tool: ``wrong_argument`` (one argument of one tool call changed).

:func:`inject` perturbs one step of a successful trajectory. The label is that step and its agent: every
step before it is the successful run's own, so it is the earliest error by construction. Whether the
perturbation really makes the run fail is known only by running it again: with a replayable system
(:class:`agenttrace.data.replay.Replayable`, whose calls match the trajectory's steps) the steps before ``t`` are
served back, step ``t`` gets the perturbed content and the rest runs live; a run that still succeeds gives
no sample, one that fails gives a sample with ``confirmed=True`` whose later steps are the replayed ones.
Without a replayable system the sample keeps the original later steps and says ``confirmed=False``.

Export: :func:`write_tracertraj` (JSONL) and :func:`write_whowhen_dir` (one JSON per sample), both through
:func:`agenttrace.data.datasets.to_whowhen`, plus ``injected_kind`` / ``confirmed`` keys.
"""

from __future__ import annotations

import ast
import json
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agenttrace.models import Label, LabelledTrajectory, Outcome, Step, ToolCall, Trajectory

CODE_KINDS = ("flip_comparison", "off_by_one", "wrong_return")
TEXT_KINDS = ("wrong_number", "dropped_constraint", "contradicted_fact")
TOOL_KINDS = ("wrong_argument",)
ALL_KINDS = CODE_KINDS + TEXT_KINDS + TOOL_KINDS

_CODE_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


# ---- code ---------------------------------------------------------------------------------------
_FLIP = {ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt, ast.Eq: ast.NotEq,
         ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}


def _candidates(tree: ast.AST, kind: str) -> list[ast.AST]:
    nodes = list(ast.walk(tree))
    if kind == "flip_comparison":
        return [n for n in nodes if isinstance(n, ast.Compare) and type(n.ops[0]) in _FLIP]
    if kind == "off_by_one":
        return [n for n in nodes if isinstance(n, ast.Constant) and type(n.value) is int]
    if kind == "wrong_return":
        return [n for n in nodes if isinstance(n, ast.Return) and n.value is not None]
    raise ValueError(f"unknown code perturbation {kind!r}")


def _apply(node: ast.AST, kind: str, rng: random.Random) -> str:
    if kind == "flip_comparison":
        old = type(node.ops[0])
        node.ops[0] = _FLIP[old]()
        return f"comparison {old.__name__} flipped to {type(node.ops[0]).__name__}"
    if kind == "off_by_one":
        delta = rng.choice((1, -1)) if node.value != 0 else 1
        node.value += delta
        return f"integer constant changed by {delta:+d} to {node.value}"
    value = node.value
    if isinstance(value, ast.Constant) and isinstance(value.value, (int, float)) and type(value.value) is not bool:
        node.value = ast.Constant(value.value + 1)
        return "returned constant off by one"
    if isinstance(value, (ast.Compare, ast.BoolOp)) or (isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.Not)):
        node.value = ast.UnaryOp(op=ast.Not(), operand=value)
        return "returned condition negated"
    if isinstance(value, (ast.BinOp, ast.Name, ast.Call, ast.Subscript, ast.Attribute)):
        node.value = ast.BinOp(left=value, op=ast.Add(), right=ast.Constant(1))
        return "returned value off by one"
    node.value = ast.Constant(None)
    return "returns None instead of its value"


def perturb_python(code: str, kind: str, rng: random.Random | None = None) -> tuple[str, str] | None:
    """One ``kind`` perturbation of a Python source: ``(new source, description)``, None if none applies."""
    rng = rng or random.Random(0)
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    nodes = _candidates(tree, kind)
    if not nodes:
        return None
    what = _apply(rng.choice(nodes), kind, rng)
    return ast.unparse(ast.fix_missing_locations(tree)), what


def code_blocks(content: str) -> list[tuple[int, int]]:
    """Spans of the Python code blocks of a content; a bare content that parses with a ``def`` is one block."""
    spans = [(m.start(1), m.end(1)) for m in _CODE_BLOCK.finditer(content)]
    if not spans and "def " in content:
        try:
            ast.parse(content)
            spans = [(0, len(content))]
        except SyntaxError:
            pass
    return spans


def perturb_code(content: str, kind: str, rng: random.Random | None = None) -> tuple[str, str] | None:
    rng = rng or random.Random(0)
    spans = [s for s in code_blocks(content) if perturb_python(content[s[0]:s[1]], kind, random.Random(0))]
    if not spans:
        return None
    lo, hi = rng.choice(spans)
    new, what = perturb_python(content[lo:hi], kind, rng)
    return content[:lo] + new + ("\n" if content[lo:hi].endswith("\n") else "") + content[hi:], what


# ---- text ---------------------------------------------------------------------------------------
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.]*\w)")
_CONSTRAINT = re.compile(r"\b(must|should|only|at least|at most|exactly|no more than|no less than|without|never|"
                         r"do not|don't|less than|more than|minus|except|excluding|unless|within|required?)\b",
                         re.IGNORECASE)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
_CONTRADICT = [(r"\bis not\b", "is"), (r"\bare not\b", "are"), (r"\bis\b", "is not"), (r"\bare\b", "are not"),
               (r"\bwas\b", "was not"), (r"\btrue\b", "false"), (r"\bfalse\b", "true"), (r"\bTrue\b", "False"),
               (r"\bFalse\b", "True"), (r"\byes\b", "no"), (r"\bcan\b", "cannot"), (r"\bcannot\b", "can"),
               (r"\bmore\b", "less"), (r"\bless\b", "more"), (r"\bincrease", "decrease"), (r"\bdecrease", "increase"),
               (r"\bbefore\b", "after"), (r"\bafter\b", "before"), (r"\babove\b", "below"), (r"\bbelow\b", "above")]


def _changed_number(text: str, rng: random.Random) -> str:
    if "." in text:
        value = float(text)
        return f"{value * rng.choice((0.9, 1.1)) + rng.choice((-1, 1)):.{len(text.split('.')[1])}f}"
    value = int(text)
    delta = rng.choice((1, -1, 2, -2)) if abs(value) < 20 else rng.choice((1, -1, 2, -2, max(1, abs(value) // 10)))
    return str(value + delta if value + delta != value else value + 1)


def wrong_number(text: str, rng: random.Random | None = None, *, skip: Callable[[str], bool] | None = None
                 ) -> tuple[str, str] | None:
    rng = rng or random.Random(0)
    found = [m for m in _NUMBER.finditer(text) if not (skip and skip(m.group(0)))]
    if not found:
        return None
    m = rng.choice(found)
    new = _changed_number(m.group(0), rng)
    return text[:m.start()] + new + text[m.end():], f"number {m.group(0)} changed to {new}"


def drop_constraint(text: str, rng: random.Random | None = None) -> tuple[str, str] | None:
    rng = rng or random.Random(0)
    sentences = [m for m in _SENTENCE.finditer(text) if _CONSTRAINT.search(m.group(0))]
    if not sentences:
        return None
    m = rng.choice(sentences)
    new = (text[:m.start()] + text[m.end():]).strip()
    if not new or new == text.strip():
        return None
    return re.sub(r"[ \t]{2,}", " ", new), f"constraint dropped: {m.group(0).strip()[:120]!r}"


def contradict_fact(text: str, rng: random.Random | None = None) -> tuple[str, str] | None:
    rng = rng or random.Random(0)
    hits = []
    taken: set[int] = set()
    for pattern, repl in _CONTRADICT:
        for m in re.finditer(pattern, text):
            if m.start() not in taken:
                taken.add(m.start())
                hits.append((m, repl))
    if not hits:
        return None
    m, repl = rng.choice(hits)
    return text[:m.start()] + repl + text[m.end():], f"fact contradicted: {m.group(0)!r} -> {repl!r}"


# ---- tool ---------------------------------------------------------------------------------------
def _wrong_value(value: Any, rng: random.Random) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return type(value)(_changed_number(str(value), rng))
    if isinstance(value, str):
        numbered = wrong_number(value, rng)
        if numbered:
            return numbered[0]
        return value[::-1] if len(value) > 1 else value + "x"
    if isinstance(value, list) and value:
        return value[:-1]
    return None


def wrong_argument(step: Step, rng: random.Random | None = None) -> tuple[Step, str] | None:
    rng = rng or random.Random(0)
    calls = [i for i, c in enumerate(step.tool_calls) if isinstance(c.arguments, dict) and c.arguments
             or isinstance(c.arguments, (str, int, float)) and c.arguments not in ("", None)]
    if not calls:
        return None
    i = rng.choice(calls)
    call = step.tool_calls[i]
    if isinstance(call.arguments, dict):
        key = rng.choice(sorted(call.arguments))
        args = {**call.arguments, key: _wrong_value(call.arguments[key], rng)}
        what = f"argument {key!r} of {call.name} changed from {call.arguments[key]!r} to {args[key]!r}"
    else:
        args = _wrong_value(call.arguments, rng)
        what = f"argument of {call.name} changed from {call.arguments!r} to {args!r}"
    calls_new = list(step.tool_calls)
    calls_new[i] = ToolCall(id=call.id, name=call.name, arguments=args)  # its old result no longer holds
    return step.model_copy(update={"tool_calls": calls_new}), what


# ---- one step -------------------------------------------------------------------------------------
def applicable_kinds(step: Step) -> list[str]:
    kinds: list[str] = []
    if code_blocks(step.content):
        kinds += [k for k in CODE_KINDS if perturb_code(step.content, k)]
    if step.tool_calls and wrong_argument(step):
        kinds.append("wrong_argument")
    text = _CODE_BLOCK.sub(" ", step.content)
    if wrong_number(text):
        kinds.append("wrong_number")
    if drop_constraint(text):
        kinds.append("dropped_constraint")
    if contradict_fact(text):
        kinds.append("contradicted_fact")
    return kinds


def perturb_step(step: Step, kind: str, rng: random.Random | None = None) -> tuple[Step, str] | None:
    """The step with one ``kind`` perturbation, and what changed; None if ``kind`` does not apply."""
    rng = rng or random.Random(0)
    if kind == "wrong_argument":
        return wrong_argument(step, rng)
    if kind in CODE_KINDS:
        out = perturb_code(step.content, kind, rng)
    elif kind in TEXT_KINDS:
        fn = {"wrong_number": wrong_number, "dropped_constraint": drop_constraint,
              "contradicted_fact": contradict_fact}[kind]
        out = _outside_code(step.content, lambda text: fn(text, rng))
    else:
        raise ValueError(f"unknown perturbation {kind!r}; choose one of {', '.join(ALL_KINDS)}")
    if out is None:
        return None
    return step.model_copy(update={"content": out[0]}), out[1]


def _outside_code(content: str, fn: Callable[[str], tuple[str, str] | None]) -> tuple[str, str] | None:
    """A text perturbation applied to the prose of a content, its code blocks left alone."""
    parts = re.split(r"(```.*?```)", content, flags=re.DOTALL)
    prose = [i for i, p in enumerate(parts) if not p.startswith("```") and fn(p)]
    if not prose:
        return None
    i = prose[0] if len(prose) == 1 else prose[len(parts) % len(prose)]
    new, what = fn(parts[i])
    parts[i] = new
    return "".join(parts), what


# ---- samples --------------------------------------------------------------------------------------
@dataclass
class InjectedFailure:
    trajectory: Trajectory
    label: Label
    kind: str
    description: str
    confirmed: bool
    source_run_id: str

    def labelled(self, subset: str = "injected") -> LabelledTrajectory:
        return LabelledTrajectory(id=self.trajectory.run_id, subset=subset, trajectory=self.trajectory,
                                  label=self.label)

    def to_whowhen(self) -> dict[str, Any]:
        from agenttrace.data.datasets import to_whowhen

        return to_whowhen(self.trajectory, self.label) | {"injected_kind": self.kind, "confirmed": self.confirmed}


def _eligible(step: Step) -> bool:
    return step.role not in ("user", "human", "system") and step.agent.lower() not in ("human", "user")


def inject(trajectory: Trajectory, *, step: int | None = None, kind: str | None = None,
           rng: random.Random | None = None, run: Any = None, args: Sequence[Any] = (),
           kwargs: dict[str, Any] | None = None, suffix: str | None = None) -> InjectedFailure | None:
    """A labelled failure from a successful ``trajectory``, or None (nothing applies, or the replay succeeded).

    ``step``/``kind`` default to a random eligible step (not the human's) and a random kind that applies
    to it. ``run`` is a :class:`~agenttrace.data.replay.Replayable` reproducing the trajectory's system; ``args``
    and ``kwargs`` are its arguments.
    """
    rng = rng or random.Random(0)
    options = [(i, k) for i, s in enumerate(trajectory.steps) if _eligible(s)
               for k in applicable_kinds(s)]
    if step is not None:
        options = [o for o in options if o[0] == step]
    if kind is not None:
        options = [o for o in options if o[1] == kind]
    if not options:
        return None
    t, chosen = rng.choice(options)
    perturbed = perturb_step(trajectory.steps[t], chosen, rng)
    if perturbed is None:
        return None
    new_step, what = perturbed
    run_id = f"{trajectory.run_id}-inj-{suffix or f'{t}-{chosen}'}"
    label = Label(agent=new_step.agent, step=new_step.index, reason=f"injected {chosen}: {what}")
    if run is not None and chosen != "wrong_argument":
        from agenttrace.data.replay import Recording

        replayed = run.replay(Recording.from_trajectory(trajectory), t, new_step.content, *args, **(kwargs or {}))
        if replayed.success:
            return None  # the perturbation did not change the outcome: not a failure
        steps = [s.model_copy() for s in trajectory.steps[:t]] + [new_step]
        for call in replayed.calls[t + 1:]:
            steps.append(Step(index=steps[-1].index + 1, agent=call.agent or f"agent{call.index}",
                              content=call.response))
        failed = trajectory.model_copy(update={
            "run_id": run_id, "steps": steps, "outcome": Outcome.FAILURE,
            "answer": None if replayed.result is None else str(replayed.result),
            "failure_reason": replayed.error or "the replayed run did not succeed"})
        return InjectedFailure(failed, label, chosen, what, True, trajectory.run_id)
    steps = list(trajectory.steps)
    steps[t] = new_step
    failed = trajectory.model_copy(update={"run_id": run_id, "steps": steps, "outcome": Outcome.FAILURE,
                                           "failure_reason": "injected fault (not re-run)"})
    return InjectedFailure(failed, label, chosen, what, False, trajectory.run_id)


def inject_many(trajectories: Iterable[Trajectory], *, per_trajectory: int = 1, kinds: Sequence[str] | None = None,
                seed: int = 0, run: Any = None, args_for: Callable[[Trajectory], Sequence[Any]] | None = None
                ) -> list[InjectedFailure]:
    """Up to ``per_trajectory`` distinct injected failures per successful trajectory."""
    rng = random.Random(seed)
    out: list[InjectedFailure] = []
    for traj in trajectories:
        if traj.outcome is Outcome.FAILURE:
            continue
        seen: set[tuple[int, str]] = set()
        for attempt in range(per_trajectory * 4):
            if len(seen) >= per_trajectory:
                break
            kind = rng.choice(list(kinds)) if kinds else None
            sample = inject(traj, kind=kind, rng=rng, run=run, args=args_for(traj) if args_for else (),
                            suffix=str(attempt))
            if sample is None or (sample.label.step, sample.kind) in seen:
                continue
            seen.add((sample.label.step, sample.kind))
            out.append(sample)
    return out


def write_tracertraj(samples: Iterable[InjectedFailure], path: str | Path) -> int:
    """TracerTraj JSONL: one Who&When-shaped object per line. Returns the number written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for sample in samples:
            fh.write(json.dumps(sample.to_whowhen(), ensure_ascii=False) + "\n")
            n += 1
    return n


def write_whowhen_dir(samples: Iterable[InjectedFailure], folder: str | Path) -> int:
    """Who&When layout: ``0.json``, ``1.json``, ... in ``folder``. Returns the number written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for n, sample in enumerate(samples, 1):
        (folder / f"{n - 1}.json").write_text(json.dumps(sample.to_whowhen(), ensure_ascii=False, indent=1),
                                              encoding="utf-8")
    return n
