"""GRPO + LoRA on CPU with a tiny random Qwen3 and a tokenizer built here (no downloads)."""

from __future__ import annotations

import math

import pytest

from agenttrace.models import Label, LabelledTrajectory, Outcome, Step, Trajectory
from agenttrace.data.train import TracerReward, build_dataset, parse_strict, score_completion

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("peft")

TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
TARGETS = ["<think> the number was misread </think> <answer> Calculator | 2 </answer>",
           "<think> the plan </think> <answer> Planner | 0 </answer>",
           "<think> the facts </think> <answer> Researcher | 1 </answer>",
           "<think> misread </think> <answer> Calculator | 3 </answer>"]


def test_reward_format_gate_and_terms():
    label = Label(agent="Calculator", step=2)
    assert score_completion("<think>x</think><answer>Calculator | 2</answer>", label) == 1.0
    assert score_completion("<think>x</think>\n<answer>Planner | 2</answer>", label) == 0.5
    assert math.isclose(score_completion("<think>x</think><answer>Calculator | 3</answer>", label),
                        0.5 + 0.5 * math.exp(-0.5))
    for bad in ("<answer>Calculator | 2</answer>", "<think>x</think><answer>Calculator</answer>",
                "Calculator | 2", "<think>x</think><answer>Calculator | 2</answer> trailing", ""):
        assert score_completion(bad, label) == 0.0, bad
    assert parse_strict("<think>a</think><answer>Coder | Step 4</answer>") == ("Coder", 4)
    reward = TracerReward()
    out = reward(prompts=[None, None], completions=[[{"role": "assistant", "content": TARGETS[0]}], "nope"],
                 label_agent=["Calculator", "Calculator"], label_step=[2, 2])
    assert out == [1.0, 0.0] and reward.calls == 1 and reward.scored == 2


def _items(n: int = 4) -> list[LabelledTrajectory]:
    out = []
    for i in range(n):
        steps = [Step(index=0, agent="Planner", content="Plan: multiply then subtract."),
                 Step(index=1, agent="Researcher", content="Facts: shelves 3, boxes 48, shipped 17."),
                 Step(index=2, agent="Calculator", content=f"3 * 46 - 17 = {121 + i}"),
                 Step(index=3, agent="Writer", content=f"Answer: {121 + i}")]
        traj = Trajectory(run_id=f"t{i}", task="How many boxes are left?", expected="127", steps=steps,
                          outcome=Outcome.FAILURE)
        out.append(LabelledTrajectory(id=f"t{i}", subset="toy", trajectory=traj,
                                      label=Label(agent="Calculator", step=2)))
    return out


def _tokenizer(tmp_path, corpus):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    specials = ["[UNK]", "[PAD]", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(specials)
    tok.add_tokens(["<think>", "</think>", "<answer>", "</answer>"])
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=specials))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   eos_token="<|im_end|>", bos_token=None)
    fast.chat_template = TEMPLATE
    fast.save_pretrained(tmp_path / "tok")
    return AutoTokenizer.from_pretrained(tmp_path / "tok")


def _warm_start(model, tokenizer, prompts):
    """A few supervised steps so the random policy emits the answer format with varied verdicts: GRPO then
    sees reward differences within a group (a random policy scores 0 everywhere and learns nothing)."""
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for it in range(60):
        prompt = prompts[it % len(prompts)]
        target = TARGETS[it % len(TARGETS)]
        p_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=False)
        if isinstance(p_ids, dict) or hasattr(p_ids, "input_ids"):
            p_ids = p_ids["input_ids"]
        t_ids = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = torch.tensor([list(p_ids) + t_ids])
        labels = torch.tensor([[-100] * len(p_ids) + t_ids])
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return loss.item()


def test_grpo_lora_steps_on_cpu(tmp_path):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from agenttrace.data.train import train

    items = _items()
    plain = build_dataset(items, max_prompt_tokens=None)
    corpus = [m["content"] for row in plain["prompt"] for m in row] + TARGETS
    tokenizer = _tokenizer(tmp_path, corpus)
    assert tokenizer.unk_token_id not in tokenizer(TARGETS[0], add_special_tokens=False)["input_ids"]
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(Qwen3Config(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                         num_key_value_heads=2, head_dim=16, intermediate_size=128,
                                         vocab_size=len(tokenizer), max_position_embeddings=2048,
                                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                                         bos_token_id=None, tie_word_embeddings=False))
    _warm_start(model, tokenizer, plain["prompt"])
    reward = TracerReward()
    trainer = train(items, model, tokenizer=tokenizer, output_dir=tmp_path / "out", max_prompt_tokens=None,
                    reward=reward, save=True, max_steps=3, learning_rate=5e-3, per_device_train_batch_size=4,
                    num_generations=4, gradient_accumulation_steps=1, max_completion_length=16,
                    gradient_checkpointing=True)
    assert trainer.state.global_step == 3
    assert reward.calls >= 3 and reward.scored >= 12
    assert reward.positive > 0  # the warm-started policy produced well-formed verdicts that earned reward
    lora_b = {n: p for n, p in trainer.model.named_parameters() if "lora_B" in n}
    assert lora_b, "no LoRA parameters in the trained model"
    # lora_B starts at zero: any non-zero entry is a LoRA update made by GRPO
    assert any(float(p.detach().abs().sum()) > 0 for p in lora_b.values())
    base_trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad and "lora_" not in n]
    assert base_trainable == []
    assert (tmp_path / "out" / "adapter_config.json").exists()
