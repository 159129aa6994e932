"""Every seed a run derives from ``train.seed``, in one place.

    prompt_seed(seed, round_index, prompt_index)   the sampling seed of one prompt of one round
    derive_seed(seed, *keys)                       the general rule behind it (any tuple of non-negative integers)
    mix_seed(seed, source_index)                   which lists of one source a data.mix mixture takes

Sampling is seeded per prompt: prompt i of round k draws its K samples from ``prompt_seed(seed, k, i)`` (each
sample j from its own stream ``derive_seed(prompt_seed, j)``, ``prefopt.rounds.row_sampling``), and prompt i of
the before/after evaluation from ``derive_seed(eval_seed(seed), i)``. Because a prompt's seed depends only on the
run seed, the round and its index in the round, a round's data is the same whichever process, batch or shard the
prompt lands in (docs/distributed.md). These seeds are hashed, not added: ``numpy.random.SeedSequence`` mixes the
whole tuple into 64 bits, so (seed 1, prompt 0) and (seed 0, prompt 1000) do not collide as ``seed * 1000 + i``
would, and neighbouring prompts get unrelated streams.

The other formulas are the ones the first version used, kept so that results stay reproducible across versions:
the tiny world draws round ``k``'s training prompts with ``seed * 1000 + k``, the evaluation's base seed is
``seed + 999``, DNO's replay draws with ``seed + k``, and the tiny world's held-out prompts are always drawn with
``WORLD_EVAL_SEED`` (the same eval set for every run and seed, so rewards of different runs are comparable).
"""

from __future__ import annotations

import numpy as np

WORLD_EVAL_SEED = 10_000  # the tiny world's held-out prompts: one fixed set for every run


def derive_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed from ``(seed, *keys)``, all non-negative integers (fits ``torch.Generator.manual_seed``)."""
    entropy = [seed, *keys]
    if any(not isinstance(v, (int, np.integer)) or v < 0 for v in entropy):
        raise ValueError(f"seeds and keys must be non-negative integers, got {entropy}")
    state = np.random.SeedSequence([int(v) for v in entropy]).generate_state(1, dtype=np.uint64)[0]
    return int(state) >> 1


def prompt_seed(seed: int, round_index: int, prompt_index: int) -> int:
    """The sampling seed of prompt ``prompt_index`` of round ``round_index`` of a run seeded ``seed``."""
    return derive_seed(seed, round_index, prompt_index)


def round_seed(seed: int, round_index: int) -> int:
    """The tiny world's training prompts of round ``round_index``."""
    return seed * 1000 + round_index


def eval_seed(seed: int) -> int:
    """The before/after evaluation's base seed (prompt i samples with ``derive_seed(eval_seed(seed), i)``)."""
    return seed + 999


def replay_seed(seed: int, round_index: int) -> int:
    """DNO's draw of earlier rounds' pairs mixed into round ``round_index``."""
    return seed + round_index


def mix_seed(seed: int, source_index: int) -> int:
    """The draw of source ``source_index``'s lists into a ``data.mix`` mixture (three keys: no other seed has three,
    so it never collides with a prompt's)."""
    return derive_seed(seed, source_index, 0, 1)
