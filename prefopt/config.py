"""Run configuration: a recipe (YAML) merged onto typed defaults, then ``key=value`` overrides.

    cfg = load_config(["recipe=lipo", "train.max_steps=50", "loss.beta=0.1"])

Unknown keys are an error that lists the valid ones; the loss block is checked against the registry (its
hyper-parameters are the loss function's keyword arguments).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from losses import LOSSES, get_loss

RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"


@dataclass
class DataConfig:
    train: str | None = None  # preference data: local .jsonl/.json/.parquet or hub id; None = self-generated
    eval: str | None = None  # held-out preference data: eval loss and metrics after each round
    prompts: str | None = None  # prompt-only data for self-generation; None = the tiny world's prompts
    gold_field: str | None = None  # DNO: a reference response per prompt in this field joins each list as "gold"
    eval_prompts: str | None = None  # prompt-only data for the reward before/after; None = the world's eval split
    split: str = "train"
    eval_split: str = "test"  # split of a hub dataset given as data.eval
    n_prompts: int = 512  # prompts per round for self-generated data (round k takes the k-th slice of a file)
    max_length: int | None = 256
    max_prompt_length: int | None = None
    truncation_mode: str = "keep_start"
    segments: dict[str, Any] = field(default_factory=dict)  # RRPO diff settings: min_match_size, one_sided, autojunk


@dataclass
class GenerationConfig:
    k: int = 4  # responses sampled per prompt
    max_new_tokens: int = 24
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # sample among the k most likely tokens only; 0 = no top-k cut (LiPO samples with top-k 40)
    batch_size: int = 512  # prompts per generate call
    backend: str = "hf"  # hf | vllm (one engine per process, the policy's weights loaded each round)
    vllm: dict[str, Any] = field(default_factory=dict)  # vllm.LLM options, e.g. {gpu_memory_utilization: 0.3}


@dataclass
class PairingConfig:
    rule: str = "best_vs_worst"  # a key of prefopt.rounds.pairing.RULES
    options: dict[str, Any] = field(default_factory=dict)
    replay: list[float] = field(default_factory=list)  # DNO: shares of rounds t−1, t−2, ... mixed in, e.g. [0.3, 0.15]


@dataclass
class ReferenceConfig:
    mode: str = "model"  # model (frozen copy or `model` path) | adapter (PEFT base) | precomputed
    model: str | None = None
    batch_size: int = 32
    per_round: bool = True  # each round's starting policy is its reference; false: the initial policy every round


@dataclass
class PeftSettings:
    enabled: bool = False
    r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: Any = "all-linear"
    load_in_4bit: bool = False  # QLoRA through bitsandbytes; CUDA only


@dataclass
class TrainSettings:
    max_steps: int = 100  # per round; <= 0 trains num_epochs epochs instead
    num_epochs: float = 1.0
    optim: str = "adamw_torch"  # any transformers optimizer name (e.g. rmsprop, adamw_torch_fused, paged_adamw_8bit)
    learning_rate: Any = 1e-3  # a number, or one per round (a list as long as `rounds`)
    per_device_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    seed: int = 0
    warmup_steps: float = 0  # an int is a step count, a float in [0, 1) a fraction of max_steps
    lr_scheduler_type: str = "linear"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    logging_steps: int = 10
    save_steps: int = 0  # 0: save only the final model
    bf16: bool = False
    gradient_checkpointing: bool = False


@dataclass
class EvalSettings:
    enabled: bool = True  # reward before/after training when a reward function exists
    n_prompts: int = 256
    samples_per_prompt: int = 4
    temperature: float = 1.0
    holdout_fraction: float = 0.1  # custom reward, no eval_prompts: this share of your prompts is held out for eval


@dataclass
class RunConfig:
    recipe: str | None = None
    model: str | None = None  # HF id or local path; None = the tiny embedded world
    tokenizer: str | None = None
    previous_model: str | None = None  # the model `model` was trained from (CREAM's M0): round 0's π_{t−1}
    reward: str | None = None  # "module:function" (prompt, response) -> float; world default when model is None
    scorer: Any = None  # a prefopt.rounds.scoring.make_scorer spec; default: the reward function
    data: DataConfig = field(default_factory=DataConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    pairing: PairingConfig = field(default_factory=PairingConfig)
    loss: dict[str, Any] = field(default_factory=lambda: {"name": "dpo"})
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    peft: PeftSettings = field(default_factory=PeftSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    rounds: int = 1
    weighting: dict[str, Any] = field(default_factory=dict)  # per-list weight: {"type": ..., options}
    ches: dict[str, Any] | None = None  # e.g. {keep_fraction: 0.05}: filter pairs before training
    augment: dict[str, Any] | None = None  # reward-augmented pairs, e.g. {scale_min: 0, scale_max: 1}
    expected: dict[str, Any] | None = None  # reproduction recipes: the paper's headline number
    output_dir: str | None = None  # default: runs/<recipe>
    overwrite: bool = False
    resume: bool = False
    report_to: str = "none"
    threads: int = 0  # torch CPU threads; 0 keeps torch's default (1 is fastest for the tiny world's model)
    smoke: bool = False


def recipe_path(name: str) -> Path:
    """A recipe by name (``lipo``, ``paper/lipo``) or by path to a YAML file."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    candidate = RECIPES_DIR / f"{name}.yaml"
    if not candidate.exists():
        raise FileNotFoundError(f"no recipe {name!r}; available: {', '.join(list_recipes())}")
    return candidate


def list_recipes() -> list[str]:
    return sorted(str(p.relative_to(RECIPES_DIR).with_suffix("")) for p in RECIPES_DIR.rglob("*.yaml")
                  if "accelerate" not in p.parts)


def valid_keys(node: Any = None, prefix: str = "") -> list[str]:
    node = OmegaConf.structured(RunConfig) if node is None else node
    keys = []
    for key in node:
        value = node[key] if not OmegaConf.is_missing(node, key) else None
        if isinstance(value, DictConfig) and key not in ("loss", "weighting", "ches", "augment", "expected",
                                                          "options", "scorer", "segments", "vllm"):
            keys += valid_keys(value, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys


def _merge(base: DictConfig, other: Any, origin: str) -> DictConfig:
    try:
        return OmegaConf.merge(base, other)
    except (ConfigKeyError, ValidationError) as err:
        raise ValueError(f"{origin}: {err.msg if hasattr(err, 'msg') else err}\nvalid keys: "
                         f"{', '.join(valid_keys())}") from None


def load_config(argv: list[str]) -> DictConfig:
    """Defaults ← recipe file ← ``key=value`` overrides; validated."""
    overrides = OmegaConf.from_dotlist(argv)
    cfg = OmegaConf.structured(RunConfig)
    name = overrides.get("recipe")
    if name:
        cfg = _merge(cfg, OmegaConf.load(recipe_path(name)), f"recipe {name}")
    cfg = _merge(cfg, overrides, "command line")
    check_loss(cfg)
    learning_rates(cfg)
    return cfg


def check_loss(cfg: DictConfig) -> None:
    loss = OmegaConf.to_container(cfg.loss)
    if "name" not in loss:
        raise ValueError(f"loss.name is required; valid: {', '.join(sorted(LOSSES))}")
    problems = get_loss(loss["name"]).validate({k: v for k, v in loss.items() if k != "name"})
    if problems:
        raise ValueError("; ".join(problems))


def loss_kwargs(cfg: DictConfig) -> dict[str, Any]:
    return {k: v for k, v in OmegaConf.to_container(cfg.loss).items() if k != "name"}


def learning_rates(cfg: DictConfig) -> list[float]:
    """One learning rate per round: ``train.learning_rate`` repeated, or its list (one value per round, for papers
    that lower the rate at later iterations). Raises ValueError on a list of the wrong length or a rate <= 0."""
    rate = cfg.train.learning_rate
    per_round = OmegaConf.is_list(rate) or isinstance(rate, (list, tuple))
    rates = list(rate) if per_round else [rate] * cfg.rounds
    if len(rates) != cfg.rounds:
        raise ValueError(f"train.learning_rate has {len(rates)} values for {cfg.rounds} round(s); give one number, "
                         "or a list with one rate per round")
    for i, r in enumerate(rates):
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not r > 0:
            where = f"train.learning_rate[{i}]" if per_round else "train.learning_rate"
            raise ValueError(f"{where} = {r!r}: a learning rate must be a number > 0")
    return [float(r) for r in rates]
