"""The noisy judge: fixed per-response noise around the exact reward, and a calibrated pairwise probability."""

from __future__ import annotations

import math
import statistics

import pytest

from prefopt.world.noisy import NOISE, judge_noise, noisy_judge, noisy_reward
from prefopt.world.tasks import make_prompts, reward, solve


def test_noise_is_fixed_per_prompt_and_response():
    assert judge_noise("sort 52813", "12358") == judge_noise("sort 52813", " 12358\n")  # stripped, as the reward
    assert judge_noise("sort 52813", "12358") == judge_noise([{"role": "user", "content": "sort 52813"}], "12358")
    assert judge_noise("sort 52813", "12358") != judge_noise("sort 52813", "12359")
    assert judge_noise("sort 52813", "12358") != judge_noise("sort 52814", "12358")


def test_noisy_reward_is_reward_plus_scaled_noise():
    prompt, response = "rev kdmq", "qmdkqmdk"
    assert noisy_reward(prompt, response) == pytest.approx(reward(prompt, response)
                                                           + NOISE * judge_noise(prompt, response))


def test_noise_is_standard_normal_over_many_responses():
    noise = [judge_noise(p, r) for p in make_prompts(400, seed=3) for r in ("abc", "12345", "")]
    assert abs(statistics.fmean(noise)) < 0.1  # 1200 draws: the mean's standard error is 0.03
    assert statistics.stdev(noise) == pytest.approx(1.0, abs=0.08)


def test_pairwise_probability_is_calibrated_normal_cdf_and_antisymmetric():
    prompt, a, b = "sort 52813", "12358", "1235812358"
    gap = noisy_reward(prompt, a) - noisy_reward(prompt, b)
    expected = 0.5 * (1 + math.erf(gap / (NOISE * math.sqrt(2)) / math.sqrt(2)))
    assert noisy_judge(prompt, a, b) == pytest.approx(expected)
    assert noisy_judge(prompt, a, b) + noisy_judge(prompt, b, a) == pytest.approx(1.0)
    assert noisy_judge(prompt, a, a) == pytest.approx(0.5)


def test_judge_misorders_some_pairs_but_mostly_agrees_with_the_reward():
    wrong = total = 0
    for prompt in make_prompts(200, seed=1):
        answer = solve(prompt)
        for bad in (answer + answer, answer[:-1], answer[::-1] + "x"):
            if reward(prompt, bad) < 1.0:
                total += 1
                wrong += noisy_judge(prompt, answer, bad) < 0.5
    assert 0.02 < wrong / total < 0.4  # noisy, yet far better than a coin
