"""Safe runs (issue 9), through the real CLI: every mistake is an `error:` line before anything is written, nothing
the user had is lost, no NaN reaches the weights, resume tells the truth, and the reward contract holds."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from prefopt.run import reward_drop_warning
from prefopt.run_folder import MARKER
from prefopt.train import main
from prefopt.trainer.safety import NonFiniteError, NonFiniteGuard, last_usable_checkpoint
from tests.conftest import make_model
from tests.test_cli import PAIRS, local_run  # noqa: F401  (fixture)

CALLS: list[tuple] = []


def strict_reward(prompt, response):
    """The documented contract: plain strings in, a number out."""
    assert isinstance(prompt, str) and isinstance(response, str), (type(prompt), type(response))
    CALLS.append((prompt, response))
    return float(sum(c.isdigit() for c in response))


def nan_reward(prompt, response):
    return math.nan


def broken_reward(prompt, response):
    raise KeyError("score")


def _errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]


# ---- 1. checked before anything happens -------------------------------------------------------------------------
@pytest.mark.parametrize("override, needle", [
    ("train.learning_rate=-1", "train.learning_rate = -1: a learning rate must be a number > 0"),
    ("train.per_device_batch_size=0", "train.per_device_batch_size must be >= 1"),
    ("generation.top_p=1.5", "generation.top_p must be in (0, 1]"),
    ("rounds=0", "rounds must be >= 1"),
    ("pairing.rule=nope", "pairing.rule: unknown rule 'nope'"),
    ("pairing.options={min_gap: 1}", "pairing.options (rule best_vs_worst): unknown option(s) min_gap"),
    ("weighting={type: soft_target, scale: 1, bogus: 2}", "weighting (soft_target): unknown option(s) bogus"),
    ("ches={keep_fraction: 2}", "ches: keep_fraction must lie in (0, 1]"),
    ("reference.mode=adapter", "reference.mode=adapter uses the PEFT base as the reference, but peft.enabled"),
    ("reward=tests.test_safe_runs:missing", "reward: reward function 'tests.test_safe_runs:missing'"),
    ("reward=tests.test_safe_runs:nan_reward", "returned nan for prompt 0 ('sort 15:'), response 0; expected a "
                                               "finite number (the pre-flight probe: reward('sort 15:', ' 15'))"),
    ("reward=tests.test_safe_runs:broken_reward", "raised KeyError: 'score' on prompt 0 ('sort 15:'), response 0 (the "
                                                  "pre-flight probe: reward('sort 15:'"),
    (("loss.name=lipo", "pairing.rule=best_vs_worst"),  # pairing.rule=auto would give LiPO the whole list
     "loss lipo learns from whole lists, but pairing.rule=best_vs_worst turns each list"),
])
def test_config_mistakes_are_one_error_line_and_nothing_is_written(local_run, tmp_path, capsys, override,  # noqa: F811
                                                                   needle):
    assert main([*local_run, *(override if isinstance(override, tuple) else [override])]) == 2
    errors = _errors(capsys)
    assert errors and any(needle in e for e in errors), errors
    assert not (tmp_path / "run").exists()


def test_every_bad_row_is_named_by_line_and_the_users_field(local_run, tmp_path, capsys):  # noqa: F811
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(PAIRS[0]) + "\n" + json.dumps({**PAIRS[1], "chosen": ""}) + "\n"
                   + json.dumps({**PAIRS[2], "rejected": 4}) + "\n")
    assert main([*local_run, f"data.train={bad}"]) == 2
    assert _errors(capsys) == [f"error: {bad} line 2: field 'chosen' is empty",
                               f"error: {bad} line 3: field 'rejected' must be a string or a list of chat messages, "
                               "got int"]
    assert not (tmp_path / "run").exists()


def test_data_with_no_preference_is_refused_in_the_users_terms(local_run, tmp_path, capsys):  # noqa: F811
    same = tmp_path / "same.jsonl"
    same.write_text("".join(json.dumps({**p, "rejected": p["chosen"]}) + "\n" for p in PAIRS))
    assert main([*local_run, f"data.train={same}"]) == 2
    [error] = _errors(capsys)
    assert f"all {len(PAIRS)} rows carry no preference ({len(PAIRS)} had identical responses" in error


# ---- 2. nothing the user had is lost ----------------------------------------------------------------------------
def test_a_folder_prefopt_did_not_make_is_never_emptied(local_run, tmp_path, capsys):  # noqa: F811
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "thesis.tex").write_text("mine")
    assert main(local_run) == 2
    assert "is not empty" in _errors(capsys)[0]
    assert main([*local_run, "overwrite=true"]) == 2
    assert "holds files that prefopt did not make" in _errors(capsys)[0]
    assert (tmp_path / "run" / "thesis.tex").read_text() == "mine" and not (tmp_path / "run" / MARKER).exists()


def test_overwrite_never_empties_the_working_directory(local_run, tmp_path, capsys, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    (tmp_path / MARKER).write_text("{}")  # even one that looks like a run
    args = [a for a in local_run if not a.startswith("output_dir=")]
    assert main([*args, "output_dir=.", "overwrite=true"]) == 2
    assert "it is the working directory" in _errors(capsys)[0]
    assert (tmp_path / "pairs.jsonl").exists()


def test_the_old_run_stays_intact_when_the_new_one_fails_validation(local_run, tmp_path, capsys):  # noqa: F811
    assert main(local_run) == 0
    out = tmp_path / "run"
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main([*local_run, "overwrite=true", "train.per_device_batch_size=0"]) == 2
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert main([*local_run, "overwrite=true", "train.max_steps=2"]) == 0  # a valid overwrite replaces it
    assert json.loads((out / "summary.json").read_text())["steps"] == 2


# ---- 3. no poisoned weights -------------------------------------------------------------------------------------
def test_a_non_finite_gradient_stops_before_the_optimizer_step():
    model = make_model()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    next(model.parameters()).grad[0, 0] = math.nan

    class Args:
        output_dir = "/nonexistent"

    class State:
        global_step = 6

    with pytest.raises(NonFiniteError, match="the gradient is not finite at step 7; training stopped before the "
                                             "optimizer step"):
        NonFiniteGuard().on_pre_optimizer_step(Args(), State(), None, model=model)


def test_a_diverging_run_saves_no_poisoned_weights_and_names_the_last_good_checkpoint(local_run, tmp_path,  # noqa: F811
                                                                                       capsys):
    args = [*local_run, "train.learning_rate=1e30", "train.max_steps=6", "train.save_steps=1",
            "train.max_grad_norm=0", "train.per_device_batch_size=2"]
    assert main(args) == 1  # a failure after the start: one error line naming the stage
    [error] = _errors(capsys)
    checkpoints = tmp_path / "run" / "round_0" / "checkpoints"
    last = last_usable_checkpoint(checkpoints)
    assert error.startswith("error: round 0 train failed: the loss (nan) is not finite at step")
    assert f"the last finite checkpoint is {last}" in error and "resume=true" in error
    for folder in checkpoints.iterdir():  # every checkpoint written is finite
        state = load_file(str(folder / "model.safetensors"))
        assert all(torch.isfinite(t).all() for t in state.values())
    assert not (tmp_path / "run" / "model").exists()


def test_resume_skips_half_written_and_poisoned_checkpoints_and_matches_an_uninterrupted_run(local_run, tmp_path,  # noqa: F811,E501
                                                                                             capsys):
    straight = [a for a in local_run if not a.startswith("output_dir=")] + ["train.save_steps=1"]
    assert main([*straight, f"output_dir={tmp_path / 'straight'}"]) == 0
    assert main([*straight, f"output_dir={tmp_path / 'run'}"]) == 0
    out = tmp_path / "run"
    # a kill during the step-3 save, after a NaN somehow reached checkpoint 2; the round never finished
    for name in ("DONE", "model", "round.json"):
        target = out / "round_0" / name
        target.unlink() if target.is_file() else __import__("shutil").rmtree(target)
    ckpts = out / "round_0" / "checkpoints"
    (ckpts / "checkpoint-3" / "trainer_state.json").unlink()
    poisoned = load_file(str(ckpts / "checkpoint-2" / "model.safetensors"))
    next(iter(poisoned.values()))[0] = math.nan
    save_file(poisoned, str(ckpts / "checkpoint-2" / "model.safetensors"), metadata={"format": "pt"})
    assert last_usable_checkpoint(ckpts) == ckpts / "checkpoint-1"

    assert main([*straight, f"output_dir={out}", "resume=true", "train.logging_steps=2"]) == 0  # neutral key
    a = load_file(str(out / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "straight" / "model" / "model.safetensors"))
    assert max((a[k] - b[k]).abs().max().item() for k in a) == 0.0  # bit-exact on CPU
    steps = [(r["round"], r["step"]) for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
             if "loss" in r]
    assert steps == [(0, 1), (0, 2), (0, 3)]  # no duplicate rows
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["tokens"] == json.loads(
        (tmp_path / "straight" / "summary.json").read_text())["tokens"]


def test_resume_with_settings_that_change_results_is_refused(local_run, tmp_path, capsys):  # noqa: F811
    assert main(local_run) == 0
    config = (tmp_path / "run" / "config.yaml").read_text()
    assert main([*local_run, "resume=true", "loss.beta=0.5", "train.seed=3"]) == 2
    [error] = _errors(capsys)
    assert "loss.beta: 0.1 in the run, 0.5 now" in error and "train.seed: 0 in the run, 3 now" in error
    assert main([*local_run, "resume=true", "threads=1", "train.logging_steps=5"]) == 0
    assert (tmp_path / "run" / "config.yaml").read_text() == config  # never silently rewritten
    # pairing.rule=auto compares as the rule it picks (a run saved before `auto` named best_vs_worst)
    assert main([*local_run, "resume=true", "pairing.rule=best_vs_worst"]) == 0
    assert main([*local_run, "resume=true", "pairing.rule=all_pairs"]) == 2
    assert "pairing.rule: 'best_vs_worst' in the run, 'all_pairs' now" in _errors(capsys)[0]


def test_a_sharp_fall_of_the_reward_is_a_loud_warning():
    before = {"mean": 0.6, "ci95_low": 0.58, "ci95_high": 0.62}
    assert reward_drop_warning(before, {"mean": 0.2, "ci95_low": 0.18, "ci95_high": 0.22}).startswith(
        "the held-out reward FELL from 0.600 to 0.200")
    assert reward_drop_warning(before, {"mean": 0.57, "ci95_low": 0.55, "ci95_high": 0.59}) is None  # overlap
    assert reward_drop_warning(before, {"mean": 0.7, "ci95_low": 0.68, "ci95_high": 0.72}) is None


# ---- 6. one reward contract -------------------------------------------------------------------------------------
def test_the_reward_gets_plain_strings_everywhere_and_eval_prompts_are_held_out(tmp_path, capsys):
    """The tiny world's tokenizer has a chat template, so prompts travel as chat messages; the user's reward still
    sees the text of the last user turn, in scoring and in the before/after evaluation alike. The evaluation's
    prompts are the last tenth of the user's own prompt file and never appear in the round's data."""
    prompts = [f"sort {a}{b}{c}" for a in "123" for b in "456" for c in "789"]  # 27
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    CALLS.clear()
    args = ["reward=tests.test_safe_runs:strict_reward", f"data.prompts={path}", "data.n_prompts=8", "threads=1",
            "train.max_steps=1", "train.per_device_batch_size=2", "generation.k=2", "eval.samples_per_prompt=1",
            f"output_dir={tmp_path / 'run'}"]
    assert main(args) == 0
    assert "reward before/after on 2 held-out prompts of data.prompts" in capsys.readouterr().out
    held = set(prompts[-2:])
    assert held <= {p for p, _ in CALLS}  # evaluated
    trained = [json.loads(x)["prompt"] for x in (tmp_path / "run" / "round_0" / "data.jsonl").read_text().split("\n")
               if x]
    assert trained and not held & {m[-1]["content"] if isinstance(m, list) else m for m in trained}
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["reward_before"]["n"] == 2


def constant_reward(prompt, response):
    return 0.5


def test_a_reward_that_never_separates_samples_says_so(tmp_path, capsys):
    args = ["reward=tests.test_safe_runs:constant_reward", "data.n_prompts=4", "train.max_steps=1", "threads=1",
            "eval.enabled=false", f"output_dir={tmp_path / 'run'}"]
    assert main(args) == 1
    [error] = _errors(capsys)
    assert "round 0: no list with a preference is left after scoring and pairing" in error


def test_summary_and_round_records_are_written_atomically(local_run, tmp_path):  # noqa: F811
    assert main(local_run) == 0
    out = tmp_path / "run"
    assert not [p for p in out.rglob("*.tmp")] and not [p for p in out.rglob(".*.old")]
    assert (out / MARKER).exists() and os.path.isdir(out / "model")
