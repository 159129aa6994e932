"""cream_loss on fixed small inputs, the arithmetic written out."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from losses import PreferenceLogps, cream_loss, dpo_loss

t = lambda *rows: torch.tensor(rows, dtype=torch.float64)

# Three pairs sharing policy = [-1, -3], ref = [-2, -2], scores = [1, 0]: h = 2, β = 0.5 → βh = 1.
POLICY, REF, SCORES = t(*[[-1.0, -3.0]] * 3), t(*[[-2.0, -2.0]] * 3), t(*[[1.0, 0.0]] * 3)


def test_hand_values():
    """C = [1, 0.75, 0]; a = -log σ(1) = 0.3132617, b = -log σ(-1) = 1.3132617:
    C = 1    → a                         = 0.3132617
    C = 0.75 → 0.75·a + 0.25·b = a + 0.25 = 0.5632617
    C = 0    → b                         = 1.3132617
    """
    x = PreferenceLogps(policy=POLICY, ref=REF, scores=SCORES, weight=t(1.0, 0.75, 0.0))
    a, b = math.log1p(math.exp(-1.0)), math.log1p(math.e)
    assert_close(cream_loss(x, beta=0.5), t(a, 0.75 * a + 0.25 * b, b))
    assert_close(cream_loss(x, beta=0.5), t(0.3132617, 0.5632617, 1.3132617), atol=1e-7, rtol=0)


def test_consistency_one_is_dpo():
    """C = 1 and C = None (absent) are both exactly dpo_loss."""
    x = PreferenceLogps(policy=t([-1.0, -3.0, -2.2], [-0.5, -4.0, -1.0]), ref=t([-2.0, -2.0, -2.0], [-1.0, -1.0, -3.0]),
                        scores=t([1.0, 0.0, 0.5], [0.0, 2.0, 1.0]))
    assert torch.equal(cream_loss(x, beta=0.3), dpo_loss(x, beta=0.3))
    ones = PreferenceLogps(policy=x.policy, ref=x.ref, scores=x.scores, weight=t(1.0, 1.0))
    assert torch.equal(cream_loss(ones, beta=0.3), dpo_loss(x, beta=0.3))


def test_consistency_zero_is_swapped_dpo():
    """C = 0 trains toward the other order: DPO on the same pair with the scores swapped."""
    x = PreferenceLogps(policy=POLICY, ref=REF, scores=SCORES, weight=t(0.0, 0.0, 0.0))
    swapped = PreferenceLogps(policy=POLICY, ref=REF, scores=SCORES.flip(1))
    assert_close(cream_loss(x, beta=0.5), dpo_loss(swapped, beta=0.5))


def test_half_consistency_has_zero_gradient_at_zero_margin():
    """C = 0.5: d/dh [-½ log σ(βh) - ½ log σ(-βh)] = -½β σ(-βh) + ½β σ(βh) = 0 at h = 0."""
    policy = t([-2.0, -2.0]).requires_grad_(True)  # h = 0
    x = PreferenceLogps(policy=policy, ref=t([-2.0, -2.0]), scores=t([1.0, 0.0]), weight=t(0.5))
    loss = cream_loss(x, beta=0.5)
    assert_close(loss, t(math.log(2.0)))
    loss.sum().backward()
    assert_close(policy.grad, torch.zeros_like(policy))


def test_weight_outside_unit_interval_raises():
    with pytest.raises(ValueError, match="weight must lie in"):
        cream_loss(PreferenceLogps(policy=POLICY, ref=REF, scores=SCORES, weight=t(0.5, 1.5, 0.0)))


def test_gradcheck():
    policy = t([-1.0, -3.0, -2.0], [-4.0, -1.5, -0.5]).requires_grad_(True)
    ref, scores, weight = t([-2.0, -2.0, -1.0], [-3.0, -2.0, -1.0]), t([1.0, 0.0, 2.0], [0.0, 1.0, 0.5]), t(0.8, 0.3)
    fn = lambda p: cream_loss(PreferenceLogps(policy=p, ref=ref, scores=scores, weight=weight), beta=0.3)
    assert torch.autograd.gradcheck(fn, (policy,))
