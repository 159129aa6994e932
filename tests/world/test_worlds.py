"""The world registry: which world a run is in, and that a second world needs only its registry entry."""

from __future__ import annotations

import json

import pytest

from prefopt.train import main
from prefopt.world.worlds import WORLDS, World, uses_world_model, world_of
from tests.world import second_world

SECOND = World(name="second", reward="tests.world.second_world:reward",
               prompts="tests.world.second_world:make_prompts", overlay="worlds/tiny",
               model_path="tests.world.second_world:model_path")


def test_world_of_the_model_name_or_the_explicit_world():
    assert world_of({"model": None}) is WORLDS["tiny"]
    assert world_of({"model": "tiny"}) is WORLDS["tiny"]
    assert world_of({"model": "Qwen/Qwen2.5-0.5B-Instruct"}) is None
    assert world_of({"model": "runs/dpo/model", "world": "tiny"}) is WORLDS["tiny"]
    assert uses_world_model({"model": None}) and not uses_world_model({"model": "runs/dpo/model", "world": "tiny"})
    with pytest.raises(ValueError, match="world=.nope. is not a world; valid: smollm2-135m, tiny"):
        world_of({"model": None, "world": "nope"})


def test_an_unknown_world_is_one_error_line(capsys):
    assert main(["world=nope", "train.max_steps=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "world='nope' is not a world" in err


def test_a_second_world_runs_from_its_registry_entry_alone(monkeypatch, tmp_path):
    """Registering a world is all it takes: its model folder is loaded, its prompts self-generated and its reward
    scores the samples and the reward before/after."""
    monkeypatch.setitem(WORLDS, "second", SECOND)
    monkeypatch.setenv("SECOND_WORLD_DIR", str(tmp_path / "model"))
    monkeypatch.setattr(second_world, "CALLS", {k: 0 for k in second_world.CALLS})
    out = tmp_path / "run"
    assert main(["model=second", "generation.max_new_tokens=4", "generation.k=2", "data.n_prompts=8",
                 "eval.n_prompts=4", "eval.samples_per_prompt=1", "train.max_steps=1",
                 "train.per_device_batch_size=2", f"output_dir={out}"]) == 0
    calls = second_world.CALLS
    assert calls["model_path"] >= 1 and calls["prompts"] >= 2 and calls["reward"] > 0
    rows = [json.loads(line) for line in (out / "round_0" / "data.jsonl").read_text().splitlines()]
    assert rows and all(r["prompt"].startswith("count ") or r["prompt"][-1]["content"].startswith("count ")
                        for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert "reward_before" in summary and "reward_after" in summary
