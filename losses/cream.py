"""CREAM: DPO with the preference label softened by the self-reward's consistency across rounds."""

from __future__ import annotations

from torch import Tensor

from losses._common import pair_margin, soft_logistic, weight_or_one
from losses.types import PreferenceLogps


def cream_loss(x: PreferenceLogps, *, beta: float = 0.1) -> Tensor:
    """Consistency-regularized DPO loss, per list.

    Paper:
        Wang, He, Liang, Zhang, Bansal, Wei, Zhang, Yao (2024), "CREAM: Consistency Regularized Self-Rewarding
        Language Models", arXiv 2410.12735 (ICLR 2025): the consistency-regularized preference objective of the
        method section, as in the authors' code (github.com/Raibows/CREAM, ``sft_dpo_trainer.py``).

    Formula:
        h = [log πθ(y_w|x) − log πref(y_w|x)] − [log πθ(y_l|x) − log πref(y_l|x)]
        loss = −C·log σ(β·h) − (1 − C)·log σ(−β·h)

    Where:
        πθ(y|x)   = ``x.policy``   (B, K) summed response log-probs
        πref(y|x) = ``x.ref``      (B, K); in CREAM the previous round's policy
        y_w, y_l  = the valid entries with the highest and the lowest ``x.scores`` (first max, last min)
        C         = ``x.weight``   (B,) consistency in [0, 1] of the current and the previous round's rankings of
                    the list (the authors' code: Kendall's τ rescaled, C = (τ + 1)/2); None means C = 1
        β         = ``beta``

    Returns:
        (B,) unreduced loss. A list whose valid scores are all equal has no preference: loss 0, no gradient.
        Inputs in bf16/fp16 are computed and returned in float32.

    Choices the paper leaves open:
        Computing C (per list, or its dataset average, the paper's two variants) is the data pipeline's job;
        this loss only reads it. Lists longer than two reduce to best-vs-worst, as in the authors' code (argmax vs
        argmin of the self-reward). C outside [0, 1] is an error.

    Reduction to DPO:
        C = 1 is exactly ``dpo_loss`` with the same β; C = 0 is DPO with the pair swapped; C = 0.5 has zero
        gradient at h = 0 (a fully inconsistent ranking teaches nothing). Equivalently, CREAM is DPO with label
        smoothing ε = 1 − C chosen per list.
    """
    h, has_pref = pair_margin(x)  # (B,), (B,)
    consistency = weight_or_one(x, "cream_loss")  # (B,) or 1.0
    return soft_logistic(beta * h, consistency) * has_pref
