"""Per-list weights the losses read as x.weight: DNO's soft target from win rates, and the registry of weightings.
(CREAM's consistency is tested in test_consistency.py; OSP's strength, the judge's order-averaged verdict, in
test_judge.py and test_pairing.py.)"""

from __future__ import annotations

import pytest

from prefopt.rounds.weighting import RoundContext, apply_weighting, soft_target

CTX = RoundContext(policy=None, tokenizer=None)


def rec(scores, **meta):
    return {"prompt": "q", "responses": [str(i) for i in range(len(scores))], "scores": scores, "meta": meta}


def test_soft_target_from_win_rates():
    """DNO, Eq. 8: p = σ(c·(r_w − r_l)) with r the list's best and worst win rates.

    r_w = 0.8, r_l = 0.2: σ(0.6) = 0.6456563062; with c = 2, σ(1.2) = 0.7685247835; a tied list gives σ(0) = 0.5.
    """
    out = soft_target([rec([0.2, 0.8, 0.5], kept="yes"), rec([0.5, 0.5])], CTX)
    assert [r["weight"] for r in out] == pytest.approx([0.6456563062, 0.5])
    assert out[0]["meta"] == {"kept": "yes", "soft_target": out[0]["weight"]}
    scaled = soft_target([rec([0.2, 0.8])], CTX, scale=2.0)
    assert scaled[0]["weight"] == pytest.approx(0.7685247835)


def test_win_rates_in_unit_interval_keep_the_target_inside_sigmoid_of_plus_minus_one():
    """Win rates lie in [0, 1], so with c = 1 the target never leaves [σ(−1), σ(1)] ≈ [0.269, 0.731]."""
    [best] = soft_target([rec([0.0, 1.0])], CTX)
    assert best["weight"] == pytest.approx(0.7310585786)


def test_apply_weighting_reads_the_registry():
    records = [rec([0.2, 0.8])]
    assert apply_weighting(records, CTX, None) is records
    assert apply_weighting(records, CTX, {"type": "soft_target", "scale": 2.0})[0]["weight"] == pytest.approx(
        0.7685247835)
    with pytest.raises(ValueError, match="unknown weighting type 'nope'; valid: cream_consistency, soft_target"):
        apply_weighting(records, CTX, {"type": "nope"})
