"""The tiny world's tasks: short string puzzles with a verifiable, graded reward.

Three task families, each a plain-text prompt (the user turn; the chat template wraps it) with one right answer:

    sort 52813   -> 12358     sort 3 to 5 digits
    rev kdmq     -> qmdk      reverse 3 to 5 letters
    next abyz    -> bcza      replace each of 3 to 5 letters by the next one in the alphabet (z -> a)

The reward is graded, not 0/1: ``1 - levenshtein(answer, response) / max(len(answer), len(response))``, so a
response with one wrong digit scores higher than garbage, and both a truncated and a run-on response lose credit.
It is importable as ``prefopt.world.tasks:reward`` (the CLI's ``module:function`` form).

Train and eval prompts come from disjoint parts of the prompt space (a hash of the prompt text puts one prompt in
five in eval), so no eval prompt is ever trained on, whatever the seeds and sizes.
"""

from __future__ import annotations

import random
import zlib
from typing import Any

TASKS = ("sort", "rev", "next")
DIGITS = "0123456789"
LETTERS = "abcdefghijklmnopqrstuvwxyz"
MIN_LEN, MAX_LEN = 3, 5  # argument lengths
# The longest answer is 5 characters; 12 tokens leave room for an answer said twice (the base policy's habit) and
# its EOS, so the reward sees the whole of a rambling response rather than a truncated one.
MAX_NEW_TOKENS = 12
EVAL_FRACTION = 5  # one prompt in EVAL_FRACTION belongs to the eval split
SPLITS = ("train", "eval")


def _user_text(prompt: str | list[dict[str, Any]]) -> str:
    """The prompt string; for chat messages, the content of the last user turn."""
    if isinstance(prompt, str):
        return prompt
    users = [m["content"] for m in prompt if m.get("role") == "user"]
    if not users:
        raise ValueError("prompt messages contain no user turn")
    return users[-1]


def solve(prompt: str | list[dict[str, Any]]) -> str:
    """The one right answer to a world prompt; ValueError for a prompt that is not from this world."""
    text = _user_text(prompt).strip()
    task, _, arg = text.partition(" ")
    if task == "sort" and arg.isdigit():
        return "".join(sorted(arg))
    if task == "rev" and arg.isalpha():
        return arg[::-1]
    if task == "next" and arg.isalpha():
        return "".join(LETTERS[(LETTERS.index(c) + 1) % 26] for c in arg)
    raise ValueError(f"not a tiny-world prompt: {text!r} (expected 'sort <digits>', 'rev <letters>' or "
                     "'next <letters>')")


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions each cost 1); O(len(a)·len(b)), fine for short strings."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def reward(prompt: str | list[dict[str, Any]], response: str) -> float:
    """Graded reward in [0, 1]: 1 − edit distance / length of the longer of answer and response.

    Surrounding whitespace in the response is ignored. Examples (answer ``12358``): ``12358`` → 1.0,
    ``12359`` → 0.8, ``1235`` → 0.8, ``123588`` → 5/6, ``""`` → 0.0.
    """
    answer = solve(prompt)
    response = response.strip()
    longest = max(len(answer), len(response))  # the answer is never empty, so longest >= 1
    return 1.0 - levenshtein(answer, response) / longest


def split_of(prompt: str) -> str:
    """``"eval"`` or ``"train"``: a stable hash of the prompt text (crc32, not Python's salted ``hash``)."""
    return "eval" if zlib.crc32(prompt.encode()) % EVAL_FRACTION == 0 else "train"


def draw_prompt(rng: random.Random, split: str = "train") -> str:
    """One random prompt of ``split`` (tasks uniform; repeats possible): the warm-up's i.i.d. stream."""
    while True:
        task = rng.choice(TASKS)
        alphabet = DIGITS if task == "sort" else LETTERS
        prompt = f"{task} " + "".join(rng.choice(alphabet) for _ in range(rng.randint(MIN_LEN, MAX_LEN)))
        if split_of(prompt) == split:
            return prompt


def make_prompts(n: int, *, seed: int, split: str = "train") -> list[str]:
    """``n`` distinct prompts of one split, the same list for the same (n, seed, split) in any process.

    Tasks are drawn uniformly; a larger ``n`` with the same seed extends the smaller list (same prefix). Short
    arguments are few (1,000 three-digit sort prompts in all), so very long lists hold relatively fewer of them.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(f"prefopt-world/{split}/{seed}")  # str seeds hash with sha512: stable across processes
    prompts: list[str] = []
    seen: set[str] = set()
    budget = 100 * n + 1000  # draws allowed before giving up (only a huge n exhausts the prompt space)
    while len(prompts) < n:
        budget -= 1
        if budget < 0:
            raise ValueError(f"could not draw {n} distinct {split} prompts; ask for fewer")
        prompt = draw_prompt(rng, split)
        if prompt not in seen:
            seen.add(prompt)
            prompts.append(prompt)
    return prompts


def noisy_demonstration(prompt: str, rng: random.Random, noise: float, repeat_rate: float) -> str:
    """A demonstration for the warm-up: the answer, said twice with probability ``repeat_rate`` (the model learns
    to ramble on), with each character replaced by a random one of its alphabet with probability ``noise``."""
    answer = solve(prompt)
    target = answer + answer if rng.random() < repeat_rate else answer
    alphabet = LETTERS if answer.isalpha() else DIGITS
    return "".join(rng.choice(alphabet) if rng.random() < noise else char for char in target)
