"""A second world for the registry's tests: its own model folder, prompts and reward (tests/world/test_worlds.py).

The model is the test suite's tiny Llama with the character tokenizer, saved on first use into the folder named by
``SECOND_WORLD_DIR``, as a real world would fetch its model into the cache.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

CALLS = {"model_path": 0, "prompts": 0, "reward": 0}


def model_path() -> str:
    from tests.conftest import make_model, make_tokenizer

    CALLS["model_path"] += 1
    folder = Path(os.environ["SECOND_WORLD_DIR"])
    if not (folder / "config.json").exists():
        make_model().save_pretrained(folder)
        make_tokenizer().save_pretrained(folder)
    return str(folder)


def make_prompts(n: int, *, seed: int, split: str = "train") -> list[str]:
    CALLS["prompts"] += 1
    rng = random.Random(f"{split}/{seed}")
    return [f"count {rng.randrange(1, 9)}:" for _ in range(n)]


def reward(prompt: str, response: str) -> float:
    """0 when the response holds as many characters as the prompt's number, minus one per character off."""
    CALLS["reward"] += 1
    return -abs(len(response.strip()) - int(prompt.split()[1].rstrip(":")))
