"""``agenttrace train``: GRPO + LoRA on labelled trajectories (see :mod:`agenttrace.data.train`)."""

from __future__ import annotations

import click


@click.command("train", help="Train a tracer with GRPO + LoRA on Who&When / TracerTraj files (needs trl, peft, "
                             "datasets; a GPU for real models).")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--model", required=True, help="Base model id or local path, e.g. Qwen/Qwen3-8B.")
@click.option("--output-dir", required=True, type=click.Path(), help="Where the LoRA adapter is written.")
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
def train_command(paths, model, output_dir, max_steps, learning_rate, batch_size, num_generations, grad_accum,
                  max_prompt_tokens, max_completion_length, lora_r, lora_alpha, beta, without_ground_truth,
                  no_gradient_checkpointing) -> None:
    from agenttrace.cli import require_extra

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
