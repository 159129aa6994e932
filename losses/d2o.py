"""D²O: Distributional Dispreference Optimization, K self-generated samples against one human negative."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from losses._common import log_ratios
from losses.hparams import NonNegative, Positive
from losses.types import PreferenceLogps


def d2o_loss(x: PreferenceLogps, *, beta: Positive = 0.1, alpha: NonNegative = 0.1) -> Tensor:
    """Distributional Dispreference Optimization loss, per list.

    Paper:
        Duan, Yi, Zhang, Liu, Liu, Lu, Xie, Gu (2024), "Negating Negatives: Alignment with Human Negative Samples via
        Distributional Dispreference Optimization", arXiv 2403.03419 (v2; Findings of EMNLP 2024), Section 3.2,
        Eq. 3.

    Formula:
        z = (β/K)·Σ_{i=1..K} [log πθ(y_i|x) − log π_r⁻(y_i|x)] − α·[log πθ(y_l|x) − log π_r⁺(y_l|x)]
        loss = −log σ(z)

    Where:
        πθ(y|x) = ``x.policy`` (B, K_list) summed response log-probs
        π_r⁻(y_i|x), π_r⁺(y_l|x) = ``x.ref`` at the samples and at the negative (entry by entry, so the two
            references may differ; the paper uses the initial model for both)
        y_l = the valid entry with the strictly lowest ``x.scores``: the human-annotated negative
        y_1..y_K = every other valid entry: the self-generated samples; K = their count per list (a masked mean)
        β = ``beta`` > 0, α = ``alpha`` ≥ 0 (the paper: K = 11, α = β = 0.1)

    Returns:
        (B,) unreduced loss. A list whose valid scores are all equal (or with one valid entry) has no negative:
        loss 0, no gradient. Inputs in bf16/fp16 are computed and returned in float32.

    Raises:
        ValueError: a list whose lowest score is shared by two or more entries while others score higher; the
            negative would be ambiguous (checked eagerly, skipped under ``torch.compile``).

    Reduction to DPO:
        K = 1, α = β and one reference: z = β·h with the sample as y_w, i.e. exactly ``dpo_loss``.

    Deviations (chosen; Eq. 3 is read from transcriptions, docs/losses/d2o.md "Verified vs chosen"):
        The negative is the strictly lowest valid score and the samples are all other valid entries, with a
        masked mean for ragged K; sampling the K responses is data-side (``prefopt.rounds.pairing.d2o_lists``).
    """
    ratios = log_ratios(x)  # (B, K), compute dtype
    valid = x.valid
    scores = x.scores.to(torch.float64)
    lowest = scores.masked_fill(~valid, float("inf")).amin(dim=1, keepdim=True)  # (B, 1)
    is_neg = valid & (scores == lowest)  # (B, K)
    n_neg, n_valid = is_neg.sum(1), valid.sum(1)
    has_pref = n_neg < n_valid  # some sample scores above the lowest
    if not torch.compiler.is_compiling():
        ambiguous = has_pref & (n_neg > 1)
        if ambiguous.any():
            bad = int(ambiguous.nonzero()[0, 0])
            raise ValueError(f"d2o_loss: list {bad} has its lowest score shared by {int(n_neg[bad])} entries; "
                             "D²O needs exactly one negative (the strictly lowest score) per list")
    is_pos = valid & ~is_neg
    zero = torch.zeros_like(ratios)
    # torch.where, not multiplication: padded slots may hold inf/nan and must not reach the value or the gradient
    pos_mean = torch.where(is_pos, ratios, zero).sum(1) / is_pos.sum(1).clamp(min=1)  # (B,)
    neg = torch.where(is_neg & has_pref[:, None], ratios, zero).sum(1)  # (B,) the one negative, 0 without a pref
    z = (beta * pos_mean - alpha * neg) * has_pref
    return -F.logsigmoid(z) * has_pref
