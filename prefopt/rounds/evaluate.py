"""Reward before/after: mean sampled reward over held-out prompts with a 95% confidence interval.

    RewardEval.from_config(cfg, tokenizer)(model)   the run's before/after evaluation (.samples(model): each sample)
    evaluate_reward(model, tokenizer, prompts, reward_fn, max_new_tokens=10)  the same on any prompts
    paired_win_rate(samples, baseline_samples)      two models on the same prompts and seeds (prefopt eval)

The interval is the normal approximation ``mean ± 1.96 · s / √n`` over all n = prompts × samples_per_prompt
rewards, with s the sample standard deviation (n − 1 in the denominator). Two caveats, both small for the default
recipes: samples of one prompt are correlated, so with ``samples_per_prompt > 1`` the interval is somewhat too
narrow (its width is honest over prompts only at one sample per prompt); and rewards are bounded, so with a few
dozen samples near 0 or 1 the normal approximation is rough.

Under ``accelerate launch`` every process calls the evaluation: each samples and rewards a share of the prompts
(prompt i seeded ``derive_seed(seed, i)`` wherever it runs) and all get the same summary.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from prefopt.data.records import load_prompts, prompt_key
from prefopt.data.sources import data_key, load_data, sources_of
from prefopt.data.tokenize import as_chat
from prefopt.distributed import shard_call
from prefopt.rounds.generate import Prompt, sample_sharded
from prefopt.rounds.scoring import Scorer, call_reward, check_score, prompt_text, resolve_import_path, response_text
from prefopt.seeds import WORLD_EVAL_SEED, derive_seed, eval_seed
from prefopt.world.worlds import world_of, world_prompts

Z95 = 1.959963984540054  # two-sided 95% quantile of the standard normal
EVAL_PROMPTS = 256  # default size of the held-out set (make_prompts(EVAL_PROMPTS, seed=0, split="eval"))


def mean_ci95(values: Sequence[float]) -> dict[str, float]:
    """``{"mean", "ci95_low", "ci95_high", "std", "n"}`` of ``values`` (normal approximation, see module doc).

    One value gives a zero-width interval (no spread to estimate); none raises ValueError.
    """
    n = len(values)
    if n == 0:
        raise ValueError("mean_ci95 needs at least one value")
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    half = Z95 * std / math.sqrt(n)
    return {"mean": mean, "ci95_low": mean - half, "ci95_high": mean + half, "std": std, "n": n}


def evaluate_samples(model, tokenizer, prompts: Sequence[Prompt], reward_fn: Callable[[Prompt, str], float] | None,
                     *, samples_per_prompt: int = 1, max_new_tokens: int, temperature: float = 1.0, seed: int = 0,
                     batch_size: int = 256, progress: bool = False, desc: str = "evaluate",
                     chat_template: bool = True, scorer: Scorer | None = None, max_prompt_tokens: int | None = None,
                     timeout_s: float | None = None) -> list[dict[str, Any]]:
    """Sample ``samples_per_prompt`` responses per prompt and score each: every sample with its reward.

    Every process must call this; each evaluates a share of the prompts (prompt i seeded ``derive_seed(seed, i)``,
    so two models evaluated with one seed see the same prompts under the same sampling seeds: a paired
    comparison). ``chat_template``: as in ``sample``. ``scorer`` (a ``prefopt.rounds.scoring.Scorer`` that rates
    each response on its own, e.g. a reward model) replaces ``reward_fn``.

    Returns:
        ``{"index", "sample", "prompt", "response", "reward"}`` per sample, prompt-major, on every process.
    """
    seeds = [derive_seed(seed, i) for i in range(len(prompts))]
    responses = sample_sharded(model, tokenizer, prompts, seeds=seeds, k=samples_per_prompt,
                               max_new_tokens=max_new_tokens, temperature=temperature, batch_size=batch_size,
                               progress=progress, desc=desc, chat_template=chat_template,
                               max_prompt_tokens=max_prompt_tokens)

    def rewards(indices: list[int], share: list, lists: list[list[str]]) -> list[list[float]]:
        if scorer is not None:
            return [[check_score(v, i, k, "scorer") for k, v in enumerate(row)]
                    for i, row in zip(indices, scorer(share, lists), strict=True)]
        # the reward contract, as in scoring: plain strings (the last user turn of a chat prompt), a finite number
        return [[call_reward(reward_fn, prompt_text(p), response_text(r), i, k, "reward", timeout_s)
                 for k, r in enumerate(rs)] for i, p, rs in zip(indices, share, lists, strict=True)]

    rows = shard_call(rewards, list(range(len(prompts))), list(prompts), responses)  # a reward may be costly
    return [{"index": i, "sample": k, "prompt": p, "response": r, "reward": x}
            for i, (p, rs, xs) in enumerate(zip(prompts, responses, rows, strict=True))
            for k, (r, x) in enumerate(zip(rs, xs, strict=True))]


def evaluate_reward(model, tokenizer, prompts: Sequence[Prompt], reward_fn: Callable[[Prompt, str], float], *,
                    samples_per_prompt: int = 1, max_new_tokens: int, temperature: float = 1.0, seed: int = 0,
                    batch_size: int = 256, progress: bool = False, desc: str = "evaluate",
                    chat_template: bool = True, max_prompt_tokens: int | None = None,
                    timeout_s: float | None = None) -> dict[str, float]:
    """Sample ``samples_per_prompt`` responses per prompt and summarise ``reward_fn(prompt, response)``.

    Every process must call this; each evaluates a share of the prompts (prompt i seeded ``derive_seed(seed, i)``).
    ``chat_template``: as in ``sample`` (plain prompts as a user turn when the tokenizer has a template).
    ``evaluate_samples`` gives the samples themselves.

    Returns:
        ``mean``, ``ci95_low``, ``ci95_high``, ``std`` and ``n`` (the number of rewards), as ``mean_ci95``.
    """
    samples = evaluate_samples(model, tokenizer, prompts, reward_fn, samples_per_prompt=samples_per_prompt,
                               max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                               batch_size=batch_size, progress=progress, desc=desc, chat_template=chat_template,
                               max_prompt_tokens=max_prompt_tokens, timeout_s=timeout_s)
    return mean_ci95([s["reward"] for s in samples])


def paired_win_rate(samples: Sequence[dict], baseline: Sequence[dict]) -> dict[str, float]:
    """How often a model's sample beats the baseline's on the same prompt and sampling seed (a tie counts half),
    with a 95% interval over prompts: each prompt's win share is one value of ``mean_ci95``, so the samples of
    one prompt, which are correlated, do not narrow the interval. Both lists as ``evaluate_samples`` returns them
    for the same prompts, seed and ``samples_per_prompt``."""
    if len(samples) != len(baseline):
        raise ValueError(f"paired win rate: {len(samples)} samples against {len(baseline)} of the baseline")
    per_prompt: dict[int, list[float]] = {}
    for a, b in zip(samples, baseline, strict=True):
        if (a["index"], a["sample"]) != (b["index"], b["sample"]):
            raise ValueError("paired win rate: the two evaluations are not on the same prompts and samples")
        win = 1.0 if a["reward"] > b["reward"] else 0.5 if a["reward"] == b["reward"] else 0.0
        per_prompt.setdefault(a["index"], []).append(win)
    return mean_ci95([math.fsum(v) / len(v) for v in per_prompt.values()])


def prompt_token_cap(cfg: DictConfig) -> int | None:
    """Prompt tokens kept for generation: ``data.max_prompt_length``, else ``data.max_length`` (a longer prompt
    could not be trained on whole anyway); None when both are None."""
    return cfg.data.max_prompt_length or cfg.data.max_length or None


def reward_spec(cfg: DictConfig) -> str | None:
    """The run's verifiable reward: ``cfg.reward``, or its world's (``prefopt.world.worlds.world_of``)."""
    world = world_of(cfg)
    return cfg.reward or (world.reward if world else None)


def _user_prompts(cfg: DictConfig) -> tuple[list, str] | None:
    """The user's own prompts, in file order (unique), and where they came from; None on the tiny world's."""
    files = [cfg.data.prompts] if cfg.data.prompts else sources_of(cfg.data)
    # an edited file is reread
    stamp = tuple(os.stat(f).st_mtime_ns if f and os.path.exists(f) else None for f in files)
    if cfg.data.prompts:
        return _read_user_prompts(cfg.data.prompts, cfg.data.split, cfg.data.gold_field, stamp)
    if files:
        return _read_train_prompts(data_key(cfg.data), cfg.train.seed, stamp, cfg.data)
    return None


# cached: every round asks for the held-out slice (to leave it out) and the evaluation once more; a file (or a hub
# dataset) is read once per run, not once per ask. Callers do not modify the lists.
@functools.lru_cache(maxsize=4)
def _read_user_prompts(prompts: str, split: str, gold_field: str | None, stamp: tuple) -> tuple[list, str]:
    rows = load_prompts(prompts, split=split, gold_field=gold_field)
    return [r[0] if gold_field else r for r in rows], "data.prompts"


_TRAIN_PROMPTS: dict[tuple, tuple[list, str]] = {}


def _read_train_prompts(key: str, seed: int, stamp: tuple, data) -> tuple[list, str]:
    """The unique prompts of data.train (one source or the mixture), compared in canonical form (``prompt_key``)."""
    cache_key = (key, seed, stamp)
    if cache_key not in _TRAIN_PROMPTS:
        records, _ = load_data(data, seed=seed)
        seen: dict[str, Any] = {}
        for r in records:
            seen.setdefault(prompt_key(r["prompt"]), r["prompt"])
        _TRAIN_PROMPTS.clear()  # one run's data at a time
        _TRAIN_PROMPTS[cache_key] = list(seen.values()), "data.train"
    return _TRAIN_PROMPTS[cache_key]


def held_out_prompts(cfg: DictConfig) -> tuple[list, str] | None:
    """With a reward of the user's own and no ``data.eval_prompts``: the last ``eval.holdout_fraction`` of the
    user's prompts (at most ``eval.n_prompts``), which training never sees, and where they came from."""
    if not (cfg.reward and cfg.eval.enabled and not cfg.data.eval_prompts):
        return None
    found = _user_prompts(cfg)
    if found is None or len(found[0]) < 2:
        return None
    prompts, source = found
    n = min(cfg.eval.n_prompts, max(1, int(len(prompts) * cfg.eval.holdout_fraction)))
    return prompts[-n:], source


def held_out_keys(cfg: DictConfig) -> set[str]:
    """Keys of the held-out prompts, to leave out of training (``prompt_key`` of a prompt)."""
    held = held_out_prompts(cfg)
    return {prompt_key(p) for p in held[0]} if held else set()


def eval_prompts(cfg: DictConfig) -> tuple[list, str] | None:
    """The prompts of the reward before/after and where they came from (``"world"``: the world's own)."""
    if cfg.data.eval_prompts:
        return load_prompts(cfg.data.eval_prompts)[: cfg.eval.n_prompts], "data.eval_prompts"
    held = held_out_prompts(cfg)
    if held:
        print(f"[prefopt] reward before/after on {len(held[0])} held-out prompts of {held[1]} (eval.holdout_fraction"
              f"={cfg.eval.holdout_fraction}); training never sees them")
        return held
    world = world_of(cfg)
    if world is not None:
        return world_prompts(world, cfg.eval.n_prompts, seed=WORLD_EVAL_SEED, split="eval"), "world"
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
    max_prompt_tokens: int | None = None
    timeout_s: float | None = None
    scorer: Scorer | None = None  # rates each response on its own; replaces reward_fn (prefopt eval's scorer=)

    @classmethod
    def from_config(cls, cfg: DictConfig, tokenizer, scorer: Scorer | None = None) -> RewardEval | None:
        """The run's evaluation (None when it has no reward or no prompts); ``scorer`` in place of the reward."""
        spec, found = reward_spec(cfg), eval_prompts(cfg)
        if not cfg.eval.enabled or (spec is None and scorer is None) or not found or not found[0]:
            return None
        prompts = as_chat(found[0], tokenizer, cfg.data.chat_template, given=found[1] != "world")
        return cls(prompts, resolve_import_path(spec) if scorer is None else None, tokenizer,
                   cfg.eval.samples_per_prompt, cfg.generation.max_new_tokens, cfg.eval.temperature,
                   eval_seed(cfg.train.seed), prompt_token_cap(cfg), cfg.reward_timeout_s, scorer)

    def samples(self, model) -> list[dict[str, Any]]:
        """Every sample with its reward (``evaluate_samples``)."""
        return evaluate_samples(model, self.tokenizer, self.prompts, self.reward_fn,
                                samples_per_prompt=self.samples_per_prompt, max_new_tokens=self.max_new_tokens,
                                temperature=self.temperature, seed=self.seed, progress=True, scorer=self.scorer,
                                chat_template=False,  # from_config decided per data.chat_template
                                max_prompt_tokens=self.max_prompt_tokens, timeout_s=self.timeout_s)

    def __call__(self, model) -> dict[str, float]:
        return mean_ci95([s["reward"] for s in self.samples(model)])
