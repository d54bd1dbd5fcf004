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


def print_trajectory(console: Console, traj: Trajectory, verdict: Attribution | None = None) -> None:
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
        console.print(Panel(Text.assemble((who, "bold"), "\n", verdict.reason),
                            title=Text(f"verdict ({verdict.attributor})"), border_style="red"))
