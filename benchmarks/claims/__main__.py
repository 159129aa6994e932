"""``python -m benchmarks.claims [NAME ...] [--size full|smoke] [--jobs N]``: run claims, print one JSON line each.

At full size the results are saved to ``benchmarks/claims/results/NAME.json`` and docs/claims.md and the algorithm
pages' quotes are re-rendered from every saved result; at smoke size nothing under docs/ or results/ is touched.
Progress goes to stderr, the JSON lines to stdout. Runs are cached under ``--out`` (``runs/claims/<size>``): run
the same command again to finish an interrupted suite; ``--fresh`` reruns everything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from benchmarks.claims import NAMES, RUN_ORDER, load
from benchmarks.claims.core import SIZES

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _env(jobs: int, load_start: float, seconds: float) -> dict:
    import torch
    import transformers
    import trl

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    load_end = os.getloadavg()[0]
    busy = max(load_start, load_end) > jobs + 0.5
    return {"date": date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
            "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "trl": trl.__version__, "commit": commit.stdout.strip() or "?", "jobs": jobs,
            "suite_seconds": round(seconds, 1), "load_start": round(load_start, 2), "load_end": round(load_end, 2),
            "contention": "the machine was shared: the wall time is inflated by other processes" if busy else
                          "the machine was otherwise idle"}


def _keys(the_plan, claim) -> set[str]:
    return {key for (name, *_), key in the_plan.slots.items() if name == claim.name}


def _finish(claim, result: dict, out_dir: Path, size: str) -> None:
    """Save a claim's result, print its JSON line, and (full size) re-render the docs from every saved result."""
    (out_dir / f"{claim.name}.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps({"claim": claim.name, "verdict": result["verdict"], "size": size,
                      "checks": [{k: c[k] for k in ("text", "verdict", "a", "b", "delta")}
                                 for c in result["checks"]]}, ensure_ascii=False), flush=True)
    if size == "full":
        from benchmarks.claims.report import write_all

        write_all(saved_results())
        _log(f"[claims] {claim.name}: {result['verdict']}; docs/claims.md re-rendered")


def saved_results() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json")) if p.stem in NAMES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"claims to run (default: all): {', '.join(NAMES)}")
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes, one thread each (default 2)")
    parser.add_argument("--out", type=Path, help="run folder root (default runs/claims/<size>)")
    parser.add_argument("--fresh", action="store_true", help="ignore cached runs")
    parser.add_argument("--report", action="store_true", help="only re-render the docs from saved results")
    args = parser.parse_args(argv)
    if args.report:
        from benchmarks.claims.report import write_all

        for page in write_all(saved_results()):
            _log(f"[claims] wrote {page}")
        return 0
    from benchmarks.claims.analysis import summarise
    from benchmarks.claims.runner import plan, run_all

    claims = [load(n) for n in (args.names or RUN_ORDER)]
    size = SIZES[args.size]
    root = (args.out or ROOT / "runs" / "claims" / size.name).resolve()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the workers before they import torch
    load_start, start = os.getloadavg()[0], time.perf_counter()
    the_plan = plan(claims, size, root, log=_log)
    _log(f"[claims] {len(the_plan.tasks)} runs for {', '.join(c.name for c in claims)} ({size.name}); logs in "
         f"{root / 'logs'}")
    out_dir = RESULTS if size.name == "full" else root / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    records: dict[str, dict] = {}
    pending = list(claims)
    for task, record in run_all(the_plan.tasks.values(), root, jobs=args.jobs, fresh=args.fresh, log=_log):
        records[task.key] = record
        for claim in [c for c in pending if _keys(the_plan, c) <= records.keys()]:  # finished: report it now
            pending.remove(claim)
            env = _env(args.jobs, load_start, time.perf_counter() - start)
            _finish(claim, summarise(claim, size, the_plan, records) | {"env": env}, out_dir, size.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
