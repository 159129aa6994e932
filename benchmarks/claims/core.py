"""The pre-registered experiment: sizes, the shared grid, arms, checks, and the verdict rule.

Everything here is fixed before any claim's result is seen; the claim modules only fill it in. A claim has arms
(each a set of ``prefopt.train`` overrides), every arm runs at every grid point for every seed, and each arm is
reported at its best grid point (its ``select`` metric, mean over seeds). Checks then compare two arms' metrics (or
one arm's metric with a constant) with 95% intervals over seeds, and the verdict follows ``check_verdict``.

The interval of a metric over n seeds is ``mean ± t(0.975, n − 1) · s / √n`` (Student's t, s the sample standard
deviation), the usual small-sample interval; with n = 3 the half-width is 2.48 s.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# Student's t two-sided 95% quantiles by degrees of freedom (n − 1), enough for up to 21 seeds.
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086}

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"


def interval(values: Sequence[float]) -> dict[str, float]:
    """``{"mean", "low", "high", "n"}``: the 95% t-interval of ``values`` over seeds (zero width for one value)."""
    n = len(values)
    if n == 0:
        raise ValueError("interval needs at least one value")
    mean = statistics.fmean(values)
    half = T975[n - 1] * statistics.stdev(values) / math.sqrt(n) if n > 1 else 0.0
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


@dataclass(frozen=True)
class GridPoint:
    """One point of the shared grid: Adam's learning rate and the loss's β (the KL anchor of every loss here)."""

    learning_rate: float
    beta: float

    def label(self) -> str:
        mantissa, exponent = f"{self.learning_rate:.0e}".split("e")
        return f"lr {mantissa}e{int(exponent)}, β {self.beta:g}"


# The one grid every arm of every claim gets: the two settings the tiny world is documented to train well with
# (β 1 / lr 1e-4 and β 0.5 / lr 2e-4, prefopt/world/__init__.py) and their two crossings.
GRID = tuple(GridPoint(lr, beta) for beta in (1.0, 0.5) for lr in (1e-4, 2e-4))


@dataclass(frozen=True)
class Size:
    """How big every claim runs: ``full`` is the benchmark, ``smoke`` only checks that the machinery runs."""

    name: str
    seeds: tuple[int, ...]
    grid: tuple[GridPoint, ...]
    eval_prompts: int  # held-out prompts for the reward (the world's eval split)
    eval_samples: int  # samples per held-out prompt
    smoke: bool = False

    def pick(self, full, smoke):
        """A claim's own number (prompts, steps) at this size."""
        return smoke if self.smoke else full


SIZES = {
    "full": Size("full", seeds=(0, 1, 2), grid=GRID, eval_prompts=256, eval_samples=4),
    "smoke": Size("smoke", seeds=(0, 1), grid=GRID[:1], eval_prompts=8, eval_samples=1, smoke=True),
}


@dataclass(frozen=True)
class Arm:
    """One training setting of a claim.

    ``overrides(size)`` gives its ``prefopt.train`` key=value overrides (recipe, data, steps); the runner adds the
    seed, the grid point (``train.learning_rate`` and each key in ``beta_keys``), the eval size and the folder.
    ``prepare(size, seed, folder)``, when given, writes the arm's data for one seed and returns more overrides
    (``data.train=...``). ``measures`` name post-run measurements (``benchmarks.claims.measures``).
    """

    name: str
    label: str
    overrides: Callable[[Size], list[str]]
    measures: tuple[str, ...] = ()
    prepare: Callable | None = None
    beta_keys: tuple[str, ...] = ("loss.beta",)
    select: str = "reward"  # the metric that picks the arm's best grid point
    maximize: bool = True


@dataclass(frozen=True)
class Check:
    """``a`` against ``b``: each ``(arm, metric)``, or ``b`` a constant.

    kind ``better``: a is better than b (higher, or lower with ``lower_is_better``); ``no_worse``: a is not worse.
    """

    text: str
    a: tuple[str, str]
    b: tuple[str, str] | float
    kind: str = "better"
    lower_is_better: bool = False


@dataclass(frozen=True)
class Claim:
    name: str
    title: str
    statement: str  # the paper's claim, as the issue states it
    setting: str  # world, data budget, steps: what the arms run
    arms: tuple[Arm, ...]
    checks: tuple[Check, ...]
    notes: str = ""  # choices made, and what was tried
    observed: str = ""  # written after the result was seen, to explain it; never a change of the setting
    docs: str = ""  # the docs page that quotes this claim's row
    metrics: dict[str, str] = field(default_factory=dict)  # metric name → what it measures, for the table


def check_verdict(kind: str, a: dict, b: dict, lower_is_better: bool = False) -> str:
    """The verdict of one check from the two 95% intervals (``interval``'s dicts).

    better:   reproduced when a's interval lies wholly on the better side of b's; not reproduced when a's mean is
              not better than b's (the effect is absent or reversed); otherwise inconclusive (the intervals
              overlap).
    no_worse: reproduced when a's mean is at least as good as b's; not reproduced when a's interval lies wholly on
              the worse side of b's; otherwise inconclusive.
    """
    sign = -1.0 if lower_is_better else 1.0
    lo_a, hi_a = sorted((sign * a["low"], sign * a["high"]))
    lo_b, hi_b = sorted((sign * b["low"], sign * b["high"]))
    gain = sign * (a["mean"] - b["mean"])
    if kind == "better":
        if lo_a > hi_b:
            return REPRODUCED
        return NOT_REPRODUCED if gain <= 0 else INCONCLUSIVE
    if kind == "no_worse":
        if hi_a < lo_b:
            return NOT_REPRODUCED
        return REPRODUCED if gain >= 0 else INCONCLUSIVE
    raise ValueError(f"unknown check kind {kind!r}; valid: better, no_worse")


def claim_verdict(verdicts: Sequence[str]) -> str:
    """A claim holds when every check does; one failed check fails it; otherwise it is inconclusive."""
    if all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    return NOT_REPRODUCED if NOT_REPRODUCED in verdicts else INCONCLUSIVE


def best_point(per_point: dict[int, dict[int, dict[str, float]]], metric: str, maximize: bool) -> int:
    """Index of the grid point whose mean of ``metric`` over seeds is best (the first of equals)."""
    means = {i: statistics.fmean(run[metric] for run in seeds.values()) for i, seeds in per_point.items()}
    return (max if maximize else min)(means, key=lambda i: (means[i], -i) if maximize else (means[i], i))
