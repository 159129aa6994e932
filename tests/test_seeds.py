"""Seed derivation: a pure function of (run seed, keys), collision-free where ``seed * 1000 + index`` was not."""

from __future__ import annotations

import pytest
import torch

from prefopt.seeds import derive_seed, prompt_seed


def test_prompt_seed_is_a_pure_function_of_its_triple():
    assert prompt_seed(0, 1, 2) == prompt_seed(0, 1, 2) == derive_seed(0, 1, 2)
    seeds = {prompt_seed(s, r, i) for s in range(3) for r in range(3) for i in range(200)}
    assert len(seeds) == 3 * 3 * 200  # no two (seed, round, prompt) share a stream
    assert prompt_seed(1, 0, 0) != prompt_seed(0, 0, 1000)  # what seed * 1000 + index confused
    assert all(0 <= s < 2**63 for s in seeds)
    torch.Generator().manual_seed(max(seeds))  # accepted as a torch seed


@pytest.mark.parametrize("bad", [(-1, 0, 0), (0, -2, 0), (0, 0, 1.5)])
def test_negative_or_non_integer_keys_are_refused(bad):
    with pytest.raises(ValueError, match="non-negative integers"):
        prompt_seed(*bad)
