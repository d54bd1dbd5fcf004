"""Tracer attribution throughput: plain generate vs the batched, prefix-cached TracerAttributor vs the roofline.

    python bench/attribution.py                 # Qwen3-8B shape, bf16, random weights (needs a GPU)
    python bench/attribution.py --tiny --n 6    # CPU smoke run with a tiny model: figures NOT meaningful

Prompt lengths: the Who&When Hand-Crafted runs in /work/shared/data/whowhen/Hand-Crafted/*.json
(or --data), each rendered with agenttrace's AgenTracer prompt and counted with the chars/4
estimate (no Qwen tokenizer is available offline), clipped to --max-prompt-tokens. Where the
files are not (the GPU machine), the same lengths from bench/data/whowhen_hand_crafted_lengths.json
(written by --save-lengths); without either, a synthetic log-normal distribution (median 6k
tokens, sigma 0.9, clipped to [1k, max]), stated in the output. Every prompt starts with the same instruction block (its token count is
the instruction text's estimate), so the prefix cache has something to reuse, as in real use.

Output is fixed at --new-tokens (default 64) via min_new_tokens = max_new_tokens.

(a) plain ``model.generate`` one trajectory at a time, (b) ``TracerAttributor.generate_batches``
(length-sorted batches of --batch-size: each prompt prefilled alone from the instruction prefix's
cache, prefilled once, then one batched decode in a static cache; unless --no-ablations also without
prefix reuse and with a dynamic decode cache), (c) the roofline:
prefill FLOPs (2 * params * tokens + causal attention 2 * layers * heads * head_dim * L^2) at the
GPU's peak dense bf16 FLOP/s, plus decode bytes (the weights once per decode step for the whole
batch + each sequence's KV cache per token) at its peak memory bandwidth. Ratios are
measured / roofline (1.0 = at the roofline).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# name fragment -> (peak dense bf16 FLOP/s, memory bandwidth B/s)
PEAKS = {
    "H200": (989e12, 4.8e12),
    "H100": (989e12, 3.35e12),
    "A100": (312e12, 2.039e12),
}
QWEN3_8B = dict(hidden_size=4096, num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8,
                intermediate_size=12288, vocab_size=151936, head_dim=128)
LENGTHS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "whowhen_hand_crafted_lengths.json")
TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=128, vocab_size=1024, head_dim=16)


def whowhen_lengths(data: str, max_tokens: int) -> tuple[list[int], str]:
    from agenttrace.attribution.prompt import build_prompt
    from agenttrace.models import Step, Trajectory

    files = sorted(glob.glob(os.path.join(data, "*.json")))
    lengths = []
    for f in files:
        with open(f) as fh:
            d = json.load(fh)
        hist = d.get("history") or []
        steps = [Step(index=i, agent=str(h.get("name") or h.get("role") or "agent"), role=str(h.get("role") or ""),
                      content=str(h.get("content") or "")) for i, h in enumerate(hist)]
        t = Trajectory(run_id=os.path.basename(f), task=d.get("question"), expected=d.get("ground_truth"), steps=steps)
        lengths.append(min(build_prompt(t).tokens, max_tokens))
    return lengths, f"Who&When Hand-Crafted ({len(files)} files in {data}), chars/4 estimate, clipped to {max_tokens}"


def saved_lengths(path: str, max_tokens: int) -> tuple[list[int], str]:
    with open(path) as fh:
        saved = json.load(fh)
    return [min(L, max_tokens) for L in saved["lengths"]], f"{saved['source']} (saved in {path}), clipped to {max_tokens}"


def synthetic_lengths(n: int, max_tokens: int) -> tuple[list[int], str]:
    rng = random.Random(0)
    lengths = [int(min(max(rng.lognormvariate(math.log(6000), 0.9), 1000), max_tokens)) for _ in range(n)]
    return lengths, f"SYNTHETIC log-normal (median 6000, sigma 0.9, clipped to [1000, {max_tokens}])"


def roofline_seconds(lengths: list[int], batch: int, new: int, n_params: int, cfg: dict, peak) -> float:
    """Ideal time to run all prompts in length-sorted batches of ``batch``."""
    flops_s, bw = peak
    layers, heads, hd, kvh = cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["head_dim"], cfg["num_key_value_heads"]
    kv_per_token = 2 * layers * kvh * hd * 2  # K and V, bf16
    total = 0.0
    order = sorted(lengths)
    for s in range(0, len(order), batch):
        chunk = order[s:s + batch]
        prefill = sum(2 * n_params * L + 2 * layers * heads * hd * L * L for L in chunk)
        decode_bytes = new * (2 * n_params + sum(kv_per_token * (L + new / 2) for L in chunk))
        decode_flops = new * sum(2 * n_params + 4 * layers * heads * hd * (L + new / 2) for L in chunk)
        total += prefill / flops_s + max(decode_bytes / bw, decode_flops / flops_s)
    return total


def _qwen3_params(c: dict) -> int:
    h, L, hd = c["hidden_size"], c["num_hidden_layers"], c["head_dim"]
    attn = h * hd * (c["num_attention_heads"] * 2 + c["num_key_value_heads"] * 2) + 2 * hd
    mlp = 3 * h * c["intermediate_size"]
    return L * (attn + mlp + 2 * h) + 2 * c["vocab_size"] * h + h


class _IdTokenizer:
    """The bench feeds token ids directly; the attributor only needs pad/eos from its tokenizer."""

    pad_token_id = 0
    eos_token_id = None
    eos_token = None
    chat_template = None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny model (forced on CPU)")
    ap.add_argument("--n", type=int, default=None, help="number of trajectories (default: all files / 29)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--max-prompt-tokens", type=int, default=None, help="default 32768, tiny: 1024")
    ap.add_argument("--data", default="/work/shared/data/whowhen/Hand-Crafted")
    ap.add_argument("--lengths", default=LENGTHS_FILE, help="saved prompt lengths, used when --data has no files")
    ap.add_argument("--save-lengths", metavar="PATH", help="write the --data prompt lengths to PATH and exit")
    ap.add_argument("--skip-plain", action="store_true")
    ap.add_argument("--no-ablations", action="store_true", help="only the default tracer path for (b)")
    args = ap.parse_args(argv)
    if args.save_lengths:
        lengths, _ = whowhen_lengths(args.data, 10**9)
        with open(args.save_lengths, "w") as fh:
            json.dump({"source": f"Who&When Hand-Crafted dev half ({len(lengths)} runs), AgenTracer prompt, chars/4 "
                                 "estimate, unclipped", "lengths": lengths}, fh)
        print(f"wrote {len(lengths)} lengths to {args.save_lengths}")
        return 0

    import torch
    from rich.console import Console
    from rich.progress import Progress
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from agenttrace.attribution.prompt import INSTRUCTIONS, estimate_tokens
    from agenttrace.attribution.tracer import TracerAttributor

    con = Console(width=120)
    gpu = torch.cuda.is_available()
    tiny = args.tiny or not gpu
    if tiny:
        con.print("[bold red]" + "!" * 78)
        con.print("[bold red]NO GPU / --tiny: running a TINY random model on CPU. These figures are NOT meaningful;")
        con.print("[bold red]they only show that the bench runs. Run on an H100/H200/A100 for real numbers.")
        con.print("[bold red]" + "!" * 78)
    device = torch.device("cuda" if gpu and not args.tiny else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    cfg_kw = TINY if tiny else QWEN3_8B
    max_prompt = args.max_prompt_tokens or 32768

    if glob.glob(os.path.join(args.data, "*.json")):
        lengths, source = whowhen_lengths(args.data, max_prompt)
    elif os.path.exists(args.lengths):
        lengths, source = saved_lengths(args.lengths, max_prompt)
    else:
        lengths, source = synthetic_lengths(args.n or 29, max_prompt)
    if args.n:
        lengths = (lengths * math.ceil(args.n / len(lengths)))[:args.n]
    real_lengths = list(lengths)
    if tiny:  # keep the CPU run short: scale lengths down 32x
        lengths = [max(64, L // 32) for L in lengths]
        source += ", scaled down 32x for the tiny run"
    prefix_len = min(estimate_tokens(INSTRUCTIONS), min(lengths) - 1)

    config = Qwen3Config(**cfg_kw, max_position_embeddings=max(40960, max(lengths) + args.new_tokens + 8),
                         pad_token_id=0, bos_token_id=None, eos_token_id=None, tie_word_embeddings=False)
    t0 = time.perf_counter()
    with torch.device(device):
        torch.manual_seed(0)
        model = Qwen3ForCausalLM(config).to(dtype).eval()
    n_params = sum(p.numel() for p in model.parameters())
    con.print(f"model: Qwen3 {'TINY' if tiny else '8B-shape'} random weights, {n_params / 1e9:.3f}B params, "
              f"{dtype}, {device} (built in {time.perf_counter() - t0:.1f}s)")
    con.print(f"prompts: {len(lengths)} from {source}; tokens min/median/max = "
              f"{min(lengths)}/{int(statistics.median(lengths))}/{max(lengths)}; shared instruction prefix "
              f"{prefix_len} tokens; output fixed at {args.new_tokens} tokens")

    g = torch.Generator().manual_seed(1)
    prefix = torch.randint(1, config.vocab_size, (prefix_len,), generator=g).tolist()
    prompts = [prefix + torch.randint(1, config.vocab_size, (L - prefix_len,), generator=g).tolist() for L in lengths]
    fixed = {"min_new_tokens": args.new_tokens}

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    with torch.inference_mode():  # warm-up (kernels, allocator) outside the timings
        w = torch.tensor([prompts[0][:64]], device=device)
        model.generate(input_ids=w, attention_mask=torch.ones_like(w), do_sample=False, max_new_tokens=4, pad_token_id=0)
    results = {}
    if not args.skip_plain:
        with Progress(console=con) as prog:
            task = prog.add_task("(a) plain generate, one at a time", total=len(prompts))
            sync()
            t0 = time.perf_counter()
            for p in prompts:
                ids = torch.tensor([p], device=device)
                with torch.inference_mode():
                    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                         max_new_tokens=args.new_tokens, pad_token_id=0, **fixed)
                assert out.shape[1] - ids.shape[1] == args.new_tokens
                prog.advance(task)
            sync()
            results["plain"] = time.perf_counter() - t0

    variants = {f"(b) tracer batched, bs={args.batch_size}": {}}
    if not args.no_ablations:
        variants["    same, no prefix reuse"] = {"reuse_prefix": False}
        variants["    same, dynamic decode cache"] = {"decode_cache": "dynamic"}
    for label, options in variants.items():
        att = TracerAttributor(model, tokenizer=_IdTokenizer(), device=str(device), max_new_tokens=args.new_tokens,
                               batch_size=args.batch_size, generate_kwargs=fixed, **options)
        att._prefix_ids = prefix  # the instruction block's tokens (the bench's prompts are token ids, not text)
        with Progress(console=con) as prog:
            task = prog.add_task(label.strip(), total=len(prompts))
            sync()
            t0 = time.perf_counter()
            outs = att.generate_batches(prompts, progress=lambda k: prog.advance(task, k))
            sync()
            results[label] = time.perf_counter() - t0
        assert all(len(o) == args.new_tokens for o in outs)
        assert att.stats["prefix_reused"] == (len(prompts) if att.reuse_prefix else 0)

    name = torch.cuda.get_device_name(0) if gpu else "cpu"
    peak = next((v for k, v in PEAKS.items() if k in name.upper()), None)
    n = len(prompts)
    con.print()
    con.print(f"device: {name}" + ("" if peak else "  (no peak numbers for this device: roofline skipped)"))
    roof1 = roofline_seconds(lengths, 1, args.new_tokens, n_params, cfg_kw, peak) if peak else None
    roofb = roofline_seconds(lengths, args.batch_size, args.new_tokens, n_params, cfg_kw, peak) if peak else None
    rows = []
    if "plain" in results:
        rows.append(("(a) plain generate, bs=1", results["plain"], roof1))
    rows += [(label, results[label], roofb) for label in variants]
    con.print(f"{'path':34} {'s/traj':>9} {'traj/hour':>10} {'roofline s/traj':>16} {'measured/roofline':>18}")
    for label, secs, roof in rows:
        ratio = f"{secs / roof:.2f}x" if roof else "n/a"
        rs = f"{roof / n:.3f}" if roof else "n/a"
        con.print(f"{label:34} {secs / n:9.3f} {3600 * n / secs:10.1f} {rs:>16} {ratio:>18}")
    if "plain" in results:
        for label in variants:
            con.print(f"speed-up over (a): {results['plain'] / results[label]:.2f}x  {label.strip()}")
    ref = PEAKS["H200"]
    params_8b = _qwen3_params(QWEN3_8B)
    for bs in (1, args.batch_size):
        r = roofline_seconds(real_lengths, bs, args.new_tokens, params_8b, QWEN3_8B, ref)
        con.print(f"reference roofline, Qwen3-8B shape ({params_8b / 1e9:.2f}B) on H200 for these {n} prompts at their "
                  f"real lengths, bs={bs}: {r / n:.3f} s/traj, {3600 * n / r:.0f} traj/hour")
    if tiny:
        con.print("[bold red]REMINDER: tiny CPU model - the figures above are NOT meaningful.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
