"""OSP loss: hand-computed values, masks, column order, gradcheck (its arithmetic, shared with DNO and CREAM, is
tested once in test_soft_label.py; the strength p comes from prefopt.rounds, tested in tests/rounds)."""

import math

import torch
from torch.testing import assert_close

from losses import LOSSES, PreferenceLogps, osp_loss
from tests.losses.conftest import soft_label_batch


def test_hand_computed():
    """β = 0.5: z = β·h = [1.0, 0.5]; loss = −log σ(z) + (1 − p)·z  (since log σ(−z) = log σ(z) − z).

    list 0, p = 0.8: log(1 + e^−1)   + 0.2·1.0 = 0.3132617 + 0.2  = 0.5132617
    list 1, p = 0.6: log(1 + e^−0.5) + 0.4·0.5 = 0.4740770 + 0.2  = 0.6740770
    """
    x = soft_label_batch(weight=torch.tensor([0.8, 0.6]))
    expected = torch.tensor([math.log1p(math.exp(-1.0)) + 0.2, math.log1p(math.exp(-0.5)) + 0.2])
    assert_close(osp_loss(x, beta=0.5), expected)
    assert_close(expected, torch.tensor([0.5132617, 0.6740770]))


def test_tied_pair_is_zero_with_zero_gradient():
    policy = torch.tensor([[-1.0, -3.0]], requires_grad=True)
    x = PreferenceLogps(policy=policy, ref=torch.zeros(1, 2), scores=torch.tensor([[0.0, 0.0]]),
                        weight=torch.tensor([0.5]))
    loss = osp_loss(x)
    loss.sum().backward()
    assert loss.item() == 0.0 and torch.equal(policy.grad, torch.zeros(1, 2))


def test_padded_slot_changes_nothing():
    base = soft_label_batch(weight=torch.tensor([0.8, 0.6]))
    p3 = torch.cat([base.policy, torch.tensor([[float("nan")], [50.0]])], dim=1).requires_grad_(True)
    x3 = PreferenceLogps(policy=p3, ref=torch.cat([base.ref, torch.zeros(2, 1)], dim=1),
                         scores=torch.cat([base.scores, torch.tensor([[5.0], [-5.0]])], dim=1),
                         mask=torch.tensor([[True, True, False], [True, True, False]]), weight=base.weight)
    loss3 = osp_loss(x3)
    loss3.sum().backward()
    assert_close(loss3, osp_loss(base))
    assert torch.equal(p3.grad[:, 2], torch.zeros(2))


def test_column_order_does_not_matter():
    x = soft_label_batch(weight=torch.tensor([0.8, 0.6]))
    swapped = PreferenceLogps(policy=x.policy.flip(1), ref=x.ref.flip(1), scores=x.scores.flip(1), weight=x.weight)
    assert_close(osp_loss(swapped), osp_loss(x))


def test_gradcheck_float64():
    x = soft_label_batch(weight=torch.tensor([0.8, 0.3], dtype=torch.float64), dtype=torch.float64)
    policy, ref = x.policy.clone().requires_grad_(True), x.ref.clone().requires_grad_(True)

    def f(p, r):
        return osp_loss(PreferenceLogps(policy=p, ref=r, scores=x.scores, weight=x.weight), beta=0.7)

    assert torch.autograd.gradcheck(f, (policy, ref))


def test_registry_entry():
    spec = LOSSES["osp"]
    assert spec.fn is osp_loss and spec.uses_weight and spec.needs_ref
    assert spec.defaults == {"beta": 0.1}
    assert "2405.14103" in spec.paper
