"""ORPO: Odds Ratio Preference Optimization, the chosen response's NLL plus a log odds-ratio term; no reference."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from losses._common import compute_dtype, lengths_of, pair_columns, where_pref
from losses.hparams import Positive
from losses.sft import chosen_nll
from losses.types import PreferenceLogps


def log_odds(avg_logp: Tensor) -> Tensor:
    """log(P/(1 − P)) for P = exp(avg_logp), avg_logp <= 0, without cancellation (log1mexp, Mächler 2012)."""
    a = avg_logp.clamp(max=-1e-6)  # P = 1 exactly has infinite odds: keep it finite (and its gradient 0)
    log1mexp = torch.where(a > -math.log(2), torch.log(-torch.expm1(a)), torch.log1p(-torch.exp(a)))
    return a - log1mexp


def orpo_loss(x: PreferenceLogps, *, beta: Positive = 0.1) -> Tensor:
    """ORPO loss: SFT on the chosen response plus λ times the odds-ratio loss, per list; no reference model.

    Paper:
        Hong, Lee, Thorne (2024), "ORPO: Monolithic Preference Optimization without Reference Model",
        arXiv 2403.07691, Eqs. 6-7.

    Formula:
        P(y|x) = exp( log πθ(y|x) / |y| )                     the per-token geometric mean likelihood
        odds(y|x) = P / (1 − P)
        L_OR = −log σ( log odds(y_w|x) − log odds(y_l|x) )
        loss = L_SFT + λ·L_OR,  L_SFT = −Σ_b log πθ(y_w,b|x_b) / Σ_b |y_w,b|   (per chosen token over the batch)

    Where:
        πθ(y|x) = ``x.policy`` (B, K) summed response log-probs; |y| = ``x.lengths`` (B, K), at least 1
        y_w, y_l = the valid entries with the highest and the lowest ``x.scores``
        λ = ``beta`` > 0 (TRL's ORPOConfig name for the paper's λ; its default 0.1)

    Returns:
        (B,) entries whose mean is the loss (the SFT term is a batch-level token mean, as TRL's ORPOTrainer takes
        it, so ``batchwise=True``); 0 with no gradient on a list without a preference; float32 for bf16/fp16.

    Open choices:
        log(1 − P) is computed stably (log1mexp); an average log-prob of exactly 0 (P = 1) is clamped to −1e-6.

    Reduction to DPO:
        None: no reference; the odds ratio replaces DPO's likelihood ratio to πref.
    """
    dtype = compute_dtype(x)
    avg = x.policy.to(dtype) / lengths_of(x, "orpo_loss")
    odds_w, odds_l, has_pref = pair_columns(x, log_odds(avg))
    return chosen_nll(x, "orpo_loss") + where_pref(-beta * F.logsigmoid(odds_w - odds_l), has_pref)
