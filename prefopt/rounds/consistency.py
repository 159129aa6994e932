"""CREAM consistency: how much this round's ranking of a prompt's responses agrees with the previous round's.

Paper: Wang, He, Liang, Zhang, Bansal, Wei, Zhang, Yao (2024), "CREAM: Consistency Regularized Self-Rewarding
Language Models", arXiv 2410.12735 (ICLR 2025), §4: the same N responses are ranked by the reward model of round t
and of round t−1; Kendall's τ between the two rankings gives the consistency rate C = (τ + 1) / 2 ∈ [0, 1], which
weights the preference loss (C on y+ ≻ y−, 1 − C on the reversed pair).

Which τ. The authors' code (github.com/Raibows/CREAM, ``cal_consistency.py``) turns each round's rewards into
ordinal ranks (``scipy.stats.rankdata(method="ordinal")``: ties broken by position) and then calls
``scipy.stats.kendalltau``. On rankings without ties τ-a, τ-b and the paper's concordant-minus-discordant formula
all coincide, and with continuous rewards (CREAM's implicit DPO reward) ties do not occur. They differ only on
ties, where breaking them by position counts an arbitrary order as agreement. prefopt's default is therefore
**τ-b on the raw scores** (``variant="b"``, scipy's default): a pair tied in either round is neither concordant nor
discordant, and the denominator √(n₁·n₂) counts the untied pairs of each round. ``variant="ordinal"`` reproduces
the authors' script exactly. A list with every score tied in one round has no ranking to compare (τ-b is 0/0):
its τ is taken as 0, i.e. C = 0.5, "no evidence either way".

``mode="sample"`` gives one C per prompt; ``mode="dataset"`` their mean, the single rate applied to every pair.
Everything is vectorised over prompts (lists may be ragged: they are padded and masked).

    c = consistency(current_scores, previous_scores, mode="sample")
    records = with_consistency(records, previous_scores)          # C into each record's "weight"
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from prefopt.data.records import PreferenceDataError

VARIANTS = ("b", "ordinal")


def _padded(lists: Sequence[Sequence[float]], name: str) -> tuple[np.ndarray, np.ndarray]:
    """(B, K) float array padded with 0 and its (B, K) validity mask."""
    width = max((len(x) for x in lists), default=0)
    values = np.zeros((len(lists), width))
    valid = np.zeros((len(lists), width), dtype=bool)
    for i, row in enumerate(lists):
        if len(row) < 2:
            raise PreferenceDataError(f"consistency: {name}[{i}] has {len(row)} score(s); a ranking needs at least 2")
        values[i, : len(row)] = row
        valid[i, : len(row)] = True
    if not np.isfinite(values).all():
        raise PreferenceDataError(f"consistency: {name} contains a non-finite score")
    return values, valid


def _signs(x: np.ndarray, ordinal: bool) -> np.ndarray:
    """(B, K, K): sign(x_i − x_j); with ``ordinal`` ties are broken by position (earlier = lower rank)."""
    s = np.sign(x[:, :, None] - x[:, None, :])
    if ordinal:
        k = np.arange(x.shape[1])
        s = np.where(s == 0, np.sign(k[:, None] - k[None, :]), s)
    return s


def kendall_tau_b(current: Sequence[Sequence[float]], previous: Sequence[Sequence[float]], *,
                  variant: str = "b") -> np.ndarray:
    """Kendall's τ-b between two rounds' scores of the same responses, one value per list (numpy, ragged lists).

    Ties-corrected (the denominator counts each round's untied pairs), unlike the trainer's batched τ-a metric
    (``prefopt.trainer.metrics.kendall_tau_a``). With ``variant="ordinal"`` ties are first broken by position, so
    none remain and τ-b equals τ-a on those ranks (the CREAM authors' script).

    Args:
        current, previous: ``[B][K_b]`` scores; list b of both rounds must score the same K_b responses in the
            same order.
        variant: ``"b"`` (τ-b on the raw scores) or ``"ordinal"`` (τ on ranks with ties broken by position, the
            CREAM authors' script).
    Returns:
        (B,) float array in [−1, 1]; 0 for a list tied throughout in one round (τ-b only).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown Kendall tau variant {variant!r}; valid: {', '.join(VARIANTS)}")
    if len(current) != len(previous):
        raise PreferenceDataError(f"consistency: {len(current)} lists this round but {len(previous)} last round")
    for i, (c, p) in enumerate(zip(current, previous, strict=True)):
        if len(c) != len(p):
            raise PreferenceDataError(f"consistency: list {i} has {len(c)} scores this round but {len(p)} last round; "
                                      "both rounds must score the same responses")
    x, valid = _padded(current, "current")
    y, _ = _padded(previous, "previous")
    k = x.shape[1]
    upper = np.triu(np.ones((k, k), dtype=bool), 1)[None] & valid[:, :, None] & valid[:, None, :]  # (B, K, K) i<j
    sx, sy = _signs(x, variant == "ordinal"), _signs(y, variant == "ordinal")
    s = np.where(upper, sx * sy, 0).sum((1, 2))  # concordant − discordant
    nx = np.where(upper, np.abs(sx), 0).sum((1, 2))  # pairs untied in the current round
    ny = np.where(upper, np.abs(sy), 0).sum((1, 2))
    denom = np.sqrt(nx * ny)
    return np.divide(s, denom, out=np.zeros_like(denom), where=denom > 0)


def consistency(current: Sequence[Sequence[float]], previous: Sequence[Sequence[float]], *, mode: str = "sample",
                variant: str = "b") -> list[float] | float:
    """CREAM's consistency rate C = (τ + 1) / 2: one per list (``mode="sample"``) or their mean (``"dataset"``)."""
    if mode not in ("sample", "dataset"):
        raise ValueError(f"consistency mode must be 'sample' or 'dataset', got {mode!r}")
    rate = (kendall_tau_b(current, previous, variant=variant) + 1.0) / 2.0  # (B,)
    return rate.tolist() if mode == "sample" else float(rate.mean())


def with_consistency(records: list[dict], previous: Sequence[Sequence[float]], *, mode: str = "sample",
                     variant: str = "b") -> list[dict]:
    """New records whose ``weight`` is C between their ``scores`` (this round) and ``previous`` (last round's
    scores of the same responses); C is also kept in ``meta["consistency"]``."""
    rate = consistency([r["scores"] for r in records], previous, mode=mode, variant=variant)
    rates = rate if isinstance(rate, list) else [rate] * len(records)
    return [{**r, "weight": c, "meta": {**(r.get("meta") or {}), "consistency": c}}
            for r, c in zip(records, rates, strict=True)]
