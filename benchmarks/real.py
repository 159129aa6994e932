"""``--model`` for the benchmarks: a real model in place of the synthetic Llama.

    python -m benchmarks.trainer --model smollm2-135m
    python -m benchmarks.listwise --model smollm2-135m --k 8 --prompt 256 --no-trl
    python -m benchmarks.generation --model smollm2-135m

NAME is a world's model (``smollm2-135m``: fetched into prefopt's cache on first use, ``prefopt models fetch``), a
local folder or an HF id. Its own tokenizer and vocabulary replace the synthetic ones; text for the trainer's pairs
is drawn from the tokenizer's own one-token words, so a word is a token and the requested lengths hold.
"""

from __future__ import annotations

import random

import torch


def resolve(name: str) -> str:
    """A world's model name to its local folder (fetching it on first use); anything else as given."""
    from prefopt.world.worlds import WORLDS, model_folder

    return model_folder(WORLDS[name]) if name in WORLDS else name


def load_model(name: str):
    """The model in fp32 (bf16 on CUDA, as the Trainer's mixed precision would compute), on the benchmark's device."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(resolve(name))
    return model.to("cuda" if torch.cuda.is_available() else "cpu")


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve(name))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def one_token_words(tokenizer) -> list[str]:
    """Words (with their leading space) that the tokenizer encodes as exactly one token, in vocabulary order."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    words = [tokenizer.convert_tokens_to_string([t]) for t, _ in vocab[:20000]]
    words = [w for w in words if w.startswith(" ") and w[1:].isalpha() and len(w) > 2]
    return [w for w in words if len(tokenizer(w, add_special_tokens=False)["input_ids"]) == 1]


def text_pairs(tokenizer, n: int, prompt_len: int, response_len: int, seed: int = 0) -> list[dict]:
    """``n`` TRL pairs of real-word text: prompts of prompt_len/2..prompt_len words, responses of
    response_len/2..response_len words (a word is one token, though BPE may merge a few across word boundaries)."""
    rng, words = random.Random(seed), one_token_words(tokenizer)
    text = lambda k: "".join(rng.choice(words) for _ in range(k))
    length = lambda m: rng.randint(m // 2, m)
    return [{"prompt": text(length(prompt_len)), "chosen": text(length(response_len)),
             "rejected": text(length(response_len))} for _ in range(n)]
