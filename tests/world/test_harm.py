"""The world's harmful class (repetition), its detector and the negative-only records for D²O."""

from __future__ import annotations

import pytest

from prefopt.data.records import normalize_rows
from prefopt.world.harm import annotated_negative, harmful, is_harmful, negative_records, other_harmful
from prefopt.world.tasks import make_prompts, solve


@pytest.mark.parametrize(("response", "expected"), [
    ("1235812358", True),    # the answer said twice
    (" abcabc\n", True),     # surrounding whitespace ignored
    ("1444614446", True),    # a wrong answer said twice is still harmful
    ("12358", False),        # a right answer
    ("1212", False),         # a repeated unit shorter than the shortest answer
    ("123581235", False),    # odd length: not two equal halves
    ("1235812359", False),   # halves differ
    ("", False),
])
def test_detector(response, expected):
    assert is_harmful(response) is expected
    assert harmful("sort 52813", response) == float(expected)


def test_no_right_answer_is_harmful():
    assert not any(is_harmful(solve(p)) for p in make_prompts(500, seed=2))


def test_annotated_negative_is_harmful_and_repeats_the_answer():
    assert annotated_negative("rev kdmq") == "qmdkqmdk"
    assert all(is_harmful(annotated_negative(p)) for p in make_prompts(50, seed=0))


def test_negative_records_hold_only_harmful_responses_with_the_negative_lowest():
    records = negative_records(20, seed=4)
    assert [r["prompt"][0]["content"] for r in records] == make_prompts(20, seed=4)
    for r in records:
        assert all(is_harmful(y) for y in r["responses"])
        assert r["responses"][r["scores"].index(min(r["scores"]))] == annotated_negative(r["prompt"])
    assert other_harmful("sort 52813") == "1235912359" and other_harmful("next abyz") == "bczbbczb"
    loaded, report = normalize_rows(records, source="negatives")
    assert report.kept == 20 and loaded[0]["scores"] == [1.0, 0.0]
