"""sample(): K responses per prompt, seeded, left-padding exact, restoring state; the vLLM error path."""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch

from prefopt.rounds.generate import VLLM_MISSING, _generate, _generation_kwargs, _prompt_ids, sample
from prefopt.rounds.row_sampling import SeededRowSampler
from prefopt.tensors import pad_rows
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


def test_a_prompts_samples_depend_on_its_seed_alone(world):
    """Per-prompt seeds and per-row streams: the same responses alone, in any batch, with any batch size."""
    model, tok = world
    seeds = [11, 12, 13, 14]
    together = sample(model, tok, PROMPTS, k=3, max_new_tokens=8, seeds=seeds, batch_size=12, progress=False)
    alone = [sample(model, tok, [p], k=3, max_new_tokens=8, seeds=[s], batch_size=2, progress=False)[0]
             for p, s in zip(PROMPTS, seeds, strict=True)]
    reordered = sample(model, tok, PROMPTS[::-1], k=3, max_new_tokens=8, seeds=seeds[::-1], progress=False)[::-1]
    assert together == alone == reordered
    assert len({r for rs in together for r in rs}) > len(PROMPTS)  # the K rows of a prompt have their own streams
    with pytest.raises(ValueError, match="3 seeds for 4 prompts"):
        sample(model, tok, PROMPTS, max_new_tokens=4, seeds=seeds[:3])


def test_seeded_row_sampler_draws_from_the_tempered_nucleus():
    """Gumbel-max over temperature-scaled, top-p-filtered logits: argmax frequencies match softmax(s / T) there.

    Logits (0, 1, 2, −9) at T = 2 give p ∝ (e^0, e^0.5, e^1, e^−4.5) = (0.186, 0.307, 0.506, 0.002). Top-p = 0.7
    keeps the smallest most-likely set whose mass reaches 0.7: tokens 2 and 1 (0.506 + 0.307 = 0.813),
    renormalised to (0.378, 0.622). 20,000 rows, one draw each: binomial s.d. ≤ 0.0035.
    """
    logits = torch.tensor([[0.0, 1.0, 2.0, -9.0]]).repeat(20_000, 1)
    seeds = range(20_000)
    picks = SeededRowSampler(seeds, temperature=2.0)(None, logits).argmax(-1)
    freq = torch.bincount(picks, minlength=4).double() / 20_000
    torch.testing.assert_close(freq, (logits[0] / 2).softmax(-1).double(), atol=0.015, rtol=0)
    nucleus = torch.bincount(SeededRowSampler(seeds, temperature=2.0, top_p=0.7)(None, logits).argmax(-1),
                             minlength=4).double() / 20_000
    assert nucleus[0] == nucleus[3] == 0
    torch.testing.assert_close(nucleus[1:3], torch.tensor([0.378, 0.622], dtype=torch.float64), atol=0.015, rtol=0)
    again = SeededRowSampler(seeds, temperature=2.0)(None, logits).argmax(-1)
    assert torch.equal(picks, again)  # a row's draw is its seed's
    with pytest.raises(ValueError, match="built for 20000 rows"):
        SeededRowSampler(seeds, temperature=2.0)(None, logits[:3])


def test_shared_prefill_scores_and_samples_equal_k_separate_prefills(world):
    """The prompts (left-padded, of different lengths) run once and their KV cache is repeated K times: every step's
    next-token scores equal those of K full prefills, and so do the responses sampled with the same seed."""
    model, tok = world
    model.eval()
    ids, mask = pad_rows(_prompt_ids(tok, PROMPTS), tok.pad_token_id, side="left")
    runs = []
    for shared in (False, True):
        kwargs = {**_generation_kwargs(tok, 6), "output_scores": True, "return_dict_in_generate": True,
                  "logits_processor": [SeededRowSampler(range(3 * len(PROMPTS)), temperature=1.0)]}
        runs.append(_generate(model, ids, mask, 3, kwargs, shared_prefill=shared))
    assert runs[0].sequences.shape == (3 * len(PROMPTS), ids.shape[1] + 6)
    assert torch.equal(runs[0].sequences, runs[1].sequences)
    assert len(runs[0].scores) == len(runs[1].scores) == 6
    for a, b in zip(runs[0].scores, runs[1].scores, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


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
