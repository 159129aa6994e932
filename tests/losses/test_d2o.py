"""D²O loss: hand-computed values, reduction to DPO, ragged lists, the shared-lowest error, extremes, gradcheck."""

import math

import pytest
import torch
from torch.testing import assert_close

from losses import LOSSES, PreferenceLogps, d2o_loss, dpo_loss

NAN = float("nan")


def _log1p_exp_neg(z: float) -> float:
    """−log σ(z) = log(1 + e^(−z))."""
    return math.log1p(math.exp(-z))


def _batch(dtype=torch.float32) -> PreferenceLogps:
    # list 0: 3 samples (score 1) + the negative (score 0, last column)
    # list 1: 2 samples with different scores (2 and 1), the negative in column 1, a padded 4th slot
    policy = torch.tensor([[-1.1, -1.4, -2.3, -4.0], [-1.0, -2.0, -1.0, NAN]], dtype=dtype)
    ref = torch.tensor([[-2.0, -2.0, -2.0, -3.0], [-2.0, -1.0, -1.0, 7.0]], dtype=dtype)
    scores = torch.tensor([[1.0, 1.0, 1.0, 0.0], [2.0, 0.0, 1.0, 9.0]])
    mask = torch.tensor([[True, True, True, True], [True, True, True, False]])
    return PreferenceLogps(policy=policy, ref=ref, scores=scores, mask=mask)


def test_hand_computed():
    """β = 0.1, α = 0.2.

    list 0: ratios = [0.9, 0.6, −0.3 | −1.0]; mean over the K = 3 samples = 1.2 / 3 = 0.4
            z = 0.1·0.4 − 0.2·(−1.0) = 0.04 + 0.2 = 0.24;  loss = log(1 + e^−0.24) = 0.5803300...
    list 1: ratios = [1.0, −1.0 (negative), 0.0, padded]; mean over K = 2 samples = 0.5
            z = 0.1·0.5 − 0.2·(−1.0) = 0.25;  loss = log(1 + e^−0.25) = 0.5759394...
    """
    expected = torch.tensor([_log1p_exp_neg(0.24), _log1p_exp_neg(0.25)])
    assert_close(d2o_loss(_batch(), beta=0.1, alpha=0.2), expected)
    assert_close(expected, torch.tensor([0.5803300, 0.5759394]))


def test_hand_computed_gradient_eq4():
    """Eq. 4: ∂ℓ/∂z = −σ(−z); each of the K samples gets (β/K)·σ(−z) of ascent, the negative α·σ(−z) of descent.

    β = 0.1, α = 0.2 (z from test_hand_computed).
    list 0: z = 0.24, σ(−0.24) = 0.4402864, K = 3: samples −(0.1/3)·0.4402864 = −0.0146762, negative +0.2·0.4402864
            = +0.0880573
    list 1: z = 0.25, σ(−0.25) = 0.4378235, K = 2: samples −0.05·0.4378235 = −0.0218912 (columns 0 and 2),
            negative (column 1) +0.0875647, padded slot 0
    """
    x = _batch()
    policy = torch.nan_to_num(x.policy).requires_grad_(True)
    loss = d2o_loss(PreferenceLogps(policy=policy, ref=x.ref, scores=x.scores, mask=x.mask), beta=0.1, alpha=0.2)
    loss.sum().backward()
    expected = torch.tensor([[-0.0146762, -0.0146762, -0.0146762, 0.0880573],
                             [-0.0218912, 0.0875647, -0.0218912, 0.0]])
    assert_close(policy.grad, expected)


def test_k1_alpha_equals_beta_is_dpo():
    """One sample (score 1) and the negative (score 0), α = β, one reference: z = β·h, the DPO loss."""
    policy = torch.tensor([[-1.0, -3.0], [-4.0, -2.0], [-2.0, -2.5]])
    ref = torch.tensor([[-2.0, -2.0], [-1.0, -3.0], [-2.2, -2.1]])
    scores = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    x = PreferenceLogps(policy=policy, ref=ref, scores=scores)
    for beta in (0.05, 0.1, 0.5):
        assert_close(d2o_loss(x, beta=beta, alpha=beta), dpo_loss(x, beta=beta))


def test_two_references_entry_by_entry():
    """π_r⁻ at the samples and π_r⁺ at the negative are simply different entries of x.ref.

    ratios = [−1 − (−3), −2 − (−1)] = [2, −1]; z = 0.1·2 − 0.3·(−1) = 0.5; loss = log(1 + e^−0.5).
    """
    x = PreferenceLogps(policy=torch.tensor([[-1.0, -2.0]]), ref=torch.tensor([[-3.0, -1.0]]),
                        scores=torch.tensor([[1.0, 0.0]]))
    assert_close(d2o_loss(x, beta=0.1, alpha=0.3), torch.tensor([_log1p_exp_neg(0.5)]))


def test_shared_lowest_score_raises_with_list_index():
    x = PreferenceLogps(policy=torch.zeros(2, 3), ref=torch.zeros(2, 3),
                        scores=torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="list 1"):
        d2o_loss(x)


def test_shared_lowest_score_among_valid_entries_only():
    """A padded slot tying the negative's score is not a second negative."""
    x = PreferenceLogps(policy=torch.zeros(1, 3), ref=torch.zeros(1, 3), scores=torch.tensor([[1.0, 0.0, 0.0]]),
                        mask=torch.tensor([[True, True, False]]))
    assert_close(d2o_loss(x), torch.tensor([math.log(2.0)]))


def test_tied_or_single_entry_list_is_zero_with_zero_gradient():
    policy = torch.tensor([[-1.0, -3.0, -2.0], [-1.0, -3.0, -2.0], [-1.0, -2.0, -3.0]], requires_grad=True)
    x = PreferenceLogps(policy=policy, ref=torch.zeros(3, 3),
                        scores=torch.tensor([[0.5, 0.5, 0.5], [1.0, 0.0, 7.0], [1.0, 1.0, 0.0]]),
                        mask=torch.tensor([[True, True, True], [True, False, False], [True, True, True]]))
    loss = d2o_loss(x)
    assert torch.equal(loss[:2], torch.zeros(2))
    loss.sum().backward()
    assert torch.equal(policy.grad[:2], torch.zeros(2, 3))
    assert policy.grad[2].abs().sum() > 0


def test_padded_slot_changes_nothing():
    """List 1 of _batch with its padded slot (nan policy, top score) removed gives the same loss and gradient."""
    full = _batch()
    p4 = full.policy.clone().requires_grad_(True)
    loss4 = d2o_loss(PreferenceLogps(policy=p4, ref=full.ref, scores=full.scores, mask=full.mask))
    loss4.sum().backward()

    p3 = full.policy[1:, :3].clone().requires_grad_(True)
    loss3 = d2o_loss(PreferenceLogps(policy=p3, ref=full.ref[1:, :3], scores=full.scores[1:, :3]))
    loss3.sum().backward()
    assert_close(loss4[1:], loss3)
    assert_close(p4.grad[1, :3], p3.grad[0])
    assert torch.equal(p4.grad[1, 3], torch.tensor(0.0))


def test_permutation_invariance():
    x = _batch()
    loss = d2o_loss(x, beta=0.1, alpha=0.2)
    for perm in ([3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]):
        xp = PreferenceLogps(policy=x.policy[:, perm], ref=x.ref[:, perm], scores=x.scores[:, perm],
                             mask=x.mask[:, perm])
        assert_close(d2o_loss(xp, beta=0.1, alpha=0.2), loss)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_extreme_margins_are_finite(dtype, sign):
    """|log-ratio| = 1e4 on every entry: z = ±(0.1·1e4 + 0.1·1e4) = ±2000."""
    policy = (sign * torch.tensor([[1e4, 1e4, -1e4]])).to(dtype).requires_grad_(True)
    x = PreferenceLogps(policy=policy, ref=torch.zeros(1, 3, dtype=dtype), scores=torch.tensor([[1.0, 1.0, 0.0]]))
    loss = d2o_loss(x, beta=0.1, alpha=0.1)
    assert loss.dtype == torch.float32
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(policy.grad).all()
    assert_close(loss, torch.tensor([0.0 if sign > 0 else 2000.0]), rtol=1e-2, atol=1e-6)


def test_gradcheck_float64():
    x = _batch(torch.float64)
    policy = torch.nan_to_num(x.policy).requires_grad_(True)
    ref = x.ref.clone().requires_grad_(True)

    def f(p, r):
        return d2o_loss(PreferenceLogps(policy=p, ref=r, scores=x.scores, mask=x.mask), beta=0.3, alpha=0.2)

    assert torch.autograd.gradcheck(f, (policy, ref))


def test_registry_entry():
    spec = LOSSES["d2o"]
    assert spec.fn is d2o_loss and spec.needs_ref and not spec.uses_weight
    assert spec.defaults == {"beta": 0.1, "alpha": 0.1}
    assert "2403.03419" in spec.paper
