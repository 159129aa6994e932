"""APO: Anchored Preference Optimization, TRL's loss_type="apo_zero" and "apo_down"."""

from __future__ import annotations

from torch import Tensor

from losses._common import log_ratios, pair_columns, where_pref
from losses.hparams import Positive
from losses.types import PreferenceLogps


def apo_zero_loss(x: PreferenceLogps, *, beta: Positive = 0.1) -> Tensor:
    """APO-zero: raise the chosen response's likelihood and lower the rejected one's, each anchored at zero.

    Paper:
        D'Oosterlinck, Xu, Develder, Demeester, Singh, Potts, Kiela, Mehri (2024), "Anchored Preference
        Optimization and Contrastive Revisions", arXiv 2408.06266, Eq. 7.

    Formula:
        loss = [1 − σ(r_w)] + σ(r_l),   r = β·[log πθ(y|x) − log πref(y|x)]

    Where:
        πθ = ``x.policy``, πref = ``x.ref`` (B, K); y_w, y_l = the best-vs-worst pair by ``x.scores``; β = ``beta``

    Returns:
        (B,) unreduced; 0 with no gradient on a list without a preference; float32 for bf16/fp16 inputs.

    Open choices:
        For data whose chosen responses are better than the model's own outputs (the paper's advice).

    Reduction to DPO:
        None: APO anchors each reward, DPO only their margin.
    """
    r_w, r_l, has_pref = pair_columns(x, beta * log_ratios(x))
    return where_pref((1 - r_w.sigmoid()) + r_l.sigmoid(), has_pref)


def apo_down_loss(x: PreferenceLogps, *, beta: Positive = 0.1) -> Tensor:
    """APO-down: lower both likelihoods, the rejected one's more.

    Paper:
        D'Oosterlinck et al. (2024), arXiv 2408.06266, Eq. 8.

    Formula:
        loss = σ(r_w) + [1 − σ(r_w − r_l)],   r = β·[log πθ(y|x) − log πref(y|x)]

    Where:
        πθ = ``x.policy``, πref = ``x.ref`` (B, K); y_w, y_l = the best-vs-worst pair by ``x.scores``; β = ``beta``

    Returns:
        (B,) unreduced; 0 with no gradient on a list without a preference; float32 for bf16/fp16 inputs.

    Open choices:
        For data whose chosen responses are worse than the model's own outputs (the paper's advice).

    Reduction to DPO:
        None exact: the second term is a sigmoid (not log-sigmoid) of DPO's β·h.
    """
    r_w, r_l, has_pref = pair_columns(x, beta * log_ratios(x))
    return where_pref(r_w.sigmoid() + (1 - (r_w - r_l).sigmoid()), has_pref)
