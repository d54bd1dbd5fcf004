"""The local tracer attributor end to end on CPU: a tiny random Qwen3 and a tokenizer built in-test.

Nothing is downloaded: the tokenizer is a byte-level BPE trained here on the prompt
text, wrapped in PreTrainedTokenizerFast with a small chat template, and saved next
to a random-weight Qwen3ForCausalLM, so the real ``from_pretrained`` loading runs.

``AGENTTRACE_TEST_DEVICE=cuda`` runs the same tests on a GPU (``bench/device_check.sh`` does).
"""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from agenttrace.attribution import get_attributor  # noqa: E402
from agenttrace.attribution.prompt import CLOSING, INSTRUCTIONS  # noqa: E402
from agenttrace.attribution.tracer import TracerAttributor  # noqa: E402
from agenttrace.models import Attribution, Outcome, Step, Trajectory  # noqa: E402

DEVICE = os.environ.get("AGENTTRACE_TEST_DEVICE", "cpu")

TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_tracer(tmp_path_factory) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    path = tmp_path_factory.mktemp("tiny-tracer")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<pad>", "<eos>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = [INSTRUCTIONS, CLOSING, "Step 1 - Coder (assistant): <think> </think><answer>Coder | 2</answer> Task:"] * 3
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")
    fast.chat_template = TEMPLATE
    fast.save_pretrained(path)
    config = Qwen3Config(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128,
        head_dim=16, vocab_size=len(fast), max_position_embeddings=4096, tie_word_embeddings=True,
        pad_token_id=fast.pad_token_id, eos_token_id=fast.eos_token_id, bos_token_id=None,
        initializer_range=0.5,  # large random weights: outputs depend on the prompt, so equality tests mean something
    )
    torch.manual_seed(0)
    Qwen3ForCausalLM(config).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def tracer(tiny_tracer) -> TracerAttributor:
    return TracerAttributor(tiny_tracer, device=DEVICE, dtype="float32", max_new_tokens=10, max_prompt_tokens=2048,
                            batch_size=2)


def _run(k: int) -> Trajectory:
    agents = ["Planner", "Coder", "Executor"]
    return Trajectory(
        run_id=f"run-{k}", task="Add the numbers. " * (k + 1), expected="42", outcome=Outcome.FAILURE,
        steps=[Step(index=i, agent=agents[i % 3], content=f"step {i} says hello " * (i + 2 * k + 1)) for i in range(4)],
    )


def test_real_loading_and_registry(tiny_tracer):
    att = get_attributor("tracer", model=tiny_tracer, device=DEVICE, max_new_tokens=2)
    assert isinstance(att, TracerAttributor)
    assert att.device.type == DEVICE and att.tokenizer.chat_template
    assert att.model.config.model_type == "qwen3"


def test_end_to_end_garbage_output_is_an_explicit_failure(tracer):
    a = tracer.attribute(_run(0))
    assert isinstance(a, Attribution)
    assert a.run_id == "run-0" and a.attributor == "tracer"
    # random weights never emit a well-formed answer: explicit failure, no guess
    assert a.agent is None and a.step is None
    assert a.reason.startswith("unparseable tracer output")


def test_batch_of_three_in_input_order(tracer):
    runs = [_run(2), _run(0), _run(1)]  # not sorted by length: the attributor sorts, then restores order
    before = tracer.stats["batches"]
    out = tracer.attribute_batch(runs)
    assert [a.run_id for a in out] == ["run-2", "run-0", "run-1"]
    assert all(isinstance(a, Attribution) for a in out)
    assert tracer.stats["batches"] - before == 2  # batch_size=2: two generate calls for three runs


def test_prefix_reuse_gives_the_same_tokens_as_without(tracer):
    prompts = [tracer.build(_run(k))[1] for k in range(3)]
    prefix = tracer.shared_prefix()
    assert len(prefix) > 50 and all(p[:len(prefix)] == prefix for p in prompts)
    assert len({len(p) for p in prompts}) == 3  # different lengths: padding is exercised
    reused_before = tracer.stats["prefix_reused"]
    with_reuse = tracer.generate_tokens(prompts, reuse_prefix=True)
    assert tracer.stats["prefix_reused"] - reused_before == 3
    without = tracer.generate_tokens(prompts, reuse_prefix=False)
    one_by_one = [tracer.generate_tokens([p], reuse_prefix=False)[0] for p in prompts]
    dynamic = TracerAttributor(tracer.model, tokenizer=tracer.tokenizer, device=DEVICE, decode_cache="dynamic",
                               max_new_tokens=tracer.max_new_tokens).generate_tokens(prompts)
    assert with_reuse == without == one_by_one == dynamic == [_plain_generate(tracer, p) for p in prompts]
    assert len({tuple(t) for t in without}) > 1  # the outputs really depend on the prompt
    # and the reused cache is really what the model reads: spoil it and the output changes
    saved = tracer._prefix_cache
    spoiled = __import__("copy").deepcopy(saved)
    for layer in spoiled.layers:
        layer.keys.mul_(0).add_(3.0)
        layer.values.mul_(-1)
    tracer._prefix_cache = spoiled
    try:
        assert tracer.generate_tokens(prompts, reuse_prefix=True) != with_reuse
    finally:
        tracer._prefix_cache = saved


def _plain_generate(tracer: TracerAttributor, prompt: list[int]) -> list[int]:
    """``model.generate`` on one unpadded prompt, no cache handed in: the reference the tracer must match."""
    ids = torch.tensor([prompt], device=tracer.device)
    with torch.inference_mode():
        out = tracer.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                    max_new_tokens=tracer.max_new_tokens, pad_token_id=tracer.pad_token_id)
    new = out[0, ids.shape[1]:].tolist()
    return new[:next((k for k, t in enumerate(new) if t in tracer.eos_token_ids), len(new))]


def _forcing(tokenizer, text: str):
    """prefix_allowed_tokens_fn that makes the model emit ``text`` then end-of-sequence."""
    forced = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assistant = tokenizer.convert_tokens_to_ids("<|assistant|>")

    def allowed(batch_id, input_ids):
        ids = input_ids.tolist()
        start = len(ids) - ids[::-1].index(assistant)
        k = len(ids) - start
        return [forced[min(k, len(forced) - 1)]]

    return allowed


def test_forced_answer_is_parsed_into_the_attribution(tiny_tracer):
    tok = transformers.AutoTokenizer.from_pretrained(tiny_tracer)
    att = TracerAttributor(
        tiny_tracer, tokenizer=tok, device=DEVICE, max_new_tokens=40, batch_size=3,
        generate_kwargs={"prefix_allowed_tokens_fn": _forcing(tok, "<think>the coder erred</think><answer>Coder | 1</answer>")},
    )
    out = att.attribute_batch([_run(0), _run(1), _run(2)])
    assert [(a.run_id, a.agent, a.step) for a in out] == [("run-0", "Coder", 1), ("run-1", "Coder", 1), ("run-2", "Coder", 1)]
    assert out[0].reason == "the coder erred"
    assert att.stats["prefix_reused"] == 3


def test_forced_answer_naming_an_unknown_agent_is_not_guessed(tiny_tracer):
    tok = transformers.AutoTokenizer.from_pretrained(tiny_tracer)
    att = TracerAttributor(tiny_tracer, tokenizer=tok, device=DEVICE, max_new_tokens=40,
                           generate_kwargs={"prefix_allowed_tokens_fn": _forcing(tok, "<answer>Coder | 9</answer>")})
    a = att.attribute(_run(0))
    assert (a.agent, a.step) == (None, None) and "not a step of the run" in a.reason


def test_prompt_budget_is_respected_with_the_template(tiny_tracer):
    att = TracerAttributor(tiny_tracer, device=DEVICE, max_new_tokens=2, max_prompt_tokens=600)
    long_run = Trajectory(run_id="long", task="t", steps=[
        Step(index=i, agent="Coder", content="error: boom " * 400) for i in range(3)])
    fitted, ids = att.build(long_run)
    assert len(ids) <= 600 and fitted.truncated
    text = att.tokenizer.decode(ids)
    for i in range(3):
        assert f"Step {i} - Coder (assistant):" in text


def test_bf16_end_to_end_with_the_prefix_cache_in_bf16(tiny_tracer):
    tok = transformers.AutoTokenizer.from_pretrained(tiny_tracer)
    att = TracerAttributor(tiny_tracer, tokenizer=tok, device=DEVICE, dtype="bfloat16", max_new_tokens=40, batch_size=2,
                           generate_kwargs={"prefix_allowed_tokens_fn": _forcing(tok, "<answer>Executor | 3</answer>")})
    assert att.model.dtype == torch.bfloat16
    out = att.attribute_batch([_run(1), _run(0)])
    assert [(a.run_id, a.agent, a.step) for a in out] == [("run-1", "Executor", 3), ("run-0", "Executor", 3)]
    assert att.stats["prefix_reused"] == 2
    assert {layer.keys.dtype for layer in att._prefix_cache.layers} == {torch.bfloat16}
    assert {layer.keys.device.type for layer in att._prefix_cache.layers} == {att.device.type}


def test_flash_attention_request_falls_back_to_sdpa_where_it_cannot_run(tiny_tracer):
    import importlib.util

    att = TracerAttributor(tiny_tracer, device=DEVICE, attn_implementation="flash_attention_2", max_new_tokens=2)
    usable = DEVICE == "cuda" and importlib.util.find_spec("flash_attn") is not None
    assert att.attn_implementation == ("flash_attention_2" if usable else "sdpa")
    assert att.model.config._attn_implementation == att.attn_implementation
    assert att.attribute(_run(0)).run_id == "run-0"
