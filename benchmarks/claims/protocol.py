"""One claim under protocol v2, phase by phase: control, tuning, power, evaluation (``core`` says what each means).

    result = run_claim(load("dpo"), SIZES["full"], Path("runs/claims/full"), pool=workers(2))

Every training run is cached (``runner.execute``), and so are the controls' numbers, so running the same command
again after an interruption redoes nothing that finished. The result is a plain dict, saved as JSON and rendered by
``benchmarks.claims.report``; ``summary.py`` builds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from benchmarks.claims.core import Arm, Claim, Size, grid_of
from benchmarks.claims.runner import Task, quiet, run_all, run_overrides, task_key
from benchmarks.claims.summary import Phase, result_of


@dataclass
class Context:
    """What a control sees: the size, the tuning seeds, the root, and after tuning the arms' chosen points."""

    size: Size
    seeds: tuple[int, ...]
    root: Path  # the suite's run folder root (data/<claim>/ holds the claim's prepared data)
    tuning: dict[str, dict] = field(default_factory=dict)  # arm → {"point": i, "per_seed": {seed: metrics}}
    folders: dict[str, dict[int, Path]] = field(default_factory=dict)  # arm → seed → run folder at its point


class ClaimRun:
    """The runs of one claim; ``run()`` returns its result dict."""

    def __init__(self, claim: Claim, size: Size, root: Path, *, pool=None, fresh: bool = False,
                 eval_seeds: tuple[int, ...] | None = None, tuning_seeds: tuple[int, ...] | None = None,
                 log: Callable[[str], None] = print):
        if claim.eval_size and not size.smoke:
            size = replace(size, eval_prompts=claim.eval_size[0], eval_samples=claim.eval_size[1])
        self.claim, self.size, self.root, self.pool, self.fresh, self.log = claim, size, root, pool, fresh, log
        self.tuning_seeds = tuning_seeds or size.tuning_seeds
        self.given_eval_seeds = eval_seeds
        self.grid = grid_of(claim, size)
        self.records: dict[str, dict] = {}
        self.keys: set[str] = set()
        self.control_cpu = 0.0

    # -- runs ---------------------------------------------------------------------------------------------------

    def tasks(self, arm: Arm, point: int, seeds: Iterable[int]) -> dict[int, Task]:
        """seed → the task of ``arm`` at grid point ``point`` (preparing the arm's data for each seed first)."""
        out = {}
        for seed in seeds:
            extra: list[str] = []
            if arm.prepare is not None:
                folder = self.root / "data" / self.claim.name / f"s{seed}"
                with quiet(self.root / "logs" / f"prepare-{self.claim.name}-{arm.name}-s{seed}.log"):
                    extra = arm.prepare(self.size, seed, folder)
            overrides = tuple(run_overrides(arm, self.size, self.grid[point], seed, extra))
            out[seed] = Task(task_key(overrides), overrides, tuple(sorted(arm.measures)))
        return out

    def execute(self, wanted: dict[tuple[str, int, int], Task]) -> dict[tuple[str, int, int], dict]:
        """Run the (arm, point, seed) → task map (shared tasks once, measures merged); their records."""
        unique: dict[str, Task] = {}
        for task in wanted.values():
            known = unique.get(task.key)
            measures = tuple(sorted({*(known.measures if known else ()), *task.measures}))
            unique[task.key] = Task(task.key, task.overrides, measures)
        todo = [t for k, t in unique.items() if k not in self.records or set(t.measures) - set(
            self.records[k].get("measured", []))]
        for task, record in run_all(todo, self.root, pool=self.pool, fresh=self.fresh, log=self.log):
            self.records[task.key] = record
        self.keys |= set(unique)
        return {slot: self.records[task.key] for slot, task in wanted.items()}

    # -- phases -------------------------------------------------------------------------------------------------

    def control(self, ctx: Context) -> dict:
        """The control's numbers, cached by claim, size and seeds (a warm-up is not redone on a rerun)."""
        tag = hashlib.sha256(json.dumps([self.size.name, list(ctx.seeds), sorted(
            (a, v["point"]) for a, v in ctx.tuning.items())]).encode()).hexdigest()[:12]
        path = self.root / "controls" / f"{self.claim.name}-{tag}.json"
        if path.exists() and not self.fresh:
            return json.loads(path.read_text())
        self.log(f"[claims] {self.claim.name}: positive control")
        start = time.process_time()
        with quiet(self.root / "logs" / f"control-{self.claim.name}.log"):
            numbers = self.claim.control.measure(ctx)
        numbers = {**numbers, "cpu_seconds": round(time.process_time() - start, 1)}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(numbers, indent=1))
        os.replace(tmp, path)
        return numbers

    def tune(self) -> Phase | None:
        """Tuned arms at each of their points on the tuning seeds, then matched arms at their arm's point."""
        seeds = self.tuning_seeds
        tuned = [a for a in self.claim.arms if a.match is None]
        wanted = {(a.name, i, s): t for a in tuned for i in a.points(self.grid)
                  for s, t in self.tasks(a, i, seeds).items()}
        phase = Phase(seeds, self.execute(wanted))
        if phase.errors():
            return phase
        for arm in tuned:
            phase.choose(arm)
        matched = [a for a in self.claim.arms if a.match is not None]
        wanted = {(a.name, phase.point[a.match], s): t for a in matched
                  for s, t in self.tasks(a, phase.point[a.match], seeds).items()}
        phase.add(self.execute(wanted))
        for arm in matched:
            phase.point[arm.name] = phase.point[arm.match]
        return phase

    def evaluate(self, tuning: Phase, seeds: tuple[int, ...]) -> Phase:
        wanted = {(a.name, tuning.point[a.name], s): t for a in self.claim.arms
                  for s, t in self.tasks(a, tuning.point[a.name], seeds).items()}
        phase = Phase(seeds, self.execute(wanted))
        phase.point = dict(tuning.point)
        return phase

    def context(self, tuning: Phase | None) -> Context:
        ctx = Context(self.size, self.tuning_seeds, self.root)
        if tuning is not None:
            for arm in self.claim.arms:
                i = tuning.point[arm.name]
                ctx.tuning[arm.name] = {"point": i, "per_seed": {s: tuning.metrics(arm.name, i, s)
                                                                  for s in self.tuning_seeds}}
                ctx.folders[arm.name] = {s: self.root / "runs" / self.tasks(arm, i, [s])[s].key
                                         for s in self.tuning_seeds}
        return ctx

    def run(self) -> dict:
        claim, before = self.claim, self.claim.control.after_tuning
        control = None if before else self.control(self.context(None))
        if control is not None and not claim.control.passed(control):
            self.log(f"[claims] {claim.name}: the control failed; not testable here")
            return self.result(control, None, None)
        self.log(f"[claims] {claim.name}: tuning on seeds {list(self.tuning_seeds)}")
        tuning = self.tune()
        if tuning.errors():
            return self.result(control, tuning, None)
        if before:
            control = self.control(self.context(tuning))
            if not claim.control.passed(control):
                self.log(f"[claims] {claim.name}: the control failed; not testable here")
                return self.result(control, tuning, None)
        seeds = self.given_eval_seeds or self.size.eval_seeds(tuning.seeds_needed(claim, self.size))
        if set(seeds) & set(self.tuning_seeds):
            raise ValueError(f"evaluation seeds {sorted(set(seeds) & set(self.tuning_seeds))} are tuning seeds")
        self.log(f"[claims] {claim.name}: evaluating on seeds {list(seeds)}")
        return self.result(control, tuning, self.evaluate(tuning, tuple(seeds)))

    def result(self, control: dict | None, tuning: Phase | None, evaluation: Phase | None) -> dict:
        records = [self.records[k] for k in sorted(self.keys)]
        return result_of(self.claim, self.size, control, tuning, evaluation, records,
                         tuning_seeds=self.tuning_seeds, control_cpu=(control or {}).get("cpu_seconds", 0.0))


def run_claim(claim: Claim, size: Size, root: Path, **options) -> dict:
    return ClaimRun(claim, size, root, **options).run()
