"""What a finished run is measured by: the run's own summary, and post-run measures on its saved model.

    metrics = summary_metrics(summary)                       # reward, reward_before, reward_iter1, ...
    metrics |= MEASURES["kl"](run_dir, cfg)                  # loads run_dir/model

Every measure samples the same held-out prompts with the same seed as the run's own reward evaluation
(``prefopt.rounds.evaluate.RewardEval.from_config``), so within a run the harm rate, the KL and the reward are read
off the very same samples. Measures:

    harm         share of sampled responses the world's detector calls harmful (``prefopt.world.harm``)
    kl           sequence KL(π ‖ π_ref) to the base policy, E_{y∼π}[log π(y|x) − log π_ref(y|x)] over the samples
    chosen_logp  mean change of log π(y_w|x) (summed over response tokens) on the run's own training pairs,
                 final policy minus base policy: negative means the chosen responses became less likely
    reward_goal  the reward when the prompt is conditioned on the top score (reward-augmented DPO's inference)
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig


def summary_metrics(summary: dict) -> dict[str, float]:
    """``reward`` (after training), ``reward_before`` and ``reward_iter{k}`` (after round k, from 1)."""
    out = {"reward": summary["reward_after"]["mean"], "reward_before": summary["reward_before"]["mean"]}
    for k, stats in enumerate(summary.get("reward_per_round") or [], start=0):
        if k:
            out[f"reward_iter{k}"] = stats["mean"]
    return out


def _policy(run_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(run_dir / "model").eval()
    return model, AutoTokenizer.from_pretrained(run_dir / "model")


def _evaluator(cfg: DictConfig, model, tokenizer):
    """The run's own reward evaluation; lengths the run left to its model (a model path, not a world: ``null`` in
    the saved config) are resolved from the saved model as the run resolved them."""
    from prefopt.modeling import model_lengths
    from prefopt.rounds.evaluate import RewardEval

    evaluator = RewardEval.from_config(model_lengths(cfg, model, tokenizer), tokenizer)
    if evaluator is None:
        raise ValueError("post-run measures need the run's reward evaluation (eval.enabled=true on the world)")
    return evaluator


def harm(run_dir: Path, cfg: DictConfig) -> dict[str, float]:
    from prefopt.world.harm import harmful

    model, tokenizer = _policy(run_dir)
    evaluator = dataclasses.replace(_evaluator(cfg, model, tokenizer), reward_fn=harmful)
    return {"harm": evaluator(model)["mean"]}


def reward_goal(run_dir: Path, cfg: DictConfig) -> dict[str, float]:
    from prefopt.rounds.augment import condition_on_top_score

    model, tokenizer = _policy(run_dir)
    evaluator = _evaluator(cfg, model, tokenizer)
    options = {k: cfg.augment[k] for k in ("system_role", "template") if cfg.augment and k in cfg.augment}
    prompts = [condition_on_top_score(p, tokenizer=tokenizer, **options) for p in evaluator.prompts]
    return {"reward_goal": dataclasses.replace(evaluator, prompts=prompts)(model)["mean"]}


def kl(run_dir: Path, cfg: DictConfig) -> dict[str, float]:
    from prefopt.rounds.generate import sample
    from prefopt.trainer import sequence_logps
    from prefopt.world import load_base_policy

    model, tokenizer = _policy(run_dir)
    ev = _evaluator(cfg, model, tokenizer)
    responses = sample(model, tokenizer, ev.prompts, k=ev.samples_per_prompt, max_new_tokens=ev.max_new_tokens,
                       temperature=ev.temperature, seed=ev.seed)
    policy = sequence_logps(model, tokenizer, ev.prompts, responses, batch_size=64)
    ref = sequence_logps(load_base_policy()[0], tokenizer, ev.prompts, responses, batch_size=64)
    gaps = [p - r for ps, rs in zip(policy, ref, strict=True) for p, r in zip(ps, rs, strict=True)]
    return {"kl": statistics.fmean(gaps)}


def chosen_logp(run_dir: Path, cfg: DictConfig) -> dict[str, float]:
    from prefopt.trainer import sequence_logps
    from prefopt.world import load_base_policy

    records = [json.loads(line) for line in (run_dir / "round_0" / "data.jsonl").read_text().splitlines()]
    prompts = [r["prompt"] for r in records]
    chosen = [[r["responses"][r["scores"].index(max(r["scores"]))]] for r in records]
    model, tokenizer = _policy(run_dir)
    after = sequence_logps(model, tokenizer, prompts, chosen, batch_size=64)
    before = sequence_logps(load_base_policy()[0], tokenizer, prompts, chosen, batch_size=64)
    return {"chosen_logp": statistics.fmean(a[0] - b[0] for a, b in zip(after, before, strict=True))}


MEASURES: dict[str, Callable[[Path, DictConfig], dict[str, float]]] = {
    "harm": harm, "kl": kl, "chosen_logp": chosen_logp, "reward_goal": reward_goal,
}
