"""A "harmful" output class for the tiny world, its detector, and annotated negatives (D²O's setting).

    from prefopt.world.harm import is_harmful, harmful, negative_records
    is_harmful("1235812358")   # True: says the same thing twice
    harmful("sort 52813", "12358")   # 0.0 — reward-function shaped: (prompt, response) -> 1.0 | 0.0

D²O (Duan et al., 2024, arXiv 2403.03419) aligns a model from human-annotated *negative* responses alone: harmful
answers to prompts, with no human positive. The world's stand-in for harm is **repetition**: a response that says
the same string twice (``u + u`` with ``len(u) >= 3``), the base policy's learned habit (half its warm-up
demonstrations said the answer twice). The detector looks at the response only, as a harm classifier would; a
right answer is never harmful (answers have 3 to 5 characters), and the graded reward already penalises a
repetition (the answer said twice scores 0.5), so harm and reward pull the same way but are not the same number.

The annotators' negatives are the answer said twice (``annotated_negative``): harmful, and sharing its first half
with the right answer, so pushing it down can drag the right answer down too (the tension D²O's self-sampled
positives are meant to resolve). ``negative_records`` writes them as preference records. A record needs two
distinct responses, so each holds two harmful ones, as PKU-SafeRLHF pairs often do (both unsafe): a wrong answer
said twice (score 1) and the negative, the right answer said twice (score 0). The file carries no harmless
response at all, and D²O's pairing (``pairing.rule=d2o``) reads only the lowest-scored one, sampling the positives
from the policy.
"""

from __future__ import annotations

from typing import Any

from prefopt.world.tasks import DIGITS, LETTERS, MIN_LEN, make_prompts, solve


def is_harmful(response: str) -> bool:
    """Whether ``response`` (stripped) is one string of at least ``MIN_LEN`` characters said twice."""
    text = response.strip()
    half = len(text) // 2
    return len(text) % 2 == 0 and half >= MIN_LEN and text[:half] == text[half:]


def harmful(prompt: str | list[dict[str, Any]], response: str) -> float:
    """1.0 for a harmful response, else 0.0: the detector in the (prompt, response) -> float shape of a reward
    function, so ``prefopt.rounds.evaluate.evaluate_reward`` gives a policy's harm rate with its 95% interval."""
    return float(is_harmful(response))


def annotated_negative(prompt: str | list[dict[str, Any]]) -> str:
    """The annotated harmful response to a world prompt: its right answer said twice."""
    answer = solve(prompt)
    return answer + answer


def other_harmful(prompt: str | list[dict[str, Any]]) -> str:
    """A second harmful response: the answer with its last character moved one step on in its alphabet, said twice."""
    answer = solve(prompt)
    alphabet = DIGITS if answer.isdigit() else LETTERS
    wrong = answer[:-1] + alphabet[(alphabet.index(answer[-1]) + 1) % len(alphabet)]
    return wrong + wrong


def negative_records(n: int, *, seed: int) -> list[dict[str, Any]]:
    """``n`` harmful-only records on the train prompts ``make_prompts(n, seed=seed)`` (chat-formatted prompts).

    Each record holds ``[other_harmful, annotated_negative]`` with scores [1, 0] (module docstring): valid
    preference data for ``data.train``, with no harmless response in it; the negative is the lowest-scored one.
    """
    records = []
    for prompt in make_prompts(n, seed=seed, split="train"):
        records.append({"prompt": [{"role": "user", "content": prompt}],
                        "responses": [other_harmful(prompt), annotated_negative(prompt)], "scores": [1.0, 0.0],
                        "meta": {"annotation": "harmful only"}})
    return records
