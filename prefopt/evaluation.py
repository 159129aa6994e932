"""Reward before/after: mean sampled reward over held-out prompts with a 95% confidence interval."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from prefopt.data.records import load_prompts
from prefopt.data.score import resolve_import_path

WORLD_REWARD = "prefopt.world.tasks:reward"


def as_chat(prompts: list, tokenizer) -> list:
    """Plain prompts become a user turn when the tokenizer has a chat template, so generation, scoring and
    training all see the same rendered context."""
    if not getattr(tokenizer, "chat_template", None):
        return list(prompts)
    return [p if isinstance(p, list) else [{"role": "user", "content": p}] for p in prompts]


def reward_spec(cfg: DictConfig) -> str | None:
    """The run's verifiable reward: ``cfg.reward``, or the tiny world's when the run uses the world's model."""
    return cfg.reward or (WORLD_REWARD if cfg.model is None else None)


def eval_prompts(cfg: DictConfig) -> list | None:
    if cfg.data.eval_prompts:
        return load_prompts(cfg.data.eval_prompts)[: cfg.eval.n_prompts]
    if cfg.model is None:
        from prefopt.world import make_prompts

        return make_prompts(cfg.eval.n_prompts, seed=10_000, split="eval")
    return None


@dataclass
class RewardEval:
    prompts: list
    reward_fn: Callable[[Any, str], float]
    tokenizer: Any
    samples_per_prompt: int
    max_new_tokens: int
    temperature: float
    seed: int

    @classmethod
    def from_config(cls, cfg: DictConfig, tokenizer) -> RewardEval | None:
        spec, prompts = reward_spec(cfg), eval_prompts(cfg)
        if not cfg.eval.enabled or spec is None or not prompts:
            return None
        return cls(as_chat(prompts, tokenizer), resolve_import_path(spec), tokenizer, cfg.eval.samples_per_prompt,
                   cfg.generation.max_new_tokens, cfg.eval.temperature, cfg.train.seed + 999)

    def __call__(self, model) -> dict[str, float]:
        from prefopt.world.evaluate import evaluate_reward

        return evaluate_reward(model, self.tokenizer, self.prompts, self.reward_fn,
                               samples_per_prompt=self.samples_per_prompt, max_new_tokens=self.max_new_tokens,
                               temperature=self.temperature, seed=self.seed)
