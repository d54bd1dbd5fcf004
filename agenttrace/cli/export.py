"""`agenttrace export`: a collector's reviewed runs as labelled data files (Who&When folder, TracerTraj JSONL).

A person's review of a verdict (confirmed, or corrected in the collector's UI) labels the run with the agent
and step of its decisive error; `agenttrace eval --collector URL` scores an attributor on the same runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from agenttrace.data.datasets import to_whowhen
from agenttrace.models import LabelledTrajectory
from agenttrace.setup import DEFAULT_ENDPOINT

PAGE = 1000  # reviewed runs asked for per request


def fetch_reviewed(endpoint: str) -> list[LabelledTrajectory]:
    """Every reviewed run the token may read, labelled with the reviewer's agent and step, oldest review first."""
    from agenttrace.cli import call_collector

    items: list[LabelledTrajectory] = []
    while True:
        page = call_collector("GET", endpoint, "/api/v1/reviewed", limit=PAGE, offset=len(items))
        items += [LabelledTrajectory.model_validate(item) for item in page]
        if len(page) < PAGE:
            return items


@click.command("export", help="""Write a collector's reviewed runs as labelled data: Who&When JSON files (one per
run, in OUT/) or one TracerTraj JSONL file (OUT.jsonl). Each carries mistake_agent / mistake_step from the review
(a confirmed verdict, or the reviewer's correction) and the reviewer's note as mistake_reason.

\b
Examples:
  agenttrace export reviewed/                      # reviewed/<run id>.json, Who&When
  agenttrace export reviewed.jsonl --format tracertraj
  agenttrace eval reviewed/ --attributor cpu       # score an attributor on them
""")
@click.argument("out", type=click.Path())
@click.option("--endpoint", default=DEFAULT_ENDPOINT, show_default=True, envvar="AGENTTRACE_ENDPOINT",
              help="The collector (its token from AGENTTRACE_TOKEN).")
@click.option("--format", "fmt", type=click.Choice(["whowhen", "tracertraj"]), default="whowhen", show_default=True)
def export_command(out, endpoint, fmt) -> None:
    endpoint = endpoint.rstrip("/")
    items = fetch_reviewed(endpoint)
    if not items:
        raise click.ClickException(f"the collector at {endpoint} has no reviewed runs (review verdicts in its UI)")
    records = [to_whowhen(item.trajectory, item.label) for item in items]
    path = Path(out)
    if fmt == "tracertraj":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    else:
        path.mkdir(parents=True, exist_ok=True)
        for record in records:
            (path / f"{record['question_ID']}.json").write_text(json.dumps(record, ensure_ascii=False, indent=2),
                                                                encoding="utf-8")
    click.echo(f"wrote {len(records)} reviewed run(s) to {path}")
