"""The statistics of protocol v2: Student's t, the paired test, Holm's step-down, and the power calculation.

Closed forms only (no SciPy in the project's dependencies): Student's t CDF through the regularised incomplete beta
function, ``I_x(a, b)`` by its continued fraction (Numerical Recipes, 3rd ed., §6.4, eq. 6.4.5 and the modified
Lentz method of §5.2), and its quantile by bisection on the CDF. tests/test_claims.py checks them against printed
t-tables and hand-computed examples.

    paired(a, b)                 the paired difference a − b over seeds: mean, sd, 95% t-interval, one-sided p-values
    holm([p1, p2, ...])          Holm-adjusted p-values (Holm, 1979, Scand. J. Statist. 6: 65-70)
    seeds_for(sd, margin, m)     evaluation seeds a check needs (power 0.8 at Δ = margin, one-sided α/m)
    mde(sd, n, m)                the minimum detectable effect of n seeds
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

ALPHA = 0.025  # one-sided, per claim (family): a 95% two-sided interval's tail
POWER = 0.8


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (Numerical Recipes §6.4, modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), 0 ≤ x ≤ 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) for Student's t with ``df`` degrees of freedom: 1 − ½ I_{df/(df+t²)}(df/2, ½) for t ≥ 0."""
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_ppf(q: float, df: float) -> float:
    """The quantile of Student's t: the t with ``t_cdf(t, df) = q`` (bisection to 1e-12)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile level must lie in (0, 1), got {q}")
    if q < 0.5:
        return -t_ppf(1.0 - q, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < q:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if t_cdf(mid, df) < q else (lo, mid)
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2.0


def paired(a: Sequence[float], b: Sequence[float]) -> dict:
    """The paired difference d = a − b over seeds (n ≥ 2): ``mean``, ``sd``, ``n``, the 95% t-interval
    ``low``/``high`` (mean ± t(0.975, n − 1)·sd/√n) and the per-seed ``values``."""
    d = [x - y for x, y in zip(a, b, strict=True)]
    n = len(d)
    if n < 2:
        raise ValueError(f"a paired comparison needs at least 2 seeds, got {n}")
    mean, sd = statistics.fmean(d), statistics.stdev(d)
    half = t_ppf(0.975, n - 1) * sd / math.sqrt(n)
    return {"mean": mean, "sd": sd, "n": n, "low": mean - half, "high": mean + half, "values": d}


def p_greater(diff: dict, threshold: float) -> float:
    """One-sided p-value of H0: E[d] ≤ threshold against E[d] > threshold (paired t-test, df = n − 1)."""
    return _p(diff, diff["mean"] - threshold)


def p_less(diff: dict, threshold: float) -> float:
    """One-sided p-value of H0: E[d] ≥ threshold against E[d] < threshold."""
    return _p(diff, threshold - diff["mean"])


def _p(diff: dict, excess: float) -> float:
    se = diff["sd"] / math.sqrt(diff["n"])
    if se == 0.0:  # identical differences on every seed: the test is decided by the sign alone
        return 0.0 if excess > 0 else 1.0
    return 1.0 - t_cdf(excess / se, diff["n"] - 1)


def holm(p: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values: sorted ascending, p_(i) · (m − i + 1), made monotone, capped at 1.

    Rejecting where the adjusted p is below α is Holm's step-down procedure at family-wise level α.
    """
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def mde(sd: float, n: int, m: int = 1, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest true Δ that n paired seeds detect with ``power`` in a one-sided t-test at α/m (Bonferroni:
    Holm's strictest step): (t(1 − α/m, n−1) + t(power, n−1)) · sd/√n."""
    return (t_ppf(1.0 - alpha / m, n - 1) + t_ppf(power, n - 1)) * sd / math.sqrt(n)


def seeds_for(sd: float, margin: float, m: int = 1, *, least: int = 6, most: int = 12) -> int:
    """The fewest seeds, between ``least`` and ``most``, whose ``mde`` is at most ``margin`` (``most`` when none)."""
    for n in range(least, most + 1):
        if mde(sd, n, m) <= margin:
            return n
    return most


def interval(values: Sequence[float]) -> dict[str, float]:
    """``{"mean", "low", "high", "n"}``: the 95% t-interval of ``values`` over seeds (zero width for one value)."""
    n = len(values)
    if n == 0:
        raise ValueError("interval needs at least one value")
    mean = statistics.fmean(values)
    half = t_ppf(0.975, n - 1) * statistics.stdev(values) / math.sqrt(n) if n > 1 else 0.0
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}
