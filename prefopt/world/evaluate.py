"""Mean reward of a policy's samples on held-out prompts, with a 95% confidence interval.

    from prefopt.world import evaluate_reward, make_prompts, reward
    stats = evaluate_reward(model, tokenizer, make_prompts(256, seed=0, split="eval"), reward, max_new_tokens=10)
    stats["mean"], stats["ci95_low"], stats["ci95_high"], stats["n"]

The interval is the normal approximation ``mean ± 1.96 · s / √n`` over all n = prompts × samples_per_prompt
rewards, with s the sample standard deviation (n − 1 in the denominator). Two caveats, both small for the default
recipes: samples of one prompt are correlated, so with ``samples_per_prompt > 1`` the interval is somewhat too
narrow (its width is honest over prompts only at one sample per prompt); and rewards are bounded, so with a few
dozen samples near 0 or 1 the normal approximation is rough.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from prefopt.data.generate import Prompt, sample

Z95 = 1.959963984540054  # two-sided 95% quantile of the standard normal
EVAL_PROMPTS = 256  # default size of the held-out set (make_prompts(EVAL_PROMPTS, seed=0, split="eval"))


def mean_ci95(values: Sequence[float]) -> dict[str, float]:
    """``{"mean", "ci95_low", "ci95_high", "std", "n"}`` of ``values`` (normal approximation, see module doc).

    One value gives a zero-width interval (no spread to estimate); none raises ValueError.
    """
    n = len(values)
    if n == 0:
        raise ValueError("mean_ci95 needs at least one value")
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    half = Z95 * std / math.sqrt(n)
    return {"mean": mean, "ci95_low": mean - half, "ci95_high": mean + half, "std": std, "n": n}


def evaluate_reward(model, tokenizer, prompts: Sequence[Prompt], reward_fn: Callable[[Prompt, str], float], *,
                    samples_per_prompt: int = 1, max_new_tokens: int, temperature: float = 1.0, seed: int = 0,
                    batch_size: int = 256, progress: bool = False) -> dict[str, float]:
    """Sample ``samples_per_prompt`` responses per prompt and summarise ``reward_fn(prompt, response)``.

    Returns:
        ``mean``, ``ci95_low``, ``ci95_high``, ``std`` and ``n`` (the number of rewards), as ``mean_ci95``.
    """
    responses = sample(model, tokenizer, prompts, k=samples_per_prompt, max_new_tokens=max_new_tokens,
                       temperature=temperature, batch_size=batch_size, seed=seed, progress=progress)
    rewards = [float(reward_fn(p, r)) for p, rs in zip(prompts, responses, strict=True) for r in rs]
    return mean_ci95(rewards)
