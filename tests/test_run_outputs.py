"""What a finished run leaves behind, through the real CLI: the model card, the samples of every evaluation, the
checkpoint limit, the LoRA layout (adapter/ beside the merged model/, a tokenizer in every model folder), the hub
push up to the network boundary, and `prefopt eval` on run, round, adapter folders and hub ids."""

from __future__ import annotations

import json

import pytest
import torch
from huggingface_hub import HfApi, ModelCard

from prefopt.outputs import format_reward
from prefopt.train import main

TINY = ["recipe=dpo", "train.max_steps=3", "train.logging_steps=1", "data.n_prompts=8", "eval.n_prompts=4",
        "generation.k=2", "threads=1"]
LORA = ["peft.enabled=true", "peft.r=4", "reference.mode=adapter", "train.learning_rate=0.01"]


@pytest.fixture(scope="module")
def hub_calls():
    return []


@pytest.fixture(scope="module")
def runs(tmp_path_factory, hub_calls):
    """Two finished runs of the tiny world: a LoRA run with a checkpoint limit, pushed to a (patched) hub, and a
    full fine-tune with another seed; and the console of the first."""
    root = tmp_path_factory.mktemp("runs")
    mp = pytest.MonkeyPatch()
    mp.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    mp.setenv("HF_TOKEN", "hf_test")
    mp.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: hub_calls.append(("create", repo_id, kw))
               or f"https://huggingface.co/{repo_id}")
    mp.setattr(HfApi, "upload_folder", lambda self, **kw: hub_calls.append(("upload", kw)))
    import contextlib
    import io

    console = io.StringIO()
    with contextlib.redirect_stdout(console):
        assert main([*TINY, *LORA, "train.save_steps=1", "train.save_total_limit=2", "hub.push=true",
                     "hub.model_id=someone/tiny-dpo", "hub.private=true", f"output_dir={root / 'lora'}"]) == 0
    mp.undo()
    assert main([*TINY, "train.seed=1", "train.learning_rate=0.003", f"output_dir={root / 'full'}"]) == 0
    return root / "lora", root / "full", console.getvalue()


def test_the_model_card_has_hub_metadata_command_recipe_data_rewards_and_the_claims_row(runs):
    lora, _, _ = runs
    summary = json.loads((lora / "summary.json").read_text())
    card = ModelCard.load(lora / "model" / "README.md")
    assert card.data.library_name == "transformers" and {"prefopt", "dpo", "lora"} <= set(card.data.tags)
    assert card.data.base_model is None  # the tiny world's model is no hub model
    text = card.text
    assert f"prefopt {' '.join(TINY)}" in text and "Recipe: `dpo`: DPO on the tiny embedded world" in text
    assert f"| before training | {format_reward(summary['reward_before'])} | samples/before.jsonl |" in text
    assert f"| after round 0 | {format_reward(summary['reward_after'])} | samples/round_0.jsonl |" in text
    assert "The reward `prefopt.world.tasks:reward` of 4 sample(s) per held-out prompt" in text
    assert '"dropped_ties"' in text and "arXiv 2305.18290" in text
    assert "(docs/claims.md#dpo)" in text and "verdict **reproduced**" in text


def test_card_metadata_names_hub_models_and_datasets():
    from prefopt.card import card_data
    from prefopt.config import load_config

    cfg = load_config(["model=Qwen/Qwen2.5-0.5B-Instruct", "data.train=trl-lib/ultrafeedback_binarized",
                       "loss.name=tests.losses.plugin_ipo:ipo_loss"])
    data = card_data(cfg)
    assert data.base_model == "Qwen/Qwen2.5-0.5B-Instruct" and data.datasets == ["trl-lib/ultrafeedback_binarized"]
    assert data.tags[:2] == ["prefopt", "custom-loss"]
    mixed = load_config(["data.train=[trl-lib/ultrafeedback_binarized,./mine.jsonl,Anthropic/hh-rlhf]"])
    assert card_data(mixed).datasets == ["Anthropic/hh-rlhf", "trl-lib/ultrafeedback_binarized"]  # hub ones only
    summed = load_config(["loss.name=[sigmoid,sft]", "loss.weights=[1.0,0.5]"])  # TRL's loss_type list
    assert card_data(summed).tags[:3] == ["prefopt", "sigmoid", "sft"]
    fetched = load_config(["model=smollm2-135m"])  # a model prefopt fetches by name: the card names its hub origin
    assert card_data(fetched).base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert card_data(load_config([])).base_model is None  # the tiny world's base has no hub home


def test_every_evaluation_leaves_a_samples_file_named_in_the_summary(runs):
    lora, full, console = runs
    for run in (lora, full):
        summary = json.loads((run / "summary.json").read_text())
        assert summary["samples"] == {"before": "samples/before.jsonl", "round_0": "samples/round_0.jsonl"}
        for name, reward in (("before", summary["reward_before"]), ("round_0", summary["reward_after"])):
            rows = [json.loads(x) for x in (run / summary["samples"][name]).read_text().splitlines()]
            assert len(rows) == reward["n"] == 16 and set(rows[0]) == {"index", "sample", "prompt", "response",
                                                                      "reward"}
            assert sum(r["reward"] for r in rows) / len(rows) == pytest.approx(reward["mean"])
    assert "samples before training (16 in" in console and "samples after round 0 (16 in" in console
    assert console.count("  response ") == 6  # three samples shown before, three after


def test_save_total_limit_keeps_two_checkpoints(runs):
    lora, _, _ = runs
    assert sorted(p.name for p in (lora / "round_0" / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-3"]


def test_lora_layout_adapter_beside_merged_model_and_tokenizers_everywhere(runs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    lora, full, _ = runs
    assert (lora / "adapter" / "adapter_config.json").exists() and not (lora / "model" / "adapter_config.json").exists()
    for folder in (lora / "model", lora / "adapter", lora / "round_0" / "model", full / "model",
                   full / "round_0" / "model"):
        assert AutoTokenizer.from_pretrained(folder)("sort 21").input_ids  # every model folder has its tokenizer
    merged = AutoModelForCausalLM.from_pretrained(lora / "model")
    adapted = AutoModelForCausalLM.from_pretrained(lora / "adapter")  # the base, with the adapter on it
    ids = torch.tensor([[1, 5, 9, 12, 7]])
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, adapted(ids).logits, atol=1e-4, rtol=1e-4)


def test_hub_push_uploads_model_and_adapter(runs, hub_calls):
    lora, _, console = runs
    assert hub_calls[0] == ("create", "someone/tiny-dpo", {"private": True, "repo_type": "model", "exist_ok": True})
    uploads = [c[1] for c in hub_calls[1:]]
    assert [(u["folder_path"], u.get("path_in_repo")) for u in uploads] == [(str(lora / "model"), None),
                                                                             (str(lora / "adapter"), "adapter")]
    assert "pushed model/ and adapter/ to https://huggingface.co/someone/tiny-dpo" in console


@pytest.mark.parametrize("args, offline, message", [
    (["hub.push=true"], False, "hub.push=true needs hub.model_id=user/name"),
    (["hub.push=true", "hub.model_id=no/such/repo"], False, "hub.model_id='no/such/repo' is not a hub repository id"),
    (["hub.push=true", "hub.model_id=someone/x"], False, "hub.push=true needs a Hugging Face token"),
    (["hub.push=true", "hub.model_id=someone/x"], True, "hub.push=true but HF_HUB_OFFLINE is set"),
])
def test_hub_push_is_checked_before_anything_is_written(tmp_path, monkeypatch, capsys, args, offline, message):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", offline)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no stored token either
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))
    assert main([*TINY, *args, f"output_dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err
    assert f"error: {message}" in err
    assert not (tmp_path / "run").exists()


def test_a_failed_upload_is_one_error_line_and_the_run_is_kept(tmp_path, monkeypatch, capsys, model_dir):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: f"https://huggingface.co/{repo_id}")

    def refuse(self, **kw):
        raise OSError("403 Forbidden: you have no write access\nsecond line")

    monkeypatch.setattr(HfApi, "upload_folder", refuse)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": f"p{i}", "chosen": " ab", "rejected": " ba"}) + "\n"
                             for i in range(4)))
    out = tmp_path / "run"
    assert main([f"model={model_dir}", f"data.train={pairs}", "train.max_steps=1", "hub.push=true",
                 "hub.model_id=someone/x", f"output_dir={out}"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "hub push to someone/x failed (OSError: 403 Forbidden" in errors[0]
    assert f"hf upload someone/x {out / 'model'}" in errors[0]
    assert (out / "model" / "README.md").exists() and (out / "summary.json").exists()


def test_prefopt_eval_gives_the_reward_and_the_paired_win_rate_of_two_run_folders(runs, tmp_path, capsys):
    lora, full, _ = runs
    out = tmp_path / "eval"
    assert main(["eval", f"model={lora}", f"baseline={full}", f"output_dir={out}"]) == 0
    console = capsys.readouterr().out
    result = json.loads((out / "eval.json").read_text())
    rows = {n: [json.loads(x) for x in (out / "samples" / f"{n}.jsonl").read_text().splitlines()]
            for n in ("model", "baseline")}
    assert len(rows["model"]) == len(rows["baseline"]) == 16  # the run's own settings: 4 prompts x 4 samples
    assert [r["prompt"] for r in rows["model"]] == [r["prompt"] for r in rows["baseline"]]
    wins = {}
    for a, b in zip(rows["model"], rows["baseline"], strict=True):
        wins.setdefault(a["index"], []).append(1.0 if a["reward"] > b["reward"] else 0.5 * (a["reward"] == b["reward"]))
    per_prompt = [sum(w) / len(w) for w in wins.values()]
    w = result["win_rate"]
    assert w["mean"] == pytest.approx(sum(per_prompt) / 4) and w["n"] == 4 and w["ci95_low"] <= w["mean"]
    assert result["model_reward"]["mean"] == pytest.approx(sum(r["reward"] for r in rows["model"]) / 16)
    assert f"reward of {lora / 'model'}: {format_reward(result['model_reward'])}" in console
    assert f"win rate against the baseline: {w['mean']:.3f} [{w['ci95_low']:.3f}, {w['ci95_high']:.3f}]" in console
    # the final model was evaluated before in the run itself, on the same prompts and seeds: the same samples
    assert rows["model"] == [json.loads(x) for x in (lora / "samples" / "round_0.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("which", ["round_0", "adapter"])
def test_prefopt_eval_on_round_and_adapter_folders(runs, tmp_path, which):
    lora, _, _ = runs
    out = tmp_path / "eval"
    assert main(["eval", f"model={lora / which}", f"baseline={lora / which}", "eval.samples_per_prompt=2",
                 f"output_dir={out}"]) == 0
    result = json.loads((out / "eval.json").read_text())
    assert result["win_rate"] == {"mean": 0.5, "ci95_low": 0.5, "ci95_high": 0.5, "std": 0.0, "n": 4}  # all ties
    assert result["model_reward"]["n"] == 8


def test_prefopt_eval_with_a_scorer(runs, tmp_path, capsys):
    lora, _, _ = runs
    assert main(["eval", f"model={lora}", "scorer={type: reward_fn, fn: prefopt.world.tasks:reward}",
                 f"output_dir={tmp_path / 'a'}"]) == 0
    by_scorer = json.loads((tmp_path / "a" / "eval.json").read_text())["model_reward"]
    assert by_scorer == json.loads((lora / "summary.json").read_text())["reward_after"]  # the run's own numbers
    assert main(["eval", f"model={lora}", "scorer=self_preference", f"output_dir={tmp_path / 'b'}"]) == 2
    assert "prefopt eval scores each response on its own" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_prefopt_eval_on_a_hub_id_reaches_the_hub_and_mistakes_exit_2(tmp_path, capsys, monkeypatch):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "sort 21"}) + "\n")
    monkeypatch.chdir(tmp_path)
    common = ["reward=prefopt.world.tasks:reward", f"data.eval_prompts={prompts}"]
    assert main(["eval", "model=nobody-here/no-such-model", *common]) == 1  # offline here: the load fails
    assert "error: could not load a model" in capsys.readouterr().err
    assert main(["eval", "model=nobody-here/no-such-model"]) == 2
    assert "give reward=module:function" in capsys.readouterr().err
    assert main(["eval", f"model={tmp_path / 'missing'}", *common]) == 2
    assert "no such model folder" in capsys.readouterr().err
    assert main(["eval", *common]) == 2 and "needs model=" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_model_init_options_reach_from_pretrained(capsys):
    from prefopt.config import load_config
    from prefopt.modeling import load_policy

    model, _ = load_policy(load_config(["model_init.dtype=bfloat16", "model_init.attn_implementation=eager"]))
    assert model.dtype == torch.bfloat16 and model.config._attn_implementation == "eager"
    assert main([*TINY, "model_init.dtype=float8"]) == 2
    assert "error: model_init.dtype must be one of auto, float32, bfloat16, float16; got 'float8'" in \
        capsys.readouterr().err
