"""The failure contract (issue 21), one CLI test per class of fault: a run ends in success (0), pre-flight `error:`
lines (2, nothing written), one `error:` line after the start (1, naming the stage, the item and whether
resume=true continues), or one line on Ctrl-C/SIGTERM (130/143, resumable). docs/reliability.md lists each case."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from prefopt.rounds.generate import _prompt_ids
from prefopt.rounds.scoring import ScoringError, call_reward
from prefopt.run_folder import FINGERPRINTS, LOCK
from prefopt.train import main
from prefopt.world.tasks import reward as world_reward
from tests.conftest import make_tokenizer
from tests.test_cli import PAIRS, local_run  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent


def _errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]


def _files(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# rewards of the tests: (prompt, response) -> number
def digits(prompt, response):
    return float(sum(c.isdigit() for c in response))


def boom_on_40(prompt, response):
    if "7777" in prompt:
        raise KeyError("score")
    return digits(prompt, response)


def nan_on_40(prompt, response):
    return math.nan if "7777" in prompt else digits(prompt, response)


def as_bool(prompt, response):
    return world_reward(prompt, response) > 0.3


def as_tensor(prompt, response):
    return torch.tensor(world_reward(prompt, response))


def slow_on_3(prompt, response):
    if "3333" in prompt:
        time.sleep(5)
    return digits(prompt, response)


def _prompts(tmp_path, n=48, special=None) -> Path:
    rows = [f"sort {i:02d}{i % 7}" for i in range(n)]
    for index, text in (special or {}).items():
        rows[index] = text
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in rows))
    return path


def _self_generated(tmp_path, reward: str, *extra: str) -> list[str]:
    return [f"reward=tests.test_fault_contract:{reward}", "train.max_steps=1", "threads=1", "eval.enabled=false",
            "generation.k=2", "generation.max_new_tokens=4", "train.per_device_batch_size=2",
            f"output_dir={tmp_path / 'run'}", *extra]


# ---- the contract: exit 1 with one line; debug=true adds the traceback; SIGTERM ----------------------------------
def test_a_failure_after_the_start_is_one_line_with_stage_item_and_resume_hint(tmp_path, capsys):
    prompts = _prompts(tmp_path, special={40: "sort 7777"})
    assert main(_self_generated(tmp_path, "boom_on_40", f"data.prompts={prompts}", "data.n_prompts=48")) == 1
    err = capsys.readouterr().err
    [error] = [line for line in err.splitlines() if line.startswith("error: ")]
    assert error.startswith("error: round 0 score failed: reward function tests.test_fault_contract:boom_on_40 "
                            "raised KeyError: 'score' on prompt 40 ('sort 7777'), response 0")
    assert "resume=true to continue" in error and "Traceback" not in err


def test_debug_adds_the_traceback_above_the_one_error_line(tmp_path, capsys):
    prompts = _prompts(tmp_path, special={40: "sort 7777"})
    args = _self_generated(tmp_path, "boom_on_40", f"data.prompts={prompts}", "data.n_prompts=48", "debug=true")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "KeyError: 'score'" in err
    assert len([line for line in err.splitlines() if line.startswith("error: ")]) == 1
    assert err.strip().splitlines()[-1].startswith("error: round 0 score failed")


def test_sigterm_is_one_line_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "prefopt.train", "train.max_steps=400", "train.save_steps=2", "threads=1",
            "data.n_prompts=8", "eval.enabled=false", f"output_dir={out}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:  # wait until training has started and saved a checkpoint or two
        if "round 0 reference" in line:
            break
    deadline = time.time() + 120
    while not list((out / "round_0" / "checkpoints").glob("checkpoint-*")) and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "[prefopt] terminated (SIGTERM): finished rounds and saved checkpoints are kept" in err
    assert "Traceback" not in err and not (out / LOCK).exists()  # the lock went with the run
    resumed = subprocess.run([*args[:3], "train.max_steps=6", *args[4:], "resume=true"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
    # max_steps is not result-neutral: the resumed command must be the same; the run then completes
    assert resumed.returncode == 2 and "train.max_steps: 400 in the run, 6 now" in resumed.stderr
    resumed = subprocess.run([*args, "resume=true", "train.max_steps=400"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resume" in resumed.stdout or (out / "summary.json").exists()


# ---- a run lock ---------------------------------------------------------------------------------------------------
def test_a_second_run_on_a_folder_in_use_is_refused_naming_the_holder(local_run, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / LOCK).write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(), "started": "now"}))
        assert main([*local_run, "overwrite=true"]) == 2
        [error] = _errors(capsys)
        assert f"is in use by another prefopt run (process {holder.pid} on host {socket.gethostname()}" in error
        assert [p.name for p in out.iterdir()] == [LOCK]  # nothing written, nothing emptied
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_is_taken_over_with_a_notice(local_run, tmp_path, capsys):  # noqa: F811
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK).write_text(json.dumps({"pid": gone.pid, "host": socket.gethostname(), "started": "then"}))
    assert main([*local_run, "resume=false"]) == 2  # the folder is not empty: the stale lock is not a run
    capsys.readouterr()
    (out / ".prefopt-run").write_text("{}")
    assert main([*local_run, "overwrite=true"]) == 0
    assert f"took over the stale run lock of process {gone.pid}" in capsys.readouterr().out
    assert not (out / LOCK).exists() and (out / "summary.json").exists()


# ---- output paths, as typed -----------------------------------------------------------------------------------------
def test_output_dir_is_the_folder_typed(local_run, tmp_path, capsys, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    args = [a for a in local_run if not a.startswith("output_dir=")]
    other = tmp_path / "runs" / "run"  # the default folder: `output_dir=~` (YAML null) must never mean it
    other.mkdir(parents=True)
    (other / ".prefopt-run").write_text("{}")
    (other / "keep.txt").write_text("mine")
    for typed, needle in (("~", "starts with '~', which is not expanded"), ("", "is empty or has spaces")):
        assert main([*args, f"output_dir={typed}", "overwrite=true"]) == 2
        assert needle in _errors(capsys)[0]
    assert main([*args, "output_dir=1_000", "train.max_steps=1"]) == 0  # YAML would read 1000
    assert (tmp_path / "1_000" / "summary.json").exists() and not (tmp_path / "1000").exists()
    assert (other / "keep.txt").read_text() == "mine"


def test_overwrite_never_empties_the_target_of_a_link(local_run, tmp_path, capsys):  # noqa: F811
    assert main(local_run) == 0
    before = _files(tmp_path / "run")
    (tmp_path / "link").symlink_to(tmp_path / "run")
    args = [a for a in local_run if not a.startswith("output_dir=")]
    assert main([*args, f"output_dir={tmp_path / 'link'}", "overwrite=true"]) == 2
    assert "it is a symbolic link to" in _errors(capsys)[0]
    assert _files(tmp_path / "run") == before


def test_an_output_dir_under_a_file_or_on_a_read_only_disk_is_one_error_line(local_run, tmp_path, capsys):  # noqa: F811
    args = [a for a in local_run if not a.startswith("output_dir=")]
    (tmp_path / "afile").write_text("x")
    assert main([*args, f"output_dir={tmp_path / 'afile' / 'run'}"]) == 2
    assert "afile is a file, not a folder" in _errors(capsys)[0]
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o555)
    target = locked / "run" if not os.access(locked, os.W_OK) else Path("/sys/prefopt-test-run")  # root writes anyway
    try:
        assert main([*args, f"output_dir={target}"]) == 2
        [error] = _errors(capsys)
        assert f"output_dir {target}" in error and ("cannot be written" in error or "cannot be created" in error)
    finally:
        locked.chmod(0o755)
    assert not (locked / "run").exists()


# ---- resume verifies what it reads ----------------------------------------------------------------------------------
@pytest.fixture
def killed(local_run, tmp_path):  # noqa: F811
    """An uninterrupted run, and the same run killed in round 0 after its step-3 checkpoint."""
    straight = [a for a in local_run if not a.startswith("output_dir=")] + ["train.save_steps=1"]
    assert main([*straight, f"output_dir={tmp_path / 'straight'}"]) == 0
    assert main([*straight, f"output_dir={tmp_path / 'run'}"]) == 0
    for name in ("DONE", "model", "round.json"):
        target = tmp_path / "run" / "round_0" / name
        target.unlink() if target.is_file() else shutil.rmtree(target)
    return [*straight, f"output_dir={tmp_path / 'run'}", "resume=true"]


def test_resume_refuses_a_hand_edited_round_data_file(killed, tmp_path, capsys):
    data = tmp_path / "run" / "round_0" / "data.jsonl"
    rows = [json.loads(x) for x in data.read_text().splitlines()]
    rows[0]["scores"] = rows[0]["scores"][::-1]  # swapped pair
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = _files(tmp_path / "run")
    assert main(killed) == 2
    [error] = _errors(capsys)
    assert "resume=true: round_0/data.jsonl changed since this run wrote it" in error
    assert _files(tmp_path / "run") == before


def test_resume_refuses_a_deleted_metrics_file(killed, tmp_path, capsys):
    (tmp_path / "run" / "metrics.jsonl").unlink()
    assert main(killed) == 2
    assert "resume=true: metrics.jsonl is missing" in _errors(capsys)[0]


def test_a_truncated_checkpoint_is_skipped_for_the_previous_one(killed, tmp_path, capsys):
    weights = tmp_path / "run" / "round_0" / "checkpoints" / "checkpoint-3" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert main(killed) == 0
    out = capsys.readouterr().out
    assert "[prefopt] resume: skipped checkpoints/checkpoint-3: round_0/checkpoints/checkpoint-3/model.safetensors " \
           "changed since this run wrote it" in out
    assert "continuing from checkpoint-2" in out
    a = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "straight" / "model" / "model.safetensors"))
    assert max((a[k] - b[k]).abs().max().item() for k in a) == 0.0  # bit-exact on CPU from the earlier checkpoint


def test_every_file_a_resume_reads_has_a_fingerprint(killed, tmp_path):
    store = json.loads((tmp_path / "run" / FINGERPRINTS).read_text())
    for name in ("config.yaml", "round_0/data.jsonl", "metrics.jsonl", "round_0/checkpoints/checkpoint-3/"
                 "model.safetensors", "round_0/checkpoints/checkpoint-3/optimizer.pt",
                 "round_0/checkpoints/checkpoint-3/trainer_state.json"):
        assert name in store and len(store[name]["sha256"]) == 64, name


# ---- prompt files -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, needle", [
    ("", "no prompts in it (the file is empty or holds only blank lines)"),
    ("\n\n   \n", "no prompts in it"),
    (json.dumps({"prompt": "   "}) + "\n", "line 1: field 'prompt' is empty"),
    (json.dumps({"prompt": "sort 12"}) + "\n" + json.dumps({"prompt": "sort 12"}) + "\n",
     "every prompt is held out for the reward before/after"),
])
def test_bad_prompt_files_are_refused_before_anything_is_written(tmp_path, capsys, text, needle):
    path = tmp_path / "prompts.jsonl"
    path.write_text(text)
    args = _self_generated(tmp_path, "digits", f"data.prompts={path}", "eval.enabled=true")
    assert main(args) == 2
    errors = _errors(capsys)
    assert errors and needle in errors[0], errors
    assert not (tmp_path / "run").exists()


def test_an_overlong_prompt_is_cut_before_generation(tmp_path, capsys):
    tok = make_tokenizer(chat=True)
    [row] = _prompt_ids(tok, ["sort " + "12" * 25_000], chat_template=True, max_prompt_tokens=64)
    assert len(row) == 64 and row == _prompt_ids(tok, ["sort " + "12" * 25_000], chat_template=True)[0][-64:]
    prompts = _prompts(tmp_path, n=6, special={2: "sort " + "12" * 25_000})  # 50,005 characters
    args = _self_generated(tmp_path, "digits", f"data.prompts={prompts}", "data.n_prompts=6",
                           "data.max_prompt_length=64")
    assert main(args) == 0  # without the cut: a 50,000-token prefill


# ---- reward failures mid-run --------------------------------------------------------------------------------------
def test_a_nan_on_the_40th_prompt_names_the_global_prompt(tmp_path, capsys):
    prompts = _prompts(tmp_path, special={40: "sort 7777"})
    assert main(_self_generated(tmp_path, "nan_on_40", f"data.prompts={prompts}", "data.n_prompts=48")) == 1
    [error] = _errors(capsys)
    assert "returned nan for prompt 40 ('sort 7777'), response 0; expected a finite number" in error


@pytest.mark.parametrize("reward", ["as_bool", "as_tensor"])
def test_documented_return_types_are_accepted_in_scoring_and_probe(tmp_path, capsys, reward):
    assert main(_self_generated(tmp_path, reward, "data.n_prompts=16", "generation.k=4",
                                "generation.max_new_tokens=12")) == 0


def test_numpy_scalars_and_0d_tensors_are_scores():
    for value, want in ((np.float32(0.5), 0.5), (np.int64(3), 3.0), (np.bool_(True), 1.0), (True, 1.0),
                        (torch.tensor(2.0), 2.0), (np.array(1.5), 1.5)):
        assert call_reward(lambda p, r, v=value: v, "p", "r", 0, 0, "reward") == want
    for bad in ("1.0", None, np.array([1.0, 2.0]), torch.tensor(float("inf"))):
        with pytest.raises(ScoringError, match="prompt 0 \\('p'\\), response 0"):
            call_reward(lambda p, r, v=bad: v, "p", "r", 0, 0, "reward")


def test_a_reward_slower_than_its_timeout_names_the_prompt(tmp_path, capsys):
    prompts = _prompts(tmp_path, n=6, special={3: "sort 3333"})
    args = _self_generated(tmp_path, "slow_on_3", f"data.prompts={prompts}", "data.n_prompts=6",
                           "reward_timeout_s=0.5")
    assert main(args) == 1
    [error] = _errors(capsys)
    assert "took longer than reward_timeout_s=0.5s on prompt 3 ('sort 3333')" in error


@pytest.mark.parametrize("source, needle", [
    ("def reward(p, r)\n    return 1.0\n", "importing module 'broken_reward' failed with SyntaxError"),
    ("raise RuntimeError('no GPU here')\n", "importing module 'broken_reward' failed with RuntimeError: no GPU"),
    ("import sys\nsys.exit(3)\n", "importing module 'broken_reward' failed with SystemExit"),
])
def test_a_reward_module_that_fails_to_import_is_one_error_line(tmp_path, capsys, monkeypatch, source, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken_reward.py").write_text(source)
    monkeypatch.delitem(sys.modules, "broken_reward", raising=False)
    assert main(_self_generated(tmp_path, "digits", "reward=broken_reward:reward")) == 2
    [error] = _errors(capsys)
    assert needle in error and not (tmp_path / "run").exists()


# ---- rows ---------------------------------------------------------------------------------------------------------
CHAT = {"prompt": [{"role": "user", "content": "sort 21:"}],
        "chosen": [{"role": "assistant", "content": " 12"}], "rejected": [{"role": "assistant", "content": " 21"}]}


@pytest.mark.parametrize("row, overrides, needle", [
    ({**CHAT, "chosen": [{"role": "robot", "content": " 12"}]}, [], "field 'chosen' has a message with role 'robot'"),
    ({**CHAT, "rejected": [{"role": "user", "content": " 21"}]}, [], "field 'rejected' has no 'assistant' message"),
    ({**CHAT, "prompt": [{"role": "system", "content": "be brief"}]}, [], "field 'prompt' has no 'user' message"),
    ({**PAIRS[0], "responses": ["a", "b"], "scores": [1, 0]}, [], "has both a list (responses/scores) and a pair"),
    ({"prompt": "sort 21:", "responses": [" 12", " 21", " 2"], "scores": [500, 0, 1]},
     ["recipe=lipo"], "loss lipo cannot use its scores [500, 0, 1]"),
    ({**PAIRS[0], "weight": 0.5}, [], "line 1: field 'weight' is missing, but 1 of 12 rows have one"),
    ({**PAIRS[0], "segments": [[[0, 99]], None]}, ["recipe=rrpo"], "segments[0]' span 0 = [0, 99] is not a [start, "
                                                                     "end) character range"),
    ({**PAIRS[0], "segments": [[[0, 1]]]}, ["recipe=rrpo"], "field 'segments' must be a list with one entry per "),
])
def test_bad_rows_are_refused_before_the_run_folder_exists(local_run, tmp_path, capsys, row, overrides,  # noqa: F811
                                                           needle):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(p) + "\n" for p in PAIRS[1:]) + json.dumps(row) + "\n")
    args = [a for a in local_run if not a.startswith("data.train=")]
    assert main([*args, f"data.train={bad}", *overrides]) == 2
    errors = _errors(capsys)
    assert any(needle in e for e in errors), errors
    assert "weight" in needle or any(f"{bad} line {len(PAIRS)}" in e for e in errors), errors
    assert not (tmp_path / "run").exists()


# ---- configuration ------------------------------------------------------------------------------------------------
def test_a_missing_interpolation_is_one_error_line(local_run, tmp_path, capsys):  # noqa: F811
    assert main([*local_run, "train.seed=${nope}"]) == 2
    assert _errors(capsys) == ["error: train.seed: Interpolation key 'nope' not found"]
    assert main([*local_run, "model=${oc.env:PREFOPT_NO_SUCH_VARIABLE}"]) == 2
    assert "Environment variable 'PREFOPT_NO_SUCH_VARIABLE' not found" in _errors(capsys)[0]
    assert not (tmp_path / "run").exists()


def test_a_secret_from_the_environment_is_used_but_never_written(local_run, tmp_path, monkeypatch):  # noqa: F811
    secret = tmp_path / "tokenizer-s3cr3t"  # stands for a token: a value only the environment should hold
    make_tokenizer().save_pretrained(secret)
    monkeypatch.setenv("PREFOPT_TEST_SECRET", str(secret))
    args = [*local_run, "tokenizer=${oc.env:PREFOPT_TEST_SECRET}", "train.max_steps=1"]
    assert main(args) == 0  # used
    out = tmp_path / "run"
    assert "tokenizer: ${oc.env:PREFOPT_TEST_SECRET}" in (out / "config.yaml").read_text()
    assert not [p for p, b in _files(out).items() if b"s3cr3t" in b]  # in no file of the run
    assert main([*args, "resume=true"]) == 0
