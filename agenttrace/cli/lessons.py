"""``agenttrace lessons list|clear``: the lessons a collector keeps per agent, from the verdicts on failed runs."""

from __future__ import annotations

import json
import time

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from agenttrace.cli import call_collector, collector_group

console = Console()


def _call(method: str, endpoint: str, agent: str | None):
    return call_collector(method, endpoint, "/api/v1/lessons", agent=agent)


@click.group("lessons", help="The lessons kept per agent: one for every decided verdict on a failed run.")
@collector_group
def lessons_group() -> None:
    pass


@lessons_group.command("list", help="List lessons, oldest first.")
@click.option("--agent", default=None, help="Only this agent's lessons.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def lessons_list(endpoint, agent, as_json) -> None:
    rows = _call("GET", endpoint, agent)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no lessons" + (f" for {agent}" if agent else ""))
        return
    table = Table("agent", "run", "step", "when", "lesson")
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"]))
        table.add_row(Text(r["agent"]), (r.get("run_id") or "")[:12], "" if r.get("step") is None else str(r["step"]),
                      when, Text(r["text"]))
    console.print(table)


@lessons_group.command("clear", help="Delete lessons (all, or one agent's).")
@click.option("--agent", default=None, help="Only this agent's lessons.")
@click.pass_obj
def lessons_clear(endpoint, agent) -> None:
    deleted = _call("DELETE", endpoint, agent)["deleted"]
    click.echo(f"deleted {deleted} lesson{'s' if deleted != 1 else ''}" + (f" of {agent}" if agent else ""))
