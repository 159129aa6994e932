"""Sampling K responses per prompt: the generation backend of evaluation, self-generated data and rounds.

    from prefopt.rounds.generate import sample
    responses = sample(model, tokenizer, ["sort 3142", "rev abc"], k=4, max_new_tokens=10)  # [[4 str], [4 str]]

Backends behind one interface:
  * ``"hf"`` (default): transformers ``generate``, batched with left padding and the KV cache. A string prompt is
    sent as one user message through the tokenizer's chat template when it has one (a list of messages always
    is), with the generation prompt; without a template the string is tokenized as it is.
  * ``"vllm"``: vLLM's offline ``LLM.generate`` on the same rendered token ids (``pip install prefopt[vllm]``).

Sampling is pure (temperature and top-p only: top-k is switched off and no repetition penalty applies), since
self-generated preference data should be drawn from the policy itself. A call is seeded and does not disturb the
caller's global RNG: the same call on the same model returns the same responses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from prefopt.tensors import eval_mode, pad_rows

Prompt = str | list[dict[str, Any]]
VLLM_MISSING = "the vLLM backend needs vllm, which is not installed: pip install prefopt[vllm]"


def render_prompt(tokenizer, prompt: Prompt, chat_template: bool = True) -> tuple[str, bool]:
    """The prompt as text ready to tokenize, and whether special tokens must still be added.

    A chat-template rendering already holds the BOS (or whatever the template puts first), so it is tokenized
    without special tokens; a plain prompt gets the tokenizer's own (a BOS for Llama-style tokenizers). With
    ``chat_template=False`` a plain prompt is rendered as it is even when the tokenizer has a template.
    """
    if getattr(tokenizer, "chat_template", None) and (chat_template or not isinstance(prompt, str)):
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False), False
    if not isinstance(prompt, str):
        raise ValueError("chat-message prompts need a tokenizer with a chat template (tokenizer.chat_template)")
    return prompt, True


def _prompt_ids(tokenizer, prompts: Sequence[Prompt], chat_template: bool = True) -> list[list[int]]:
    ids = []
    for prompt in prompts:
        text, add_special = render_prompt(tokenizer, prompt, chat_template)
        ids.append(tokenizer(text, add_special_tokens=add_special)["input_ids"])
    return ids


def _generation_kwargs(tokenizer, max_new_tokens: int, temperature: float, top_p: float,
                       top_k: int = 0) -> dict[str, Any]:
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": pad_id, "use_cache": True,
                              "eos_token_id": tokenizer.eos_token_id}
    if temperature > 0:
        # top_k=0 switches off transformers' default top-k of 50, which would truncate a real model's sampling.
        kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=top_k, repetition_penalty=1.0)
    else:
        kwargs.update(do_sample=False)
    return kwargs


def _sample_hf(model, tokenizer, rows: list[list[int]], *, max_new_tokens: int, temperature: float, top_p: float,
               top_k: int, batch_size: int, seed: int, progress: bool, desc: str = "generate") -> list[str]:
    """One response per row of prompt ids, in row order."""
    from tqdm.auto import tqdm

    kwargs = _generation_kwargs(tokenizer, max_new_tokens, temperature, top_p, top_k)
    device = next(model.parameters()).device
    # Longest prompts first, so a batch holds prompts of similar length (less padding); outputs are put back.
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    outputs: list[str] = [""] * len(rows)
    starts = range(0, len(rows), batch_size)
    for b, start in enumerate(tqdm(starts, desc=desc, unit="batch", disable=not progress)):
        idx = order[start:start + batch_size]
        input_ids, attention_mask = pad_rows([rows[i] for i in idx], kwargs["pad_token_id"], side="left")
        # Seeding per batch makes a batch's samples independent of how many batches ran before it.
        torch.manual_seed(seed + b)
        out = model.generate(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device), **kwargs)
        texts = tokenizer.batch_decode(out[:, input_ids.shape[1]:], skip_special_tokens=True)  # response only
        for i, text in zip(idx, texts, strict=True):
            outputs[i] = text
    return outputs


def sample(model, tokenizer, prompts: Sequence[Prompt], *, k: int = 1, max_new_tokens: int,
           temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0, batch_size: int = 64, seed: int = 0,
           progress: bool = True, backend: str = "hf", desc: str = "generate",
           chat_template: bool = True) -> list[list[str]]:
    """K sampled responses for each prompt, in prompt order: ``out[i][j]`` is prompt i's j-th response.

    Args:
        model: a causal LM (``backend="hf"``); for vLLM also a ``vllm.LLM`` or a local model path.
        tokenizer: its tokenizer; its padding side and the model's train/eval mode are restored afterwards.
        prompts: plain strings (sent as a user message when the tokenizer has a chat template) or chat messages.
        k: responses per prompt. max_new_tokens: generation length limit (an EOS ends a response earlier).
        temperature: 0 means greedy decoding (then the k responses are identical); top_p: nucleus sampling;
            top_k: sample among the top_k most likely tokens only (0: no top-k cut).
        batch_size: sequences per ``generate`` call (prompts × k are batched together).
        seed: the same seed, inputs and model give the same responses; the global RNG is left as it was.
        progress: show a tqdm bar over batches, labelled ``desc``.
        backend: ``"hf"`` or ``"vllm"``.
        chat_template: send plain-string prompts as a user turn when the tokenizer has a chat template; False
            tokenizes them as they are (the run decides per ``data.chat_template``, then passes False).

    Returns:
        ``len(prompts)`` lists of ``k`` strings, with the prompt and special tokens stripped.
    """
    if k < 1 or max_new_tokens < 1 or batch_size < 1:
        raise ValueError(f"k, max_new_tokens and batch_size must be >= 1, got {k}, {max_new_tokens}, {batch_size}")
    if temperature < 0 or not 0 < top_p <= 1 or top_k < 0:
        raise ValueError(f"need temperature >= 0, 0 < top_p <= 1 and top_k >= 0, got {temperature}, {top_p}, {top_k}")
    if backend == "vllm":
        return _sample_vllm(model, tokenizer, prompts, k=k, max_new_tokens=max_new_tokens, temperature=temperature,
                            top_p=top_p, top_k=top_k, seed=seed, progress=progress,
                            chat_template=chat_template)
    if backend != "hf":
        raise ValueError(f"unknown generation backend {backend!r}; valid: 'hf', 'vllm'")
    if not prompts:
        return []
    # prompt i's k copies are adjacent
    rows = [ids for ids in _prompt_ids(tokenizer, prompts, chat_template) for _ in range(k)]
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        with eval_mode(model), torch.random.fork_rng(devices=_cuda_devices(model)):
            flat = _sample_hf(model, tokenizer, rows, max_new_tokens=max_new_tokens, temperature=temperature,
                              top_p=top_p, top_k=top_k, batch_size=batch_size, seed=seed, progress=progress, desc=desc)
    finally:
        tokenizer.padding_side = padding_side
    return [flat[i * k:(i + 1) * k] for i in range(len(prompts))]


def _cuda_devices(model) -> list[int]:
    """The CUDA devices whose RNG ``fork_rng`` must save (none on CPU: it warns when asked to fork every GPU)."""
    return sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})


def _import_vllm():
    try:
        import vllm
    except ImportError as err:
        raise ImportError(VLLM_MISSING) from err
    return vllm


def _sample_vllm(model, tokenizer, prompts: Sequence[Prompt], *, k: int, max_new_tokens: int, temperature: float,
                 top_p: float, top_k: int, seed: int, progress: bool,
                 chat_template: bool = True) -> list[list[str]]:
    """vLLM backend: the prompts are rendered and tokenized exactly as for ``"hf"``, then sent as token ids.

    An in-memory transformers model is first saved to a temporary folder, since vLLM loads weights from disk;
    pass a ``vllm.LLM`` to reuse one engine across calls (its weights are then the caller's to keep current).
    """
    vllm = _import_vllm()
    import tempfile

    # vLLM spells "no top-k cut" -1 in every version (newer ones also accept 0)
    params = vllm.SamplingParams(n=k, temperature=temperature, top_p=top_p, top_k=top_k or -1,
                                 max_tokens=max_new_tokens, seed=seed, skip_special_tokens=True)
    requests = [{"prompt_token_ids": ids} for ids in _prompt_ids(tokenizer, prompts, chat_template)]
    if isinstance(model, vllm.LLM):
        outputs = model.generate(requests, params, use_tqdm=progress)
    elif isinstance(model, (str, Path)):
        outputs = vllm.LLM(model=str(model), seed=seed).generate(requests, params, use_tqdm=progress)
    else:
        with tempfile.TemporaryDirectory(prefix="prefopt-vllm-") as folder:
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            outputs = vllm.LLM(model=folder, seed=seed).generate(requests, params, use_tqdm=progress)
    return [[completion.text for completion in out.outputs] for out in outputs]
