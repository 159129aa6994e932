"""``python -m prefopt.ches`` end to end on a tiny model saved to disk, and its command-line errors."""

from __future__ import annotations

import json

import pytest

from prefopt.ches.__main__ import main, parse_args
from prefopt.data.sources import load_records

ROWS = [
    {"prompt": "Say hi", "chosen": "Hello there!", "rejected": "Go away"},
    {"prompt": "What is 2+2?", "chosen": "4", "rejected": "Five, I think"},
    {"prompt": "Name a colour", "chosen": "Blue", "rejected": "Bleu"},
    {"prompt": "x", "responses": ["a", "yes yes", "no"], "scores": [0.5, 1.0, 0.0]},
    {"prompt": "Pick", "chosen": "left", "rejected": "right"},
    {"prompt": "tie", "responses": ["a", "b"], "scores": [1.0, 1.0]},  # no preference: skipped by load_records
]


@pytest.fixture(scope="module")
def saved(tmp_path_factory, ches_model, ches_tok):
    root = tmp_path_factory.mktemp("cli")
    ches_model.save_pretrained(root / "model")
    ches_tok.save_pretrained(root / "model")
    data = root / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return root


def test_cli_end_to_end(saved, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [f"model={saved / 'model'}", f"data={saved / 'pairs.jsonl'}", f"output={out}", "keep_fraction=0.4",
            "batch_size=2"]
    assert main(argv) == 0
    assert "kept 2 of 5 pairs" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {"scored.jsonl", "filtered.jsonl", "ches_report.json",
                                              "ches_hist.png", "config.yaml"}
    scored = [json.loads(line) for line in (out / "scored.jsonl").read_text().splitlines()]
    assert len(scored) == 5 and all(isinstance(r["meta"]["ches"], float) for r in scored)
    filtered, report = load_records(str(out / "filtered.jsonl"))  # readable as preference lists
    assert len(filtered) == report.kept == 2
    kept_scores = sorted(r["meta"]["ches"] for r in scored)[:2]
    assert sorted(r["meta"]["ches"] for r in filtered) == kept_scores
    summary = json.loads((out / "ches_report.json").read_text())
    assert summary["kept"] == 2 and summary["dropped"] == 3 and summary["score"] == "LN-CHES"


def test_cli_refuses_a_non_empty_output_unless_overwrite(saved, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "something").write_text("keep me")
    argv = [f"model={saved / 'model'}", f"data={saved / 'pairs.jsonl'}", f"output={out}"]
    assert main(argv) == 2
    assert "not empty" in capsys.readouterr().err and not (out / "scored.jsonl").exists()
    assert main(argv + ["overwrite=true", "threshold=1e9"]) == 0
    assert (out / "something").read_text() == "keep me" and (out / "filtered.jsonl").exists()


@pytest.mark.parametrize("argv, message", [
    (["modle=x"], "unknown key(s): modle; valid keys: model, data, output"),
    (["keep_fraction=0.1", "threshold=2"], "exactly one"),
    (["batch_size=many"], "bad value"),
    (["data"], "key=value"),
    (["dtype=float8"], "dtype must be one of"),
])
def test_cli_usage_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_help_and_default_rule(capsys):
    assert main(["--help"]) == 0
    assert "keep_fraction" in capsys.readouterr().out
    assert parse_args([]).keep_fraction == 0.05  # no rule given: the paper's 5%
    assert parse_args(["drop_fraction=0.1"]).keep_fraction is None


def test_a_missing_file_is_one_error_line(saved, tmp_path, capsys):
    assert main([f"model={saved / 'model'}", f"data={tmp_path / 'nope.jsonl'}", f"output={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: data file not found: {tmp_path / 'nope.jsonl'}\n"
    assert main([f"model={tmp_path / 'no-model'}", f"data={saved / 'pairs.jsonl'}", f"output={tmp_path / 'o2'}"]) == 2
    err = capsys.readouterr().err.splitlines()[-1]  # after the note on the tied row of the data
    assert err == f"error: model folder not found: {tmp_path / 'no-model'}"


def test_a_cut_that_keeps_nothing_writes_every_file_warns_and_exits_0_as_documented(saved, tmp_path, capsys):
    from pathlib import Path

    out = tmp_path / "out"
    argv = [f"model={saved / 'model'}", f"data={saved / 'pairs.jsonl'}", f"output={out}", "threshold=-1e30"]
    assert main(argv) == 0
    assert "warning: the cut keeps no pair; filtered.jsonl is empty" in capsys.readouterr().err
    assert (out / "filtered.jsonl").read_text() == "" and len((out / "scored.jsonl").read_text().splitlines()) == 5
    docs = " ".join((Path(__file__).resolve().parents[2] / "docs" / "ches.md").read_text().split())
    assert "A cut that keeps no pair still writes every file (`filtered.jsonl` empty" in docs
    assert "prints a warning and exits 0" in docs
