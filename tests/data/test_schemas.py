"""Hub schemas as they are (prefopt.data.schemas): each fixture's reader, detection, options, column maps, errors that
name the file, line and the user's field, save_to_disk folders, and data.mix mixtures."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from prefopt.config import load_config
from prefopt.data.records import PreferenceDataError, prompt_key
from prefopt.data.schemas import FORMATS
from prefopt.data.schemas.fixtures import FIXTURES_DIR, HUB_FIXTURES, fixture_for
from prefopt.data.sources import load_data, load_records, mix_sizes

# fixture → (format detected, lists kept, responses per list)
EXPECTED = {
    "ultrafeedback_binarized.jsonl": ("ultrafeedback_binarized", 8, 2),
    "trl_ultrafeedback_binarized.jsonl": ("trl", 8, 2),
    "tldr_preference.jsonl": ("trl", 6, 2),
    "hh_rlhf.jsonl": ("hh_rlhf", 6, 2),
    "ultrafeedback.jsonl": ("ultrafeedback", 6, 4),
    "nectar.jsonl": ("nectar", 5, 7),
    "helpsteer2.jsonl": ("helpsteer2", 6, 2),
    "pku_saferlhf.jsonl": ("pku_saferlhf", 6, 2),
    "shp.jsonl": ("shp", 5, 2),  # one pair below the score ratio 2
}


def _load(name: str, **kwargs):
    return load_records(str(FIXTURES_DIR / name), **kwargs)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_fixture_is_detected_and_read(name):
    fmt, kept, k = EXPECTED[name]
    records, report = _load(name)
    assert report.format == fmt and report.kept == len(records) == kept
    assert {len(r["responses"]) for r in records} == {k}


def test_every_hub_fixture_exists_and_every_format_has_a_fixture():
    assert all(fixture_for(hub).exists() for hub in HUB_FIXTURES)
    detected = {_load(name)[1].format for name in EXPECTED}
    assert set(FORMATS) - {"list"} <= detected  # prefopt's own list rows are tested in test_records.py


def test_ultrafeedback_binarized_prompt_is_extracted_so_the_user_turn_renders_once():
    from prefopt.data.tokenize import tokenize_list
    from prefopt.world.tokenizer import build_tokenizer

    records, _ = _load("ultrafeedback_binarized.jsonl")
    r = records[0]
    assert r["prompt"] == [{"role": "user", "content": "what is 2 + 3?"}]
    assert r["responses"] == [[{"role": "assistant", "content": "2 + 3 = 5."}],
                              [{"role": "assistant", "content": "2 + 3 = 6."}]]
    assert r["meta"]["score_chosen"] == 8.0 and r["meta"]["score_rejected"] == 3.0
    tok = build_tokenizer()
    ids = tokenize_list(tok, r["prompt"], r["responses"])
    for response in ids.response_ids:
        assert tok.decode(ids.prompt_ids + response).count("what is 2 + 3?") == 1


def test_hh_rlhf_turns_become_messages_and_earlier_turns_stay_in_the_prompt():
    records, _ = _load("hh_rlhf.jsonl")
    assert records[0]["prompt"] == [{"role": "user", "content": "what is 2 + 3?"}]
    assert records[1]["prompt"] == [{"role": "user", "content": "hi there"},
                                    {"role": "assistant", "content": "hello, how can i help?"},
                                    {"role": "user", "content": "name a primary colour."}]
    assert records[1]["responses"][0] == [{"role": "assistant", "content": "red is a primary colour."}]


def test_nectar_lists_of_7_are_ordered_by_rank():
    records, _ = _load("nectar.jsonl")
    raw = json.loads((FIXTURES_DIR / "nectar.jsonl").read_text().splitlines()[0])
    by_rank = [a["answer"] for a in sorted(raw["answers"], key=lambda a: a["rank"])]
    assert records[0]["responses"] == by_rank
    assert records[0]["scores"] == pytest.approx([(7 - r) / 6 for r in range(1, 8)])  # rank 1 → 1, rank 7 → 0
    assert records[0]["prompt"] == [{"role": "user", "content": "what is 2 + 3?"}]


@pytest.mark.parametrize(("rating", "first", "k"), [("overall", [9.0, 3.0, 7.5, 2.0], 4),
                                                    ("fine_grained", [5.0, 2.0, 4.25, 7 / 3], 4),
                                                    ("helpfulness", [5.0, 2.0, 4.0, 1.0], 4),
                                                    ("truthfulness", [5.0, 1.0, 4.0], 3)])  # "N/A" left out
def test_ultrafeedback_rating_is_a_choice(rating, first, k):
    records, _ = _load("ultrafeedback.jsonl", options={"rating": rating})
    assert records[0]["scores"] == pytest.approx(first) and len(records[0]["responses"]) == k


def test_helpsteer2_groups_rows_by_prompt_with_an_attribute_weighting():
    records, _ = _load("helpsteer2.jsonl", options={"weights": {"helpfulness": 1, "verbosity": -1}})
    assert records[0]["prompt"] == "what is 2 + 3?" and records[0]["scores"] == [3.0, 1.0]
    assert records[0]["meta"]["lines"] == ["line 1", "line 2"]
    with pytest.raises(PreferenceDataError, match="'kindness' is not a HelpSteer2 attribute"):
        _load("helpsteer2.jsonl", options={"weights": {"kindness": 1}})


def test_pku_saferlhf_safer_or_better_and_unsafe_negatives_for_d2o():
    safer, _ = _load("pku_saferlhf.jsonl")
    raw = [json.loads(x) for x in (FIXTURES_DIR / "pku_saferlhf.jsonl").read_text().splitlines()]
    assert safer[1]["responses"] == [raw[1]["response_1"], raw[1]["response_0"]]  # safer_response_id = 1
    better, _ = _load("pku_saferlhf.jsonl", options={"prefer": "better"})
    assert better[2]["responses"][0] == raw[2]["response_1"]  # better_response_id = 1, safer 0
    negatives, report = _load("pku_saferlhf.jsonl", options={"negatives": "unsafe"})
    assert len(negatives) == 5 and report.dropped == {"rejected_labelled_safe": 1} and report.rows == 6
    assert all(r["meta"]["safe"][1] is False for r in negatives)


def test_shp_keeps_the_preferred_comment_first_above_the_score_ratio():
    records, report = _load("shp.jsonl")
    assert report.dropped == {"below_score_ratio": 1}
    assert records[1]["responses"][0] == "cutting them releases a gas that irritates your eyes."  # labels 0: B
    assert len(_load("shp.jsonl", options={"min_ratio": 1})[0]) == 6
    assert len(_load("shp.jsonl", options={"min_ratio": 3.2})[0]) == 2  # 40 / 12 on rows 2 and 6; 30 / 10 = 3


def test_shp_caps_pairs_per_post(tmp_path):
    rows = [json.loads(x) for x in (FIXTURES_DIR / "shp.jsonl").read_text().splitlines()]
    path = tmp_path / "shp.jsonl"
    path.write_text("".join(json.dumps({**r, "post_id": "same"}) + "\n" for r in rows))
    records, report = load_records(str(path), options={"max_per_post": 2})
    assert len(records) == 2 and report.dropped == {"below_score_ratio": 1, "over_max_per_post": 3}


def test_an_unknown_schema_lists_the_columns_found_and_the_formats_known(tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_text(json.dumps({"question": "q", "good": "a", "bad": "b"}) + "\n")
    with pytest.raises(PreferenceDataError) as err:
        load_records(str(path))
    message = str(err.value)
    assert "unknown data schema; columns found: bad, good, question" in message and "\n" not in message
    assert all(name in message for name in FORMATS) and "data.columns" in message
    with pytest.raises(PreferenceDataError, match="data.format 'nope' is not known; formats known: auto, trl"):
        load_records(str(path), format="nope")
    with pytest.raises(PreferenceDataError, match="data.options: colour not an option of format shp"):
        _load("shp.jsonl", options={"colour": 1})
    with pytest.raises(PreferenceDataError, match="data.options.prefer must be one of safer, better"):
        _load("pku_saferlhf.jsonl", options={"prefer": "kinder"})


def test_a_column_map_renames_and_errors_name_the_users_own_field(tmp_path):
    path = tmp_path / "mine.jsonl"
    rows = [{"question": "what is 1 + 1?", "good": "2", "bad": "3"}, {"question": "and 2 + 2?", "good": "", "bad": "5"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    columns = {"prompt": "question", "chosen": "good", "rejected": "bad"}
    with pytest.raises(PreferenceDataError, match=r"mine.jsonl line 2: field 'good' is empty"):
        load_records(str(path), columns=columns)
    path.write_text(json.dumps(rows[0]) + "\n")
    records, _ = load_records(str(path), columns=columns)
    assert records[0]["prompt"] == "what is 1 + 1?" and records[0]["responses"] == ["2", "3"]
    with pytest.raises(PreferenceDataError, match="data.columns names column.s. answer, not in the data"):
        load_records(str(path), columns={"prompt": "question", "chosen": "answer"})
    with pytest.raises(PreferenceDataError, match="data.columns must map canonical names to your column names"):
        load_records(str(path), columns="question")


def test_reader_errors_name_the_line_and_the_datasets_own_field(tmp_path):
    rows = [json.loads(x) for x in (FIXTURES_DIR / "nectar.jsonl").read_text().splitlines()[:2]]
    rows[1]["answers"][3]["rank"] = "first"
    rows[0]["answers"][1]["answer"] = ""
    path = tmp_path / "nectar.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(PreferenceDataError) as err:
        load_records(str(path))
    assert str(err.value).splitlines() == [
        f"{path} line 2: field 'answers[3].rank' must be a number in 1..7, got 'first'"]
    rows[1]["answers"][3]["rank"] = 4.0
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(PreferenceDataError, match=r"line 1: field 'answers\[1\].answer' is empty"):
        load_records(str(path))  # the rank-1 answer, responses[0] once sorted: named as the user's file has it


@pytest.mark.parametrize("as_dict", [False, True])
def test_save_to_disk_folders_dataset_and_dataset_dict(tmp_path, as_dict):
    import datasets

    rows = [json.loads(x) for x in (FIXTURES_DIR / "ultrafeedback_binarized.jsonl").read_text().splitlines()]
    data = datasets.Dataset.from_list(rows)
    if as_dict:
        data = datasets.DatasetDict({"train_prefs": data, "test_prefs": data.select(range(2))})
    data.save_to_disk(str(tmp_path / "saved"))
    split = "test_prefs" if as_dict else "train"
    records, report = load_records(str(tmp_path / "saved"), split=split)
    assert report.format == "ultrafeedback_binarized" and len(records) == (2 if as_dict else 8)
    if as_dict:
        with pytest.raises(PreferenceDataError, match="split 'train' not in this saved DatasetDict"):
            load_records(str(tmp_path / "saved"), split="train")


def _data(**overrides) -> OmegaConf:
    return load_config([f"data.{k}={v}" for k, v in overrides.items()]).data


def test_a_mixture_takes_counts_or_shares_reproducibly_by_seed():
    a, b = FIXTURES_DIR / "tldr_preference.jsonl", FIXTURES_DIR / "nectar.jsonl"
    data = _data(train=f"[{a},{b}]", mix="[3,2]")
    records, report = load_data(data, seed=0)
    assert report.sources == {str(a): 3, str(b): 2} and len(records) == 5
    assert report.format == "trl,nectar" and report.dropped["not_in_mix"] == 6
    again, _ = load_data(data, seed=0)
    assert again == records
    other = [load_data(data, seed=s)[0] for s in range(1, 6)]
    assert any(o != records for o in other)  # the draw depends on the seed
    shares, report = load_data(_data(train=f"[{a},{b}]", mix="[0.6,0.4]"), seed=0)
    assert report.sources == {str(a): 6, str(b): 4}  # N = min(6 / 0.6, 5 / 0.4) = 10
    whole, report = load_data(_data(train=f"[{a},{b}]"), seed=0)
    assert report.sources == {str(a): 6, str(b): 5}


def test_mixture_errors():
    with pytest.raises(PreferenceDataError, match="asks 9 lists of b, which has 5"):
        mix_sizes([2, 9], [6, 5], ["a", "b"])
    with pytest.raises(PreferenceDataError, match="shares must each be at most 1 and sum to 1"):
        mix_sizes([0.5, 0.2], [6, 5], ["a", "b"])
    with pytest.raises(PreferenceDataError, match="data.mix has 1 entries for 2 sources"):
        mix_sizes([1], [6, 5], ["a", "b"])


def test_prompts_compare_in_one_canonical_form():
    assert prompt_key("hi") == prompt_key([{"role": "user", "content": "hi"}])
    assert prompt_key("hi") != prompt_key([{"role": "system", "content": "x"}, {"role": "user", "content": "hi"}])


def test_the_docs_table_names_every_format_and_its_datasets():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "data.md").read_text()
    for fmt in FORMATS.values():
        assert f"| `{fmt.name}` |" in page, fmt.name
        assert all(example.strip() in page for example in fmt.example.split(",")), fmt.example
