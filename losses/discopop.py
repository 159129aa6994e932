"""DiscoPOP: the log-ratio modulated loss discovered by LLM-driven objective search (TRL's loss_type="discopop")."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from losses._common import pair_margin, where_pref
from losses.hparams import Positive
from losses.types import PreferenceLogps


def discopop_loss(x: PreferenceLogps, *, beta: Positive = 0.1, discopop_tau: Positive = 0.05) -> Tensor:
    """Log-ratio modulated loss (LRML), per list.

    Paper:
        Chris Lu, Holt, Fanconi, Chan, Foerster, van der Schaar, Lange (2024), "Discovering Preference Optimization
        Algorithms with and for Large Language Models", arXiv 2406.08414, Eq. 5.

    Formula:
        z = β·h,  m = σ(z/τ)
        loss = (1 − m)·(−log σ(z)) + m·exp(−z)

    Where:
        h = [log πθ(y_w|x) − log πref(y_w|x)] − [log πθ(y_l|x) − log πref(y_l|x)]
        y_w, y_l = the valid entries with the highest and the lowest ``x.scores``
        β = ``beta`` > 0, τ = ``discopop_tau`` > 0 (the paper's and TRL's default 0.05)

    Returns:
        (B,) unreduced; 0 with no gradient on a list without a preference; float32 for bf16/fp16 inputs.

    Open choices:
        Computed in log space: m·exp(−z) = exp(−z − softplus(−z/τ)) and 1 − m = σ(−z/τ). Equal to TRL's
        ``exp(-z) * sigmoid(z / tau)`` wherever that is finite; TRL's overflows to inf·0 = NaN for z below about
        −88 (float32), this stays finite (→ 0 for τ < 1).

    Reduction to DPO:
        m → 0 (z ≪ −τ) leaves the DPO logistic loss; m → 1 (z ≫ τ) the exponential loss exp(−β·h).
    """
    h, has_pref = pair_margin(x)
    z = beta * h
    loss = (-z / discopop_tau).sigmoid() * -F.logsigmoid(z) + (-z - F.softplus(-z / discopop_tau)).exp()
    return where_pref(loss, has_pref)

