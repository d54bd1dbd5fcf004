"""A local tracer LM (AgenTracer-style) as an attributor: transformers + torch, batched, prefix-cached.

``TracerAttributor(model=...)`` loads any local checkpoint or hub id with
``AutoModelForCausalLM`` / ``AutoTokenizer`` (AgenTracer-8B's weights are not
public: use Qwen3-8B or a tracer trained with this project). torch and
transformers are imported only when the attributor is built, so ``import
agenttrace`` never needs them.

Prompts come from ``prompt.build_prompt`` (instructions as the system message,
the run as the user message), rendered with the tokenizer's chat template when it
has one (``chat_template_kwargs`` go to ``apply_chat_template``, e.g.
``{"enable_thinking": True}`` for Qwen3), else as plain text. The truncation
budget ``max_prompt_tokens`` counts the template's own tokens too.

Batching: ``attribute_batch`` sorts the prompts by length (less padding), runs
``batch_size`` of them per greedy ``generate`` call and returns the verdicts in
input order.

Prefill and decode: a prompt's prefill is compute-bound on its own, so each
prompt (but its last token) is prefilled alone - no padding to compute, logits
for the last position only - and the caches are left-padded into one batch
cache; ``generate`` then runs the last tokens and every decode step for the
whole batch, where batching pays (the weights are read once per step for all
rows). The attention mask hides the padding; generate derives position ids from
its cumulative sum, so each row continues at its own length. The batch cache is
a ``StaticCache`` sized for the prompt plus ``max_new_tokens`` (decode writes in
place; ``decode_cache="dynamic"`` uses a ``DynamicCache``, which copies itself
on every step). generate's automatic ``torch.compile`` for static caches is off
(``disable_compile``): batch shapes differ, and each would compile anew; pass
``generate_kwargs={"disable_compile": False}`` to try it.

Prefix reuse: the instruction block is identical for every prompt, so its KV
cache is prefilled once (a ``DynamicCache``) and kept; each prompt that starts
with those tokens prefills from a deep copy of it. A prompt that does not (a
BPE merge across the boundary) is prefilled from scratch. ``reuse_prefix=False``
turns reuse off. The tests check that outputs with reuse, without it and one
prompt at a time are the same tokens.

A malformed answer gives ``Attribution(agent=None, step=None,
reason="unparseable tracer output: ...")`` - never a guess.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

from agenttrace.attribution.base import Attributor, AttributorError
from agenttrace.attribution.parse import parse_tracer_output
from agenttrace.attribution.prompt import INSTRUCTIONS, FittedPrompt, build_prompt
from agenttrace.logs import get_logger
from agenttrace.models import Attribution, Trajectory

log = get_logger(__name__)


class TracerAttributor(Attributor):
    name = "tracer"

    def __init__(
        self,
        model: Any,
        *,
        tokenizer: Any = None,
        device: str = "auto",
        dtype: str = "auto",
        attn_implementation: str = "sdpa",
        max_new_tokens: int = 1024,
        max_prompt_tokens: int = 32_768,
        with_ground_truth: bool = True,
        batch_size: int = 4,
        reuse_prefix: bool = True,
        decode_cache: str = "static",
        chat_template_kwargs: dict[str, Any] | None = None,
        generate_kwargs: dict[str, Any] | None = None,
        instructions: str = INSTRUCTIONS,
        trust_remote_code: bool = False,
    ) -> None:
        try:
            import torch
            import transformers
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise AttributorError("the tracer attributor needs torch and transformers: pip install 'agenttrace[gpu]'") from exc
        self._torch = torch
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if dtype == "auto":
            torch_dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        else:
            torch_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        if attn_implementation == "flash_attention_2":
            import importlib.util
            if importlib.util.find_spec("flash_attn") is None or self.device.type != "cuda":
                log.warning("tracer.flash_attention_unavailable", fallback="sdpa")
                attn_implementation = "sdpa"
        self.attn_implementation = attn_implementation
        self.reuse_prefix = reuse_prefix
        if decode_cache not in ("static", "dynamic"):
            raise AttributorError(f"decode_cache must be 'static' or 'dynamic', not {decode_cache!r}")
        self.decode_cache = decode_cache
        self.max_new_tokens = max_new_tokens
        self.max_prompt_tokens = max_prompt_tokens
        self.with_ground_truth = with_ground_truth
        self.batch_size = max(1, int(batch_size))
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.generate_kwargs = dict(generate_kwargs or {})
        self.instructions = instructions

        if isinstance(model, str):
            self.model_name = model
            t0 = time.perf_counter()
            self.model = transformers.AutoModelForCausalLM.from_pretrained(
                model, dtype=torch_dtype, attn_implementation=attn_implementation,
                trust_remote_code=trust_remote_code,
            ).to(self.device)
            log.info("tracer.loaded", model=model, device=str(self.device), dtype=str(torch_dtype),
                     seconds=round(time.perf_counter() - t0, 2))
        else:  # an already built model (the bench passes one)
            self.model = model.to(self.device)
            self.model_name = getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
        self.model.eval()
        if tokenizer is None or isinstance(tokenizer, str):
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                tokenizer or self.model_name, trust_remote_code=trust_remote_code)
        self.tokenizer = tokenizer
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.pad_token_id = self.tokenizer.pad_token_id
        eos = self.generate_kwargs.pop("eos_token_id", None)
        if eos is None:
            eos = getattr(self.model.generation_config, "eos_token_id", None) or self.tokenizer.eos_token_id
        self.eos_token_ids = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}
        self._template_overhead: int | None = None
        self._prefix_ids: list[int] | None = None
        self._prefix_cache: Any = None
        self.stats = {"prompts": 0, "batches": 0, "prefix_reused": 0, "prompt_tokens": 0, "generated_tokens": 0}

    # ------------------------------------------------------------------ prompts
    def render(self, system: str, user: str) -> str:
        """The text fed to the model: the chat template when the tokenizer has one."""
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                [{"role": "system", "content": system}, {"role": "user", "content": user}],
                tokenize=False, add_generation_prompt=True, **self.chat_template_kwargs,
            )
        return f"{system}\n\n{user}\n\n"

    def _encode_text(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def build(self, trajectory: Trajectory) -> tuple[FittedPrompt, list[int]]:
        """The fitted prompt and its token ids, template included, within ``max_prompt_tokens``."""
        if self._template_overhead is None:
            bare = len(self._encode_text("a")) + len(self._encode_text("b"))
            self._template_overhead = max(len(self._encode_text(self.render("a", "b"))) - bare, 0) + 4
        budget = self.max_prompt_tokens - self._template_overhead
        for _ in range(4):
            fitted = build_prompt(trajectory, with_ground_truth=self.with_ground_truth, max_tokens=budget,
                                  tokenizer=self.tokenizer, instructions=self.instructions)
            ids = self._encode_text(self.render(fitted.system, fitted.user))
            if len(ids) <= self.max_prompt_tokens or fitted.over_budget:
                return fitted, ids
            budget -= len(ids) - self.max_prompt_tokens + 8
        return fitted, ids

    def shared_prefix(self) -> list[int]:
        """Token ids every prompt starts with: the rendered instruction block up to the user's text."""
        if self._prefix_ids is None:
            a = self._encode_text(self.render(self.instructions, "Task:\nalpha"))
            b = self._encode_text(self.render(self.instructions, "Zeta\n"))
            n = 0
            while n < min(len(a), len(b)) and a[n] == b[n]:
                n += 1
            self._prefix_ids = a[:n]
        return self._prefix_ids

    # ------------------------------------------------------------------ attribution
    def attribute(self, trajectory: Trajectory) -> Attribution:
        return self.attribute_batch([trajectory])[0]

    def attribute_batch(self, trajectories: Sequence[Trajectory]) -> list[Attribution]:
        built = [self.build(t) for t in trajectories]
        tokens = self.generate_batches([ids for _, ids in built])
        return [self._verdict(t, built[i][0], self.tokenizer.decode(tokens[i], skip_special_tokens=True))
                for i, t in enumerate(trajectories)]

    def generate_batches(self, prompts: Sequence[list[int]], *, progress: Any = None) -> list[list[int]]:
        """Greedy continuations of many tokenised prompts: sorted by length, ``batch_size`` per
        ``generate`` call, returned in input order. ``progress(n_done)`` is called after each batch."""
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        outputs: dict[int, list[int]] = {}
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            outputs.update(zip(chunk, self.generate_tokens([prompts[i] for i in chunk])))
            if progress is not None:
                progress(len(chunk))
        return [outputs[i] for i in range(len(prompts))]

    def _verdict(self, trajectory: Trajectory, fitted: FittedPrompt, text: str) -> Attribution:
        parsed = parse_tracer_output(text, trajectory.agents, {s.index for s in trajectory.steps})
        if not parsed.parsed:
            log.warning("tracer.unparseable", run_id=trajectory.run_id, why=parsed.error)
            return Attribution(run_id=trajectory.run_id, agent=None, step=None, attributor=self.name,
                               reason=f"unparseable tracer output: {parsed.error}: {text[-500:]!r}")
        reason = parsed.reason or ""
        if fitted.truncated:
            reason += f" [prompt truncated: {fitted.omitted_chars} chars omitted]"
        return Attribution(run_id=trajectory.run_id, agent=parsed.agent, step=parsed.step,
                           reason=reason.strip(), attributor=self.name)

    # ------------------------------------------------------------------ generation
    def generate_ids(self, prompts: Sequence[list[int]], *, reuse_prefix: bool | None = None) -> list[str]:
        """Greedy continuations of already tokenised prompts, one batch, decoded."""
        return [self.tokenizer.decode(ids, skip_special_tokens=True)
                for ids in self.generate_tokens(prompts, reuse_prefix=reuse_prefix)]

    def generate_tokens(self, prompts: Sequence[list[int]], *, reuse_prefix: bool | None = None) -> list[list[int]]:
        """Greedy continuations (token ids, cut at the first end-of-sequence) of one batch of prompts.

        Each prompt but its last token is prefilled on its own (from a copy of the instruction prefix's
        cache when it starts with it), the caches are left-padded into one batch, and ``generate`` runs the
        last tokens and every decode step for the whole batch."""
        torch = self._torch
        if min(len(p) for p in prompts) < 2:
            raise AttributorError("a tracer prompt needs at least 2 tokens")
        reuse = self.reuse_prefix if reuse_prefix is None else reuse_prefix
        prefix = self.shared_prefix() if reuse else []
        width = max(len(p) for p in prompts)
        input_ids = torch.tensor([[self.pad_token_id] * (width - len(p)) + list(p) for p in prompts],
                                 dtype=torch.long, device=self.device)
        attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts],
                                      dtype=torch.long, device=self.device)
        kwargs: dict[str, Any] = dict(
            max_new_tokens=self.max_new_tokens, do_sample=False, temperature=None, top_p=None, top_k=None,
            pad_token_id=self.pad_token_id, eos_token_id=sorted(self.eos_token_ids) or None,
            disable_compile=True,  # a static cache would make generate compile the model for every batch shape
        )
        kwargs.update(self.generate_kwargs)
        with torch.inference_mode():
            kwargs[_cache_kwarg(self.model)] = self._left_padded_cache(
                [self._prefill(p[:-1], prefix) for p in prompts], width - 1, room=kwargs["max_new_tokens"])
            out = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        new = out[:, width:].tolist()
        self.stats["prompts"] += len(prompts)
        self.stats["batches"] += 1
        self.stats["prompt_tokens"] += sum(len(p) for p in prompts)
        result = []
        for ids in new:
            cut = next((k for k, tok in enumerate(ids) if tok in self.eos_token_ids), len(ids))
            self.stats["generated_tokens"] += cut
            result.append(ids[:cut])
        return result

    def _new_cache(self):
        from transformers import DynamicCache

        return DynamicCache(config=self.model.config)

    def _prefill(self, ids: list[int], prefix: list[int]):
        """The KV cache of ``ids`` (batch of one), built on a copy of the prefix's cache when ``ids`` starts with it."""
        n = len(prefix)
        if n and len(ids) >= n and ids[:n] == prefix:
            cache = copy.deepcopy(self._prefix(prefix))
            self.stats["prefix_reused"] += 1
        else:
            cache, n = self._new_cache(), 0
        if len(ids) > n:
            self._forward(ids[n:], cache)
        return cache

    def _prefix(self, prefix: list[int]):
        if self._prefix_cache is None:
            self._prefix_cache = self._forward(prefix, self._new_cache())
            log.info("tracer.prefix_prefilled", tokens=len(prefix))
        return self._prefix_cache

    def _forward(self, ids: list[int], cache):
        """Runs ``ids`` after what ``cache`` holds (positions continue from its length) and returns the cache."""
        torch = self._torch
        tensor = torch.tensor([ids], dtype=torch.long, device=self.device)
        out = self.model(input_ids=tensor, use_cache=True, logits_to_keep=1, **{_cache_kwarg(self.model): cache})
        return getattr(out, "cache", None) or getattr(out, "past_key_values", None) or cache

    def _left_padded_cache(self, caches: list, length: int, *, room: int):
        """One batch cache of ``length`` positions from single-sequence caches, zeros on the left of shorter ones
        (the attention mask hides them). A static cache has ``room`` more positions for the decode steps, written
        in place; a dynamic one grows by concatenation (a copy of the whole cache per step)."""
        torch = self._torch
        if self.decode_cache == "static":
            from transformers import StaticCache

            merged = StaticCache(config=self.model.config, max_cache_len=length + room)
        else:
            merged = self._new_cache()
        for layer in range(len(caches[0].layers)):
            keys, values = [], []
            for cache in caches:
                k, v = cache.layers[layer].keys, cache.layers[layer].values
                pad = length - k.shape[-2]
                keys.append(torch.nn.functional.pad(k, (0, 0, pad, 0)))
                values.append(torch.nn.functional.pad(v, (0, 0, pad, 0)))
            merged.update(torch.cat(keys), torch.cat(values), layer)
        return merged


def _cache_kwarg(model: Any) -> str:
    """``cache`` in transformers >= 5.x's generate/forward, ``past_key_values`` before."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
