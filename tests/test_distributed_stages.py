"""Two processes (accelerate, gloo on CPU): every sharded stage gives bit for bit what one process computes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import torch

from tests.conftest import accelerate_launch
from tests.distributed_stages import stage_outputs

WORKER = ["-m", "tests.distributed_stages"]  # as a module: a script's folder (tests/) would shadow the losses package


@pytest.mark.skipif(shutil.which("accelerate") is None, reason="accelerate CLI not on PATH")
def test_every_sharded_stage_equals_one_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = accelerate_launch()
    done = subprocess.run([*launch, *WORKER, str(tmp_path / "two" / "out.json")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    two = json.loads((tmp_path / "two" / "out.json").read_text())
    assert two["processes"] == 2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = json.loads(json.dumps(stage_outputs(tmp_path / "one" / "cache")))  # tuples → lists, as the file
    finally:
        torch.set_num_threads(threads)
    assert one.keys() == two["outputs"].keys()
    for stage, values in one.items():
        assert two["outputs"][stage] == values, f"{stage} differs between 2 processes and 1"
