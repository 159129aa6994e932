"""The tiny world's tasks: answers, the graded reward, and deterministic, disjoint prompt splits."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from prefopt.world.tasks import make_prompts, noisy_demonstration, reward, solve, split_of


@pytest.mark.parametrize(("prompt", "answer"), [("sort 52813", "12358"), ("sort 300", "003"), ("rev kdmq", "qmdk"),
                                                ("next abyz", "bcza")])
def test_solve(prompt, answer):
    assert solve(prompt) == answer
    assert solve([{"role": "user", "content": prompt}]) == answer  # chat messages: the last user turn


@pytest.mark.parametrize("prompt", ["sort abc", "rev 123", "add 1+2", "hello", ""])
def test_solve_rejects_foreign_prompts(prompt):
    with pytest.raises(ValueError, match="not a tiny-world prompt"):
        solve(prompt)


@pytest.mark.parametrize(("response", "expected"), [
    ("12358", 1.0),        # right
    (" 12358\n", 1.0),     # surrounding whitespace ignored
    ("12359", 0.8),        # 1 substitution / 5
    ("1235", 0.8),         # 1 deletion / 5
    ("123588", 5 / 6),     # 1 insertion / 6 (the longer string)
    ("1235812358", 0.5),   # said twice: 5 insertions / 10
    ("85321", 0.2),        # reversed: distance 4 / 5
    ("", 0.0),
    ("abcdefghij", 0.0),   # distance 10 / 10
])
def test_reward_gives_partial_credit(response, expected):
    assert reward("sort 52813", response) == pytest.approx(expected)


def test_reward_stays_in_unit_interval():
    rng = random.Random(0)
    for prompt in make_prompts(100, seed=5):
        for _ in range(5):
            response = "".join(rng.choice("0123456789abcxyz ") for _ in range(rng.randint(0, 12)))
            assert 0.0 <= reward(prompt, response) <= 1.0


def test_reward_is_importable_as_module_function():
    import importlib

    module, _, name = "prefopt.world.tasks:reward".partition(":")
    assert getattr(importlib.import_module(module), name)("rev ab", "ba") == 1.0


def test_prompts_are_deterministic_distinct_and_extend():
    first = make_prompts(200, seed=7)
    assert first == make_prompts(200, seed=7)
    assert len(set(first)) == 200
    assert make_prompts(300, seed=7)[:200] == first
    assert make_prompts(200, seed=8) != first
    assert {p.split()[0] for p in first} == {"sort", "rev", "next"}


def test_prompts_are_the_same_in_another_process():
    code = "from prefopt.world.tasks import make_prompts; print(make_prompts(5, seed=1, split='eval'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(make_prompts(5, seed=1, split="eval"))


def test_splits_are_disjoint():
    train = set(make_prompts(2000, seed=0, split="train")) | set(make_prompts(2000, seed=1, split="train"))
    evals = set(make_prompts(500, seed=0, split="eval")) | set(make_prompts(500, seed=1, split="eval"))
    assert not train & evals
    assert all(split_of(p) == "eval" for p in evals)


def test_make_prompts_validates_arguments():
    with pytest.raises(ValueError, match="split"):
        make_prompts(3, seed=0, split="test")
    with pytest.raises(ValueError, match="n must be"):
        make_prompts(-1, seed=0)
    assert make_prompts(0, seed=0) == []


def test_noisy_demonstration():
    rng = random.Random(0)
    assert noisy_demonstration("rev abc", rng, noise=0.0, repeat_rate=0.0) == "cba"
    assert noisy_demonstration("rev abc", rng, noise=0.0, repeat_rate=1.0) == "cbacba"
    noisy = [noisy_demonstration("sort 12345", rng, noise=0.5, repeat_rate=0.0) for _ in range(50)]
    assert all(len(d) == 5 and d.isdigit() for d in noisy) and any(d != "12345" for d in noisy)
