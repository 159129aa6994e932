"""CHES scores against a direct computation from ``output_hidden_states``, batching, symmetry and the boundary."""

from __future__ import annotations

import copy

import pytest
import torch
from ches_helpers import DIVERGING_TEMPLATE, char_tokenizer, tiny_llama
from torch.testing import assert_close

from prefopt.ches import ches_scores, record_pair, score_records
from prefopt.data.tokenize import tokenize_list

PROMPTS = ["What is 2+2?", "Say hi", "Name a colour, please.", "x", "Tell me a short story about a cat."]
CHOSEN = ["4", "Hello there!", "Blue", "yes yes yes", "The cat slept."]
REJECTED = ["Five, I think", "Go away", "Bleu", "no", "Once upon a time a dog barked all night."]


def hidden_last(model, ids: list[int]) -> torch.Tensor:
    """(T, D) float64 last-layer hidden states of one unpadded sequence, via ``output_hidden_states``."""
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    hidden = out.hidden_states[-1][0]
    # In transformers 5.x hidden_states[-1] is already after the final norm (it equals the LM head's input);
    # the reference relies on that, so check it rather than assume it.
    assert_close(model.lm_head(hidden), out.logits[0].to(hidden.dtype), rtol=1e-4, atol=1e-4)
    return hidden.double()


def reference_ches(model, prompt_ids, pos_ids, neg_ids, length_normalize: bool) -> float:
    """CHES by the paper's definition: S(y) = Σ_{k=1}^{|y|} h_{x,y<k}, states at positions P-1 … P+|y|-2."""
    sums = []
    for response in (pos_ids, neg_ids):
        p, n = len(prompt_ids), len(response)
        s = hidden_last(model, prompt_ids + response)[p - 1 : p - 1 + n].sum(0)
        sums.append(s / n if length_normalize else s)
    s_pos, s_neg = sums
    return float(s_pos @ s_neg - s_pos @ s_pos)


@pytest.mark.parametrize("length_normalize", [True, False])
def test_matches_direct_hidden_state_computation(ches_model, ches_tok, length_normalize):
    got = ches_scores(ches_model, ches_tok, PROMPTS, CHOSEN, REJECTED, length_normalize=length_normalize,
                      batch_size=2)
    expected = []
    for prompt, pos, neg in zip(PROMPTS, CHOSEN, REJECTED, strict=True):
        tok = tokenize_list(ches_tok, prompt, [pos, neg])  # the trainer's boundary (EOS appended to plain text)
        expected.append(reference_ches(ches_model, tok.prompt_ids, *tok.response_ids, length_normalize))
    assert got.dtype == torch.float32 and got.shape == (len(PROMPTS),)
    assert_close(got, torch.tensor(expected, dtype=torch.float32), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("length_normalize", [True, False])
def test_padded_batch_equals_one_at_a_time(ches_model, ches_tok, length_normalize):
    score = lambda bs: ches_scores(ches_model, ches_tok, PROMPTS, CHOSEN, REJECTED, length_normalize=length_normalize,
                                   batch_size=bs)
    one, three = score(1), score(3)
    assert one.dtype == three.dtype == torch.float32
    assert_close(three, one, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("length_normalize", [True, False])
def test_identical_responses_score_zero(ches_model, ches_tok, length_normalize):
    """y+ = y− gives ⟨S, S⟩ − ‖S‖² = 0 (up to float32 noise between two rows of one batch)."""
    got = ches_scores(ches_model, ches_tok, PROMPTS, CHOSEN, CHOSEN, length_normalize=length_normalize, batch_size=4)
    assert_close(got, torch.zeros(len(PROMPTS)), rtol=0, atol=1e-4)


def test_half_precision_model_returns_float32(ches_tok):
    """A bf16 model is scored in float32: same answer as the fp32 model up to bf16's own rounding."""
    fp32 = tiny_llama(len(ches_tok), seed=1)
    bf16 = copy.deepcopy(fp32).to(torch.bfloat16)
    got = ches_scores(bf16, ches_tok, PROMPTS, CHOSEN, REJECTED)
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    expected = ches_scores(fp32, ches_tok, PROMPTS, CHOSEN, REJECTED)
    assert_close(got, expected, rtol=0.1, atol=0.2)


def test_chat_template_divergence_uses_the_common_prefix():
    """The lone prompt renders "<|user|>hi<|end|><|assistant|>\\n" but an assistant turn renders "<|assistant|>ok":
    the response starts after the 5 tokens both renderings share, so it is "ok<|end|>" and k = 1 is <|assistant|>."""
    tok = char_tokenizer(chat_template=DIVERGING_TEMPLATE)
    model = tiny_llama(len(tok), seed=2)
    prompt = [{"role": "user", "content": "hi"}]
    got = ches_scores(model, tok, [prompt], ["ok"], ["nope"], length_normalize=False)
    full = lambda r: tok.apply_chat_template(prompt + [{"role": "assistant", "content": r}], tokenize=False)
    ids = lambda text: tok(text)["input_ids"]
    prompt_ids = ids("<|user|>hi<|end|><|assistant|>")
    assert len(prompt_ids) == 5 and ids(full("ok"))[:5] == prompt_ids
    expected = reference_ches(model, prompt_ids, ids("ok<|end|>"), ids("nope<|end|>"), length_normalize=False)
    assert_close(got, torch.tensor([expected], dtype=torch.float32), rtol=1e-4, atol=1e-4)


def test_merge_across_the_boundary_moves_it_back():
    """With an "ab" token, prompt "xa" + response "bc" tokenizes as [x, ab, c, </s>]: the response starts at "ab"
    (the prompt is just [x]), so the first summed state is the one at "x"."""
    tok = char_tokenizer(merges={"ab": 0})
    model = tiny_llama(len(tok), seed=3)
    got = ches_scores(model, tok, ["xa"], ["bc"], ["bd"])
    ids = lambda *tokens: tok.convert_tokens_to_ids(list(tokens))
    expected = reference_ches(model, ids("x"), ids("ab", "c", "</s>"), ids("ab", "d", "</s>"), length_normalize=True)
    assert_close(got, torch.tensor([expected], dtype=torch.float32), rtol=1e-4, atol=1e-4)


def test_restores_training_mode_and_needs_no_grad(ches_model, ches_tok):
    ches_model.train()
    try:
        got = ches_scores(ches_model, ches_tok, PROMPTS[:2], CHOSEN[:2], REJECTED[:2])
        assert ches_model.training and not got.requires_grad
    finally:
        ches_model.eval()


def test_peft_wrapped_model_keeps_its_adapters(ches_tok):
    peft = pytest.importorskip("peft")
    base = tiny_llama(len(ches_tok), seed=4)
    wrapped = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, param in wrapped.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)  # non-zero adapters, so "adapter on" differs from the base model
    merged = copy.deepcopy(wrapped).merge_and_unload()
    got = ches_scores(wrapped, ches_tok, PROMPTS, CHOSEN, REJECTED)
    assert_close(got, ches_scores(merged, ches_tok, PROMPTS, CHOSEN, REJECTED), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(got, ches_scores(base, ches_tok, PROMPTS, CHOSEN, REJECTED), atol=1e-3)


def test_records_are_scored_best_vs_worst(ches_model, ches_tok):
    records = [
        {"prompt": "Say hi", "responses": ["Go away", "Hello there!"], "scores": [0.0, 1.0]},
        {"prompt": "x", "responses": ["a", "yes yes yes", "no", "b"], "scores": [0.5, 2.0, -1.0, -1.0]},
    ]
    assert record_pair(records[1]) == ("x", "yes yes yes", "b")  # first max, last min (as the DPO loss picks)
    got = score_records(records, ches_model, ches_tok)
    expected = ches_scores(ches_model, ches_tok, ["Say hi", "x"], ["Hello there!", "yes yes yes"], ["Go away", "b"])
    assert_close(got, expected)


def test_bad_inputs_raise(ches_model, ches_tok):
    with pytest.raises(ValueError, match="same length"):
        ches_scores(ches_model, ches_tok, PROMPTS, CHOSEN[:2], REJECTED)
    with pytest.raises(ValueError, match="batch_size"):
        ches_scores(ches_model, ches_tok, PROMPTS, CHOSEN, REJECTED, batch_size=0)
    with pytest.raises(ValueError, match="all equal"):
        record_pair({"prompt": "x", "responses": ["a", "b"], "scores": [1.0, 1.0]})
    assert ches_scores(ches_model, ches_tok, [], [], []).shape == (0,)
