"""Pieces shared by the losses: choosing the pair in a list, log-ratios, the soft-label logistic loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from losses.types import PreferenceLogps


def compute_dtype(x: PreferenceLogps) -> torch.dtype:
    """Half-precision inputs are upcast to float32: sums of log-probs lose too many digits in bf16/fp16."""
    return x.policy.dtype if x.policy.dtype in (torch.float32, torch.float64) else torch.float32


def log_ratios(x: PreferenceLogps) -> Tensor:
    """(B, K) log πθ(y|x) − log πref(y|x), in the compute dtype."""
    if x.ref is None:
        raise ValueError("this loss needs reference log-probs: PreferenceLogps.ref is None")
    dtype = compute_dtype(x)
    return x.policy.to(dtype) - x.ref.to(dtype)


def best_worst(x: PreferenceLogps) -> tuple[Tensor, Tensor, Tensor]:
    """Pick each list's chosen (highest score) and rejected (lowest score) among its valid entries.

    Ties for the highest (lowest) score go to the first (last) such entry, so the choice is deterministic.

    Returns:
        chosen: (B,) long index of the highest-scored valid response.
        rejected: (B,) long index of the lowest-scored valid response.
        has_pref: (B,) bool, False when every valid score in the list is equal (no preference).
    """
    valid = x.valid
    scores = x.scores.to(torch.float64)
    hi = scores.masked_fill(~valid, float("-inf"))
    lo = scores.masked_fill(~valid, float("inf"))
    chosen = hi.argmax(dim=1)  # first maximum
    # last minimum: argmax of the reversed list, mapped back
    k = scores.shape[1]
    rejected = (k - 1) - lo.flip(1).argmin(dim=1)
    has_pref = hi.gather(1, chosen[:, None]).squeeze(1) > lo.gather(1, rejected[:, None]).squeeze(1)
    return chosen, rejected, has_pref


def pair_margin(x: PreferenceLogps) -> tuple[Tensor, Tensor]:
    """h = [log πθ(y_w) − log πref(y_w)] − [log πθ(y_l) − log πref(y_l)] for the best-vs-worst pair.

    Returns:
        h: (B,) the log-ratio margin; 0 (with no gradient path) on lists without a preference.
        has_pref: (B,) bool.
    """
    ratios = log_ratios(x)  # (B, K)
    chosen, rejected, has_pref = best_worst(x)
    h = ratios.gather(1, chosen[:, None]).squeeze(1) - ratios.gather(1, rejected[:, None]).squeeze(1)
    return h * has_pref, has_pref


def soft_logistic(z: Tensor, p: Tensor | float) -> Tensor:
    """Cross-entropy of a Bernoulli target p against σ(z): −p·log σ(z) − (1−p)·log σ(−z).

    Written with logsigmoid, so it stays finite for |z| up to the dtype's range.
    """
    return -(p * F.logsigmoid(z) + (1 - p) * F.logsigmoid(-z))


def weight_or_one(x: PreferenceLogps, name: str) -> Tensor | float:
    """The per-list weight as a (B,) tensor in the compute dtype, or 1.0 when absent; checks it lies in [0, 1]."""
    if x.weight is None:
        return 1.0
    w = x.weight.to(compute_dtype(x))
    if not torch.compiler.is_compiling() and ((w < 0) | (w > 1) | w.isnan()).any():
        bad = int(((w < 0) | (w > 1) | w.isnan()).nonzero()[0, 0])
        raise ValueError(f"{name}: weight must lie in [0, 1]; list {bad} has weight {float(w[bad])}")
    return w


def soft_label_pair_loss(x: PreferenceLogps, beta: float, name: str) -> Tensor:
    """−p·log σ(β·h) − (1 − p)·log σ(−β·h) on each list's best-vs-worst pair, p = ``x.weight`` (1 when absent).

    The arithmetic DNO (Eq. 11), OSP (SPCE) and CREAM share; they differ in where p comes from, which is the data
    side's business. p = 1 is ``dpo_loss``; p = 1 − ε is DPO with label smoothing ε.

    Returns:
        (B,) unreduced; 0 with no gradient on a list without a preference, even when a weight is given.
    """
    h, has_pref = pair_margin(x)  # (B,), (B,)
    p = weight_or_one(x, name)  # (B,) or 1.0, checked to lie in [0, 1]
    return soft_logistic(beta * h, p) * has_pref


def pair_columns(x: PreferenceLogps, values: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The chosen and rejected entries of a (B, K) tensor, for each list's best-vs-worst pair (``best_worst``).

    Returns:
        w: (B,) ``values`` at the chosen response; l: (B,) at the rejected one; has_pref: (B,) bool.
    """
    chosen, rejected, has_pref = best_worst(x)
    return values.gather(1, chosen[:, None]).squeeze(1), values.gather(1, rejected[:, None]).squeeze(1), has_pref


def lengths_of(x: PreferenceLogps, name: str) -> Tensor:
    """(B, K) response token counts in the compute dtype, at least 1 (TRL clamps the same way)."""
    if x.lengths is None:
        raise ValueError(f"{name}: PreferenceLogps.lengths (response token counts) is needed")
    return x.lengths.to(compute_dtype(x)).clamp(min=1.0)


def where_pref(loss: Tensor, has_pref: Tensor) -> Tensor:
    """``loss`` on lists with a preference, exactly 0 (no gradient) on tied lists."""
    return torch.where(has_pref, loss, torch.zeros((), dtype=loss.dtype, device=loss.device))
