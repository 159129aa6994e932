"""A pairwise judge for the tiny world: P(a ≻ b) from the verifiable reward, as a Bradley–Terry model.

    scorer: {type: pairwise_judge, fn: "prefopt.world.judge:judge"}

The world's model is far too small to judge its own answers, so the world's DNO and OSP recipes use this stand-in
for the paper's LLM judge (GPT-4 for DNO, the policy itself for OSP): P(a ≻ b) = σ((r(a) − r(b)) / τ), τ = 0.1, so a
one-character improvement on a five-character answer (Δr = 0.2) is preferred with probability 0.88.
"""

from __future__ import annotations

import math
from typing import Any

from prefopt.world.tasks import reward

TEMPERATURE = 0.1


def judge(prompt: str | list[dict[str, Any]], a: str, b: str) -> float:
    """Probability that response ``a`` is better than ``b`` for ``prompt``."""
    return 1.0 / (1.0 + math.exp(-(reward(prompt, a) - reward(prompt, b)) / TEMPERATURE))
