"""The one input type every loss reads: log-probabilities of K responses per prompt.

A preference example is a ranked list of K >= 2 responses (K = 2 is an ordinary pair).
Shapes: B lists per batch, K responses per list (ragged lists are padded and masked),
T response tokens per response (token-level losses only).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor


@dataclass(frozen=True)
class PreferenceLogps:
    """Sequence- and token-level log-probabilities of a batch of preference lists.

    Args:
        policy: (B, K) summed log-prob log πθ(y_k|x) of each response under the policy.
        ref: (B, K) the same under the reference policy; None only for reference-free losses.
        scores: (B, K) higher is better; a hard pair is [1, 0] in either column order.
        mask: (B, K) bool, True where a response exists (ragged lists); None means all exist.
        weight: (B,) per-list weight or soft label (consistency, preference strength, target probability);
            each loss documents its meaning.
        lengths: (B, K) number of response tokens.
        policy_tokens: (B, K, T) per-token log-probs of the response tokens under the policy.
        ref_tokens: (B, K, T) the same under the reference.
        token_mask: (B, K, T) bool, True on real response tokens.
        segments: (B, K, T) long, 0 outside refined segments, i >= 1 on the i-th differing segment (RRPO).
        token_kl: (B, K, T) KL(ref || policy) over the vocabulary at each response position.
    """

    policy: Tensor
    ref: Tensor | None
    scores: Tensor
    mask: Tensor | None = None
    weight: Tensor | None = None
    lengths: Tensor | None = None
    policy_tokens: Tensor | None = None
    ref_tokens: Tensor | None = None
    token_mask: Tensor | None = None
    segments: Tensor | None = None
    token_kl: Tensor | None = None

    def __post_init__(self) -> None:
        if self.policy.dim() != 2:
            raise ValueError(f"PreferenceLogps.policy must be (B, K), got shape {tuple(self.policy.shape)}")
        shape = self.policy.shape
        for name in ("ref", "scores", "mask", "lengths"):
            value = getattr(self, name)
            if value is not None and value.shape != shape:
                raise ValueError(f"PreferenceLogps.{name} must have shape {tuple(shape)}, got {tuple(value.shape)}")
        if self.weight is not None and self.weight.shape != shape[:1]:
            raise ValueError(f"PreferenceLogps.weight must have shape ({shape[0]},), got {tuple(self.weight.shape)}")
        token_shape = None
        for name in ("policy_tokens", "ref_tokens", "token_mask", "segments", "token_kl"):
            value = getattr(self, name)
            if value is None:
                continue
            if value.dim() != 3 or value.shape[:2] != shape:
                raise ValueError(f"PreferenceLogps.{name} must be (B, K, T) with (B, K) = {tuple(shape)}, "
                                 f"got {tuple(value.shape)}")
            if token_shape is not None and value.shape != token_shape:
                raise ValueError(f"PreferenceLogps.{name} has shape {tuple(value.shape)}, other token tensors "
                                 f"have {tuple(token_shape)}")
            token_shape = value.shape

    @property
    def valid(self) -> Tensor:
        """(B, K) bool: True where a response exists."""
        if self.mask is None:
            return torch.ones_like(self.policy, dtype=torch.bool)
        return self.mask.bool()

    def to(self, *args, **kwargs) -> PreferenceLogps:
        """Move every tensor field (like ``Tensor.to``); bool and long fields keep their dtype."""
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and value.is_floating_point():
                moved[f.name] = value.to(*args, **kwargs)
            elif value is not None:
                device = next((a for a in args if isinstance(a, (str, torch.device))), kwargs.get("device"))
                moved[f.name] = value.to(device) if device is not None else value
        return replace(self, **moved)
