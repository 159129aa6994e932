"""lipo_loss on fixed small inputs, the arithmetic written out."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from losses import PreferenceLogps, dpo_loss, lipo_loss

t = lambda *rows: torch.tensor(rows, dtype=torch.float64)
nls = lambda z: math.log1p(math.exp(-z))  # -log σ(z)
sig = lambda z: 1.0 / (1.0 + math.exp(-z))

# K = 3, β = 0.5: ratios = policy - ref = [2, 0, 1] → s = [1, 0, 0.5]; labels ψ = [2, 1, 0].
K3 = PreferenceLogps(policy=t([-1.0, -3.0, -2.0]), ref=t([-3.0, -3.0, -3.0]), scores=t([2.0, 1.0, 0.0]))


def test_hand_computed_k3():
    """s = [1, 0, 0.5] → ranks τ = [1, 3, 2];  1/D(τ) = 1/log2(1 + τ) = [1, 1/log2 4, 1/log2 3] = [1, 0.5, 0.6309298]
    G = 2^ψ - 1 = [3, 1, 0]. Pairs with ψ_i > ψ_j:
      (0,1): Δ = |3 - 1|·|1 - 0.5|       = 1         s0 - s1 =  1.0  → -log σ(1.0)  = 0.3132617
      (0,2): Δ = |3 - 0|·|1 - 0.6309298| = 1.1072107 s0 - s2 =  0.5  → -log σ(0.5)  = 0.4740770
      (1,2): Δ = |1 - 0|·|0.5 - 0.6309298| = 0.1309298 s1 - s2 = -0.5 → -log σ(-0.5) = 0.9740770
    loss = 1·0.3132617 + 1.1072107·0.4740770 + 0.1309298·0.9740770 = 0.3132617 + 0.5249031 + 0.1275357 = 0.9657005
    """
    d3 = 1.0 / math.log2(3.0)
    expected = 1.0 * nls(1.0) + 3.0 * (1.0 - d3) * nls(0.5) + 1.0 * (d3 - 0.5) * nls(-0.5)
    assert_close(lipo_loss(K3, beta=0.5), t(expected))
    assert_close(lipo_loss(K3, beta=0.5), t(0.9657005), atol=1e-7, rtol=0)


def test_k2_is_scaled_dpo():
    """K = 2, labels [1, 0]: Δ = (2 - 1)·|1/log2 2 - 1/log2 3| = 1 - 1/log2 3 ≈ 0.3690702, whatever the ranks."""
    x = PreferenceLogps(policy=t([-1.0, -3.0], [-1.0, -3.0], [-2.0, -2.0]), ref=t([-2.0, -2.0], [-3.0, -1.0],
                        [-2.0, -2.0]), scores=t([1.0, 0.0], [0.0, 1.0], [1.0, 0.0]))
    assert_close(lipo_loss(x, beta=0.7), (1.0 - 1.0 / math.log2(3.0)) * dpo_loss(x, beta=0.7))


def test_permutation_invariance():
    """Shuffling a list together with its scores (distinct s, so ranks are well defined) changes nothing."""
    g = torch.Generator().manual_seed(0)
    policy, ref = -torch.rand(2, 6, generator=g, dtype=torch.float64) * 10, -torch.rand(2, 6, generator=g).double()
    scores = t([3.0, 0.0, 1.0, 2.0, 2.0, 5.0], [0.5, 0.5, 0.5, 0.1, 0.9, 0.3])
    perm = torch.tensor([4, 2, 0, 5, 1, 3])
    a = lipo_loss(PreferenceLogps(policy=policy, ref=ref, scores=scores))
    b = lipo_loss(PreferenceLogps(policy=policy[:, perm], ref=ref[:, perm], scores=scores[:, perm]))
    assert_close(a, b)


def test_masked_entries_neither_rank_nor_pair():
    """K3 plus a padded 4th slot holding a huge s and the best label: same loss as K3 (it would otherwise take rank 1
    and shift every discount)."""
    x = PreferenceLogps(policy=t([-1.0, -3.0, -2.0, 50.0]), ref=t([-3.0, -3.0, -3.0, -50.0]),
                        scores=t([2.0, 1.0, 0.0, 9.0]), mask=torch.tensor([[True, True, True, False]]))
    assert_close(lipo_loss(x, beta=0.5), lipo_loss(K3, beta=0.5))
    # a padded slot in the middle of the list, too
    y = PreferenceLogps(policy=t([-1.0, 50.0, -3.0, -2.0]), ref=t([-3.0, -50.0, -3.0, -3.0]),
                        scores=t([2.0, 9.0, 1.0, 0.0]), mask=torch.tensor([[True, False, True, True]]))
    assert_close(lipo_loss(y, beta=0.5), lipo_loss(K3, beta=0.5))


def test_tied_labels_form_no_pair():
    """ψ = [1, 1, 0], s = [1, 0, 0.5] (τ = [1, 3, 2], 1/D = [1, 0.5, 0.6309298]), G = [1, 1, 0].
    The tie (0,1) forms no pair; only (0,2): Δ = 1·(1 - 0.6309298) and (1,2): Δ = 1·(0.6309298 - 0.5).
    All labels tied → no pair at all → exactly 0 with zero gradient.
    """
    x = PreferenceLogps(policy=K3.policy, ref=K3.ref, scores=t([1.0, 1.0, 0.0]))
    d3 = 1.0 / math.log2(3.0)
    assert_close(lipo_loss(x, beta=0.5), t((1.0 - d3) * nls(0.5) + (d3 - 0.5) * nls(-0.5)))
    policy = K3.policy.clone().requires_grad_(True)
    loss = lipo_loss(PreferenceLogps(policy=policy, ref=K3.ref, scores=t([4.0, 4.0, 4.0])))
    assert loss.item() == 0.0
    loss.sum().backward()
    assert (policy.grad == 0).all()


def test_lambda_weight_carries_no_gradient():
    """With Δ held fixed, d loss / d s_i = Σ_{pairs (i,j)} -Δ_ij σ(-(s_i - s_j)) + Σ_{pairs (j,i)} Δ_ji σ(-(s_j - s_i)),
    and d s / d policy = β. On K3 (Δ_01 = 1, Δ_02 = 3(1 - d3), Δ_12 = d3 - 0.5):
      ds0 = -Δ_01 σ(-1) - Δ_02 σ(-0.5);  ds1 = Δ_01 σ(-1) - Δ_12 σ(0.5);  ds2 = Δ_02 σ(-0.5) + Δ_12 σ(0.5)
    """
    d3 = 1.0 / math.log2(3.0)
    d01, d02, d12 = 1.0, 3.0 * (1.0 - d3), d3 - 0.5
    ds = [-d01 * sig(-1.0) - d02 * sig(-0.5), d01 * sig(-1.0) - d12 * sig(0.5), d02 * sig(-0.5) + d12 * sig(0.5)]
    policy = K3.policy.clone().requires_grad_(True)
    lipo_loss(PreferenceLogps(policy=policy, ref=K3.ref, scores=K3.scores), beta=0.5).sum().backward()
    assert_close(policy.grad, 0.5 * t(ds))


def test_gradcheck():
    g = torch.Generator().manual_seed(1)
    policy = (-torch.rand(3, 5, generator=g, dtype=torch.float64) * 4).requires_grad_(True)
    ref = -torch.rand(3, 5, generator=g, dtype=torch.float64) * 4
    scores, mask = t([4, 3, 2, 1, 0], [0, 1, 1, 2, 5], [1, 0, 1, 0, 1]), torch.ones(3, 5, dtype=torch.bool)
    mask[1, 2] = False
    fn = lambda p: lipo_loss(PreferenceLogps(policy=p, ref=ref, scores=scores, mask=mask), beta=0.5)
    assert torch.autograd.gradcheck(fn, (policy,))


def test_large_scores():
    """Scores 0..10 (gains up to 1023) are fine in float32; a score whose gain overflows raises a clear error."""
    x = PreferenceLogps(policy=-torch.arange(11.0)[None] * 0.1, ref=torch.zeros(1, 11), scores=torch.arange(11.0)[None])
    assert torch.isfinite(lipo_loss(x)).all()
    big = PreferenceLogps(policy=x.policy[:, :2], ref=x.ref[:, :2], scores=torch.tensor([[200.0, 0.0]]))
    with pytest.raises(ValueError, match="rescale"):
        lipo_loss(big)
    # in float64 the same scores are fine: G is computed in float64
    assert torch.isfinite(lipo_loss(big.to(torch.float64))).all()
