"""GPU-only checks (skipped on CPU, so CI never runs them): bf16 training and QLoRA through bitsandbytes.

Each run is watched through ``PreferenceTrainer.train``: the parameters before training are kept beside the trainer
after it, so a test says what training changed and what it left alone, not only that the run finished.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
from safetensors.torch import load_file

from prefopt.train import main
from prefopt.trainer import PreferenceTrainer
from tests.test_cli import local_run  # noqa: F401  (fixture)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class Trained(NamedTuple):
    before: dict[str, torch.Tensor]  # every parameter when training starts
    after: dict[str, torch.Tensor]  # ... when it ends (before the run merges or saves anything)
    trainable: set[str]  # names of the parameters that require grad
    kinds: dict[str, str]  # parameter class names: Params4bit for a 4-bit weight


@pytest.fixture
def trained(monkeypatch) -> list[Trained]:
    """What every round's training did to the policy's parameters."""
    seen = []
    original = PreferenceTrainer.train

    def snapshot(model) -> dict[str, torch.Tensor]:
        return {name: p.detach().clone() for name, p in model.named_parameters()}

    def train(self, *args, **kwargs):
        before = snapshot(self.model)
        result = original(self, *args, **kwargs)
        params = dict(self.model.named_parameters())
        seen.append(Trained(before, snapshot(self.model), {n for n, p in params.items() if p.requires_grad},
                            {n: type(p).__name__ for n, p in params.items()}))
        return result

    monkeypatch.setattr(PreferenceTrainer, "train", train)
    return seen


def check_losses(run: Path) -> None:
    """Three finite logged losses, the first DPO's value at the start: the policy is its own reference there, so
    every margin is 0 and the loss is −log σ(0) = ln 2 (a wrong reference or a broken bf16 forward moves it)."""
    losses = [row["loss"] for row in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
              if "loss" in row]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    assert losses[0] == pytest.approx(math.log(2), abs=0.02)


@cuda
def test_bf16_training_on_gpu(local_run, tmp_path, trained):  # noqa: F811
    assert main([*local_run, "train.bf16=true"]) == 0
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["peak_memory_mb"] > 0
    check_losses(run)
    (t,) = trained
    assert all(p.dtype == torch.bfloat16 for p in t.after.values()), "trained in bf16, not fp32 under autocast"
    # Every weight matrix moved (Adam's first steps move each element by about lr = 1e-3, above bf16's spacing
    # near 0.02). Norm weights sit at 1.0, where bf16's spacing (2^-7) swallows steps of 1e-3: not checked.
    matrices = [name for name, p in t.after.items() if p.dim() == 2]
    assert matrices and all(not torch.equal(t.before[name], t.after[name]) for name in matrices)
    saved = load_file(run / "model" / "model.safetensors")
    assert saved and all(t.dtype == torch.bfloat16 for t in saved.values())


@cuda
@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is None, reason="needs bitsandbytes")
def test_qlora_trains_a_4bit_base_with_the_adapter_off_as_reference(local_run, tmp_path, trained):  # noqa: F811
    assert main([*local_run, "peft.enabled=true", "peft.load_in_4bit=true", "peft.r=4",
                 "reference.mode=adapter", "train.bf16=true"]) == 0
    run = tmp_path / "run"
    assert json.loads((run / "summary.json").read_text())["steps"] == 3
    check_losses(run)
    (t,) = trained
    assert t.trainable and all("lora_" in name for name in t.trainable)
    # LoRA's B starts at zero: a B that is still zero never trained
    assert all(t.after[name].abs().sum() > 0 for name in t.trainable if "lora_B" in name)
    frozen = set(t.after) - t.trainable
    assert any(t.kinds[name] == "Params4bit" for name in frozen), "the base is not 4-bit"
    assert all(torch.equal(t.before[name], t.after[name]) for name in frozen), "the 4-bit base moved"
    adapter = load_file(run / "model" / "adapter_model.safetensors")  # the saved adapter is the trained one
    assert any("lora_B" in key and t.abs().sum() > 0 for key, t in adapter.items())
