"""Unpaired data for KTO: TRL's format read as it is, pairs unpaired in TRL's order, mismatched responses rotated
within each batch as TRL's KTOTrainer rotates them."""

from __future__ import annotations

import pytest

from prefopt.data.records import PreferenceDataError, normalize_rows
from prefopt.data.unpaired import is_unpaired, unpair_records, with_kl_responses


def test_trls_unpaired_rows_become_one_labelled_response_each():
    rows = [{"prompt": "p1", "completion": " a", "label": True},
            {"prompt": [{"role": "user", "content": "p2"}], "completion": [{"role": "assistant", "content": "b"}],
             "label": 0}]
    records, report = normalize_rows(rows, source="kto.jsonl")
    assert report.kept == 2 and all(is_unpaired(r) for r in records)
    assert [r["responses"] for r in records] == [[" a"], [[{"role": "assistant", "content": "b"}]]]
    assert [r["scores"] for r in records] == [[1.0], [0.0]]
    again, _ = normalize_rows(records, source="round 0 data")  # a round's saved data reads back the same
    assert again == records


@pytest.mark.parametrize("row, message", [
    ({"prompt": "p", "completion": "a", "label": "yes"}, "row 0: field 'label' must be true"),
    ({"prompt": "p", "completion": "  ", "label": True}, "row 0: field 'completion' is empty"),
    ({"completion": "a", "label": True}, "row 0: field 'prompt' is missing"),
])
def test_bad_unpaired_rows_name_the_row_and_field(row, message):
    with pytest.raises(PreferenceDataError, match=message):
        normalize_rows([row], source="kto.jsonl")


def test_pairs_and_lists_unpair_as_trl_does_chosen_first():
    """TRL's unpair_preference_dataset: all chosen completions (label True), then all rejected (False); a list of
    three gives its best and its worst."""
    records = [{"prompt": "p1", "responses": ["w1", "l1"], "scores": [1.0, 0.0], "meta": {}},
               {"prompt": "p2", "responses": ["m2", "w2", "l2"], "scores": [0.5, 1.0, 0.0], "meta": {}}]
    out = unpair_records(records)
    assert [(r["prompt"], r["responses"][0], r["scores"][0]) for r in out] == [
        ("p1", "w1", 1.0), ("p2", "w2", 1.0), ("p1", "l1", 0.0), ("p2", "l2", 0.0)]
    assert all(is_unpaired(r) for r in out) and unpair_records(out) == out  # unpaired records stay as they are


def test_each_example_gets_the_previous_response_of_its_batch():
    """Batches of 3 over 5 examples: (x1, y3), (x2, y1), (x3, y2) | (x4, y5), (x5, y4); the label is the weight."""
    features = [{"prompt_ids": [i], "response_ids": [[10 + i]], "scores": [float(i % 2)]} for i in range(1, 6)]
    out = with_kl_responses(features, batch_size=3)
    assert [f["response_ids"] for f in out] == [[[11], [13]], [[12], [11]], [[13], [12]], [[14], [15]],
                                                [[15], [14]]]
    assert [f["weight"] for f in out] == [1.0, 0.0, 1.0, 0.0, 1.0] and all(f["scores"] == [1.0, 0.0] for f in out)
    with pytest.raises(ValueError, match="unpaired example 1 has 2 responses"):
        with_kl_responses([features[0], {**features[1], "response_ids": [[1], [2]]}], batch_size=3)
