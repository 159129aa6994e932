"""The soft-label pair loss DNO (Eq. 11), OSP (SPCE) and CREAM share (``losses._common.soft_label_pair_loss``):
the logistic loss of the best-vs-worst margin with the list's weight as the target probability. Where p comes from
is the round pipeline's business (tests/rounds); here, the arithmetic, once."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from losses import PreferenceLogps, dpo_loss
from losses._common import soft_label_pair_loss
from tests.losses.conftest import soft_label_batch


def loss(x: PreferenceLogps, beta: float = 0.1) -> torch.Tensor:
    return soft_label_pair_loss(x, beta, "test")


def test_hand_computed():
    """β = 0.5: z = β·h = [1.0, 0.5]; loss = −log σ(z) + (1 − p)·z  (since log σ(−z) = log σ(z) − z).

    list 0, p = 0.8: log(1 + e^−1)   + 0.2·1.0 = 0.3132617 + 0.2  = 0.5132617
    list 1, p = 0.6: log(1 + e^−0.5) + 0.4·0.5 = 0.4740770 + 0.2  = 0.6740770
    """
    x = soft_label_batch(weight=torch.tensor([0.8, 0.6]))
    expected = torch.tensor([math.log1p(math.exp(-1.0)) + 0.2, math.log1p(math.exp(-0.5)) + 0.2])
    assert_close(loss(x, beta=0.5), expected)
    assert_close(expected, torch.tensor([0.5132617, 0.6740770]))


def test_hand_computed_gradient():
    """dℓ/dh = β·(σ(β·h) − p), pushed +1 to y_w's log-prob and −1 to y_l's.

    β = 0.5, z = β·h = [1.0, 0.5]; σ(1.0) = 0.7310586, σ(0.5) = 0.6224593.
    list 0, p = 0.8: 0.5·(0.7310586 − 0.8) = −0.0344707  → policy grad [−0.0344707, +0.0344707] (y_w in column 0)
    list 1, p = 0.6: 0.5·(0.6224593 − 0.6) = +0.0112297  → policy grad [−0.0112297, +0.0112297] (y_w in column 1)
    """
    x = soft_label_batch(weight=torch.tensor([0.8, 0.6]))
    policy = x.policy.clone().requires_grad_(True)
    loss(PreferenceLogps(policy=policy, ref=x.ref, scores=x.scores, weight=x.weight), beta=0.5).sum().backward()
    assert_close(policy.grad, torch.tensor([[-0.0344707, 0.0344707], [-0.0112297, 0.0112297]]))


def test_minimiser_is_the_soft_label():
    """A cross-entropy against the target p: smallest where σ(β·h) = p, i.e. h = logit(p)/β.

    p = 0.8, β = 0.5: h* = ln(0.8 / 0.2) / 0.5 = 2·ln 4 = 2.7725887; the gradient there is 0 and the loss there is
    the entropy of p, −0.8·ln 0.8 − 0.2·ln 0.2 = 0.5004024, below the loss at h* ± 0.5.
    """
    def at(h: float):
        policy = torch.tensor([[h, 0.0]], dtype=torch.float64, requires_grad=True)
        x = PreferenceLogps(policy=policy, ref=torch.zeros(1, 2, dtype=torch.float64),
                            scores=torch.tensor([[1.0, 0.0]]), weight=torch.tensor([0.8], dtype=torch.float64))
        value = loss(x, beta=0.5)
        value.sum().backward()
        return value, policy.grad

    value, grad = at(2 * math.log(4.0))
    assert_close(value, torch.tensor([0.5004024], dtype=torch.float64))
    assert_close(grad, torch.zeros(1, 2, dtype=torch.float64))
    assert at(2 * math.log(4.0) - 0.5)[0] > value and at(2 * math.log(4.0) + 0.5)[0] > value


def test_reductions_to_dpo():
    """p = 1 (no weight) is DPO bit for bit; p = 1 − ε is DPO with label smoothing ε; p = 0 is DPO on the swapped
    pair (−log σ(−β·h))."""
    x = soft_label_batch()
    assert torch.equal(loss(x, beta=0.1), dpo_loss(x, beta=0.1))
    smoothed = loss(soft_label_batch(weight=torch.full((2,), 0.9)), beta=0.1)
    assert_close(smoothed, dpo_loss(x, beta=0.1, label_smoothing=0.1))
    swapped = PreferenceLogps(policy=x.policy, ref=x.ref, scores=1 - x.scores)
    assert_close(loss(soft_label_batch(weight=torch.zeros(2)), beta=0.1), dpo_loss(swapped, beta=0.1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_extreme_margins_are_finite_and_exact(dtype, sign):
    """|h| = 1e4, β = 0.1: z = ±1000, far past where a naive log(sigmoid(·)) underflows. With p = 0.75 (exact in
    bf16): sign +1 gives −0.75·log σ(1000) − 0.25·log σ(−1000) ≈ 0.25·1000; sign −1 gives ≈ 0.75·1000."""
    policy = (sign * torch.tensor([[5e3, -5e3]])).to(dtype).requires_grad_(True)
    x = PreferenceLogps(policy=policy, ref=torch.zeros(1, 2, dtype=dtype), scores=torch.tensor([[1.0, 0.0]]),
                        weight=torch.tensor([0.75], dtype=dtype))
    value = loss(x, beta=0.1)
    assert value.dtype == torch.float32
    value.sum().backward()
    assert torch.isfinite(value).all() and torch.isfinite(policy.grad).all()
    assert_close(value, torch.tensor([250.0 if sign > 0 else 750.0]), rtol=1e-2, atol=0)


def test_tied_list_is_zero_even_with_a_weight():
    policy = torch.tensor([[-1.0, -3.0]], requires_grad=True)
    x = PreferenceLogps(policy=policy, ref=torch.zeros(1, 2), scores=torch.tensor([[0.0, 0.0]]),
                        weight=torch.tensor([0.5]))
    value = loss(x)
    value.sum().backward()
    assert value.item() == 0.0 and torch.equal(policy.grad, torch.zeros(1, 2))


def test_weight_outside_unit_interval_names_the_loss_and_the_list():
    with pytest.raises(ValueError, match="test: weight must lie in \\[0, 1\\]; list 1 has weight 1.5"):
        loss(soft_label_batch(weight=torch.tensor([0.5, 1.5])))
