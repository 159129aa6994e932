"""TRL's losses on each response's own implicit reward: ``nca_pair``, ``bco_pair``, ``sppo_hard``.

Unlike DPO, these anchor each reward r = β·[log πθ(y|x) − log πref(y|x)] on its own, not only the margin r_w − r_l,
so they can push the chosen response's likelihood up in absolute terms. Computed as ``trl.DPOTrainer`` (TRL 1.16,
``_compute_loss``) does, on each list's best-vs-worst pair (y_w, y_l = the valid entries with the highest and the
lowest ``x.scores``). (B,) unreduced; 0 with no gradient on a list without a preference; float32 for bf16/fp16.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from losses._common import log_ratios, pair_columns, where_pref
from losses.hparams import Positive
from losses.types import PreferenceLogps


def nca_pair_loss(x: PreferenceLogps, *, beta: Positive = 0.1) -> Tensor:
    """TRL's loss_type="nca_pair": Noise Contrastive Alignment on a pair.

    Paper:
        Chen, He, Su, Zhou, Zhu (2024), "Noise Contrastive Alignment of Language Models with Explicit Rewards",
        arXiv 2402.05369, the NCA loss with K = 2 (Eq. 12 of v3, pairwise case).

    Formula:
        loss = −log σ(r_w) − ½·log σ(−r_w) − ½·log σ(−r_l),   r = β·[log πθ(y|x) − log πref(y|x)]

    Where:
        πθ = ``x.policy``, πref = ``x.ref`` (B, K); β = ``beta`` > 0

    Reduction to DPO:
        None: NCA scores each response against the reference alone (absolute likelihood), DPO the pair's margin.
    """
    r_w, r_l, has_pref = pair_columns(x, beta * log_ratios(x))
    loss = -F.logsigmoid(r_w) - 0.5 * F.logsigmoid(-r_w) - 0.5 * F.logsigmoid(-r_l)
    return where_pref(loss, has_pref)


def bco_pair_loss(x: PreferenceLogps, *, beta: Positive = 0.1) -> Tensor:
    """TRL's loss_type="bco_pair": Binary Classifier Optimization on a pair.

    Paper:
        Jung, Han, Kim, Ahn, Cho, Kim (2024), "Binary Classifier Optimization for Large Language Model Alignment",
        arXiv 2404.04656, Eq. 6 with the reward shift δ = 0.

    Formula:
        loss = −log σ(r_w) − log σ(−r_l),   r = β·[log πθ(y|x) − log πref(y|x)]

    Where:
        πθ = ``x.policy``, πref = ``x.ref`` (B, K); β = ``beta`` > 0

    Open choices:
        The paper shifts rewards by δ, a running mean of past rewards. TRL 1.16's DPOTrainer keeps no such state for
        "bco_pair" (older TRL kept a ``RunningMoments``); neither does this loss, so it equals TRL 1.16 step for step.

    Reduction to DPO:
        None exact: each response is classified on its own; the sum bounds DPO's loss of r_w − r_l from above.
    """
    r_w, r_l, has_pref = pair_columns(x, beta * log_ratios(x))
    return where_pref(-F.logsigmoid(r_w) - F.logsigmoid(-r_l), has_pref)


def sppo_hard_loss(x: PreferenceLogps, *, beta: Positive = 0.1) -> Tensor:
    """TRL's loss_type="sppo_hard": Self-Play Preference Optimization with hard win probabilities.

    Paper:
        Wu, Sun, Yuan, Ji, Yang, Gu (2024), "Self-Play Preference Optimization for Language Model Alignment",
        arXiv 2405.00675, Eq. 4.7 (Algorithm 1) with P(y_w ≻ π) = 1 and P(y_l ≻ π) = 0.

    Formula:
        loss = (ℓ_w − 1/(2β))² + (ℓ_l + 1/(2β))²,   ℓ = log πθ(y|x) − log πref(y|x)

    Where:
        πθ = ``x.policy``, πref = ``x.ref`` (B, K) (πref is the previous iterate π_t in SPPO); β = ``beta`` > 0
        (the paper's η = 1/β)

    Open choices:
        The paper's soft probabilities from a preference model (PairRM) are replaced by 1 and 0, as TRL does.

    Reduction to DPO:
        None: each log-ratio is regressed onto ±1/(2β), as IPO regresses their difference onto 1/(2β).
    """
    l_w, l_l, has_pref = pair_columns(x, log_ratios(x))
    return where_pref((l_w - 0.5 / beta) ** 2 + (l_l + 0.5 / beta) ** 2, has_pref)
