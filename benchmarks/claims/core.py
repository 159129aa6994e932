"""Protocol v2, fixed in code before any of its runs: sizes, seeds, the grid, margins, arms, checks, controls, verdicts.

A claim runs in four phases (``benchmarks.claims.protocol``):

1. **Control** (``Control``): the world shows it can express the claim's mechanism. A failed control ends the claim
   as *not testable here*, with the control's numbers.
2. **Tuning**: every tuned arm runs at each of its grid points on the *tuning seeds*; its point is the best mean of
   its ``select`` metric. An arm with ``match`` takes another arm's point (equal hyper-parameters) and runs only there.
3. **Power**: for each check, the sd of its paired difference on the tuning seeds gives the number of *evaluation
   seeds* that detects an effect the size of the check's margin with power 0.8 at one-sided α = 0.025/m (m checks,
   Holm's strictest step), at least ``Size.least`` and at most ``Size.most`` (``stats.seeds_for``).
4. **Evaluation**: every arm at its chosen point on fresh evaluation seeds; each check is read from the paired
   difference over those seeds (``check_verdict``), with Holm's correction across the claim's checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
NOT_TESTABLE = "not testable here"
UNFINISHED = "unfinished"  # a claim whose runs were stopped: only its control (if measured) is shown, no verdict
PROTOCOL = 2

# The smallest effect of interest per metric, stated before any v2 run: the non-inferiority margin, the effect a
# superiority check is powered for, and the line below which "not reproduced" says the effect is absent.
MARGINS = {
    "reward": 0.01,       # held-out world reward in [0, 1]: one point
    "reward_goal": 0.01,
    "kl": 0.05,           # sequence KL(π ‖ π_ref), nats
    "chosen_logp": 0.05,  # change of the chosen responses' summed log-prob, nats
    "harm": 0.005,        # share of harmful samples: 5 in 1,000
}


@dataclass(frozen=True)
class GridPoint:
    """One point of the shared grid: Adam's learning rate and the loss's β (the KL anchor of every loss here);
    None leaves the setting to the recipe and the world's overlay (``WORLD_POINT``)."""

    learning_rate: float | None
    beta: float | None

    def label(self) -> str:
        if self.learning_rate is None or self.beta is None:
            return "the world's recipe settings"
        mantissa, exponent = f"{self.learning_rate:.0e}".split("e")
        return f"lr {mantissa}e{int(exponent)}, β {self.beta:g}"


# The one grid every tuned arm searches: the three settings the tiny world is documented to train well with
# (prefopt/world/__init__.py: β 1 / lr 1e-4, β 0.5 / lr 2e-4, β 0.1 / lr 1e-5). Protocol v1's crossings of the first
# two (β 1 / lr 2e-4, β 0.5 / lr 1e-4) are left out: the suite must fit about 90 CPU-minutes on 2 shared cores.
GRID = (GridPoint(1e-4, 1.0), GridPoint(2e-4, 0.5), GridPoint(1e-5, 0.1))
WORLD_POINT = GridPoint(None, None)  # a real-model world's own settings (its overlay), for claims that cannot search


@dataclass(frozen=True)
class Size:
    """How big every claim runs: ``full`` is the benchmark, ``smoke`` only checks that the machinery runs."""

    name: str
    tuning_seeds: tuple[int, ...]
    first_eval_seed: int  # evaluation seeds are first_eval_seed, first_eval_seed + 1, ...: never a tuning seed
    least: int  # evaluation seeds, at least (the floor: 6)
    most: int  # and at most (the CPU budget); the table says when the power calculation asked for more
    grid: tuple[GridPoint, ...]
    eval_prompts: int  # held-out prompts for the reward (the world's eval split)
    eval_samples: int  # samples per held-out prompt
    smoke: bool = False

    def pick(self, full, smoke):
        """A claim's own number (prompts, steps) at this size."""
        return smoke if self.smoke else full

    def eval_seeds(self, n: int) -> tuple[int, ...]:
        return tuple(range(self.first_eval_seed, self.first_eval_seed + n))


SIZES = {
    "full": Size("full", tuning_seeds=(0, 1, 2), first_eval_seed=100, least=6, most=10, grid=GRID,
                 eval_prompts=256, eval_samples=4),
    "smoke": Size("smoke", tuning_seeds=(0, 1), first_eval_seed=100, least=2, most=2, grid=GRID[:1],
                  eval_prompts=8, eval_samples=1, smoke=True),
}


@dataclass(frozen=True)
class Arm:
    """One training setting of a claim.

    ``overrides(size)`` gives its ``prefopt.train`` key=value overrides (recipe, data, steps); the runner adds the
    seed, the grid point (``train.learning_rate`` and each key in ``beta_keys``), the eval size and the folder.
    ``prepare(size, seed, folder)``, when given, writes the arm's data for one seed and returns more overrides
    (``data.train=...``). ``measures`` name post-run measurements (``benchmarks.claims.measures``). ``betas``
    restricts the grid the arm is tuned on to those β (None: all; a grid without them, the smoke one: all);
    ``match`` names the arm whose chosen point this arm takes instead of being tuned (equal hyper-parameters).
    """

    name: str
    label: str
    overrides: Callable[[Size], list[str]]
    measures: tuple[str, ...] = ()
    prepare: Callable | None = None
    beta_keys: tuple[str, ...] = ("loss.beta",)
    select: str = "reward"  # the metric that picks the arm's grid point on the tuning seeds
    maximize: bool = True
    betas: tuple[float, ...] | None = None
    match: str | None = None

    def points(self, grid: tuple[GridPoint, ...]) -> list[int]:
        """The grid points the arm is tuned on."""
        every = list(range(len(grid)))
        kept = [i for i in every if self.betas is None or grid[i].beta in self.betas]
        return kept or every


@dataclass(frozen=True)
class Check:
    """``a`` against ``b``: each ``(arm, metric)``, or ``b`` a constant; read from the paired difference a − b.

    kind ``better``: a is better than b (higher, or lower with ``lower_is_better``); ``no_worse``: a is not worse
    than b by more than the margin (``margin``, else ``MARGINS`` of a's metric).
    """

    text: str
    a: tuple[str, str]
    b: tuple[str, str] | float
    kind: str = "better"
    lower_is_better: bool = False
    margin: float | None = None

    def the_margin(self) -> float:
        return self.margin if self.margin is not None else MARGINS[self.a[1]]


@dataclass(frozen=True)
class Control:
    """What shows the world can express the claim's mechanism: ``measure(ctx)`` returns the control's numbers,
    ``passed(numbers)`` says whether the claim can be tested, ``text`` says what is required.

    ``after_tuning``: the control reads the tuning runs (``ctx.tuning``: arm → chosen point and per-seed metrics,
    ``ctx.folders``: arm → the run folders at that point), so it runs after tuning and before evaluation.
    """

    text: str
    measure: Callable
    passed: Callable[[dict], bool]
    after_tuning: bool = False


@dataclass(frozen=True)
class Claim:
    name: str
    title: str
    statement: str  # the paper's claim, as the issue states it
    setting: str  # world, data budget, steps: what the arms run
    arms: tuple[Arm, ...]
    checks: tuple[Check, ...]
    control: Control
    extra_grid: tuple[GridPoint, ...] = ()  # points this claim's arms search beyond the shared grid (full size)
    grid: tuple[GridPoint, ...] | None = None  # instead of the shared grid (a real model's one point)
    eval_size: tuple[int, int] | None = None  # (held-out prompts, samples each) instead of the size's (full size)
    notes: str = ""  # choices made, and what was tried
    docs: str = ""  # the docs page that quotes this claim's row
    metrics: dict[str, str] = field(default_factory=dict)  # metric name → what it measures, for the table


def grid_of(claim: Claim, size: Size) -> tuple[GridPoint, ...]:
    """The grid a claim's arms are tuned on: its own, else the shared one plus the claim's extra points at full size."""
    if claim.grid is not None:
        return claim.grid
    return size.grid if size.smoke else (*size.grid, *claim.extra_grid)


def check_verdict(kind: str, p_adjusted: float, p_against_adjusted: float, alpha: float) -> str:
    """The verdict of one check from its Holm-adjusted one-sided p-values (``protocol.read_checks``).

    ``p_adjusted`` tests the claim: better: H0 Δ ≤ 0 (the paired Δ's interval lies above 0 when rejected);
    no_worse: H0 Δ ≤ −margin. ``p_against_adjusted`` tests the opposite: better: H0 Δ ≥ margin (rejected: the effect
    is absent, smaller than the margin, or reversed); no_worse: H0 Δ ≥ −margin (rejected: worse beyond the margin).
    Reproduced when the claim's test rejects, not reproduced when the opposite one does, otherwise inconclusive
    (underpowered: the interval holds both 0 and the margin's edge).
    """
    if kind not in ("better", "no_worse"):
        raise ValueError(f"unknown check kind {kind!r}; valid: better, no_worse")
    if p_adjusted < alpha:
        return REPRODUCED
    return NOT_REPRODUCED if p_against_adjusted < alpha else INCONCLUSIVE


def claim_verdict(verdicts: list[str], control_passed: bool = True) -> str:
    """Not testable when the control failed; else reproduced when every check is, not reproduced when one is not,
    otherwise inconclusive."""
    if not control_passed:
        return NOT_TESTABLE
    if all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    return NOT_REPRODUCED if NOT_REPRODUCED in verdicts else INCONCLUSIVE
