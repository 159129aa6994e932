"""CREAM consistency: vectorised Kendall τ against a brute-force O(K²) count and against scipy."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from prefopt.data.records import PreferenceDataError
from prefopt.rounds.consistency import consistency, kendall_tau_b, with_consistency


def brute_tau(x, y, variant="b"):
    """Count every pair i < j: concordant, discordant, and pairs untied in x and in y."""
    conc = disc = untied_x = untied_y = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if variant == "ordinal":  # ties broken by position: the earlier response ranks lower
                dx, dy = dx or -1, dy or -1
            untied_x += dx != 0
            untied_y += dy != 0
            conc += dx * dy > 0
            disc += dx * dy < 0
    denom = math.sqrt(untied_x * untied_y)
    return (conc - disc) / denom if denom else 0.0


def random_lists(seed, n=300, levels=4):
    rng = random.Random(seed)
    cur, prev = [], []
    for _ in range(n):
        k = rng.randint(2, 7)
        cur.append([float(rng.randrange(levels)) for _ in range(k)])  # few levels: many ties
        prev.append([float(rng.randrange(levels)) for _ in range(k)])
    return cur, prev


def test_hand_example():
    """x = [3, 1, 2], y = [3, 2, 1]: pairs (0,1) +, (0,2) +, (1,2) − ⇒ τ = (2 − 1)/3, C = (1/3 + 1)/2 = 2/3."""
    assert kendall_tau_b([[3, 1, 2]], [[3, 2, 1]])[0] == pytest.approx(1 / 3)
    assert consistency([[3, 1, 2]], [[3, 2, 1]]) == [pytest.approx(2 / 3)]
    assert consistency([[1, 2, 3]], [[10, 20, 30]]) == [1.0]
    assert consistency([[1, 2, 3]], [[3, 2, 1]]) == [0.0]


@pytest.mark.parametrize("variant", ["b", "ordinal"])
def test_vectorised_equals_brute_force_on_ragged_tied_lists(variant):
    cur, prev = random_lists(seed=0)
    got = kendall_tau_b(cur, prev, variant=variant)
    expected = [brute_tau(x, y, variant) for x, y in zip(cur, prev, strict=True)]
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert got.shape == (300,) and (got == 0).any() and (got < 0).any()


def test_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    cur, prev = random_lists(seed=1)
    tau_b = kendall_tau_b(cur, prev)
    ordinal = kendall_tau_b(cur, prev, variant="ordinal")
    for i, (x, y) in enumerate(zip(cur, prev, strict=True)):
        ref = stats.kendalltau(x, y).statistic  # τ-b, scipy's default; NaN when one side is all tied
        assert tau_b[i] == pytest.approx(0.0 if math.isnan(ref) else ref, abs=1e-12)
        # the CREAM authors' script: ordinal ranks, then kendalltau
        ref = stats.kendalltau(stats.rankdata(x, method="ordinal"), stats.rankdata(y, method="ordinal")).statistic
        assert ordinal[i] == pytest.approx(ref, abs=1e-12)


def test_ties_differ_between_variants():
    """All tied in both rounds: τ-b has nothing to compare (C = 0.5); position tie-breaking calls it agreement."""
    assert consistency([[1, 1, 1]], [[2, 2, 2]]) == [0.5]
    assert consistency([[1, 1, 1]], [[2, 2, 2]], variant="ordinal") == [1.0]


def test_dataset_mode_is_the_mean_and_weights_land_in_records():
    cur, prev = [[3, 1, 2], [1, 2]], [[3, 2, 1], [2, 1]]
    assert consistency(cur, prev, mode="dataset") == pytest.approx((2 / 3 + 0.0) / 2)
    records = [{"prompt": "p", "responses": ["a", "b", "c"], "scores": [3, 1, 2], "weight": None, "meta": {}},
               {"prompt": "q", "responses": ["a", "b"], "scores": [1, 2], "weight": None, "meta": {"round": 1}}]
    out = with_consistency(records, prev)
    assert [r["weight"] for r in out] == [pytest.approx(2 / 3), 0.0]
    assert out[1]["meta"] == {"round": 1, "consistency": 0.0} and records[0]["weight"] is None
    out = with_consistency(records, prev, mode="dataset")
    assert out[0]["weight"] == out[1]["weight"] == pytest.approx(1 / 3)


def test_errors():
    with pytest.raises(PreferenceDataError, match="list 0 has 3 scores this round but 2 last round"):
        kendall_tau_b([[1, 2, 3]], [[1, 2]])
    with pytest.raises(PreferenceDataError, match="2 lists this round but 1 last round"):
        kendall_tau_b([[1, 2], [1, 2]], [[1, 2]])
    with pytest.raises(PreferenceDataError, match=r"current\[0\] has 1 score"):
        kendall_tau_b([[1]], [[1]])
    with pytest.raises(PreferenceDataError, match="non-finite"):
        kendall_tau_b([[1, float("nan")]], [[1, 2]])
    with pytest.raises(ValueError, match="valid: b, ordinal"):
        kendall_tau_b([[1, 2]], [[1, 2]], variant="a")
    with pytest.raises(ValueError, match="'sample' or 'dataset'"):
        consistency([[1, 2]], [[1, 2]], mode="mean")
