"""Hub preference data as it is, through the command line: every schema fixture trains with its recipe, Nectar as
lists of 7 under LiPO-λ, mixtures and column maps, save_to_disk folders, the held-out slice under every
data.chat_template value and every reader, and the paper recipes' smoke runs on their own dataset's schema."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from prefopt.config import load_config
from prefopt.data.records import prompt_key
from prefopt.data.schemas.fixtures import FIXTURES_DIR
from prefopt.train import main

TINY = ["train.max_steps=2", "train.per_device_batch_size=2", "train.logging_steps=1", "eval.enabled=false",
        "threads=1"]

# fixture → the recipe that trains on it (and its extra settings)
RECIPE = {
    "ultrafeedback_binarized.jsonl": ["recipe=dpo"],
    "trl_ultrafeedback_binarized.jsonl": ["recipe=dpo"],
    "tldr_preference.jsonl": ["recipe=dpo"],
    "hh_rlhf.jsonl": ["recipe=dpo"],
    "shp.jsonl": ["recipe=dpo"],
    "ultrafeedback.jsonl": ["recipe=lipo"],
    "nectar.jsonl": ["recipe=lipo", "pairing.rule=full_list"],
    "helpsteer2.jsonl": ["recipe=lipo", "pairing.rule=full_list"],
    "pku_saferlhf.jsonl": ["recipe=d2o", "data.options={negatives: unsafe}", "generation.k=2"],
    "sorrybench_preferences.jsonl": ["recipe=dpo", "data.columns={prompt: query}"],
}


def _rows(run) -> list[dict]:
    return [json.loads(x) for x in (run / "round_0" / "data.jsonl").read_text().splitlines()]


def _summary(run) -> dict:
    return json.loads((run / "summary.json").read_text())


@pytest.mark.parametrize("name", sorted(RECIPE))
def test_every_fixture_trains_with_its_recipe(name, tmp_path):
    out = tmp_path / "run"
    assert main([*RECIPE[name], f"data.train={FIXTURES_DIR / name}", *TINY, f"output_dir={out}"]) == 0
    assert _summary(out)["steps"] == 2 and _rows(out)


def test_nectar_trains_lipo_lambda_on_lists_of_7_ordered_by_rank(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "prefopt.train", "recipe=lipo", "pairing.rule=full_list",
                           f"data.train={FIXTURES_DIR / 'nectar.jsonl'}", *TINY, f"output_dir={out}"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = _rows(out)
    raw = [json.loads(x) for x in (FIXTURES_DIR / "nectar.jsonl").read_text().splitlines()]
    assert [len(r["responses"]) for r in rows] == [7] * len(raw)
    for row, source in zip(rows, raw, strict=True):
        assert row["responses"] == [a["answer"] for a in sorted(source["answers"], key=lambda a: a["rank"])]
        assert row["scores"] == sorted(row["scores"], reverse=True)
    assert _summary(out)["loss"] == "lipo"


def test_ultrafeedback_binarized_renders_each_prompt_once(tmp_path):
    out = tmp_path / "run"
    assert main(["recipe=dpo", f"data.train={FIXTURES_DIR / 'ultrafeedback_binarized.jsonl'}", *TINY,
                 "data.chat_template=always", f"output_dir={out}"]) == 0
    for row in _rows(out):
        assert [m["role"] for m in row["prompt"]] == ["user"]
        assert all([m["role"] for m in r] == ["assistant"] for r in row["responses"])


def test_a_mixture_reports_each_sources_count(tmp_path):
    a, b = FIXTURES_DIR / "tldr_preference.jsonl", FIXTURES_DIR / "shp.jsonl"
    out = tmp_path / "run"
    assert main(["recipe=dpo", f"data.train=[{a},{b}]", "data.mix=[4,3]", *TINY, f"output_dir={out}"]) == 0
    report = _summary(out)["rounds"][0]["data"]["data"]
    assert report["sources"] == {str(a): 4, str(b): 3} and report["kept"] == 7
    assert sorted({r["meta"]["source"] for r in _rows(out)}) == sorted([str(a), str(b)])


def test_a_column_map_trains_and_a_bad_row_names_the_users_field(tmp_path, capsys):
    rows = [{"question": f"what is {i} + 1?", "good": f"{i + 1}", "bad": f"{i + 2}"} for i in range(6)]
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    columns = "data.columns={prompt: question, chosen: good, rejected: bad}"
    out = tmp_path / "run"
    assert main(["recipe=dpo", f"data.train={path}", columns, *TINY, f"output_dir={out}"]) == 0
    assert _rows(out)[0]["prompt"] == "what is 0 + 1?" and _rows(out)[0]["responses"] == ["1", "2"]
    rows[3]["good"] = 7
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["recipe=dpo", f"data.train={path}", columns, *TINY, f"output_dir={tmp_path / 'bad'}"]) == 2
    err = capsys.readouterr().err
    assert f"error: {path} line 4: field 'good' must be a string or a list of chat messages, got int" in err
    assert not (tmp_path / "bad").exists()


def test_an_unknown_schema_is_one_error_line(tmp_path, capsys):
    path = tmp_path / "odd.jsonl"
    path.write_text(json.dumps({"question": "q", "answer": "a"}) + "\n")
    assert main(["recipe=dpo", f"data.train={path}", *TINY, f"output_dir={tmp_path / 'run'}"]) == 2
    [line] = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
    assert "unknown data schema; columns found: answer, question. Formats known: " in line and "nectar" in line


def test_a_bad_row_of_a_hub_schema_stops_the_run_naming_its_line_and_field(tmp_path, capsys):
    rows = (FIXTURES_DIR / "nectar.jsonl").read_text().splitlines()
    bad = json.loads(rows[2])
    bad["answers"][5]["rank"] = 0
    path = tmp_path / "nectar.jsonl"
    path.write_text("\n".join([*rows[:2], json.dumps(bad), *rows[3:]]) + "\n")
    out = tmp_path / "run"
    assert main(["recipe=lipo", f"data.train={path}", f"data.eval={path}", *TINY, f"output_dir={out}"]) == 2
    errors = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
    line = f"error: {path} line 3: field 'answers[5].rank' must be a number in 1..7, got 0"
    assert errors == [line, line] and not out.exists()  # data.train and data.eval, both read by the nectar reader
    assert main(["recipe=dpo", "data.mix=[1,2]", *TINY, f"output_dir={out}"]) == 2
    assert "data.mix mixes the sources of data.train, but data.train is not set" in capsys.readouterr().err


def test_a_save_to_disk_dataset_dict_at_a_split(tmp_path):
    import datasets

    rows = [json.loads(x) for x in (FIXTURES_DIR / "hh_rlhf.jsonl").read_text().splitlines()]
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[:4]),
                          "test": datasets.Dataset.from_list(rows[4:])}).save_to_disk(str(tmp_path / "hh"))
    out = tmp_path / "run"
    assert main(["recipe=dpo", f"data.train={tmp_path / 'hh'}", "data.split=test", *TINY, f"output_dir={out}"]) == 0
    assert len(_rows(out)) == 2 and _summary(out)["rounds"][0]["data"]["data"]["format"] == "hh_rlhf"


# ---- the held-out slice ------------------------------------------------------------------------------------------
def length_reward(prompt: str, response: str) -> float:
    """Any text gets a reward (the world's own reward reads only its tasks)."""
    return float(len(response))


HOLD = ["reward=tests.test_hub_data:length_reward", "eval.n_prompts=2", "eval.samples_per_prompt=1",
        "eval.holdout_fraction=0.34"]


@pytest.mark.parametrize("mode", ["auto", "always", "never"])
def test_no_held_out_prompt_is_trained_on_under_any_chat_template(mode, tmp_path, capsys):
    out = tmp_path / "run"
    data = FIXTURES_DIR / "tldr_preference.jsonl"  # plain text: the rendering differs between the modes
    args = ["recipe=dpo", f"data.train={data}", *TINY, *HOLD, "eval.enabled=true", f"data.chat_template={mode}",
            f"output_dir={out}"]
    assert main(args) == 0
    assert "reward before/after on 2 held-out prompts of data.train" in capsys.readouterr().out
    held = {prompt_key(json.loads(x)["prompt"]) for x in data.read_text().splitlines()[-2:]}
    trained = {prompt_key(r["prompt"]) for r in _rows(out)}
    assert len(trained) == 4 and not held & trained
    assert _summary(out)["rounds"][0]["data"]["data"]["held_out_for_eval"] == 2


@pytest.mark.parametrize("name", sorted(RECIPE))
@pytest.mark.parametrize("mode", ["auto", "always", "never"])
def test_the_held_out_slice_is_left_out_for_every_reader_and_rendering(name, mode):
    """The round's data step itself (rounds/build.py), for every reader: prompts as text or chat, compared in one
    canonical form."""
    from prefopt.rounds.build import build_records
    from prefopt.rounds.evaluate import held_out_prompts
    from prefopt.rounds.weighting import RoundContext
    from prefopt.world.tokenizer import build_tokenizer

    extra = [a for a in RECIPE[name] if a.startswith("data.")]
    cfg = load_config(["recipe=dpo", f"data.train={FIXTURES_DIR / name}", *extra, *HOLD, "eval.enabled=true",
                       f"data.chat_template={mode}"])
    held, source = held_out_prompts(cfg)
    report: dict = {}
    records = build_records(cfg, RoundContext(policy=None, tokenizer=build_tokenizer()), 0, report)
    assert source == "data.train" and held and records
    assert not {prompt_key(p) for p in held} & {prompt_key(r["prompt"]) for r in records}
    assert report["data"]["held_out_for_eval"] >= len(held)  # a prompt may head several lists (SHP, mixtures)


# ---- paper recipes in smoke mode, on their own dataset's schema ---------------------------------------------------
def test_ra_dpo_smoke_runs_on_ultrafeedback_binarized_two_rows_per_pair_goal_as_system_turn(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["recipe=paper/reward_augmented_dpo", "smoke=true", f"output_dir={out}"]) == 0
    assert "its schema fixture (ultrafeedback_binarized.jsonl)" in capsys.readouterr().out
    rows = _rows(out)
    pairs = len((FIXTURES_DIR / "ultrafeedback_binarized.jsonl").read_text().splitlines())
    assert len(rows) == 2 * pairs  # keep_ties: every pair gives two goal-conditioned rows
    for row in rows:
        assert [m["role"] for m in row["prompt"]] == ["system", "user"]
        assert row["prompt"][0]["content"].startswith("You are an assistant that generates responses")
        assert all([m["role"] for m in r] == ["assistant"] for r in row["responses"])  # no repeated user turn


def test_ches_smoke_runs_on_the_authors_plain_rows_with_the_chat_template(tmp_path):
    out = tmp_path / "run"
    assert main(["recipe=paper/ches_dpo", "smoke=true", f"output_dir={out}"]) == 0
    rows = _rows(out)
    assert rows and all([m["role"] for m in r["prompt"]] == ["user"] for r in rows)
    assert all(isinstance(x, str) for r in rows for x in r["responses"])
