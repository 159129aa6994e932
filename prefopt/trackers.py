"""Results in the user's tracker (``report_to=wandb|tensorboard``), beside the training curves the Trainer logs.

The Trainer's own integrations log the curves; this module adds what the run exists for, once it is known:
the reward before and after (mean and 95% interval), the reward of each round, each round's data report (kept,
dropped, ties), the summary figures, the PNG plots, and what the model wrote: the first ``SAMPLES`` samples of
every evaluation (a W&B ``completions`` table; a TensorBoard text panel ``samples/<evaluation>``). See
docs/trackers.md.

* ``wandb``: one W&B run per prefopt run, opened here (project ``$WANDB_PROJECT``, default ``prefopt``; files
  under the run folder) so every round's Trainer logs into it; results go to the run summary and, per round,
  against a ``round`` axis. ``WANDB_MODE=offline`` works unchanged.
* ``tensorboard``: curves of round k in ``output_dir/tensorboard/round_k``, results in
  ``output_dir/tensorboard/results`` (plus an HPARAMS entry, so sweeps compare side by side).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from prefopt.config import public_config

REWARD_FIELDS = ("mean", "ci95_low", "ci95_high", "n")
SAMPLES = 16  # samples per evaluation in the tracker (all of them are in the run folder's samples/)
COLUMNS = ("evaluation", "prompt", "response", "reward")


def sample_rows(summary: dict[str, Any], out: Path) -> list[tuple[str, str, str, float]]:
    """(evaluation, prompt, response, reward) of the first ``SAMPLES`` samples of each evaluation."""
    from prefopt.samples import read_samples

    rows = []
    for name, rel in (summary.get("samples") or {}).items():
        for s in read_samples(out / rel, SAMPLES):
            prompt = s["prompt"] if isinstance(s["prompt"], str) else json.dumps(s["prompt"], ensure_ascii=False)
            rows.append((name, prompt, s["response"], s["reward"]))
    return rows


def samples_markdown(rows: list[tuple[str, str, str, float]]) -> str:
    """A markdown table (TensorBoard's text plugin renders markdown) of one evaluation's samples."""
    cell = lambda text: str(text).replace("|", "\\|").replace("\n", "<br>")
    lines = ["| prompt | response | reward |", "|---|---|---|"]
    lines += [f"| {cell(p)} | {cell(r)} | {x:.3f} |" for _, p, r, x in rows]
    return "\n".join(lines)


def result_scalars(summary: dict[str, Any]) -> dict[str, float]:
    """Flat ``{name: number}`` of the run's results: reward before/after, summary figures, stage seconds."""
    flat: dict[str, float] = {}
    for when in ("before", "after"):
        for key in REWARD_FIELDS:
            if summary.get(f"reward_{when}"):
                flat[f"reward/{when}_{key}"] = summary[f"reward_{when}"][key]
    for key in ("steps", "train_seconds", "tokens_per_second", "peak_memory_mb"):
        if key in summary:
            flat[f"summary/{key}"] = summary[key]
    for stage, seconds in (summary.get("stage_seconds") or {}).items():
        flat[f"summary/stage_seconds/{stage}"] = seconds
    return flat


def round_scalars(record: dict[str, Any]) -> dict[str, float]:
    """One round's reward and its data report (every count: kept, dropped, ties ...) as flat numbers."""
    flat = {f"reward/round_{k}": record["reward"][k] for k in REWARD_FIELDS if record.get("reward")}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}/{key}")
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            flat[prefix] = node

    walk(record.get("data") or {}, "data")
    return flat


class Tracker:
    """The run's W&B run or TensorBoard folders: per-round callbacks and the results at the end; ``none`` does
    nothing."""

    def __init__(self, kind: str, out: Path, cfg: DictConfig | None = None):
        self.kind, self.out = kind, out
        if kind == "wandb":
            import wandb

            self.run = wandb.run or wandb.init(project=os.getenv("WANDB_PROJECT", "prefopt"), name=out.name,
                                               dir=str(out), config=public_config(cfg))

    def callbacks(self, index: int) -> list:
        if self.kind != "tensorboard":
            return []
        from torch.utils.tensorboard import SummaryWriter
        from transformers.integrations import TensorBoardCallback

        # one folder per round: each round's Trainer counts steps from 0 again
        return [TensorBoardCallback(SummaryWriter(str(self.out / "tensorboard" / f"round_{index}")))]

    def log_results(self, summary: dict[str, Any], cfg: DictConfig) -> None:
        if self.kind == "wandb":
            self._wandb(summary)
        elif self.kind == "tensorboard":
            self._tensorboard(summary, cfg)

    def _wandb(self, summary: dict[str, Any]) -> None:
        import wandb

        self.run.define_metric("round")
        for index, record in enumerate(summary["rounds"]):
            scalars = round_scalars(record)
            for name in scalars:
                self.run.define_metric(name, step_metric="round")  # explicit names beat the Trainer's "*" rule
            self.run.log({"round": index, **scalars})
        self.run.summary.update(result_scalars(summary))
        self.run.log({f"plots/{Path(name).stem}": wandb.Image(str(self.out / name)) for name in summary["plots"]})
        rows = sample_rows(summary, self.out)
        if rows:
            self.run.log({"completions": wandb.Table(columns=list(COLUMNS), data=[list(r) for r in rows])})
        self.run.finish()
        # The run is over: stop W&B's service too, which waits for it to write everything out (finish alone can
        # return before an offline run's records are on disk).
        wandb.teardown()

    def _tensorboard(self, summary: dict[str, Any], cfg: DictConfig) -> None:
        from matplotlib.image import imread
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(self.out / "tensorboard" / "results"))
        results = result_scalars(summary)
        for name, value in results.items():
            writer.add_scalar(name, value, 0)
        for index, record in enumerate(summary["rounds"]):
            for name, value in round_scalars(record).items():
                writer.add_scalar(name, value, index)
            writer.add_text("data_report", f"```\n{json.dumps(record.get('data'), indent=2)}\n```", index)
        rows = sample_rows(summary, self.out)
        for name in dict.fromkeys(r[0] for r in rows):
            writer.add_text(f"samples/{name}", samples_markdown([r for r in rows if r[0] == name]), 0)
        for name in summary["plots"]:
            writer.add_image(f"plots/{Path(name).stem}", imread(self.out / name)[..., :3], 0, dataformats="HWC")
        hparams = {k: v for k, v in _flat(public_config(cfg)).items()
                   if isinstance(v, (int, float, str, bool))}
        writer.add_hparams(hparams, {f"hparam/{k}": v for k, v in results.items() if k.startswith("reward/")},
                           run_name=".")
        writer.close()


def _flat(node: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def trainer_integrations(kind: str) -> list[str]:
    """The Trainer's own ``report_to`` for ``report_to=kind``: W&B by name (into the run ``Tracker`` opened);
    TensorBoard through ``Tracker.callbacks`` instead, one folder per round."""
    return [] if kind in ("none", "tensorboard") else [kind]


def open_tracker(cfg: DictConfig, out: Path, *, main_process: bool = True) -> Tracker:
    """The run's tracker; other processes of a distributed run log nothing themselves."""
    return Tracker(cfg.report_to if main_process else "none", out, cfg)
