"""DNO (Eq. 8), OSP (SPCE) and CREAM share one arithmetic: the soft-label logistic loss of the pair margin, with
the list's weight as the target probability. They must agree with each other and stay exact at extreme margins."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from losses import PreferenceLogps, cream_loss, dno_loss, osp_loss

SOFT_LABEL_LOSSES = [dno_loss, osp_loss, cream_loss]


@pytest.mark.parametrize("loss_fn", SOFT_LABEL_LOSSES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_extreme_margins_are_finite_and_exact(loss_fn, dtype, sign):
    """|h| = 1e4, β = 0.1: z = ±1000, far past where a naive log(sigmoid(·)) underflows. With p = 0.75 (exact in
    bf16): sign +1 gives −0.75·log σ(1000) − 0.25·log σ(−1000) ≈ 0.25·1000; sign −1 gives ≈ 0.75·1000."""
    policy = (sign * torch.tensor([[5e3, -5e3]])).to(dtype).requires_grad_(True)
    x = PreferenceLogps(policy=policy, ref=torch.zeros(1, 2, dtype=dtype), scores=torch.tensor([[1.0, 0.0]]),
                        weight=torch.tensor([0.75], dtype=dtype))
    loss = loss_fn(x, beta=0.1)
    assert loss.dtype == torch.float32
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(policy.grad).all()
    assert_close(loss, torch.tensor([250.0 if sign > 0 else 750.0]), rtol=1e-2, atol=0)


def test_the_three_agree_for_any_weight():
    torch.manual_seed(0)
    x = PreferenceLogps(policy=torch.randn(8, 3), ref=torch.randn(8, 3), scores=torch.randn(8, 3),
                        weight=torch.rand(8))
    dno = dno_loss(x, beta=0.3)
    assert_close(osp_loss(x, beta=0.3), dno)
    assert_close(cream_loss(x, beta=0.3), dno)
