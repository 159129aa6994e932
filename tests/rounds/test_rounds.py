"""Iterative rounds: each round's data and model are saved; a run killed mid-round resumes without regenerating."""

from __future__ import annotations

import json

import pytest

import prefopt.rounds.generate as generate
import prefopt.run as run_module
from prefopt.train import main


def digit_count(prompt: str, response: str) -> float:
    """A reward that separates a random model's samples (the task reward would tie them all at 0)."""
    return float(sum(c.isdigit() for c in response))


@pytest.fixture
def rounds_run(tmp_path, model_dir):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"sort {a}{b}{c}"}) + "\n"
                               for a, b, c in ["321", "987", "514", "260", "873", "419", "752", "638", "129"]))
    return [f"model={model_dir}", f"data.prompts={prompts}", "data.n_prompts=4",
            "reward=tests.rounds.test_rounds:digit_count",
            "rounds=2", "generation.k=3", "generation.max_new_tokens=4", "train.max_steps=2",
            "train.per_device_batch_size=2", "train.logging_steps=1", "pairing.rule=all_pairs",
            "pairing.replay=[0.5]", f"output_dir={tmp_path / 'run'}"]


def test_rounds_save_data_and_models_and_replay_the_previous_round(rounds_run, tmp_path):
    assert main(rounds_run) == 0
    out = tmp_path / "run"
    for k in (0, 1):
        assert (out / f"round_{k}" / "DONE").exists() and (out / f"round_{k}" / "model").exists()
    r0 = [json.loads(x) for x in (out / "round_0" / "data.jsonl").read_text().splitlines()]
    r1 = [json.loads(x) for x in (out / "round_1" / "data.jsonl").read_text().splitlines()]
    assert {r["prompt"] for r in r0}.isdisjoint({r["prompt"] for r in r1 if "replay" not in r["meta"]})
    replayed = [r for r in r1 if r["meta"].get("replay") == 1]
    assert len(replayed) == len(r0) // 2 and all(r in r0 for r in [{**x, "meta": {
        k: v for k, v in x["meta"].items() if k != "replay"}} for x in replayed])
    summary = json.loads((out / "summary.json").read_text())
    assert [r["round"] for r in summary["rounds"]] == [0, 1] and summary["steps"] == 4


def test_a_run_killed_mid_round_resumes_without_regenerating(rounds_run, tmp_path, monkeypatch, capsys):
    calls = []
    real_sample, real_train = generate.sample_sharded, run_module.train_round  # the rounds' sampling (not the eval's)
    monkeypatch.setattr(generate, "sample_sharded", lambda *a, **k: calls.append(1) or real_sample(*a, **k))

    def dies_in_round_1(cfg, policy, tokenizer, data, paths, index, folder, *rest):
        if index == 1:
            raise KeyboardInterrupt("killed")
        return real_train(cfg, policy, tokenizer, data, paths, index, folder, *rest)

    monkeypatch.setattr(run_module, "train_round", dies_in_round_1)
    assert main(rounds_run) == 130  # Ctrl-C: a one-line hint to resume, no traceback
    assert "interrupted: finished rounds and saved checkpoints are kept" in capsys.readouterr().err
    out = tmp_path / "run"
    assert len(calls) == 2  # round 0 and round 1 generated once each
    assert (out / "round_0" / "DONE").exists() and not (out / "round_1" / "DONE").exists()
    data_0, data_1 = (out / "round_0" / "data.jsonl").read_text(), (out / "round_1" / "data.jsonl").read_text()

    monkeypatch.setattr(run_module, "train_round", real_train)
    assert main([*rounds_run, "resume=true"]) == 0
    assert len(calls) == 2  # nothing regenerated: round 0 was finished, round 1's data was on disk
    assert (out / "round_0" / "data.jsonl").read_text() == data_0
    assert (out / "round_1" / "data.jsonl").read_text() == data_1
    assert (out / "round_1" / "DONE").exists()


def test_gold_responses_join_each_list_as_dno_does(rounds_run, tmp_path):
    prompts = tmp_path / "gold.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"sort {a}{b}", "answer": f"{min(a, b)}{max(a, b)}"}) + "\n"
                               for a, b in ["31", "97", "51", "26"]))
    args = [a for a in rounds_run if not a.startswith(("data.prompts=", "rounds=", "pairing.replay"))]
    assert main([*args, f"data.prompts={prompts}", "data.gold_field=answer", "pairing.rule=best_vs_worst"]) == 0
    rows = [json.loads(x) for x in (tmp_path / "run" / "round_0" / "data.jsonl").read_text().splitlines()]
    # with_gold appended the reference as the 4th candidate (index 3) before scoring; digit_count scores the
    # 2-digit gold above most random samples, so it is often the chosen response
    assert any(r["meta"]["source_indices"][0] == 3 and r["responses"][0] in {"13", "79", "15", "26"} for r in rows)


def test_a_missing_gold_field_is_a_clear_error(rounds_run, tmp_path, capsys):
    assert main([*rounds_run, "data.gold_field=answer"]) == 2
    assert "line 1: field 'answer' (data.gold_field) is missing" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
