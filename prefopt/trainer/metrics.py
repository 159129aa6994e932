"""The numbers every preference trainer logs, computed from the loss input (no extra forward)."""

from __future__ import annotations

import torch
from torch import Tensor

from losses import PreferenceLogps
from losses._common import best_worst


def kendall_tau_a(a: Tensor, b: Tensor, valid: Tensor) -> Tensor:
    """Kendall τ-a between two (B, K) rankings over each list's valid entries → (B,); NaN for lists under 2 entries.

    A batched torch training metric (the model's implicit-reward ranking against the scores). Pairs tied in either
    ranking count as neither concordant nor discordant and stay in the denominator (all pairs): τ-a, not the
    ties-corrected τ-b of the round pipeline's ``prefopt.rounds.consistency.kendall_tau_b``.
    """
    da = torch.sign(a[:, :, None] - a[:, None, :])
    db = torch.sign(b[:, :, None] - b[:, None, :])
    pair = valid[:, :, None] & valid[:, None, :]
    pair = pair & torch.ones_like(pair).triu(1)
    n_pairs = pair.sum((1, 2))
    return (da * db * pair).sum((1, 2)) / n_pairs.where(n_pairs > 0, torch.nan)


@torch.no_grad()
def preference_metrics(x: PreferenceLogps, beta: float) -> dict[str, Tensor]:
    """Per-list metrics: implicit rewards β·log(πθ/πref) of the best and worst response, margin, accuracy,
    log-probs, and the Kendall τ between the model's implicit-reward ranking and the score ranking."""
    policy = x.policy.float()
    reward = beta * (policy - x.ref.float()) if x.ref is not None else beta * policy
    chosen, rejected, _ = best_worst(x)
    r_w = reward.gather(1, chosen[:, None]).squeeze(1)
    r_l = reward.gather(1, rejected[:, None]).squeeze(1)
    out = {
        "rewards/chosen": r_w,
        "rewards/rejected": r_l,
        "rewards/margins": r_w - r_l,
        "rewards/accuracies": (r_w > r_l).float(),
        "logps/chosen": policy.gather(1, chosen[:, None]).squeeze(1),
        "logps/rejected": policy.gather(1, rejected[:, None]).squeeze(1),
    }
    if x.policy.shape[1] > 2:
        out["kendall_tau"] = kendall_tau_a(reward, x.scores.float(), x.valid)
    return out
