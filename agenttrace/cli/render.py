"""Printing a trajectory and its verdict for people (rich).

Everything that comes from a run (task, answers, agent names, step texts, reasons) is agent text: it goes
into rich ``Text`` objects, never into markup strings, so ``[/INST]`` or ``[tool call]`` print as written.
"""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from agenttrace.models import Attribution, Trajectory


def clip(text: str, limit: int = 300) -> str:
    """``text`` stripped and cut to ``limit`` characters (an ellipsis marks the cut)."""
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + " …"


def _fields(*pairs: tuple[str, str]) -> Text:
    """``label value`` lines, labels in bold, values as plain text."""
    return Text("\n").join(Text.assemble((label, "bold"), " ", value) for label, value in pairs)


def print_trajectory(console: Console, traj: Trajectory, verdict: Attribution | None = None,
                     job: dict | None = None) -> None:
    """A run: summary, steps (the blamed one in red), and the verdict - or, for a failed run without one, where its
    attribution job stands (``job`` as the API gives it)."""
    title = Text(f"run {traj.run_id[:12]} · {traj.name or ''} · {traj.outcome.value} ({traj.termination.value})")
    summary = [("task", clip(traj.task or "-")), ("answer", clip(str(traj.answer or "-")))]
    if traj.expected:
        summary.append(("expected", clip(str(traj.expected))))
    if traj.failure_reason:
        summary.append(("why failed", traj.failure_reason))
    console.print(Panel(_fields(*summary), title=title))
    table = Table("step", "agent", "content and tool calls", show_lines=True)
    for step in traj.steps:
        blamed = verdict is not None and verdict.step == step.index
        table.add_row(str(step.index), Text(step.agent), Text(clip(step.render(), 400)),
                      style="bold red" if blamed else None)
    console.print(table)
    if verdict is not None:
        who = f"{verdict.agent} at step {verdict.step}" if verdict.is_decided else "undecided"
        if verdict.confidence is not None:
            who += f" (confidence {verdict.confidence:.2f}{', uncertain' if verdict.uncertain else ''})"
        lines = [Text.assemble((who, "bold")), Text(verdict.reason)]
        if verdict.advice:
            lines.append(Text.assemble(("instead: ", "bold"), verdict.advice))
        if len(verdict.candidates) > 1:
            lines.append(Text("other candidates: " + ", ".join(
                f"{c.agent} at step {c.step} ({c.probability:.2f})" for c in verdict.candidates[1:])))
        lines += [Text(f"{o.attributor} said: {o.agent} at step {o.step}") for o in verdict.opinions]
        console.print(Panel(Text("\n").join(lines), title=Text(f"verdict ({verdict.attributor})"), border_style="red"))
    elif job is not None:
        state = {"queued": "pending (queued for attribution)", "running": "pending (being attributed)",
                 "done": "done", "failed": "failed"}.get(job["state"], job["state"])
        body = Text.assemble(("verdict " + state, "bold"), f"\nattempts: {job['attempts']}")
        if job.get("last_error"):
            body.append(f"\nlast error: {job['last_error']}")
        console.print(Panel(body, title=Text("attribution"), border_style="yellow"))
