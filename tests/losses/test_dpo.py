"""dpo_loss on fixed small inputs, the arithmetic written out."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from losses import PreferenceLogps, dpo_loss, get_loss

t = lambda *rows: torch.tensor(rows, dtype=torch.float64)


def pair(policy, ref, scores=(1.0, 0.0), **kw):
    return PreferenceLogps(policy=t(policy), ref=t(ref), scores=t(scores), **kw)


def test_hand_values():
    """policy = [-1, -3], ref = [-2, -2], scores = [1, 0]:
    h = (-1 - -2) - (-3 - -2) = 1 - (-1) = 2;  β = 0.5 → βh = 1
    loss = -log σ(1) = log(1 + e^-1) = 0.3132617
    label smoothing ε = 0.2: 0.8·log(1 + e^-1) + 0.2·log(1 + e) = 0.8·0.3132617 + 0.2·1.3132617 = 0.5132617
    A second list with the pair the other way round, h = -2: -log σ(-1) = 1.3132617.
    """
    x = PreferenceLogps(policy=t([-1.0, -3.0], [-1.0, -3.0]), ref=t([-2.0, -2.0], [-2.0, -2.0]),
                        scores=t([1.0, 0.0], [0.0, 1.0]))
    a, b = math.log1p(math.exp(-1.0)), math.log1p(math.e)
    assert_close(dpo_loss(x, beta=0.5), t(a, b))
    assert_close(dpo_loss(x, beta=0.5, label_smoothing=0.2), t(0.8 * a + 0.2 * b, 0.8 * b + 0.2 * a))
    assert_close(dpo_loss(x, beta=0.5)[0], torch.tensor(0.3132617, dtype=torch.float64))
    assert_close(dpo_loss(x, beta=0.5, label_smoothing=0.2)[0], torch.tensor(0.5132617, dtype=torch.float64))


def test_column_order_does_not_matter():
    """[y_w, y_l] with scores [1, 0] and [y_l, y_w] with scores [0, 1] are the same pair."""
    a = pair([-1.0, -3.0], [-2.0, -2.5], scores=(1.0, 0.0))
    b = pair([-3.0, -1.0], [-2.5, -2.0], scores=(0.0, 1.0))
    assert_close(dpo_loss(a), dpo_loss(b))


def test_best_vs_worst_on_k4():
    """K = 4, scores [2, 5, 1, 3]: chosen = index 1 (score 5), rejected = index 2 (score 1); the others are unread.
    ratios = policy - ref = [0.3, 1.0, -0.5, 7.0] → h = 1.0 - (-0.5) = 1.5; β = 1: loss = log(1 + e^-1.5) = 0.2014133.
    """
    x = pair([-1.0, -2.0, -3.0, 3.0], [-1.3, -3.0, -2.5, -4.0], scores=(2.0, 5.0, 1.0, 3.0))
    assert_close(dpo_loss(x, beta=1.0), t(math.log1p(math.exp(-1.5))))


def test_tied_list_is_zero_with_zero_grad():
    """scores [1, 1]: no preference → loss exactly 0, gradient exactly 0."""
    policy = t([-1.0, -3.0]).requires_grad_(True)
    loss = dpo_loss(PreferenceLogps(policy=policy, ref=t([-2.0, -2.0]), scores=t([1.0, 1.0])))
    assert loss.item() == 0.0
    loss.sum().backward()
    assert (policy.grad == 0).all()


def test_gradcheck():
    policy = t([-1.0, -3.0, -2.0], [-4.0, -1.5, -0.5]).requires_grad_(True)
    ref, scores = t([-2.0, -2.0, -1.0], [-3.0, -2.0, -1.0]), t([1.0, 0.0, 2.0], [0.0, 1.0, 0.5])
    fn = lambda p: dpo_loss(PreferenceLogps(policy=p, ref=ref, scores=scores), beta=0.3, label_smoothing=0.1)
    assert torch.autograd.gradcheck(fn, (policy,))


def test_padded_slot_changes_nothing():
    """A third, masked-out slot with arbitrary values (and the highest score) is never chosen nor rejected."""
    base = pair([-1.0, -3.0], [-2.0, -2.0])
    mask = torch.tensor([[True, True, False]])
    for junk in (0.0, 1e6, -1e6):
        x = PreferenceLogps(policy=t([-1.0, -3.0, junk]), ref=t([-2.0, -2.0, -junk]), scores=t([1.0, 0.0, 9.0]),
                            mask=mask)
        assert_close(dpo_loss(x, beta=0.5), dpo_loss(base, beta=0.5))


def test_bad_label_smoothing_raises():
    """The range [0, 0.5) is declared on the signature; the registry entry (what the trainer calls) enforces it."""
    with pytest.raises(ValueError, match=r"loss.label_smoothing must be in \[0, 0.5\), got 0.5"):
        get_loss("dpo")(pair([-1.0, -3.0], [-2.0, -2.0]), label_smoothing=0.5)
