"""The DPO family through the real CLI: every TRL loss_type, SimPO, ORPO and a weighted sum train on the tiny world;
SimPO and ORPO build no reference model and run no reference forward; KTO trains on TRL's unpaired format."""

from __future__ import annotations

import json

import pytest
import torch

from losses import TRL_LOSS_TYPES
from prefopt.train import main
from tests.test_cli import PAIRS

# the tiny world, as small as a run gets: 4 prompts, 2 samples each, 1 step, no evaluation
TINY = ["train.max_steps=1", "data.n_prompts=4", "generation.k=2", "generation.max_new_tokens=8", "eval.enabled=false",
        "train.per_device_batch_size=4", "threads=1"]


@pytest.fixture
def local_run(tmp_path, model_dir):
    """The tiny model saved as a local HF folder and a TRL pairs file (as tests/test_cli.py), on one thread."""
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    return [f"model={model_dir}", f"data.train={data}", "train.max_steps=3", "train.per_device_batch_size=4",
            "train.logging_steps=1", "threads=1", f"output_dir={tmp_path / 'run'}"]


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", [*TRL_LOSS_TYPES, "[sigmoid,sft]"])  # simpo, orpo, kto: the tests below
def test_each_loss_trains_through_the_cli_on_the_tiny_world(name, tmp_path):
    extra = ["loss.weights=[1.0,0.5]"] if name.startswith("[") else []
    assert main([f"loss.name={name}", *extra, *TINY, f"output_dir={tmp_path / 'run'}"]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 1 and summary["loss"] == name.strip("[]").replace(",", "+")
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in summary["rounds"])


@pytest.mark.parametrize("name", ["simpo", "orpo"])
def test_reference_free_losses_build_no_reference(name, tmp_path, monkeypatch, capsys):
    """No reference model is made (the copy and the loader would raise) and the trainer holds none."""
    import prefopt.run

    def no_reference(*args, **kwargs):
        raise AssertionError("a reference model was built")

    monkeypatch.setattr(prefopt.run, "frozen_copy", no_reference)
    trainers = []
    real = prefopt.run.PreferenceTrainer

    class Spy(real):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            trainers.append(self)

    monkeypatch.setattr(prefopt.run, "PreferenceTrainer", Spy)
    assert main([f"loss.name={name}", *TINY, f"output_dir={tmp_path / 'run'}"]) == 0
    assert trainers and trainers[0].ref_model is None
    assert f"none (loss {name} needs no reference)" in capsys.readouterr().out


def _unpaired_file(tmp_path):
    rows = [{"prompt": p["prompt"], "completion": p["chosen" if i % 2 else "rejected"], "label": bool(i % 2)}
            for i, p in enumerate(PAIRS)]
    path = tmp_path / "unpaired.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_kto_trains_on_trls_unpaired_format(local_run, tmp_path):
    path = _unpaired_file(tmp_path)
    assert main([*local_run, "loss.name=kto", f"data.train={path}"]) == 0
    saved = [json.loads(x) for x in (tmp_path / "run" / "round_0" / "data.jsonl").read_text().splitlines()]
    assert len(saved) == len(PAIRS) and all(r["meta"]["unpaired"] and len(r["responses"]) == 1 for r in saved)
    assert [r["scores"] for r in saved[:2]] == [[0.0], [1.0]]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 3


def test_kto_on_pairs_unpairs_them(local_run, tmp_path, capsys):
    assert main([*local_run, "loss.name=kto"]) == 0
    assert f"{2 * len(PAIRS)} lists" in capsys.readouterr().out  # each pair became two labelled examples


@pytest.mark.parametrize("args, message", [
    (["loss.name=dpo"], "data.train is in TRL's unpaired format (prompt, completion, label)"),
    (["loss.name=kto", "train.per_device_batch_size=1"], "train.per_device_batch_size must be >= 2"),
])
def test_unpaired_mistakes_are_one_line_errors_before_anything_is_written(local_run, tmp_path, capsys, args, message):
    path = _unpaired_file(tmp_path)
    assert main([*local_run, f"data.train={path}", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and not (tmp_path / "run").exists()


def test_a_bad_label_names_the_line_and_field(local_run, tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"prompt": "sort 21:", "completion": " 12", "label": "yes"}) + "\n")
    assert main([*local_run, "loss.name=kto", f"data.train={path}"]) == 2
    assert "line 1: field 'label' must be true (desirable) or false (undesirable), got 'yes'" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["loss.name=[sigmoid,sft]", "loss.weights=[1.0]"], "loss.weights has 1 value(s) for 2 loss(es)"),
    (["loss.name=sigmoid", "loss.weights=2"], "loss.weights must be a list with one number per loss"),
    (["loss.name=[sigmoid,sft]", "loss.label_smoothing=0.1"], "sigmoid+sft has no hyper-parameter"),
    (["loss.name=[kto,sft]"], "cannot be combined"),
])
def test_combination_mistakes_are_one_line_errors(args, message, capsys):
    assert main(args) == 2
    assert message in capsys.readouterr().err
