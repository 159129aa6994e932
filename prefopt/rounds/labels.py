"""Label transforms: what a scorer's output becomes before it is written into the records' ``scores``.

    scorer: {type: reward_model, path: my/rm, transform: mean_win_probability}

A transform is ``fn(scorer, prompts, lists) -> labels`` (``labels[i][k]`` for ``lists[i][k]``), registered in
``TRANSFORMS``; ``make_scorer`` wraps the scorer it builds in a ``TransformedScorer`` when a recipe names one.

mean_win_probability (LiPO-λ's labels). Paper: Liu et al. (2024), "LiPO: Listwise Preference Optimization through
Learning-to-Rank", arXiv 2402.01878, §5: a pairwise reward-ranking model gives Ψ_ki = P(y_k ≻ y_i | x) for every
ordered pair of the list, and the label of response k is its mean win probability

    ψ_k = (1/K) · Σ_{i=1..K} Ψ_ki,   with Ψ_kk = ½ counted,   so ψ_k ∈ [1/(2K), 1 − 1/(2K)] and Σ_k ψ_k = K/2.

Why it matters: LiPO-λ's gain is G = 2^ψ − 1, so the labels' scale sets the λ-weights. Raw reward-model logits
(any real value) give gains that explode or go negative with the reward's offset and scale; ψ ∈ [0, 1] is what the
paper trained on. Where Ψ comes from:

* a pairwise judge (a scorer with ``matrices``, e.g. ``pairwise_judge``/``llm_judge``): its debiased matrix, every
  pair judged in both presentation orders (K·(K−1) judge calls per list), diagonal ½;
* a pointwise reward (a reward model, a reward function): the Bradley–Terry win probability Ψ_ki = σ(r_k − r_i),
  which is what a reward model trained with the Bradley–Terry loss predicts; σ(0) = ½ on the diagonal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from prefopt.rounds.scoring import Scorer, ScoringError


def bradley_terry_matrix(rewards: Sequence[float]) -> list[list[float]]:
    """Ψ[k][i] = σ(r_k − r_i) for one list of pointwise rewards; the diagonal is σ(0) = ½."""
    return [[1.0 / (1.0 + math.exp(r_i - r_k)) for r_i in rewards] for r_k in rewards]


def mean_win_probability(matrix: Sequence[Sequence[float]]) -> list[float]:
    """ψ_k = (1/K)·Σ_i Ψ[k][i] over the whole K×K matrix, the diagonal Ψ[k][k] = ½ included (LiPO §5)."""
    k = len(matrix)
    if any(not math.isfinite(p) for row in matrix for p in row):
        raise ScoringError("mean_win_probability needs every pair of the list judged; the matrix has unjudged "
                           "entries (a judge with a baseline compares each response with the baseline only)")
    return [sum(row) / k for row in matrix]


def win_probability_labels(scorer: Scorer, prompts: list, lists: list[list]) -> list[list[float]]:
    """LiPO's labels ψ from a pairwise judge's matrices, or from Bradley–Terry on a pointwise scorer's rewards."""
    matrices = getattr(scorer, "matrices", None)
    if callable(matrices):
        return [mean_win_probability(m) for m in matrices(prompts, lists)]
    return [mean_win_probability(bradley_terry_matrix(r)) for r in scorer(prompts, lists)]


class TransformedScorer:
    """A scorer whose output is ``transform(scorer, prompts, lists)``; other attributes are the inner scorer's
    (``matrices``, ``baseline``), so pairing rules that read them still find them."""

    def __init__(self, scorer: Scorer, transform: Callable[[Scorer, list, list[list]], list[list[float]]]):
        self.scorer, self.transform = scorer, transform

    def __call__(self, prompts: list, lists: list[list]) -> list[list[float]]:
        return self.transform(self.scorer, prompts, lists)

    def __getattr__(self, name: str):
        return getattr(self.scorer, name)


# name → transform; None keeps the scorer's own scores
TRANSFORMS: dict[str, Callable[[Scorer, list, list[list]], list[list[float]]] | None] = {
    "none": None,
    "mean_win_probability": win_probability_labels,
}


def with_transform(scorer: Scorer, name: str) -> Scorer:
    """``scorer`` with the transform ``name`` applied to its output (``"none"``: the scorer itself)."""
    if name not in TRANSFORMS:
        raise ValueError(f"unknown scorer transform {name!r}; valid: {', '.join(sorted(TRANSFORMS))}")
    transform = TRANSFORMS[name]
    return scorer if transform is None else TransformedScorer(scorer, transform)
