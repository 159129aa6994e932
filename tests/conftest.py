"""Shared fixtures: a character-level tokenizer and a tiny Llama built from a config (no hub access)."""

from __future__ import annotations

import socket
import string

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% if m['role'] == 'assistant' %}{{ eos_token }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
)


def make_tokenizer(chat: bool = False) -> PreTrainedTokenizerFast:
    chars = list(string.ascii_lowercase + string.digits + " .,:<>")
    vocab = {"<pad>": 0, "<bos>": 1, "<eos>": 2, **{c: i + 3 for i, c in enumerate(chars)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    out = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>")
    if chat:
        out.chat_template = CHAT_TEMPLATE
    return out


def make_model(seed: int = 0, vocab_size: int = 48) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return LlamaForCausalLM(config)


@pytest.fixture
def tokenizer():
    return make_tokenizer()


@pytest.fixture
def chat_tokenizer():
    return make_tokenizer(chat=True)


@pytest.fixture
def tiny_model():
    return make_model()


@pytest.fixture
def model_dir(tmp_path):
    """The tiny model and the character tokenizer saved as a local HF folder (what `model=PATH` loads)."""
    path = tmp_path / "model"
    make_model().save_pretrained(path)
    make_tokenizer().save_pretrained(path)
    return path


def accelerate_launch() -> list[str]:
    """``accelerate launch`` of 2 CPU processes (gloo) on a free port; append ``-m module`` and its arguments."""
    import shutil

    return [shutil.which("accelerate"), "launch", "--multi_gpu", "--main_process_port", str(free_port()),
            "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]


def free_port() -> int:
    """A free TCP port for a 2-process ``accelerate launch`` (the default 29500 may be taken by another run)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
