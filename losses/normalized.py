"""TRL's losses of the per-token (length-normalised) log-ratio margin: ``ipo`` and ``sigmoid_norm``.

Both divide each response's log-ratio by its number of tokens before taking the margin, as ``trl.DPOTrainer``
(TRL 1.16) does:

    h̄ = [log πθ(y_w|x) − log πref(y_w|x)] / |y_w| − [log πθ(y_l|x) − log πref(y_l|x)] / |y_l|

with |y| = ``x.lengths`` clamped to at least 1 and y_w, y_l the best-vs-worst pair of each list. (B,) unreduced;
0 with no gradient on a list without a preference; float32 for bf16/fp16 inputs.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from losses._common import lengths_of, log_ratios, pair_columns, where_pref
from losses.hparams import Positive
from losses.types import PreferenceLogps


def normalized_margin(x: PreferenceLogps, name: str) -> tuple[Tensor, Tensor]:
    """(h̄ (B,), has_pref (B,)): the margin of per-token log-ratios (module docstring)."""
    chosen, rejected, has_pref = pair_columns(x, log_ratios(x) / lengths_of(x, name))
    return chosen - rejected, has_pref


def ipo_loss(x: PreferenceLogps, *, beta: Positive = 0.1) -> Tensor:
    """TRL's loss_type="ipo": Identity Preference Optimisation, a squared loss pulling the margin to 1/(2τ).

    Paper:
        Azar, Rowland, Piot, Guo, Calandriello, Valko, Munos (2023), "A General Theoretical Paradigm to Understand
        Learning from Human Preferences", arXiv 2310.12036, Eq. 17.

    Formula:
        loss = (h̄ − 1/(2τ))²

    Where:
        h̄ = the per-token log-ratio margin (module docstring); τ = ``beta`` > 0 (TRL's name for the paper's τ)

    Open choices:
        The per-token normalisation is TRL's (confirmed with the IPO authors, per TRL's comment); Eq. 17 itself uses
        summed log-probs.

    Reduction to DPO:
        None: IPO regresses the margin onto a target, DPO pushes it to infinity.
    """
    h, has_pref = normalized_margin(x, "ipo_loss")
    return where_pref((h - 1 / (2 * beta)) ** 2, has_pref)


def sigmoid_norm_loss(x: PreferenceLogps, *, beta: Positive = 0.1) -> Tensor:
    """TRL's loss_type="sigmoid_norm": the DPO logistic loss on the per-token log-ratio margin.

    Paper:
        Rafailov et al. (2023), arXiv 2305.18290, Eq. 7, with length-normalised implicit rewards (as in
        R-DPO/SimPO's analysis of DPO's length bias; TRL's ``sigmoid_norm``).

    Formula:
        loss = −log σ(β·h̄)

    Where:
        h̄ = the per-token log-ratio margin (module docstring); β = ``beta`` > 0

    Reduction to DPO:
        Responses of one token each (|y_w| = |y_l| = 1) make it exactly ``dpo_loss``; equal lengths n make it DPO
        with β/n.
    """
    h, has_pref = normalized_margin(x, "sigmoid_norm_loss")
    return where_pref(-F.logsigmoid(beta * h), has_pref)
