"""TRL's ``DPOTrainer`` with any prefopt loss that reads sequence log-probs (every pairwise one, a loss of your own).

    from prefopt.integrations.trl import PrefoptDPOTrainer

    trainer = PrefoptDPOTrainer(model=model, ref_model=ref, args=DPOConfig(output_dir="out", beta=0.1),
                                train_dataset=pairs, processing_class=tokenizer, loss="osp")
    trainer.train()

Everything but the loss is TRL's: its dataset preparation, collator (rows ``[chosen..., rejected...]``), precomputed
reference log-probs, PEFT handling, logging and saving. TRL's ``DPOTrainer`` has no loss hook, so this subclass
overrides the public ``compute_loss``: TRL's batch is exactly prefopt's per-sequence layout, so it is handed, with
each pair's list index, slot and scores ``[1, 0]``, to ``prefopt.trainer.policy_logps`` (``PreferenceTrainer``'s
own code path) and the loss is called through the registry. With ``loss="dpo"`` the run matches TRL's sigmoid loss
and prefopt's trainer number for number (tests/integrations/test_trl_integration.py).

``loss_kwargs`` are the loss's hyper-parameters, checked against its declared ranges; a loss's ``beta`` left out
is ``args.beta``. The per-list ``weight`` of DNO, OSP and CREAM is None here (TRL's data has no such column): their
hard-label case. Token-level losses (RRPO: refined segments, a token KL) are refused.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from trl import DPOTrainer
from trl.models.utils import disable_gradient_checkpointing

from losses import get_loss
from prefopt.trainer.loop import is_peft, policy_logps
from prefopt.trainer.metrics import preference_metrics
from prefopt.trainer.reference import adapter_off


class PrefoptDPOTrainer(DPOTrainer):
    """``trl.DPOTrainer`` whose loss is a prefopt loss: ``loss`` (a registry name or ``"package.module:function"``)
    with ``loss_kwargs``; every other argument is ``DPOTrainer``'s."""

    def __init__(self, *args, loss: str = "dpo", loss_kwargs: dict[str, Any] | None = None, **kwargs):
        spec = get_loss(loss)
        if spec.needs_tokens or spec.needs_segments or spec.needs_token_kl:
            raise ValueError(f"loss {loss!r} needs per-token inputs (tokens, segments or a token KL) that TRL's "
                             "DPOTrainer does not build; train it with prefopt.trainer.PreferenceTrainer")
        super().__init__(*args, **kwargs)
        given = dict(loss_kwargs or {})
        if "beta" in spec.defaults and "beta" not in given:
            given["beta"] = self.beta  # DPOConfig's beta, as TRL's own losses use it
        problems = spec.validate(given)
        if problems:
            raise ValueError(f"loss {loss!r}: " + "; ".join(problems))
        self.loss_spec, self.loss_kwargs = spec, {**spec.defaults, **given}
        for m in (self.model, self.ref_model):  # TRL attached its fused LM head already: prefopt must not again
            if m is not None:
                core = m.get_base_model() if is_peft(m) else m
                core._prefopt_fused_head = True

    @contextmanager
    def _reference_mode(self):
        """As ``PreferenceTrainer``: no grad, no gradient checkpointing, the adapter off for a PEFT base reference."""
        adapter = adapter_off(self.model) if self.ref_model is None and is_peft(self.model) else nullcontext()
        with torch.no_grad(), adapter, disable_gradient_checkpointing(self.model,
                                                                      self.args.gradient_checkpointing_kwargs):
            yield

    def _as_lists(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """TRL's pair batch (rows: B chosen, then B rejected) as prefopt's per-sequence list batch."""
        b = inputs["input_ids"].shape[0] // 2
        device = inputs["input_ids"].device
        batch = {k: inputs[k] for k in ("input_ids", "attention_mask", "completion_mask")}
        batch.update(list_index=torch.arange(b, device=device).repeat(2),
                     slot=torch.arange(2, device=device).repeat_interleave(b),
                     mask=torch.ones(b, 2, dtype=torch.bool, device=device),
                     scores=torch.tensor([[1.0, 0.0]], device=device).expand(b, 2))
        if self.precompute_ref_logps:
            batch["ref_logps"] = torch.stack([inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]], 1)
        return batch

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs:
            raise ValueError("PrefoptDPOTrainer computes no logits for compute_metrics; leave it unset")
        x = policy_logps(model, self._as_lists(inputs), loss=self.loss_spec, reference=self._reference_mode,
                         ref_model=self.ref_model if self.ref_model is not None else self.model)
        loss = self.loss_spec(x, **self.loss_kwargs).mean()
        mode = "train" if self.model.training else "eval"
        for name, value in preference_metrics(x, float(self.loss_kwargs.get("beta", self.beta))).items():
            value = self.accelerator.gather_for_metrics(value.float()).nanmean().item()
            if value == value:  # Kendall τ is NaN on pairs
                self._metrics[mode][name].append(value)
        return loss
