"""``agenttrace suite generate``: one framework's labelled runs, written as JSONL."""

from __future__ import annotations

import signal
import sys
from collections import Counter
from pathlib import Path

import click

from agenttrace.suite.topologies import TOPOLOGIES

DEFAULT_SEED = 20250901


@click.group("suite", help="A labelled suite of real framework runs with one planted error each.")
def suite_group() -> None:
    pass


@suite_group.command("generate", help="Run N episodes through FRAMEWORK (each also replayed without its error) and "
                                      "write the confirmed ones, one LabelledTrajectory per line.")
@click.option("--framework", required=True, help="A framework with a suite driver, e.g. langgraph, openai_agents.")
@click.option("--n", "n", default=80, show_default=True, type=click.IntRange(min=1), help="Episodes to run.")
@click.option("--seed", default=DEFAULT_SEED, show_default=True, help="Base seed; the same seed gives the same suite.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              show_default="build/suite/<framework>.jsonl", help="Output JSONL file.")
@click.option("--topology", "topologies", multiple=True, type=click.Choice(sorted(TOPOLOGIES)),
              help="Only these team shapes (repeatable); all by default.")
@click.option("--no-team", is_flag=True, help="The runs declare no team (agenttrace.run(team=...)): each has the "
                                               "team its framework's integration declares, or none.")
def generate_command(framework, n, seed, out, topologies, no_team) -> None:
    from agenttrace.suite import drivers
    from agenttrace.suite.generate import generate, write_jsonl

    if framework not in drivers.DRIVERS:
        raise click.BadParameter(f"no suite driver for {framework!r}; known: {', '.join(sorted(drivers.DRIVERS))}",
                                 param_hint="--framework")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the collector child on the way out
    try:
        result = generate(framework, n, seed, topologies=tuple(topologies) or tuple(TOPOLOGIES), declare_team=not no_team)
    except ImportError as exc:
        raise click.ClickException(f"{framework} is not installed here ({exc}); run `nox -s suite-<env>`") from None
    path = out or Path("build/suite") / f"{framework}.jsonl"
    write_jsonl(result.items, path)
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(result.dropped.items())) or "none"
    click.echo(f"{framework}: {len(result.items)} of {n} confirmed -> {path} ({result.seconds:.0f} s; dropped: {dropped})")


@suite_group.command("summary", help="Counts of labelled runs in suite files: framework x topology, framework x "
                                     "error kind, topology x error kind, positions, repaired and noticed errors per framework.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def summary_command(paths) -> None:
    from agenttrace.models import LabelledTrajectory

    tags = [LabelledTrajectory.model_validate_json(line).tags for path in paths
            for line in path.read_text().splitlines() if line.strip()]
    for row, column in (("framework", "topology"), ("framework", "error_kind"), ("topology", "error_kind"),
                        ("framework", "position"), ("framework", "repaired"),
                        ("framework", "noticed")):
        click.echo(_table(Counter((t.get(row, "-"), t.get(column, "-")) for t in tags), row, column))


def _table(counts: Counter, row: str, column: str) -> str:
    """A markdown table: one line per ``row`` value, one column per ``column`` value, and totals."""
    keys = sorted({k for k, _ in counts})
    values = sorted({v for _, v in counts})
    lines = [f"| {row} \\ {column} | " + " | ".join(values) + " | total |", "|---" * (len(values) + 2) + "|"]
    for key in [*keys, "total"]:
        cells = [sum(n for (k, v), n in counts.items() if v == value and key in (k, "total")) for value in values]
        lines.append(f"| {key} | " + " | ".join(map(str, cells)) + f" | {sum(cells)} |")
    return "\n".join(lines) + "\n"
