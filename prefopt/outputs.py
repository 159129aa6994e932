"""What a run reports: metrics.jsonl rows, PNG plots, summary.json (reward before/after, speed, memory).

Key names in summary.json are read by other tools (the zoo table): keep them.
"""

from __future__ import annotations

import json
import math
import resource
import sys
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from prefopt.run_folder import RunFolder, write_text_atomic

PLOTTED = ("loss", "rewards/margins", "rewards/accuracies", "reward")


class MetricsJsonl(TrainerCallback):
    """Appends every Trainer log (one line per logging step) to ``metrics.jsonl``, tagged with the round."""

    def __init__(self, path: Path, round_index: int = 0):
        self.path, self.round_index = path, round_index

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            row = {"round": self.round_index, "step": state.global_step, **logs}
            with self.path.open("a") as f:
                f.write(json.dumps(row) + "\n")


def peak_memory_mb() -> float:
    """Peak memory of this process: CUDA's allocator peak on GPU, else the resident set's high-water mark."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def plot_curves(out: Path, rounds_reward: list[dict[str, Any]] | None = None) -> list[str]:
    """One PNG per curve in PLOTTED that the run logged (x: cumulative step across rounds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in RunFolder(out).read_metrics() if "loss" in r or "rewards/margins" in r]
    written = []
    offset, last_round, last_step, xs_all = 0, 0, 0, []
    for r in rows:  # steps restart at each round: lay rounds end to end
        if r["round"] != last_round:
            offset, last_round = offset + last_step, r["round"]
        last_step = r["step"]
        xs_all.append(offset + r["step"])
    for key in PLOTTED:
        if key == "reward":
            points = [(i, r["mean"], r["ci95_low"], r["ci95_high"]) for i, r in enumerate(rounds_reward or [])]
            if not points:
                continue
            fig, ax = plt.subplots(figsize=(5, 3.2))
            xs, ys, lo, hi = zip(*points, strict=True)
            ax.errorbar(xs, ys, yerr=[[y - low for y, low in zip(ys, lo, strict=True)],
                                      [h - y for y, h in zip(ys, hi, strict=True)]], marker="o", capsize=4)
            ax.set_xlabel("round (0 = before training)")
        else:
            pts = [(x, r[key]) for x, r in zip(xs_all, rows, strict=True) if key in r]
            if not pts:
                continue
            fig, ax = plt.subplots(figsize=(5, 3.2))
            ax.plot(*zip(*pts, strict=True))
            ax.set_xlabel("step")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        name = f"{key.replace('/', '_')}.png"
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        written.append(name)
    return written


def write_summary(out: Path, summary: dict[str, Any]) -> None:
    clean = json.loads(json.dumps(summary, default=_jsonable))
    write_text_atomic(out / "summary.json", json.dumps(clean, indent=2) + "\n")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def format_reward(r: dict[str, Any] | None) -> str:
    if not r:
        return "n/a"
    return f"{r['mean']:.3f} [{r['ci95_low']:.3f}, {r['ci95_high']:.3f}] (n={r['n']})"
