"""The worlds a run can live in: a model prefopt knows together with its prompts, its reward and its overlay.

    from prefopt.world.worlds import WORLDS, world_of, model_folder

    world_of(cfg)          # the tiny world when cfg.model is None, WORLDS[cfg.model] for a world's name, else None
    model_folder(world)    # a local folder transformers can load: the tiny world's embedded model, or model_path()

A world is everything a run needs beyond a recipe when no data is given: prompts to self-generate from and to
evaluate on, a verifiable reward, and the settings its model needs (the overlay ``recipes/<overlay>.yaml``, applied
above the recipe and below the user's YAML, see ``prefopt.config``). Adding a world is one entry here, its module and
its overlay file; nothing else in prefopt asks which world it is in.

``world=NAME`` names the world explicitly, e.g. to continue a model trained in it (``model=runs/dpo/model
world=tiny``): its prompts, reward and overlay apply to that model.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class World:
    name: str            # "tiny", "smollm2-135m"
    reward: str          # "module:function", (prompt, response) -> float
    prompts: str         # "module:function", (n: int, *, seed: int, split: str = "train"|"eval") -> list[str]
    overlay: str         # recipe-relative name of its overlay YAML, e.g. "worlds/tiny" -> recipes/worlds/tiny.yaml
    model_path: str | None = None  # "module:function" () -> local folder of the model (fetching on first use);
                                    # None for the tiny world (its model is the embedded one)
    gold: str | None = None  # optional "module:function" (prompt) -> the right response, for data.gold_field (DNO)


WORLDS: dict[str, World] = {
    "tiny": World(name="tiny", reward="prefopt.world.tasks:reward", prompts="prefopt.world.tasks:make_prompts",
                  overlay="worlds/tiny", gold="prefopt.world.tasks:solve"),
    # SmolLM2-135M-Instruct, fetched into prefopt's cache on first use (prefopt/world/fetch.py, docs/worlds.md)
    "smollm2-135m": World(name="smollm2-135m", reward="prefopt.world.smollm2:reward",
                          prompts="prefopt.world.smollm2:prompts", overlay="worlds/smollm2-135m",
                          model_path="prefopt.world.smollm2:model_path"),
}


def _get(cfg: Any, name: str) -> Any:
    # a DictConfig, a dict (a saved config) or any object with attributes; a missing key reads as None
    return cfg.get(name) if hasattr(cfg, "get") else getattr(cfg, name, None)


def world_of(cfg: Any) -> World | None:
    """The run's world: ``cfg.world`` when set, else the tiny world when ``cfg.model`` is None, the world of that
    name when ``cfg.model`` is a world's name, and None for any other model (a hub id or a local folder)."""
    named, model = _get(cfg, "world"), _get(cfg, "model")
    if named is not None:
        if named not in WORLDS:
            raise ValueError(f"world={named!r} is not a world; valid: {', '.join(sorted(WORLDS))}")
        return WORLDS[named]
    if model is None:
        return WORLDS["tiny"]
    return WORLDS.get(model)


def resolve(spec: str) -> Callable:
    """The function a world names as ``module:function``."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def world_prompts(world: World, n: int, *, seed: int, split: str = "train") -> list:
    return resolve(world.prompts)(n, seed=seed, split=split)


def model_folder(world: World) -> str:
    """A local folder with the world's model and tokenizer (built or fetched on first use)."""
    if world.model_path is None:
        from prefopt.world.model import world_paths

        return str(world_paths().model)
    return str(resolve(world.model_path)())


def uses_world_model(cfg: Any) -> bool:
    """Whether the policy is the world's own model (``model`` unset or the world's name), not a model of the user's
    that runs in a named world."""
    world = world_of(cfg)
    return world is not None and _get(cfg, "model") in (None, world.name)
