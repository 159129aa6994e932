"""Every TRL DPOTrainer ``loss_type`` (and a weighted sum, as ``loss_weights``), and KTO, number for number against
TRL: 5 training steps on one tiny model and data, the same loss at every step (within 1e-5) and the same weights
after (within 1e-4, as the DPO parity test), each list's prompt encoded once (the default layout).

One thread, no gradient checkpointing and a 4-list batch keep the whole set to about 3 s per loss on one core.
"""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from datasets import Dataset
from transformers import TrainingArguments
from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer

from losses import TRL_LOSS_TYPES, get_loss
from prefopt.data.features import tokenize_records
from prefopt.data.records import normalize_rows
from prefopt.data.unpaired import unpaired_features
from prefopt.trainer.collate import ListCollator
from prefopt.trainer.core import PreferenceTrainer
from tests.conftest import make_model, make_tokenizer
from tests.trainer.test_trl_parity import PAIRS

COMMON = dict(per_device_train_batch_size=4, max_steps=5, learning_rate=5e-3, seed=0, report_to=[],
              logging_steps=1, use_cpu=True, save_strategy="no", disable_tqdm=True, bf16=False)
# TRL's hyper-parameter values where its defaults do not exercise the loss (exo_pair needs label_smoothing > 0)
HYPER = {"exo_pair": {"label_smoothing": 1e-3}, "robust": {"label_smoothing": 0.1},
         "aot": {"label_smoothing": 0.1}, "aot_unpaired": {"label_smoothing": 0.1}, "discopop": {"discopop_tau": 0.5}}
UNPAIRED = [{"prompt": p["prompt"], "completion": p["chosen" if i % 3 else "rejected"], "label": bool(i % 3)}
            for i, p in enumerate(PAIRS)]


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny model runs fastest on one thread, and other tests share the cores
    yield
    torch.set_num_threads(before)


@functools.cache
def _world():
    return make_tokenizer(), make_model(seed=3)


def _ours(tmp_path, loss, features, **kwargs):
    tokenizer, base = _world()
    return PreferenceTrainer(copy.deepcopy(base), TrainingArguments(output_dir=str(tmp_path / "ours"), **COMMON),
                             loss=loss, ref_model=copy.deepcopy(base), train_dataset=features,
                             collator=ListCollator(pad_token_id=tokenizer.pad_token_id, max_length=1024,
                                                   shared_prompt=True),
                             processing_class=tokenizer, **kwargs)


def _same_run(trl_trainer, ours):
    trl_trainer.train()
    ours.train()
    trl_losses = [h["loss"] for h in trl_trainer.state.log_history if "loss" in h]
    our_losses = [h["loss"] for h in ours.state.log_history if "loss" in h]
    assert len(our_losses) == 5
    torch.testing.assert_close(torch.tensor(our_losses), torch.tensor(trl_losses), atol=1e-5, rtol=0)
    worst = max((p - q).abs().max().item() for p, q in
                zip(ours.model.parameters(), trl_trainer.model.parameters(), strict=True))
    # 1e-4, as the DPO parity test: Adam turns float32 rounding into weight noise of ~2e-5 here (our own
    # per-sequence and shared-prompt layouts differ by as much), while a wrong loss moves them by ~1e-3
    assert worst < 1e-4
    moved = max((p - q).abs().max().item() for p, q in zip(ours.model.parameters(), _world()[1].parameters(),
                                                            strict=True))
    assert moved > 1e-3  # training moved the weights: the comparison is not trivially true


def _pair_features():
    tokenizer, _ = _world()
    records, _ = normalize_rows(PAIRS, source="pairs")
    return tokenize_records(records, tokenizer, max_length=1024)[0]


@pytest.mark.parametrize("loss_type", [*TRL_LOSS_TYPES, ("sigmoid", "sft")],
                         ids=[*TRL_LOSS_TYPES, "sigmoid+sft"])
def test_each_trl_loss_type_trains_as_trls_dpo_trainer(tmp_path, loss_type):
    tokenizer, base = _world()
    names = [loss_type] if isinstance(loss_type, str) else list(loss_type)
    weights = [1.0] if len(names) == 1 else [1.0, 0.5]
    hyper = {k: v for n in names for k, v in HYPER.get(n, {}).items()}
    trl_args = DPOConfig(output_dir=str(tmp_path / "trl"), beta=0.1, loss_type=names, loss_weights=weights, **hyper,
                         **COMMON)
    trl_trainer = DPOTrainer(model=copy.deepcopy(base), ref_model=copy.deepcopy(base), args=trl_args,
                             train_dataset=Dataset.from_list(PAIRS), processing_class=tokenizer)
    spec = get_loss(names, weights)
    kwargs = {"beta": 0.1, **hyper} if "beta" in spec.defaults else {}
    _same_run(trl_trainer, _ours(tmp_path, names, _pair_features(), loss_weights=weights, loss_kwargs=kwargs))


@pytest.mark.parametrize("data", ["unpaired", "paired"])
def test_kto_trains_as_trls_kto_trainer(tmp_path, data):
    """TRL's unpaired format read as it is, and pairs unpaired as TRL's KTOTrainer unpairs them; the KL baseline from
    the mismatched responses of each batch."""
    tokenizer, base = _world()
    rows = UNPAIRED if data == "unpaired" else PAIRS
    trl_args = KTOConfig(output_dir=str(tmp_path / "trl"), beta=0.1, desirable_weight=1.0, undesirable_weight=1.5,
                         **COMMON)
    trl_trainer = KTOTrainer(model=copy.deepcopy(base), ref_model=copy.deepcopy(base), args=trl_args,
                             train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    records, _ = normalize_rows(rows, source=data)
    tokenize = functools.partial(tokenize_records, tokenizer=tokenizer, max_length=1024)
    features, _ = unpaired_features(records, tokenize, batch_size=4)
    ours = _ours(tmp_path, "kto", features, loss_kwargs={"beta": 0.1, "undesirable_weight": 1.5})
    _same_run(trl_trainer, ours)
    # and the logs say what TRL's say: the KL baseline, the desirable and undesirable rewards and log-probs
    keys = ("kl", "rewards/chosen", "rewards/rejected", "logps/chosen", "logps/rejected")
    steps = lambda t: [{k: h[k] for k in keys if k in h} for h in t.state.log_history if "loss" in h]
    for theirs, mine in zip(steps(trl_trainer), steps(ours), strict=True):
        assert theirs.keys() == mine.keys() and "kl" in mine
        torch.testing.assert_close(torch.tensor(list(mine.values())), torch.tensor(list(theirs.values())),
                                   atol=1e-4, rtol=1e-5)
