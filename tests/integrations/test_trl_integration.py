"""prefopt.integrations.trl: TRL's DPOTrainer trained with a prefopt loss matches prefopt's own trainer number for
number (per-sequence rows, the layout TRL's collator builds). prefopt's ``dpo`` matches TRL's own sigmoid loss
(tests/trainer/test_trl_parity.py), so through the bridge ``dpo`` is TRL's DPO too."""

from __future__ import annotations

import copy

import pytest
import torch
from datasets import Dataset
from transformers import TrainingArguments
from trl import DPOConfig

from prefopt.data.features import tokenize_records
from prefopt.data.records import normalize_rows
from prefopt.integrations.trl import PrefoptDPOTrainer
from prefopt.trainer import ListCollator, PreferenceTrainer
from tests.conftest import make_model, make_tokenizer
from tests.trainer.test_trl_parity import COMMON, PAIRS

IPO = "tests.losses.plugin_ipo:ipo_loss"


def _pair(tmp_path, loss, loss_kwargs):
    tokenizer, base = make_tokenizer(), make_model(seed=3)
    args = DPOConfig(output_dir=str(tmp_path / "trl"), beta=0.1, loss_type=["sigmoid"], **COMMON)
    trl = PrefoptDPOTrainer(model=copy.deepcopy(base), ref_model=copy.deepcopy(base), args=args,
                            train_dataset=Dataset.from_list(PAIRS), processing_class=tokenizer, loss=loss,
                            loss_kwargs=loss_kwargs)
    records, _ = normalize_rows(PAIRS, source="pairs")
    features, _ = tokenize_records(records, tokenizer, max_length=args.max_length)
    ours = PreferenceTrainer(copy.deepcopy(base), TrainingArguments(output_dir=str(tmp_path / "ours"), **COMMON),
                             loss=loss, loss_kwargs=loss_kwargs or {"beta": 0.1}, ref_model=copy.deepcopy(base),
                             collator=ListCollator(pad_token_id=tokenizer.pad_token_id, max_length=args.max_length,
                                                   shared_prompt=False), train_dataset=features,
                             processing_class=tokenizer)
    return trl, ours


def _losses(trainer) -> torch.Tensor:
    return torch.tensor([h["loss"] for h in trainer.state.log_history if "loss" in h])


@pytest.mark.parametrize("loss, loss_kwargs", [("dpo", None), (IPO, {"tau": 0.5})], ids=["dpo", "user_ipo"])
def test_trl_with_a_prefopt_loss_matches_prefopts_trainer(tmp_path, loss, loss_kwargs):
    trl, ours = _pair(tmp_path, loss, loss_kwargs)
    trl.train()
    ours.train()
    torch.testing.assert_close(_losses(trl), _losses(ours), atol=1e-5, rtol=0)
    worst = max((p - q).abs().max().item()
                for p, q in zip(trl.model.parameters(), ours.model.parameters(), strict=True))
    assert worst < 1e-4
    moved = max((p - q).abs().max().item() for p, q in
                zip(trl.model.parameters(), make_model(seed=3).parameters(), strict=True))
    assert moved > 1e-3  # training moved the weights: the match above is not trivially true
    logged = [h for h in trl.state.log_history if "loss" in h]
    assert all("rewards/margins" in h and "rewards/accuracies" in h for h in logged)  # prefopt's metrics, TRL's log


def test_beta_comes_from_the_dpo_config_and_token_level_losses_are_refused(tmp_path):
    trl, _ = _pair(tmp_path, "dpo", None)
    assert trl.loss_kwargs["beta"] == 0.1
    with pytest.raises(ValueError, match="per-token inputs"):
        _pair(tmp_path, "rrpo", None)
    with pytest.raises(ValueError, match="beta"):
        _pair(tmp_path, "dpo", {"beta": -1.0})
