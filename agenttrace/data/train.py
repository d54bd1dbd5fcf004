"""Training a tracer: GRPO (TRL) with LoRA (peft) on labelled trajectories, rewarded AgenTracer's way.

Data: Who&When folders/files and TracerTraj JSONL (anything :func:`agenttrace.data.datasets.iter_paths` reads,
including the output of :mod:`agenttrace.data.faults`); only items with a label are used. Each item becomes one
conversational prompt built by :func:`agenttrace.attribution.prompt.build_prompt` (the same prompt the
``tracer`` attributor serves with, fitted to ``max_prompt_tokens`` with the model's tokenizer).

Reward (:func:`tracer_reward`, the TRL reward function), after AgenTracer (arXiv 2509.03312):

* format gate: 0 unless the completion is exactly ``<think>...</think><answer>agent | step</answer>``
  (whitespace around the blocks allowed; the answer body parsed by
  :func:`agenttrace.attribution.parse.parse_answer_body`);
* otherwise ``lambda * [agent == label agent] + (1 - lambda) * exp(-(t_hat - t*)^2 / (2 sigma^2))`` with
  sigma = 1, lambda = 0.5 (:func:`agenttrace.data.scoring.multigranular_reward`).

Sizing: the defaults fit an 8B model (e.g. Qwen3-8B) on one 80 GB GPU: the base weights in bf16 (~16 GB),
LoRA r=16 / alpha=32 on all linear layers (the only trained and optimizer-held parameters, well under 1% of
the model), gradient checkpointing on, per-device batch 1 prompt x ``num_generations`` 4 completions,
prompts fitted to 8k tokens and completions capped at 1k. TRL's reference model is the LoRA-disabled base,
so no second copy of the weights is held. Generation uses ``transformers`` here; for faster rollouts set
``use_vllm=True`` through ``extra_config``.

Needs ``trl``, ``peft`` and ``datasets`` (not dependencies of agenttrace's core).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from agenttrace.models import Label, LabelledTrajectory
from agenttrace.data.scoring import LAMBDA, SIGMA, multigranular_reward

_STRICT = re.compile(r"^\s*<think>(?P<think>.*?)</think>\s*<answer>(?P<body>.*?)</answer>\s*$", re.DOTALL)


def completion_text(completion: Any) -> str:
    """A TRL completion as text: a string, or conversational ``[{"role": "assistant", "content": ...}]``."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    if isinstance(completion, (list, tuple)):
        return "".join(completion_text(part) for part in completion)
    return str(completion)


def parse_strict(text: str) -> tuple[str, int] | None:
    """``(agent, step)`` if ``text`` passes the format gate, else None."""
    from agenttrace.attribution.parse import parse_answer_body

    m = _STRICT.match(text or "")
    if m is None or "<answer>" in m.group("think") or "<think>" in m.group("body"):
        return None
    answer = parse_answer_body(m.group("body"))
    if not answer.parsed or answer.agent is None or answer.step is None:
        return None
    return answer.agent, answer.step


def score_completion(text: str, label: Label, *, lam: float = LAMBDA, sigma: float = SIGMA) -> float:
    parsed = parse_strict(text)
    if parsed is None:
        return 0.0
    return multigranular_reward(parsed[0], parsed[1], label, lam=lam, sigma=sigma)


class TracerReward:
    """The TRL reward function: ``(prompts, completions, label_agent, label_step, **kw) -> list[float]``.

    Counts its calls, the completions it scored and those that passed the format gate with some credit
    (``calls``, ``scored``, ``positive``).
    """

    __name__ = "tracer_reward"

    def __init__(self, lam: float = LAMBDA, sigma: float = SIGMA) -> None:
        self.lam = lam
        self.sigma = sigma
        self.calls = 0
        self.scored = 0
        self.positive = 0
        self.last: list[float] = []

    def __call__(self, prompts=None, completions=None, label_agent=None, label_step=None, **_: Any) -> list[float]:
        self.calls += 1
        out = [score_completion(completion_text(c), Label(agent=a, step=int(s)), lam=self.lam, sigma=self.sigma)
               for c, a, s in zip(completions, label_agent, label_step)]
        self.scored += len(out)
        self.positive += sum(r > 0 for r in out)
        self.last = out
        return out


tracer_reward = TracerReward()


def prompt_messages(item: LabelledTrajectory, *, tokenizer: Any = None, max_prompt_tokens: int | None = None,
                    with_ground_truth: bool = True) -> list[dict[str, str]]:
    """The attribution prompt of one item as chat messages (``agenttrace.attribution.prompt``)."""
    from agenttrace.attribution.prompt import build_prompt

    return build_prompt(item.trajectory, with_ground_truth=with_ground_truth, max_tokens=max_prompt_tokens,
                        tokenizer=tokenizer).messages()


def load_items(paths: Iterable[str | Path]) -> list[LabelledTrajectory]:
    from agenttrace.data.datasets import iter_paths

    return [item for item in iter_paths(paths) if item.label is not None]


def build_dataset(items: Sequence[LabelledTrajectory], *, tokenizer: Any = None,
                  max_prompt_tokens: int | None = 8192, with_ground_truth: bool = True):
    """A ``datasets.Dataset`` with ``prompt`` (messages), ``label_agent``, ``label_step``, ``id``."""
    from datasets import Dataset

    rows = {"prompt": [], "label_agent": [], "label_step": [], "id": []}
    for item in items:
        if item.label is None:
            continue
        rows["prompt"].append(prompt_messages(item, tokenizer=tokenizer, max_prompt_tokens=max_prompt_tokens,
                                              with_ground_truth=with_ground_truth))
        rows["label_agent"].append(item.label.agent)
        rows["label_step"].append(item.label.step)
        rows["id"].append(item.id)
    if not rows["id"]:
        raise ValueError("no labelled trajectories to train on")
    return Dataset.from_dict(rows)


def lora_config(r: int = 16, alpha: int = 32, dropout: float = 0.05, target_modules: Any = "all-linear"):
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules,
                      task_type="CAUSAL_LM")


def grpo_config(output_dir: str | Path, *, max_steps: int = 500, learning_rate: float = 1e-5,
                per_device_train_batch_size: int = 4, num_generations: int = 4,
                gradient_accumulation_steps: int = 8, max_completion_length: int = 1024,
                gradient_checkpointing: bool = True, bf16: bool | None = None, beta: float = 0.0,
                temperature: float = 1.0, logging_steps: int = 1, seed: int = 0, **extra: Any):
    """GRPOConfig with the sizing of the module docstring; ``bf16`` defaults to on iff CUDA is there."""
    import torch
    from trl import GRPOConfig

    if bf16 is None:
        bf16 = torch.cuda.is_available()
    cfg = dict(output_dir=str(output_dir), max_steps=max_steps, learning_rate=learning_rate,
               per_device_train_batch_size=per_device_train_batch_size, num_generations=num_generations,
               gradient_accumulation_steps=gradient_accumulation_steps, max_completion_length=max_completion_length,
               gradient_checkpointing=gradient_checkpointing, bf16=bf16, beta=beta, temperature=temperature,
               logging_steps=logging_steps, seed=seed, report_to="none", save_strategy="no",
               use_cpu=not torch.cuda.is_available())
    cfg.update(extra)
    return GRPOConfig(**cfg)


def train(data: Iterable[str | Path] | Sequence[LabelledTrajectory], model: Any, *, output_dir: str | Path,
          tokenizer: Any = None, max_prompt_tokens: int | None = 8192, with_ground_truth: bool = True,
          lora_r: int = 16, lora_alpha: int = 32, reward: TracerReward | None = None, save: bool = True,
          extra_config: dict[str, Any] | None = None, **config: Any):
    """GRPO + LoRA on labelled trajectories; returns the finished ``GRPOTrainer``.

    ``data``: paths (Who&When / TracerTraj) or LabelledTrajectory items. ``model``: a model id or local path
    (loaded in bf16 on GPU) or a ``PreTrainedModel``. ``config`` goes to :func:`grpo_config`. With ``save``
    the LoRA adapter and tokenizer are written to ``output_dir``.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOTrainer

    items = list(data)
    if items and not isinstance(items[0], LabelledTrajectory):
        items = load_items(items)
    if isinstance(model, (str, Path)):
        tokenizer = tokenizer or AutoTokenizer.from_pretrained(str(model))
        dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
        model = AutoModelForCausalLM.from_pretrained(str(model), dtype=dtype)
    if tokenizer is None:
        raise ValueError("pass the tokenizer with a model object")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dataset = build_dataset(items, tokenizer=tokenizer, max_prompt_tokens=max_prompt_tokens,
                            with_ground_truth=with_ground_truth)
    args = grpo_config(output_dir, **config, **(extra_config or {}))
    if args.gradient_checkpointing:
        model.config.use_cache = False
    reward = reward or TracerReward()
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=dataset,
                          processing_class=tokenizer, peft_config=lora_config(lora_r, lora_alpha))
    trainer.train()
    if save:
        trainer.save_model(str(output_dir))
        (Path(output_dir) / "agenttrace_train.json").write_text(json.dumps({
            "items": len(dataset), "reward_calls": reward.calls, "completions_scored": reward.scored,
            "with_ground_truth": with_ground_truth, "max_prompt_tokens": max_prompt_tokens}, indent=2))
    return trainer
