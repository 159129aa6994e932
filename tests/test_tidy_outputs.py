"""Tidy outputs through the real command lines: smoke runs write under their output_dir, the CHES demo writes only
where asked, plots number rounds as the console does and mark where each round begins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from prefopt.outputs import curve_figure, reward_figure
from prefopt.run_folder import RunFolder
from prefopt.train import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def keep_threads():
    threads = torch.get_num_threads()  # smoke mode sets one thread for the process
    yield
    torch.set_num_threads(threads)


def test_smoke_writes_the_run_under_output_dir_and_its_inputs_in_the_cache(tmp_path, monkeypatch, keep_threads):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PREFOPT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for _ in range(2):  # smoke's own folder starts afresh each time
        assert main(["recipe=paper/dpo", "smoke=true"]) == 0
    run = tmp_path / "runs" / "paper-dpo-smoke"
    data = Path(OmegaConf.load(run / "config.yaml").data.train)  # an input: the dataset's schema fixture (packaged)
    from prefopt.data.schemas.fixtures import FIXTURES_DIR

    assert (run / "summary.json").exists() and data == FIXTURES_DIR / "tldr_preference.jsonl"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "runs"]


def test_smoke_respects_a_named_output_dir_that_holds_files(tmp_path, keep_threads, capsys):
    (tmp_path / "mine.txt").write_text("keep")
    assert main(["recipe=dpo", "smoke=true", f"output_dir={tmp_path}"]) == 2
    assert "overwrite=true" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"] and (tmp_path / "mine.txt").read_text() == "keep"


def test_ches_demo_writes_only_under_out(tmp_path, monkeypatch):
    from prefopt.ches.demo import main as demo

    figure = ROOT / "docs" / "img" / "ches_demo.png"
    before = figure.read_bytes()
    monkeypatch.chdir(tmp_path)
    assert demo(["--out", "demo", "--steps", "1", "--pairs-per-group", "4", "--subset", "2"]) == 0
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == ["ches_demo.png", "summary.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["demo"] and figure.read_bytes() == before


def test_docs_ches_numbers_belong_to_the_current_world():
    from prefopt.ches.demo import _world_fingerprint

    fingerprint = _world_fingerprint()
    assert fingerprint and f"world build `{fingerprint}`" in (ROOT / "docs" / "ches.md").read_text(), \
        "regenerate: python -m prefopt.ches.demo --plot docs/img/ches_demo.png, and the tables in docs/ches.md"


def test_plots_number_rounds_as_the_console_and_mark_round_starts(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["recipe=dpo", "rounds=2", "train.max_steps=3", "train.logging_steps=1", "data.n_prompts=8",
                 "eval.n_prompts=4", "generation.k=2", "threads=1", f"output_dir={out}"]) == 0
    console = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert "reward.png" in summary["plots"] and "loss.png" in summary["plots"]
    ax = reward_figure(summary["reward_per_round"]).axes[0]
    assert list(ax.get_xticks()) == [-1, 0, 1]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["before", "0", "1"]
    assert "[prefopt] round 0 evaluate:" in console and "[prefopt] round 1 evaluate:" in console
    ax = curve_figure("loss", RunFolder(out).read_metrics()).axes[0]
    boundaries = [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == "--"]
    assert boundaries == [3] and [t.get_text() for t in ax.texts] == ["round 1"]  # round 1 starts after step 3
    assert list(ax.lines[0].get_xdata()) == [1, 2, 3, 4, 5, 6]
