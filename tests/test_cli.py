"""The command line: help, key validation, output-folder safety, and an end-to-end run on local model + data."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from losses import LOSSES
from prefopt.cli_help import blocks, loss_rows, show
from prefopt.config import load_config, valid_keys
from prefopt.train import main

PAIRS = [{"prompt": f"sort {a}{b}:", "chosen": f" {min(a, b)}{max(a, b)}", "rejected": f" {max(a, b)}{min(a, b)}x"}
         for a in range(1, 5) for b in range(5, 8)]


@pytest.fixture
def local_run(tmp_path, model_dir):
    """The tiny model saved as a local HF folder, and a TRL-style pairs file."""
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    return [f"model={model_dir}", f"data.train={data}", "train.max_steps=3", "train.per_device_batch_size=4",
            "train.logging_steps=1", f"output_dir={tmp_path / 'run'}"]


def test_help_lists_recipes_losses_and_every_key_with_default_and_description(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    recipes, rest = out.split("recipes (recipe=NAME):")[1].split("losses (loss.name=NAME")
    losses, keys = rest.split("keys (key=default  description):")
    assert "dpo" in recipes.split() and "Listwise Preference Optimization loss" in losses
    for name, summary, defaults, paper in loss_rows():  # from the registry: a new loss shows up by itself
        assert f"  {name} " in losses and summary in losses and paper in losses
        assert ", ".join(f"{k}={v}" for k, v in defaults.items()) in losses
    lines = keys.splitlines()
    for block, (description, rows) in blocks().items():
        assert f"{block}: {description}" in lines
        for key, default, help_ in rows:
            assert any(line.startswith(f"  {key}={show(default)} ") and line.endswith(help_) for line in lines), key
    assert "  train.max_steps=0 " in keys and "optimizer steps per round" in keys


def test_every_config_key_has_a_one_line_description():
    rows = [row for _, rows in blocks().values() for row in rows]
    assert len(rows) == len(valid_keys()) and {r[0] for r in rows} == set(valid_keys())
    assert all(help_ and "\n" not in help_ and len(help_) < 120 for _, _, help_ in rows)


def test_help_for_one_block(capsys):
    assert main(["--help", "train"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("train: ") and "train.learning_rate=1e-06" in out
    assert "data." not in out and "recipes" not in out
    assert main(["--help", "nope"]) == 2
    assert "no help block 'nope'; valid: run, data" in capsys.readouterr().err


def test_help_after_a_recipe_shows_its_resolved_values(capsys):
    assert main(["recipe=lipo", "train.max_steps=7", "--help"]) == 0
    out = capsys.readouterr().out
    assert "recipe lipo: LiPO-λ on the tiny embedded world" in out
    assert "loss.name=lipo: Listwise Preference Optimization loss (LiPO-λ) (Liu et al., 2024" in out
    assert re.search(r"loss.beta=1.0 +\(world overlay; default: 0.05\)", out)  # the tiny world's, the loss's default
    assert re.search(r"train.max_steps=7 .*\(command line; default: 0\)", out)
    assert re.search(r"generation.k=8 .*\(recipe; default: 4\)", out)
    assert re.search(r"train.seed=0 +seed of training[^(]*$", out, re.M)  # unchanged: no source note


def test_help_for_a_real_model_shows_real_model_values_and_no_tiny_world(capsys):
    """Acceptance of issue 19: a hub model gets the paper's β, its own lengths and threads unset."""
    assert main(["recipe=dpo", "model=some/model", "--help"]) == 0
    out = capsys.readouterr().out
    assert "world overlay (none: not a world model)" in out
    assert re.search(r"^  loss.beta=0.1$", out, re.M)  # the loss registry's (the paper's), no source note
    assert re.search(r"^  threads=0 +torch CPU threads; 0 = unset \(torch's default[^(]*\)$", out, re.M)
    assert re.search(r"^  data.max_length=null +.*the model's context length$", out, re.M)
    assert re.search(r"^  generation.max_new_tokens=null +.*the model's generation_config", out, re.M)
    assert re.search(r"^  train.learning_rate=1e-06 ", out, re.M)
    assert "world overlay;" not in out and "(world overlay" not in out


def test_bare_prefopt_prints_usage_and_trains_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([]) == 0
    out = capsys.readouterr().out
    examples = out.split("examples:\n")[1].split("\n\n")[0]
    assert out.startswith("usage: prefopt recipe=NAME") and examples.count("  prefopt recipe=") == 3
    assert list(tmp_path.iterdir()) == []  # no runs/ folder


def test_unknown_key_is_an_error_listing_valid_keys(capsys):
    assert main(["train.max_step=3"]) == 2
    err = capsys.readouterr().err
    assert "max_step" in err and "valid keys:" in err and "train.max_steps" in err


def test_unknown_loss_and_hyper_parameter_are_errors(capsys):
    assert main(["loss.name=nope"]) == 2
    assert f"valid names: {', '.join(sorted(LOSSES))}" in capsys.readouterr().err
    assert main(["loss.name=lipo", "loss.alpha=1"]) == 2
    assert "error: lipo_loss has no hyper-parameter loss.alpha; valid: loss.beta\n" in capsys.readouterr().err


def test_loss_hyper_parameters_are_checked_against_their_declared_ranges(capsys):
    assert main(["loss.name=dpo", "loss.beta=-1", "loss.label_smoothing=abc"]) == 2
    assert capsys.readouterr().err == ("error: loss.beta must be > 0 and finite, got -1; "
                                       "loss.label_smoothing must be a number, got 'abc'\n")


PLUGIN = "tests.losses.plugin_ipo"


def test_a_users_loss_function_by_import_path_through_the_real_cli(local_run, tmp_path):
    """``python -m prefopt.train loss.name=package.module:function``: no change to the package; the keyword
    default ``tau`` is the config key ``loss.tau``."""
    args = [*local_run, f"loss.name={PLUGIN}:ipo_loss", "loss.tau=0.5", "train.max_steps=2"]
    done = subprocess.run([sys.executable, "-m", "prefopt.train", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 2
    saved = OmegaConf.load(tmp_path / "run" / "config.yaml").loss
    assert saved.name == f"{PLUGIN}:ipo_loss" and saved.tau == 0.5


def test_a_users_loss_spec_by_import_path(local_run, tmp_path):
    assert main([*local_run, f"loss.name={PLUGIN}:ipo", "train.max_steps=2"]) == 0
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "loss" in r] == [1, 2]


@pytest.mark.parametrize(("override", "message"), [
    ("loss.tau=-1", "error: loss.tau must be > 0 and finite, got -1\n"),
    ("loss.tau=abc", "error: loss.tau must be a number, got 'abc'\n"),
    ("loss.beta=0.1", "error: ipo_loss has no hyper-parameter loss.beta; valid: loss.tau\n"),
])
def test_a_users_loss_gets_its_hyper_parameters_checked(local_run, tmp_path, capsys, override, message):
    for form in ("ipo_loss", "ipo"):
        assert main([*local_run, f"loss.name={PLUGIN}:{form}", override]) == 2
        assert capsys.readouterr().err == message
    assert not (tmp_path / "run").exists()  # nothing written


def test_a_users_loss_that_does_not_import_is_a_clear_error(capsys):
    assert main(["loss.name=no_such_package.losses:my_loss"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: loss 'no_such_package.losses:my_loss': cannot import module "
                          "'no_such_package.losses' (ModuleNotFoundError") and err.count("\n") == 1


def test_recipe_and_overrides_merge():
    cfg = load_config(["recipe=dpo", "train.max_steps=7", "loss.beta=0.5"])
    assert cfg.train.max_steps == 7 and cfg.loss.beta == 0.5 and cfg.loss.name == "dpo"


def test_end_to_end_on_a_local_model_and_pairs_file(local_run, tmp_path):
    assert main(local_run) == 0
    out = tmp_path / "run"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["tokens_per_second"] > 0 and summary["peak_memory_mb"] > 0
    assert "reward_before" not in summary  # no reward function for a user's model unless given
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "loss" in r] == [1, 2, 3]
    assert (out / "config.yaml").exists() and (out / "loss.png").exists()
    assert (out / "round_0" / "data.jsonl").exists()
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(out / "model")


def test_lora_adapter_with_the_base_as_reference(local_run, tmp_path):
    assert main([*local_run, "peft.enabled=true", "peft.r=4", "reference.mode=adapter"]) == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 3


def test_qlora_on_cpu_is_a_clear_error(local_run, tmp_path, capsys):
    assert main([*local_run, "peft.enabled=true", "peft.load_in_4bit=true"]) == 2  # before anything is written
    assert "needs a CUDA GPU" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_bad_data_row_fails_before_training_with_line_and_fields(local_run, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(PAIRS[0]) + "\n" + json.dumps({"prompt": "x", "chosen": "a"}) + "\n")
    assert main([*local_run, f"data.train={bad}"]) == 2
    assert f"error: {bad} line 2: expected fields" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_overwrite_starts_a_fresh_run_instead_of_reusing_finished_rounds(local_run, tmp_path):
    assert main(local_run) == 0
    assert main([*local_run, "overwrite=true", "train.max_steps=2"]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 2  # the old round_0/DONE was cleared, so the round trained again
    steps = [json.loads(x)["step"] for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps[0] == 1 and max(steps) == 2  # metrics.jsonl starts afresh


def test_eval_data_gives_eval_metrics_per_round(local_run, tmp_path):
    assert main([*local_run, f"data.eval={tmp_path / 'pairs.jsonl'}"]) == 0
    [record] = json.loads((tmp_path / "run" / "summary.json").read_text())["rounds"]
    assert 0 < record["eval"]["eval_loss"] < 1 and "eval_rewards/accuracies" in record["eval"]


def test_optimizer_and_epochs_are_configurable(local_run, tmp_path):
    assert main([*local_run, "train.max_steps=0", "train.num_epochs=1", "train.optim=rmsprop"]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 3  # 12 pairs / batch 4 = one epoch of 3 steps


def test_the_quick_starts_help_excerpt_is_real_output(capsys):
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "quickstart.md").read_text()
    [excerpt] = re.findall(r"```text\n(train: .*?)```", page, re.S)
    assert main(["recipe=lipo", "--help", "train"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert all(line in shown for line in excerpt.splitlines())


def test_a_listwise_loss_trains_on_ranked_lists_without_naming_a_pairing_rule(local_run, tmp_path):
    """pairing.rule=auto (the default) follows the loss: LiPO-λ gets each whole list, DPO the best against the
    worst; an explicit rule that does not fit the loss is still refused."""
    lists = tmp_path / "lists.jsonl"
    lists.write_text("".join(json.dumps({"prompt": f"sort {a}{b}{c}:", "responses": [f" {a}{b}{c}", f" {c}{b}{a}",
                                                                                       f" {b}{a}{c}x"],
                                         "scores": [1.0, 0.2, 0.5]}) + "\n"
                             for a, b, c in [(1, 2, 3), (2, 4, 5), (3, 6, 7), (1, 5, 8)] * 2))
    base = [a for a in local_run if not a.startswith("data.train=")] + [f"data.train={lists}", "train.max_steps=2"]
    assert main([*base, "loss.name=lipo"]) == 0
    report = json.loads((tmp_path / "run" / "round_0" / "round.json").read_text())
    assert report["data"]["pairing"]["kept"] == 8 and all(
        len(json.loads(line)["responses"]) == 3 for line in (tmp_path / "run" / "round_0" / "data.jsonl").open())
    assert main([*base, "loss.name=dpo", "overwrite=true"]) == 0
    assert all(len(json.loads(line)["responses"]) == 2 for line in (tmp_path / "run" / "round_0" / "data.jsonl").open())
    assert main([*base, "loss.name=lipo", "pairing.rule=best_vs_worst", "overwrite=true"]) == 2


def test_a_users_losses_py_in_the_working_directory_does_not_shadow_prefopts_losses(local_run, tmp_path):
    """`python -m` puts the working directory first on sys.path; prefopt still imports its own `losses`."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "losses.py").write_text("raise ImportError('the user losses.py was imported')\n")
    run = subprocess.run([sys.executable, "-m", "prefopt.train", *local_run, "train.max_steps=1"], cwd=work,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 1
    # asked for by name, the user's file is named in the one error line
    named = subprocess.run([sys.executable, "-m", "prefopt.train", *local_run, "loss.name=losses:my_loss"], cwd=work,
                           capture_output=True, text=True, timeout=300)
    errors = [line for line in named.stderr.splitlines() if line.startswith("error:")]
    assert named.returncode == 2 and len(errors) == 1 and str(work / "losses.py") in errors[0], named.stderr[-2000:]
    # imported before prefopt (a script of the user's): one clear error naming the file, not a confusing failure
    late = subprocess.run([sys.executable, "-c", "import losses"], cwd=work, capture_output=True, text=True)
    assert "the user losses.py was imported" in late.stderr  # the shadowing module is really first on the path
    (work / "losses.py").write_text("X = 1\n")
    late = subprocess.run([sys.executable, "-c", "import losses, prefopt"], cwd=work, capture_output=True, text=True)
    assert late.returncode == 1 and "ShadowedLossesError" in late.stderr
    assert f"{work / 'losses.py'}" in late.stderr and "rename your module" in late.stderr


def test_rrpo_skips_pairs_without_a_refined_segment_when_asked(local_run, tmp_path):
    """data.segments.skip_empty (on in recipes/paper/rrpo.yaml): a pair whose responses differ only by an insertion
    has no segment on the shorter side, so it is dropped and counted; without the option it trains."""
    pairs = tmp_path / "segments.jsonl"
    rows = PAIRS[:6] + [{"prompt": f"sort {a}:", "chosen": f" {a}", "rejected": f" {a}x"} for a in range(1, 5)]
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    base = [a for a in local_run if not a.startswith("data.train=")] + [f"data.train={pairs}", "train.max_steps=1",
                                                                         "loss.name=rrpo"]
    assert main([*base, "data.segments.skip_empty=true"]) == 0
    report = json.loads((tmp_path / "run" / "round_0" / "round.json").read_text())["data"]
    assert report["segments"] == {"rows": 10, "kept": 6, "dropped_no_segment": 4}
    assert main([*base, "overwrite=true"]) == 0
    assert "segments" not in json.loads((tmp_path / "run" / "round_0" / "round.json").read_text())["data"]
