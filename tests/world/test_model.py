"""The base policy: built from a config, deterministic, cached atomically, shipped assets kept in sync."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from prefopt.world import model as world_model
from prefopt.world.model import (
    ASSETS_DIR,
    MANIFEST,
    WorldConfig,
    build_base_policy,
    load_base_policy,
    world_paths,
)

TINY = WorldConfig(warmup_steps=3, batch_size=8)  # seconds, not the real warm-up


def test_config_fingerprint_tracks_every_field():
    assert TINY.fingerprint() == WorldConfig(warmup_steps=3, batch_size=8).fingerprint()
    assert TINY.fingerprint() != WorldConfig(warmup_steps=3, batch_size=8, seed=1).fingerprint()
    assert WorldConfig().fingerprint() != TINY.fingerprint()


def test_build_is_deterministic(tmp_path):
    a = build_base_policy(tmp_path / "a", TINY)
    b = build_base_policy(tmp_path / "b", TINY)
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert json.loads((a / MANIFEST).read_text())["fingerprint"] == TINY.fingerprint()


def test_build_leaves_the_callers_rng_and_threads_alone(tmp_path):
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_base_policy(tmp_path / "w", TINY)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_load_builds_once_then_reuses_the_cache(tmp_path, monkeypatch):
    model, tok = load_base_policy(tmp_path, config=TINY, use_assets=False)
    folder = tmp_path / f"{world_model.WORLD_NAME}-{TINY.fingerprint()}"
    assert world_paths(tmp_path, config=TINY, use_assets=False).model == folder
    assert not model.training and model.config.vocab_size == len(tok)
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no temporary folders left behind

    def no_rebuild(*args, **kwargs):
        raise AssertionError("rebuilt a cached world")

    monkeypatch.setattr(world_model, "build_base_policy", no_rebuild)
    again, _ = load_base_policy(tmp_path, config=TINY, use_assets=False)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), again.parameters(), strict=True))


def test_cache_root_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFOPT_CACHE", str(tmp_path / "env"))
    assert world_paths(config=TINY, use_assets=False).model.parent == tmp_path / "env"


def test_stale_cache_is_rebuilt(tmp_path):
    folder = world_paths(tmp_path, config=TINY, use_assets=False).model
    manifest = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps({**manifest, "fingerprint": "stale"}))
    assert world_paths(tmp_path, config=TINY, use_assets=False).model == folder
    assert json.loads((folder / MANIFEST).read_text())["fingerprint"] == TINY.fingerprint()


def test_losing_a_build_race_is_harmless(tmp_path):
    """Two processes that both build: the second rename fails, and its identical copy is dropped."""
    final = tmp_path / "world"
    world_model._build_into_cache(final, TINY)
    world_model._build_into_cache(final, TINY)  # final exists and is current: the rename loses, quietly
    assert [p.name for p in tmp_path.iterdir()] == ["world"]


def test_shipped_assets_match_the_default_world():
    """Fails when the world changed without ``python -m prefopt.world.build`` being rerun."""
    manifest = json.loads((ASSETS_DIR / MANIFEST).read_text())
    assert manifest["fingerprint"] == WorldConfig().fingerprint(), "stale assets: run python -m prefopt.world.build"
    assert world_paths().model == ASSETS_DIR
    assert (ASSETS_DIR / "model.safetensors").stat().st_size < 2_000_000


def test_shipped_base_policy_loads_with_auto_classes():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    paths = world_paths()
    model = AutoModelForCausalLM.from_pretrained(paths.model)
    tok = AutoTokenizer.from_pretrained(paths.tokenizer)
    assert model.config.model_type == "llama" and tok.chat_template and tok.pad_token_id != tok.eos_token_id
    assert model.generation_config.pad_token_id == tok.pad_token_id


@pytest.mark.parametrize("name", ["build_tokenizer", "load_base_policy", "make_prompts", "reward", "world_paths",
                                  "MAX_NEW_TOKENS"])
def test_public_surface_resolves_to_the_defining_module(name):
    """Each lazy export is the very object its module defines (not a copy, not a stale name)."""
    import importlib

    import prefopt.world

    module = importlib.import_module(prefopt.world._EXPORTS[name])
    assert getattr(prefopt.world, name) is getattr(module, name)
    assert name in prefopt.world.__all__
    with pytest.raises(AttributeError, match="nope"):
        prefopt.world.nope  # noqa: B018


def test_shipped_base_policy_is_imperfect_but_competent():
    """Room to improve at temperature 1 (the repeated answers), and greedy decoding does better than sampling."""
    from prefopt.rounds.evaluate import evaluate_reward
    from prefopt.world.tasks import MAX_NEW_TOKENS, make_prompts, reward

    model, tok = load_base_policy()
    prompts = make_prompts(128, seed=0, split="eval")
    sampled = evaluate_reward(model, tok, prompts, reward, max_new_tokens=MAX_NEW_TOKENS)
    greedy = evaluate_reward(model, tok, prompts, reward, max_new_tokens=MAX_NEW_TOKENS, temperature=0)
    assert 0.4 < sampled["mean"] < 0.75
    assert greedy["mean"] > sampled["mean"]
