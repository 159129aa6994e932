"""sample(): K responses per prompt, seeded, left-padding exact, restoring state; the vLLM error path."""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch

from prefopt.rounds.generate import VLLM_MISSING, sample
from prefopt.world.model import WorldConfig, build_model
from prefopt.world.tokenizer import build_tokenizer

PROMPTS = ["sort 52813", "rev ab", "next abcde", "sort 123"]


@pytest.fixture(scope="module")
def world():
    """A randomly initialised tiny Llama: generation tests need a model, not a good one."""
    tok = build_tokenizer()
    return build_model(WorldConfig(), tok), tok


def test_k_responses_per_prompt_in_order(world):
    model, tok = world
    out = sample(model, tok, PROMPTS, k=3, max_new_tokens=6, progress=False)
    assert len(out) == len(PROMPTS) and all(len(r) == 3 for r in out)
    assert all(isinstance(s, str) and len(s) <= 6 for r in out for s in r)
    greedy = sample(model, tok, PROMPTS, k=2, max_new_tokens=6, temperature=0, progress=False)
    assert all(r[0] == r[1] for r in greedy)
    assert [r[0] for r in greedy] == [sample(model, tok, [p], max_new_tokens=6, temperature=0,
                                             progress=False)[0][0] for p in PROMPTS]


def test_same_seed_same_samples(world):
    model, tok = world
    a = sample(model, tok, PROMPTS, k=4, max_new_tokens=8, seed=3, batch_size=5, progress=False)
    b = sample(model, tok, PROMPTS, k=4, max_new_tokens=8, seed=3, batch_size=5, progress=False)
    c = sample(model, tok, PROMPTS, k=4, max_new_tokens=8, seed=4, batch_size=5, progress=False)
    assert a == b
    assert a != c


def test_left_padding_matches_a_lone_prompt(world):
    """A short prompt batched with longer ones (so left-padded) decodes exactly as when alone."""
    model, tok = world
    short, longer = "rev ab", ["sort 52813", "next abcde"]
    alone = sample(model, tok, [short], max_new_tokens=10, temperature=0, progress=False)[0]
    batched = sample(model, tok, longer + [short], max_new_tokens=10, temperature=0, batch_size=8, progress=False)
    assert batched[-1] == alone


def test_chat_messages_and_plain_prompts_agree(world):
    model, tok = world
    plain = sample(model, tok, ["rev abc"], max_new_tokens=6, temperature=0, progress=False)
    chat = sample(model, tok, [[{"role": "user", "content": "rev abc"}]], max_new_tokens=6, temperature=0,
                  progress=False)
    assert plain == chat


def test_tokenizer_without_chat_template(world):
    model, tok = world
    bare = copy.deepcopy(tok)
    bare.chat_template = None
    out = sample(model, bare, ["sort 321"], k=2, max_new_tokens=4, progress=False)
    assert len(out[0]) == 2
    with pytest.raises(ValueError, match="chat template"):
        sample(model, bare, [[{"role": "user", "content": "x"}]], max_new_tokens=4, progress=False)


def test_restores_mode_padding_side_and_global_rng(world):
    model, tok = world
    model.train()
    tok.padding_side = "right"
    torch.manual_seed(0)
    expected = torch.rand(2)
    torch.manual_seed(0)
    sample(model, tok, PROMPTS, k=2, max_new_tokens=4, progress=True)
    assert model.training and tok.padding_side == "right"
    assert torch.equal(torch.rand(2), expected)
    model.eval()
    tok.padding_side = "left"


def test_empty_prompt_list(world):
    assert sample(*world, [], max_new_tokens=4, progress=False) == []


@pytest.mark.parametrize("kwargs", [{"k": 0}, {"max_new_tokens": 0}, {"temperature": -1.0}, {"top_p": 0.0},
                                    {"backend": "tgi"}])
def test_rejects_bad_arguments(world, kwargs):
    with pytest.raises(ValueError):
        sample(*world, PROMPTS, **{"max_new_tokens": 4, "progress": False, **kwargs})


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_vllm_backend_missing_gives_an_install_hint(world):
    with pytest.raises(ImportError, match=r"pip install prefopt\[vllm\]"):
        sample(*world, PROMPTS, max_new_tokens=4, backend="vllm")
    assert "prefopt[vllm]" in VLLM_MISSING


def test_top_k_one_is_greedy_and_a_negative_top_k_is_refused(world):
    """Sampling among the single most likely token (top_k=1) is greedy decoding whatever the temperature."""
    model, tok = world
    greedy = sample(model, tok, PROMPTS, max_new_tokens=6, temperature=0, progress=False)
    top1 = sample(model, tok, PROMPTS, max_new_tokens=6, temperature=1.5, top_k=1, seed=7, progress=False)
    assert top1 == greedy
    assert sample(model, tok, PROMPTS, max_new_tokens=6, temperature=1.5, seed=7, progress=False) != greedy
    with pytest.raises(ValueError, match="top_k"):
        sample(model, tok, PROMPTS, max_new_tokens=2, top_k=-1)
