"""Stand-ins built from the tiny world, for smoke runs of recipes written for hub models and LLM judges.

* ``build_standin(family, root)``: a randomly initialised model of a transformers architecture family (hidden 32,
  2 layers), built from a scaled-down config with the world's character tokenizer and saved to a local folder, so
  ``load_policy`` reads it like any checkpoint. ``family_of(model)`` picks the family of a hub id (``FAMILIES``) or
  a local folder (its ``config.json``); an unknown model falls back to Llama with a note.
* ``reward`` / ``judge`` (import paths ``REWARD`` / ``JUDGE``): a reward function and a pairwise judge over the
  world's verifiable reward, for the scorers that would need a hub model or a user's module.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Any

from prefopt.world.judge import TEMPERATURE
from prefopt.world.tasks import reward as world_reward

REWARD = "prefopt.world.standin:reward"
JUDGE = "prefopt.world.standin:judge"
HIDDEN, LAYERS, HEADS, KV_HEADS, POSITIONS = 32, 2, 4, 2, 512
STANDIN_VERSION = 1  # bump when the stand-in configs change: the cached folders are keyed on it

# hub-id pattern (fnmatch, lower case) → transformers model_type; first match wins
FAMILIES: list[tuple[str, str]] = [
    ("meta-llama/*", "llama"), ("*llama*", "llama"), ("pku-alignment/alpaca-*", "llama"),
    ("mistralai/*", "mistral"), ("huggingfaceh4/zephyr-*", "mistral"), ("huggingfaceh4/mistral-*", "mistral"),
    ("*mistral*", "mistral"),
    ("qwen/qwen1.5*", "qwen2"), ("qwen/qwen2*", "qwen2"), ("qwen/*", "qwen2"), ("lmms-lab/*qwen2*", "qwen2"),
    ("google/gemma-2-*", "gemma2"), ("google/gemma*", "gemma"),
    ("microsoft/phi-3*", "phi3"), ("microsoft/phi-*", "phi"),
    ("openai-community/gpt2*", "gpt2"), ("gpt2*", "gpt2"),
    ("eleutherai/pythia*", "gpt_neox"), ("*pythia*", "gpt_neox"),
    ("eleutherai/gpt-j*", "gptj"), ("*gpt-j*", "gptj"), ("carperai/openai_summarize_tldr_sft*", "gptj"),
]


def _common(tok) -> dict[str, Any]:
    return {"vocab_size": len(tok), "pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id}


def _decoder(tok) -> dict[str, Any]:  # Llama-style names (llama, mistral, qwen2, gemma, phi, gpt_neox)
    return {**_common(tok), "hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN, "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS, "max_position_embeddings": POSITIONS}


# model_type → scaled-down config kwargs; every family is built through AutoConfig.for_model
STANDIN_CONFIGS = {
    "llama": lambda t: {**_decoder(t), "num_key_value_heads": KV_HEADS, "tie_word_embeddings": True},
    "mistral": lambda t: {**_decoder(t), "num_key_value_heads": KV_HEADS, "sliding_window": None},
    "qwen2": lambda t: {**_decoder(t), "num_key_value_heads": KV_HEADS, "tie_word_embeddings": True},
    "gemma": lambda t: {**_decoder(t), "num_key_value_heads": KV_HEADS, "head_dim": HIDDEN // HEADS},
    "gemma2": lambda t: {**_decoder(t), "num_key_value_heads": KV_HEADS, "head_dim": HIDDEN // HEADS,
                         "query_pre_attn_scalar": HIDDEN // HEADS, "sliding_window": 64},
    "phi": lambda t: _decoder(t),
    "phi3": lambda t: {**_decoder(t), "num_key_value_heads": KV_HEADS},
    "gpt_neox": lambda t: {**_decoder(t), "rotary_pct": 0.5},
    "gpt2": lambda t: {**_common(t), "n_embd": HIDDEN, "n_inner": 2 * HIDDEN, "n_layer": LAYERS, "n_head": HEADS,
                       "n_positions": POSITIONS},
    "gptj": lambda t: {**_common(t), "n_embd": HIDDEN, "n_inner": 2 * HIDDEN, "n_layer": LAYERS, "n_head": HEADS,
                       "n_positions": POSITIONS, "rotary_dim": HIDDEN // HEADS // 2},
}


def family_of(model: str) -> tuple[str, str | None]:
    """(transformers model_type of the stand-in, a note when the family was guessed)."""
    config = Path(model) / "config.json"
    if config.exists():  # a local folder: its own model_type
        model_type = json.loads(config.read_text()).get("model_type")
        if model_type in STANDIN_CONFIGS:
            return model_type, None
        return "llama", f"model_type {model_type!r} of {model} has no stand-in; using Llama"
    name = model.lower()
    for pattern, family in FAMILIES:
        if fnmatch.fnmatch(name, pattern):
            return family, None
    return "llama", f"no known architecture family for {model!r}; using a Llama stand-in"


def build_standin(family: str, root: Path, seed: int = 0) -> Path:
    """A randomly initialised ``family`` model (``seed``) with the world's tokenizer, saved once under ``root``.

    The folder name is deterministic and it appears atomically (a rename), so processes of one ``accelerate
    launch`` that build it together agree on it.
    """
    final = Path(root) / f"standin-{family}-v{STANDIN_VERSION}{f'-seed{seed}' if seed else ''}"
    if (final / "DONE").exists():
        return final
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from prefopt.world.tokenizer import build_tokenizer

    tok = build_tokenizer()
    tok.model_max_length = POSITIONS  # the world's 64 is too short for reward-augmented prompts
    config = AutoConfig.for_model(family, **STANDIN_CONFIGS[family](tok))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "DONE").touch()
    try:
        os.rename(tmp, final)
    except OSError:  # another process won the race with an identical folder
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def reward(prompt, response: str) -> float:
    """The world's graded reward plus a tie-breaker in [0, 0.01) from a hash of the response.

    A random stand-in's samples are all far from the answer, so the world's reward alone would tie most of them and
    leave no preference to train on; the tie-breaker separates distinct responses and keeps the run deterministic.
    """
    return world_reward(prompt, response) + (zlib.crc32(response.encode()) % 1000) / 100_000


def judge(prompt, a: str, b: str) -> float:
    """P(a ≻ b) = σ((r(a) − r(b)) / 0.1) over the stand-in ``reward``: the world's judge, with ties broken."""
    return 1.0 / (1.0 + math.exp(-(reward(prompt, a) - reward(prompt, b)) / TEMPERATURE))
