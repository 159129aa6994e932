"""AOT: Alignment via Optimal Transport, TRL's loss_type="aot" and "aot_unpaired" (batch-level losses).

Both sort quantities over the batch and compare them rank by rank (the one-dimensional optimal transport plan),
so entry i of the returned (B,) tensor belongs to the i-th rank, not to list i: only the batch mean (what the
trainer takes) is meaningful. LossSpec ``batchwise=True`` says so. Lists without a preference take no part: they
are sorted last and their entries are exactly 0, with no gradient.
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor

from losses._common import compute_dtype, log_ratios, pair_columns, soft_logistic
from losses.hparams import Interval, Positive
from losses.types import PreferenceLogps


def _sorted_delta(a: Tensor, b: Tensor, has_pref: Tensor) -> tuple[Tensor, Tensor]:
    """sort(a) − sort(b) over the lists with a preference (B,), and the mask of the ranks that exist."""
    last = torch.tensor(torch.finfo(a.dtype).max, dtype=a.dtype, device=a.device)  # sorts after every real value
    a_sorted = torch.where(has_pref, a, last).sort().values
    b_sorted = torch.where(has_pref, b, last).sort().values
    ranks = torch.arange(a.shape[0], device=a.device) < has_pref.sum()
    return torch.where(ranks, a_sorted - b_sorted, 0.0), ranks


def aot_loss(x: PreferenceLogps, *, beta: Positive = 0.1,
             label_smoothing: Annotated[float, Interval(ge=0, lt=0.5)] = 0.0) -> Tensor:
    """AOT (paired): the sorted policy log-likelihood ratios must dominate the sorted reference ones.

    Paper:
        Melnyk, Mroueh, Belgodere, Rigotti, Nitsure, Yurochkin, Greenewald, Navratil, Ross (2024), "Distributional
        Preference Alignment of LLMs via Optimal Transport", arXiv 2406.05882, Eq. 9 (AOT paired, logistic loss).

    Formula:
        u_b = log πθ(y_w|x_b) − log πθ(y_l|x_b),   v_b = log πref(y_w|x_b) − log πref(y_l|x_b)
        Δ_(i) = u_(i) − v_(i)                       the i-th smallest of each, over the batch
        loss_i = −(1 − ε)·log σ(β·Δ_(i)) − ε·log σ(−β·Δ_(i))

    Where:
        πθ = ``x.policy``, πref = ``x.ref`` (B, K); y_w, y_l = the best-vs-worst pair by ``x.scores``
        β = ``beta`` > 0; ε = ``label_smoothing`` in [0, 0.5)

    Returns:
        (B,) one entry per rank (module docstring); float32 for bf16/fp16 inputs.

    Reduction to DPO:
        A batch of one list is exactly ``dpo_loss``; in general AOT replaces DPO's per-pair margin with a
        first-order stochastic dominance constraint over the batch.
    """
    if x.ref is None:
        raise ValueError("aot_loss needs reference log-probs: PreferenceLogps.ref is None")
    dtype = compute_dtype(x)
    u_w, u_l, has_pref = pair_columns(x, x.policy.to(dtype))
    v_w, v_l, _ = pair_columns(x, x.ref.to(dtype))
    delta, ranks = _sorted_delta(u_w - u_l, v_w - v_l, has_pref)
    return torch.where(ranks, soft_logistic(beta * delta, 1 - label_smoothing), 0.0)


def aot_unpaired_loss(x: PreferenceLogps, *, beta: Positive = 0.1,
                      label_smoothing: Annotated[float, Interval(ge=0, lt=0.5)] = 0.0) -> Tensor:
    """AOT (unpaired): the sorted chosen log-ratios must dominate the sorted rejected ones.

    Paper:
        Melnyk et al. (2024), arXiv 2406.05882, Eq. 8 (AOT unpaired, logistic loss).

    Formula:
        ℓ = log πθ(y|x) − log πref(y|x)
        Δ_(i) = ℓ_w,(i) − ℓ_l,(i)                  the i-th smallest chosen and rejected log-ratio over the batch
        loss_i = −(1 − ε)·log σ(β·Δ_(i)) − ε·log σ(−β·Δ_(i))

    Where:
        πθ = ``x.policy``, πref = ``x.ref`` (B, K); y_w, y_l = the best-vs-worst pair by ``x.scores``
        β = ``beta`` > 0; ε = ``label_smoothing`` in [0, 0.5)

    Returns:
        (B,) one entry per rank (module docstring); float32 for bf16/fp16 inputs.

    Reduction to DPO:
        A batch of one list is exactly ``dpo_loss``.
    """
    l_w, l_l, has_pref = pair_columns(x, log_ratios(x))
    delta, ranks = _sorted_delta(l_w, l_l, has_pref)
    return torch.where(ranks, soft_logistic(beta * delta, 1 - label_smoothing), 0.0)
