"""The tiny embedded world: a character-level tokenizer, a small Llama base policy and tasks with a graded reward.

Every recipe runs here when no model or data is given. Imports are lazy (transformers is heavy):

    from prefopt.world import load_base_policy, make_prompts, reward, MAX_NEW_TOKENS

The base policy (134k parameters, shipped in ``assets/``) answers ``sort 52813`` / ``rev kdmq`` / ``next abyz``
and, about half the time, says its answer twice; its sampled reward is about 0.58. DPO on best-vs-worst pairs of
its own samples reaches about 0.72 (``python -m benchmarks.world_dpo_check``) with β = 1 and lr = 1e-4 (β = 0.5
with lr = 2e-4, or β = 0.1 with lr = 1e-5, also work). The paper's β = 0.1 with an lr of 1e-4 or more collapses:
responses of five tokens cannot carry the 10-30 nat margins β = 0.1 asks for, so Adam finds them by wrecking
both likelihoods (likelihood displacement), and the reward falls below the base's.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "build_tokenizer": "prefopt.world.tokenizer",
    "load_base_policy": "prefopt.world.model",
    "world_paths": "prefopt.world.model",
    "WorldConfig": "prefopt.world.model",
    "make_prompts": "prefopt.world.tasks",
    "reward": "prefopt.world.tasks",
    "MAX_NEW_TOKENS": "prefopt.world.tasks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'prefopt.world' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
