"""The claims' shared data budget and the override builder every arm uses.

At full size a single-round arm samples from 512 train prompts and takes 75 optimizer steps of 32 lists (half the
default recipes' 1024 prompts and 150 steps, so that the whole suite fits its time budget); multi-round arms say
their per-round budget. At smoke size every arm takes 16 prompts and 2 steps.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.claims.core import Size

PROMPTS, STEPS = 512, 75  # full size, per single-round arm
SMOKE_PROMPTS, SMOKE_STEPS = 16, 2


def recipe(name: str, *extra: str, prompts: int = PROMPTS, steps: int = STEPS) -> Callable[[Size], list[str]]:
    """Overrides of an arm: the recipe ``recipes/<name>.yaml``, the data budget at this size, then ``extra``."""

    def overrides(size: Size) -> list[str]:
        return [f"recipe={name}", f"data.n_prompts={size.pick(prompts, SMOKE_PROMPTS)}",
                f"train.max_steps={size.pick(steps, SMOKE_STEPS)}", *extra]

    return overrides
