"""The contract every registered loss keeps (the trainer relies on it), checked for each entry of ``LOSSES``.

Inputs come from the ``make_logps`` fixture (conftest.py), built from the spec's needs flags, so a new loss is
covered as soon as it is registered.
"""

from __future__ import annotations

from dataclasses import fields, replace

import pytest
import torch
from torch.testing import assert_close

from losses import LOSSES, get_loss

NAMES = sorted(LOSSES)
PER_LIST = [n for n in NAMES if not LOSSES[n].batchwise]  # entry b is list b's own loss
RANKED = [n for n in NAMES if not LOSSES[n].unpaired]  # lists ranked by scores (KTO's columns are fixed roles)


def map_fields(x, fn):
    """Apply ``fn(name, tensor)`` to every tensor field of ``x``."""
    return replace(x, **{f.name: fn(f.name, getattr(x, f.name)) for f in fields(x) if getattr(x, f.name) is not None})


def with_grad(x):
    """Make the policy-side tensors (policy, policy_tokens, token_kl) leaves that require grad."""
    leaves = {n: getattr(x, n).detach().clone().requires_grad_(True)
              for n in ("policy", "policy_tokens", "token_kl") if getattr(x, n) is not None}
    return replace(x, **leaves), list(leaves.values())


def grad_of(leaf):
    """The leaf's gradient; zeros where the loss does not read it (RRPO ignores x.policy)."""
    return torch.zeros_like(leaf) if leaf.grad is None else leaf.grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("name", NAMES)
def test_shape_and_dtype(name, dtype, make_logps):
    """(B,) unreduced; half precision is computed and returned in float32."""
    spec = get_loss(name)
    out = spec(make_logps(spec, B=5, K=4, dtype=dtype))
    assert out.shape == (5,)
    assert out.dtype == (torch.float32 if dtype == torch.bfloat16 else dtype)


@pytest.mark.parametrize("name", PER_LIST)
def test_no_reduction(name, make_logps):
    """The loss of a batch is the concatenation of the losses of its lists, one at a time."""
    spec = get_loss(name)
    x = make_logps(spec, B=4, K=4, dtype=torch.float64, ragged=True)
    one_by_one = [spec(map_fields(x, lambda _, t, b=b: t[b:b + 1])) for b in range(4)]
    assert_close(spec(x), torch.cat(one_by_one))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", NAMES)
def test_finite_at_extreme_margins(name, dtype, make_logps):
    """Margins |h| up to ~1e4: finite values and finite gradients."""
    spec = get_loss(name)
    x, leaves = with_grad(make_logps(spec, B=8, K=4, T=8, dtype=dtype, scale=1e4, seed=1))
    assert (x.policy.float().amax(1) - x.policy.float().amin(1)).max() > 3e3  # the margins really are large
    out = spec(x)
    assert torch.isfinite(out).all(), out
    out.sum().backward()
    for leaf in leaves:
        assert torch.isfinite(grad_of(leaf)).all()


@pytest.mark.parametrize("name", NAMES)
def test_batch_order_does_not_matter(name, make_logps):
    """The batch mean (what the trainer takes) is the same for the lists in any order, batch-level losses too."""
    spec = get_loss(name)
    x = make_logps(spec, B=6, K=4, dtype=torch.float64, ragged=True, seed=5)
    order = torch.tensor([4, 1, 5, 0, 3, 2])
    assert_close(spec(map_fields(x, lambda _, t: t[order])).mean(), spec(x).mean())


@pytest.mark.parametrize("name", RANKED)
def test_tied_list_is_zero_with_zero_grad(name, make_logps):
    """A list whose valid scores are all equal has no preference: no gradient reaches it, and (for a per-list
    loss) its entry is exactly 0."""
    spec = get_loss(name)
    x = make_logps(spec, B=3, K=4, dtype=torch.float32, ragged=True)
    scores = x.scores.clone()
    scores[0] = 2.0
    x, leaves = with_grad(replace(x, scores=scores))
    out = spec(x)
    if not spec.batchwise:
        assert out[0].item() == 0.0
    out.sum().backward()
    for leaf in leaves:
        assert (grad_of(leaf)[0] == 0).all()


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_float64(name, make_logps):
    """Analytic gradients match finite differences (policy side: policy, policy_tokens, token_kl)."""
    spec = get_loss(name)
    x, leaves = with_grad(make_logps(spec, B=3, K=3, T=4, dtype=torch.float64, seed=2))
    names = [n for n in ("policy", "policy_tokens", "token_kl") if getattr(x, n) is not None]
    fn = lambda *tensors: spec(replace(x, **dict(zip(names, tensors, strict=True))))
    if spec.unpaired:  # KTO's KL baseline (column 1) is detached by definition: check column 0's gradient
        kl_column = x.policy[:, 1:].detach()
        fn = lambda labelled: spec(replace(x, policy=torch.cat([labelled, kl_column], 1)))
        leaves = [x.policy[:, :1].detach().clone().requires_grad_(True)]
    assert torch.autograd.gradcheck(fn, tuple(leaves))


@pytest.mark.parametrize("name", RANKED)
def test_permutation_invariance(name, make_logps):
    """Shuffling the responses of a list together with their scores (and tokens) changes nothing."""
    spec = get_loss(name)
    x = make_logps(spec, B=4, K=5, dtype=torch.float64, seed=3)
    perm = torch.tensor([3, 0, 4, 2, 1])
    shuffled = map_fields(x, lambda n, t: t if n == "weight" else t[:, perm])
    assert_close(spec(shuffled), spec(x))


@pytest.mark.parametrize("name", RANKED)
def test_padded_slot_is_ignored(name, make_logps):
    """What a masked-out response holds (log-probs, score, tokens) does not change the loss or its gradient."""
    spec = get_loss(name)
    x = make_logps(spec, B=4, K=3, dtype=torch.float64, ragged=True, seed=4)
    pad = ~x.mask
    other = map_fields(x, lambda n, t: t if n in ("mask", "weight") or not t.is_floating_point()
                       else torch.where(pad if t.dim() == 2 else pad[..., None], t * 3.0 - 5.0, t))
    (xa, la), (xb, lb) = with_grad(x), with_grad(other)
    out_a, out_b = spec(xa), spec(xb)
    assert_close(out_a, out_b)
    out_a.sum().backward()
    out_b.sum().backward()
    for ga, gb in zip(la, lb, strict=True):
        assert_close(grad_of(ga), grad_of(gb))


def test_unknown_name_lists_valid_names():
    with pytest.raises(KeyError) as err:
        get_loss("nope")
    for name in LOSSES:
        assert name in str(err.value)
