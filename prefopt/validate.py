"""Check a whole run before anything happens: config, data files, import paths, the output folder.

    problems = check_run(cfg)      # [] when the run may start; else one message per mistake

``run()`` calls it before the output folder is touched, a model is loaded or a token is generated, and the CLI
prints each problem as one ``error: ...`` line and exits with status 2. Nothing here writes anything.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from prefopt.hub import hub_problems
from prefopt.world.worlds import world_of

# ---- ranges of the typed keys -----------------------------------------------------------------------------------
_POS, _NONNEG = (lambda v: v > 0, "> 0"), (lambda v: v >= 0, ">= 0")
_GE1 = (lambda v: v >= 1, ">= 1")
RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "train.learning_rate": _POS, "train.per_device_batch_size": _GE1, "train.gradient_accumulation_steps": _GE1,
    "train.num_epochs": _POS, "train.warmup_steps": _NONNEG, "train.weight_decay": _NONNEG,
    "train.max_grad_norm": _NONNEG, "train.logging_steps": _GE1, "train.save_steps": _NONNEG,
    "train.save_total_limit": _GE1,
    "generation.k": _GE1, "generation.max_new_tokens": _GE1, "generation.temperature": _NONNEG,
    "generation.top_p": (lambda v: 0 < v <= 1, "in (0, 1]"), "generation.batch_size": _GE1,
    "data.n_prompts": _GE1, "data.max_length": _GE1, "data.max_prompt_length": _GE1,
    "eval.n_prompts": _GE1, "eval.samples_per_prompt": _GE1, "eval.temperature": _NONNEG,
    "eval.holdout_fraction": (lambda v: 0 < v < 1, "in (0, 1)"),
    "rounds": _GE1, "reward_timeout_s": _POS,
    "threads": _NONNEG, "reference.batch_size": _GE1, "peft.r": _GE1, "peft.lora_alpha": _POS,
    "peft.lora_dropout": (lambda v: 0 <= v < 1, "in [0, 1)"),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "reference.mode": ("model", "adapter", "precomputed"),
    "generation.backend": ("hf", "vllm"),
    "data.truncation_mode": ("keep_start", "keep_end"),
    "report_to": ("none", "wandb", "tensorboard"),
    "model_init.dtype": (None, "auto", "float32", "bfloat16", "float16"),
}


def _ranges(cfg: DictConfig) -> list[str]:
    out = []
    for key, (ok, text) in RANGES.items():
        value = OmegaConf.select(cfg, key)
        if value is None:
            continue
        values = value if OmegaConf.is_list(value) else [value]  # a per-round list of values
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not ok(v):
                out.append(f"{key} must be {text} and finite, got {v!r}")
    for key, valid in CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if value not in valid:
            out.append(f"{key} must be one of {', '.join(v for v in valid if v is not None)}; got {value!r}")
    return out


def check_ranges(cfg: DictConfig) -> list[str]:
    """The ranges and choices of the typed keys (``RANGES``, ``CHOICES``): one message per value out of range."""
    return _ranges(cfg)


# ---- blocks that name a registered piece ------------------------------------------------------------------------
def _options(fn: Callable, given: dict, where: str, internal: tuple[str, ...] = ()) -> list[str]:
    """Options of ``fn`` a recipe may set: its keyword parameters; ``internal`` ones the pipeline fills in itself
    when the recipe leaves them out."""
    params = inspect.signature(fn).parameters
    valid = sorted(n for n, p in params.items() if p.kind is p.KEYWORD_ONLY)
    unknown = sorted(set(given) - set(valid))
    if unknown:
        return [f"{where}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(valid) or 'none'}"]
    missing = sorted(n for n, p in params.items() if p.kind is p.KEYWORD_ONLY and p.default is p.empty
                     and n not in given and n not in internal)
    return [f"{where}: missing option(s) {', '.join(missing)}"] if missing else []


def _container(node) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _blocks(cfg: DictConfig) -> list[str]:
    from prefopt.ches.filter import check_rule
    from prefopt.rounds import pairing
    from prefopt.rounds.augment import reward_augment
    from prefopt.rounds.weighting import WEIGHTINGS

    out = []
    name = pairing.rule_of(cfg)
    rule = pairing.RULES.get(name)
    if rule is None:
        out.append(f"pairing.rule: unknown rule {name!r}; valid: {', '.join(sorted([pairing.AUTO, *pairing.RULES]))}")
    else:
        out += _options(rule, _container(cfg.pairing.options) or {}, f"pairing.options (rule {name})",
                        internal=("matrices", "samples", "sample_scores", "baseline"))
    for i, share in enumerate(cfg.pairing.replay or []):
        if not 0 <= share <= 1:
            out.append(f"pairing.replay[{i}] must be a share in [0, 1], got {share}")
    weighting = dict(_container(cfg.weighting) or {})
    if weighting:
        kind = weighting.pop("type", None)
        if kind not in WEIGHTINGS:
            out.append(f"weighting.type: unknown {kind!r}; valid: {', '.join(sorted(WEIGHTINGS))}")
        else:
            out += _options(WEIGHTINGS[kind][0], weighting, f"weighting ({kind})")
    if cfg.ches:
        ches = dict(_container(cfg.ches))
        try:
            check_rule(ches.pop("keep_fraction", None), ches.pop("drop_fraction", None), ches.pop("threshold", None))
        except ValueError as err:
            out.append(f"ches: {err}".replace("ches: ches filter: ", "ches: "))
    if cfg.augment:
        out += _options(reward_augment, dict(_container(cfg.augment)), "augment", internal=("tokenizer",))
    return out


def _scorer(cfg: DictConfig) -> list[str]:
    """The scorer block: a known type with its required options, every import path importable and callable."""
    from collections.abc import Mapping

    from prefopt.rounds.scorers import SCORERS

    spec = _container(cfg.scorer)
    if spec is None:
        return []
    if isinstance(spec, str):
        spec = {"type": "reward_fn", "fn": spec} if ":" in spec else {"type": spec}
    if not isinstance(spec, Mapping):
        return [f"scorer must be 'pkg.module:function', a type name or a mapping, got {spec!r}"]
    kind = spec.get("type")
    if kind not in SCORERS:
        return [f"scorer.type: unknown {kind!r}; valid: {', '.join(sorted(SCORERS))} (or 'pkg.module:function')"]
    required = SCORERS[kind].keys
    out = [f"scorer ({kind}) needs option {k}" for k in required if k not in spec]
    if "fn" in spec:
        out += _import(spec["fn"], "scorer.fn")
    return out


def import_problems(path: Any, key: str) -> list[str]:
    """``[]`` when ``path`` (``module:function``) imports to a callable, else one message naming ``key``."""
    return _import(path, key)


def _import(path: Any, key: str) -> list[str]:
    from prefopt.rounds.scoring import resolve_import_path

    try:
        resolve_import_path(path)
    except (ImportError, TypeError, ValueError) as err:
        return [f"{key}: {err}"]
    return []


# ---- the loss and how the data fits it -------------------------------------------------------------------------
def _loss(cfg: DictConfig) -> list[str]:
    from prefopt.config import loss_kwargs, loss_label, loss_spec
    from prefopt.rounds import pairing

    spec, name = loss_spec(cfg), loss_label(cfg)  # load_config already checked the name
    out = list(spec.validate(loss_kwargs(cfg))) if hasattr(spec, "validate") else []
    if cfg.peft.load_in_4bit:
        import torch

        if not torch.cuda.is_available():
            out.append("peft.load_in_4bit=true (QLoRA) needs a CUDA GPU and bitsandbytes; on CPU use "
                       "peft.enabled=true without load_in_4bit")
    if cfg.reference.mode == "adapter" and not cfg.peft.enabled:
        out.append("reference.mode=adapter uses the PEFT base as the reference, but peft.enabled is false")
    if cfg.reference.mode == "precomputed" and spec.needs_tokens:
        out.append(f"loss {name} needs per-token reference log-probs: use reference.mode=model "
                   "(precomputed keeps sequence log-probs only)")
    if spec.listwise and pairing.rule_of(cfg) not in pairing.LIST_RULES:
        out.append(f"loss {name} learns from whole lists, but pairing.rule={cfg.pairing.rule} turns each "
                   f"list into pairs; use pairing.rule={' or '.join(sorted(pairing.LIST_RULES))}")
    if spec.unpaired and cfg.train.per_device_batch_size < 2:
        out.append(f"loss {name} estimates its KL baseline from the other examples of each batch: "
                   f"train.per_device_batch_size must be >= 2, got {cfg.train.per_device_batch_size}")
    if cfg.previous_model and cfg.previous_model == cfg.model:
        out.append(f"previous_model is the model itself ({cfg.model}): every implicit reward log π(y|x) − "
                   "log π_prev(y|x) would be 0; pass model=<the checkpoint trained from previous_model>")
    if not cfg.data.train and cfg.generation.k < 2:
        out.append(f"generation.k must be >= 2 for self-generated lists (a list needs two responses), got "
                   f"{cfg.generation.k}")
    if world_of(cfg) is None and not cfg.data.train and not cfg.data.prompts:
        out.append("a model of your own needs data: give data.train (preference data) or data.prompts (prompts to "
                   "self-generate from)")
    return out


def check_run(cfg: DictConfig) -> list[str]:
    """Every problem of the run, config first, then data files and import paths, then the output folder."""
    from prefopt.run_folder import RunFolder
    from prefopt.validate_data import check_data, check_resume

    try:
        world_of(cfg)
    except ValueError as err:  # every check below asks which world the run is in
        return [str(err)]
    problems = _ranges(cfg) + _blocks(cfg) + _scorer(cfg) + _loss(cfg)
    if cfg.reward:
        problems += _import(cfg.reward, "reward")
    problems += hub_problems(cfg)
    if problems:  # the data checks below read files and call the reward: only on a sound config
        return problems
    problems += check_data(cfg)
    typed = cfg.output_dir
    if typed is not None and (not str(typed).strip() or str(typed) != str(typed).strip()):
        return problems + [f"output_dir {typed!r} is empty or has spaces around it; name the folder (or leave "
                           "output_dir out for runs/<recipe>)"]
    folder = RunFolder(output_dir(cfg))
    problems += folder.problems(overwrite=cfg.overwrite, resume=cfg.resume)
    if cfg.resume and not problems:
        problems += folder.resume_problems() or check_resume(cfg, folder)
    return problems


def output_dir(cfg: DictConfig) -> str:
    return str(cfg.output_dir) if cfg.output_dir is not None else f"runs/{(cfg.recipe or 'run').replace('/', '-')}"


class RunConfigError(ValueError):
    """The run cannot start; ``problems`` holds one message per mistake."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems
