"""Load the policy and its tokenizer: a hub id or local path, or the tiny embedded world; optional (Q)LoRA."""

from __future__ import annotations

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
    kwargs = {}
    if cfg.peft.load_in_4bit:
        try:
            import bitsandbytes  # noqa: F401
            from transformers import BitsAndBytesConfig
        except ImportError as err:
            raise ImportError("peft.load_in_4bit needs bitsandbytes: pip install 'prefopt[quant]'") from err
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_compute_dtype=torch.bfloat16)
    elif cfg.train.bf16 and torch.cuda.is_available():
        kwargs["dtype"] = torch.bfloat16
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(cfg.tokenizer or path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def load_frozen(path: str, cfg: DictConfig):
    """A frozen causal LM (no gradients, eval mode) in the policy's dtype: a model the rounds only score with,
    e.g. CREAM's M0 (``previous_model``)."""
    dtype = {"dtype": torch.bfloat16} if cfg.train.bf16 and torch.cuda.is_available() else {}
    return AutoModelForCausalLM.from_pretrained(path, **dtype).requires_grad_(False).eval()


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
