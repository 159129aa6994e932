"""GPU-only checks (skipped on CPU, so CI never runs them): bf16 training and QLoRA through bitsandbytes."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from prefopt.train import main
from tests.test_cli import local_run  # noqa: F401  (fixture)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
def test_bf16_training_on_gpu(local_run, tmp_path):  # noqa: F811
    assert main([*local_run, "train.bf16=true"]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["peak_memory_mb"] > 0


@cuda
@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is None, reason="needs bitsandbytes")
def test_qlora_trains_a_4bit_base_with_the_adapter_off_as_reference(local_run, tmp_path):  # noqa: F811
    assert main([*local_run, "peft.enabled=true", "peft.load_in_4bit=true", "peft.r=4",
                 "reference.mode=adapter", "train.bf16=true"]) == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 3
