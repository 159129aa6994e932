"""vLLM generation (``generation.backend=vllm``): one engine per process, kept for the run, fed the policy's weights.

    responses = vllm_sample(policy, tokenizer, prompts, seeds=seeds, k=8, max_new_tokens=256, temperature=1.0,
                            top_p=1.0, options={"gpu_memory_utilization": 0.3})

How it runs (the colocate layout of TRL's ``VLLMGeneration``, which this follows):
  * Each process of ``accelerate launch`` (one per GPU) builds one in-process engine the first time it samples,
    with ``distributed_executor_backend="external_launcher"``, and keeps it for the whole run. With
    ``tensor_parallel_size = t > 1`` the processes form groups of t consecutive ranks; a group shares one
    tensor-parallel engine, gathers its members' prompts, generates them together and hands each its slice.
  * Before every call the policy's current weights are pushed into the engine (``policy_weights`` →
    ``load_weights``, no restart and no disk round trip), so round k samples from the round-k policy. A PEFT policy
    is sent merged (base + adapter delta, computed without touching the live model); FSDP2 shards are gathered.
  * Each prompt is one request with its own ``SamplingParams(seed=...)``: the per-prompt seed of
    ``prefopt.seeds.prompt_seed``, so a prompt's K samples do not depend on which process or engine drew them.
    (vLLM's sampler is not the HF sampler: the two backends give different, equally distributed samples.)

The engine boundary: ``vllm.LLM(...)``, ``LLM.generate`` and the engine model's ``load_weights``. Everything before
it (engine arguments, per-prompt sampling parameters, the weights and their names, the tensor-parallel slices) is
plain Python, tested on CPU without vLLM (tests/rounds/test_vllm_engine.py). The engine calls themselves need
vLLM and a GPU; docs/distributed.md says what was verified where.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import torch

VLLM_MISSING = "the vLLM backend needs vllm, which is not installed: pip install prefopt[vllm]"

# ``generation.vllm`` options and their defaults: keyword arguments of ``vllm.LLM``. A third of the GPU leaves the
# rest to training, which shares it (vLLM reserves its share up front for weights and KV cache).
ENGINE_DEFAULTS: dict[str, Any] = {"gpu_memory_utilization": 0.3, "tensor_parallel_size": 1, "max_model_len": None,
                                   "dtype": "auto", "enable_prefix_caching": True, "max_num_seqs": None}

_ENGINES: dict[str, Any] = {}  # one engine per process, keyed by the checkpoint it was built from
_TP_GROUPS: dict[str, Any] = {}  # this rank's tensor-parallel group, created once


def import_vllm():
    try:
        import vllm
    except ImportError as err:
        raise ImportError(VLLM_MISSING) from err
    return vllm


def engine_kwargs(model_path: str, options: dict[str, Any] | None, *, process_index: int,
                  num_processes: int) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM`` for this process; ``options`` override ``ENGINE_DEFAULTS``.

    The engine seed is the tensor-parallel group's index (the ranks of one engine must agree); sampling itself is
    seeded per request, so it does not matter otherwise.
    """
    options = dict(options or {})
    unknown = sorted(set(options) - set(ENGINE_DEFAULTS))
    if unknown:
        raise ValueError(f"generation.vllm: unknown option(s) {unknown}; valid: {sorted(ENGINE_DEFAULTS)}")
    kwargs = {**ENGINE_DEFAULTS, **options}
    tp = int(kwargs["tensor_parallel_size"])
    if tp < 1 or num_processes % tp:
        raise ValueError(f"generation.vllm.tensor_parallel_size={tp} must divide the number of processes "
                         f"({num_processes})")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return {**kwargs, "model": model_path, "seed": process_index // tp,
            "distributed_executor_backend": "external_launcher"}


def sampling_kwargs(seeds: Sequence[int], *, k: int, max_new_tokens: int, temperature: float,
                    top_p: float, top_k: int = 0) -> list[dict[str, Any]]:
    """``vllm.SamplingParams`` keyword arguments, one set per prompt (each with its prompt's seed).

    Pure sampling as the HF backend: top-k only when asked (vLLM's -1 is off), no min-p or repetition penalty.
    """
    return [{"n": k, "temperature": temperature, "top_p": top_p, "top_k": top_k if top_k > 0 else -1,
             "max_tokens": max_new_tokens, "seed": int(seed),
             "skip_special_tokens": True} for seed in seeds]


def group_slice(sizes: Sequence[int], rank: int) -> slice:
    """Rank ``rank``'s part of a tensor-parallel group's concatenated prompts, given every member's count."""
    start = sum(sizes[:rank])
    return slice(start, start + sizes[rank])


def _lora_deltas(core) -> dict[str, torch.Tensor]:
    """{base weight name: ΔW} of every active LoRA layer of a PEFT model (ΔW = scale · B A)."""
    from peft.tuners.lora import LoraLayer

    deltas = {}
    for name, module in core.named_modules():
        if isinstance(module, LoraLayer) and not module.merged:
            delta = sum(module.get_delta_weight(a) for a in module.active_adapters if a in module.lora_A)
            if isinstance(delta, torch.Tensor):
                deltas[f"{name}.base_layer.weight"] = delta
    return deltas


def policy_weights(model) -> Iterator[tuple[str, torch.Tensor]]:
    """The policy's weights as (checkpoint name, tensor), the pairs vLLM's ``load_weights`` reads.

    A PEFT model yields its base weights plus the adapters' deltas under the base checkpoint's names (the live
    model is not merged: merge/unmerge would drift the fp32 weights by rounding each round). Tied weights come
    once (``named_parameters``). An FSDP2 ``DTensor`` is gathered with ``full_tensor()``, a collective: every
    process must iterate.
    """
    from peft import PeftModel

    core = getattr(model, "module", model)  # DDP
    deltas = _lora_deltas(core) if isinstance(core, PeftModel) else {}
    for name, param in core.named_parameters():
        if "lora_" in name or "original_module" in name:
            continue  # adapter factors are folded in below; modules_to_save keep their trained copy
        value = param.detach()
        if hasattr(value, "full_tensor"):
            value = value.full_tensor()
        if name in deltas:
            value = value + deltas[name].to(value.dtype)
        if isinstance(core, PeftModel):
            name = name.removeprefix("base_model.model.").replace(".base_layer", "")
            name = name.replace("modules_to_save.default.", "")
        yield name, value


def _source_path(policy, tokenizer) -> str:
    """A checkpoint folder (or hub id) the engine can read its config and tokenizer from.

    The engine's weights are replaced by the policy's before the first request, so the checkpoint only has to have
    the policy's architecture; a model without a ``name_or_path`` is saved once to a temporary folder.
    """
    core = getattr(policy, "module", policy)
    base = core.get_base_model() if hasattr(core, "get_base_model") else core
    path = getattr(base, "name_or_path", "") or getattr(base.config, "_name_or_path", "")
    if path:
        return str(path)
    folder = tempfile.mkdtemp(prefix="prefopt-vllm-")
    base.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def engine_for(policy, tokenizer, options: dict[str, Any] | None = None):
    """This process's engine for ``policy``'s architecture (or checkpoint path), built on first use."""
    from accelerate import PartialState
    from trl.trainer.utils import ensure_master_addr_port

    vllm = import_vllm()
    path = str(policy) if isinstance(policy, (str, os.PathLike)) else _source_path(policy, tokenizer)
    if path not in _ENGINES:
        state = PartialState()
        # the external launcher reads the torch.distributed rendezvous from the environment, as under torchrun
        os.environ.update(RANK=str(state.process_index), LOCAL_RANK=str(state.local_process_index),
                          WORLD_SIZE=str(state.num_processes))
        ensure_master_addr_port()
        _ENGINES[path] = vllm.LLM(**engine_kwargs(path, options, process_index=state.process_index,
                                                  num_processes=state.num_processes))
    return _ENGINES[path]


def _tp_group(tp: int):
    """This rank's tensor-parallel process group (created once), or None for tp = 1."""
    if tp == 1:
        return None
    if "group" not in _TP_GROUPS:
        world = torch.distributed.get_world_size()
        _TP_GROUPS["group"], _ = torch.distributed.new_subgroups_by_enumeration(
            [list(range(i, i + tp)) for i in range(0, world, tp)])
    return _TP_GROUPS["group"]



def vllm_sample(policy, tokenizer, prompt_ids: list[list[int]], *, seeds: Sequence[int], k: int,
                max_new_tokens: int, temperature: float, top_p: float, top_k: int = 0,
                options: dict[str, Any] | None = None, progress: bool = False) -> list[list[str]]:
    """K samples per prompt (token ids, rendered as for the HF backend) from this process's engine.

    ``policy`` is a transformers model (its weights are loaded into the engine first), a checkpoint path, or a
    ``vllm.LLM`` used as it is (the weights of the last two are the caller's to keep current).
    """
    vllm = import_vllm()
    tp = 1 if isinstance(policy, vllm.LLM) else int({**ENGINE_DEFAULTS, **(options or {})}["tensor_parallel_size"])
    llm = policy if isinstance(policy, vllm.LLM) else engine_for(policy, tokenizer, options)
    if not isinstance(policy, (vllm.LLM, str, os.PathLike)):
        llm.llm_engine.model_executor.driver_worker.model_runner.model.load_weights(policy_weights(policy))
        llm.reset_prefix_cache()  # cached prefixes hold the old weights' keys and values
    group, rows = _tp_group(tp), [(ids, s) for ids, s in zip(prompt_ids, seeds, strict=True)]
    if group is not None:  # every rank of a tensor-parallel engine must send it the same requests
        shares: list = [None] * tp
        torch.distributed.all_gather_object(shares, rows, group=group)
        mine = group_slice([len(s) for s in shares], torch.distributed.get_rank(group=group))
        rows = [row for share in shares for row in share]
    params = [vllm.SamplingParams(**kw) for kw in sampling_kwargs([s for _, s in rows], k=k,
                                                                    max_new_tokens=max_new_tokens,
                                                                    temperature=temperature, top_p=top_p, top_k=top_k)]
    outputs = llm.generate([{"prompt_token_ids": ids} for ids, _ in rows], params, use_tqdm=progress)
    texts = [[completion.text for completion in out.outputs] for out in outputs]
    return texts[mine] if group is not None else texts
