"""DNO loss: hand-computed values, reduction to DPO, masks, permutations, gradcheck (win rates and the soft target
are the round pipeline's: tests/rounds/test_judge.py, test_weighting.py)."""

import math

import pytest
import torch
from torch.testing import assert_close

from losses import LOSSES, PreferenceLogps, dno_loss, dpo_loss


def _log1p_exp_neg(z: float) -> float:
    """−log σ(z) = log(1 + e^(−z))."""
    return math.log1p(math.exp(-z))


def _batch(dtype=torch.float32, weight=None) -> PreferenceLogps:
    # list 0: ratios [1, -1], chosen = column 0; list 1: ratios [-1, 1], chosen = column 1 (scores reversed)
    policy = torch.tensor([[-1.0, -3.0], [-2.0, -2.0]], dtype=dtype)
    ref = torch.tensor([[-2.0, -2.0], [-1.0, -3.0]], dtype=dtype)
    scores = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    return PreferenceLogps(policy=policy, ref=ref, scores=scores, weight=weight)


def test_hand_computed_soft_target():
    """h = 2 in both lists (list 0: 1 − (−1); list 1: 1 − (−1) with the columns swapped), β = 0.5, so z = 1.

    loss = −p·log σ(z) − (1−p)·log σ(−z) = −log σ(z) + (1−p)·z   (log σ(−z) = log σ(z) − z)
    −log σ(1) = log(1 + e^−1) = 0.3132616875
    p = 0.75: 0.3132616875 + 0.25 = 0.5632616875
    p = 0.50: 0.3132616875 + 0.50 = 0.8132616875
    """
    x = _batch(weight=torch.tensor([0.75, 0.5]))
    expected = torch.tensor([_log1p_exp_neg(1.0) + 0.25, _log1p_exp_neg(1.0) + 0.5])
    assert_close(dno_loss(x, beta=0.5), expected)
    assert_close(expected, torch.tensor([0.5632616875, 0.8132616875]))


def test_hard_target_is_dpo_exactly():
    """weight=None is DNO-Prct (Eq. 13): the DPO loss against π_t, bit for bit; p = 1 as a tensor matches too."""
    x = _batch()
    for beta in (0.05, 0.1, 0.5):
        assert torch.equal(dno_loss(x, beta=beta), dpo_loss(x, beta=beta))
    x1 = _batch(weight=torch.ones(2))
    assert_close(dno_loss(x1, beta=0.1), dpo_loss(x, beta=0.1), rtol=0, atol=0)


def test_tied_list_is_zero_with_zero_gradient():
    policy = torch.tensor([[-1.0, -3.0], [-2.0, -5.0]], requires_grad=True)
    x = PreferenceLogps(policy=policy, ref=torch.zeros(2, 2), scores=torch.tensor([[1.0, 1.0], [1.0, 0.0]]),
                        weight=torch.tensor([0.7, 0.7]))
    loss = dno_loss(x)
    assert loss[0].item() == 0.0
    loss.sum().backward()
    assert torch.equal(policy.grad[0], torch.zeros(2))
    assert policy.grad[1].abs().sum() > 0


def test_padded_slot_changes_nothing():
    """A third, masked slot holding a top score and non-finite log-probs must not change loss or gradient."""
    base = _batch(weight=torch.tensor([0.75, 0.5]))
    p2 = base.policy.clone().requires_grad_(True)
    ref_loss = dno_loss(PreferenceLogps(policy=p2, ref=base.ref, scores=base.scores, weight=base.weight))
    ref_loss.sum().backward()

    p3 = torch.cat([base.policy, torch.tensor([[float("nan")], [1e30]])], dim=1).requires_grad_(True)
    x3 = PreferenceLogps(policy=p3, ref=torch.cat([base.ref, torch.tensor([[0.0], [float("inf")]])], dim=1),
                         scores=torch.cat([base.scores, torch.tensor([[99.0], [99.0]])], dim=1),
                         mask=torch.tensor([[True, True, False], [True, True, False]]), weight=base.weight)
    loss3 = dno_loss(x3)
    loss3.sum().backward()
    assert_close(loss3, ref_loss)
    assert_close(p3.grad[:, :2], p2.grad)
    assert torch.equal(p3.grad[:, 2], torch.zeros(2))


def test_permutation_invariance():
    policy = torch.tensor([[-1.0, -4.0, -2.5, -3.0]])
    ref = torch.tensor([[-2.0, -2.0, -3.0, -1.0]])
    scores = torch.tensor([[3.0, 0.0, 2.0, 1.0]])
    w = torch.tensor([0.8])
    loss = dno_loss(PreferenceLogps(policy=policy, ref=ref, scores=scores, weight=w))
    for perm in ([3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]):
        x = PreferenceLogps(policy=policy[:, perm], ref=ref[:, perm], scores=scores[:, perm], weight=w)
        assert_close(dno_loss(x), loss)


def test_gradcheck_float64():
    policy = torch.tensor([[-1.0, -3.0, -2.0], [-2.0, -2.5, -0.5]], dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([[-2.0, -2.0, -1.0], [-1.0, -3.0, -2.0]], dtype=torch.float64, requires_grad=True)
    scores = torch.tensor([[2.0, 0.0, 1.0], [0.0, 1.0, 2.0]])
    w = torch.tensor([0.8, 0.3], dtype=torch.float64)
    mask = torch.tensor([[True, True, True], [True, True, False]])

    def f(p, r):
        return dno_loss(PreferenceLogps(policy=p, ref=r, scores=scores, mask=mask, weight=w), beta=0.3)

    assert torch.autograd.gradcheck(f, (policy, ref))


def test_weight_outside_unit_interval_raises():
    with pytest.raises(ValueError, match="list 1"):
        dno_loss(_batch(weight=torch.tensor([0.5, 1.5])))


def test_registry_entry():
    spec = LOSSES["dno"]
    assert spec.fn is dno_loss and spec.uses_weight and spec.needs_ref
    assert spec.defaults == {"beta": 0.1}
    assert "2404.03715" in spec.paper
