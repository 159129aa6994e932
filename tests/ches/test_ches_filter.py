"""The CHES filter: counts for keep/drop/threshold, the one-rule check, the report and the files it writes."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch

from prefopt.ches import apply_ches_filter, check_rule, select

# 10 scores, two tied at 0.5 and one NaN (a model that overflowed): sorted finite values -3,-2,-1,0,0.5,0.5,1,2,4
SCORES = torch.tensor([0.5, -1.0, 4.0, -3.0, float("nan"), 0.0, 2.0, 0.5, -2.0, 1.0])


def test_keep_fraction_keeps_the_lowest():
    keep, cut = select(SCORES, keep_fraction=0.3)  # round(0.3 · 10) = 3 → -3, -2, -1
    assert keep.tolist() == [False, True, False, True, False, False, False, False, True, False]
    assert cut == -1.0


def test_keep_fraction_keeps_at_least_one_and_breaks_ties_by_position():
    keep, cut = select(SCORES, keep_fraction=0.01)
    assert int(keep.sum()) == 1 and bool(keep[3]) and cut == -3.0
    assert int(select(SCORES, keep_fraction=0.35)[0].sum()) == 4  # 3.5 rounds half up, not to even
    assert int(select(SCORES, keep_fraction=0.25)[0].sum()) == 3  # 2.5 too
    keep, _ = select(SCORES, keep_fraction=0.5)  # 5 kept: -3, -2, -1, 0 and the first 0.5 (index 0, not 7)
    assert int(keep.sum()) == 5 and bool(keep[0]) and not bool(keep[7])


def test_drop_fraction_drops_the_highest_and_never_keeps_nan():
    keep, cut = select(SCORES, drop_fraction=0.2)  # drop 2: the NaN (ranked above all) and 4.0
    assert int(keep.sum()) == 8 and not bool(keep[4]) and not bool(keep[2]) and cut == 2.0
    keep, _ = select(SCORES, drop_fraction=0.0)  # dropping nothing still leaves the NaN out
    assert int(keep.sum()) == 9 and not bool(keep[4])


def test_threshold_drops_above_it():
    keep, cut = select(SCORES, threshold=0.5)  # <= 0.5 kept: -3, -2, -1, 0, 0.5, 0.5
    assert int(keep.sum()) == 6 and cut == 0.5
    keep, cut = select(SCORES, threshold=-10.0)
    assert not keep.any() and cut is None


@pytest.mark.parametrize("kwargs", [{}, {"keep_fraction": 0.1, "threshold": 1.0},
                                    {"keep_fraction": 0.1, "drop_fraction": 0.1, "threshold": 0.0}])
def test_exactly_one_rule(kwargs):
    with pytest.raises(ValueError, match="exactly one"):
        check_rule(kwargs.get("keep_fraction"), kwargs.get("drop_fraction"), kwargs.get("threshold"))


@pytest.mark.parametrize("kwargs", [{"keep_fraction": 0.0}, {"keep_fraction": 1.5}, {"drop_fraction": 1.0},
                                    {"drop_fraction": -0.1}, {"threshold": math.inf}])
def test_rule_out_of_range(kwargs):
    with pytest.raises(ValueError, match="must"):
        select(SCORES, **kwargs)


def make_records(n: int = 8) -> list[dict]:
    words = ["cat", "dog", "bird", "fish", "Hello there", "no", "yes", "maybe so", "blue", "Bleu"]
    return [{"prompt": f"Q{i}: pick one", "responses": [words[i % 10], words[(3 * i + 1) % 10], "z"],
             "scores": [1.0, 0.0, 0.5], "weight": None, "segments": None, "meta": {"row": i}} for i in range(n)]


def test_apply_filter_annotates_copies_and_writes_files(ches_model, ches_tok, tmp_path):
    records = make_records()
    before = copy.deepcopy(records)
    kept, report = apply_ches_filter(records, ches_model, ches_tok, keep_fraction=0.25, out_dir=tmp_path / "ches")
    assert records == before  # the caller's records are untouched
    assert len(kept) == 2 and report["kept"] == 2 and report["dropped"] == 6 and report["n"] == 8
    assert report["score"] == "LN-CHES" and report["rule"] == {"keep_fraction": 0.25}
    assert set(report["quantiles"]) == {"min", "p5", "p25", "p50", "p75", "p95", "max"}
    assert all(k["meta"]["ches"] <= report["cut"] for k in kept) and all("row" in k["meta"] for k in kept)

    lines = [json.loads(x) for x in (tmp_path / "ches" / "ches_scores.jsonl").read_text().splitlines()]
    assert len(lines) == 8 and sum(x["ches_kept"] for x in lines) == 2
    scores = sorted(x["meta"]["ches"] for x in lines)
    assert report["cut"] == pytest.approx(scores[1]) and report["quantiles"]["min"] == pytest.approx(scores[0])
    assert json.loads((tmp_path / "ches" / "ches_report.json").read_text())["kept"] == 2
    assert (tmp_path / "ches" / "ches_hist.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_apply_filter_drop_and_threshold_counts(ches_model, ches_tok):
    records = make_records()
    kept, report = apply_ches_filter(records, ches_model, ches_tok, drop_fraction=0.25, length_normalize=False)
    assert len(kept) == 6 and report["score"] == "CHES"
    kept, report = apply_ches_filter(records, ches_model, ches_tok, keep_fraction=1.0)
    assert len(kept) == 8
    median = report["quantiles"]["p50"]  # of LN-CHES: half the 8 (distinct) scores lie at or below it
    kept, report = apply_ches_filter(records, ches_model, ches_tok, threshold=median)
    assert len(kept) == report["kept"] == 4 and all(k["meta"]["ches"] <= median for k in kept)


def test_apply_filter_checks_the_rule_before_scoring(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        apply_ches_filter(make_records(), None, None, keep_fraction=0.1, drop_fraction=0.1, out_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_apply_filter_that_keeps_nothing_raises_after_writing(ches_model, ches_tok, tmp_path):
    with pytest.raises(ValueError, match="keeps none"):
        apply_ches_filter(make_records(), ches_model, ches_tok, threshold=-1e9, out_dir=tmp_path)
    assert (tmp_path / "ches_scores.jsonl").exists() and (tmp_path / "ches_hist.png").exists()
