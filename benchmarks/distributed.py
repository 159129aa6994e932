"""Sharded stages on 1 and N processes: seconds to generate, score and precompute reference log-probs.

    python -m benchmarks.distributed                       # 1 and 2 CPU processes, 1,024 prompts x K=8
    python -m benchmarks.distributed --processes 1 2 4 --prompts 256 --k 4

Each process count is one ``accelerate launch`` (gloo on CPU, one torch thread per process, so N processes use N
cores) running the round pipeline's stages on the tiny world's base policy, each stage between two barriers:

    generate    ``sample_sharded``: K samples per prompt (max_new_tokens = the world's 12, batches of --batch)
    score       ``score_records`` with the implicit reward (policy vs a perturbed reference: two forwards per list)
    reference   ``precompute_ref_logps`` (cache in a fresh folder, so it computes)

and prints the wall-clock seconds of each, their ratio to one process (ideal: 1/N), and the main process's own CPU
seconds in the stage (its share of the work: about 1/N of one process's, whatever else the machine is running).
The outputs must be identical across process counts: their hash is printed. Wall-clock numbers depend on what
else the machine runs: the load average is printed next to them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, benchmarks/ is sys.path[0] and its losses.py would shadow the ``losses`` package: drop it.
if os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

STAGES = ("generate", "score", "reference")


def worker(args: argparse.Namespace) -> None:
    """One launched process: run the stages, rank 0 writes {stage: seconds} and an output hash to --out."""
    import torch
    from accelerate import PartialState

    torch.set_num_threads(1)
    state = PartialState(cpu=True)

    from prefopt.data.tokenize import as_chat
    from prefopt.distributed import main_value
    from prefopt.rounds.generate import sample_sharded
    from prefopt.rounds.judges import ImplicitRewardScorer
    from prefopt.rounds.scoring import score_records
    from prefopt.seeds import prompt_seed
    from prefopt.trainer import ListCollator, frozen_copy, list_features, precompute_ref_logps
    from prefopt.world import MAX_NEW_TOKENS, load_base_policy, make_prompts

    policy, tok = load_base_policy()
    ref = frozen_copy(policy)
    weight = ref.model.layers[0].mlp.up_proj.weight  # a reference unlike the policy
    weight.add_(0.05 * torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)))
    prompts = as_chat(make_prompts(args.prompts, seed=0, split="train"), tok, "auto", given=False)
    seeds = [prompt_seed(0, 0, i) for i in range(len(prompts))]
    seconds, out = {}, {}

    def timed(stage, fn):
        state.wait_for_everyone()
        start, cpu = time.perf_counter(), time.process_time()
        out[stage] = fn()
        cpu = time.process_time() - cpu  # this process's own work, whatever else the machine runs
        state.wait_for_everyone()
        seconds[stage] = time.perf_counter() - start
        seconds[f"{stage} cpu"] = cpu

    timed("generate", lambda: sample_sharded(policy, tok, prompts, seeds=seeds, k=args.k, batch_size=args.batch,
                                             max_new_tokens=MAX_NEW_TOKENS, progress=False))
    records = [{"prompt": p, "responses": rs, "scores": [0.0] * len(rs)}
               for p, rs in zip(prompts, out["generate"], strict=True)]
    scorer = ImplicitRewardScorer(policy, ref, tok, batch_size=32)
    timed("score", lambda: [r["scores"] for r in score_records(scorer, records)])
    features = list_features(tok, prompts, out["generate"])
    collator = ListCollator(pad_token_id=tok.pad_token_id)
    cache = Path(main_value(tempfile.mkdtemp(prefix="prefopt-bench-") if state.is_main_process else None))
    timed("reference", lambda: [f["ref_logps"] for f in precompute_ref_logps(ref, features, collator, batch_size=32,
                                                                                  cache_dir=cache)])
    if state.is_main_process:
        shutil.rmtree(cache, ignore_errors=True)
        digest = hashlib.sha256(json.dumps(out).encode()).hexdigest()[:12]
        Path(args.out).write_text(json.dumps({"seconds": seconds, "hash": digest}))


def launch(n: int, args: argparse.Namespace, out: Path) -> dict:
    """Run the worker on ``n`` processes and return rank 0's report."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    worker_args = ["--worker", "--out", str(out), "--prompts", str(args.prompts), "--k", str(args.k), "--batch",
                   str(args.batch)]
    if n == 1:
        cmd = [sys.executable, "-m", "benchmarks.distributed", *worker_args]
    else:
        cmd = [shutil.which("accelerate") or "accelerate", "launch", "--multi_gpu", "--num_processes", str(n),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m",
               "benchmarks.distributed", *worker_args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: {n} process(es) failed:\n{done.stderr[-2000:]}")
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--prompts", type=int, default=1024)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--batch", type=int, default=512, help="sequences per generate call")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    print(f"tiny world, {args.prompts} prompts x K={args.k}, {os.cpu_count()} CPU cores, "
          f"load average before {os.getloadavg()[0]:.1f}")
    print(f"{'processes':>9}" + "".join(f"{s + ' s':>13}{'ratio':>7}{'cpu s':>7}" for s in STAGES)
          + f"{'output hash':>14}")
    base = None
    with tempfile.TemporaryDirectory() as folder:
        for n in args.processes:
            report = launch(n, args, Path(folder) / f"{n}.json")
            base = base or report["seconds"]
            sec = report["seconds"]
            cells = "".join(f"{sec[s]:>13.2f}{sec[s] / base[s]:>7.2f}{sec[s + ' cpu']:>7.2f}" for s in STAGES)
            print(f"{n:>9}{cells}{report['hash']:>14}   (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
