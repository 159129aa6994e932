"""From finished runs to a claim's result under protocol v2: chosen points, the power calculation, paired checks.

The result is a plain dict (saved as JSON, rendered by ``benchmarks.claims.report``)::

    {"protocol": 2, "name", "title", "statement", "setting", "notes", "size", "tuning_seeds", "eval_seeds", "grid",
     "control": {"text", "numbers", "passed"},
     "arms":   {arm: {"label", "point", "point_label", "match", "select", "tuning_means", "tuning", "eval"}},
     "power":  [{"text", "sd", "n", "margin"}], "n_needed", "capped",
     "checks": [{"text", "kind", "margin", "a", "b", "delta", "p", "p_holm", "p_against", "p_against_holm",
                 "mde", "verdict"}],
     "verdict", "command", "run_seconds", "cpu_seconds", "errors"}

Every check reads the paired difference over the evaluation seeds (same seed: same training prompts, samples and
evaluation samples); ``delta`` is a − b, the tests read the gain (a − b, or b − a when lower is better).
"""

from __future__ import annotations

import statistics

from benchmarks.claims import stats
from benchmarks.claims.core import (
    INCONCLUSIVE,
    NOT_TESTABLE,
    PROTOCOL,
    Arm,
    Check,
    Claim,
    Size,
    check_verdict,
    claim_verdict,
    grid_of,
)


class Phase:
    """The records of one phase (tuning or evaluation): (arm, grid point, seed) → record, and each arm's point."""

    def __init__(self, seeds, slots: dict[tuple[str, int, int], dict]):
        self.seeds = tuple(seeds)
        self.slots = dict(slots)
        self.point: dict[str, int] = {}

    def add(self, slots: dict) -> None:
        self.slots.update(slots)

    def errors(self) -> list[str]:
        return sorted({r["log"] for r in self.slots.values() if "error" in r})

    def metrics(self, arm: str, point: int, seed: int) -> dict[str, float]:
        return self.slots[(arm, point, seed)]["metrics"]

    def means(self, arm: str, metric: str) -> dict[int, float]:
        """grid point → mean of ``metric`` over this phase's seeds, for every point the arm ran at."""
        points = sorted({i for (a, i, _) in self.slots if a == arm})
        return {i: statistics.fmean(self.metrics(arm, i, s)[metric] for s in self.seeds) for i in points}

    def choose(self, arm: Arm) -> int:
        """The arm's point: the best mean of its ``select`` metric (the first of equals)."""
        means = self.means(arm.name, arm.select)
        sign = 1.0 if arm.maximize else -1.0
        self.point[arm.name] = max(means, key=lambda i: (sign * means[i], -i))
        return self.point[arm.name]

    def values(self, ref) -> list[float]:
        """Per-seed values of ``(arm, metric)`` at the arm's point, or a constant repeated."""
        if isinstance(ref, (int, float)):
            return [float(ref)] * len(self.seeds)
        arm, metric = ref
        return [self.metrics(arm, self.point[arm], s)[metric] for s in self.seeds]

    def gains(self, check: Check) -> list[float]:
        sign = -1.0 if check.lower_is_better else 1.0
        return [sign * (a - b) for a, b in zip(self.values(check.a), self.values(check.b), strict=True)]

    def power(self, claim: Claim, size: Size) -> list[dict]:
        """Per check: the sd of its paired gain here, and the seeds that detect its margin (``stats.seeds_for``)."""
        out = []
        for check in claim.checks:
            gains = self.gains(check)
            sd = statistics.stdev(gains) if len(gains) > 1 else 0.0
            n = stats.seeds_for(sd, check.the_margin(), len(claim.checks), least=size.least, most=size.most)
            out.append({"text": check.text, "sd": sd, "n": n, "margin": check.the_margin(),
                        "capped": n == size.most and stats.mde(sd, n, len(claim.checks)) > check.the_margin()})
        return out

    def seeds_needed(self, claim: Claim, size: Size) -> int:
        return max(p["n"] for p in self.power(claim, size))


def read_checks(checks: tuple[Check, ...], phase: Phase) -> list[dict]:
    """Each check's paired Δ, its one-sided p-values (claim and opposite), Holm-adjusted across the checks, the
    minimum detectable effect of these seeds and the verdict (``core.check_verdict``)."""
    rows = []
    for check in checks:
        a, b = phase.values(check.a), phase.values(check.b)
        gain, margin = stats.paired(phase.gains(check), [0.0] * len(a)), check.the_margin()
        edge = 0.0 if check.kind == "better" else -margin  # H0 of the claim: gain ≤ edge
        against = margin if check.kind == "better" else -margin  # H0 of the opposite: gain ≥ against
        rows.append({"text": check.text, "kind": check.kind, "lower_is_better": check.lower_is_better,
                     "margin": margin, "a_label": _label(check.a), "b_label": _label(check.b),
                     "a": stats.interval(a), "b": stats.interval(b),
                     "delta": {k: v for k, v in stats.paired(a, b).items() if k != "values"},
                     "p": stats.p_greater(gain, edge), "p_against": stats.p_less(gain, against),
                     "mde": stats.mde(gain["sd"], gain["n"], len(checks))})
    for key in ("p", "p_against"):
        for row, adjusted in zip(rows, stats.holm([r[key] for r in rows]), strict=True):
            row[f"{key}_holm"] = adjusted
    for row in rows:
        row["verdict"] = check_verdict(row["kind"], row["p_holm"], row["p_against_holm"], stats.ALPHA)
    return rows


def _label(ref) -> str:
    return f"{ref:g}" if isinstance(ref, (int, float)) else f"{ref[0]}: {ref[1]}"


def _arm(arm: Arm, grid, tuning: Phase, evaluation: Phase | None) -> dict:
    i = tuning.point[arm.name]
    names = sorted(tuning.metrics(arm.name, i, tuning.seeds[0]))
    row = {"label": arm.label, "point": i, "point_label": grid[i].label(), "match": arm.match,
           "select": arm.select, "maximize": arm.maximize,
           "tuning_means": ({grid[j].label(): m for j, m in tuning.means(arm.name, arm.select).items()}
                            if arm.match is None else {}),
           "tuning": {m: stats.interval([tuning.metrics(arm.name, i, s)[m] for s in tuning.seeds]) for m in names}}
    if evaluation is not None:
        row["eval"] = {m: stats.interval([evaluation.metrics(arm.name, i, s)[m] for s in evaluation.seeds])
                       for m in names}
    return row


def command(name: str, size: Size, eval_seeds, tuning_seeds) -> str:
    """The one command that reruns this row (cached runs are reused)."""
    cmd = f"python -m benchmarks.claims {name}"
    if eval_seeds:
        cmd += " --seeds " + " ".join(str(s) for s in eval_seeds)
    if tuple(tuning_seeds) != size.tuning_seeds:
        cmd += " --tuning-seeds " + " ".join(str(s) for s in tuning_seeds)
    return cmd + ("" if size.name == "full" else f" --size {size.name}")


def result_of(claim: Claim, size: Size, control: dict | None, tuning: Phase | None, evaluation: Phase | None,
              records: list[dict], *, tuning_seeds, control_cpu: float = 0.0) -> dict:
    """The claim's result dict (module docstring); failed runs make the verdict ``error``."""
    eval_seeds = list(evaluation.seeds) if evaluation else []
    passed = None if control is None else bool(claim.control.passed(control))
    result = {"protocol": PROTOCOL, "name": claim.name, "title": claim.title, "statement": claim.statement,
              "setting": claim.setting, "notes": claim.notes, "docs": claim.docs, "metrics_legend": claim.metrics,
              "size": size.name, "tuning_seeds": list(tuning_seeds), "eval_seeds": eval_seeds,
              "grid": [p.label() for p in grid_of(claim, size)],
              "control": {"text": claim.control.text, "numbers": control, "passed": passed},
              "command": command(claim.name, size, eval_seeds, tuning_seeds), "arms": {}, "checks": [], "errors": [],
              "run_seconds": round(sum(r.get("wall_seconds", 0.0) for r in records), 1),
              "cpu_seconds": round(sum(r.get("cpu_seconds", 0.0) for r in records) + control_cpu, 1)}
    for phase in (tuning, evaluation):
        if phase is not None and phase.errors():
            return result | {"verdict": "error", "errors": phase.errors()}
    if tuning is not None:
        result["arms"] = {a.name: _arm(a, grid_of(claim, size), tuning, evaluation) for a in claim.arms}
        result["power"] = tuning.power(claim, size)
        result["n_needed"] = max(p["n"] for p in result["power"])
        result["capped"] = any(p["capped"] for p in result["power"])
    if passed is False:
        return result | {"verdict": NOT_TESTABLE}
    if evaluation is None:
        return result | {"verdict": INCONCLUSIVE}
    result["checks"] = read_checks(claim.checks, evaluation)
    return result | {"verdict": claim_verdict([c["verdict"] for c in result["checks"]])}
