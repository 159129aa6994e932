"""Packed rows (each list's prompt once; padding-free batches) against per-sequence rows, the reference path: the same
per-response log-probs and the same gradients, for every head, backend and loss path the trainer runs."""

from __future__ import annotations

import copy

import pytest
import torch
from peft import LoraConfig, PromptTuningConfig, get_peft_model
from transformers import Qwen2Config, Qwen2ForCausalLM, TrainingArguments
from transformers.masking_utils import sdpa_mask

import prefopt.trainer.logps as logps
from prefopt.data.features import tokenize_records
from prefopt.trainer.collate import ListCollator
from prefopt.trainer.core import PreferenceTrainer
from prefopt.trainer.packing import adapt_collator, block_mask_function, pack_lists, per_response
from tests.conftest import make_model, make_tokenizer

PER_SEQUENCE = dict(shared_prompt=False, padding_free=False)
LAYOUTS = {"shared": dict(shared_prompt=True), "padding_free": dict(shared_prompt=False, padding_free=True),
           "shared+padding_free": dict(shared_prompt=True, padding_free=True)}
# Ragged lists (3, 2, 3, 2 responses), prompts of different lengths, responses of different lengths.
RECORDS = [
    {"prompt": "add " + "1" * (a % 3) + f"{a}+{b}:", "responses": [f" {a + b}", f" {a + b + 1} x", f" {a}{b}"][
        : 2 + (a % 2)], "scores": [1.0, 0.2, 0.0][: 2 + (a % 2)], "weight": 0.5 + a / 10}
    for a, b in [(1, 2), (4, 4), (5, 1), (2, 6)]
]


def _features(records=RECORDS, **kw):
    every_token = lambda tok, tl, rec: [[1 + (i % 2) for i in range(len(r))] for r in tl.response_ids]
    return tokenize_records(records, make_tokenizer(), segment_fn=every_token, **kw)[0]


def _list_logps(model, batch):
    """(B, K) summed response log-probs of a collated batch."""
    tokens = per_response(logps.response_token_logps(model, batch), batch)
    mask = per_response(batch["completion_mask"][:, 1:].bool(), batch)
    return ListCollator.to_lists((tokens * mask).sum(1), batch)


def _grads(model):
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


def _assert_same(a, b):
    torch.testing.assert_close(a[0], b[0], atol=1e-5, rtol=0)
    assert len(a[1]) == len(b[1]) > 0
    for x, y in zip(a[1], b[1], strict=True):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=0)


def test_one_list_is_the_prompt_once_then_each_response_after_a_copy_of_its_last_token():
    """Prompt [5, 6, 7], responses [8, 9] and [10]. Row: 5 6 | 7 8 9 | 7 10 (prefix, block 0, block 1); positions
    continue from the prefix in each block (0 1 | 2 3 4 | 2 3); tokens 8, 9 are predicted at columns 2, 3 and token
    10 at column 5. Mask (row = query, column = key): the prefix is causal, each block sees the prefix and itself.
    """
    f = {"prompt_ids": [5, 6, 7], "response_ids": [[8, 9], [10]], "scores": [1.0, 0.0]}
    b = pack_lists([f], lambda s: s, shared_prompt=True, padding_free=False, pad_token_id=0, pad_to_multiple_of=None)
    assert b["input_ids"].tolist() == [[5, 6, 7, 8, 9, 7, 10]]
    assert b["position_ids"].tolist() == [[0, 1, 2, 3, 4, 2, 3]]
    assert b["block_ids"].tolist() == [[-1, -1, 0, 0, 0, 1, 1]]
    assert b["completion_mask"].tolist() == [[0, 0, 0, 1, 1, 0, 1]]
    assert b["token_index"].tolist() == [[2, 3], [5, 0]] and b["response_mask"].tolist() == [[1, 1], [1, 0]]
    mask = sdpa_mask(batch_size=1, q_length=7, kv_length=7, allow_is_causal_skip=False,
                     mask_function=block_mask_function(b["group_ids"], b["block_ids"], b["position_ids"]))
    assert mask[0, 0].int().tolist() == [[1, 0, 0, 0, 0, 0, 0],
                                         [1, 1, 0, 0, 0, 0, 0],
                                         [1, 1, 1, 0, 0, 0, 0],
                                         [1, 1, 1, 1, 0, 0, 0],
                                         [1, 1, 1, 1, 1, 0, 0],
                                         [1, 1, 0, 0, 0, 1, 0],
                                         [1, 1, 0, 0, 0, 1, 1]]


def test_a_repeated_response_reuses_its_first_copys_block_so_exact_ties_stay_exact():
    """Responses [8, 9], [10], [8, 9]: the row holds two blocks, and the third response reads the first's
    predictions (bitwise the same log-probs; in separate blocks they would differ in the last bits)."""
    f = {"prompt_ids": [5, 6, 7], "response_ids": [[8, 9], [10], [8, 9]], "scores": [1.0, 0.0, 0.5]}
    b = pack_lists([f], lambda s: s, shared_prompt=True, padding_free=False, pad_token_id=0, pad_to_multiple_of=None)
    assert b["input_ids"].tolist() == [[5, 6, 7, 8, 9, 7, 10]]
    assert b["token_index"].tolist() == [[2, 3], [5, 0], [2, 3]] and b["slot"].tolist() == [0, 1, 2]
    x = _list_logps(make_model(seed=8), ListCollator(pad_token_id=0)([f]))
    assert x[0, 0] == x[0, 2] and x[0, 0] != x[0, 1]


def test_padding_free_rows_have_no_padding_and_lists_do_not_see_each_other():
    feats = _features()
    b = ListCollator(pad_token_id=0, shared_prompt=True, padding_free=True)(feats)
    assert b["input_ids"].shape[0] == 1 and bool(b["attention_mask"].all())
    unique = sum(len(f["prompt_ids"]) + sum(len(r) for r in f["response_ids"]) for f in feats)
    copies = sum(len(f["response_ids"]) - 1 for f in feats)  # the last prompt token, once more per extra response
    assert b["input_ids"].shape[1] == unique + copies
    mask = sdpa_mask(batch_size=1, q_length=b["input_ids"].shape[1], kv_length=b["input_ids"].shape[1],
                     allow_is_causal_skip=False,
                     mask_function=block_mask_function(b["group_ids"], b["block_ids"], b["position_ids"]))[0, 0]
    other_list = b["group_ids"][0][:, None] != b["group_ids"][0][None, :]
    assert not (mask & other_list).any()


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("head", ["direct", "fused"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_packed_log_probs_and_gradients_equal_per_sequence(layout, head, attention, monkeypatch):
    monkeypatch.setattr(logps, "DIRECT_LOGITS_MAX", 2**40 if head == "direct" else 0)
    feats = _features()
    results = []
    for kw in (PER_SEQUENCE, LAYOUTS[layout]):
        model = make_model(seed=1)
        model.set_attn_implementation(attention)
        x = _list_logps(model, ListCollator(pad_token_id=0, **kw)(feats))
        (x * torch.arange(1.0, x.numel() + 1).view_as(x) / x.numel()).sum().backward()  # every slot its own weight
        results.append((x.detach(), _grads(model)))
    assert (results[0][0] != 0).sum() == sum(len(f["response_ids"]) for f in feats)
    _assert_same(results[1], results[0])


def _trainer(tmp_path, loss, model, collator, ref_model="copy", **kw):
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, report_to=[], use_cpu=True,
                             save_strategy="no", disable_tqdm=True, **kw)
    return PreferenceTrainer(model, args, loss=loss, ref_model=copy.deepcopy(model) if ref_model == "copy" else None,
                             collator=collator, train_dataset=[])


def _loss_and_grads(tmp_path, loss, layout, *, model_fn, ref_model="copy", checkpointing=False, **kw):
    model = model_fn()
    trainer = _trainer(tmp_path, loss, model, ListCollator(pad_token_id=0, **layout), ref_model)
    if checkpointing:
        trainer.model.gradient_checkpointing_enable()
    trainer.model.train()
    with torch.no_grad():  # move the policy off the reference, so the loss depends on both
        next(p for p in trainer.model.parameters() if p.requires_grad).add_(0.05)
    value = trainer.compute_loss(trainer.model, trainer.data_collator(_features(**kw)))
    value.backward()
    return value.detach(), _grads(trainer.model)


@pytest.mark.parametrize("layout", ["shared", "shared+padding_free"])
@pytest.mark.parametrize("loss", ["dpo", "lipo", "rrpo"])
def test_trainer_loss_and_gradients_equal_per_sequence(tmp_path, loss, layout):
    """DPO on pairs (best vs worst of each list), LiPO on the ragged lists, RRPO's per-token path with the token-level
    KL (full-vocabulary logits at the response positions of both models)."""
    runs = [_loss_and_grads(tmp_path / str(i), loss, kw, model_fn=lambda: make_model(seed=2))
            for i, kw in enumerate((PER_SEQUENCE, LAYOUTS[layout]))]
    _assert_same(runs[1], runs[0])


def test_peft_adapter_off_reference_and_gradient_checkpointing_equal_per_sequence(tmp_path):
    lora = lambda: get_peft_model(make_model(seed=4), LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                                 init_lora_weights=False))
    runs = [_loss_and_grads(tmp_path / str(i), "dpo", kw, model_fn=lora, ref_model=None, checkpointing=True)
            for i, kw in enumerate((PER_SEQUENCE, LAYOUTS["shared"], LAYOUTS["shared+padding_free"]))]
    _assert_same(runs[1], runs[0])
    _assert_same(runs[2], runs[0])


@pytest.mark.parametrize("mode", ["keep_start", "keep_end"])
def test_truncation_is_per_sequence_and_a_prompt_cut_differently_per_response_is_not_shared(mode):
    """max_length 11 cuts the longer responses (keep_start) or the front of the prompt by a different amount for
    each response (keep_end: that list is packed as per-sequence groups)."""
    feats = _features()
    runs = []
    for kw in (PER_SEQUENCE, LAYOUTS["shared"]):
        model = make_model(seed=3)
        batch = ListCollator(pad_token_id=0, max_length=11, truncation_mode=mode, **kw)(feats)
        x = _list_logps(model, batch)
        x.sum().backward()
        runs.append((x.detach(), _grads(model)))
    _assert_same(runs[1], runs[0])
    if mode == "keep_end":
        assert batch["group_ids"].max() + 1 > len(feats)  # some list fell back to one group per response


def test_sliding_window_layers_get_the_window_in_their_mask():
    """A Qwen2 with one full-attention and one 4-token sliding-window layer: the packed batch passes a mask per layer
    type and matches per-sequence rows; without the window the log-probs differ (the window bites)."""

    def qwen(window: bool):
        torch.manual_seed(0)
        return Qwen2ForCausalLM(Qwen2Config(vocab_size=48, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                            num_attention_heads=4, num_key_value_heads=2, max_window_layers=1,
                                            use_sliding_window=window, sliding_window=4))

    feats = _features()
    runs = []
    for kw in (PER_SEQUENCE, LAYOUTS["shared"], LAYOUTS["shared+padding_free"]):
        model = qwen(True)
        x = _list_logps(model, ListCollator(pad_token_id=0, **kw)(feats))
        x.sum().backward()
        runs.append((x.detach(), _grads(model)))
    _assert_same(runs[1], runs[0])
    _assert_same(runs[2], runs[0])
    with torch.no_grad():
        no_window = _list_logps(qwen(False), ListCollator(pad_token_id=0, **PER_SEQUENCE)(feats))
    assert (no_window - runs[0][0]).abs().max() > 1e-3


def test_flex_attention_block_mask_forward_equals_per_sequence():
    """flex_attention gets a BlockMask from transformers' mask interface (forward only: no backward on CPU)."""
    feats = _features()
    model = make_model(seed=5)
    with torch.no_grad():
        reference = _list_logps(model, ListCollator(pad_token_id=0, **PER_SEQUENCE)(feats))
        model.set_attn_implementation("flex_attention")
        packed = _list_logps(model, ListCollator(pad_token_id=0, **LAYOUTS["shared+padding_free"])(feats))
    torch.testing.assert_close(packed, reference, atol=1e-5, rtol=0)


def test_a_model_that_cannot_take_the_mask_falls_back_to_per_sequence_rows_with_a_notice(tmp_path, capsys):
    """Prompt tuning prepends virtual tokens to every row, which a block mask over the real tokens cannot cover."""
    model = get_peft_model(make_model(seed=6), PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3))
    collator = adapt_collator(ListCollator(pad_token_id=0, padding_free=True), model)
    assert (collator.shared_prompt, collator.padding_free) == (False, False)
    assert "prompt-learning PEFT" in capsys.readouterr().err
    feats = _features()
    with pytest.raises(ValueError, match="batch is packed but the model cannot take it"):
        logps.response_token_logps(model, ListCollator(pad_token_id=0)(feats))
    trainer = _trainer(tmp_path, "dpo", model, ListCollator(pad_token_id=0), ref_model=None)
    assert trainer.data_collator.shared_prompt is False
    assert torch.isfinite(trainer.compute_loss(trainer.model, trainer.data_collator(feats)))


@pytest.mark.parametrize("tuning", [False, True])
def test_last_logits_are_the_models_own_next_token_logits(tuning):
    """``feature_last_logits`` (an LLM judge's verdict): packed, and behind a prompt-tuning adapter (per-sequence
    rows, 3 virtual tokens prepended), the logits after each response minus its last token equal a plain forward's."""
    feats, model = _features(), make_model(seed=9)
    if tuning:
        model = get_peft_model(model, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3))
    got = list(logps.feature_last_logits(model, feats, ListCollator(pad_token_id=0), batch_size=3))
    for f, logits in zip(feats, got, strict=True):
        for k, response in enumerate(f["response_ids"]):
            with torch.no_grad():
                alone = model(input_ids=torch.tensor([f["prompt_ids"] + response[:-1]])).logits[0, -1]
            torch.testing.assert_close(logits[k], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("average", [False, True])
def test_scoring_lists_shares_the_prompt_and_equals_per_sequence(average):
    """``feature_logps``: the batched log-prob loop of the reference precompute and the implicit-reward scorer."""
    feats, model = _features(), make_model(seed=7)
    per_sequence = logps.feature_logps(model, feats, ListCollator(pad_token_id=0, **PER_SEQUENCE), batch_size=3,
                                       average=average)
    shared = logps.feature_logps(model, feats, ListCollator(pad_token_id=0), batch_size=3, average=average)
    assert [len(r) for r in shared] == [len(f["response_ids"]) for f in feats]
    torch.testing.assert_close(torch.tensor(sum(shared, [])), torch.tensor(sum(per_sequence, [])), atol=1e-5, rtol=0)
