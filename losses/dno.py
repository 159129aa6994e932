"""DNO: Direct Nash Optimization, the soft-target regression of the policy's internal reward onto win rates.

One DNO iteration is a logistic loss against the previous iterate π_t, whose target is a soft label computed from
win rates; ``dno_win_rates`` and ``dno_soft_target`` compute that label (the data side calls them).
"""

from __future__ import annotations

import torch
from torch import Tensor

from losses._common import pair_margin, soft_logistic, weight_or_one
from losses.types import PreferenceLogps


def dno_win_rates(wins: Tensor, mask: Tensor | None = None) -> Tensor:
    """r_t(x, y_i) ≈ mean over the other responses y_j of 1[y_i ≻ y_j] (Rosset et al., 2024, Section 4).

    Args:
        wins: (..., N, N) judge outcomes, wins[..., i, j] = 1 if y_i was judged better than y_j, else 0 (a judge
            probability in [0, 1] also works). N = K policy samples + the gold response; the diagonal is ignored.
        mask: (..., N) bool, True where a response exists; None means all exist.
    Returns:
        (..., N) estimated win rate of each response against the others; 0 for absent entries.
    """
    n = wins.shape[-1]
    valid = torch.ones(wins.shape[:-1], dtype=torch.bool, device=wins.device) if mask is None else mask.bool()
    # count only j != i where both i and j exist
    pair_ok = valid[..., :, None] & valid[..., None, :] & ~torch.eye(n, dtype=torch.bool, device=wins.device)
    total = torch.where(pair_ok, wins, torch.zeros_like(wins)).sum(-1)  # (..., N)
    others = pair_ok.sum(-1).clamp(min=1)  # the paper's 1/K: K others beside y itself
    return total / others


def dno_soft_target(win_rate_w: Tensor, win_rate_l: Tensor, scale: float = 1.0) -> Tensor:
    """p = σ(c·(r_t(y_w) − r_t(y_l))): the regression target of Eq. 8 / Eq. 11 for the pair (y_w, y_l).

    With win rates in [0, 1], p lies in [σ(−c), σ(c)] (≈ [0.27, 0.73] for c = 1). The paper notes that scaling r_t
    and η by the same constant c leaves the soft policy iteration target (Eq. 9) unchanged; ``scale`` is that c
    (use β = c·η in ``dno_loss``).
    """
    return torch.sigmoid(scale * (win_rate_w - win_rate_l))


def dno_loss(x: PreferenceLogps, *, beta: float = 0.1) -> Tensor:
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
        p = ``x.weight`` (B,) in [0, 1], e.g. ``dno_soft_target(r_w, r_l)``; None is the hard target p = 1
        β = ``beta``: the paper's η (Eqs. 8, 13), called beta in its experiments (0.1 or 0.05, Section 5.1)

    Returns:
        (B,) unreduced loss. A list whose valid scores are all equal has no preference: loss 0, no gradient.
        Inputs in bf16/fp16 are computed and returned in float32.

    Reduction to DPO:
        With p = 1 (``weight=None`` or 1.0) this is Eq. 13 of DNO-Prct, exactly ``dpo_loss`` with π_t as reference.

    Verified from the paper text: Eqs. 8, 11-13, the definition of r_t, its sample estimate over the K policy
    samples and the gold response (Section 4; ``dno_win_rates``), the c-scaling remark (``dno_soft_target``).
    Chosen here: pairs are best-vs-worst of each list; a tied list gives 0 (the contract) even when a weight is
    given, although Eq. 8 at p = 0.5 would give log 2. Eq. 8 is symmetric in (y1, y2), so orienting the pair by
    score loses nothing. The pair rule (5 samples + gold, 6-point judge, positive 5 or 6, negative ≥ 2 points
    lower, ≥ 1 when the positive is a policy sample, replay ≤ 30 % of pairs from t−1 and 15 % from t−2, three
    iterations on UltraFeedback) is data-side: it belongs to the data module's pairing transforms (prefopt/data)
    and the rounds loop, not here.
    """
    h, has_pref = pair_margin(x)
    p = weight_or_one(x, "dno_loss")
    return soft_logistic(beta * h, p) * has_pref
