"""The run folder: every path and marker of a run, and the only code that writes or deletes in it.

    out/
      .prefopt-run          marker: this folder was made by prefopt (overwrite=true replaces only such folders)
      config.yaml           the resolved config (resume compares against it)
      metrics.jsonl         one line per Trainer log, tagged with the round
      round_0/              data.jsonl (the round's lists), checkpoints/, model/ (+ tokenizer), round.json, DONE
      model/                the final model, HF format, with its tokenizer and model card (README.md)
      adapter/              LoRA runs: the adapter (the merged weights are model/)
      samples/              every evaluation's samples (prompt, response, reward): before.jsonl, round_k.jsonl
      summary.json, *.png

Files are written atomically (a temporary sibling, then ``os.replace``), so a kill leaves either the old file or
the new one, never half of one; a model folder is saved to a temporary folder and renamed the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER = ".prefopt-run"


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary sibling and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_folder_atomic(path: Path, save: Callable[[Path], Any]) -> None:
    """``save(tmp_folder)`` (e.g. ``model.save_pretrained``), then the folder replaces ``path`` by renames."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save(tmp)
    if path.exists():
        old = path.with_name(f".{path.name}.{os.getpid()}.old")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old)
    else:
        os.replace(tmp, path)


@dataclass(frozen=True)
class RoundPaths:
    """The files of one round, ``round_k/``."""

    dir: Path

    @property
    def data(self) -> Path:
        return self.dir / "data.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.dir / "checkpoints"

    @property
    def model(self) -> Path:
        return self.dir / "model"

    @property
    def record(self) -> Path:
        return self.dir / "round.json"

    @property
    def done(self) -> Path:
        """Written last: a round is finished only once everything else of it is on disk."""
        return self.dir / "DONE"

    def is_done(self) -> bool:
        return self.done.exists()

    def read_record(self) -> dict[str, Any]:
        return json.loads(self.record.read_text())


class RunFolder:
    """One run's folder (see the module docstring for its layout)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.marker = self.root / MARKER
        self.config = self.root / "config.yaml"
        self.metrics = self.root / "metrics.jsonl"
        self.summary = self.root / "summary.json"
        self.model = self.root / "model"
        self.adapter = self.root / "adapter"
        self.card = self.model / "README.md"
        self.samples_dir = self.root / "samples"

    def samples(self, name: str) -> Path:
        """The samples of one evaluation (``before``, ``round_0`` ...), one JSON object a line."""
        return self.samples_dir / f"{name}.jsonl"

    def samples_files(self) -> dict[str, str]:
        """``{evaluation: path relative to the run folder}`` of the samples files on disk, before first, then rounds
        in order."""
        if not self.samples_dir.exists():
            return {}
        names = sorted((p.stem for p in self.samples_dir.glob("*.jsonl")),
                       key=lambda n: (n != "before", int(n.split("_")[1]) if n.startswith("round_") else 0, n))
        return {n: str(self.samples(n).relative_to(self.root)) for n in names}

    def round(self, index: int) -> RoundPaths:
        return RoundPaths(self.root / f"round_{index}")

    def is_run(self) -> bool:
        return self.marker.exists()

    def is_empty(self) -> bool:
        return not self.root.exists() or not any(self.root.iterdir())

    # ---- before anything is written ---------------------------------------------------------------------------
    def problems(self, *, overwrite: bool, resume: bool) -> list[str]:
        """What forbids using this folder as asked; checked during validation, so nothing has been written yet."""
        if self.root.exists() and not self.root.is_dir():
            return [f"output_dir {self.root} is a file, not a folder"]
        if resume and overwrite:
            return ["resume=true and overwrite=true contradict each other: choose one"]
        if self.is_empty():
            return [f"resume=true but output_dir {self.root} holds no run to resume"] if resume else []
        if resume:
            return [] if self.is_run() and self.config.exists() else [
                f"resume=true but {self.root} is not a prefopt run folder (no {MARKER} and config.yaml)"]
        if not overwrite:
            return [f"output_dir {self.root} is not empty; pass overwrite=true to replace a previous prefopt run "
                    "there, resume=true to continue it, or choose another output_dir"]
        here = Path.cwd().resolve()
        target = self.root.resolve()
        if target == here or target in here.parents or target == Path.home().resolve():
            return [f"overwrite=true refuses to empty {self.root}: it is the working directory, one of its parents "
                    "or the home folder"]
        if not self.is_run():
            return [f"overwrite=true refuses to empty {self.root}: it holds files that prefopt did not make (no "
                    f"{MARKER} marker); choose another output_dir or clear it yourself"]
        return []

    # ---- after validation passed ------------------------------------------------------------------------------
    def prepare(self, *, overwrite: bool) -> None:
        """Create the folder (and its marker); with ``overwrite``, first empty a previous prefopt run in it."""
        if overwrite and self.is_run():  # problems() has checked it is a run folder and not the working dir
            for child in self.root.iterdir():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.marker.exists():
            write_text_atomic(self.marker, json.dumps({"created": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")

    def write_config(self, text: str) -> None:
        write_text_atomic(self.config, text)

    def write_json(self, path: Path, value: Any) -> None:
        write_text_atomic(path, json.dumps(value, indent=2) + "\n")

    def write_jsonl(self, path: Path, rows: list[dict[str, Any]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))

    def write_text(self, path: Path, text: str) -> None:
        write_text_atomic(path, text)

    def read_metrics(self) -> list[dict[str, Any]]:
        """Rows of metrics.jsonl; a line cut short by a kill (the last one) is skipped."""
        rows = []
        if self.metrics.exists():
            for line in self.metrics.read_text().splitlines():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return rows

    def trim_metrics(self, round_index: int, step: int) -> None:
        """Keep only rows logged before a resume point (round ``round_index`` at ``step``), so the resumed run's
        rows are not written twice; atomically."""
        keep = [r for r in self.read_metrics()
                if r.get("round", 0) < round_index or (r.get("round", 0) == round_index and r.get("step", 0) <= step)]
        write_text_atomic(self.metrics, "".join(json.dumps(r) + "\n" for r in keep))
