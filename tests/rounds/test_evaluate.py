"""evaluate_reward: the 95% interval arithmetic, and the plumbing from prompts to rewards."""

from __future__ import annotations

import math

import pytest
from torch.testing import assert_close

from prefopt.rounds.evaluate import Z95, evaluate_reward, mean_ci95, paired_win_rate
from prefopt.world.model import WorldConfig, build_model
from prefopt.world.tokenizer import build_tokenizer


def test_mean_ci95_arithmetic():
    """values [0, 1, 1, 0, 1]: mean 0.6; s² = (3·0.16 + 2·0.36) / 4 = 0.3; half-width 1.95996·√0.3/√5 = 0.480091."""
    out = mean_ci95([0.0, 1.0, 1.0, 0.0, 1.0])
    half = Z95 * math.sqrt(0.3) / math.sqrt(5)
    assert_close(half, 0.480091, atol=1e-6, rtol=0)
    assert out["n"] == 5
    assert_close(out["mean"], 0.6)
    assert_close(out["std"], math.sqrt(0.3))
    assert_close((out["ci95_low"], out["ci95_high"]), (0.6 - half, 0.6 + half))


def test_mean_ci95_edge_cases():
    assert mean_ci95([0.25]) == {"mean": 0.25, "ci95_low": 0.25, "ci95_high": 0.25, "std": 0.0, "n": 1}
    assert mean_ci95([0.5] * 10)["ci95_high"] == 0.5
    with pytest.raises(ValueError):
        mean_ci95([])


def test_evaluate_reward_scores_every_sample():
    """A stub reward that reads only the prompt: 1 for 'rev' prompts, 0 otherwise -> mean 2/3 over 3 × 4 samples."""
    tok = build_tokenizer()
    model = build_model(WorldConfig(), tok)
    prompts = ["rev ab", "sort 21", "rev cd"]
    seen = []

    def stub(prompt, response):
        seen.append((prompt, response))
        return 1.0 if prompt.startswith("rev") else 0.0

    out = evaluate_reward(model, tok, prompts, stub, samples_per_prompt=4, max_new_tokens=3)
    assert out["n"] == 12 and len(seen) == 12
    assert [p for p, _ in seen] == [p for p in prompts for _ in range(4)]
    assert out == mean_ci95([1.0] * 4 + [0.0] * 4 + [1.0] * 4)


def test_paired_win_rate_counts_ties_half_and_takes_its_interval_over_prompts():
    """Prompt 0: samples (0.9 vs 0.1, win) and (0.5 vs 0.5, tie) → 0.75; prompt 1: (0.2 vs 0.4, loss) and
    (0.3 vs 0.3, tie) → 0.25; prompt 2: two wins → 1. Mean (0.75 + 0.25 + 1) / 3 = 2/3 over n = 3 prompts."""
    ours = [(0, 0, 0.9), (0, 1, 0.5), (1, 0, 0.2), (1, 1, 0.3), (2, 0, 1.0), (2, 1, 0.7)]
    base = [(0, 0, 0.1), (0, 1, 0.5), (1, 0, 0.4), (1, 1, 0.3), (2, 0, 0.0), (2, 1, 0.6)]
    rows = lambda xs: [{"index": i, "sample": k, "reward": r} for i, k, r in xs]
    out = paired_win_rate(rows(ours), rows(base))
    assert out == mean_ci95([0.75, 0.25, 1.0]) and out["n"] == 3 and out["mean"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="not on the same prompts"):
        paired_win_rate(rows(ours), rows(base[1:] + base[:1]))
