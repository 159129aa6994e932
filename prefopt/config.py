"""Run configuration in layers: typed defaults (a real model's) ← recipe ← world overlay ← your YAML ← overrides.

    cfg = load_config(["recipe=lipo", "train.max_steps=50", "loss.beta=0.1"])
    resolved = resolve_config(["recipe=dpo", "config=my.yaml"])   # + resolved.source("train.max_steps")

The world overlay (``recipes/worlds/<world>.yaml``) applies only when the run is in a world
(``prefopt.world.worlds.world_of``): no model, a world's model name, or ``world=NAME``. See docs/cli.md.

Unknown keys are an error that lists the valid ones; the loss block is checked against the registry (its
hyper-parameters are the loss function's keyword arguments).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, StringNode
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from losses import LOSSES, loss_from_block
from prefopt.world.worlds import world_of

RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"


def key(default: Any, help: str, **meta: Any) -> Any:
    """A config field: its default and a one-line description, the single source of ``prefopt --help`` and
    docs/cli.md. Extra keyword metadata (e.g. a range check) rides along in ``field.metadata``. A dataclass type
    as ``default`` builds a fresh block; a list or dict default is copied per instance."""
    meta = {"help": help, **meta}
    if isinstance(default, type) and is_dataclass(default):
        return field(default_factory=default, metadata=meta)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    train: Any = key(None, "preference data: a .jsonl/.json/.parquet file, save_to_disk folder or hub id, or a list "
                           "(data.mix)")
    format: Any = key("auto", "schema of data.train: auto (from the columns) or a format name (docs/data.md)")
    columns: Any = key({}, "rename columns, e.g. {prompt: question, chosen: good, rejected: bad} (canonical: yours)")
    options: Any = key({}, "the schema reader's options, e.g. {rating: helpfulness} for ultrafeedback (docs/data.md)")
    mix: list[Any] = key([], "a mixture of data.train sources: counts, or shares summing to 1; [] = all of each")
    eval: str | None = key(None, "held-out preference data: eval loss and metrics after each round")
    prompts: str | None = key(None, "prompt-only data for self-generation; None = the tiny world's prompts")
    gold_field: str | None = key(None, "DNO: a reference response per prompt in this field joins each list as "
                                       "'gold'")
    eval_prompts: str | None = key(None, "prompt-only data for the reward before/after; None = the world's eval "
                                         "split")
    split: str = key("train", "split of a hub dataset or a saved DatasetDict given as data.train or data.prompts")
    eval_split: str = key("test", "split of a hub dataset given as data.eval")
    n_prompts: int = key(512, "prompts per round for self-generated data (round k takes the k-th slice of a file)")
    max_length: int | None = key(None, "tokens per prompt + response, longer ones truncated; null = the model's "
                                       "context length")
    max_prompt_length: int | None = key(None, "keep only the last this-many prompt tokens (None: no limit)")
    truncation_mode: str = key("keep_start", "what survives truncation: keep_start | keep_end")
    segments: dict[str, Any] = key({}, "RRPO diff settings: min_match_size, one_sided, autojunk; skip_empty drops "
                                        "pairs with no segment")
    chat_template: str = key("auto", "plain text as chat turns: auto (given text as is, as TRL; the tiny world's "
                                     "own prompts as user turns) | always | never")


@dataclass
class SamplingConfig:
    k: int = key(4, "responses sampled per prompt")
    max_new_tokens: int | None = key(None, "tokens generated per response; null = the model's generation_config "
                                           "(else half of data.max_length, at most 256)")
    temperature: float = key(1.0, "sampling temperature")
    top_p: float = key(1.0, "nucleus sampling: keep the smallest token set with this much probability")
    top_k: int = key(0, "sample among the k most likely tokens only; 0 = no top-k cut (LiPO samples with top-k 40)")
    batch_size: int = key(512, "prompts per generate call")
    backend: str = key("hf", "generation backend: hf (transformers generate) | vllm (one engine per process, the "
                       "policy's weights loaded each round)")
    vllm: dict[str, Any] = key({}, "vllm.LLM options, e.g. {gpu_memory_utilization: 0.3}")


@dataclass
class PairingConfig:
    rule: str = key("auto", "scored lists to training lists: auto (a listwise loss: full_list, else best_vs_worst) "
                            "or a key of pairing.RULES")
    options: dict[str, Any] = key({}, "keyword options of the pairing rule, e.g. {min_margin: 0.1}")
    replay: list[float] = key([], "DNO: shares of rounds t-1, t-2, ... mixed in, e.g. [0.3, 0.15]")


@dataclass
class ReferenceConfig:
    mode: str = key("model", "model (frozen copy or reference.model) | adapter (PEFT base) | precomputed")
    model: str | None = key(None, "HF id or local path of a separate reference model; None = a frozen copy")
    batch_size: int = key(32, "lists per forward pass when precomputing reference log-probs")
    per_round: bool = key(True, "each round's starting policy is its reference; false: the initial policy every "
                                "round")


@dataclass
class PeftSettings:
    enabled: bool = key(False, "train a LoRA adapter instead of the full model")
    r: int = key(8, "LoRA rank")
    lora_alpha: int = key(16, "LoRA scaling numerator (the update is scaled by lora_alpha / r)")
    lora_dropout: float = key(0.0, "dropout on the LoRA input")
    target_modules: Any = key("all-linear", "modules that get an adapter: all-linear or a list of names")
    load_in_4bit: bool = key(False, "QLoRA through bitsandbytes; CUDA only")


@dataclass
class TrainSettings:
    max_steps: int = key(0, "optimizer steps per round; <= 0 trains num_epochs epochs instead")
    num_epochs: float = key(1.0, "epochs per round when max_steps <= 0")
    optim: str = key("adamw_torch", "any transformers optimizer name (e.g. rmsprop, adamw_torch_fused, "
                                    "paged_adamw_8bit)")
    learning_rate: Any = key(1e-6, "peak learning rate (TRL's DPO default): a number, or one per round (a list)")
    per_device_batch_size: int = key(8, "lists per device per step")
    gradient_accumulation_steps: int = key(1, "micro-batches accumulated per optimizer step")
    seed: int = key(0, "seed of training, sampling and prompt selection")
    warmup_steps: float = key(0, "an int is a step count, a float in [0, 1) a fraction of max_steps")
    lr_scheduler_type: str = key("linear", "any transformers scheduler name (linear, cosine, constant, ...)")
    weight_decay: float = key(0.0, "AdamW weight decay")
    max_grad_norm: float = key(1.0, "gradient clipping norm")
    logging_steps: int = key(10, "log metrics every this many steps")
    save_steps: int = key(0, "save a checkpoint every this many steps; 0: save only the final model")
    save_total_limit: int | None = key(None, "keep only the newest this-many checkpoints per round (None: keep all)")
    bf16: bool = key(False, "bfloat16 mixed precision")
    gradient_checkpointing: bool = key(False, "recompute activations in backward to save memory")
    shared_prompt: bool = key(True, "encode each list's prompt once, its responses under a block mask "
                                    "(docs/performance.md)")
    padding_free: bool = key(False, "the lists of a batch in one row, no padding (for flex/flash attention; slower "
                                    "under SDPA)")


@dataclass
class ModelInit:
    dtype: str | None = key(None, "weights dtype: auto | float32 | bfloat16 | float16; None: float32 (bfloat16 on "
                                  "CUDA with train.bf16)")
    attn_implementation: str | None = key(None, "attention backend: eager | sdpa | flash_attention_2 | "
                                                "flex_attention ...; None: transformers' choice")


@dataclass
class HubSettings:
    push: bool = key(False, "upload the final model/ (and adapter/) to the Hugging Face hub when the run ends")
    model_id: str | None = key(None, "the hub repository, user/name (created if missing)")
    private: bool = key(False, "create the repository private")


@dataclass
class EvalSettings:
    enabled: bool = key(True, "reward before/after training when a reward function exists")
    n_prompts: int = key(256, "held-out prompts for the reward before/after")
    samples_per_prompt: int = key(4, "responses sampled per held-out prompt")
    temperature: float = key(1.0, "sampling temperature of the before/after evaluation")
    holdout_fraction: float = key(0.1, "custom reward and no data.eval_prompts: this share of your prompts is held "
                                       "out for the evaluation")


@dataclass
class RunConfig:
    recipe: str | None = key(None, "a recipe name (see the recipes list) or a path to a YAML file of yours")
    config: str | None = key(None, "a YAML file of your settings, above the recipe and the world overlay")
    model: str | None = key(None, "HF id, local path or a world's name (prefopt.world.worlds); None = the tiny "
                                  "world")
    world: str | None = key(None, "a world's prompts, reward and overlay for your model (e.g. world=tiny); None = "
                                  "the model's own world, if any")
    tokenizer: str | None = key(None, "HF id or local path of the tokenizer; None = the model's")
    previous_model: str | None = key(None, "the model `model` was trained from (CREAM's M0): round 0's previous policy")
    reward: str | None = key(None, "'module:function' (prompt, response) -> float; None = the world's, if any")
    scorer: Any = key(None, "a prefopt.rounds.scorers.make_scorer spec; default: the reward function")
    data: DataConfig = key(DataConfig, "where the training, eval and prompt data come from")
    generation: SamplingConfig = key(SamplingConfig, "sampling of self-generated responses")
    pairing: PairingConfig = key(PairingConfig, "scored lists to training lists")
    loss: dict[str, Any] = key({"name": "dpo"}, "loss.name (see the losses list; a list sums them, weighted by "
                                                "loss.weights) and its hyper-parameters")
    reference: ReferenceConfig = key(ReferenceConfig, "the reference policy of the loss")
    model_init: ModelInit = key(ModelInit, "how the model is loaded (from_pretrained options)")
    peft: PeftSettings = key(PeftSettings, "LoRA / QLoRA adapters")
    train: TrainSettings = key(TrainSettings, "the optimisation of each round (transformers TrainingArguments)")
    eval: EvalSettings = key(EvalSettings, "the reward before/after training")
    hub: HubSettings = key(HubSettings, "push the finished model to the Hugging Face hub")
    rounds: int = key(1, "generate -> score -> train iterations (self-generated data)")
    weighting: dict[str, Any] = key({}, "per-list weight: {type: ..., options}")
    ches: dict[str, Any] | None = key(None, "e.g. {keep_fraction: 0.05}: filter pairs by CHES before training")
    augment: dict[str, Any] | None = key(None, "reward-augmented pairs, e.g. {scale_min: 0, scale_max: 1}")
    expected: dict[str, Any] | None = key(None, "reproduction recipes: the paper's headline number")
    output_dir: str | None = key(None, "the run folder; default: runs/<recipe>")
    overwrite: bool = key(False, "clear a non-empty output_dir before running")
    resume: bool = key(False, "continue the run in output_dir; finished rounds are not redone")
    report_to: str = key("none", "tracker of the training curves: none | wandb | tensorboard")
    threads: int = key(0, "torch CPU threads; 0 = unset (torch's default; the tiny world's overlay sets 1)")
    smoke: bool = key(False, "shrink the run (stand-in model, few prompts and steps) to check a recipe on CPU")
    debug: bool = key(False, "a run that fails after the start prints the traceback above its one error: line")
    reward_timeout_s: float | None = key(None, "seconds one reward call may take (scoring, evaluation, the "
                                               "pre-flight probe); slower is an error naming the prompt")


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
                  if "accelerate" not in p.parts and "worlds" not in p.parts)


def valid_keys(node: Any = None, prefix: str = "") -> list[str]:
    node = OmegaConf.structured(RunConfig) if node is None else node
    keys = []
    for key in node:
        value = node[key] if not OmegaConf.is_missing(node, key) else None
        if isinstance(value, DictConfig) and key not in ("loss", "weighting", "ches", "augment", "expected",
                                                          "options", "scorer", "segments", "vllm", "columns"):
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


# The layers, lowest first; each key's value comes from the highest layer that sets it (``prefopt --help`` shows
# which). A recipe file of your own (``recipe=my.yaml``, not one of recipes/) counts as your YAML.
LAYERS = ("default", "recipe", "world overlay", "your YAML", "command line")


@dataclass
class Resolved:
    """A resolved config and, per dotted key, the layer that set it (keys absent from ``sources``: default)."""
    cfg: DictConfig
    sources: dict[str, str]

    def source(self, key: str) -> str:
        """The layer of ``key``, or of the highest layer that set anything under it (a dict-valued key)."""
        found = [LAYERS.index(v) for k, v in self.sources.items() if k == key or k.startswith(key + ".")]
        return LAYERS[max(found)] if found else "default"


def _load_yaml(path: Path, what: str) -> DictConfig:
    if not path.is_file():
        raise FileNotFoundError(f"{what}: no such file {path}")
    node = OmegaConf.load(path)
    if not isinstance(node, DictConfig):
        raise ValueError(f"{what}: {path} must hold key: value settings")
    return node


def _overlay(cfg: DictConfig, recipe: str | None) -> DictConfig | None:
    """The world's overlay for this run: its common settings, then its ``per_recipe`` section for ``recipe``. Loss
    hyper-parameters the run's loss does not take are left out (β for a loss without one)."""
    world = world_of(cfg)
    if world is None:
        return None
    node = OmegaConf.to_container(_load_yaml(recipe_path(world.overlay), f"world {world.name} overlay"))
    per_recipe = node.pop("per_recipe", None) or {}
    merged = OmegaConf.merge(node, per_recipe.get(recipe) or {})
    try:
        takes = set(loss_from_block(OmegaConf.to_container(cfg.loss)).defaults)
    except (KeyError, ValueError, ImportError):
        takes = set()  # check_loss reports the unknown loss
    if "loss" in merged:
        merged.loss = {k: v for k, v in merged.loss.items() if k in takes}
    return merged


def _dotted(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict) and node:
        return [k for key, value in node.items() for k in _dotted(value, f"{prefix}{key}.")]
    return [prefix[:-1]]


def resolve_config(argv: list[str]) -> Resolved:
    """Defaults ← recipe ← world overlay ← your YAML (``config=``) ← ``key=value`` overrides; validated, with each
    key's source."""
    overrides = OmegaConf.from_dotlist(argv)
    layers: list[tuple[str, Any]] = []
    mine = _load_yaml(Path(overrides.config), "config") if overrides.get("config") else None
    name = overrides.get("recipe") or (mine.get("recipe") if mine is not None else None)
    shipped = None
    if name:
        path = recipe_path(name)
        where = path.resolve()  # a shipped recipe by name or by path: its name keys the overlay's per_recipe section
        shipped = str(where.relative_to(RECIPES_DIR).with_suffix("")) if where.is_relative_to(RECIPES_DIR) else None
        layers.append(("recipe" if shipped else "your YAML", _load_yaml(path, f"recipe {name}")))
    if mine is not None:
        layers.append(("your YAML", mine))
    layers.append(("command line", overrides))
    cfg = OmegaConf.structured(RunConfig)
    for layer, node in layers:
        cfg = _merge(cfg, node, "command line" if layer == "command line" else f"{layer} ({name or overrides.config})")
    overlay = _overlay(cfg, shipped)
    if overlay:  # above the recipe, below your YAML and the command line
        at = 1 if shipped else 0
        layers.insert(at, ("world overlay", overlay))
        cfg = OmegaConf.structured(RunConfig)
        for layer, node in layers:
            cfg = _merge(cfg, node, layer)
    _as_typed(cfg, argv, overrides)
    _check_interpolations(cfg)
    check_loss(cfg)
    learning_rates(cfg)
    sources = {k: layer for layer, node in layers for k in _dotted(OmegaConf.to_container(node))}
    return Resolved(cfg, sources)


def load_config(argv: list[str]) -> DictConfig:
    """The resolved config of ``argv`` (``resolve_config``, without the sources)."""
    return resolve_config(argv).cfg


LOSS_KEYS = ("name", "weights")  # the loss block's keys that are not hyper-parameters


def _as_typed(cfg: DictConfig, argv: list[str], overrides: DictConfig) -> None:
    """A text key keeps the text the user typed: the dotlist parses values as YAML, so ``output_dir=1_000`` would
    become "1000", ``output_dir=1e3`` "1000.0" and ``output_dir=~`` None (the default folder). Only ``null``
    means None."""
    for item in argv:
        name, _, raw = item.partition("=")
        parent_key, _, leaf = name.rpartition(".")
        parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
        node = parent._get_node(leaf) if isinstance(parent, DictConfig) and leaf in parent else None
        parsed = OmegaConf.select(overrides, name, throw_on_resolution_failure=False)
        if isinstance(node, StringNode) and not isinstance(parsed, str) and raw != "null":
            OmegaConf.update(cfg, name, raw)


def _check_interpolations(cfg: DictConfig) -> None:
    """Every ``${...}`` resolves now (a missing key or environment variable is a ValueError naming the key), not
    as a traceback when the run first reads it."""
    try:
        OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        where = getattr(err, "full_key", None)
        msg = (getattr(err, "msg", None) or str(err)).splitlines()[0]
        raise ValueError(f"{where + ': ' if where else ''}{msg}") from None


SECRET = re.compile(r"\$\{\s*oc\.env\s*:")  # values read from the environment (tokens, keys): never written


def public_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as written to ``config.yaml`` and sent to trackers, except that every value read from
    the environment (``${oc.env:HF_TOKEN}``, or a key interpolating one) stays an interpolation, not the secret."""
    raw = OmegaConf.to_container(cfg, resolve=False)
    resolved = OmegaConf.to_container(cfg, resolve=True)

    def secret(value: Any, depth: int = 0) -> bool:
        if not isinstance(value, str) or "${" not in value or depth > 20:
            return False
        if SECRET.search(value):
            return True
        refs = re.findall(r"\$\{([\w.]+)\}", value)
        return any(secret(_lookup(raw, ref), depth + 1) for ref in refs)

    def merge(r: Any, v: Any) -> Any:
        if isinstance(r, dict) and isinstance(v, dict):
            return {k: merge(r[k], v[k]) for k in v}
        if isinstance(r, list) and isinstance(v, list) and len(r) == len(v):
            return [merge(a, b) for a, b in zip(r, v, strict=True)]
        return r if secret(r) else v

    return merge(raw, resolved)


def _lookup(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def check_loss(cfg: DictConfig) -> None:
    loss = OmegaConf.to_container(cfg.loss)
    if "name" not in loss:
        raise ValueError(f"loss.name is required; valid: {', '.join(sorted(LOSSES))}")
    problems = loss_spec(cfg).validate(loss_kwargs(cfg))
    if problems:
        raise ValueError("; ".join(problems))


def loss_spec(cfg: DictConfig):
    """The run's ``LossSpec``: ``loss.name`` (one name, or a list summed with ``loss.weights`` as TRL's
    ``loss_type=[...]``/``loss_weights=[...]``)."""
    return loss_from_block(OmegaConf.to_container(cfg.loss))


def loss_label(cfg: DictConfig) -> str:
    """``loss.name`` in one word: ``dpo``, or ``sigmoid+sft`` for a weighted sum."""
    name = OmegaConf.to_container(cfg.loss)["name"]
    return "+".join(map(str, name)) if isinstance(name, list) else str(name)


def loss_kwargs(cfg: DictConfig) -> dict[str, Any]:
    return {k: v for k, v in OmegaConf.to_container(cfg.loss).items() if k not in LOSS_KEYS}


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
