"""Progress through the real CLI: a tqdm bar and one ``[prefopt]`` line per stage, ``stage_seconds`` in
summary.json (totals over rounds), third-party deprecation notices hidden and real warnings kept."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from prefopt.rounds.build import report_line
from prefopt.stages import STAGES

REWARD = """import warnings

def length(prompt, response):
    warnings.warn("my reward is approximate")  # a real warning: the user must still see it (once, by default)
    return float(len(response))
"""


@pytest.fixture(scope="module")
def two_rounds(tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    (work / "myreward.py").write_text(REWARD)
    args = ["recipe=dpo", "rounds=2", "reward=myreward:length", "reference.mode=precomputed", "train.max_steps=2",
            "data.n_prompts=8", "eval.n_prompts=4", "generation.k=2", "threads=1", f"output_dir={work / 'run'}"]
    env = {**os.environ, "PREFOPT_CACHE": str(work / "cache")}  # a fresh reference cache: the bar must run
    done = subprocess.run([sys.executable, "-m", "prefopt.train", *args], cwd=work, capture_output=True, text=True,
                          timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done, json.loads((work / "run" / "summary.json").read_text())


def test_one_line_per_stage_with_count_and_duration(two_rounds):
    done, _ = two_rounds
    lines = [line for line in done.stdout.splitlines() if line.startswith("[prefopt]")]
    expected = [r"evaluate before training: reward [\d.]+ \[[\d.]+, [\d.]+\] \(n=16\)",
                r"samples before training \(16 in .*/samples/before.jsonl\):"]  # then three samples, indented
    for index in (0, 1):
        expected += [rf"round {index} generate: 16 responses to 8 prompts", rf"round {index} score: 16 responses .*",
                     rf"round {index} data: \d+ lists ready; pairing 8→\d+.*",
                     rf"round {index} reference: log-probs of \d+ lists precomputed",
                     rf"round {index} train: 2 steps on \d+ lists, mean loss [\d.]+",
                     rf"round {index} evaluate: reward [\d.]+ .*\(n=16\)",
                     rf"samples after round {index} \(16 in .*/samples/round_{index}.jsonl\):"]
    timed = [e + r" \(\d+\.\ds\)" if " data: " not in e and "samples " not in e else e for e in expected]
    assert len(lines) == len(timed) + 1, "\n".join(lines)  # + the final before → after line
    for pattern, line in zip(timed, lines, strict=False):
        assert re.fullmatch(r"\[prefopt\] " + pattern, line), line


def test_progress_bars_for_generation_scoring_reference_and_evaluation(two_rounds):
    done, _ = two_rounds
    for desc in ("generate", "score", "reference log-probs", "evaluate"):
        assert re.search(rf"(^|\r){re.escape(desc)}: +100%", done.stderr, re.M), desc


def test_stage_seconds_are_totals_over_rounds(two_rounds):
    done, summary = two_rounds
    seconds = summary["stage_seconds"]
    assert set(STAGES) <= set(seconds) and all(v >= 0 for v in seconds.values())
    printed = [float(s) for s in re.findall(r"round \d train: .* \((\d+\.\d)s\)", done.stdout)]
    assert len(printed) == 2 and seconds["train"] == pytest.approx(sum(printed), abs=0.11)


def test_deprecation_noise_is_hidden_and_real_warnings_kept(two_rounds):
    done, _ = two_rounds
    assert "FutureWarning" not in done.stderr and "DeprecationWarning" not in done.stderr
    assert done.stderr.count("UserWarning: my reward is approximate") == 1


def test_the_data_line_reads_every_step_report():
    report = {"reused": True, "pairing": {"rows": 8, "kept": 6, "dropped_ties": 1, "dropped": {"min_margin": 1}},
              "ches": {"n": 6, "kept": 3, "dropped": 3, "cut": 0.25, "non_finite": 0, "quantiles": {"p50": 0.1}},
              "tokenize": {"rows": 3, "kept": 3, "dropped_prompt_too_long": 0, "truncated_rows": 2}}
    assert report_line(report) == ("pairing 8→6, dropped_ties 1, min_margin 1; ches 6→3, dropped 3; "
                                   "tokenize 3→3, truncated_rows 2")
