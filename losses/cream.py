"""CREAM: DPO with the preference label softened by the self-reward's consistency across rounds."""

from __future__ import annotations

from torch import Tensor

from losses._common import soft_label_pair_loss
from losses.hparams import Positive
from losses.types import PreferenceLogps


def cream_loss(x: PreferenceLogps, *, beta: Positive = 0.1) -> Tensor:
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
        C         = ``x.weight``   (B,) consistency in [0, 1] of this and the previous round's rankings of the list
                    (C = (τ + 1)/2, computed on the data side: ``prefopt.rounds.consistency``); None means C = 1
        β         = ``beta`` > 0

    Returns:
        (B,) unreduced loss. A list whose valid scores are all equal has no preference: loss 0, no gradient.
        Inputs in bf16/fp16 are computed and returned in float32.

    Deviations:
        Lists longer than two reduce to best-vs-worst, as in the authors' code; C outside [0, 1] is an error.

    Reduction to DPO:
        C = 1 is exactly ``dpo_loss`` with the same β; C = 0 is DPO with the pair swapped; C = 0.5 has zero
        gradient at h = 0. CREAM is DPO with label smoothing ε = 1 − C chosen per list.
    """
    return soft_label_pair_loss(x, beta, "cream_loss")
