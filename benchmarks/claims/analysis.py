"""From finished runs to a claim's result: best grid point per arm, intervals over seeds, checks and the verdict.

The result is a plain dict (saved as JSON, rendered by ``benchmarks.claims.report``)::

    {"name", "title", "statement", "setting", "notes", "size", "seeds", "grid",
     "arms":   {arm: {"label", "best", "select", "metrics": {metric: interval}, "grid_means": [...], "runs": ...}},
     "checks": [{"text", "kind", "a", "b", "delta", "verdict"}],
     "verdict", "run_seconds", "cpu_seconds", "errors"}

``delta`` is the paired difference a − b per seed (same seed: same prompts and evaluation samples' seed), with its
95% interval: the effect size. The verdict reads the two arms' own intervals (``core.check_verdict``).
"""

from __future__ import annotations

import statistics

from benchmarks.claims.core import Claim, Size, best_point, check_verdict, claim_verdict, interval
from benchmarks.claims.runner import Plan


def _arm_runs(claim: Claim, arm: str, size: Size, plan: Plan, records: dict) -> dict[int, dict[int, dict]]:
    """grid index → seed → metrics, for one arm."""
    return {i: {seed: records[plan.slots[(claim.name, arm, i, seed)]]["metrics"] for seed in size.seeds}
            for i in range(len(size.grid))}


def _values(ref, arms: dict, size: Size) -> list[float]:
    """Per-seed values of ``(arm, metric)`` at the arm's best point, or a constant repeated."""
    if isinstance(ref, (int, float)):
        return [float(ref)] * len(size.seeds)
    arm, metric = ref
    return [arms[arm]["per_seed"][seed][metric] for seed in size.seeds]


def _label(ref) -> str:
    return f"{ref:g}" if isinstance(ref, (int, float)) else f"{ref[0]}: {ref[1]}"


def summarise(claim: Claim, size: Size, plan: Plan, records: dict[str, dict]) -> dict:
    """The claim's result dict (module docstring); failed runs make the verdict ``error``."""
    result = {"name": claim.name, "title": claim.title, "statement": claim.statement, "setting": claim.setting,
              "notes": claim.notes, "docs": claim.docs, "metrics_legend": claim.metrics, "size": size.name,
              "seeds": list(size.seeds), "grid": [p.label() for p in size.grid], "arms": {}, "checks": []}
    keys = {plan.slots[(claim.name, a.name, i, s)] for a in claim.arms for i in range(len(size.grid))
            for s in size.seeds}
    errors = [records[k]["log"] for k in sorted(keys) if "error" in records[k]]
    result["run_seconds"] = round(sum(records[k].get("wall_seconds", 0.0) for k in keys), 1)
    if all("cpu_seconds" in records[k] for k in keys):  # one thread per run: about its time on an idle core
        result["cpu_seconds"] = round(sum(records[k]["cpu_seconds"] for k in keys), 1)
    if errors:
        result.update(verdict="error", errors=errors)
        return result
    arms = {}
    for arm in claim.arms:
        runs = _arm_runs(claim, arm.name, size, plan, records)
        best = best_point(runs, arm.select, arm.maximize)
        names = sorted(runs[best][size.seeds[0]])
        arms[arm.name] = {
            "label": arm.label, "best": best, "best_label": size.grid[best].label(), "select": arm.select,
            "per_seed": runs[best],
            "metrics": {m: interval([runs[best][s][m] for s in size.seeds]) for m in names},
            "grid_means": [statistics.fmean(r[arm.select] for r in runs[i].values()) for i in sorted(runs)],
            "runs": {str(i): {str(s): plan.slots[(claim.name, arm.name, i, s)] for s in size.seeds} for i in runs},
        }
    verdicts = []
    for check in claim.checks:
        a, b = _values(check.a, arms, size), _values(check.b, arms, size)
        a_int, b_int = interval(a), interval(b)
        verdict = check_verdict(check.kind, a_int, b_int, check.lower_is_better)
        verdicts.append(verdict)
        result["checks"].append({"text": check.text, "kind": check.kind, "lower_is_better": check.lower_is_better,
                                 "a_label": _label(check.a), "b_label": _label(check.b), "a": a_int, "b": b_int,
                                 "delta": interval([x - y for x, y in zip(a, b, strict=True)]), "verdict": verdict})
    for arm in arms.values():
        arm["per_seed"] = {str(s): v for s, v in arm["per_seed"].items()}
    result.update(arms=arms, verdict=claim_verdict(verdicts), errors=[])
    return result
