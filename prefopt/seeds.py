"""Every seed a run derives from ``train.seed``, in one place.

The formulas are the ones the first version used, kept so that results stay reproducible across versions:
round ``k`` samples with ``seed * 1000 + k``, the before/after evaluation with ``seed + 999``, DNO's replay draws
with ``seed + k``, and the tiny world's held-out prompts are always drawn with ``WORLD_EVAL_SEED`` (the same eval
set for every run and seed, so rewards of different runs are comparable).
"""

from __future__ import annotations

WORLD_EVAL_SEED = 10_000  # the tiny world's held-out prompts: one fixed set for every run


def round_seed(seed: int, round_index: int) -> int:
    """Sampling (and the world's training prompts) of round ``round_index``."""
    return seed * 1000 + round_index


def eval_seed(seed: int) -> int:
    """Sampling of the reward before/after evaluation: apart from every round's seed."""
    return seed + 999


def replay_seed(seed: int, round_index: int) -> int:
    """DNO's draw of earlier rounds' pairs mixed into round ``round_index``."""
    return seed + round_index
