"""LiPO-λ: a listwise preference loss, the LambdaLoss-weighted pairwise logistic loss over all K responses."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from losses._common import compute_dtype, log_ratios
from losses.hparams import Positive
from losses.types import PreferenceLogps


def lipo_loss(x: PreferenceLogps, *, beta: Positive = 0.05) -> Tensor:
    """Listwise Preference Optimization loss (LiPO-λ), per list.

    Paper:
        Liu, Qin, Wu, Shen, Khalman, Joshi, Zhao, Saleh, Baumgartner, Liu, Liu, Wang (2024), "LiPO: Listwise
        Preference Optimization through Learning-to-Rank", arXiv 2402.01878, Eq. 8 (β = 0.05, K = 8 in the paper).

    Formula:
        s_i   = β·(log πθ(y_i|x) − log πref(y_i|x))
        loss  = Σ_{i,j valid, ψ_i > ψ_j} −Δ_ij·log σ(s_i − s_j)
        Δ_ij  = |G_i − G_j|·|1/D(τ_i) − 1/D(τ_j)|,  G_i = 2^ψ_i − 1,  D(τ) = log2(1 + τ)

    Where:
        πθ(y_i|x)  = ``x.policy``  (B, K) summed response log-probs
        πref(y_i|x) = ``x.ref``    (B, K)
        ψ_i        = ``x.scores``  (B, K) the labels (higher is better); the paper's (§5) are mean win probabilities
                     ψ_k = (1/K)·Σ_i Ψ_ki ∈ [0, 1] (Ψ_kk = ½), which keep the gains 2^ψ − 1 in [0, 1]
        valid      = ``x.mask``    (B, K) padded entries never form a pair and rank after every valid one
        τ_i        = 1-based rank of s_i among the list's valid entries, sorted descending
        β          = ``beta`` > 0

    Returns:
        (B,) unreduced loss, the sum over the list's pairs. A list whose valid scores are all equal has no pair:
        loss 0, no gradient. Inputs in bf16/fp16 are computed and returned in float32.

    Deviations (where Eq. 8 is silent we follow google/rax, which the paper's appendix names; docs/losses/lipo.md):
        log2 in D; ties in s keep input order; tied labels form no pair; Δ is computed from detached s and carries
        no gradient; no ×K factor and a sum over the list's pairs, not rax's batch mean (a rescaling); G in
        float64, and a non-finite Δ (ψ ≳ 127 in float32) raises ValueError.

    Reduction to DPO:
        K = 2 with labels [1, 0]: Δ = 1·|1/log2 2 − 1/log2 3| = 1 − 1/log2 3 ≈ 0.369, so LiPO-λ = 0.369·DPO at the
        same β (the paper's "DPO is a special case" holds up to this constant factor).
    """
    dtype = compute_dtype(x)
    valid = x.valid  # (B, K)
    s = (beta * log_ratios(x)).masked_fill(~valid, 0.0)  # (B, K); padded slots may hold anything
    k = s.shape[1]

    # τ_i = 1 + #{valid j ranked before i}: j before i when s_j > s_i, or s_j == s_i and j < i (stable).
    sd = s.detach()
    s_i, s_j = sd[:, :, None], sd[:, None, :]  # (B, K, 1), (B, 1, K)
    earlier = torch.ones(k, k, dtype=torch.bool, device=s.device).tril(-1)  # [i, j] = j < i
    before = valid[:, None, :] & ((s_j > s_i) | ((s_j == s_i) & earlier))  # (B, K, K)
    rank = 1 + before.sum(-1)  # (B, K)
    inv_discount = 1.0 / torch.log2(1.0 + rank.to(torch.float64))  # (B, K)

    psi = x.scores.to(torch.float64).masked_fill(~valid, 0.0)  # (B, K)
    gain = torch.expm1(psi * math.log(2.0))  # 2^ψ − 1, (B, K)
    pair = valid[:, :, None] & valid[:, None, :] & (psi[:, :, None] > psi[:, None, :])  # (B, K, K), i beats j
    delta = (gain[:, :, None] - gain[:, None, :]).abs() * (inv_discount[:, :, None] - inv_discount[:, None, :]).abs()
    delta = torch.where(pair, delta, 0.0).to(dtype)  # (B, K, K)
    if not torch.compiler.is_compiling() and not (torch.isfinite(gain).all() and torch.isfinite(delta).all()):
        raise ValueError(f"lipo_loss: the gain 2^ψ − 1 or the lambda weight Δ is not finite in {dtype}; scores must "
                         f"be finite and small enough (ψ ≲ 127 in float32, ≲ 1023 in float64): rescale x.scores")

    logits = s[:, :, None] - s[:, None, :]  # (B, K, K), s_i − s_j
    pair_loss = torch.where(pair, -delta * F.logsigmoid(logits), 0.0)  # where, not ×: no 0·inf from padding
    return pair_loss.sum(dim=(1, 2))
