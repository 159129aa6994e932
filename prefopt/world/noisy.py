"""A noisy judge for the tiny world: the verifiable reward seen through fixed per-response noise.

    scorer: prefopt.world.noisy:noisy_reward                                  # a noisy pointwise judge (CREAM)
    scorer: {type: pairwise_judge, fn: "prefopt.world.noisy:noisy_judge"}     # the same judge, pairwise (OSP)

The world's exact reward (``prefopt.world.tasks.reward``) ranks samples perfectly; the papers' judges do not (CREAM's
self-rewarding model, OSP's self-judging policy). This judge sees r̃(x, y) = r(x, y) + σ·ε(x, y) with ε a standard
normal drawn from a hash of the prompt and response: the same response to the same prompt always gets the same
score, as a deterministic model judging greedily would, and runs are reproducible across processes. With
σ = ``NOISE`` = 0.3 it orders about one pair in four of the base policy's samples the wrong way (and about one
best-vs-worst pair in seven).

The pairwise form reports a calibrated probability rather than a hard verdict: the difference of two noisy scores
has noise σ·√2, so under a flat prior on the true reward gap

    P(a ≻ b) = Φ((r̃(a) − r̃(b)) / (σ·√2))

which is the probability that a's true reward is the higher one. A close call gives P near 0.5, a clear one P
near 0 or 1: the soft preference OSP's loss is built to use.

A self-judge errs where the policy itself errs: the papers' judges (CREAM's self-rewarding model, OSP's
self-preferring policy) are the policy, and prefer what it already finds likely. ``self_biased_reward`` is a judge
whose error shares that bias: r̂(x, y) = r(x, y) + σ·(ρ·z(x, y) + √(1 − ρ²)·ε(x, y)), with z the base policy's
per-token log-likelihood of y, standardised (``SELF_MEAN``, ``SELF_SD``), and ρ = ``SELF_SHARE``. Its error has the
same size σ as the noisy judge's, and correlates ρ with the base policy's own likelihood (which itself correlates
about 0.56 with the reward: the judge is right where the policy is, and wrong where the policy is).
"""

from __future__ import annotations

import math
import random
from functools import lru_cache
from typing import Any

from prefopt.world.tasks import _user_text, reward

NOISE = 0.3  # σ: one pair in four of the base policy's samples is misordered (benchmarks/claims, docs/claims.md)
SELF_SHARE = 0.7  # ρ: the correlation of the self-biased judge's error with the base policy's own likelihood
# Per-token log-likelihood of the base policy's own samples (mean, sd), measured once on 256 train prompts × 4
# samples (prompts seed 77, sample seed 5): -0.807 and 0.658 nats. z = (ℓ − SELF_MEAN) / SELF_SD.
SELF_MEAN, SELF_SD = -0.807, 0.658


def judge_noise(prompt: str | list[dict[str, Any]], response: str) -> float:
    """ε(x, y) ~ N(0, 1), fixed by the prompt text and the stripped response (str seeds hash with sha512)."""
    return random.Random(f"prefopt-world/noisy/{_user_text(prompt).strip()}/{response.strip()}").gauss(0.0, 1.0)


def noisy_reward(prompt: str | list[dict[str, Any]], response: str) -> float:
    """r̃(x, y) = reward(x, y) + NOISE · ε(x, y); not clipped to [0, 1] (clipping would make ties)."""
    return reward(prompt, response) + NOISE * judge_noise(prompt, response)


def noisy_judge(prompt: str | list[dict[str, Any]], a: str, b: str) -> float:
    """P(a ≻ b) = Φ((r̃(a) − r̃(b)) / (σ·√2)): calibrated under the judge's own noise (module docstring)."""
    z = (noisy_reward(prompt, a) - noisy_reward(prompt, b)) / (NOISE * math.sqrt(2.0))
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


@lru_cache(maxsize=1)
def _base():
    from prefopt.world.model import load_base_policy

    model, tokenizer = load_base_policy()
    return model.eval(), tokenizer


@lru_cache(maxsize=200_000)
def base_loglik(prompt_text: str, response: str) -> float:
    """The base policy's mean log-probability per response token (its EOS included) of ``response`` to the user
    turn ``prompt_text``, through the world's chat template."""
    import torch

    model, tokenizer = _base()
    user = [{"role": "user", "content": prompt_text}]
    head = tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=False)
    ids = tokenizer(head + response.strip() + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    start = len(tokenizer(head, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, :-1].float()  # (T - 1, V): position t predicts token t + 1
    logps = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(ids[1:]).unsqueeze(1)).squeeze(1)
    return float(logps[start - 1:].mean())


def self_biased_reward(prompt: str | list[dict[str, Any]], response: str) -> float:
    """r̂ = reward + NOISE·(ρ·z + √(1 − ρ²)·ε): a judge that errs toward the base policy's own likelihood."""
    text = _user_text(prompt).strip()
    z = (base_loglik(text, response) - SELF_MEAN) / SELF_SD
    error = SELF_SHARE * z + math.sqrt(1.0 - SELF_SHARE**2) * judge_noise(prompt, response)
    return reward(prompt, response) + NOISE * error


def self_biased_judge(prompt: str | list[dict[str, Any]], a: str, b: str) -> float:
    """P(a ≻ b) = Φ((r̂(a) − r̂(b)) / (σ·√2)), the pairwise form of ``self_biased_reward``."""
    z = (self_biased_reward(prompt, a) - self_biased_reward(prompt, b)) / (NOISE * math.sqrt(2.0))
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
