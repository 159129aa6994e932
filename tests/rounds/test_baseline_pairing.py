"""OSP's one-baseline pairing: each response judged against one baseline (2·(n−1) judge calls per list of n, both
presentation orders, instead of n·(n−1)), and the pairs and strengths built from those verdicts."""

from __future__ import annotations

import json
import math

import pytest
from torch.testing import assert_close

from prefopt.config import load_config
from prefopt.data.records import PreferenceDataError
from prefopt.rounds.build import build_records
from prefopt.rounds.judges import PairwiseJudgeScorer
from prefopt.rounds.pairing import baseline_pairs
from prefopt.rounds.weighting import RoundContext

CALLS: list[tuple[str, str]] = []


def judge(prompt: str, a: str, b: str) -> float:
    """p(a, b) = σ(a − b) + 0.05 for numeric responses: a first-position bias that both orders cancel."""
    CALLS.append((a, b))
    return 1.0 / (1.0 + math.exp(float(b) - float(a))) + 0.05


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


LIST = ["0.0", "0.5", "1.0", "1.5"]


@pytest.mark.parametrize(("baseline", "calls"), [(None, 2 * 4 * 3), (0, 2 * 2 * 3), (2, 2 * 2 * 3)])
def test_judge_calls_per_list(baseline, calls):
    """Two lists of n = 4: all pairs judge n·(n−1) = 12 ordered pairs per list; a baseline judges 2·(n−1) = 6."""
    CALLS.clear()
    PairwiseJudgeScorer(judge, baseline=baseline)(["p", "q"], [LIST, LIST])
    assert len(CALLS) == calls
    if baseline is not None:
        assert all(LIST[baseline] in pair for pair in CALLS)


def test_baseline_scores_are_win_probabilities_against_the_baseline():
    """Debiased: P(u ≻ b) = (p(u, b) + 1 − p(b, u)) / 2 = σ(u − b); the baseline's own score is ½."""
    (scores,) = PairwiseJudgeScorer(judge, baseline=2)(["p"], [LIST])
    assert_close(scores, [sigmoid(-1.0), sigmoid(-0.5), 0.5, sigmoid(0.5)])


def test_baseline_pairs_orient_each_pair_and_weight_it_by_the_strength():
    """Baseline 2 ("1.0"): 0.0 and 0.5 lose to it, 1.5 beats it; weight = P(chosen ≻ rejected) > ½."""
    scores = [sigmoid(-1.0), sigmoid(-0.5), 0.5, sigmoid(0.5)]
    record = {"prompt": "p", "responses": LIST, "scores": scores, "weight": None, "segments": None, "meta": {}}
    pairs, report = baseline_pairs([record], baseline=2)
    assert [p["responses"] for p in pairs] == [["1.0", "0.0"], ["1.0", "0.5"], ["1.5", "1.0"]]
    assert_close([p["weight"] for p in pairs], [sigmoid(1.0), sigmoid(0.5), sigmoid(0.5)])
    assert (report.rows, report.kept, report.dropped_ties) == (1, 3, 0)
    tied = {**record, "scores": [0.5, 0.5, 0.4, 0.7]}
    pairs, report = baseline_pairs([tied], baseline=0)
    assert report.dropped_ties == 1 and [p["responses"] for p in pairs] == [["0.0", "1.0"], ["1.5", "0.0"]]


def test_scores_from_another_scorer_are_refused():
    record = {"prompt": "p", "responses": LIST, "scores": [0.1, 0.2, 0.3, 0.4], "weight": None, "segments": None,
              "meta": {}}
    with pytest.raises(PreferenceDataError, match="row 0.*baseline mode"):
        baseline_pairs([record], baseline=0)


@pytest.mark.parametrize("bad", [-1, True, "0"])
def test_a_bad_baseline_is_refused(bad):
    with pytest.raises(ValueError, match="baseline must be a response index"):
        PairwiseJudgeScorer(judge, baseline=bad)


def test_the_round_pipeline_passes_the_judges_baseline_to_the_rule(tmp_path):
    """build_records: score with the baseline judge (n − 1 comparisons per list), pair with rule ``baseline``."""
    path = tmp_path / "lists.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"p{i}", "responses": LIST, "scores": [0, 0, 0, 1]}) + "\n"
                            for i in range(3)))
    cfg = load_config([f"data.train={path}", "pairing.rule=baseline"])
    cfg.scorer = {"type": "pairwise_judge", "fn": "tests.rounds.test_baseline_pairing:judge", "baseline": 0}
    CALLS.clear()
    records = build_records(cfg, RoundContext(policy=None, tokenizer=None), 0, {})
    assert len(CALLS) == 3 * 2 * 3  # 3 lists × both orders × 3 opponents of the baseline, nothing judged twice
    assert len(records) == 9 and all(r["responses"][1] == "0.0" and r["weight"] > 0.5 for r in records)
    cfg.scorer = {"type": "pairwise_judge", "fn": "tests.rounds.test_baseline_pairing:judge"}
    with pytest.raises(ValueError, match="needs a pairwise judge scorer with a baseline"):
        build_records(cfg, RoundContext(policy=None, tokenizer=None), 0, {})
