"""``agenttrace inject``: labelled failures made from successful trajectories, one perturbed step each."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import click
import httpx
from rich.console import Console

from agenttrace.data.datasets import DatasetError, iter_paths
from agenttrace.data.faults import ALL_KINDS, CODE_KINDS, TEXT_KINDS, TOOL_KINDS, inject_many, write_tracertraj, \
    write_whowhen_dir
from agenttrace.models import Outcome, Trajectory
from agenttrace.setup import auth_headers

console = Console(stderr=True)


def fetch_runs(endpoint: str, outcome: str, service: str | None, limit: int) -> list[Trajectory]:
    """Up to ``limit`` runs with ``outcome`` from a collector, newest first, as trajectories."""
    endpoint = endpoint.rstrip("/")
    out: list[Trajectory] = []
    try:
        with httpx.Client(timeout=10, headers=auth_headers()) as client:
            rows: list[dict] = []
            while len(rows) < limit:
                params = {"outcome": outcome, "limit": min(1000, limit - len(rows)), "offset": len(rows)}
                if service:
                    params["service"] = service
                resp = client.get(f"{endpoint}/api/v1/runs", params=params)
                resp.raise_for_status()
                page = resp.json()
                rows.extend(page)
                if len(page) < params["limit"]:
                    break
            for row in rows:
                resp = client.get(f"{endpoint}/api/v1/runs/{row['run_id']}")
                if resp.status_code == 404:
                    continue  # removed since it was listed
                resp.raise_for_status()
                out.append(Trajectory.model_validate(resp.json()["trajectory"]))
    except httpx.ConnectError:
        raise click.ClickException(f"no collector at {endpoint}; start one with `agenttrace collector`, "
                                   "or give trajectory files instead") from None
    except httpx.HTTPStatusError as exc:
        raise click.ClickException(f"the collector at {endpoint} answered {exc.response.status_code} "
                                   f"to {exc.request.url}") from None
    return out


def _ticking(items: list[Trajectory], progress) -> Iterator[Trajectory]:
    task = progress.add_task("injecting", total=len(items))
    for item in items:
        yield item
        progress.advance(task)  # the previous trajectory is done once the next one is asked for


@click.command(
    "inject",
    help=f"""Make labelled failures from successful runs: perturb one step of each, label that step.

Each successful trajectory gets up to N (--per-trajectory) perturbed copies. One step (never the
human's) is changed by one fault kind; the label is that step and its agent, which is the earliest
error by construction, since every step before it is the successful run's own. The later steps are
left as they were: nothing is re-run, so every sample is marked "confirmed": false (the perturbation
may not really have made the run fail). For confirmed samples, re-run your system with
agenttrace.data.faults.inject(..., run=Replayable) from Python.

\b
Where the successful runs come from (one or both):
  PATHS              Who&When JSON files or folders, TracerTraj .jsonl files, or trajectory .json
                     files (Trajectory.model_dump_json()). Items carrying a mistake label, or an
                     outcome of failure, are skipped: they are not successful runs.
  --endpoint URL     the runs a collector has assembled, with --outcome success (the default)

\b
Where the samples go (exactly one):
  --out FILE.jsonl   TracerTraj JSONL, one Who&When-shaped object per line
  --out-dir DIR      a Who&When folder: 0.json, 1.json, ...
Each sample carries mistake_agent / mistake_step / mistake_reason plus injected_kind and confirmed;
`agenttrace eval` and agenttrace.data.datasets read both layouts.

\b
Fault kinds (--kind, repeatable; default: any that applies to the chosen step):
  code: {", ".join(CODE_KINDS)}
  text: {", ".join(TEXT_KINDS)}
  tool: {", ".join(TOOL_KINDS)}

\b
Examples:
  agenttrace inject good_runs/ --out injected.jsonl
  agenttrace inject runs.jsonl --kind off_by_one --kind wrong_number --per-trajectory 3 --out-dir injected/
  agenttrace inject --endpoint http://127.0.0.1:4318 --outcome success --limit 200 --out injected.jsonl
""",
)
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--endpoint", default=None, metavar="URL",
              help="Also read runs from this collector (e.g. http://127.0.0.1:4318).")
@click.option("--outcome", type=click.Choice(["success", "unknown"]), default="success", show_default=True,
              help="With --endpoint: which runs to read (unknown: runs nobody judged).")
@click.option("--service", default=None, help="With --endpoint: only runs of this service.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1),
              help="With --endpoint: at most this many runs, newest first.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(ALL_KINDS),
              help="Fault kind to inject; repeatable. Default: any kind that applies.")
@click.option("--seed", default=0, show_default=True, help="Random seed: the same inputs and seed give the same samples.")
@click.option("--per-trajectory", "per_trajectory", default=1, show_default=True, type=click.IntRange(min=1),
              metavar="N", help="Perturbed copies per trajectory (distinct step/kind pairs; fewer where fewer apply).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write TracerTraj JSONL here.")
@click.option("--out-dir", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write a Who&When folder (0.json, 1.json, ...) here.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def inject_command(paths, endpoint, outcome, service, limit, kinds, seed, per_trajectory, out, out_dir,
                   no_progress) -> None:
    if (out is None) == (out_dir is None):
        raise click.UsageError("give exactly one of --out FILE.jsonl or --out-dir DIR")
    if out is not None and out.suffix != ".jsonl":
        raise click.BadParameter(f"{out} should end in .jsonl (TracerTraj JSONL); use --out-dir for a folder",
                                 param_hint="--out")
    if not paths and not endpoint:
        raise click.UsageError("give trajectory files/folders (PATHS) or --endpoint URL to read runs from")

    trajectories: list[Trajectory] = []
    skipped = 0
    if paths:
        try:
            items = iter_paths(paths)
        except DatasetError as exc:
            raise click.ClickException(f"cannot read the input: {exc}") from None
        for item in items:
            if item.label is not None or item.trajectory.outcome is Outcome.FAILURE:
                skipped += 1
            else:
                trajectories.append(item.trajectory)
    if endpoint:
        trajectories.extend(fetch_runs(endpoint, outcome, service, limit))
    if not trajectories:
        where = ", ".join(map(str, paths)) + (f" and {endpoint}" if paths and endpoint else endpoint or "")
        why = (f" ({skipped} {'carries' if skipped == 1 else 'carry'} a mistake label or a failure outcome)"
               if skipped else "")
        raise click.ClickException(f"no successful trajectory in {where}{why}; inject needs runs that succeeded")

    samples = inject_many(_progress(trajectories, no_progress), per_trajectory=per_trajectory,
                          kinds=list(kinds) or None, seed=seed)
    if not samples:
        raise click.ClickException(
            f"no step of the {len(trajectories)} trajectories admits "
            + (f"the kind(s) {', '.join(kinds)}" if kinds else "any fault kind") + "; nothing written")
    written = write_tracertraj(samples, out) if out is not None else write_whowhen_dir(samples, out_dir)
    by_kind = Counter(s.kind for s in samples)
    console.print(f"wrote {written} unconfirmed sample{'s' if written != 1 else ''} from {len(trajectories)} "
                  f"successful trajector{'ies' if len(trajectories) != 1 else 'y'} to {out or out_dir}"
                  + (f" (skipped {skipped} failed or labelled)" if skipped else ""), soft_wrap=True, markup=False)
    console.print("kinds: " + ", ".join(f"{k} {n}" for k, n in by_kind.most_common()), soft_wrap=True)


def _progress(trajectories: list[Trajectory], off: bool) -> Iterable[Trajectory]:
    if off:
        yield from trajectories
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=False) as bar:
        yield from _ticking(trajectories, bar)
