"""``agenttrace train``: refit the ``cpu`` attributor on labelled runs (a collector's reviewed runs, data files),
or train a tracer with GRPO + LoRA (see :mod:`agenttrace.data.train`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from agenttrace.logs import get_logger

log = get_logger(__name__)

CPU_ONLY = {"collector_url": "--collector", "dev_data": "--with-dev-data", "out": "--out"}
TRACER_ONLY = {"model": "--model", "output_dir": "--output-dir"}


@click.command("train", help="""Fit an attributor on labelled runs.

\b
--attributor cpu: refit the cpu attributor (numpy, a minute at most) on a collector's reviewed runs (--collector;
its token from AGENTTRACE_TOKEN), on labelled Who&When / TracerTraj files (PATHS), and optionally on the dev data
under --with-dev-data DIR (whowhen/, tracertraj/). Each source is a group of the leave-one-group-out that chooses
features, regularisation, verdict rule and temperature; a lone source is split into folds.
Load the model with `agenttrace collector --attributor cpu -o model_path=OUT`.

\b
--attributor tracer (the default): GRPO + LoRA on labelled PATHS (needs trl, peft, datasets; a GPU for real
models); needs --model and --output-dir.

\b
Examples:
  agenttrace train --attributor cpu --collector http://127.0.0.1:4318 --out team-cpu.json
  agenttrace train --attributor cpu reviewed/ --with-dev-data data --out team-cpu.json
  agenttrace train data/whowhen --model Qwen/Qwen3-8B --output-dir tracer-lora
""")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--attributor", type=click.Choice(["tracer", "cpu"]), default="tracer", show_default=True,
              help="Which attributor to train.")
@click.option("--collector", "collector_url", metavar="URL", help="cpu: fit on this collector's reviewed runs.")
@click.option("--with-dev-data", "dev_data", type=click.Path(exists=True, file_okay=False),
              help="cpu: also fit on the labelled dev data in this folder (whowhen/, tracertraj/).")
@click.option("--out", type=click.Path(dir_okay=False), help="cpu: where the model (JSON) is written.")
@click.option("--model", help="tracer: base model id or local path, e.g. Qwen/Qwen3-8B.")
@click.option("--output-dir", type=click.Path(), help="tracer: where the LoRA adapter is written.")
@click.option("--max-steps", default=500, show_default=True)
@click.option("--learning-rate", default=1e-5, show_default=True)
@click.option("--batch-size", default=4, show_default=True, help="Completions per device per step.")
@click.option("--num-generations", default=4, show_default=True, help="Completions per prompt (the GRPO group).")
@click.option("--grad-accum", default=8, show_default=True)
@click.option("--max-prompt-tokens", default=8192, show_default=True)
@click.option("--max-completion-length", default=1024, show_default=True)
@click.option("--lora-r", default=16, show_default=True)
@click.option("--lora-alpha", default=32, show_default=True)
@click.option("--beta", default=0.0, show_default=True, help="KL coefficient (0: no reference model pass).")
@click.option("--without-ground-truth", is_flag=True, help="Leave the expected answer out of the prompts.")
@click.option("--no-gradient-checkpointing", is_flag=True)
def train_command(paths, attributor, collector_url, dev_data, out, **tracer_options) -> None:
    given = {"collector_url": collector_url, "dev_data": dev_data, "out": out, **tracer_options}
    unused = CPU_ONLY if attributor == "tracer" else TRACER_ONLY
    stray = [flag for key, flag in unused.items() if given[key]]
    if stray:
        raise click.UsageError(f"not an option of --attributor {attributor}: {', '.join(stray)}")
    if attributor == "cpu":
        train_cpu(paths, collector_url, dev_data, out)
    else:
        train_tracer(paths, **tracer_options)


def train_cpu(paths: tuple[str, ...], collector_url: str | None, dev_data: str | None, out: str | None) -> None:
    """Refit the cpu attributor on every source given, each a group, and write it to ``out``."""
    from agenttrace.attribution.cpu_fit import FitError, load_dev, refit
    from agenttrace.cli.export import fetch_reviewed
    from agenttrace.data.datasets import DatasetError, load_any

    if not out:
        raise click.UsageError("--out is required: where the refitted model is written")
    if not paths and not collector_url:
        raise click.UsageError("give labelled PATHS, --collector URL, or both")
    sources: dict[str, list] = {}
    if collector_url:
        endpoint = collector_url.rstrip("/")
        reviewed = fetch_reviewed(endpoint)
        if not reviewed:
            raise click.ClickException(f"the collector at {endpoint} has no reviewed runs (review verdicts in its UI)")
        for item in reviewed:  # one group per service: subsets reviewed/<service>
            sources.setdefault(f"{endpoint} {item.subset}", []).append(item)
    try:
        for path in paths:
            sources[path] = load_any(path)
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None
    if dev_data:
        sources.update({f"{dev_data} {name}": items for name, items in load_dev(Path(dev_data)).items()})
    log.info("cpu_refit_start", sources={name: len(items) for name, items in sources.items()})
    try:
        model = refit(sources)
    except FitError as exc:
        raise click.ClickException(str(exc)) from None
    Path(out).write_text(json.dumps(model.to_json(), indent=1) + "\n", encoding="utf-8")
    meta = model.meta
    click.echo(f"fitted on {sum(meta['trained_on'].values())} labelled runs from {len(meta['trained_on'])} source(s); "
               f"{len(meta['averaged'])} of the grid's configurations averaged, cross-validated "
               f"(agent + step exact) / 2 = {meta['inner_accuracy']:.3f}")
    click.echo(f"wrote {out}; load it with: agenttrace collector --attributor cpu -o model_path={out}")


def train_tracer(paths: tuple[str, ...], model, output_dir, max_steps, learning_rate, batch_size, num_generations,
                 grad_accum, max_prompt_tokens, max_completion_length, lora_r, lora_alpha, beta, without_ground_truth,
                 no_gradient_checkpointing) -> None:
    """GRPO + LoRA on the labelled ``paths``."""
    from agenttrace.cli import require_extra

    if not paths:
        raise click.UsageError("give the labelled PATHS to train a tracer on")
    if not model or not output_dir:
        raise click.UsageError("--attributor tracer needs --model and --output-dir")
    require_extra("train", "agenttrace train")
    from agenttrace.data.train import load_items, train

    items = load_items(paths)
    if not items:
        raise click.ClickException("no labelled trajectories in " + ", ".join(paths))
    click.echo(f"training on {len(items)} labelled trajectories")
    trainer = train(items, model, output_dir=output_dir, max_prompt_tokens=max_prompt_tokens,
                    with_ground_truth=not without_ground_truth, lora_r=lora_r, lora_alpha=lora_alpha,
                    max_steps=max_steps, learning_rate=learning_rate, per_device_train_batch_size=batch_size,
                    num_generations=num_generations, gradient_accumulation_steps=grad_accum,
                    max_completion_length=max_completion_length, beta=beta,
                    gradient_checkpointing=not no_gradient_checkpointing)
    click.echo(f"done: {trainer.state.global_step} steps; adapter in {output_dir}")
