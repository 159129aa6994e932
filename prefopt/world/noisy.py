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
"""

from __future__ import annotations

import math
import random
from typing import Any

from prefopt.world.tasks import _user_text, reward

NOISE = 0.3  # σ: one pair in four of the base policy's samples is misordered (benchmarks/claims, docs/claims.md)


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
