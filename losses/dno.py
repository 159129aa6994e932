"""DNO: Direct Nash Optimization, the soft-target regression of the policy's internal reward onto win rates.

One DNO iteration is a logistic loss against the previous iterate π_t whose target p is a soft label computed from
win rates on the data side (``prefopt.rounds.judges.win_rates``, ``prefopt.rounds.weighting.soft_target``).
"""

from __future__ import annotations

from torch import Tensor

from losses._common import soft_label_pair_loss
from losses.hparams import Positive
from losses.types import PreferenceLogps


def dno_loss(x: PreferenceLogps, *, beta: Positive = 0.1) -> Tensor:
    """Direct Nash Optimization loss for one batched on-policy iteration, per list.

    Paper:
        Rosset, Cheng, Mitra, Santacroce, Awadallah, Xie (2024), "Direct Nash Optimization: Teaching Language Models
        to Self-Improve with General Preferences", arXiv 2404.03715. Algorithm 1, Line 4, Eq. 8 (per-sample loss
        Eq. 11, objective Eq. 12); the practical DNO-Prct is Algorithm 2, Eq. 13.

    Formula:
        h = [log πθ(y_w|x) − log π_t(y_w|x)] − [log πθ(y_l|x) − log π_t(y_l|x)]
        loss = −p·log σ(β·h) − (1 − p)·log σ(−β·h)                      (Eq. 11, with η = β)
        p = σ(r_t(x, y_w) − r_t(x, y_l)),  r_t(x, y) = E_{y'∼π_t}[P(y ≻ y' | x)]   (Alg. 1, Line 3)

    Where:
        πθ(y|x) = ``x.policy`` (B, K); π_t(y|x) = ``x.ref`` (B, K): the previous iterate, not the SFT model
        y_w, y_l = the valid entries with the highest and the lowest ``x.scores`` (first max, last min)
        p = ``x.weight`` (B,) in [0, 1], the soft target; None is the hard target p = 1
        β = ``beta`` > 0: the paper's η (Eqs. 8, 13), called beta in its experiments (0.1 or 0.05, Section 5.1)

    Returns:
        (B,) unreduced loss. A list whose valid scores are all equal has no preference: loss 0, no gradient.
        Inputs in bf16/fp16 are computed and returned in float32.

    Deviations:
        Pairs are best-vs-worst of each list (Eq. 8 is symmetric in y1, y2, so orienting by score loses nothing);
        a tied list gives 0 even with a weight, where Eq. 8 at p = 0.5 would give log 2 (constant in θ).

    Reduction to DPO:
        p = 1 (``weight=None`` or 1.0) is Eq. 13 of DNO-Prct, exactly ``dpo_loss`` with π_t as reference.
    """
    return soft_label_pair_loss(x, beta, "dno_loss")
