"""The claims benchmark under protocol v2: its statistics against hand-computed values, the verdict rule, the
phases' bookkeeping, every arm's config, the report, and one claim end to end at smoke size."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.claims import NAMES, REAL_NAMES, load
from benchmarks.claims import stats as st
from benchmarks.claims.core import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    NOT_TESTABLE,
    PROTOCOL,
    REPRODUCED,
    SIZES,
    Arm,
    Check,
    check_verdict,
    claim_verdict,
    grid_of,
)
from benchmarks.claims.report import NOT_RUN, quote, render
from benchmarks.claims.runner import run_overrides
from benchmarks.claims.summary import Phase, read_checks
from prefopt.config import load_config

ROOT = Path(__file__).resolve().parent.parent


# -- statistics -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("q", "df", "table"), [(0.975, 2, 4.303), (0.975, 5, 2.571), (0.975, 11, 2.201),
                                                 (0.8, 5, 0.920), (0.995, 3, 5.841), (0.99, 20, 2.528)])
def test_t_quantiles_match_the_printed_table(q, df, table):
    assert st.t_ppf(q, df) == pytest.approx(table, abs=5e-4)
    assert st.t_ppf(1 - q, df) == pytest.approx(-table, abs=5e-4)


@pytest.mark.parametrize("t", [-3.0, -0.4, 0.0, 0.7, 2.5])
def test_t_cdf_matches_the_closed_forms_of_one_and_two_degrees_of_freedom(t):
    # df = 1 is Cauchy: ½ + atan(t)/π; df = 2: ½ + t / (2·√(2 + t²))
    assert st.t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)
    assert st.t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)


def test_incomplete_beta_special_cases():
    assert st.betainc(1.0, 1.0, 0.3) == pytest.approx(0.3)  # I_x(1, 1) = x
    assert st.betainc(3.0, 1.0, 0.6) == pytest.approx(0.6**3)  # I_x(a, 1) = x^a
    assert st.betainc(2.0, 5.0, 0.2) + st.betainc(5.0, 2.0, 0.8) == pytest.approx(1.0)  # symmetry


def test_paired_difference_and_its_one_sided_p_values_by_hand():
    # d = [1, 2, 3]: mean 2, sd 1, n 3; half-width t(0.975, 2)/√3 = 4.3027/1.7321 = 2.4841
    d = st.paired([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert (d["mean"], d["sd"], d["n"]) == (2.0, 1.0, 3)
    assert d["high"] - d["mean"] == pytest.approx(2.4841, abs=1e-4)
    # t = 2/(1/√3) = 3.4641, df 2: p = ½ − t/(2√(2 + t²)) = ½ − 3.4641/7.4833 = 0.03709
    assert st.p_greater(d, 0.0) == pytest.approx(0.5 - math.sqrt(12) / (2 * math.sqrt(14)), abs=1e-12)
    assert st.p_less(d, 0.0) == pytest.approx(1 - st.p_greater(d, 0.0))
    # against a threshold of 2 (the mean itself): t = 0, p = ½
    assert st.p_greater(d, 2.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least 2 seeds"):
        st.paired([1.0], [0.0])


def test_a_constant_difference_is_decided_by_its_sign():
    d = st.paired([1.0, 1.0, 1.0], [0.5, 0.5, 0.5])
    assert st.p_greater(d, 0.0) == 0.0 and st.p_greater(d, 0.6) == 1.0


def test_holm_adjustment_by_hand():
    # sorted 0.01, 0.03, 0.04 → 3·0.01 = 0.03, 2·0.03 = 0.06, max(0.06, 1·0.04) = 0.06
    assert st.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert st.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert st.holm([0.02]) == [0.02]


def test_minimum_detectable_effect_and_seed_count_by_hand():
    # sd 1, n 6, one check: (t(0.975, 5) + t(0.8, 5)) / √6 = (2.5706 + 0.9195) / 2.4495 = 1.4248
    assert st.mde(1.0, 6) == pytest.approx(1.4248, abs=1e-3)
    # sd = margin: n = 9 gives (2.3060 + 0.8889)/3 = 1.065 > 1, n = 10 gives (2.2622 + 0.8834)/3.1623 = 0.9947
    assert st.seeds_for(0.01, 0.01, 1) == 10
    assert st.seeds_for(0.0, 0.01, 1) == 6  # at least 6
    assert st.seeds_for(1.0, 0.01, 1) == 12  # at most 12 (the default)
    assert st.seeds_for(1.0, 0.01, 1, most=10) == 10
    assert st.mde(1.0, 6, m=2) > st.mde(1.0, 6, m=1)  # Holm's strictest step for two checks: α/2


# -- verdicts ---------------------------------------------------------------------------------------------------


def test_check_verdict_reads_the_two_adjusted_tests():
    assert check_verdict("better", 0.01, 0.9, 0.025) == REPRODUCED
    assert check_verdict("better", 0.3, 0.01, 0.025) == NOT_REPRODUCED
    assert check_verdict("better", 0.3, 0.3, 0.025) == INCONCLUSIVE
    with pytest.raises(ValueError, match="unknown check kind"):
        check_verdict("worse", 0.0, 0.0, 0.025)


def test_claim_verdict_needs_every_check_and_a_passed_control():
    assert claim_verdict([REPRODUCED, REPRODUCED]) == REPRODUCED
    assert claim_verdict([REPRODUCED, INCONCLUSIVE]) == INCONCLUSIVE
    assert claim_verdict([INCONCLUSIVE, NOT_REPRODUCED]) == NOT_REPRODUCED
    assert claim_verdict([REPRODUCED], control_passed=False) == NOT_TESTABLE


def _phase(a: list[float], b: list[float], metric: str = "reward") -> Phase:
    seeds = tuple(range(100, 100 + len(a)))
    phase = Phase(seeds, {**{("a", 0, s): {"metrics": {metric: x}} for s, x in zip(seeds, a, strict=True)},
                          **{("b", 0, s): {"metrics": {metric: x}} for s, x in zip(seeds, b, strict=True)}})
    phase.point = {"a": 0, "b": 0}
    return phase


BASE = [0.70, 0.72, 0.69, 0.71, 0.73, 0.70]


def test_superiority_reproduced_when_the_paired_interval_is_above_zero():
    # unpaired intervals overlap (seed-to-seed spread 0.04), the paired Δ is +0.02 ± 0.002: v1 called this
    # inconclusive, the paired test reproduces it
    phase = _phase([x + 0.02 + e for x, e in zip(BASE, [0.001, -0.001, 0.002, 0.0, -0.002, 0.0], strict=True)],
                   BASE)
    (row,) = read_checks((Check("a > b", ("a", "reward"), ("b", "reward")),), phase)
    assert row["a"]["low"] < row["b"]["high"] and row["delta"]["low"] > 0
    assert row["verdict"] == REPRODUCED and row["margin"] == 0.01


def test_superiority_not_reproduced_when_the_effect_is_shown_below_the_margin():
    phase = _phase([x + e for x, e in zip(BASE, [0.001, -0.001, 0.002, 0.0, -0.002, 0.0], strict=True)], BASE)
    (row,) = read_checks((Check("a > b", ("a", "reward"), ("b", "reward")),), phase)
    assert row["verdict"] == NOT_REPRODUCED and row["delta"]["high"] < 0.01


def test_superiority_inconclusive_when_underpowered():
    phase = _phase([x + e for x, e in zip(BASE, [0.03, -0.02, 0.04, -0.01, 0.02, -0.03], strict=True)], BASE)
    (row,) = read_checks((Check("a > b", ("a", "reward"), ("b", "reward")),), phase)
    assert row["verdict"] == INCONCLUSIVE and row["delta"]["low"] < 0 < 0.01 < row["delta"]["high"]


def test_lower_is_better_and_non_inferiority_with_the_margin():
    harm = _phase([0.010, 0.012, 0.011, 0.009, 0.010, 0.011], [0.05, 0.06, 0.05, 0.055, 0.05, 0.06], "harm")
    (row,) = read_checks((Check("a < b", ("a", "harm"), ("b", "harm"), lower_is_better=True),), harm)
    assert row["verdict"] == REPRODUCED and row["delta"]["mean"] < 0
    # 0.005 below b, margin 0.01: not worse beyond the margin; 0.03 below: worse beyond it
    close = _phase([x - 0.005 for x in BASE], BASE)
    far = _phase([x - 0.03 + e for x, e in zip(BASE, [0.001, -0.001, 0.0, 0.001, 0.0, -0.001], strict=True)], BASE)
    check = Check("a not below b", ("a", "reward"), ("b", "reward"), kind="no_worse")
    assert read_checks((check,), close)[0]["verdict"] == REPRODUCED
    assert read_checks((check,), far)[0]["verdict"] == NOT_REPRODUCED


def test_holm_correction_across_a_claims_checks():
    # two checks each with one-sided p ≈ 0.02: alone each is reproduced, together Holm needs p < 0.0125 for the first
    gains = [0.02, -0.002, 0.03, 0.005, 0.025, 0.01]
    phase = _phase([x + g for x, g in zip(BASE, gains, strict=True)], BASE)
    check = Check("a > b", ("a", "reward"), ("b", "reward"))
    alone = read_checks((check,), phase)[0]
    assert 0.0125 < alone["p"] < 0.025 and alone["verdict"] == REPRODUCED
    both = read_checks((check, check), phase)
    assert [r["p_holm"] for r in both] == pytest.approx([2 * alone["p"]] * 2)
    assert [r["verdict"] for r in both] == [INCONCLUSIVE, INCONCLUSIVE]


def test_a_check_against_a_constant_is_the_metric_itself():
    phase = _phase([-0.3, -0.25, -0.35, -0.3, -0.28, -0.32], BASE, "chosen_logp")
    (row,) = read_checks((Check("falls", ("a", "chosen_logp"), 0.0, lower_is_better=True),), phase)
    assert row["b"]["mean"] == 0.0 and row["verdict"] == REPRODUCED and row["margin"] == 0.05


# -- phases -----------------------------------------------------------------------------------------------------


def test_tuning_picks_the_best_mean_and_the_power_calculation_reads_the_tuning_seeds():
    slots = {("a", i, s): {"metrics": {"reward": r}} for i, rs in enumerate([[0.5, 0.7], [0.65, 0.6], [0.6, 0.6]])
             for s, r in zip((0, 1), rs, strict=True)}  # means 0.6, 0.625, 0.6
    phase = Phase((0, 1), slots)
    assert phase.choose(Arm("a", "a", lambda size: [])) == 1
    assert phase.choose(Arm("a", "a", lambda size: [], maximize=False)) == 0  # the first of equals
    tuning = _phase([0.71, 0.73, 0.69], [0.70, 0.70, 0.70])  # gains 0.01, 0.03, -0.01: sd 0.02
    claim = load("dpo")
    power = tuning.power(claim.__class__(**{**claim.__dict__, "checks": (
        Check("a > b", ("a", "reward"), ("b", "reward")),)}), SIZES["full"])
    assert power[0]["sd"] == pytest.approx(0.02) and power[0]["n"] == SIZES["full"].most and power[0]["capped"]


@pytest.mark.parametrize("name", NAMES + REAL_NAMES)
@pytest.mark.parametrize("size", sorted(SIZES))
def test_every_arm_is_a_valid_config(name, size):
    claim = load(name)
    arms = {a.name: a for a in claim.arms}
    for check in claim.checks:
        assert check.a[0] in arms and (not isinstance(check.b, tuple) or check.b[0] in arms)
        assert check.the_margin() > 0
    grid = grid_of(claim, SIZES[size])
    for arm in claim.arms:
        assert arm.match is None or arms[arm.match].match is None  # a matched arm follows a tuned one
        for i in arm.points(grid):
            cfg = load_config(run_overrides(arm, SIZES[size], grid[i], seed=0))
            assert cfg.threads == 1
            if grid[i].learning_rate is not None:  # WORLD_POINT leaves it to the recipe and the world's overlay
                assert cfg.train.learning_rate == grid[i].learning_rate


def test_the_grid_holds_the_worlds_documented_points():
    labels = {p.label() for p in SIZES["full"].grid}
    assert {"lr 1e-4, β 1", "lr 2e-4, β 0.5", "lr 1e-5, β 0.1"} <= labels
    assert not set(SIZES["full"].tuning_seeds) & set(SIZES["full"].eval_seeds(SIZES["full"].most))


# -- report -----------------------------------------------------------------------------------------------------


def test_report_lists_claims_not_yet_run_with_their_command():
    page = render({})
    for name in NAMES + REAL_NAMES:
        assert f"`python -m benchmarks.claims {name}`" in page
    assert page.count(f"**{NOT_RUN}**") == len(NAMES + REAL_NAMES)
    assert "## The real-model arm" in page
    assert "Protocol v2" in page
    assert "Not yet run under protocol v2" in quote("dpo", None, ROOT / "docs" / "losses" / "dpo.md")
    assert "## Claim on the real-model world: LiPO-λ on SmolLM2-135M" in quote("real_lipo", None,
                                                                              ROOT / "docs" / "losses" / "lipo.md")


def test_only_protocol_v2_results_are_read(tmp_path, monkeypatch):
    import benchmarks.claims.__main__ as cli

    (tmp_path / "dpo.json").write_text(json.dumps({"verdict": "reproduced"}))  # a v1 file: no protocol field
    (tmp_path / "lipo.json").write_text(json.dumps({"protocol": PROTOCOL, "verdict": "inconclusive"}))
    monkeypatch.setattr(cli, "RESULTS", tmp_path)
    assert list(cli.saved_results()) == ["lipo"]


def test_one_claim_at_smoke_size_through_the_command_line(tmp_path):
    docs = ROOT / "docs" / "claims.md"
    before = docs.read_text()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.claims", "dpo", "--size", "smoke", "--jobs", "1",
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["claim"] == "dpo" and line["size"] == "smoke"
    assert line["tuning_seeds"] == [0, 1] and line["eval_seeds"] == [100, 101]
    assert line["control"]["passed"] is True and line["control"]["numbers"]["gap"]["low"] > 0.01
    assert line["verdict"] in (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)
    assert [c["delta"]["n"] for c in line["checks"]] == [2]
    saved = json.loads((tmp_path / "results" / "dpo.json").read_text())
    assert saved["protocol"] == PROTOCOL and saved["command"] == "python -m benchmarks.claims dpo --seeds 100 101 " \
                                                                 "--size smoke"
    assert docs.read_text() == before  # smoke size never touches the docs
    again = subprocess.run([sys.executable, "-m", "benchmarks.claims", "dpo", "--size", "smoke", "--jobs", "1",
                            "--out", str(tmp_path), "--seeds", "7"], cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 2 and "at least 2 evaluation seeds" in again.stderr


# -- the phases end to end, with synthetic runs -----------------------------------------------------------------


def _fake_claim(control_passes: bool, after_tuning: bool = True):
    from benchmarks.claims.core import Claim, Control

    def measure(ctx):
        return {"seen_points": {a: v["point"] for a, v in ctx.tuning.items()}, "seeds": list(ctx.seeds)}

    arms = (Arm("base", "tuned", lambda size: ["recipe=dpo"]),
            Arm("method", "matched", lambda size: ["recipe=rrpo"], match="base"))
    return Claim(name="fake", title="Fake", statement="s", setting="s", arms=arms,
                 checks=(Check("method > base", ("method", "reward"), ("base", "reward")),),
                 control=Control("c", measure, lambda n: control_passes, after_tuning=after_tuning))


def _fake_runs(monkeypatch):
    """Synthetic records: reward = 0.6 + lr·100 (the lr 2e-4 point wins) + 0.02 for rrpo + seed noise."""
    import benchmarks.claims.protocol as protocol

    ran = []

    def run_all(tasks, root, **kw):
        for task in tasks:
            o = dict(x.split("=", 1) for x in task.overrides)
            ran.append(o)
            seed, lr = int(o["train.seed"]), float(o["train.learning_rate"])
            reward = 0.6 + 100 * lr + (0.02 if o["recipe"] == "rrpo" else 0.0) + 0.001 * (seed % 3)
            yield task, {"metrics": {"reward": reward + 0.0005 * (seed % 2) * (o["recipe"] == "rrpo")},
                         "wall_seconds": 1.0, "cpu_seconds": 1.0}

    monkeypatch.setattr(protocol, "run_all", run_all)
    return ran


def test_the_phases_tune_match_power_and_evaluate_on_fresh_seeds(tmp_path, monkeypatch):
    from benchmarks.claims.protocol import run_claim

    ran = _fake_runs(monkeypatch)
    result = run_claim(_fake_claim(True), SIZES["full"], tmp_path, log=lambda m: None)
    grid = SIZES["full"].grid
    best = max(range(len(grid)), key=lambda i: grid[i].learning_rate)
    assert result["arms"]["base"]["point"] == best and result["arms"]["method"]["point"] == best
    assert result["arms"]["method"]["match"] == "base" and result["arms"]["method"]["tuning_means"] == {}
    assert result["control"]["numbers"]["seen_points"] == {"base": best, "method": best}
    assert result["eval_seeds"] == list(range(100, 100 + SIZES["full"].least))  # sd tiny: the floor of 6
    assert not set(result["eval_seeds"]) & set(result["tuning_seeds"])
    tuned = [o for o in ran if o["recipe"] == "dpo" and int(o["train.seed"]) < 100]
    assert len(tuned) == len(grid) * 3  # every grid point on every tuning seed, once
    matched = [o for o in ran if o["recipe"] == "rrpo" and int(o["train.seed"]) < 100]
    assert {o["train.learning_rate"] for o in matched} == {str(grid[best].learning_rate)}
    (check,) = result["checks"]
    assert check["verdict"] == REPRODUCED and check["delta"]["mean"] == pytest.approx(0.02, abs=1e-3)
    assert result["verdict"] == REPRODUCED and result["command"] == (
        "python -m benchmarks.claims fake --seeds " + " ".join(str(s) for s in result["eval_seeds"]))


@pytest.mark.parametrize("after_tuning", [True, False])
def test_a_failed_control_is_not_testable_and_runs_no_evaluation(tmp_path, monkeypatch, after_tuning):
    from benchmarks.claims.protocol import run_claim

    ran = _fake_runs(monkeypatch)
    result = run_claim(_fake_claim(False, after_tuning), SIZES["full"], tmp_path, log=lambda m: None)
    assert result["verdict"] == NOT_TESTABLE and result["checks"] == [] and result["eval_seeds"] == []
    assert result["control"]["passed"] is False
    assert all(int(o["train.seed"]) < 100 for o in ran)
    assert bool(ran) == after_tuning  # a control before tuning spares the tuning runs too


def test_given_evaluation_seeds_must_not_be_tuning_seeds(tmp_path, monkeypatch):
    from benchmarks.claims.protocol import run_claim

    _fake_runs(monkeypatch)
    with pytest.raises(ValueError, match="are tuning seeds"):
        run_claim(_fake_claim(True), SIZES["full"], tmp_path, log=lambda m: None, eval_seeds=(2, 100))


def test_an_unfinished_claim_shows_its_control_and_no_verdict(tmp_path):
    from benchmarks.claims.__main__ import unfinished

    claim, size = load("dpo"), SIZES["full"]
    (tmp_path / "controls").mkdir()
    (tmp_path / "controls" / "dpo-abc.json").write_text(json.dumps(
        {"gap": {"mean": 0.4, "low": 0.39, "high": 0.41, "n": 3}, "per_seed": [0.4, 0.39, 0.41]}))
    ours = run_overrides(claim.arms[0], size, size.grid[1], seed=2)
    for i, overrides in enumerate([ours, [*ours[:-1], "recipe=lipo", "train.seed=2"]]):
        (tmp_path / "runs" / str(i)).mkdir(parents=True)
        (tmp_path / "runs" / str(i) / "claims.json").write_text(json.dumps({"overrides": overrides}))
    result = unfinished(claim, size, tmp_path)
    assert result["verdict"] == "unfinished" and result["control"]["passed"] is True
    assert "1 of its training runs done; no verdict" in result["stopped"]
    page = render({"dpo": result})
    row = next(line for line in page.splitlines() if line.startswith("| [DPO](#dpo)"))
    assert f"**{NOT_RUN}** (stopped unfinished" in row and "passed: gap: 0.400 [0.390, 0.410]" in row
    assert "Claims run here" not in page  # an unfinished claim has no run to describe


def test_post_run_measures_resolve_the_lengths_a_model_path_run_left_to_its_model(tmp_path):
    """A run from a model path (RA-DPO's warmed base) saves ``generation.max_new_tokens: null``; the measures read
    the length from the saved model, as the run did, instead of failing on None."""
    from benchmarks.claims.measures import kl, reward_goal
    from prefopt.world import load_base_policy
    from prefopt.world.tasks import MAX_NEW_TOKENS

    model, tokenizer = load_base_policy()
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in ("rev abc", "sort 321", "rev xy")))
    cfg = load_config([f"model={tmp_path / 'model'}", "reward=prefopt.world.tasks:reward", f"data.prompts={prompts}",
                       f"data.eval_prompts={prompts}", "data.chat_template=always", "eval.samples_per_prompt=2",
                       "augment.template=goal {score}", "augment.system_role=true", "threads=1"])
    assert cfg.generation.max_new_tokens is None and model.generation_config.max_new_tokens == MAX_NEW_TOKENS
    goal = reward_goal(tmp_path, cfg)["reward_goal"]
    assert 0.0 <= goal <= 1.0
    assert kl(tmp_path, cfg)["kl"] == pytest.approx(0.0, abs=1e-6)  # the saved base against itself


def test_the_table_says_when_the_power_calculation_was_capped():
    saved = {"lipo": json.loads((ROOT / "benchmarks" / "claims" / "results" / "lipo.json").read_text())}
    capped = {**saved["lipo"], "capped": True, "n_needed": SIZES["full"].most}
    assert f"(power asked more than {SIZES['full'].most}: capped)" in render({"lipo": capped})
    uncapped = {**saved["lipo"], "capped": False, "n_needed": 7}
    page = render({"lipo": uncapped})
    assert "(power asked 7)" in page and "power asked more than" not in page


def test_the_choosing_guide_quotes_the_saved_verdicts():
    """docs/guides/choosing.md links each verdict to its claim: ``[verdict](../claims.md#name)``; a rerun that
    changes a verdict must change the guide."""
    import benchmarks.claims.__main__ as cli

    saved = cli.saved_results()
    guide = (ROOT / "docs" / "guides" / "choosing.md").read_text()
    quoted = re.findall(r"\[([^\]]+)\]\(\.\./claims\.md#(\w+)\)", guide)
    assert {name for _, name in quoted} >= {"dpo", "lipo", "dno", "osp", "cream", "ra_dpo", "d2o", "rrpo", "ches",
                                            "real_dpo", "real_lipo"}
    for verdict, name in quoted:
        assert verdict == saved[name]["verdict"], f"docs/guides/choosing.md quotes {name} as {verdict!r}"


@pytest.mark.parametrize(("args", "message"), [
    (["nope"], "unknown claim(s) nope; valid: lipo"),
    (["dpo", "--seeds", "1", "2", "--size", "smoke"], "evaluation seeds [1] are tuning seeds"),
])
def test_a_bad_command_line_is_one_usage_error_before_any_run(args, message, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchmarks.claims", *args, "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not any(tmp_path.iterdir())  # nothing was run or written
