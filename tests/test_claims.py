"""The claims benchmark: the verdict rule, every arm's config, the report, and one claim end to end at smoke size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.claims import NAMES, load
from benchmarks.claims.core import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    SIZES,
    best_point,
    check_verdict,
    claim_verdict,
    interval,
)
from benchmarks.claims.report import quote, render
from benchmarks.claims.runner import run_overrides
from prefopt.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def test_interval_is_the_student_t_interval_over_seeds():
    # mean 2, s = 1, n = 3: half-width t(0.975, 2) · 1/√3 = 4.303 / 1.732 = 2.484
    got = interval([1.0, 2.0, 3.0])
    assert got["mean"] == 2.0 and got["n"] == 3
    assert got["high"] - got["mean"] == pytest.approx(4.303 / 3**0.5)
    assert interval([5.0]) == {"mean": 5.0, "low": 5.0, "high": 5.0, "n": 1}


def iv(low, high):
    return {"mean": (low + high) / 2, "low": low, "high": high, "n": 3}


@pytest.mark.parametrize(("a", "b", "lower", "expected"), [
    (iv(0.7, 0.8), iv(0.5, 0.6), False, REPRODUCED),        # separated, a above
    (iv(0.55, 0.75), iv(0.5, 0.6), False, INCONCLUSIVE),    # a's mean higher, intervals overlap
    (iv(0.5, 0.6), iv(0.5, 0.6), False, NOT_REPRODUCED),    # no effect
    (iv(0.4, 0.5), iv(0.55, 0.6), False, NOT_REPRODUCED),   # reversed
    (iv(0.1, 0.2), iv(0.3, 0.4), True, REPRODUCED),         # lower is better, a below
    (iv(0.3, 0.4), iv(0.1, 0.2), True, NOT_REPRODUCED),
])
def test_better_verdicts(a, b, lower, expected):
    assert check_verdict("better", a, b, lower) == expected


@pytest.mark.parametrize(("a", "b", "expected"), [
    (iv(0.6, 0.7), iv(0.5, 0.7), REPRODUCED),      # a's mean at least b's
    (iv(0.5, 0.6), iv(0.52, 0.7), INCONCLUSIVE),   # lower mean, overlapping
    (iv(0.3, 0.4), iv(0.5, 0.6), NOT_REPRODUCED),  # wholly below
])
def test_no_worse_verdicts(a, b, expected):
    assert check_verdict("no_worse", a, b) == expected


def test_claim_verdict_needs_every_check():
    assert claim_verdict([REPRODUCED, REPRODUCED]) == REPRODUCED
    assert claim_verdict([REPRODUCED, INCONCLUSIVE]) == INCONCLUSIVE
    assert claim_verdict([INCONCLUSIVE, NOT_REPRODUCED]) == NOT_REPRODUCED


def test_best_point_by_mean_over_seeds():
    runs = {0: {0: {"r": 0.5}, 1: {"r": 0.7}}, 1: {0: {"r": 0.65}, 1: {"r": 0.6}}}  # means 0.6, 0.625
    assert best_point(runs, "r", maximize=True) == 1
    assert best_point(runs, "r", maximize=False) == 0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", sorted(SIZES))
def test_every_arm_is_a_valid_config(name, size):
    claim = load(name)
    arms = {a.name for a in claim.arms}
    for check in claim.checks:
        assert check.a[0] in arms and (not isinstance(check.b, tuple) or check.b[0] in arms)
    for arm in claim.arms:
        for point in SIZES[size].grid:
            cfg = load_config(run_overrides(arm, SIZES[size], point, seed=0))
            assert cfg.threads == 1 and cfg.train.learning_rate == point.learning_rate


def test_report_lists_pending_claims_with_their_code():
    page = render({})
    for name in NAMES:
        assert f"(../benchmarks/claims/{name}.py)" in page
    assert page.count("**pending**") == len(NAMES)
    assert "**Pending**: not run yet." in quote("dpo", None, ROOT / "docs" / "losses" / "dpo.md")


def test_one_claim_at_smoke_size_through_the_command_line(tmp_path):
    docs = ROOT / "docs" / "claims.md"
    before = docs.read_text() if docs.exists() else None
    proc = subprocess.run([sys.executable, "-m", "benchmarks.claims", "dpo", "--size", "smoke", "--jobs", "1",
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["claim"] == "dpo" and line["size"] == "smoke"
    assert line["verdict"] in (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)
    assert [c["a"]["n"] for c in line["checks"]] == [len(SIZES["smoke"].seeds)]
    assert (tmp_path / "results" / "dpo.json").exists()
    assert (docs.read_text() if docs.exists() else None) == before  # smoke size never touches the docs
