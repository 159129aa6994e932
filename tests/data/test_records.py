"""Records: every accepted format normalises to one list record; bad rows name the source, row and field."""

from __future__ import annotations

import json
import math

import pytest

from prefopt.data.records import PreferenceDataError, load_prompts, normalize_row, normalize_rows
from prefopt.data.sources import load_records


def test_trl_pair_becomes_a_list_of_two_with_scores_one_zero():
    r = normalize_row({"prompt": "q", "chosen": "a", "rejected": "b"}, index=0, source="s")
    assert r["responses"] == ["a", "b"] and r["scores"] == [1.0, 0.0] and r["weight"] is None


def test_conversational_pair_with_implicit_prompt_is_split_like_trl():
    user = {"role": "user", "content": "q"}
    row = {"chosen": [user, {"role": "assistant", "content": "a"}],
           "rejected": [user, {"role": "assistant", "content": "b"}]}
    r = normalize_row(row, index=0, source="s")
    assert r["prompt"] == [user]
    assert r["responses"] == [[{"role": "assistant", "content": "a"}], [{"role": "assistant", "content": "b"}]]


def test_list_record_keeps_weight_segments_meta_and_raw_scores():
    row = {"prompt": "q", "responses": ["a", "b", "c"], "scores": [0.5, 2, -1], "weight": 0.3,
           "segments": [[[0, 1]], [], []], "meta": {"round": 2}}
    r = normalize_row(row, index=0, source="s")
    assert r["scores"] == [0.5, 2.0, -1.0] and r["weight"] == 0.3 and r["meta"] == {"round": 2}
    assert r["segments"] == [[[0, 1]], [], []]


@pytest.mark.parametrize("row, needle", [
    ({"prompt": "q", "responses": ["a", "b"]}, "row 3: field 'scores' is missing"),
    ({"prompt": "q", "responses": ["a"], "scores": [1]}, "row 3: field 'responses' needs at least 2"),
    ({"prompt": "q", "responses": ["a", "  "], "scores": [1, 0]}, "row 3: field 'responses[1]' is empty"),
    ({"prompt": "q", "responses": ["a", "b"], "scores": [1, math.nan]}, "row 3: field 'scores[1]' must be finite"),
    ({"prompt": "q", "responses": ["a", "b"], "scores": [1, "x"]}, "row 3: field 'scores[1]' must be a number"),
    ({"prompt": "q", "responses": ["a", "b"], "scores": [1]}, "row 3: field 'scores' must be a list of 2"),
    ({"responses": ["a", "b"], "scores": [1, 0]}, "row 3: field 'prompt' is missing"),
    ({"question": "q", "answer": "a"}, "row 3: expected fields"),
    ({"prompt": "", "chosen": "a", "rejected": "b"}, "row 3: field 'prompt' is empty"),
    ({"prompt": "q", "chosen": "a", "rejected": 5}, "row 3: field 'rejected' must be a string"),
])
def test_bad_rows_name_source_row_and_field(row, needle):
    with pytest.raises(PreferenceDataError, match="data.jsonl " + needle.replace("[", r"\[").replace("]", r"\]")):
        normalize_row(row, index=3, source="data.jsonl")


def test_tied_lists_are_dropped_and_counted_not_raised():
    rows = [{"prompt": "q", "responses": ["a", "b"], "scores": [1, 1]},
            {"prompt": "q", "chosen": "a", "rejected": "b"}]
    records, report = normalize_rows(rows, source="s")
    assert len(records) == 1 and report.dropped_ties == 1 and report.rows == 2 and report.kept == 1


def test_data_with_no_signal_is_an_error_that_says_why():
    rows = [{"prompt": "q", "responses": ["a", "b"], "scores": [1, 1]},
            {"prompt": "q", "chosen": "same", "rejected": "same"},
            {"prompt": "q", "chosen": "same", "rejected": "same"}]
    with pytest.raises(PreferenceDataError, match=r"all 3 rows carry no preference \(1 had all scores tied; 2 had "
                                                  r"identical responses \(e.g. chosen = rejected\)\)"):
        normalize_rows(rows, source="s")


def test_identical_responses_are_dropped_and_counted():
    rows = [{"prompt": "q", "chosen": "same", "rejected": "same"}, {"prompt": "q", "chosen": "a", "rejected": "b"},
            {"prompt": "q", "responses": ["x", "x", "x"], "scores": [3, 2, 1]}]
    records, report = normalize_rows(rows, source="s")
    assert [r["responses"] for r in records] == [["a", "b"]]
    assert report.dropped == {"identical": 2} and report.kept == 1 and report.rows == 3


def test_file_errors_name_the_line_and_the_users_field_for_every_bad_row(tmp_path):
    path = tmp_path / "mine.jsonl"
    good = json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"})
    path.write_text(good + "\n\n" + json.dumps({"prompt": "q", "chosen": "a", "rejected": ""}) + "\n" + good + "\n"
                    + json.dumps({"prompt": "q", "chosen": 3, "rejected": "b"}) + "\n")
    with pytest.raises(PreferenceDataError) as err:
        load_records(str(path))
    lines = str(err.value).splitlines()
    assert lines == [f"{path} line 3: field 'rejected' is empty",
                     f"{path} line 5: field 'chosen' must be a string or a list of chat messages, got int"]


def test_a_file_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"prompt": "q", "chosen": "a", "rejected": "b"}\n{"prompt": "caf\xe9", "chosen": "a", '
                     b'"rejected": "b"}\n')
    with pytest.raises(PreferenceDataError, match=r"latin1.jsonl line 2: not UTF-8 text \(byte 0xe9\)"):
        load_records(str(path))
    with pytest.raises(PreferenceDataError, match="line 2: not UTF-8"):
        load_prompts(str(path))


def test_jsonl_loader_reports_the_bad_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n{oops\n")
    with pytest.raises(PreferenceDataError, match="d.jsonl line 2: not valid JSON"):
        load_records(str(path))


def test_jsonl_and_prompt_files_round_trip(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": "a", "rejected": "b"}) + "\n" for i in range(3)))
    records, report = load_records(str(path))
    assert [r["prompt"] for r in records] == ["q0", "q1", "q2"] and report.kept == 3
    assert load_prompts(str(path)) == ["q0", "q1", "q2"]


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="data file not found"):
        load_records(str(tmp_path / "nope.jsonl"))
