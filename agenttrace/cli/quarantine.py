"""``agenttrace quarantine list|retry``: traces the collector set aside because processing them raised."""

from __future__ import annotations

import json
from datetime import datetime

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from agenttrace.cli import call_collector, collector_group

console = Console()


def _call(method: str, endpoint: str, path: str, **params):
    return call_collector(method, endpoint, f"/api/v1/quarantine{path}", **params)


@click.group("quarantine", help="""Traces the collector set aside because decoding, assembling or judging them raised.

A quarantined trace never blocks other runs. It is tried again when new spans of it arrive, or when you
retry it (after an upgrade that fixes the error, say).
""")
@collector_group
def quarantine_group() -> None:
    pass


@quarantine_group.command("list", help="List quarantined traces with their errors, most recent first.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def quarantine_list(endpoint, limit, as_json) -> None:
    rows = _call("GET", endpoint, "", limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print("no quarantined traces")
        return
    table = Table("service", "failed at", "error")
    table.add_column("trace", no_wrap=True)
    for r in rows:
        table.add_row(Text(r["service"] or ""), datetime.fromtimestamp(r["failed_at"]).isoformat(sep=" ", timespec="seconds"),
                      Text(r["error"]), r["trace_id"])
    console.print(table)


@quarantine_group.command("retry", help="Queue quarantined traces for assembly again: one TRACE_ID, or --all (admin).")
@click.argument("trace_id", required=False)
@click.option("--all", "everything", is_flag=True, help="Every quarantined trace.")
@click.pass_obj
def quarantine_retry(endpoint, trace_id, everything) -> None:
    if bool(trace_id) == everything:
        raise click.UsageError("give one TRACE_ID or --all")
    released = _call("POST", endpoint, "/retry", trace_id=trace_id)["released"]
    console.print(f"{released} trace{'s' if released != 1 else ''} queued for assembly again")
