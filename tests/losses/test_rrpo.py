"""rrpo_loss on fixed small inputs, the arithmetic written out."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch.testing import assert_close

from losses import PreferenceLogps, dpo_loss, rrpo_loss

t = lambda *rows: torch.tensor(rows, dtype=torch.float64)


def hand_example() -> PreferenceLogps:
    """One pair, T = 4, ref_tokens = -1 everywhere, policy_tokens = ref + r:
      chosen   (score 1): r = [0.5, 1.0, -0.5, 2.0], token_mask = [1, 1, 1, 0], segments = [0, 1, 1, 1]
      rejected (score 0): r = [0.2, -1.0, -0.7, 0.4], token_mask = [1, 1, 1, 1], segments = [1, 0, 2, 0]
      token_kl: chosen [0.1, 0.2, 0.3, 9.0], rejected [5, 5, 5, 5]
    The chosen response is in column 1, to check that the pair follows the scores, not the column order.
    """
    r = t([[0.2, -1.0, -0.7, 0.4], [0.5, 1.0, -0.5, 2.0]])  # (1, 2, 4): rejected, chosen
    ref_tokens = -torch.ones(1, 2, 4, dtype=torch.float64)
    token_mask = torch.tensor([[[1, 1, 1, 1], [1, 1, 1, 0]]], dtype=torch.bool)
    return PreferenceLogps(
        policy=torch.zeros(1, 2, dtype=torch.float64), ref=torch.zeros(1, 2, dtype=torch.float64),
        scores=t([0.0, 1.0]), policy_tokens=ref_tokens + r, ref_tokens=ref_tokens, token_mask=token_mask,
        segments=torch.tensor([[[1, 0, 2, 0], [0, 1, 1, 1]]]), token_kl=t([[5.0, 5.0, 5.0, 5.0], [0.1, 0.2, 0.3, 9.0]]))


def test_hand_value():
    """Chosen segment tokens inside the mask: t1, t2 (t3 is padding) → 1.0 + (-0.5) = 0.5.
    Rejected segment tokens: t0 (segment 1), t2 (segment 2) → 0.2 + (-0.7) = -0.5.
    β = 0.1: u = 0.1·(0.5 - (-0.5)) = 0.1 → -log σ(0.1) = log(1 + e^-0.1) = 0.6443967.
    KL over the chosen response's valid tokens: 0.1 + 0.2 + 0.3 = 0.6; α = 0.5 → 0.3.  loss = 0.9443967.
    """
    x = hand_example()
    assert_close(rrpo_loss(x, beta=0.1, alpha=0.5), t(math.log1p(math.exp(-0.1)) + 0.5 * 0.6))
    assert_close(rrpo_loss(x, beta=0.1, alpha=0.5), t(0.9443967), atol=1e-7, rtol=0)
    assert_close(rrpo_loss(x, beta=0.1, alpha=0.0), t(0.6443967), atol=1e-7, rtol=0)


def test_full_segment_without_kl_is_dpo():
    """Every valid token in one segment, α = 0, policy = masked sum of policy_tokens: u = β·h, exactly DPO."""
    g = torch.Generator().manual_seed(0)
    policy_tokens = -torch.rand(3, 4, 5, generator=g, dtype=torch.float64) * 3
    ref_tokens = -torch.rand(3, 4, 5, generator=g, dtype=torch.float64) * 3
    token_mask = torch.arange(5) < torch.randint(1, 6, (3, 4, 1), generator=g)
    scores = t([0.0, 3.0, 1.0, 2.0], [1.0, 1.5, 0.0, 2.0], [2.0, 0.0, 0.5, 1.0])
    x = PreferenceLogps(policy=(policy_tokens * token_mask).sum(-1), ref=(ref_tokens * token_mask).sum(-1),
                        scores=scores, policy_tokens=policy_tokens, ref_tokens=ref_tokens, token_mask=token_mask,
                        segments=token_mask.long())
    assert_close(rrpo_loss(x, beta=0.3, alpha=0.0), dpo_loss(x, beta=0.3))


def test_tokens_outside_segments_or_mask_do_not_matter():
    """Changing log-probs outside the segments (or outside token_mask), and KL outside token_mask, changes nothing."""
    x = hand_example()
    outside = ~((x.segments > 0) & x.token_mask)  # t0 of chosen, t3 of chosen (padding), t1 and t3 of rejected
    y = replace(x, policy_tokens=torch.where(outside, 123.0, x.policy_tokens),
                ref_tokens=torch.where(outside, -77.0, x.ref_tokens),
                token_kl=torch.where(x.token_mask, x.token_kl, 1e6))
    assert_close(rrpo_loss(y, beta=0.1, alpha=0.5), rrpo_loss(x, beta=0.1, alpha=0.5))


def test_kl_only_for_the_chosen_response():
    """Raising the rejected response's KL changes nothing; raising the chosen one's by 1 per valid token (3 tokens)
    adds α·3."""
    x = hand_example()
    base = rrpo_loss(x, beta=0.1, alpha=0.5)
    rejected_up = x.token_kl + t([[10.0] * 4, [0.0] * 4])
    chosen_up = x.token_kl + t([[0.0] * 4, [1.0] * 4])
    assert_close(rrpo_loss(replace(x, token_kl=rejected_up), beta=0.1, alpha=0.5), base)
    assert_close(rrpo_loss(replace(x, token_kl=chosen_up), beta=0.1, alpha=0.5), base + 0.5 * 3)


def test_missing_token_kl():
    """α > 0 needs token_kl; α = 0 does not."""
    x = replace(hand_example(), token_kl=None)
    with pytest.raises(ValueError, match="token_kl"):
        rrpo_loss(x, alpha=0.01)
    assert torch.isfinite(rrpo_loss(x, alpha=0.0)).all()


def test_gradcheck():
    x = hand_example()
    policy_tokens = x.policy_tokens.clone().requires_grad_(True)
    token_kl = x.token_kl.clone().requires_grad_(True)
    fn = lambda p, kl: rrpo_loss(replace(x, policy_tokens=p, token_kl=kl), beta=0.7, alpha=0.2)
    assert torch.autograd.gradcheck(fn, (policy_tokens, token_kl))
