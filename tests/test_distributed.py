"""Two processes (accelerate, gloo on CPU) against one: the same loss curve with the same global batch, and the same
round data (rows, scores, CHES, reference log-probs, held-out reward) when every stage is sharded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import accelerate_launch
from tests.test_cli import local_run  # noqa: F401  (fixture)


def _losses(path):
    return [json.loads(line)["loss"] for line in path.read_text().splitlines() if '"loss"' in line]


@pytest.mark.skipif(shutil.which("accelerate") is None, reason="accelerate CLI not on PATH")
def test_two_processes_match_one_with_the_same_global_batch(local_run, tmp_path):  # noqa: F811
    common = [a for a in local_run if not a.startswith(("output_dir=", "train.per_device_batch_size="))]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [*accelerate_launch(), "-m", "prefopt.train"]
    two = subprocess.run([*launch, *common, "train.per_device_batch_size=2", f"output_dir={tmp_path / 'two'}"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run([sys.executable, "-m", "prefopt.train", *common, "train.per_device_batch_size=4",
                          f"output_dir={tmp_path / 'one'}"], env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = _losses(tmp_path / "two" / "metrics.jsonl"), _losses(tmp_path / "one" / "metrics.jsonl")
    assert len(a) == len(b) == 3 and a[1] != a[0]
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-4


def _rows(path):
    return sorted(path.read_text().splitlines())


@pytest.mark.skipif(shutil.which("accelerate") is None, reason="accelerate CLI not on PATH")
def test_a_round_on_two_processes_has_the_data_of_one(tmp_path, monkeypatch):
    """Self-generated round on the tiny world: the same rows and scores, CHES values, reference log-probs and
    held-out reward whether 1 or 2 processes generate, score, filter, precompute and evaluate."""
    common = ["recipe=dpo", "data.n_prompts=20", "generation.k=4", "generation.batch_size=8", "train.max_steps=1",
              "eval.n_prompts=8", "eval.samples_per_prompt=2", "reference.mode=precomputed", "ches.drop_fraction=0.25"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PREFOPT_CACHE": str(tmp_path / "cache-two")}
    launch = [*accelerate_launch(), "-m", "prefopt.train"]
    two = subprocess.run([*launch, *common, "train.per_device_batch_size=2", f"output_dir={tmp_path / 'two'}"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    monkeypatch.setenv("PREFOPT_CACHE", str(tmp_path / "cache-one"))
    from prefopt.train import main

    assert main([*common, "train.per_device_batch_size=4", f"output_dir={tmp_path / 'one'}"]) == 0
    one_round, two_round = tmp_path / "one" / "round_0", tmp_path / "two" / "round_0"
    assert len(_rows(one_round / "data.jsonl")) > 5
    assert _rows(two_round / "data.jsonl") == _rows(one_round / "data.jsonl")  # every row, scores included
    assert _rows(two_round / "ches_scores.jsonl") == _rows(one_round / "ches_scores.jsonl")
    ref_one, = (tmp_path / "cache-one" / "ref_logps").glob("*.json")
    ref_two, = (tmp_path / "cache-two" / "ref_logps").glob("*.json")
    assert ref_one.name == ref_two.name and json.loads(ref_one.read_text()) == json.loads(ref_two.read_text())
    summary = lambda d: json.loads((tmp_path / d / "summary.json").read_text())
    assert summary("two")["reward_before"] == summary("one")["reward_before"]


@pytest.mark.skipif(shutil.which("accelerate") is None, reason="accelerate CLI not on PATH")
def test_kto_trains_on_two_processes_with_one_kl_baseline(local_run, tmp_path):  # noqa: F811
    """KTO's KL baseline is a collective over the processes (``losses.kto.kl_baseline``): the loss and its metrics
    call it at every step on every process, so the run finishes (no process waits alone) and logs one z₀."""
    common = [a for a in local_run if not a.startswith(("output_dir=", "train.per_device_batch_size="))]
    run = subprocess.run([*accelerate_launch(), "-m", "prefopt.train", *common, "loss.name=kto",
                          "train.per_device_batch_size=2", f"output_dir={tmp_path / 'kto'}"],
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "kto" / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in rows if "loss" in r and "kl" in r]
    assert len(logged) == 3 and all(r["kl"] >= 0 and r["loss"] == r["loss"] for r in logged)
