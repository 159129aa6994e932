"""A loop of your own: ``policy_logps`` is differentiable and gives the trainer's numbers; examples/own_loop.py
trains a real (config-built) Hugging Face model with prefopt losses."""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

import pytest
import torch
from transformers import TrainingArguments

from losses import LossSpec, get_loss
from prefopt.data.features import tokenize_records
from prefopt.data.records import normalize_rows
from prefopt.trainer import ListCollator, PreferenceTrainer, frozen_copy, policy_logps, sequence_logps
from tests.conftest import make_model, make_tokenizer
from tests.trainer.test_trl_parity import PAIRS

ROOT = Path(__file__).resolve().parents[2]


def _batch(shared_prompt: bool):
    tokenizer = make_tokenizer()
    features, _ = tokenize_records(normalize_rows(PAIRS[:4], source="pairs")[0], tokenizer, max_length=64)
    return tokenizer, ListCollator(pad_token_id=tokenizer.pad_token_id, shared_prompt=shared_prompt)(features)


@pytest.mark.parametrize("shared_prompt", [False, True])
def test_policy_logps_is_differentiable_and_equals_the_scoring_path(shared_prompt):
    tokenizer, batch = _batch(shared_prompt)
    model = make_model(seed=1)
    x = policy_logps(model, batch, ref_model=frozen_copy(model), loss="dpo")
    assert x.policy.shape == (4, 2) and x.policy.requires_grad and not x.ref.requires_grad
    torch.testing.assert_close(x.policy, x.ref)  # the reference is a copy of the starting policy
    plain = sequence_logps(model, tokenizer, [p["prompt"] for p in PAIRS[:4]],
                           [[p["chosen"], p["rejected"]] for p in PAIRS[:4]])
    torch.testing.assert_close(x.policy.detach(), torch.tensor(plain), atol=1e-5, rtol=0)
    get_loss("dpo")(x, beta=0.1).mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_policy_logps_is_what_the_trainer_computes(tmp_path):
    _, batch = _batch(True)
    model, ref = make_model(seed=1), make_model(seed=2)
    trainer = PreferenceTrainer(model, TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[]),
                                loss="lipo", ref_model=ref, collator=ListCollator(pad_token_id=0))
    ours = policy_logps(model, batch, ref_model=ref, loss="lipo")
    theirs = trainer.preference_logps(model, batch)
    torch.testing.assert_close(ours.policy, theirs.policy, atol=0, rtol=0)
    torch.testing.assert_close(ours.ref, theirs.ref, atol=0, rtol=0)


def _margin(x, *, scale: float = 1.0):
    return -scale * (x.policy[:, 0] - x.policy[:, 1])


def test_a_reference_is_built_only_when_the_loss_needs_one():
    _, batch = _batch(True)
    with pytest.raises(ValueError, match="needs a reference"):
        policy_logps(make_model(), batch, loss="dpo")
    x = policy_logps(make_model(), batch, loss=LossSpec(_margin, needs_ref=False))
    assert x.ref is None and x.policy.requires_grad


@pytest.mark.parametrize("loss", ["dpo", "lipo"])
def test_the_own_loop_example_trains_a_real_model(tmp_path, monkeypatch, capsys, loss):
    model_dir = tmp_path / "model"
    make_model(seed=0).save_pretrained(model_dir)
    make_tokenizer().save_pretrained(model_dir)
    script = ROOT / "examples" / "own_loop.py"
    monkeypatch.setattr(sys, "argv", [str(script), str(model_dir), loss, "16"])
    runpy.run_path(str(script), run_name="__main__")  # the script as a user runs it, in this process
    losses = [float(v) for v in re.findall(r"loss (\S+)", capsys.readouterr().out)]
    assert len(losses) == 16 and sum(losses[-4:]) < sum(losses[:4])  # it learned
    assert len(script.read_text().split('\n"""\n', 1)[1].strip().splitlines()) <= 35  # "in about 30 lines"
