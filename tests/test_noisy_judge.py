"""The tiny world's judges: the exogenous noisy judge and the self-biased one whose error follows the base policy."""

from __future__ import annotations

import math

import pytest

from prefopt.world import load_base_policy
from prefopt.world.noisy import (
    NOISE,
    SELF_MEAN,
    SELF_SD,
    SELF_SHARE,
    base_loglik,
    judge_noise,
    noisy_reward,
    self_biased_judge,
    self_biased_reward,
)
from prefopt.world.tasks import reward


def test_base_loglik_is_the_trainers_per_token_log_prob():
    from prefopt.trainer.logps import sequence_logps

    model, tokenizer = load_base_policy()
    responses = ["123", "123123", "zz", ""]
    expected = sequence_logps(model, tokenizer, [[{"role": "user", "content": "sort 312"}]], [responses],
                              average=True)[0]
    assert [base_loglik("sort 312", y) for y in responses] == pytest.approx(expected, abs=1e-5)


def test_self_biased_reward_is_the_reward_plus_an_error_shared_with_the_base():
    prompt = [{"role": "user", "content": "rev abc"}]
    for y in ("cba", "cbacba", "abc", "q"):
        z = (base_loglik("rev abc", y) - SELF_MEAN) / SELF_SD
        error = SELF_SHARE * z + math.sqrt(1 - SELF_SHARE**2) * judge_noise(prompt, y)
        assert self_biased_reward(prompt, y) == pytest.approx(reward(prompt, y) + NOISE * error)
        assert self_biased_reward("rev abc", y) == self_biased_reward(prompt, y)  # text and chat prompts alike
    assert noisy_reward(prompt, "cba") != self_biased_reward(prompt, "cba")


def test_self_biased_judge_is_calibrated_on_its_own_scores():
    a, b = "cba", "cbacba"
    p = self_biased_judge("rev abc", a, b)
    gap = self_biased_reward("rev abc", a) - self_biased_reward("rev abc", b)
    assert p == pytest.approx(0.5 * (1 + math.erf(gap / (NOISE * math.sqrt(2)) / math.sqrt(2))))
    assert self_biased_judge("rev abc", b, a) == pytest.approx(1 - p)
