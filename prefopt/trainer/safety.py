"""No poisoned weights: stop before a non-finite optimizer step, never save non-finite weights, and resume only
from a checkpoint that is complete and finite.

A checkpoint is *usable* when the Trainer finished writing it (``trainer_state.json`` is written last by
``Trainer._save_checkpoint``) and every tensor of its weights is finite. A kill during a save leaves a folder
without the state file; ``last_usable_checkpoint`` skips it, and so does ``resume=true``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import TrainerCallback

STATE_FILE = "trainer_state.json"  # transformers.trainer.TRAINER_STATE_NAME, written last in a checkpoint


class NonFiniteError(FloatingPointError):
    """Training produced a NaN or inf; the message names the step and the last usable checkpoint."""


def _weight_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))


def finite_state(folder: Path) -> bool:
    """Whether every floating tensor in the folder's weight files is finite (False when there are none)."""
    files = _weight_files(folder)
    if not files:
        return False
    for file in files:
        if file.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(file), framework="pt") as f:
                tensors = (f.get_tensor(k) for k in f.keys())  # noqa: SIM118 (safe_open has no __iter__)
                if not all(torch.isfinite(t).all() for t in tensors if t.is_floating_point()):
                    return False
        else:
            state = torch.load(file, map_location="cpu", weights_only=True)
            if not all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point()):
                return False
    return True


def checkpoint_problem(path: Path, verify: Callable[[Path], str | None] | None = None) -> str | None:
    """Why the checkpoint folder cannot be resumed from, or None: half-written (no ``trainer_state.json``), not
    what the run wrote (``verify``: the run folder's fingerprints), unreadable (a truncated weight file) or
    holding a NaN/inf."""
    if not (path / STATE_FILE).exists():
        return f"half-written (no {STATE_FILE})"
    if verify is not None:
        problem = verify(path)
        if problem:
            return problem
    try:
        return None if finite_state(path) else "its weights hold a NaN or inf, or are missing"
    except Exception as err:  # a truncated or corrupt weight file: safetensors/torch raise many kinds
        return f"its weights cannot be read ({type(err).__name__}: {str(err)[:120]})"


def usable_checkpoints(folder: str | Path, verify: Callable[[Path], str | None] | None = None,
                       skipped: list[str] | None = None) -> list[Path]:
    """``checkpoint-N`` folders under ``folder`` that are complete, verified and finite, newest (highest N) first;
    ``skipped`` collects one line per checkpoint left out (``checkpoint-5: half-written ...``)."""
    folder = Path(folder)
    if not folder.exists():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := re.fullmatch(r"checkpoint-(\d+)", p.name))]
    usable = []
    for _, path in sorted(found, reverse=True):
        problem = checkpoint_problem(path, verify)
        if problem is None:
            usable.append(path)
        elif skipped is not None:
            skipped.append(f"{path.name}: {problem}")
    return usable


def last_usable_checkpoint(folder: str | Path, verify: Callable[[Path], str | None] | None = None,
                           skipped: list[str] | None = None) -> Path | None:
    """The newest usable checkpoint (``usable_checkpoints``); the ones newer than it that were skipped go to
    ``skipped``."""
    usable = usable_checkpoints(folder, verify, skipped)
    if usable and skipped is not None:
        newest = int(usable[0].name.split("-")[1])
        skipped[:] = [s for s in skipped if int(s.split(":")[0].split("-")[1]) > newest]
    return usable[0] if usable else None


def nonfinite_message(what: str, step: int, output_dir: str | Path) -> str:
    last = last_usable_checkpoint(output_dir)
    kept = (f"the last finite checkpoint is {last} (resume=true continues from it)" if last else
            "no checkpoint was saved before it (set train.save_steps to keep some)")
    return (f"{what} is not finite at step {step}; training stopped before the optimizer step, so no NaN reached "
            f"the weights; {kept}. Try a lower train.learning_rate or a smaller loss.beta")


def model_is_finite(model) -> bool:
    return all(torch.isfinite(p).all() for p in model.parameters() if p.is_floating_point())


class NonFiniteGuard(TrainerCallback):
    """Stops training before ``optimizer.step()`` when any gradient is NaN or inf (after clipping, which turns a
    non-finite norm into non-finite gradients). Under several processes every rank learns of it, so none hangs."""

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        bad = torch.tensor(float(any(not torch.isfinite(g).all() for g in grads)))
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            bad = bad.to(grads[0].device if grads else "cpu")
            torch.distributed.all_reduce(bad)
        if bad.item() > 0:
            raise NonFiniteError(nonfinite_message("the gradient", state.global_step + 1, args.output_dir))
