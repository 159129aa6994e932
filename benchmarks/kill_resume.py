"""Kill a run at each stage, resume it, and compare the final weights with an uninterrupted run.

    python -m benchmarks.kill_resume            # prints one row per stage: max |Δw| against the uninterrupted run

A two-round DPO run on the tiny world (checkpoints every 5 steps) is killed with ``os._exit`` — no cleanup, as a
``kill -9`` or a lost node would — in round 1 at each stage: generation, scoring, training (step 12) and during a
checkpoint save (step 15, after the weights but before ``trainer_state.json``). It is then resumed with
``resume=true``. docs/reliability.md records the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ARGS = ["recipe=dpo", "rounds=2", "train.max_steps=20", "train.save_steps=5", "data.n_prompts=128", "threads=1",
        "eval.n_prompts=32", "eval.samples_per_prompt=1"]
STAGES = ("generation", "scoring", "training", "checkpoint save")


def _die() -> None:
    sys.stdout.flush()
    os._exit(137)


def _arm(stage: str) -> None:
    """Patch the pipeline so this process dies at ``stage`` of round 1 (round 0 finishes normally)."""
    from transformers import Trainer

    from prefopt.rounds import build
    from prefopt.trainer import PreferenceTrainer

    in_round_1 = lambda trainer: "round_1" in str(trainer.args.output_dir)
    if stage == "generation":
        real_sample = build._sample
        build._sample = lambda cfg, *a: _die() if a[-1] == 1 else real_sample(cfg, *a)
    elif stage == "scoring":
        real_score, calls = build.score_records, []
        build.score_records = lambda *a: _die() if calls.append(1) or len(calls) == 2 else real_score(*a)
    elif stage == "training":
        real_step = PreferenceTrainer.training_step

        def step(self, *a, **k):
            if in_round_1(self) and self.state.global_step == 12:
                _die()
            return real_step(self, *a, **k)

        PreferenceTrainer.training_step = step
    else:
        real_save_model = Trainer.save_model

        def save_model(self, output_dir=None, _internal_call=False):
            real_save_model(self, output_dir, _internal_call)
            if in_round_1(self) and self.state.global_step == 15 and _internal_call:
                _die()  # the weights are on disk, trainer_state.json is not: a half-written checkpoint

        Trainer.save_model = save_model


def _run(args: list[str], kill: str | None = None) -> int:
    code = ("import sys; from benchmarks.kill_resume import _arm; from prefopt.train import main; "
            + (f"_arm({kill!r}); " if kill else "") + "sys.exit(main(sys.argv[1:]))")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True).returncode


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model" / "model.safetensors"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", nargs="*", default=list(STAGES))
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="prefopt-kill-"))
    assert _run([*ARGS, f"output_dir={root / 'straight'}"]) == 0
    reference = _weights(root / "straight")
    rows = []
    for stage in args.stages:
        out = root / stage.replace(" ", "_")
        killed = _run([*ARGS, f"output_dir={out}"], kill=stage)
        resumed = _run([*ARGS, f"output_dir={out}", "resume=true"])
        w = _weights(out)
        delta = max((w[k] - reference[k]).abs().max().item() for k in reference)
        summary = json.loads((out / "summary.json").read_text())
        steps = [(r["round"], r["step"]) for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
                 if "loss" in r]
        rows.append({"stage": stage, "killed_exit": killed, "resumed_exit": resumed, "max_abs_dw": delta,
                     "steps": summary["steps"], "duplicate_metric_rows": len(steps) - len(set(steps))})
        print(json.dumps(rows[-1]), flush=True)
    print("\n| killed during | exit | resumed | max abs Δw vs uninterrupted | steps | duplicate metrics rows |\n"
          "|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['stage']} | {r['killed_exit']} | {r['resumed_exit']} | {r['max_abs_dw']:.3g} | {r['steps']} | "
              f"{r['duplicate_metric_rows']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
