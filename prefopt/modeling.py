"""Load the policy and its tokenizer: a hub id or local path, or the tiny embedded world; optional (Q)LoRA.

``model_init.dtype`` and ``model_init.attn_implementation`` go to every ``from_pretrained`` of a model the run
trains or scores with (policy, frozen earlier iterates, ``prefopt eval``). They live in their own block, not
under ``model.``, because ``model`` itself is the model's id or path.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from omegaconf import DictConfig
from transformers import AutoModelForCausalLM, AutoTokenizer

from prefopt.world.worlds import model_folder, uses_world_model, world_of


def load_policy(cfg: DictConfig):
    """(model, tokenizer) for ``cfg.model``, or the world's own model (the tiny world's warmed-up base policy when
    ``model`` is None; ``prefopt.world.worlds``)."""
    if cfg.peft.load_in_4bit and not torch.cuda.is_available():
        raise ValueError("peft.load_in_4bit=true (QLoRA) needs a CUDA GPU and bitsandbytes; on CPU use "
                         "peft.enabled=true without load_in_4bit")
    path = model_folder(world_of(cfg)) if uses_world_model(cfg) else cfg.model
    kwargs = init_kwargs(cfg)
    if cfg.peft.load_in_4bit:
        try:
            import bitsandbytes  # noqa: F401
            from transformers import BitsAndBytesConfig
        except ImportError as err:
            raise ImportError("peft.load_in_4bit needs bitsandbytes: pip install 'prefopt[quant]'") from err
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    return model, load_tokenizer(cfg.tokenizer or path)


def init_kwargs(cfg: DictConfig) -> dict:
    """``from_pretrained`` keyword arguments of ``model_init`` (the dtype defaults to bfloat16 on CUDA with
    ``train.bf16``, else the library's float32)."""
    kwargs = {}
    init = cfg.model_init
    if init.dtype:
        kwargs["dtype"] = init.dtype if init.dtype == "auto" else getattr(torch, init.dtype)
    elif cfg.train.bf16 and torch.cuda.is_available():
        kwargs["dtype"] = torch.bfloat16
    if init.attn_implementation:
        kwargs["attn_implementation"] = init.attn_implementation
    return kwargs


def adapter_base(path: str | Path) -> str | None:
    """The base model a PEFT adapter folder was trained on, or None when ``path`` is not an adapter folder."""
    config = Path(path) / "adapter_config.json"
    return json.loads(config.read_text()).get("base_model_name_or_path") if config.exists() else None


def load_tokenizer(path: str | Path):
    """The tokenizer saved with a model (an adapter folder without one: its base model's), padding set."""
    base = adapter_base(path)
    if base and not (Path(path) / "tokenizer_config.json").exists():
        path = base
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


NO_LIMIT = 1_000_000  # transformers' tokenizer.model_max_length is VERY_LARGE_INTEGER when the tokenizer sets none
NEW_TOKENS_CAP = 256  # TRL's GRPOConfig.max_completion_length default, for a model whose generation_config is silent


def model_lengths(cfg: DictConfig, model, tokenizer) -> DictConfig:
    """``cfg`` with the lengths left to the model filled in (a copy; the run folder keeps ``null``, which the same
    model resolves the same way on resume):

    * ``data.max_length``: the tokenizer's ``model_max_length``, else the model's ``max_position_embeddings``;
    * ``generation.max_new_tokens``: the model's ``generation_config.max_new_tokens``, else half of
      ``data.max_length`` (a prompt and its response share the context), at most 256.
    """
    if cfg.data.max_length is not None and cfg.generation.max_new_tokens is not None:
        return cfg
    cfg = copy.deepcopy(cfg)
    notes = []
    if cfg.data.max_length is None:
        limit = getattr(tokenizer, "model_max_length", None)
        if not limit or limit >= NO_LIMIT:
            limit = getattr(model.config, "max_position_embeddings", None)
        cfg.data.max_length = limit
        notes.append(f"data.max_length={limit}")
    if cfg.generation.max_new_tokens is None:
        own = getattr(getattr(model, "generation_config", None), "max_new_tokens", None)
        cfg.generation.max_new_tokens = own or min(NEW_TOKENS_CAP, max(1, (cfg.data.max_length or 2 * NEW_TOKENS_CAP)
                                                                       // 2))
        notes.append(f"generation.max_new_tokens={cfg.generation.max_new_tokens}")
    print(f"[prefopt] from the model: {', '.join(notes)}", flush=True)
    return cfg


def load_frozen(path: str, cfg: DictConfig):
    """A frozen causal LM (no gradients, eval mode) in the policy's dtype: a model the rounds only score with,
    e.g. CREAM's M0 (``previous_model``), or ``prefopt eval``'s. A PEFT adapter folder loads onto its base (through
    transformers' PEFT integration)."""
    return AutoModelForCausalLM.from_pretrained(path, **init_kwargs(cfg)).requires_grad_(False).eval()


def wrap_peft(model, cfg: DictConfig):
    """A LoRA adapter on ``model`` (the base stays frozen and serves as the reference with the adapter off)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    from prefopt.trainer.logps import ensure_fused_head

    ensure_fused_head(model)  # before wrapping, as TRL's fused head requires
    if cfg.peft.load_in_4bit:
        model = prepare_model_for_kbit_training(model)
    target = cfg.peft.target_modules
    lora = LoraConfig(r=cfg.peft.r, lora_alpha=cfg.peft.lora_alpha, lora_dropout=cfg.peft.lora_dropout,
                      target_modules=target if isinstance(target, str) else list(target), task_type="CAUSAL_LM")
    return get_peft_model(model, lora)
