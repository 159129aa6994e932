"""Shared helpers for the loss tests: consistent random ``PreferenceLogps`` built from a loss's declared needs."""

from __future__ import annotations

import pytest
import torch

from losses import LossSpec, PreferenceLogps


def random_logps(spec: LossSpec | None = None, *, B: int = 4, K: int = 3, T: int = 6, dtype=torch.float32,
                 seed: int = 0, scale: float = 1.0, ragged: bool = False) -> PreferenceLogps:
    """A random batch whose tensors agree with each other, holding only what ``spec`` declares (all if None).

    policy/ref are the masked sums of policy_tokens/ref_tokens; positions outside token_mask and padded list
    slots hold garbage a correct loss must ignore; scores are distinct in each list (so every list has a strict
    best and a strict worst); weight lies in [0, 1]. ``scale`` sets the size of the log-ratio margins h (about
    ±scale). ``ragged`` pads the last slot of every other list (K >= 3 keeps two valid entries). For an unpaired
    loss (KTO) each list is K = 2 [response, mismatched response] with a 0/1 label in weight.
    """
    if spec is not None and spec.unpaired:  # [the labelled response, a mismatched one]; weight is the label
        K, ragged = 2, False
    g = torch.Generator().manual_seed(seed)
    f64 = dict(dtype=torch.float64)
    rand = lambda *shape: torch.rand(*shape, generator=g, **f64)

    lengths = torch.randint(1, T + 1, (B, K), generator=g)  # (B, K)
    token_mask = torch.arange(T) < lengths[..., None]  # (B, K, T)
    per_token = 2.0 * max(1.0, scale / T)  # so that sums, hence h, reach about ±scale
    policy_tokens = -rand(B, K, T) * per_token
    ref_tokens = -rand(B, K, T) * 2.0
    token_kl = rand(B, K, T) * 0.1
    segments = torch.randint(0, 3, (B, K, T), generator=g)
    garbage = (rand(B, K, T) - 0.5) * 100.0
    policy_tokens = torch.where(token_mask, policy_tokens, garbage)
    ref_tokens = torch.where(token_mask, ref_tokens, garbage.flip(-1))
    token_kl = torch.where(token_mask, token_kl, garbage.abs())
    policy = torch.where(token_mask, policy_tokens, 0.0).sum(-1)  # (B, K)
    ref = torch.where(token_mask, ref_tokens, 0.0).sum(-1)
    scores = torch.stack([torch.randperm(K, generator=g) for _ in range(B)]).to(torch.float64)
    mask = None
    if ragged:
        mask = torch.ones(B, K, dtype=torch.bool)
        mask[::2, -1] = False
        # what a padded slot holds must not matter
        policy, ref, scores = (t.masked_fill(~mask, v) for t, v in ((policy, 37.0), (ref, -91.0), (scores, 99.0)))

    labels = lambda n: (torch.arange(n) % 2 == 0).to(torch.float64)  # both labels in every batch of 2 or more
    spec = spec or LossSpec(lambda x: x, needs_tokens=True, needs_segments=True, needs_token_kl=True,
                            uses_weight=True)
    x = PreferenceLogps(
        policy=policy.to(dtype),
        ref=ref.to(dtype) if spec.needs_ref else None,
        scores=scores.to(dtype),
        mask=mask,
        weight=(labels(B) if spec.unpaired else rand(B)).to(dtype) if spec.uses_weight else None,
        lengths=lengths,
        policy_tokens=policy_tokens.to(dtype) if spec.needs_tokens else None,
        ref_tokens=ref_tokens.to(dtype) if spec.needs_tokens else None,
        token_mask=token_mask if spec.needs_tokens else None,
        segments=segments if spec.needs_segments else None,
        token_kl=token_kl.to(dtype) if spec.needs_token_kl else None,
    )
    return x


@pytest.fixture
def make_logps():
    """The factory ``random_logps(spec, B=..., K=..., T=..., dtype=..., seed=..., scale=..., ragged=...)``."""
    return random_logps


def soft_label_batch(weight=None, dtype=torch.float32) -> PreferenceLogps:
    """Two pairs with known log-ratio margins, for the soft-label losses (DNO, OSP, CREAM) and their shared piece."""
    # list 0: ratios [1, -1] (chosen column 0), h = 2; list 1: ratios [0.5, 1.5] (chosen column 1), h = 1
    policy = torch.tensor([[-1.0, -3.0], [-2.5, -1.5]], dtype=dtype)
    ref = torch.tensor([[-2.0, -2.0], [-3.0, -3.0]], dtype=dtype)
    return PreferenceLogps(policy=policy, ref=ref, scores=torch.tensor([[1.0, 0.0], [0.0, 1.0]]), weight=weight)
