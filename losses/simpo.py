"""SimPO: Simple Preference Optimization, a reference-free margin on length-normalised log-likelihoods."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from losses._common import compute_dtype, lengths_of, pair_columns, where_pref
from losses.hparams import NonNegative, Positive
from losses.types import PreferenceLogps


def simpo_loss(x: PreferenceLogps, *, beta: Positive = 2.0, gamma_beta_ratio: NonNegative = 0.5) -> Tensor:
    """SimPO loss, per list: no reference model.

    Paper:
        Meng, Xia, Chen (2024), "SimPO: Simple Preference Optimization with a Reference-Free Reward",
        arXiv 2405.14734, Eq. 6.

    Formula:
        loss = −log σ( β/|y_w|·log πθ(y_w|x) − β/|y_l|·log πθ(y_l|x) − γ )

    Where:
        πθ(y|x) = ``x.policy`` (B, K) summed response log-probs; |y| = ``x.lengths`` (B, K), at least 1
        y_w, y_l = the valid entries with the highest and the lowest ``x.scores``
        β = ``beta`` > 0; γ = β·``gamma_beta_ratio`` ≥ 0, the target reward margin

    Returns:
        (B,) unreduced; 0 with no gradient on a list without a preference; float32 for bf16/fp16 inputs.

    Open choices:
        γ is given as γ/β (``gamma_beta_ratio``), as the authors' code and configs give it (TRL's CPOTrainer takes
        γ itself as ``simpo_gamma``). Defaults β = 2.0, γ/β = 0.5 lie in the grid the paper searched (β in
        [2, 2.5, 10], γ/β in [0.3 .. 1.6]); tune per model as the paper does. No SFT term (add one with
        ``loss.name=[simpo, sft]``).

    Reduction to DPO:
        A uniform reference (πref constant), unit lengths and γ = 0 give ``dpo_loss``'s form: −log σ(β·h).
    """
    dtype = compute_dtype(x)
    avg_w, avg_l, has_pref = pair_columns(x, x.policy.to(dtype) / lengths_of(x, "simpo_loss"))
    return where_pref(-F.logsigmoid(beta * (avg_w - avg_l) - beta * gamma_beta_ratio), has_pref)
