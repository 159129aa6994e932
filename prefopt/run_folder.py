"""The run folder: every path and marker of a run, and the only code that writes or deletes in it.

    out/
      .prefopt-run          marker: this folder was made by prefopt (overwrite=true replaces only such folders)
      .prefopt-lock         the run lock while a run uses the folder: {"pid", "host", "started"}
      .prefopt-fingerprints.json   sha256 and size of every file a resume reads, recorded as it is written
      config.yaml           the resolved config (resume compares against it)
      metrics.jsonl         one line per Trainer log, tagged with the round
      round_0/              data.jsonl (the round's lists), checkpoints/, model/ (+ tokenizer), round.json, DONE
      model/                the final model, HF format, with its tokenizer and model card (README.md)
      adapter/              LoRA runs: the adapter (the merged weights are model/)
      samples/              every evaluation's samples (prompt, response, reward): before.jsonl, round_k.jsonl
      summary.json, *.png

Files are written atomically (a temporary sibling, then ``os.replace``), so a kill leaves either the old file or
the new one, never half of one; a model folder is saved to a temporary folder and renamed the same way.

Resume verifies (``verify``/``resume_problems``): every file a resume reads (config, round data, round records and
models, checkpoints, the reward before, ``metrics.jsonl`` up to its last recorded length) has a fingerprint taken
when it was written; a file that changed or vanished is refused by name, and an unverified checkpoint is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER = ".prefopt-run"
LOCK = ".prefopt-lock"
FINGERPRINTS = ".prefopt-fingerprints.json"
_HELD: set[str] = set()  # lock files this process holds (a second run inside one process is refused too)


class RunLockError(RuntimeError):
    """Another live run holds the folder's lock; the message names its process and host."""


def fingerprint(path: Path, size: int | None = None) -> dict[str, Any]:
    """sha256 and size of the file (of its first ``size`` bytes when given), read in 1 MiB blocks."""
    digest, left = hashlib.sha256(), size
    with open(path, "rb") as f:
        while left is None or left > 0:
            block = f.read(1 << 20 if left is None else min(1 << 20, left))
            if not block:
                break
            digest.update(block)
            left = None if left is None else left - len(block)
    return {"sha256": digest.hexdigest(), "size": (size if size is not None else path.stat().st_size)}


def _alive(holder: dict[str, Any], path: Path) -> bool:
    """Whether the lock's process still runs. On another host it cannot be told: taken as alive."""
    if holder.get("host") != socket.gethostname():
        return True
    pid = holder.get("pid")
    if pid == os.getpid():
        return str(path) in _HELD
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError, OverflowError):
        return isinstance(pid, int)  # a process of another user holds it; a garbled pid is stale
    return True


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
        self.lock = self.root / LOCK
        self.fingerprints = self.root / FINGERPRINTS
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

    def resume_hint(self) -> str:
        """Whether ``resume=true`` can continue after a failure: only once the folder holds a run's config."""
        if self.is_run() and self.config.exists():
            return (f"finished rounds and verified checkpoints in {self.root} are kept: fix the cause and run the same "
                    "command with resume=true to continue")
        return "nothing was kept to resume: fix the cause and run the command again"

    # ---- the run lock ------------------------------------------------------------------------------------------
    def lock_holder(self) -> dict[str, Any] | None:
        try:
            holder = json.loads(self.lock.read_text())
        except (OSError, ValueError):
            return None
        return holder if isinstance(holder, dict) else None

    def lock_problem(self) -> str | None:
        """Why a run may not use the folder now: another live run holds it (checked before anything is written)."""
        holder = self.lock_holder()
        if holder is None or not _alive(holder, self.lock):
            return None
        return (f"output_dir {self.root} is in use by another prefopt run (process {holder.get('pid')} on host "
                f"{holder.get('host')}, since {holder.get('started')}); wait for it to end or choose another "
                f"output_dir (if that process is gone for good, delete {self.lock})")

    def acquire_lock(self) -> str | None:
        """Take the lock (creating the folder); returns a notice when a stale lock (its process gone) was taken over.
        Raises ``RunLockError`` when a live run holds it. The lock file appears whole or not at all (a complete
        temporary file is hard-linked into place, which fails if the lock exists)."""
        self.root.mkdir(parents=True, exist_ok=True)
        notice = None
        for _ in range(3):
            tmp = self.root / f".{LOCK}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                       "started": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")
            try:
                os.link(tmp, self.lock)
            except FileExistsError:
                problem = self.lock_problem()
                if problem:
                    raise RunLockError(problem) from None
                holder = self.lock_holder() or {}
                notice = (f"[prefopt] notice: took over the stale run lock of process {holder.get('pid')} on host "
                          f"{holder.get('host')} (that process is gone)")
                self.lock.unlink(missing_ok=True)
                continue
            finally:
                tmp.unlink(missing_ok=True)
            _HELD.add(str(self.lock))
            return notice
        raise RunLockError(f"could not take the run lock {self.lock}: another run keeps taking it")

    def release_lock(self) -> None:
        holder = self.lock_holder()
        if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
            self.lock.unlink(missing_ok=True)
        _HELD.discard(str(self.lock))

    # ---- fingerprints: what a resume reads is what was written ---------------------------------------------------
    def _store(self) -> dict[str, dict[str, Any]]:
        try:
            return json.loads(self.fingerprints.read_text())
        except (OSError, ValueError):
            return {}

    def _key(self, path: Path) -> str:
        """The path relative to the run folder (either may be relative or absolute: the Trainer's paths are)."""
        path = Path(path)
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.resolve().relative_to(self.root.resolve()).as_posix()

    def record(self, *paths: Path, prefix: bool = False, under: Path | None = None) -> None:
        """Fingerprint files as written (a folder: every file in it). ``prefix``: a file that only grows
        (``metrics.jsonl``), verified up to the recorded length. ``under``: record the fingerprint of ``paths[0]``
        (a finished temporary file) under this final name, before the rename puts it there."""
        store = self._store()
        for path in paths:
            files = sorted(p for p in Path(path).rglob("*") if p.is_file()) if Path(path).is_dir() else [Path(path)]
            for file in files:
                entry = fingerprint(file)
                if prefix:
                    entry["prefix"] = True
                store[self._key(under if under is not None else file)] = entry
        write_text_atomic(self.fingerprints, json.dumps(store, indent=1) + "\n")

    def verify(self, path: Path) -> str | None:
        """Why ``path`` (a file, or every recorded file under a folder) is not what this run wrote, or None when it
        is. A file or folder without any fingerprint is unverified."""
        store, key = self._store(), self._key(path)
        entries = {k: v for k, v in store.items() if k == key or k.startswith(key + "/")}
        if not entries:
            return f"{key} has no fingerprint (it was not written by this run, or the run stopped before recording it)"
        for name, want in sorted(entries.items()):
            file = self.root / name
            if not file.is_file():
                return f"{name} is missing"
            size = file.stat().st_size
            if size < want["size"] or (size != want["size"] and not want.get("prefix")):
                return f"{name} changed since this run wrote it (size {want['size']} bytes then, {size} now)"
            if fingerprint(file, want["size"] if want.get("prefix") else None)["sha256"] != want["sha256"]:
                return f"{name} changed since this run wrote it (its sha256 differs)"
        return None

    def resume_problems(self) -> list[str]:
        """Every file a resume will read, checked against its fingerprint (nothing is written)."""
        if not self.fingerprints.exists():
            return [f"resume=true: {self.root} has no {FINGERPRINTS} (it was made by an older prefopt), so nothing in "
                    "it can be verified; start again with overwrite=true"]
        store, out = self._store(), []
        paths = [self.config] + [self.root / "reward_before.json"] * ("reward_before.json" in store)
        for k in sorted({int(m.split("/")[0][6:]) for m in store if m.startswith("round_")}):
            r = self.round(k)
            if r.is_done():  # reloaded, never redone: all of it must be as written
                paths += [r.data, r.record, r.model]
            elif r.data.exists():  # reused as this round's training data
                paths.append(r.data)
        if self._key(self.metrics) in store:
            paths.append(self.metrics)
        for path in paths:
            problem = self.verify(path)
            if problem:
                out.append(f"resume=true: {problem}; nothing is trained on files that changed behind the run's back: "
                           "restore it, or start again with overwrite=true")
        return out

    # ---- before anything is written ---------------------------------------------------------------------------
    def problems(self, *, overwrite: bool, resume: bool) -> list[str]:
        """What forbids using this folder as asked; checked during validation, so nothing has been written yet."""
        typed = self.path_problems(overwrite=overwrite)
        if typed:
            return typed
        if resume and overwrite:
            return ["resume=true and overwrite=true contradict each other: choose one"]
        locked = self.lock_problem()
        if locked:
            return [locked]
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

    def path_problems(self, *, overwrite: bool) -> list[str]:
        """The folder as typed: no surprise about which folder is written or emptied, and one that can be made."""
        text = str(self.root)
        if text.startswith("~"):
            return [f"output_dir {text} starts with '~', which is not expanded here (it would be a folder named '~' "
                    "in the working directory); give the path in full"]
        if overwrite and self.root.is_symlink():
            return [f"overwrite=true refuses to empty {text}: it is a symbolic link to {os.path.realpath(text)}; name "
                    "that folder itself if it is the run to replace"]
        if self.root.exists() and not self.root.is_dir():
            return [f"output_dir {text} is a file, not a folder"]
        existing = self.root
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if existing != self.root and not existing.is_dir():
            return [f"output_dir {text} cannot be made: {existing} is a file, not a folder"]
        if not os.access(existing, os.W_OK | os.X_OK):
            return [f"output_dir {text} cannot be written: {existing} is read-only or not yours"]
        return []

    # ---- after validation passed ------------------------------------------------------------------------------
    def prepare(self, *, overwrite: bool) -> None:
        """Create the folder (and its marker); with ``overwrite``, first empty a previous prefopt run in it."""
        if overwrite and self.is_run():  # problems() has checked it is a run folder and not the working dir
            for child in self.root.iterdir():
                if child == self.lock:  # this run's own lock
                    continue
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.marker.exists():
            write_text_atomic(self.marker, json.dumps({"created": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")

    def write_config(self, text: str) -> None:
        self.write_text(self.config, text)

    def write_json(self, path: Path, value: Any) -> None:
        self.write_text(path, json.dumps(value, indent=2) + "\n")

    def write_text(self, path: Path, text: str) -> None:
        """Atomically, fingerprinted: the fingerprint is recorded before the rename, so a file in place always has
        one (a kill in between leaves a fingerprint without its file, which a resume rebuilds)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        self.record(tmp, under=path)
        os.replace(tmp, path)

    def write_jsonl(self, path: Path, rows: list[dict[str, Any]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))

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
        self.record(self.metrics, prefix=True)
