"""Per-list weights that some losses read as ``x.weight``: soft targets (DNO, OSP) and consistency (CREAM).

A weighting is ``fn(records, ctx, **options) -> records`` registered in ``WEIGHTINGS``; recipes pick one with
``weighting: {type: NAME, ...options}``. ``ctx`` carries the live models of the round (``RoundContext``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prefopt.distributed import shard_call
from prefopt.rounds.consistency import with_consistency
from prefopt.rounds.scorers import make_scorer
from prefopt.rounds.scoring import shard_unit


@dataclass
class RoundContext:
    """Models alive in round t: the policy π_t, and the two before it (None where they do not exist yet)."""

    policy: Any
    tokenizer: Any
    previous: Any = None  # π_{t−1}
    before_previous: Any = None  # π_{t−2}


def soft_target(records: list[dict], ctx: RoundContext, *, scale: float = 1.0) -> list[dict]:
    """weight = σ(scale · (s_w − s_l)) for the list's best and worst scores.

    With win-rate scores from a pairwise judge this is DNO's soft target p = σ(r_t(y_w) − r_t(y_l)) (Rosset et
    al., 2024, Eq. 8; ``scale`` is the constant c that may rescale r_t and η together). With a verifiable reward it
    is a preference strength read from the reward gap (the tiny world's stand-in for OSP's self-judged strength).
    """
    out = []
    for r in records:
        p = 1.0 / (1.0 + math.exp(-scale * (max(r["scores"]) - min(r["scores"]))))
        out.append({**r, "weight": p, "meta": {**(r.get("meta") or {}), "soft_target": p}})
    return out


def cream_consistency(records: list[dict], ctx: RoundContext, *, mode: str = "sample",
                      variant: str = "b") -> list[dict]:
    """CREAM (Wang et al., 2024, arXiv 2410.12735): C = (τ + 1)/2 between this round's ranking (the records'
    scores, from π_t's implicit reward) and the previous model's ranking of the same responses (π_{t−1}'s implicit
    reward against π_{t−2}, or its length-normalised likelihood when π_{t−2} does not exist). Round 0 has no
    previous model: C = 1, plain DPO, as the paper's first iteration."""
    if ctx.previous is None:
        return [{**r, "weight": 1.0} for r in records]
    judge = make_scorer("implicit_reward", policy=ctx.previous, ref=ctx.before_previous, tokenizer=ctx.tokenizer)
    previous = shard_call(judge, [r["prompt"] for r in records], [r["responses"] for r in records],
                          unit=shard_unit(judge))
    return with_consistency(records, previous, mode=mode, variant=variant)


WEIGHTINGS: dict[str, Callable[..., list[dict]]] = {
    "soft_target": soft_target,
    "cream_consistency": cream_consistency,
}


def apply_weighting(records: list[dict], ctx: RoundContext, spec: dict[str, Any] | None) -> list[dict]:
    if not spec:
        return records
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in WEIGHTINGS:
        raise ValueError(f"unknown weighting type {kind!r}; valid: {', '.join(sorted(WEIGHTINGS))}")
    return WEIGHTINGS[kind](records, ctx, **spec)
