"""The tiny world's character-level tokenizer: vocabulary, chat template, save/load round trip, prefix property."""

from __future__ import annotations

import random

import pytest
from transformers import AutoTokenizer

from prefopt.world.tasks import make_prompts, solve
from prefopt.world.tokenizer import CHARACTERS, build_tokenizer
from prefopt.world.warmup import DemoEncoder


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def chat(tok, prompt, response=None, **kwargs):
    messages = [{"role": "user", "content": prompt}]
    if response is not None:
        messages.append({"role": "assistant", "content": response})
    return tok.apply_chat_template(messages, tokenize=False, **kwargs)


def test_vocabulary_and_special_tokens(tok):
    assert 40 <= len(tok) <= 60
    assert len({tok.pad_token_id, tok.bos_token_id, tok.eos_token_id}) == 3  # pad distinct from eos
    ids = tok("sort 312", add_special_tokens=True)["input_ids"]
    assert len(ids) == 8 and tok.unk_token_id not in ids  # one token per character, no BOS added
    assert tok.decode(ids) == "sort 312"
    assert tok("A\n")["input_ids"] == [tok.unk_token_id] * 2  # outside the alphabet


def test_padding_side_is_settable():
    assert build_tokenizer().padding_side == "left"
    right = build_tokenizer(padding_side="right")
    batch = right(["ab", "abcd"], padding=True)["input_ids"]
    assert batch[0][-2:] == [right.pad_token_id] * 2


def test_chat_template_renders_turns_and_generation_prompt(tok):
    assert chat(tok, "sort 31", add_generation_prompt=True) == "<|bos|><|user|>sort 31<|assistant|>"
    assert chat(tok, "sort 31", "13") == "<|bos|><|user|>sort 31<|assistant|>13<|eos|>"
    ids = tok.apply_chat_template([{"role": "user", "content": "rev ab"}], add_generation_prompt=True,
                                  return_dict=False)
    assert tok.convert_ids_to_tokens(ids)[:2] == ["<|bos|>", "<|user|>"]
    assert ids[-1] == tok.convert_tokens_to_ids("<|assistant|>")


def test_decode_skips_special_tokens(tok):
    ids = tok(chat(tok, "rev abc", "cba"), add_special_tokens=False)["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == "rev abccba"


def test_save_and_load_round_trip(tok, tmp_path):
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = chat(tok, "next xyz", "yza")
    assert chat(loaded, "next xyz", "yza") == text
    assert loaded(text, add_special_tokens=False)["input_ids"] == tok(text, add_special_tokens=False)["input_ids"]
    assert (loaded.pad_token_id, loaded.eos_token_id, loaded.padding_side) == (0, 2, "left")


def test_prompt_tokens_are_a_prefix_of_prompt_plus_response(tok):
    rng = random.Random(0)
    for prompt in make_prompts(50, seed=3):
        response = "".join(rng.choice(CHARACTERS) for _ in range(rng.randint(0, 8)))
        lone = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                       return_dict=False)
        full = tok.apply_chat_template([{"role": "user", "content": prompt},
                                        {"role": "assistant", "content": response}], return_dict=False)
        assert full[: len(lone)] == lone
        assert full[len(lone):] == tok(response)["input_ids"] + [tok.eos_token_id]


def test_demo_encoder_matches_the_tokenizer(tok):
    """The warm-up's fast path gives exactly the ids of the chat template + tokenizer."""
    encoder = DemoEncoder(tok)
    for prompt in make_prompts(20, seed=4):
        ids, prompt_len = encoder.encode(prompt, solve(prompt))
        expected = tok.apply_chat_template([{"role": "user", "content": prompt},
                                            {"role": "assistant", "content": solve(prompt)}], return_dict=False)
        assert ids == list(expected)
        assert prompt_len == len(tok(chat(tok, prompt, add_generation_prompt=True),
                                     add_special_tokens=False)["input_ids"])
