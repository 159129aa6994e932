"""LiPO-λ's labels ψ_k = (1/K)·Σ_i Ψ_ki (Ψ_kk = ½ counted), from a pointwise reward and from a pairwise judge,
checked against hand-computed 3-response lists; and the ``transform`` option of ``make_scorer``."""

from __future__ import annotations

import math

import pytest
from torch.testing import assert_close

from prefopt.rounds.judges import PairwiseJudgeScorer
from prefopt.rounds.labels import TransformedScorer, bradley_terry_matrix, win_probability_labels
from prefopt.rounds.scorers import make_scorer
from prefopt.rounds.scoring import ScoringError
from tests.rounds.test_judge import StubJudge

REWARDS = {"a": math.log(3.0), "b": 0.0, "c": -math.log(3.0)}


def reward(prompt: str, response: str) -> float:
    """Pointwise rewards chosen so that σ(r_k − r_i) is a simple fraction: σ(ln 3) = 3/4, σ(2 ln 3) = 9/10."""
    return REWARDS[response]


def test_bradley_terry_labels_by_hand():
    """r = (ln 3, 0, −ln 3):  Ψ = [[1/2, 3/4, 9/10], [1/4, 1/2, 3/4], [1/10, 1/4, 1/2]]
    ψ_a = (0.5 + 0.75 + 0.9)/3 = 2.15/3,  ψ_b = (0.25 + 0.5 + 0.75)/3 = 0.5,  ψ_c = (0.1 + 0.25 + 0.5)/3 = 0.85/3
    (the diagonal ½ is counted and K = 3 divides; the labels sum to K/2 = 1.5)."""
    psi_matrix = bradley_terry_matrix([REWARDS[y] for y in "abc"])
    assert_close(psi_matrix, [[0.5, 0.75, 0.9], [0.25, 0.5, 0.75], [0.1, 0.25, 0.5]])
    scorer = make_scorer({"type": "reward_fn", "fn": "tests.rounds.test_labels:reward",
                          "transform": "mean_win_probability"})
    (labels,) = scorer(["p"], [["a", "b", "c"]])
    assert_close(labels, [2.15 / 3, 0.5, 0.85 / 3])
    assert math.isclose(sum(labels), 1.5)


def test_pairwise_judge_labels_by_hand():
    """The stub judge of test_judge, debiased over both orders: P(x≻y) = 0.8, P(x≻z) = 0.5, P(y≻z) = 0.4.
    ψ_x = (0.5 + 0.8 + 0.5)/3 = 0.6,  ψ_y = (0.2 + 0.5 + 0.4)/3 = 1.1/3,  ψ_z = (0.5 + 0.6 + 0.5)/3 = 1.6/3.
    Without the diagonal (the win rates of PairwiseJudgeScorer) they would be 0.65, 0.30, 0.55."""
    judge = StubJudge()
    scorer = TransformedScorer(PairwiseJudgeScorer(judge), win_probability_labels)
    (labels,) = scorer(["q"], [["x", "y", "z"]])
    assert_close(labels, [0.6, 1.1 / 3, 1.6 / 3])
    assert len(judge.calls) == 6  # K·(K−1): every ordered pair once, no second pass for the labels
    assert callable(scorer.matrices)  # the inner judge's matrices stay reachable for pairing rules


def test_unknown_transform_is_refused_before_anything_loads():
    with pytest.raises(ValueError, match="unknown scorer transform 'lipo'.*mean_win_probability"):
        make_scorer({"type": "reward_model", "path": "not/loaded", "transform": "lipo"})


def test_a_baseline_judge_cannot_give_mean_win_probabilities():
    scorer = TransformedScorer(PairwiseJudgeScorer(StubJudge(), baseline=0), win_probability_labels)
    with pytest.raises(ScoringError, match="every pair"):
        scorer(["q"], [["x", "y", "z"]])
