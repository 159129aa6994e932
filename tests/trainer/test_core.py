"""PreferenceTrainer: reference modes, token-level losses, ragged lists, accumulation invariance, NaN stop."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import TrainingArguments

from losses import LOSSES, LossSpec, PreferenceLogps, dpo_loss
from prefopt.data.features import tokenize_records
from prefopt.trainer.collate import ListCollator
from prefopt.trainer.core import PreferenceTrainer
from prefopt.trainer.reference import precompute_ref_logps
from tests.conftest import make_model, make_tokenizer

RECORDS = [
    {"prompt": f"add {a}+{b}:", "responses": [f" {a + b}", f" {a + b + 1} x", f" {a}{b}"], "scores": [1.0, 0.2, 0.0],
     "weight": 0.8}
    for a, b in [(1, 2), (3, 4), (5, 1), (2, 2), (7, 1), (0, 9), (4, 4), (6, 3)]
]


def _args(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=2, learning_rate=1e-2, seed=0,
                report_to=[], logging_steps=1, use_cpu=True, save_strategy="no", disable_tqdm=True)
    return TrainingArguments(**{**base, **kw})


def _features(records=RECORDS, segment_fn=None):
    tok = make_tokenizer()
    return tok, tokenize_records(records, tok, max_length=64, segment_fn=segment_fn)[0]


def _trainer(tmp_path, loss="dpo", model=None, ref="copy", features=None, **kw):
    tok, feats = _features() if features is None else (make_tokenizer(), features)
    model = model if model is not None else make_model(seed=1)
    ref_model = copy.deepcopy(model) if ref == "copy" else ref
    return PreferenceTrainer(model, _args(tmp_path, **kw), loss=loss, ref_model=ref_model,
                             collator=ListCollator(pad_token_id=0), train_dataset=feats, processing_class=tok)


def _first_loss(trainer):
    batch = next(iter(trainer.get_train_dataloader()))
    return trainer.compute_loss(trainer.model, batch)


def test_at_initialisation_policy_equals_reference_so_dpo_is_log2(tmp_path):
    assert _first_loss(_trainer(tmp_path)).item() == pytest.approx(math.log(2), abs=1e-6)


def test_ragged_lists_land_in_their_slots_with_each_response_scored_alone(tmp_path):
    """Lists of 3 and 2 responses in one batch: x.policy[b, k] is response k of list b's summed log-prob, computed
    here one sequence at a time with a plain forward; the missing slot is masked; LiPO trains on the batch."""
    records = [RECORDS[0], {**RECORDS[1], "responses": RECORDS[1]["responses"][:2], "scores": [1.0, 0.0]}]
    tok, feats = _features(records)
    trainer = _trainer(tmp_path, loss="lipo", features=feats)
    batch = ListCollator(pad_token_id=0)(feats)
    x = trainer.preference_logps(trainer.model, batch)
    assert x.mask.tolist() == [[True, True, True], [True, True, False]]
    for b, f in enumerate(feats):
        for k, response in enumerate(f["response_ids"]):
            ids = torch.tensor([f["prompt_ids"] + response])
            logits = trainer.model(input_ids=ids).logits[0, :-1].float()
            alone = logits.log_softmax(-1).gather(1, ids[0, 1:, None]).squeeze(1)[-len(response):].sum()
            torch.testing.assert_close(x.policy[b, k], alone, atol=1e-4, rtol=0)
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    assert torch.isfinite(loss) and any(p.grad is not None and p.grad.abs().sum() > 0
                                        for p in trainer.model.parameters())


def test_precomputed_reference_equals_live_reference_and_is_cached(tmp_path):
    tok, feats = _features()
    model = make_model(seed=2)
    collator = ListCollator(pad_token_id=0)
    pre = precompute_ref_logps(model, feats, collator, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 1
    again = precompute_ref_logps(model, feats, collator, cache_dir=tmp_path / "cache")
    assert [f["ref_logps"] for f in again] == [f["ref_logps"] for f in pre]
    live = _trainer(tmp_path / "a", model=copy.deepcopy(model), features=feats)
    cached = _trainer(tmp_path / "b", model=copy.deepcopy(model), ref=None, features=pre)
    with torch.no_grad():  # move both policies off the reference so the loss depends on the reference values
        for t in (live, cached):
            next(t.model.parameters()).add_(0.05)
    batch_live = next(iter(live.get_train_dataloader()))  # same seed: the same lists in the same order
    batch_cached = next(iter(cached.get_train_dataloader()))
    assert "ref_logps" in batch_cached and "ref_logps" not in batch_live
    x_live = live.preference_logps(live.model, batch_live)
    x_cached = cached.preference_logps(cached.model, batch_cached)
    torch.testing.assert_close(x_cached.ref, x_live.ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(cached.compute_loss(cached.model, batch_cached),
                               live.compute_loss(live.model, batch_live), atol=1e-6, rtol=0)


def test_peft_policy_uses_the_base_with_adapter_off_as_reference(tmp_path):
    model = get_peft_model(make_model(seed=4), LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                          init_lora_weights=False))
    trainer = _trainer(tmp_path, model=model, ref=None)
    batch = next(iter(trainer.get_train_dataloader()))
    x = trainer.preference_logps(trainer.model, batch)
    base = _trainer(tmp_path / "b", model=make_model(seed=4))
    x_base = base.preference_logps(base.model, batch)
    torch.testing.assert_close(x.ref, x_base.policy.detach(), atol=1e-5, rtol=0)  # reference = base weights
    assert not torch.allclose(x.policy, x.ref)  # the adapter (non-zero init) changes the policy
    trainer.train()
    assert all(not p.requires_grad for n, p in trainer.model.named_parameters() if "lora" not in n)


def test_rrpo_with_every_token_in_one_segment_and_alpha_zero_equals_dpo(tmp_path):
    full = lambda tok, tl, rec: [[1] * len(r) for r in tl.response_ids]
    _, feats = _features(segment_fn=full)
    rrpo = _trainer(tmp_path / "r", loss="rrpo", features=feats, model=make_model(seed=5))
    rrpo.loss_kwargs["alpha"] = 0.0
    dpo = _trainer(tmp_path / "d", loss="dpo", features=feats, model=make_model(seed=5))
    with torch.no_grad():  # move the policy away from the reference so the loss is not log 2
        for t in (rrpo, dpo):
            next(t.model.parameters()).add_(0.05)
    batch = ListCollator(pad_token_id=0)(feats[:4])
    torch.testing.assert_close(rrpo.compute_loss(rrpo.model, batch), dpo.compute_loss(dpo.model, batch),
                               atol=1e-5, rtol=0)
    rrpo.loss_kwargs["alpha"] = 0.5  # the token-level KL to the reference is now a positive penalty
    assert rrpo.compute_loss(rrpo.model, batch) > dpo.compute_loss(dpo.model, batch)


def test_batch_one_times_accumulation_four_equals_batch_four(tmp_path):
    a = _trainer(tmp_path / "a", per_device_train_batch_size=1, gradient_accumulation_steps=4, max_steps=3)
    b = _trainer(tmp_path / "b", per_device_train_batch_size=4, gradient_accumulation_steps=1, max_steps=3)
    a.train()
    b.train()
    la = [h["loss"] for h in a.state.log_history if "loss" in h]
    lb = [h["loss"] for h in b.state.log_history if "loss" in h]
    torch.testing.assert_close(torch.tensor(la), torch.tensor(lb), atol=1e-5, rtol=0)
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=0)


def test_a_non_finite_loss_stops_with_the_step(tmp_path, monkeypatch):
    def broken(x: PreferenceLogps, *, beta: float = 0.1):
        return dpo_loss(x, beta=beta) * float("nan")

    monkeypatch.setitem(LOSSES, "broken", LossSpec(broken))
    trainer = _trainer(tmp_path, loss="broken")
    with pytest.raises(FloatingPointError, match="at step 1"):
        trainer.train()


def test_unknown_hyper_parameter_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="no hyper-parameter"):
        PreferenceTrainer(make_model(), _args(tmp_path), loss="dpo", loss_kwargs={"bta": 1},
                          ref_model=make_model(), collator=ListCollator(pad_token_id=0), train_dataset=[])


def test_direct_and_fused_log_prob_paths_agree_with_gradients(monkeypatch):
    """The small-logits path (project the response positions once) and TRL's fused head (tiles, recomputed in the
    backward) give the same per-token log-probs and the same gradients."""
    import prefopt.trainer.logps as logps

    _, feats = _features()
    batch = ListCollator(pad_token_id=0)(feats[:3])
    results = []
    for limit in (2**40, 0):  # direct, then fused
        monkeypatch.setattr(logps, "DIRECT_LOGITS_MAX", limit)
        model = make_model(seed=6)
        out = logps.response_token_logps(model, batch)
        (out * torch.arange(out.shape[1])).sum().backward()  # position-weighted, so every token's grad counts
        results.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    (direct, g_direct), (fused, g_fused) = results
    assert direct.abs().sum() > 0 and (direct[~batch["completion_mask"][:, 1:].bool()] == 0).all()
    torch.testing.assert_close(direct, fused, atol=1e-5, rtol=1e-5)
    for a, b in zip(g_direct, g_fused, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_a_frozen_copy_computes_with_its_own_weights_after_the_fused_head_is_attached():
    """Regression: TRL's patched forward closes over the original model's forward, so a plain deepcopy of a
    patched policy ran the live policy's weights (a round's reference silently equal to the policy)."""
    from prefopt.trainer.logps import ensure_fused_head, frozen_copy, response_token_logps

    _, feats = _features()
    batch = ListCollator(pad_token_id=0)(feats[:2])
    policy = make_model(seed=7)
    ensure_fused_head(policy)
    ref = frozen_copy(policy)
    with torch.no_grad():
        before = response_token_logps(ref, batch)
        for p in policy.parameters():  # train the policy away from the copy
            p.add_(0.1)
        after = response_token_logps(ref, batch)
        moved = response_token_logps(policy, batch)
    torch.testing.assert_close(after, before)
    assert not torch.allclose(moved, before)
    assert not any(p.requires_grad for p in ref.parameters())
