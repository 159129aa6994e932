"""The main job: build data, train with the recipe's loss over one or more rounds, evaluate, write the run folder.

Rounds (DNO, OSP, CREAM, self-rewarding): each round generates with the current policy, scores, builds lists,
trains, and saves ``round_k/`` (data, model, DONE marker). The reference is the round's starting policy
(``reference.per_round=true``, DNO's and CREAM's iterations) or the initial policy in every round (``false``, a KL
to the SFT model throughout). ``train.learning_rate`` may give one rate per round. A finished round is never
redone on resume; an unfinished one resumes from its newest complete and finite Trainer checkpoint.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from accelerate.utils import parse_flag_from_env
from omegaconf import DictConfig, OmegaConf
from transformers import AutoModelForCausalLM, TrainerCallback, TrainingArguments, set_seed

from prefopt.card import write_model_card
from prefopt.config import learning_rates, loss_kwargs, loss_label, loss_spec, public_config
from prefopt.data.features import tokenize_records
from prefopt.data.sources import load_eval
from prefopt.data.tokenize import chat_records
from prefopt.distributed import main_value
from prefopt.hub import push_run
from prefopt.modeling import init_kwargs, load_frozen, load_policy, model_lengths, wrap_peft
from prefopt.outputs import MetricsJsonl, format_reward, peak_memory_mb, plot_curves, write_summary
from prefopt.rounds.build import RoundData, build_round_data, model_features
from prefopt.rounds.evaluate import RewardEval, mean_ci95
from prefopt.rounds.weighting import RoundContext
from prefopt.run_folder import RoundPaths, RunFolder, RunLockError, save_folder_atomic
from prefopt.samples import save_samples
from prefopt.stages import current_clock, stage, stage_clock, step
from prefopt.trackers import Tracker, open_tracker, trainer_integrations
from prefopt.trainer.collate import ListCollator
from prefopt.trainer.core import PreferenceTrainer
from prefopt.trainer.logps import frozen_copy
from prefopt.trainer.reference import precompute_ref_logps
from prefopt.trainer.safety import NonFiniteError, last_usable_checkpoint, model_is_finite
from prefopt.validate import RunConfigError, check_run, output_dir

# transformers 5 renamed gradient_checkpointing to activation_checkpointing (the old name warns); 4.x has only the old
CHECKPOINTING = next(name for name in ("activation_checkpointing", "gradient_checkpointing")
                     if name in TrainingArguments.__dataclass_fields__)


def training_arguments(cfg: DictConfig, out: Path, index: int = 0) -> TrainingArguments:
    """The Trainer's arguments for round ``index`` (its learning rate, ``learning_rates``)."""
    t = cfg.train
    return TrainingArguments(
        output_dir=str(out), max_steps=t.max_steps if t.max_steps > 0 else -1, num_train_epochs=t.num_epochs,
        learning_rate=learning_rates(cfg)[index], optim=t.optim, per_device_train_batch_size=t.per_device_batch_size,
        per_device_eval_batch_size=t.per_device_batch_size, gradient_accumulation_steps=t.gradient_accumulation_steps,
        seed=t.seed, data_seed=t.seed, warmup_steps=t.warmup_steps, lr_scheduler_type=t.lr_scheduler_type,
        weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm, logging_steps=t.logging_steps, bf16=t.bf16,
        **{CHECKPOINTING: t.gradient_checkpointing},
        report_to=trainer_integrations(cfg.report_to), run_name=Path(output_dir(cfg)).name,
        save_strategy="steps" if t.save_steps else "no", save_steps=t.save_steps or 500,
        save_total_limit=t.save_total_limit,
        use_cpu=not torch.cuda.is_available(), remove_unused_columns=False)


def _reference(cfg: DictConfig, policy, features: list[dict], collator: ListCollator, initial=None):
    """(ref_model, features) for the round's reference mode: a copy of ``initial`` (the run's first policy, when
    ``reference.per_round`` is false) or of the round's starting ``policy``; ``reference.model`` when given. With
    ``mode=adapter`` the base model (adapter off) is the reference, which is always the initial policy."""
    mode, spec = cfg.reference.mode, loss_spec(cfg)
    if mode not in ("model", "adapter", "precomputed"):
        raise ValueError(f"reference.mode must be one of model, adapter, precomputed; got {mode!r}")
    if not spec.needs_ref or mode == "adapter":
        return None, features
    source = policy if initial is None else initial
    ref = load_frozen(cfg.reference.model, cfg) if cfg.reference.model else frozen_copy(source)
    ref.requires_grad_(False).eval()
    if mode == "model":
        return ref, features
    if spec.needs_tokens:
        raise ValueError(f"loss {loss_label(cfg)!r} needs per-token reference log-probs; use reference.mode=model")
    return None, precompute_ref_logps(ref, features, collator, batch_size=cfg.reference.batch_size)


def _reference_note(cfg: DictConfig, lists: int) -> str:
    if not loss_spec(cfg).needs_ref:
        return f"none (loss {loss_label(cfg)} needs no reference)"
    return {"model": f"{cfg.reference.model or 'a frozen copy of the policy'}, live",
            "adapter": "the PEFT base model (adapter off), live",
            "precomputed": f"log-probs of {lists} lists precomputed"}[cfg.reference.mode]


def _eval_features(cfg: DictConfig, tokenizer) -> list[dict] | None:
    if not cfg.data.eval:
        return None
    records, _ = load_eval(cfg.data)
    records = chat_records(records, tokenizer, cfg.data.chat_template)
    tokenize = functools.partial(tokenize_records, tokenizer=tokenizer, max_length=cfg.data.max_length,
                                 max_prompt_length=cfg.data.max_prompt_length,
                                 truncation_mode=cfg.data.truncation_mode)
    return model_features(loss_spec(cfg), records, tokenize, cfg.train.per_device_batch_size)[0]


PROGRESS_FILE = "prefopt_progress.json"  # tokens and seconds trained so far, saved beside each checkpoint


class _Progress(TrainerCallback):
    """Writes the round's tokens and seconds so far into each checkpoint, so a resumed round reports its whole
    cost, not only the part after the resume."""

    def __init__(self, trainer_ref: list, seconds_before: float, folder: RunFolder):
        self.trainer_ref, self.start, self.before = trainer_ref, time.perf_counter(), seconds_before
        self.folder = folder

    def seconds(self) -> float:
        return self.before + time.perf_counter() - self.start

    def on_save(self, args, state, control, **kwargs):
        PartialState().wait_for_everyone()  # every process has written its share of the checkpoint
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.exists():
                (folder / PROGRESS_FILE).write_text(json.dumps({"tokens": self.trainer_ref[0].total_tokens,
                                                                "seconds": self.seconds()}))
                # fingerprinted last: a resume trains only from a checkpoint whose every file is as written here
                if self.folder.metrics.exists():  # nothing logged yet when a save comes before the first log
                    self.folder.record(self.folder.metrics, prefix=True)
                self.folder.record(folder)


def train_round(cfg: DictConfig, policy, tokenizer, data: RoundData, paths: RoundPaths, index: int,
                folder: RunFolder, eval_features: list[dict] | None = None, initial=None,
                tracker: Tracker | None = None):
    """Train round ``index`` on ``data``; ``initial`` (the run's first policy) is the reference when given."""
    collator = ListCollator(pad_token_id=tokenizer.pad_token_id, max_length=cfg.data.max_length,
                            truncation_mode=cfg.data.truncation_mode, shared_prompt=cfg.train.shared_prompt,
                            padding_free=cfg.train.padding_free)
    with stage("reference", f"round {index} reference") as s:
        ref_model, features = _reference(cfg, policy, data.features, collator, initial)
        s.note = _reference_note(cfg, len(features))
    last = _resume_point(cfg, paths, folder)
    done = json.loads((last / PROGRESS_FILE).read_text()) if last and (last / PROGRESS_FILE).exists() else {}
    ref: list = []
    progress = _Progress(ref, done.get("seconds", 0.0), folder)
    if cfg.resume and PartialState().is_main_process:  # rows logged after the checkpoint will be logged again
        folder.trim_metrics(index, int(last.name.split("-")[1]) if last else 0)
    tracker = tracker or Tracker("none", folder.root)
    trainer = PreferenceTrainer(policy, training_arguments(cfg, paths.checkpoints, index), loss=loss_spec(cfg),
                                loss_kwargs=loss_kwargs(cfg), ref_model=ref_model, collator=collator,
                                train_dataset=features, eval_dataset=eval_features, processing_class=tokenizer,
                                callbacks=[MetricsJsonl(folder.metrics, index), progress, *tracker.callbacks(index)])
    ref.append(trainer)
    trainer.total_tokens = done.get("tokens", 0)
    with stage("train", f"round {index} train") as s:
        result = trainer.train(resume_from_checkpoint=str(last) if last else None)
        s.note = f"{result.global_step} steps on {len(features)} lists, mean loss {result.training_loss:.4f}"
    record = {"round": index, "steps": result.global_step, "train_loss": result.training_loss,
              "tokens": trainer.total_tokens, "seconds": round(progress.seconds(), 2), "data": data.report}
    if trainer.eval_dataset is not None:
        with stage("evaluate", f"round {index} eval data") as s:
            trainer.evaluate()  # the preference metrics are merged into the logged line, not the returned dict
            record["eval"] = {k: v for k, v in trainer.state.log_history[-1].items() if k.startswith("eval_")}
            s.note = f"{len(eval_features)} lists, eval_loss {record['eval'].get('eval_loss', float('nan')):.4f}"
    return trainer, record


def _resume_point(cfg: DictConfig, paths: RoundPaths, folder: RunFolder) -> Path | None:
    """The newest checkpoint that is complete, as written (fingerprints) and finite; each newer one skipped is
    named with the reason (a truncated model.safetensors: the previous checkpoint is used)."""
    if not cfg.resume:
        return None
    skipped: list[str] = []
    last = last_usable_checkpoint(paths.checkpoints, verify=folder.verify, skipped=skipped)
    if skipped and PartialState().is_main_process:
        for line in skipped:
            print(f"[prefopt] resume: skipped {paths.checkpoints.name}/{line}")
        print(f"[prefopt] resume: continuing from {last.name if last else 'the start of the round'}")
    return last


def _reload(policy, round_dir: Path, cfg: DictConfig):
    if cfg.peft.enabled:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(policy, load_file(str(round_dir / "model" / "adapter_model.safetensors")))
        return policy
    return AutoModelForCausalLM.from_pretrained(round_dir / "model", **init_kwargs(cfg))


def _rounds(cfg: DictConfig, state: PartialState, policy, tokenizer, folder: RunFolder, evaluator,
            tracker: Tracker) -> tuple[Any, list[dict]]:
    """Run (or, on resume, skip) every round; returns the final policy and each round's record."""
    records: list[dict] = []
    # the models before this round's starting policy, most recent last (π_{t−2}, π_{t−1}), for CREAM's judges;
    # ``previous_model`` (CREAM's M0) is the one before the initial policy
    earlier = [load_frozen(cfg.previous_model, cfg).to(state.device)] if cfg.previous_model else []
    initial = None  # the initial policy, the reference of every round when reference.per_round is false
    eval_features = _eval_features(cfg, tokenizer)  # tokenized once for every round
    for index in range(cfg.rounds):
        paths = folder.round(index)
        context = RoundContext(policy, tokenizer, earlier[-1] if earlier else None,
                               earlier[-2] if len(earlier) > 1 else None)
        if index + 1 < cfg.rounds:  # a later round judges with (or trains against) this round's starting policy
            start = frozen_copy(policy)
            earlier = [*earlier, start][-2:]
            if index == 0 and not cfg.reference.per_round:
                initial = start
        if paths.is_done():  # finished on an earlier run: reload its policy, never redo it
            print(f"[prefopt] round {index}: finished in an earlier run, reloaded from {paths.dir}")
            policy = _reload(policy, paths.dir, cfg)
            records.append(paths.read_record())  # the record as first written
            current_clock().add(records[-1].get("stage_seconds", {}))  # its time counts in the run's totals
            continue
        mark = current_clock().snapshot()
        if state.is_main_process:
            paths.dir.mkdir(parents=True, exist_ok=True)
        # every process builds the data together: each generates and scores a share; the main process writes it
        with step(f"round {index} data"):
            data = build_round_data(cfg, context, index=index, round_dir=paths.dir)
        trainer, record = train_round(cfg, policy, tokenizer, data, paths, index, folder, eval_features, initial,
                                      tracker)
        policy = trainer.model
        if evaluator:  # every process evaluates a share of the prompts
            record["reward"] = _evaluate(evaluator, policy, f"round {index} evaluate", folder, f"round_{index}")
        record["stage_seconds"] = current_clock().since(mark)
        records.append(record)
        if state.is_main_process:
            with step(f"round {index} save"):
                _save_model(policy, paths.model, tokenizer)
                folder.record(paths.model)
                folder.write_json(paths.record, json.loads(json.dumps(record, default=str)))
                if folder.metrics.exists():
                    folder.record(folder.metrics, prefix=True)
                paths.done.touch()  # last: a round is finished only once everything above is on disk
        state.wait_for_everyone()
    return policy, records


def _evaluate(evaluator: RewardEval, policy, label: str, folder: RunFolder, name: str) -> dict[str, float]:
    """The reward with its interval; the samples go to ``samples/<name>.jsonl`` (a few to the console)."""
    with stage("evaluate", label) as s:
        samples = evaluator.samples(policy)
        reward = mean_ci95([x["reward"] for x in samples])
        s.note = f"reward {format_reward(reward)}"
    if PartialState().is_main_process:
        title = "samples before training" if name == "before" else f"samples after round {name.split('_')[1]}"
        save_samples(folder, name, samples, title)
    return reward


def _save_model(model, path: Path, tokenizer=None) -> None:
    """Atomically, and never with a NaN or inf in it."""
    if not model_is_finite(model):
        raise NonFiniteError(f"the model to be saved at {path} has non-finite weights; nothing was written")

    def save(tmp: Path) -> None:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)

    save_folder_atomic(path, save)


def reward_drop_warning(before: dict | None, after: dict | None) -> str | None:
    """A loud warning when the held-out reward fell with separated 95% intervals (after's upper bound below
    before's lower bound): training made the policy measurably worse."""
    if not before or not after or after["ci95_high"] >= before["ci95_low"]:
        return None
    return (f"the held-out reward FELL from {before['mean']:.3f} to {after['mean']:.3f} (95% intervals do not "
            "overlap): this run made the policy worse. Check loss.beta and train.learning_rate (see the recipe's "
            "notes) before using model/")


def _summary(cfg: DictConfig, records: list[dict], before: dict | None) -> dict[str, Any]:
    """The whole run, resumed or not: every round's record as first written, summed."""
    seconds = sum(r.get("seconds", 0.0) for r in records)
    tokens = sum(r.get("tokens", 0) for r in records)
    summary = {"recipe": cfg.recipe, "loss": loss_label(cfg), "rounds": records,
               "steps": sum(r["steps"] for r in records), "tokens": tokens, "train_seconds": round(seconds, 2),
               "tokens_per_second": round(tokens / seconds, 1) if seconds else 0.0,
               "peak_memory_mb": round(peak_memory_mb(), 1)}
    if before:
        rewards = [before] + [r.get("reward") for r in records]
        summary.update(reward_before=before, reward_after=rewards[-1], reward_per_round=rewards)
        warning = reward_drop_warning(before, rewards[-1])
        if warning:
            summary["warnings"] = [warning]
    return summary


def on_process_device(policy, state: PartialState, cfg: DictConfig):
    """The policy on this process's device, so each process generates and scores its share there.

    Left where it is under FSDP and DeepSpeed (a whole copy per device may not fit: the Trainer shards it) and for a
    4-bit model (placed when loaded).
    """
    sharded = parse_flag_from_env("ACCELERATE_USE_FSDP") or parse_flag_from_env("ACCELERATE_USE_DEEPSPEED")
    if cfg.peft.load_in_4bit or sharded:  # set by `accelerate launch` from the config file
        return policy
    return policy.to(state.device)


def run(cfg: DictConfig, argv: list[str] | None = None) -> dict[str, Any]:
    """Run a resolved config end to end; returns the summary (also written to ``output_dir/summary.json``).

    Everything is checked first (``prefopt.validate.check_run``): a mistake raises ``RunConfigError`` before the
    output folder is touched, a model is loaded or a token is generated. Every stage is timed (``prefopt.stages``)
    into the summary's ``stage_seconds``. ``argv``: the command line's ``key=value`` arguments, for the model card.
    """
    with stage_clock():
        return _run(cfg, argv)


def _lock(folder: RunFolder, state: PartialState) -> None:
    """The main process takes the folder's run lock (every process learns whether it could): a second run on the
    folder is refused, naming the process and host that hold it; a stale lock is taken over with a notice."""
    problem = None
    if state.is_main_process:
        try:
            notice = folder.acquire_lock()
            if notice:
                print(notice)
        except RunLockError as err:
            problem = str(err)
        except OSError as err:  # a path under a file, a read-only disk: found as the folder is made
            problem = f"output_dir {folder.root} cannot be created: {err.strerror or err} ({err.filename or ''})"
    problem = main_value(problem)
    if problem:
        raise RunConfigError([problem])


def _run(cfg: DictConfig, argv: list[str] | None = None) -> dict[str, Any]:
    problems = check_run(cfg)
    if problems:
        raise RunConfigError(problems)
    # Under `accelerate launch`, the main process owns the folder and the generated data.
    state = PartialState(cpu=not torch.cuda.is_available())
    folder = RunFolder(output_dir(cfg))
    _lock(folder, state)
    try:
        return _locked_run(cfg, state, folder, argv)
    finally:
        if state.is_main_process:
            folder.release_lock()


def _locked_run(cfg: DictConfig, state: PartialState, folder: RunFolder, argv: list[str] | None) -> dict[str, Any]:
    if state.is_main_process:
        with step("prepare the run folder"):
            folder.prepare(overwrite=cfg.overwrite)
            if not cfg.resume:  # a resumed run keeps the config it started with (check_run compared them)
                folder.write_config(OmegaConf.to_yaml(OmegaConf.create(public_config(cfg))))  # no secrets
    state.wait_for_everyone()
    set_seed(cfg.train.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    with step("load the model"):
        policy, tokenizer = load_policy(cfg)
        cfg = model_lengths(cfg, policy, tokenizer)  # data.max_length / generation.max_new_tokens left to the model
        if cfg.peft.enabled:
            policy = wrap_peft(policy, cfg)
        policy = on_process_device(policy, state, cfg)
    tracker = open_tracker(cfg, folder.root, main_process=state.is_main_process)
    evaluator = RewardEval.from_config(cfg, tokenizer)  # on every process: each evaluates a share
    before = _before(folder, evaluator, policy, cfg, state)
    policy, records = _rounds(cfg, state, policy, tokenizer, folder, evaluator, tracker)
    summary = _summary(cfg, records, before)
    summary["stage_seconds"] = current_clock().summary()  # the whole run's, resumed rounds included
    if not state.is_main_process:
        return summary
    with step("save the final model"):
        if cfg.peft.enabled:  # the adapter beside the merged model, saved before merging
            _save_model(policy, folder.adapter, tokenizer)
        final = policy.merge_and_unload() if cfg.peft.enabled and not cfg.peft.load_in_4bit else policy
        _save_model(final, folder.model, tokenizer)
        summary["plots"] = plot_curves(folder.root, summary.get("reward_per_round"))
        summary["samples"] = folder.samples_files()
        write_summary(folder.root, summary)
        write_model_card(folder, cfg, summary, argv)
    tracker.log_results(summary, cfg)
    for warning in summary.get("warnings", []):
        print(f"[prefopt] WARNING: {warning}")
    print(f"[prefopt] reward before {format_reward(before)} → after {format_reward(summary.get('reward_after'))}; "
          f"{summary['steps']} steps in {summary['train_seconds']:.0f}s; summary: {folder.summary}")
    if cfg.hub.push:  # last: a failed upload (HubPushError) leaves the complete run on disk
        print(f"[prefopt] pushed model/{' and adapter/' if folder.adapter.exists() else ''} to {push_run(cfg, folder)}")
    return summary


def _before(folder: RunFolder, evaluator, policy, cfg: DictConfig, state: PartialState) -> dict | None:
    """The reward before training, measured once per run (a resumed run reads it back); every process calls this."""
    path = folder.root / "reward_before.json"
    if cfg.resume and main_value(path.exists()):
        return main_value(json.loads(path.read_text()) if state.is_main_process else None)
    before = _evaluate(evaluator, policy, "evaluate before training", folder, "before") if evaluator else None
    if before and state.is_main_process:
        folder.write_json(path, before)
    return before
