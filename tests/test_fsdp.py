"""FSDP2 on 2 CPU processes (gloo) trains to the weights DDP reaches, for DPO and for RRPO's token-KL path.

Both log-prob paths run the LM head outside the model's forward (``prefopt.trainer.logps.response_logits``); under
FSDP2 that head lives in the root module's parameter group, whose gradients must still be reduce-scattered. The
worker (tests/fsdp_worker.py) says why the model is sharded with PyTorch's ``fully_shard`` rather than accelerate.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.conftest import accelerate_launch

WORKER = ["-m", "tests.fsdp_worker"]  # as a module: a script's folder (tests/) would shadow the losses package


@pytest.mark.skipif(shutil.which("accelerate") is None, reason="accelerate CLI not on PATH")
def test_fsdp_reaches_the_ddp_weights_for_dpo_and_rrpo(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = accelerate_launch()
    out = tmp_path / "fsdp.json"
    done = subprocess.run([*launch, *WORKER, str(out), "dpo", "rrpo"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for loss, result in json.loads(out.read_text()).items():
        assert result["sharded"] and result["names"], (loss, result)  # every parameter really split in two
        assert result["moved"] > 1e-3, (loss, result)  # three Adam steps at lr 1e-2 moved the weights
        assert result["max_diff"] < 1e-5, (loss, result)  # fp32 tolerance
