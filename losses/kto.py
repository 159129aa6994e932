"""KTO: Kahneman-Tversky Optimization, on single responses labelled desirable or undesirable (unpaired data).

An unpaired example reaches this loss as a list of two (LossSpec ``unpaired=True``): column 0 the labelled
response y to prompt x, column 1 a mismatched response y' (another example's response, put under x), from which
the KL baseline is estimated; ``x.weight`` is the label. ``prefopt.data.unpaired`` builds such lists from TRL's
unpaired format (prompt, completion, label) or from pairs, rotating responses within each batch as TRL's
KTOTrainer does.
"""

from __future__ import annotations

import torch
from torch import Tensor

from losses._common import log_ratios
from losses.hparams import Positive
from losses.types import PreferenceLogps


def kto_loss(x: PreferenceLogps, *, beta: Positive = 0.1, desirable_weight: Positive = 1.0,
             undesirable_weight: Positive = 1.0) -> Tensor:
    """KTO loss, per example.

    Paper:
        Ethayarajh, Xu, Muennighoff, Jurafsky, Kiela (2024), "KTO: Model Alignment as Prospect Theoretic
        Optimization", arXiv 2402.01306, Eqs. 7-8; computed as TRL 1.16's ``KTOTrainer`` (loss_type="kto").

    Formula:
        r = log πθ(y|x) − log πref(y|x)
        z₀ = max(0, mean_b[log πθ(y'_b|x_b) − log πref(y'_b|x_b)])     the KL estimate, no gradient
        loss = λ_D·(1 − σ(β·(r − z₀)))   if y is desirable
               λ_U·(1 − σ(β·(z₀ − r)))   if y is undesirable

    Where:
        πθ = ``x.policy``, πref = ``x.ref``: (B, 2); column 0 the labelled response y, column 1 the mismatched y'
        label = ``x.weight`` (B,): 1 desirable, 0 undesirable
        β = ``beta`` > 0; λ_D = ``desirable_weight``, λ_U = ``undesirable_weight`` > 0 (Eq. 8: pick them so that
        λ_D·n_D / (λ_U·n_U) lies in [1, 4/3])

    Returns:
        (B,) entries whose mean is the loss; z₀ couples the batch (``batchwise=True``); float32 for bf16/fp16.

    Open choices:
        z₀ is the mean over this batch, and under ``torch.distributed`` (``accelerate launch``) the mean of every
        process's batch mean, as TRL's KTOTrainer gathers it (``kl_baseline``); it is detached and clamped at 0, as
        in the paper and TRL. ``x.scores`` are not read.

    Reduction to DPO:
        None exact: KTO needs no pairs. With pairs unpaired (y_w desirable, y_l undesirable) and z₀ = 0 its
        gradient points the way DPO's does, each response scored against the batch's KL baseline alone.
    """
    if x.policy.shape[1] != 2 or x.weight is None:
        raise ValueError("kto_loss: each example is a list of 2 (the labelled response, a mismatched one) with "
                         f"its label in weight; got K = {x.policy.shape[1]}, weight "
                         f"{'None' if x.weight is None else 'set'}")
    label = x.weight
    if not torch.compiler.is_compiling() and ((label != 0) & (label != 1)).any():
        raise ValueError("kto_loss: weight is the label and must be 1 (desirable) or 0 (undesirable)")
    ratios = log_ratios(x)  # (B, 2)
    z0 = kl_baseline(ratios)
    r = ratios[:, 0]
    desirable = desirable_weight * (1 - torch.sigmoid(beta * (r - z0)))
    undesirable = undesirable_weight * (1 - torch.sigmoid(beta * (z0 - r)))
    return torch.where(label.bool(), desirable, undesirable)


def kl_baseline(ratios: Tensor) -> Tensor:
    """z₀ = max(0, mean of the mismatched responses' log-ratios), detached: () from (B, 2) log-ratios.

    Across processes (an initialised ``torch.distributed`` group of more than one) the per-process means are
    averaged, as TRL's KTOTrainer takes ``accelerator.gather_for_metrics(kl).mean()``, so every process uses the
    same z₀. That is a collective: every process must call it, as every process computes the loss at each step.
    """
    kl = ratios[:, 1].mean().detach()
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        kl = kl.clone()
        dist.all_reduce(kl)  # the sum of the processes' means
        kl = kl / dist.get_world_size()
    return kl.clamp(min=0)


@torch.no_grad()
def kto_metrics(x: PreferenceLogps, beta: float) -> dict[str, Tensor]:
    """What TRL's KTOTrainer logs, per example (NaN where it does not apply): the implicit reward β·r and log-prob
    of the desirable ("chosen") and the undesirable ("rejected") examples, and the KL baseline z₀."""
    ratios, label = log_ratios(x).float(), x.weight.bool()
    reward, policy = beta * ratios[:, 0], x.policy[:, 0].float()
    nan = torch.full_like(reward, float("nan"))
    return {"rewards/chosen": torch.where(label, reward, nan), "rewards/rejected": torch.where(label, nan, reward),
            "logps/chosen": torch.where(label, policy, nan), "logps/rejected": torch.where(label, nan, policy),
            "kl": kl_baseline(ratios).expand_as(reward)}
