"""Results in the tracker, through the real CLI: a W&B offline run and a TensorBoard run hold the reward before and
after, each round's reward, the data report and the plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prefopt.train import main

TINY = ["recipe=dpo", "train.max_steps=2", "train.logging_steps=1", "data.n_prompts=8", "eval.n_prompts=4",
        "generation.k=2", "threads=1"]


def wandb_records(path: Path):
    """The protobuf records of a ``run-*.wandb`` file (W&B's append-only log: a 7-byte header, then LevelDB
    log blocks of 32 KiB whose chunks carry a 4-byte CRC, a 2-byte length and a 1-byte type)."""
    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32 * 1024
    assert data[:4] == b":W&B"
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST: a whole record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def test_wandb_offline_run_holds_the_reward_before_and_after(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    assert main([*TINY, "report_to=wandb", f"output_dir={out}"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    [log] = list(out.glob("wandb/offline-run-*/run-*.wandb"))
    final, history = {}, []
    for record in wandb_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "summary":
            final.update({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.summary.update})
        if kind == "history":
            history.append({i.key or "/".join(i.nested_key): i.value_json for i in record.history.item})
    for when in ("before", "after"):
        for key in ("mean", "ci95_low", "ci95_high", "n"):
            assert final[f"reward/{when}_{key}"] == pytest.approx(summary[f"reward_{when}"][key])
    assert final["summary/steps"] == 2 and "summary/tokens_per_second" in final
    rounds = [h for h in history if "reward/round_mean" in h]
    assert len(rounds) == 1 and json.loads(rounds[0]["round"]) == 0
    assert json.loads(rounds[0]["data/pairing/kept"]) == summary["rounds"][0]["data"]["pairing"]["kept"]
    assert "data/pairing/dropped_ties" in rounds[0]
    assert any("train/loss" in h for h in history)  # the Trainer's curves went into the same run
    plots = {"/".join(k.split("/")[:2]) for h in history for k in h if k.startswith("plots/")}  # image fields
    assert plots == {f"plots/{Path(p).stem}" for p in summary["plots"]} and "plots/loss" in plots
    [table] = [h for h in history if "completions/_type" in h]  # what the model wrote, before and after
    assert json.loads(table["completions/_type"]) == "table-file"
    [file] = list(out.glob("wandb/offline-run-*/files/media/table/completions_*.table.json"))
    content = json.loads(file.read_text())
    assert content["columns"] == ["evaluation", "prompt", "response", "reward"]
    before = [json.loads(x) for x in (out / "samples" / "before.jsonl").read_text().splitlines()]
    assert [row[2:] for row in content["data"][:16]] == [[s["response"], s["reward"]] for s in before]


def test_tensorboard_event_files_hold_the_reward_before_and_after(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    assert main([*TINY, "report_to=tensorboard", f"output_dir={out}"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    results = EventAccumulator(str(out / "tensorboard" / "results"), size_guidance={"images": 0}).Reload()
    scalars = {tag: [(e.step, e.value) for e in results.Scalars(tag)] for tag in results.Tags()["scalars"]}
    for when in ("before", "after"):
        assert scalars[f"reward/{when}_mean"] == [(0, pytest.approx(summary[f"reward_{when}"]["mean"]))]
        assert scalars[f"reward/{when}_ci95_high"] == [(0, pytest.approx(summary[f"reward_{when}"]["ci95_high"]))]
    assert scalars["reward/round_mean"] == [(0, pytest.approx(summary["rounds"][0]["reward"]["mean"]))]
    assert scalars["data/pairing/kept"] == [(0, summary["rounds"][0]["data"]["pairing"]["kept"])]
    assert {f"plots/{Path(p).stem}" for p in summary["plots"]} <= set(results.Tags()["images"])
    texts = {tag: results.Tensors(tag)[0].tensor_proto.string_val[0].decode() for tag in results.Tags()["tensors"]
             if tag.startswith("samples/")}
    assert set(texts) == {"samples/before/text_summary", "samples/round_0/text_summary"}
    first = json.loads((out / "samples" / "round_0.jsonl").read_text().splitlines()[0])
    assert texts["samples/round_0/text_summary"].startswith("| prompt | response | reward |")
    assert f"| {first['response']} | {first['reward']:.3f} |" in texts["samples/round_0/text_summary"]
    curves = EventAccumulator(str(out / "tensorboard" / "round_0")).Reload()
    assert [e.step for e in curves.Scalars("train/loss")] == [1, 2]  # the Trainer's own callback, one folder a round
