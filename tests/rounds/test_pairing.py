"""Pairing rules on hand-made scored lists: what each keeps, what it drops and how the drops are counted."""

from __future__ import annotations

import copy

import pytest
import torch

from losses import PreferenceLogps, best_worst
from prefopt.data.records import PreferenceDataError
from prefopt.rounds.pairing import (
    RULES,
    all_pairs,
    best_vs_worst,
    build,
    d2o_lists,
    dno_pairs,
    full_lists,
    margin_pairs,
    mix_replay,
    strength_pairs,
    with_gold,
)


def rec(scores, prompt="p", meta=None, segments=None, weight=None):
    names = "abcdefgh"[: len(scores)]
    return {"prompt": prompt, "responses": list(names), "scores": list(scores), "weight": weight,
            "segments": segments, "meta": dict(meta or {})}


def pairs(out):
    return [("".join(r["responses"]), r["scores"]) for r in out]


def test_full_lists_keeps_lists_and_drops_all_tied():
    records = [rec([3, 1, 2]), rec([2, 2]), rec([1, 0])]
    out, report = full_lists(records)
    assert pairs(out) == [("abc", [3, 1, 2]), ("ab", [1, 0])]
    assert (report.rows, report.kept, report.dropped_ties, report.dropped) == (3, 2, 1, {})
    assert out[0]["meta"]["source_indices"] == [0, 1, 2]


def test_best_vs_worst_first_best_last_worst():
    records = [rec([2, 5, 5, 1, 1]), rec([4, 4, 4]), rec([0, 1])]
    out, report = best_vs_worst(records)
    assert pairs(out) == [("be", [5, 1]), ("ba", [1, 0])]
    assert out[0]["meta"]["source_indices"] == [1, 4]
    assert (report.kept, report.dropped_ties) == (2, 1)


def test_best_vs_worst_picks_the_pair_the_losses_train_on():
    """The records rule and the tensor rule the losses apply (``losses.best_worst``) choose the same responses,
    ties included: a full list trained with a pairwise loss and its best_vs_worst pair are the same pair."""
    lists = [[2, 5, 5, 1, 1], [0, 3, 3, 0, 1], [1, 1, 1, 1, 0], [4, 4, 4, 4, 4]]
    out, _ = best_vs_worst([rec(s) for s in lists])
    chosen, rejected, has_pref = best_worst(PreferenceLogps(policy=torch.zeros(4, 5), ref=None,
                                                            scores=torch.tensor(lists, dtype=torch.float32)))
    assert has_pref.tolist() == [True, True, True, False]
    assert [r["meta"]["source_indices"] for r in out] == torch.stack([chosen, rejected], 1)[:3].tolist()


def test_all_pairs_every_strict_pair_ties_counted_per_pair():
    """[3, 1, 3, 2]: pairs (0,1) a≻b, (0,2) tie, (0,3) a≻d, (1,2) c≻b, (1,3) d≻b, (2,3) c≻d → 5 pairs, 1 tie."""
    out, report = all_pairs([rec([3, 1, 3, 2])])
    assert pairs(out) == [("ab", [3, 1]), ("ad", [3, 2]), ("cb", [3, 1]), ("db", [2, 1]), ("cd", [3, 2])]
    assert (report.rows, report.kept, report.dropped_ties, report.dropped) == (1, 5, 1, {})


def test_margin_pairs_keep_gaps_at_or_above_the_margin():
    """[3, 1, 3, 2] with min_margin 2: only gaps 3−1 (twice) qualify; gaps of 1 are below the margin."""
    out, report = margin_pairs([rec([3, 1, 3, 2])], min_margin=2.0)
    assert pairs(out) == [("ab", [3, 1]), ("cb", [3, 1])]
    assert (report.kept, report.dropped_ties, report.dropped) == (2, 1, {"below_margin": 3})
    win_rates = rec([0.75, 0.5, 0.25])
    assert pairs(margin_pairs([win_rates], min_margin=0.5)[0]) == [("ac", [0.75, 0.25])]


def test_dno_rule_thresholds_and_gold_margin():
    """Every pair is checked: positive ≥ 5, gap ≥ 2 when the positive is gold, ≥ 1 when it is a policy sample.

    [6, 3, 5, 5]: (0,1) 6−3 kept · (0,2) 6−5 kept · (0,3) kept · (1,2) 5−3 kept as c≻b · (1,3) d≻b kept ·
                  (2,3) tie                                                   → 5 pairs, 1 tie
    [4, 1]:       positive 4 < 5                                              → positive_below_min
    [5, 4.5]:     gap 0.5 < 1                                                 → below_margin
    [2, 5, 4] gold = 1: (0,1) gold 5 − 2 = 3 ≥ 2 kept as b≻a · (0,2) 4 < 5 positive_below_min ·
                  (1,2) gold 5 − 4 = 1 < 2 below_margin                       → 1 pair
    [5, 6] gold = 0: the policy sample is the positive, 6 − 5 = 1 ≥ 1 kept as b≻a
    """
    records = [rec([6, 3, 5, 5]), rec([4, 1]), rec([5, 4.5]), rec([2, 5, 4], meta={"gold_index": 1}),
               rec([5, 6], meta={"gold_index": 0})]
    out, report = dno_pairs(records, min_positive=5, margin=2, margin_if_policy=1)
    assert pairs(out) == [("ab", [6, 3]), ("ac", [6, 5]), ("ad", [6, 5]), ("cb", [5, 3]), ("db", [5, 3]),
                          ("ba", [5, 2]), ("ba", [6, 5])]
    assert out[5]["meta"]["gold_index"] == 0 and out[6]["meta"]["gold_index"] == 1
    assert "gold_index" not in out[0]["meta"]
    assert (report.rows, report.kept, report.dropped_ties) == (5, 7, 1)
    assert report.dropped == {"positive_below_min": 2, "below_margin": 2}


def test_strength_pairs_carry_the_judged_probability():
    """Win rates [0.65, 0.30, 0.55] from matrix M: pairs a≻b (M[0][1] = 0.8), a≻c (0.5), c≻b (M[2][1] = 0.6)."""
    matrix = [[0.5, 0.8, 0.5], [0.2, 0.5, 0.4], [0.5, 0.6, 0.5]]
    out, report = strength_pairs([rec([0.65, 0.30, 0.55]), rec([0.5, 0.5])], [matrix, [[0.5, 0.5], [0.5, 0.5]]])
    assert [(r["responses"], r["weight"]) for r in out] == [(["a", "b"], 0.8), (["a", "c"], 0.5), (["c", "b"], 0.6)]
    assert (report.rows, report.kept, report.dropped_ties) == (2, 3, 1)
    with pytest.raises(PreferenceDataError, match="1 preference matrices for 2 records"):
        strength_pairs([rec([1, 0]), rec([1, 0])], [matrix])


def test_d2o_samples_as_positives_given_negative_strictly_lowest():
    records = [rec([1, 0], prompt="p0"), rec([0, 1, 0], prompt="p1"), rec([1, 0], prompt="p2"), rec([2, 1])]
    samples = [["s1", "b", "s2"], ["t"], ["b"], ["u"]]
    out, report = d2o_lists(records, samples)
    assert [(r["prompt"], r["responses"], r["scores"]) for r in out] == [
        ("p0", ["s1", "s2", "b"], [1.0, 1.0, 0.0]), ("p", ["u", "b"], [1.0, 0.0])]
    assert out[0]["meta"]["negative_index"] == 2
    assert (report.rows, report.kept, report.dropped_ties) == (4, 2, 1)  # p1: two responses share the lowest score
    assert report.dropped == {"sample_equals_negative": 2, "no_samples": 1}
    scored, _ = d2o_lists(records[:1], samples[:1], sample_scores=[[0.3, 9.0, -0.5]])
    assert scored[0]["scores"] == [0.3, -0.5, -1.5]  # the negative is below every sample


def test_d2o_rejects_misaligned_inputs():
    with pytest.raises(PreferenceDataError, match="1 sample lists for 2 records"):
        d2o_lists([rec([1, 0]), rec([1, 0])], [["x"]])
    with pytest.raises(PreferenceDataError, match="row 0: 1 sample scores for 2 samples"):
        d2o_lists([rec([1, 0])], [["x", "y"]], sample_scores=[[1.0]])


def test_derived_records_carry_weight_segments_and_leave_input_untouched():
    records = [rec([0, 2, 1], weight=0.7, segments=[[[0, 1]], [[1, 2]], []], meta={"round": 2})]
    before = copy.deepcopy(records)
    out, _ = best_vs_worst(records)
    assert out[0]["segments"] == [[[1, 2]], [[0, 1]]] and out[0]["weight"] == 0.7
    assert out[0]["meta"] == {"round": 2, "source_indices": [1, 0]}
    assert records == before


def test_with_gold_appends_and_marks():
    out = with_gold([rec([1, 0]), rec([3, 2, 1])], ["G0", "G1"])
    assert out[0]["responses"] == ["a", "b", "G0"] and out[0]["meta"]["gold_index"] == 2
    assert out[1]["meta"]["gold_index"] == 3 and len(out[1]["scores"]) == 4
    with pytest.raises(PreferenceDataError, match="1 gold responses for 2 records"):
        with_gold([rec([1, 0]), rec([1, 0])], ["G"])


def test_mix_replay_fractions_seed_and_lag():
    current = [rec([1, 0], prompt=f"now{i}") for i in range(4)]
    t1 = [rec([1, 0], prompt=f"t1_{i}") for i in range(10)]
    t2 = [rec([1, 0], prompt=f"t2_{i}") for i in range(20)]
    mixed, counts = mix_replay(current, [t1, t2], seed=3)
    assert counts == {"t-1": 3, "t-2": 3}  # floor(0.3·10), floor(0.15·20)
    assert [r["prompt"] for r in mixed[:4]] == [f"now{i}" for i in range(4)]
    assert [r["meta"]["replay"] for r in mixed[4:]] == [1, 1, 1, 2, 2, 2]
    again, _ = mix_replay(current, [t1, t2], seed=3)
    assert again == mixed
    other, _ = mix_replay(current, [t1, t2], seed=4)
    assert [r["prompt"] for r in other] != [r["prompt"] for r in mixed]
    assert mix_replay(current, [t1[:2]])[1] == {"t-1": 0}  # floor(0.3·2) = 0
    # relative to this round's size: floor(0.5·4) = 2 from t−1, and t−2 has only 1 to give
    assert mix_replay(current, [t1, t2[:1]], fractions=(0.5, 0.5), relative_to="current")[1] == {"t-1": 2, "t-2": 1}
    assert mix_replay(current, [], fractions=(0.5,))[0] == current
    assert "replay" not in t1[0]["meta"]
    with pytest.raises(ValueError, match="2 earlier rounds but only 1 fractions"):
        mix_replay(current, [t1, t2], fractions=(0.3,))


def test_build_dispatches_by_name_and_lists_rules():
    out, _ = build([rec([3, 1, 3, 2])], "margin", min_margin=2)
    assert len(out) == 2
    with pytest.raises(ValueError, match="valid rules: " + ", ".join(sorted(RULES))):
        build([], "lipo")
