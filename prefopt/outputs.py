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


def _laid_end_to_end(rows: list[dict[str, Any]]) -> tuple[list[int], dict[int, int]]:
    """Each row's step on one axis across rounds (steps restart at each round), and the step where each round
    after the first begins."""
    offset, last_round, last_step, xs, starts = 0, None, 0, [], {}
    for r in rows:
        if last_round is not None and r["round"] != last_round:
            offset += last_step
            starts[r["round"]] = offset
        last_round, last_step = r["round"], r["step"]
        xs.append(offset + r["step"])
    return xs, starts


def reward_figure(rewards: list[dict[str, Any]]):
    """Mean reward with its 95% interval: "before", then after each round, numbered as the console numbers rounds
    (round 0 is the first round trained)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.2))
    ax = fig.subplots()
    xs = list(range(-1, len(rewards) - 1))  # -1: before training
    ys = [r["mean"] for r in rewards]
    ax.errorbar(xs, ys, yerr=[[y - r["ci95_low"] for y, r in zip(ys, rewards, strict=True)],
                              [r["ci95_high"] - y for y, r in zip(ys, rewards, strict=True)]], marker="o", capsize=4)
    ax.set_xticks(xs, ["before", *(str(x) for x in xs[1:])])
    ax.set_xlim(xs[0] - 0.5, xs[-1] + 0.5)
    ax.set_xlabel("after round")
    ax.set_title("reward (mean, 95% interval)")
    return fig


def curve_figure(key: str, rows: list[dict[str, Any]]):
    """One logged curve against the step counted across rounds, with a dashed line where each round begins."""
    from matplotlib.figure import Figure

    xs, starts = _laid_end_to_end(rows)
    fig = Figure(figsize=(5, 3.2))
    ax = fig.subplots()
    ax.plot(*zip(*[(x, r[key]) for x, r in zip(xs, rows, strict=True) if key in r], strict=True))
    for index, x in starts.items():
        ax.axvline(x, color="gray", linestyle="--", linewidth=0.8)
        ax.annotate(f"round {index}", (x, 1), xycoords=("data", "axes fraction"), xytext=(3, -12),
                    textcoords="offset points", fontsize=8, color="gray")
    ax.set_xlabel("step (all rounds)" if starts else "step")
    ax.set_title(key)
    return fig


def plot_curves(out: Path, rounds_reward: list[dict[str, Any]] | None = None) -> list[str]:
    """One PNG per curve in PLOTTED that the run logged; returns the file names."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    rows = [r for r in RunFolder(out).read_metrics() if "loss" in r or "rewards/margins" in r]
    written = []
    for key in PLOTTED:
        if key == "reward":
            if not rounds_reward:
                continue
            fig = reward_figure(rounds_reward)
        elif any(key in r for r in rows):
            fig = curve_figure(key, rows)
        else:
            continue
        FigureCanvasAgg(fig)  # no pyplot: the process's matplotlib backend is left alone
        fig.axes[0].grid(alpha=0.3)
        fig.tight_layout()
        name = f"{key.replace('/', '_')}.png"
        fig.savefig(out / name, dpi=100)
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
