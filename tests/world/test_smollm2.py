"""The SmolLM2 world's questions and reward, without the model (tests/world/test_real_model.py runs the model)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from prefopt.config import RunConfig, recipe_path
from prefopt.world import smollm2
from prefopt.world.worlds import WORLDS, world_of


def test_train_and_eval_questions_ask_about_disjoint_subjects():
    train = smollm2.prompts(600, seed=0)
    held = smollm2.prompts(132, seed=0, split="eval")
    subjects = {s: {smollm2.subject_of(p) for p in ps} for s, ps in (("train", train), ("eval", held))}
    assert not subjects["train"] & subjects["eval"] and None not in subjects["train"] | subjects["eval"]
    assert len(subjects["eval"]) == 22 and len(set(held)) == 132  # every eval question once before any repeats
    assert smollm2.prompts(5, seed=3) == smollm2.prompts(5, seed=3) != smollm2.prompts(5, seed=4)
    assert "Describe an octopus in one sentence." in smollm2.prompts(1000, seed=0, split="train") + held
    with pytest.raises(ValueError, match="split must be one of"):
        smollm2.prompts(1, seed=0, split="test")


def test_reward_arithmetic():
    q = "In one sentence: what is a glacier?"
    assert smollm2.reward(q, " A glacier is a slow river of ice. ") == pytest.approx(1 + 0.5 - 0.02 * 8)
    assert smollm2.reward(q, "A glacier is a slow river of") == pytest.approx(0.5 - 0.02 * 7)  # cut off
    assert smollm2.reward(q, "Glaciers melt!") == pytest.approx(1.5 - 0.04)  # the plural names it too
    assert smollm2.reward(q, "It is ice.") == pytest.approx(1 - 0.06)  # does not name the subject
    assert smollm2.reward(q, "Glacierfields are") == pytest.approx(-0.04)  # a longer word is not the subject
    assert smollm2.reward(q, "") == 0.0
    assert smollm2.reward("a question of yours?", "Yes.") == pytest.approx(0.98)  # no subject to name


def test_the_world_is_registered_with_an_overlay_of_valid_keys():
    world = world_of({"model": "smollm2-135m"})
    assert world is WORLDS["smollm2-135m"] and world.model_path == "prefopt.world.smollm2:model_path"
    overlay = OmegaConf.load(recipe_path(world.overlay))
    cfg = OmegaConf.merge(OmegaConf.structured(RunConfig), overlay)  # raises on a key or type the config lacks
    assert cfg.peft.enabled and cfg.reference.mode == "adapter" and cfg.generation.max_new_tokens == 24
