"""TRL's losses of the DPO margin h alone: ``sigmoid``, ``hinge``, ``robust``, ``exo_pair`` (DPOTrainer loss_type).

Each is a function of h = [log πθ(y_w|x) − log πref(y_w|x)] − [log πθ(y_l|x) − log πref(y_l|x)] on each list's
best-vs-worst pair (y_w, y_l = the valid entries with the highest and the lowest ``x.scores``), computed exactly as
``trl.DPOTrainer`` (TRL 1.16, ``_compute_loss``) computes it. All return (B,) unreduced losses, 0 with no gradient
on a list without a preference, in float32 for bf16/fp16 inputs.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor

from losses._common import pair_margin, soft_logistic, where_pref
from losses.hparams import Interval, Positive
from losses.types import PreferenceLogps


def sigmoid_loss(x: PreferenceLogps, *, beta: Positive = 0.1) -> Tensor:
    """TRL's loss_type="sigmoid": the DPO logistic loss on the implicit-reward margin.

    Paper:
        Rafailov et al. (2023), "Direct Preference Optimization", arXiv 2305.18290, Eq. 7.

    Formula:
        loss = −log σ(β·h)

    Where:
        h = the log-ratio margin (module docstring); β = ``beta`` > 0

    Open choices:
        TRL's "sigmoid" ignores ``label_smoothing``; so does this loss (it has none: use ``dpo`` for conservative DPO).

    Reduction to DPO:
        It is DPO: exactly ``dpo_loss`` with ``label_smoothing=0``.
    """
    h, has_pref = pair_margin(x)
    return where_pref(soft_logistic(beta * h, 1.0), has_pref)


def hinge_loss(x: PreferenceLogps, *, beta: Positive = 0.1) -> Tensor:
    """TRL's loss_type="hinge": the SLiC hinge loss on the implicit-reward margin.

    Paper:
        Zhao, Joshi, Liu, Khalman, Saleh, Liu (2023), "SLiC-HF: Sequence Likelihood Calibration with Human
        Feedback", arXiv 2305.10425, Eq. 1 (the calibration term, on log-ratios as in DPO, arXiv 2305.18290 App. A).

    Formula:
        loss = max(0, 1 − β·h)

    Where:
        h = the log-ratio margin; β = ``beta`` > 0 (the paper's margin δ is 1/β)

    Reduction to DPO:
        The hinge is the large-margin limit of the logistic loss: both push β·h up, the hinge stops at β·h = 1.
    """
    h, has_pref = pair_margin(x)
    return where_pref(torch.relu(1 - beta * h), has_pref)


def robust_loss(x: PreferenceLogps, *, beta: Positive = 0.1,
                label_smoothing: Annotated[float, Interval(ge=0, lt=0.5)] = 0.0) -> Tensor:
    """TRL's loss_type="robust": the unbiased DPO loss under preference labels flipped with probability ε.

    Paper:
        Chowdhury, Kini, Natarajan (2024), "Provably Robust DPO: Aligning Language Models with Noisy Feedback",
        arXiv 2403.00409, Eq. 12.

    Formula:
        loss = [−(1 − ε)·log σ(β·h) + ε·log σ(−β·h)] / (1 − 2ε)

    Where:
        h = the log-ratio margin; β = ``beta`` > 0; ε = ``label_smoothing`` in [0, 0.5), the flip rate

    Open choices:
        The loss is unbounded below for ε > 0 (it rewards h → −∞ through the ε term), as in the paper and TRL.

    Reduction to DPO:
        ε = 0 is exactly ``dpo_loss`` (and ``sigmoid_loss``).
    """
    h, has_pref = pair_margin(x)
    eps = label_smoothing
    loss = (-(1 - eps) * F.logsigmoid(beta * h) + eps * F.logsigmoid(-beta * h)) / (1 - 2 * eps)
    return where_pref(loss, has_pref)


def exo_pair_loss(x: PreferenceLogps, *, beta: Positive = 0.1,
                  label_smoothing: Annotated[float, Interval(gt=0, lt=1)] = 1e-3) -> Tensor:
    """TRL's loss_type="exo_pair": EXO, the reverse KL from the model's pair distribution to the smoothed label.

    Paper:
        Ji, Chen, Wang, Chen, Sun, Huang (2024), "Towards Efficient Exact Optimization of Language Model Alignment",
        arXiv 2402.00856, Eq. 16 (EXO-pref with K = 2).

    Formula:
        q_w = σ(β·h), q_l = σ(−β·h)                 the model's distribution over {y_w, y_l}
        loss = KL(q ‖ p) = q_w·(log q_w − log(1 − ε)) + q_l·(log q_l − log ε)

    Where:
        h = the log-ratio margin; β = ``beta`` > 0; p = (1 − ε, ε), ε = ``label_smoothing`` in (0, 1)

    Open choices:
        TRL's default label_smoothing 0 is an error for exo_pair (log 0); the default here is the paper's
        recommended ε = 1e-3 (TRL's error message cites it).

    Reduction to DPO:
        None exact: DPO is the forward KL KL(p ‖ q) (the cross-entropy), EXO the reverse one; their minimisers
        coincide (q = p).
    """
    h, has_pref = pair_margin(x)
    z = beta * h
    eps = label_smoothing
    loss = (torch.sigmoid(z) * (F.logsigmoid(z) - math.log1p(-eps))
            + torch.sigmoid(-z) * (F.logsigmoid(-z) - math.log(eps)))
    return where_pref(loss, has_pref)
