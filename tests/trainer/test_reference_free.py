"""Reference-free losses (SimPO, ORPO, SFT) run one forward per step, of the policy alone: no reference model, no
reference forward; DPO beside them runs two (policy and reference)."""

from __future__ import annotations

import pytest

from tests.trainer.test_core import _trainer


def _count_forwards(module) -> list[int]:
    calls = [0]
    module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


@pytest.mark.parametrize("loss", ["simpo", "orpo", "sft", ["simpo", "sft"]])
def test_a_reference_free_loss_trains_without_any_reference(tmp_path, loss):
    trainer = _trainer(tmp_path, loss=loss, ref=None)  # a plain (non-PEFT) policy and no ref_model: DPO would refuse
    policy_forwards = _count_forwards(trainer.model)
    trainer.train()
    assert trainer.ref_model is None and not trainer.loss_spec.needs_ref
    assert policy_forwards[0] == 2  # 2 steps, one forward each (every list's prompt and responses in one batch)


def test_dpo_runs_a_reference_forward_per_step_and_refuses_to_run_without_one(tmp_path):
    trainer = _trainer(tmp_path, loss="dpo")
    policy_forwards, ref_forwards = _count_forwards(trainer.model), _count_forwards(trainer.ref_model)
    trainer.train()
    assert policy_forwards[0] == 2 and ref_forwards[0] == 2
    with pytest.raises(ValueError, match="the loss needs a reference"):
        _trainer(tmp_path, loss="dpo", ref=None).train()
