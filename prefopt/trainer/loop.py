"""``policy_logps``: the loss input of a collated batch, differentiable, for a training loop of your own.

    batch = ListCollator(pad_token_id=tok.pad_token_id)(features)
    x = policy_logps(model, batch, ref_model=ref, loss="dpo")    # PreferenceLogps; x.policy has a grad_fn
    get_loss("dpo")(x, beta=0.1).mean().backward()

This is the code path of ``PreferenceTrainer`` itself (its ``preference_logps`` calls it), so a loop of your own
optimises the numbers prefopt's trainer optimises: the same forward (each list's prompt once under a block mask,
or per-sequence rows), the same response boundary, the same reference handling. A full example:
``examples/own_loop.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch
from peft import PeftModel
from torch import Tensor

from losses import LossSpec, PreferenceLogps, get_loss
from prefopt.trainer.collate import ListCollator
from prefopt.trainer.logps import logps_from_logits, per_token, response_logits, response_token_logps, token_kl
from prefopt.trainer.packing import per_response
from prefopt.trainer.reference import adapter_off


def is_peft(model) -> bool:
    return isinstance(getattr(model, "module", model), PeftModel)


@contextmanager
def reference_context(model, ref_model=None):
    """No gradients, and the adapter off when the reference is ``model``'s own PEFT base (``ref_model`` None)."""
    with torch.no_grad(), adapter_off(model) if ref_model is None and is_peft(model) else nullcontext():
        yield


def _token_logps(model, batch: dict[str, Tensor], spec: LossSpec, ref_model,
                 reference: Callable[[], AbstractContextManager]) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Per-token policy and reference log-probs (R, L-1), and per-token KL(ref || policy) when the loss asks."""
    needs_live_ref = spec.needs_ref and "ref_logps" not in batch
    if not spec.needs_token_kl:
        policy = response_token_logps(model, batch)
        ref = None
        if needs_live_ref:
            with reference():
                ref = response_token_logps(ref_model, batch)
        return policy, ref, None
    # Full-vocabulary path: logits only at response positions, for both models.
    policy_logits = response_logits(model, batch)
    with reference():
        ref_logits = response_logits(ref_model, batch)
    ids, mask = batch["input_ids"], batch["completion_mask"]
    return (logps_from_logits(policy_logits, ids, mask), logps_from_logits(ref_logits, ids, mask),
            per_token(token_kl(ref_logits, policy_logits), mask))


def policy_logps(model, batch: dict[str, Tensor], *, ref_model=None, loss: str | LossSpec = "dpo",
                 reference: Callable[[], AbstractContextManager] | None = None) -> PreferenceLogps:
    """The ``PreferenceLogps`` a loss takes, for a batch collated by ``ListCollator``; differentiable in ``model``.

    Args:
        model: the policy (a transformers causal LM, optionally PEFT-wrapped); its forward runs with gradients.
        batch: ``ListCollator(...)(features)`` on the model's device (any layout: packed or per-sequence).
        ref_model: the frozen reference. None: the batch's precomputed ``ref_logps`` when present, else the PEFT
            base of ``model`` (adapter off); a loss that needs no reference needs neither.
        loss: a registry name or ``LossSpec`` (``losses.get_loss``): only the fields it needs are built (per-token
            tensors, segments, the token KL, the per-list weight).
        reference: a context manager factory for the reference forward; default ``reference_context`` (no grad,
            adapter off when the reference is the PEFT base). The trainer passes its own (gradient checkpointing
            off as well).

    Returns:
        ``PreferenceLogps`` with ``policy`` (B, K) summed response log-probs (with a grad_fn), ``ref`` (B, K) or
        None, ``scores``, ``mask``, ``lengths`` and the loss's extra fields.
    """
    spec = get_loss(loss) if isinstance(loss, str) else loss
    if spec.needs_ref and "ref_logps" not in batch and ref_model is None and not is_peft(model):
        raise ValueError("the loss needs a reference: pass ref_model, use a PEFT policy, or precompute ref_logps")
    reference = reference or (lambda: reference_context(model, ref_model))
    # (R, L-1) per prediction → (N, T) per response (identity for per-sequence rows) → (B, K, ...) per list
    tokens = _token_logps(model, batch, spec, model if ref_model is None else ref_model, reference)
    policy_tok, ref_tok, kl = [None if v is None else per_response(v, batch) for v in tokens]
    tmask = per_response(batch["completion_mask"][:, 1:].bool(), batch)
    lists = lambda v: ListCollator.to_lists(v, batch)
    policy = lists((policy_tok * tmask).sum(1))
    ref = lists((ref_tok * tmask).sum(1)) if ref_tok is not None else batch.get("ref_logps")
    fields = {}
    if spec.needs_tokens:
        fields.update(policy_tokens=lists(policy_tok), ref_tokens=lists(ref_tok), token_mask=lists(tmask))
    if spec.needs_segments:
        if "segments" not in batch:
            raise ValueError("this loss needs refined segments: the data collator produced no 'segments'")
        fields["segments"] = lists(per_response(batch["segments"][:, 1:], batch))
    if spec.needs_token_kl:
        fields["token_kl"] = lists(kl)
    return PreferenceLogps(policy=policy, ref=ref, scores=batch["scores"], mask=batch["mask"],
                           weight=batch.get("weight") if spec.uses_weight else None,
                           lengths=lists(tmask.sum(1)), **fields)
