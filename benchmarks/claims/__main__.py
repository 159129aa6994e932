"""``python -m benchmarks.claims [NAME ...] [--seeds S ...] [--tuning-seeds S ...] [--size full|smoke] [--jobs N]``.

Runs claims one after the other under protocol v2 (``benchmarks.claims.core``) and prints one JSON line each. At
full size, with the default tuning seeds and the evaluation seeds the power calculation picks, the result is saved
to ``benchmarks/claims/results/NAME.json`` and docs/claims.md and the algorithm pages' quotes are re-rendered from
every saved result; with other seeds (``--seeds``, ``--tuning-seeds``) or at smoke size the result goes to
``<out>/results/`` and nothing under docs/ is touched. Progress goes to stderr. Runs are cached under ``--out``
(``runs/claims/<size>``): the same command again finishes an interrupted suite; ``--fresh`` reruns everything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.claims import NAMES, REAL_NAMES, RUN_ORDER, load
from benchmarks.claims.core import PROTOCOL, SIZES

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"


def _log(message: str) -> None:
    print(f"{datetime.now(timezone.utc):%H:%M:%S} {message}", file=sys.stderr, flush=True)


def _env(jobs: int, load_start: float, started: float, seconds: float) -> dict:
    import torch
    import transformers
    import trl

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return {"date": datetime.fromtimestamp(started, timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores", "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
            "commit": commit.stdout.strip() or "?", "jobs": jobs, "nice": os.nice(0), "wall_seconds": round(seconds, 1),
            "load_start": round(load_start, 2), "load_end": round(os.getloadavg()[0], 2)}


def saved_results() -> dict[str, dict]:
    """Every saved protocol-v2 result (a file of another protocol is never read into the table)."""
    out = {}
    for path in sorted(RESULTS.glob("*.json")):
        result = json.loads(path.read_text())
        if path.stem in NAMES + REAL_NAMES and result.get("protocol") == PROTOCOL:
            out[path.stem] = result
    return out


def _published(result: dict, size, tuning_seeds) -> bool:
    """Whether a result is the table's: full size, the default tuning seeds, the power calculation's eval seeds."""
    wanted = list(size.eval_seeds(result.get("n_needed", 0)))
    return size.name == "full" and tuple(tuning_seeds) == size.tuning_seeds and result["eval_seeds"] in ([], wanted)


def _line(result: dict) -> str:
    keys = ("text", "verdict", "delta", "margin", "p_holm", "mde")
    return json.dumps({"claim": result["name"], "verdict": result["verdict"], "size": result["size"],
                       "tuning_seeds": result["tuning_seeds"], "eval_seeds": result["eval_seeds"],
                       "control": result["control"], "checks": [{k: c[k] for k in keys} for c in result["checks"]]},
                      ensure_ascii=False)


def unfinished(claim, size, root: Path) -> dict:
    """What a stopped claim has to show, read from the run cache without running anything: its control's numbers
    (when measured) and how many of its arms' training runs had finished."""
    from benchmarks.claims.core import UNFINISHED

    controls = sorted((root / "controls").glob(f"{claim.name}-*.json"), key=lambda p: p.stat().st_mtime)
    numbers = json.loads(controls[-1].read_text()) if controls else None
    from benchmarks.claims.core import grid_of
    from benchmarks.claims.runner import run_overrides

    def ours(arm, overrides: list[str]) -> bool:
        if arm.prepare is not None:  # prepared data: the arm's overrides, then its data in this claim's own folder
            head = arm.overrides(size)
            return overrides[:len(head)] == head and any(f"/data/{claim.name}/" in o for o in overrides)
        seed = int(next(o for o in overrides if o.startswith("train.seed=")).split("=", 1)[1])
        return any(overrides == run_overrides(arm, size, point, seed) for point in grid_of(claim, size))

    done = 0
    for path in (root / "runs").glob("*/claims.json"):
        overrides = json.loads(path.read_text())["overrides"]
        done += any(ours(arm, overrides) for arm in claim.arms)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return {"protocol": PROTOCOL, "name": claim.name, "verdict": UNFINISHED,
            "control": {"text": claim.control.text, "numbers": numbers,
                        "passed": None if numbers is None else bool(claim.control.passed(numbers))},
            "stopped": f"stopped unfinished at {stamp}, {done} of its training runs done; no verdict"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"claims to run (default: all of "
                        f"{', '.join(NAMES)}; the real-model arm, {', '.join(REAL_NAMES)}, only when named)")
    parser.add_argument("--seeds", type=int, nargs="+", help="evaluation seeds (default: as many as the power "
                        "calculation asks, from the size's first evaluation seed)")
    parser.add_argument("--tuning-seeds", type=int, nargs="+", help="tuning seeds (default: the size's)")
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes, one thread each (default 2)")
    parser.add_argument("--out", type=Path, help="run folder root (default runs/claims/<size>)")
    parser.add_argument("--fresh", action="store_true", help="ignore cached runs")
    parser.add_argument("--report", action="store_true", help="only re-render the docs from saved results")
    parser.add_argument("--unfinished", action="store_true", help="save what the named claims without a result "
                        "have in the run cache (their control), marked unfinished, and re-render the docs")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in NAMES + REAL_NAMES]
    if unknown:  # one usage error before anything runs, not a traceback from load()
        parser.error(f"unknown claim(s) {', '.join(unknown)}; valid: {', '.join(NAMES + REAL_NAMES)}")
    from benchmarks.claims.report import write_all

    if args.report:
        for page in write_all(saved_results()):
            _log(f"[claims] wrote {page}")
        return 0
    if args.unfinished:
        size = SIZES[args.size]
        root = (args.out or ROOT / "runs" / "claims" / size.name).resolve()
        saved = saved_results()
        for name in args.names or RUN_ORDER:
            if name not in saved or saved[name]["verdict"] == "unfinished":
                (RESULTS / f"{name}.json").write_text(json.dumps(unfinished(load(name), size, root), indent=1,
                                                                 ensure_ascii=False) + "\n")
        write_all(saved_results())
        return 0
    if args.seeds and len(args.seeds) < 2:
        parser.error("--seeds needs at least 2 evaluation seeds (a paired t-interval needs 2)")
    shared = sorted(set(args.seeds or ()) & set(args.tuning_seeds or SIZES[args.size].tuning_seeds))
    if shared:  # protocol v2: a point chosen on a seed is never reported on it
        parser.error(f"evaluation seeds {shared} are tuning seeds; pick others with --seeds")
    from benchmarks.claims.protocol import run_claim
    from benchmarks.claims.runner import workers

    claims = [load(n) for n in (args.names or RUN_ORDER)]
    size = SIZES[args.size]
    tuning = tuple(args.tuning_seeds or size.tuning_seeds)
    root = (args.out or ROOT / "runs" / "claims" / size.name).resolve()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the workers before they import torch
    pool, failed = workers(args.jobs), False
    for claim in claims:
        load_start, started, start = os.getloadavg()[0], time.time(), time.perf_counter()
        try:
            result = run_claim(claim, size, root, pool=pool, fresh=args.fresh, log=_log,
                               eval_seeds=tuple(args.seeds) if args.seeds else None, tuning_seeds=tuning)
        except Exception:  # a broken claim must not stop the ones after it; its traceback is the report
            _log(f"[claims] {claim.name} FAILED:\n{traceback.format_exc()}")
            failed = True
            continue
        result["env"] = _env(args.jobs, load_start, started, time.perf_counter() - start)
        out_dir = RESULTS if _published(result, size, tuning) else root / "results"
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{claim.name}.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
        print(_line(result), flush=True)
        if out_dir == RESULTS:
            write_all(saved_results())
            _log(f"[claims] {claim.name}: {result['verdict']}; docs/claims.md re-rendered")
    if pool is not None:
        pool.shutdown()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
