"""The main job: build data, train with the recipe's loss over one or more rounds, evaluate, write the run folder.

Rounds (DNO, OSP, CREAM, self-rewarding): each round generates with the current policy, scores, builds lists,
trains, and saves ``round_k/`` (data, model, DONE marker). The reference is the round's starting policy
(``reference.per_round=true``, DNO's and CREAM's iterations) or the initial policy in every round (``false``, a KL
to the SFT model throughout). ``train.learning_rate`` may give one rate per round. A finished round is never
redone on resume; an unfinished one resumes from its last Trainer checkpoint.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from omegaconf import DictConfig
from transformers import AutoModelForCausalLM, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from losses import get_loss
from prefopt.config import learning_rates, loss_kwargs
from prefopt.data.features import tokenize_records
from prefopt.data.records import load_records
from prefopt.modeling import load_frozen, load_policy, wrap_peft
from prefopt.outputs import (
    MetricsJsonl,
    format_reward,
    peak_memory_mb,
    plot_curves,
    prepare_output_dir,
    save_config,
    write_summary,
)
from prefopt.rounds.build import RoundData, build_round_data
from prefopt.rounds.evaluate import RewardEval
from prefopt.rounds.weighting import RoundContext
from prefopt.trainer.collate import ListCollator
from prefopt.trainer.core import PreferenceTrainer
from prefopt.trainer.logps import frozen_copy
from prefopt.trainer.reference import precompute_ref_logps


def training_arguments(cfg: DictConfig, out: Path, index: int = 0) -> TrainingArguments:
    """The Trainer's arguments for round ``index`` (its learning rate, ``learning_rates``)."""
    t = cfg.train
    return TrainingArguments(
        output_dir=str(out), max_steps=t.max_steps if t.max_steps > 0 else -1, num_train_epochs=t.num_epochs,
        learning_rate=learning_rates(cfg)[index], optim=t.optim, per_device_train_batch_size=t.per_device_batch_size,
        per_device_eval_batch_size=t.per_device_batch_size, gradient_accumulation_steps=t.gradient_accumulation_steps,
        seed=t.seed, data_seed=t.seed, warmup_steps=t.warmup_steps, lr_scheduler_type=t.lr_scheduler_type,
        weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm, logging_steps=t.logging_steps, bf16=t.bf16,
        gradient_checkpointing=t.gradient_checkpointing,
        report_to=[] if cfg.report_to == "none" else [cfg.report_to],
        save_strategy="steps" if t.save_steps else "no", save_steps=t.save_steps or 500,
        use_cpu=not torch.cuda.is_available(), remove_unused_columns=False)


def _reference(cfg: DictConfig, policy, features: list[dict], collator: ListCollator, initial=None):
    """(ref_model, features) for the round's reference mode: a copy of ``initial`` (the run's first policy, when
    ``reference.per_round`` is false) or of the round's starting ``policy``; ``reference.model`` when given. With
    ``mode=adapter`` the base model (adapter off) is the reference, which is always the initial policy."""
    mode, spec = cfg.reference.mode, get_loss(cfg.loss.name)
    if mode not in ("model", "adapter", "precomputed"):
        raise ValueError(f"reference.mode must be one of model, adapter, precomputed; got {mode!r}")
    if not spec.needs_ref or mode == "adapter":
        return None, features
    source = policy if initial is None else initial
    ref = AutoModelForCausalLM.from_pretrained(cfg.reference.model) if cfg.reference.model else frozen_copy(source)
    ref.requires_grad_(False).eval()
    if mode == "model":
        return ref, features
    if spec.needs_tokens:
        raise ValueError(f"loss {cfg.loss.name!r} needs per-token reference log-probs; use reference.mode=model")
    return None, precompute_ref_logps(ref, features, collator, batch_size=cfg.reference.batch_size)


def _eval_features(cfg: DictConfig, tokenizer) -> list[dict] | None:
    if not cfg.data.eval:
        return None
    records, _ = load_records(cfg.data.eval, split=cfg.data.eval_split)
    return tokenize_records(records, tokenizer, max_length=cfg.data.max_length,
                            max_prompt_length=cfg.data.max_prompt_length,
                            truncation_mode=cfg.data.truncation_mode)[0]


def train_round(cfg: DictConfig, policy, tokenizer, data: RoundData, round_dir: Path, index: int, out: Path,
                eval_features: list[dict] | None = None, initial=None):
    """Train round ``index`` on ``data``; ``initial`` (the run's first policy) is the reference when given."""
    collator = ListCollator(pad_token_id=tokenizer.pad_token_id, max_length=cfg.data.max_length,
                            truncation_mode=cfg.data.truncation_mode)
    ref_model, features = _reference(cfg, policy, data.features, collator, initial)
    trainer = PreferenceTrainer(policy, training_arguments(cfg, round_dir / "checkpoints", index), loss=cfg.loss.name,
                                loss_kwargs=loss_kwargs(cfg), ref_model=ref_model, collator=collator,
                                train_dataset=features, eval_dataset=eval_features,
                                processing_class=tokenizer, callbacks=[MetricsJsonl(out / "metrics.jsonl", index)])
    last = get_last_checkpoint(str(round_dir / "checkpoints")) if (round_dir / "checkpoints").exists() else None
    result = trainer.train(resume_from_checkpoint=last if cfg.resume else None)
    record = {"round": index, "steps": result.global_step, "train_loss": result.training_loss, "data": data.report}
    if trainer.eval_dataset is not None:
        trainer.evaluate()  # the preference metrics are merged into the logged line, not the returned dict
        record["eval"] = {k: v for k, v in trainer.state.log_history[-1].items() if k.startswith("eval_")}
    return trainer, record


def _reload(policy, round_dir: Path, cfg: DictConfig):
    if cfg.peft.enabled:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(policy, load_file(str(round_dir / "model" / "adapter_model.safetensors")))
        return policy
    return AutoModelForCausalLM.from_pretrained(round_dir / "model")


def _rounds(cfg: DictConfig, state: PartialState, policy, tokenizer, out: Path, evaluator) -> tuple[Any, dict]:
    """Run (or, on resume, skip) every round; returns the final policy and the totals for the summary."""
    totals: dict[str, Any] = {"rounds": [], "steps": 0, "tokens": 0}
    # the models before this round's starting policy, most recent last (π_{t−2}, π_{t−1}), for CREAM's judges;
    # ``previous_model`` (CREAM's M0) is the one before the initial policy
    earlier = [load_frozen(cfg.previous_model, cfg).to(state.device)] if cfg.previous_model else []
    initial = None  # the initial policy, the reference of every round when reference.per_round is false
    eval_features = _eval_features(cfg, tokenizer)  # tokenized once for every round
    for index in range(cfg.rounds):
        round_dir = out / f"round_{index}"
        context = RoundContext(policy, tokenizer, earlier[-1] if earlier else None,
                               earlier[-2] if len(earlier) > 1 else None)
        if index + 1 < cfg.rounds:  # a later round judges with (or trains against) this round's starting policy
            start = frozen_copy(policy)
            earlier = [*earlier, start][-2:]
            if index == 0 and not cfg.reference.per_round:
                initial = start
        if (round_dir / "DONE").exists():  # finished on an earlier run: reload its policy, never redo it
            policy = _reload(policy, round_dir, cfg)
            totals["rounds"].append(json.loads((round_dir / "round.json").read_text()))
            continue
        if state.is_main_process:
            round_dir.mkdir(parents=True, exist_ok=True)
        with state.main_process_first():  # the others read the round's data.jsonl the main process wrote
            data = build_round_data(cfg, context, index=index, round_dir=round_dir)
        trainer, record = train_round(cfg, policy, tokenizer, data, round_dir, index, out, eval_features, initial)
        policy = trainer.model
        totals["steps"] += record["steps"]
        totals["tokens"] += trainer.total_tokens
        if evaluator:
            record["reward"] = evaluator(policy)
            print(f"[prefopt] round {index}: reward {format_reward(record['reward'])}")
        totals["rounds"].append(record)
        if state.is_main_process:
            policy.save_pretrained(round_dir / "model")
            (round_dir / "round.json").write_text(json.dumps(record, indent=2, default=str))
            (round_dir / "DONE").touch()  # last: a round is finished only once everything above is on disk
        state.wait_for_everyone()
    return policy, totals


def run(cfg: DictConfig) -> dict[str, Any]:
    """Run a resolved config end to end; returns the summary (also written to ``output_dir/summary.json``)."""
    if cfg.previous_model and cfg.previous_model == cfg.model:
        raise ValueError(f"previous_model is the model itself ({cfg.model}): every implicit reward log π(y|x) − "
                         "log π_prev(y|x) would be 0; pass model=<the checkpoint trained from previous_model>")
    # Under `accelerate launch`, the main process owns the folder and the generated data.
    state = PartialState(cpu=not torch.cuda.is_available())
    out = Path(cfg.output_dir or f"runs/{(cfg.recipe or 'run').replace('/', '-')}")
    if state.is_main_process:
        prepare_output_dir(out, overwrite=cfg.overwrite, resume=cfg.resume)
        save_config(cfg, out)
    state.wait_for_everyone()
    set_seed(cfg.train.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    policy, tokenizer = load_policy(cfg)
    if cfg.peft.enabled:
        policy = wrap_peft(policy, cfg)
    evaluator = RewardEval.from_config(cfg, tokenizer) if state.is_main_process else None
    before = evaluator(policy) if evaluator else None
    if before:
        print(f"[prefopt] reward before training: {format_reward(before)}")
    start = time.perf_counter()
    policy, totals = _rounds(cfg, state, policy, tokenizer, out, evaluator)
    seconds = time.perf_counter() - start
    summary = {"recipe": cfg.recipe, "loss": cfg.loss.name, "rounds": totals["rounds"], "steps": totals["steps"],
               "train_seconds": round(seconds, 2), "tokens_per_second": round(totals["tokens"] / seconds, 1),
               "peak_memory_mb": round(peak_memory_mb(), 1)}
    if not state.is_main_process:
        return summary
    final = policy.merge_and_unload() if cfg.peft.enabled and not cfg.peft.load_in_4bit else policy
    final.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    if before:
        rewards = [before] + [r.get("reward") for r in totals["rounds"]]
        summary.update(reward_before=before, reward_after=rewards[-1], reward_per_round=rewards)
    summary["plots"] = plot_curves(out, summary.get("reward_per_round"))
    write_summary(out, summary)
    print(f"[prefopt] reward before {format_reward(before)} → after {format_reward(summary.get('reward_after'))}; "
          f"{summary['steps']} steps in {seconds:.0f}s; summary: {out}/summary.json")
    return summary
