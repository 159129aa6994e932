"""RRPO: DPO on the refined sub-sequences where the two responses differ, plus a token-wise KL penalty."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from losses._common import best_worst, compute_dtype
from losses.hparams import NonNegative, Positive
from losses.types import PreferenceLogps


def _pick(t: Tensor, index: Tensor) -> Tensor:
    """(B, K, T) -> (B, T): the response ``index[b]`` of each list."""
    return t.gather(1, index[:, None, None].expand(-1, 1, t.shape[2])).squeeze(1)


def rrpo_loss(x: PreferenceLogps, *, beta: Positive = 0.1, alpha: NonNegative = 0.01) -> Tensor:
    """Refined Regularized Preference Optimization loss, per list.

    Paper:
        Sarkar, Etemad (2025), "Self-alignment of Large Video Language Models with Refined Regularized Preference
        Optimization", arXiv 2504.12083 (NeurIPS 2025): the RRPO objective L_RRPO with the refined reward margin
        u and the token-wise KL regularizer D_TKL, as in the authors' code (github.com/pritamqu/RRPO,
        ``longvu/losses.py``).

    Formula:
        r_t = log πθ(t) − log πref(t)                                   per response token
        u   = β·Σ_k [Σ_{t∈seg_k(y_w)} r_t − Σ_{t∈seg_k(y_l)} r_t]
        loss = −log σ(u) + α·Σ_{t∈y_w} KL(πref(·|x, y_w,<t) ‖ πθ(·|x, y_w,<t))

    Where:
        log πθ(t), log πref(t) = ``x.policy_tokens``, ``x.ref_tokens``   (B, K, T)
        seg_k(y)  = tokens with ``x.segments == k`` (k ≥ 1) and ``x.token_mask``  (B, K, T)
        KL(...)   = ``x.token_kl``  (B, K, T), summed over the chosen response's ``x.token_mask`` tokens
        y_w, y_l  = the valid entries with the highest and the lowest ``x.scores`` (first max, last min)
        β = ``beta`` > 0, α = ``alpha`` ≥ 0  (the authors' code suggests β in 0.1–0.9, α in 0.01–0.1)

    Returns:
        (B,) unreduced loss. A list whose valid scores are all equal has no preference: loss 0, no gradient.
        Inputs in bf16/fp16 are computed and returned in float32.

    Deviations (docs/losses/rrpo.md):
        The KL term is a penalty (+α·KL, as the authors' code; the project page's sign would reward divergence);
        only the chosen response's KL counts; only "inside some segment" matters (segments > 0 within
        ``token_mask``); ``x.policy``/``x.ref`` are not read; lists longer than two reduce to best-vs-worst;
        α > 0 with ``x.token_kl`` None is an error.

    Reduction to DPO:
        Every valid response token in one segment (segments = token_mask) and α = 0 give u = β·h with h the DPO
        margin (when ``x.policy`` is the masked sum of ``x.policy_tokens``): exactly ``dpo_loss``.
    """
    missing = [n for n in ("policy_tokens", "ref_tokens", "token_mask", "segments") if getattr(x, n) is None]
    if alpha != 0 and x.token_kl is None:
        missing.append("token_kl (needed when alpha != 0)")
    if missing:
        raise ValueError(f"rrpo_loss: PreferenceLogps is missing {', '.join(missing)}")
    dtype = compute_dtype(x)
    chosen, rejected, has_pref = best_worst(x)  # (B,) each

    token_mask = x.token_mask.bool()  # (B, K, T)
    in_segment = (x.segments > 0) & token_mask
    ratio = x.policy_tokens.to(dtype) - x.ref_tokens.to(dtype)
    seg_sum = torch.where(in_segment, ratio, 0.0).sum(-1)  # (B, K); where: padded tokens may hold anything
    u = beta * (seg_sum.gather(1, chosen[:, None]) - seg_sum.gather(1, rejected[:, None])).squeeze(1)  # (B,)
    loss = -F.logsigmoid(u)
    if alpha != 0:
        kl = torch.where(_pick(token_mask, chosen), _pick(x.token_kl.to(dtype), chosen), 0.0).sum(-1)  # (B,)
        loss = loss + alpha * kl
    return torch.where(has_pref, loss, 0.0)
