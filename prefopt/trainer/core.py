"""PreferenceTrainer: transformers' Trainer with one policy forward per batch of lists and a pluggable loss.

Checkpointing, resume, gradient accumulation, mixed precision, accelerate/DeepSpeed/FSDP and logging come from
``transformers.Trainer``. This class owns what is particular to preference learning: the forward over all B·K
responses (each list's prompt encoded once where the model can take a block mask: ``prefopt.trainer.packing``),
the reference log-probs (frozen model, adapter off, or precomputed), the loss call through the registry
(``losses.get_loss``; the trainer never looks at a loss's name), and the metrics.
"""

from __future__ import annotations

import math
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import Tensor
from transformers import Trainer
from trl.models import prepare_deepspeed, prepare_fsdp
from trl.models.utils import disable_gradient_checkpointing

from losses import LossSpec, PreferenceLogps, get_loss
from prefopt.trainer.collate import ListCollator
from prefopt.trainer.logps import ensure_fused_head
from prefopt.trainer.loop import is_peft, policy_logps
from prefopt.trainer.metrics import preference_metrics
from prefopt.trainer.packing import adapt_collator
from prefopt.trainer.reference import adapter_off
from prefopt.trainer.safety import NonFiniteError, NonFiniteGuard, model_is_finite, nonfinite_message


class PreferenceTrainer(Trainer):
    """Train a causal LM on tokenized preference lists with any registered loss.

    Args:
        model: the policy (a transformers model, optionally PEFT-wrapped).
        args: ``transformers.TrainingArguments`` (``remove_unused_columns`` is forced off).
        loss: registry name (``losses.LOSSES``), a user's ``"package.module:function"``, a list of names summed
            with ``loss_weights`` (TRL's ``loss_type=[...]``/``loss_weights=[...]``), or a ``LossSpec``;
            ``loss_kwargs`` its hyper-parameters, checked against the loss's declared types and ranges.
        ref_model: a frozen reference model; None means the PEFT base (adapter off) when the policy is a PEFT
            model, or precomputed ``ref_logps`` in the features.
        collator: a ``ListCollator``; features are as it documents.
    """

    # compute_loss returns a mean over the micro-batch: Trainer divides by the accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(self, model, args, *, loss: str | list[str] | LossSpec, loss_kwargs: dict[str, Any] | None = None,
                 loss_weights: list[float] | None = None, ref_model=None, collator: ListCollator,
                 train_dataset=None, eval_dataset=None, processing_class=None, callbacks=None):
        self.loss_spec = loss if isinstance(loss, LossSpec) else get_loss(loss, loss_weights)
        problems = self.loss_spec.validate(loss_kwargs or {})
        if problems:
            raise ValueError(f"loss {loss!r}: " + "; ".join(problems))
        self.loss_kwargs = {**self.loss_spec.defaults, **(loss_kwargs or {})}
        args.remove_unused_columns = False
        if self.loss_spec.unpaired:  # each batch holds its own mismatched responses (KTO's KL baseline), in order
            args.train_sampling_strategy = "sequential"
        collator = adapt_collator(collator, model, ref_model)  # per-sequence rows where a model cannot pack
        ensure_fused_head(model)
        super().__init__(model=model, args=args, data_collator=collator, train_dataset=train_dataset,
                         eval_dataset=eval_dataset, processing_class=processing_class,
                         callbacks=[NonFiniteGuard(), *(callbacks or [])])
        self.ref_model = ref_model
        if ref_model is not None:
            ref_model.requires_grad_(False).eval()
            ensure_fused_head(ref_model)
            if self.is_deepspeed_enabled:  # shard the frozen reference the way TRL does
                self.ref_model = prepare_deepspeed(ref_model, self.accelerator)
            elif self.is_fsdp_enabled:
                self.ref_model = prepare_fsdp(ref_model, self.accelerator)
            else:
                self.ref_model = self.accelerator.prepare_model(ref_model, evaluation_mode=True)
        self._metrics: dict[str, defaultdict[str, list[float]]] = {"train": defaultdict(list),
                                                                    "eval": defaultdict(list)}
        self.total_tokens = 0

    # ---- forward -------------------------------------------------------------------------------------------
    def _is_peft(self) -> bool:
        return is_peft(self.model)

    @contextmanager
    def _reference_mode(self):
        """No grad, no gradient checkpointing, and the adapter off when the reference is the PEFT base."""
        adapter = adapter_off(self.model) if self.ref_model is None and self._is_peft() else nullcontext()
        with torch.no_grad(), adapter, disable_gradient_checkpointing(self.model,
                                                                      self.args.gradient_checkpointing_kwargs):
            yield

    def preference_logps(self, model, inputs: dict[str, Tensor]) -> PreferenceLogps:
        """Run the forward(s) and build the loss input, with only the fields the registered loss needs
        (``prefopt.trainer.loop.policy_logps``, the same function a loop of your own calls)."""
        needs_live_ref = self.loss_spec.needs_ref and "ref_logps" not in inputs
        if needs_live_ref and self.ref_model is None and not self._is_peft():
            raise ValueError("the loss needs a reference: pass ref_model, use a PEFT policy, or precompute ref_logps")
        return policy_logps(model, inputs, loss=self.loss_spec, reference=self._reference_mode,
                            ref_model=self.ref_model if self.ref_model is not None else self.model)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        x = self.preference_logps(model, inputs)
        per_list = self.loss_spec(x, **self.loss_kwargs)  # (B,)
        loss = per_list.mean()
        if not torch.isfinite(loss):
            raise NonFiniteError(nonfinite_message(f"the loss ({loss.item()})", self.state.global_step + 1,
                                                   self.args.output_dir))
        self._record(x, per_list, inputs)
        return (loss, {"per_list": per_list.detach()}) if return_outputs else loss

    # ---- metrics -------------------------------------------------------------------------------------------
    def _record(self, x: PreferenceLogps, per_list: Tensor, inputs: dict[str, Tensor]) -> None:
        mode = "train" if self.model.training else "eval"
        beta = float(self.loss_kwargs.get("beta", 1.0))
        metrics = (self.loss_spec.metrics or preference_metrics)(x, beta)  # KTO logs what TRL's KTOTrainer logs
        means = torch.stack([self.accelerator.gather_for_metrics(v.float()).nanmean() for v in metrics.values()])
        for name, value in zip(metrics, means.tolist(), strict=True):  # one device sync for all metrics
            if not math.isnan(value):  # Kendall τ of a batch of pairs only
                self._metrics[mode][name].append(value)
        if mode == "train":  # for the summary's tokens/s
            self.total_tokens += self.accelerator.gather_for_metrics(inputs["attention_mask"].sum()).sum().item()

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if self.model.training else "eval"
        metrics = {k: sum(v) / len(v) for k, v in self._metrics[mode].items() if v}
        if mode == "eval":
            metrics = {f"eval_{k}": v for k, v in metrics.items()}
        self._metrics[mode].clear()
        super().log({**logs, **metrics}, start_time)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Never write non-finite weights (a checkpoint or the model): refuse, naming the last usable one."""
        if not model_is_finite(self.model):
            raise NonFiniteError(nonfinite_message("a weight", self.state.global_step, self.args.output_dir))
        super().save_model(output_dir, _internal_call)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None
