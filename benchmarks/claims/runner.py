"""Running the claims' training runs: one ``prefopt`` run per (arm, grid point, seed), cached, in worker processes.

``benchmarks.claims.protocol`` decides which runs a claim needs, phase by phase; this module runs them.

Each run goes through the project's own API, ``prefopt.config.load_config([...key=value...])`` and
``prefopt.run.run(cfg)``, with ``threads=1``, in ``<root>/runs/<key>/`` where ``key`` hashes the overrides. A
finished run leaves ``claims.json`` (its overrides, metrics, wall and CPU time) and is never redone, so identical runs
of two claims are shared (the plain DPO arm of several claims) and an interrupted suite picks up where it stopped.
Runs are deterministic by seed: the seed fixes the prompts, the samples, the data order and the evaluation
samples, and one thread fixes the float reductions.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from benchmarks.claims.core import Arm, GridPoint, Size


@dataclass(frozen=True)
class Task:
    """One training run and the measures to take on it."""

    key: str
    overrides: tuple[str, ...]
    measures: tuple[str, ...]


@contextlib.contextmanager
def quiet(log: Path) -> Iterator[None]:
    """Send everything written to this process's stdout and stderr (tqdm, transformers' logging) to ``log``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_overrides(arm: Arm, size: Size, point: GridPoint, seed: int, extra: Iterable[str] = ()) -> list[str]:
    """The full override list of one run (the order matters: a later key wins)."""
    grid = [] if point.learning_rate is None else [f"train.learning_rate={point.learning_rate}"]
    grid += [] if point.beta is None else [f"{key}={point.beta}" for key in arm.beta_keys]
    common = ["threads=1", f"train.seed={seed}", f"eval.n_prompts={size.eval_prompts}",
              f"eval.samples_per_prompt={size.eval_samples}", "train.logging_steps=25"]
    return [*arm.overrides(size), *extra, *grid, *common]


def task_key(overrides: Iterable[str]) -> str:
    return hashlib.sha256(json.dumps(list(overrides)).encode()).hexdigest()[:16]


def execute(task: Task, root: Path, fresh: bool = False) -> dict:
    """Run (unless cached) and measure one task; returns ``{"metrics", "wall_seconds"}`` or ``{"error"}``."""
    from benchmarks.claims.measures import MEASURES, summary_metrics

    folder = root / "runs" / task.key
    record_path = folder / "claims.json"
    record = json.loads(record_path.read_text()) if record_path.exists() and not fresh else None
    if record is not None and record["overrides"] != list(task.overrides):
        record = None  # a hash collision or a hand-edited folder: run afresh
    try:
        with quiet(root / "logs" / f"{task.key}.log"):
            from prefopt.config import load_config

            cfg = load_config([*task.overrides, f"output_dir={folder}", "overwrite=true"])
            if record is None:
                from prefopt.run import run

                start, cpu = time.perf_counter(), time.process_time()
                summary = run(cfg)
                record = {"overrides": list(task.overrides), "metrics": summary_metrics(summary),
                          "wall_seconds": round(time.perf_counter() - start, 2),
                          "cpu_seconds": round(time.process_time() - cpu, 2)}
            for name in task.measures:
                if name not in record.get("measured", []):
                    start, cpu = time.perf_counter(), time.process_time()
                    record["metrics"].update(MEASURES[name](folder, cfg))
                    record["wall_seconds"] = round(record["wall_seconds"] + time.perf_counter() - start, 2)
                    record["cpu_seconds"] = round(record.get("cpu_seconds", 0.0) + time.process_time() - cpu, 2)
                    record["measured"] = sorted({*record.get("measured", []), name})
    except Exception:  # reported in the table as a failed run, with the log to read
        return {"error": traceback.format_exc(limit=3), "log": str(root / "logs" / f"{task.key}.log")}
    tmp = record_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, record_path)
    return record


def workers(jobs: int) -> ProcessPoolExecutor | None:
    """A pool of ``jobs`` worker processes for ``run_all`` (None for 1: inline); one pool serves a whole suite, so
    torch is imported once per worker rather than once per phase."""
    return ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) if jobs > 1 else None


def run_all(tasks: Iterable[Task], root: Path, *, pool: ProcessPoolExecutor | None = None, fresh: bool = False,
            log: Callable[[str], None] = print) -> Iterator[tuple[Task, dict]]:
    """Execute tasks (in ``pool``, or inline without one), yielding (task, record) as each finishes."""
    tasks = list(tasks)
    if pool is None:
        for i, task in enumerate(tasks, 1):
            record = execute(task, root, fresh)
            _progress(log, i, len(tasks), task, record)
            yield task, record
        return
    futures = {pool.submit(execute, task, root, fresh): task for task in tasks}
    for i, future in enumerate(as_completed(futures), 1):
        task = futures[future]
        record = future.result()
        _progress(log, i, len(tasks), task, record)
        yield task, record


def _progress(log: Callable[[str], None], i: int, n: int, task: Task, record: dict) -> None:
    if "error" in record:
        log(f"[claims] run {i}/{n} {task.key} FAILED (log: {record['log']})")
        return
    metrics = ", ".join(f"{k} {v:.3f}" for k, v in sorted(record["metrics"].items()) if not k.startswith("reward_i"))
    log(f"[claims] run {i}/{n} {task.key}: {metrics} ({record['wall_seconds']:.0f}s)")
