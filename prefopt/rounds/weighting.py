"""Per-list weights that some losses read as ``x.weight``: soft targets (DNO, OSP) and consistency (CREAM).

A weighting is ``fn(records, ctx, **options) -> records`` registered in ``WEIGHTINGS`` with the stage it runs at:
on the scored lists before pairing (the pairs a rule derives inherit the list's weight; CREAM's consistency ranks
every response of a list) or on the pairs after it (DNO's soft target of each pair). Recipes pick one with
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
    """Models alive in round t: the policy π_t, and the two before it (None where they do not exist yet; with
    ``previous_model``, CREAM's M0 is round 0's ``previous``)."""

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
    """CREAM (Wang et al., 2024, arXiv 2410.12735): C = (τ + 1)/2 between this round's ranking of a list's
    responses (the records' scores, π_t's implicit reward against π_{t−1}) and the previous model's ranking of the
    same responses (π_{t−1}'s implicit reward against π_{t−2}, or its length-normalised likelihood when π_{t−2}
    does not exist), computed on the whole list before pairing.

    The authors' loop (github.com/Raibows/CREAM, README and ``rewarding.py``) starts from M1 (the SFT model) with
    the base model M0 as π_{t−1}: the first DPO round already ranks with log π_M1 − log π_M0 and measures
    consistency against M0's length-normalised likelihood. prefopt does the same when ``previous_model`` is M0.
    Without it, round 0 has no previous model and gets C = 1 (plain DPO): a departure from the authors' first
    round, not what they ran."""
    if ctx.previous is None:
        return [{**r, "weight": 1.0} for r in records]
    judge = make_scorer("implicit_reward", policy=ctx.previous, ref=ctx.before_previous, tokenizer=ctx.tokenizer)
    previous = shard_call(judge, [r["prompt"] for r in records], [r["responses"] for r in records],
                          unit=shard_unit(judge))
    return with_consistency(records, previous, mode=mode, variant=variant)


STAGES = ("lists", "pairs")

# type → (weighting, the stage it runs at)
WEIGHTINGS: dict[str, tuple[Callable[..., list[dict]], str]] = {
    "soft_target": (soft_target, "pairs"),
    "cream_consistency": (cream_consistency, "lists"),
}


def apply_weighting(records: list[dict], ctx: RoundContext, spec: dict[str, Any] | None, *,
                    stage: str = "pairs") -> list[dict]:
    """The recipe's weighting applied to ``records`` if it runs at ``stage`` (``"lists"`` before pairing,
    ``"pairs"`` after); records are returned unchanged otherwise, or when ``spec`` is empty."""
    if stage not in STAGES:
        raise ValueError(f"weighting stage must be one of {', '.join(STAGES)}, got {stage!r}")
    if not spec:
        return records
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in WEIGHTINGS:
        raise ValueError(f"unknown weighting type {kind!r}; valid: {', '.join(sorted(WEIGHTINGS))}")
    fn, at = WEIGHTINGS[kind]
    return fn(records, ctx, **spec) if at == stage else records
