"""Two processes (accelerate, gloo on CPU) with half the batch each reach the loss curve of one process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.test_cli import local_run  # noqa: F401  (fixture)


def _losses(path):
    return [json.loads(line)["loss"] for line in path.read_text().splitlines() if '"loss"' in line]


@pytest.mark.skipif(shutil.which("accelerate") is None, reason="accelerate CLI not on PATH")
def test_two_processes_match_one_with_the_same_global_batch(local_run, tmp_path):  # noqa: F811
    common = [a for a in local_run if not a.startswith(("output_dir=", "train.per_device_batch_size="))]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [shutil.which("accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "prefopt.train"]
    two = subprocess.run([*launch, *common, "train.per_device_batch_size=2", f"output_dir={tmp_path / 'two'}"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run([sys.executable, "-m", "prefopt.train", *common, "train.per_device_batch_size=4",
                          f"output_dir={tmp_path / 'one'}"], env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = _losses(tmp_path / "two" / "metrics.jsonl"), _losses(tmp_path / "one" / "metrics.jsonl")
    assert len(a) == len(b) == 3 and a[1] != a[0]
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-4
