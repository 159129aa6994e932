"""prefopt's `dpo` must match TRL's DPOTrainer (sigmoid loss) number for number on the same model, data and seed, with
per-sequence rows and with each pair's prompt encoded once (shared prompt, packed with and without padding)."""

from __future__ import annotations

import copy

import pytest
import torch
from datasets import Dataset
from transformers import TrainingArguments
from trl import DPOConfig, DPOTrainer

from prefopt.data.features import tokenize_records
from prefopt.data.records import normalize_rows
from prefopt.trainer.collate import ListCollator
from prefopt.trainer.core import PreferenceTrainer
from tests.conftest import make_model, make_tokenizer

PAIRS = [
    {"prompt": f"sort {a}{b}{c}:", "chosen": " " + "".join(sorted(f"{a}{b}{c}")), "rejected": f" {c}{a}{b} no"}
    for a, b, c in ["312", "987", "150", "424", "873", "605", "219", "731", "348", "562", "190", "857"]
]
COMMON = dict(per_device_train_batch_size=4, max_steps=5, learning_rate=5e-3, seed=0, report_to=[],
              logging_steps=1, use_cpu=True, save_strategy="no", disable_tqdm=True,
              bf16=False, gradient_checkpointing=True)  # TRL defaults to bf16 autocast; parity is in fp32


def _trainers(tmp_path, layout):
    tokenizer = make_tokenizer()
    base = make_model(seed=3)
    trl_args = DPOConfig(output_dir=str(tmp_path / "trl"), beta=0.1, loss_type=["sigmoid"], **COMMON)
    trl_trainer = DPOTrainer(model=copy.deepcopy(base), ref_model=copy.deepcopy(base), args=trl_args,
                             train_dataset=Dataset.from_list(PAIRS), processing_class=tokenizer)
    records, _ = normalize_rows(PAIRS, source="pairs")
    features, _ = tokenize_records(records, tokenizer, max_length=trl_args.max_length)
    ours = PreferenceTrainer(copy.deepcopy(base), TrainingArguments(output_dir=str(tmp_path / "ours"), **COMMON),
                             loss="dpo", loss_kwargs={"beta": 0.1}, ref_model=copy.deepcopy(base),
                             collator=ListCollator(pad_token_id=tokenizer.pad_token_id,
                                                   max_length=trl_args.max_length, **layout),
                             train_dataset=features, processing_class=tokenizer)
    return trl_trainer, ours


@pytest.mark.parametrize("layout", [dict(shared_prompt=False), dict(shared_prompt=True),
                                    dict(shared_prompt=True, padding_free=True)],
                         ids=["per_sequence", "shared_prompt", "shared_prompt+padding_free"])
def test_first_step_loss_and_weights_after_five_steps_match_trl(tmp_path, layout):
    trl_trainer, ours = _trainers(tmp_path, layout)
    trl_batch = next(iter(trl_trainer.get_train_dataloader()))
    our_batch = next(iter(ours.get_train_dataloader()))
    trl_loss = trl_trainer.compute_loss(trl_trainer.model, trl_batch)
    our_loss = ours.compute_loss(ours.model, our_batch)
    assert abs(trl_loss.item() - our_loss.item()) < 1e-5

    trl_trainer.train()
    ours.train()
    trl_losses = [h["loss"] for h in trl_trainer.state.log_history if "loss" in h]
    our_losses = [h["loss"] for h in ours.state.log_history if "loss" in h]
    torch.testing.assert_close(torch.tensor(our_losses), torch.tensor(trl_losses), atol=1e-5, rtol=0)
    worst = max((p - q).abs().max().item() for p, q in
                zip(ours.model.parameters(), trl_trainer.model.parameters(), strict=True))
    assert worst < 1e-4
    # the run moved the weights, so the comparison above is not trivially true
    moved = max((p - q).abs().max().item() for p, q in
                zip(ours.model.parameters(), make_model(seed=3).parameters(), strict=True))
    assert moved > 1e-3
