"""Printing a trajectory and its verdict for people (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from agenttrace.models import Attribution, Trajectory


def _clip(text: str, limit: int = 300) -> str:
    """Shortened and escaped, so that brackets in agent output are not read as rich markup."""
    text = text.strip()
    return escape(text if len(text) <= limit else text[:limit] + " …")


def print_trajectory(console: Console, traj: Trajectory, verdict: Attribution | None = None) -> None:
    title = f"run {traj.run_id[:12]} · {traj.name or ''} · {traj.outcome.value} ({traj.termination.value})"
    console.print(Panel(f"[b]task[/b] {_clip(traj.task or '-')}\n[b]answer[/b] {_clip(str(traj.answer or '-'))}"
                        + (f"\n[b]expected[/b] {_clip(str(traj.expected))}" if traj.expected else "")
                        + (f"\n[b]why failed[/b] {traj.failure_reason}" if traj.failure_reason else ""),
                        title=title))
    table = Table("step", "agent", "content and tool calls", show_lines=True)
    for step in traj.steps:
        blamed = verdict is not None and verdict.step == step.index
        style = "bold red" if blamed else None
        table.add_row(str(step.index), step.agent, _clip(step.render(), 400), style=style)
    console.print(table)
    if verdict is not None:
        who = f"{verdict.agent} at step {verdict.step}" if verdict.is_decided else "undecided"
        console.print(Panel(f"[b]{escape(who)}[/b]\n{escape(verdict.reason)}", title=f"verdict ({verdict.attributor})",
                            border_style="red"))
