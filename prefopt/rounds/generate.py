"""Sampling K responses per prompt: the generation backend of evaluation, self-generated data and rounds.

    from prefopt.rounds.generate import sample
    responses = sample(model, tokenizer, ["sort 3142", "rev abc"], k=4, max_new_tokens=10)  # [[4 str], [4 str]]

Backends behind one interface:
  * ``"hf"`` (default): transformers ``generate``, batched with left padding and the KV cache. A string prompt is
    sent as one user message through the tokenizer's chat template when it has one (a list of messages always
    is), with the generation prompt; without a template the string is tokenized as it is. The K samples of a
    prompt share its prefill: the prompt (all but its last token) runs once, its KV cache is repeated K times, and
    ``generate`` continues from there (``_generate``).
  * ``"vllm"``: vLLM's offline ``LLM.generate`` on the same rendered token ids (``pip install prefopt[vllm]``), one
    engine per process kept for the run, the policy's weights loaded into it on each call
    (``prefopt.rounds.vllm_engine``); vLLM prefills a prompt once for its K samples.

Sampling is pure (temperature, top-p and an optional top-k, off by default; no repetition penalty), since
self-generated preference data should be drawn from the policy itself. Every prompt has its own seed (``seeds``, or
``prefopt.seeds.derive_seed(seed, i)`` for prompt i) and each of its K samples its own random stream
(``prefopt.rounds.row_sampling``), so a prompt's responses do not depend on the batch size, on the other prompts
of the call, or on how the prompts are split across processes. The caller's global RNG is left as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from prefopt.distributed import shard_batches, shard_call, sorted_batches
from prefopt.rounds.row_sampling import SeededRowSampler
from prefopt.rounds.vllm_engine import VLLM_MISSING, vllm_sample  # noqa: F401  (VLLM_MISSING: the install hint)
from prefopt.seeds import derive_seed
from prefopt.tensors import eval_mode, pad_rows

Prompt = str | list[dict[str, Any]]


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


def _prompt_ids(tokenizer, prompts: Sequence[Prompt], chat_template: bool = True,
                max_prompt_tokens: int | None = None) -> list[list[int]]:
    """Token ids of each rendered prompt; with ``max_prompt_tokens``, only the last that many (the end of the
    prompt, with the chat template's generation prompt, is what the response continues; as
    ``data.max_prompt_length`` keeps the last prompt tokens in training). An overlong prompt is cut here, before
    any generation: a 50,000-token prompt would otherwise ask the model for a 50,000² attention."""
    ids = []
    for prompt in prompts:
        text, add_special = render_prompt(tokenizer, prompt, chat_template)
        row = tokenizer(text, add_special_tokens=add_special)["input_ids"]
        ids.append(row[-max_prompt_tokens:] if max_prompt_tokens and len(row) > max_prompt_tokens else row)
    return ids


def _generation_kwargs(tokenizer, max_new_tokens: int) -> dict[str, Any]:
    """Greedy ``generate`` settings: sampling, when asked for, is done by ``SeededRowSampler`` as a logits processor.

    The model's own generation config may ask for sampling, top-k or a repetition penalty (many chat models ship
    one); all are switched off here so the samples come from the policy's distribution, tempered and top-p'd only.
    """
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return {"max_new_tokens": max_new_tokens, "pad_token_id": pad_id, "use_cache": True,
            "eos_token_id": tokenizer.eos_token_id, "do_sample": False, "temperature": None, "top_p": None,
            "top_k": None, "repetition_penalty": 1.0}


def _generate(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, k: int, kwargs: dict[str, Any],
              *, shared_prefill: bool = True):
    """``generate`` K continuations of each left-padded prompt row: (B, T) → (B·K, T + new), prompt i's rows adjacent.

    With ``shared_prefill``, the prompts minus their last column run through the model once, the KV cache is
    repeated K times (``Cache.batch_repeat_interleave``), and ``generate`` starts from the last prompt token: the
    prefill costs B·(T − 1) tokens instead of B·K·T, for the same computation per row. The position ids are those
    ``generate`` gives a left-padded row (cumulative attention mask), so the cache equals the one it would build.
    """
    ids, mask = input_ids.repeat_interleave(k, 0), attention_mask.repeat_interleave(k, 0)
    if not shared_prefill or k == 1 or input_ids.shape[1] < 2:
        return model.generate(input_ids=ids, attention_mask=mask, **kwargs)
    positions = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 1)
    with torch.no_grad():
        out = model(input_ids=input_ids[:, :-1], attention_mask=attention_mask[:, :-1],
                    position_ids=positions[:, :-1], use_cache=True, logits_to_keep=1)
    name = "cache" if "cache" in out else "past_key_values"  # transformers renamed it in 5.x
    out[name].batch_repeat_interleave(k)
    return model.generate(input_ids=ids, attention_mask=mask, **{name: out[name]}, **kwargs)


def _sample_hf(model, tokenizer, prompt_rows: list[list[int]], *, k: int, max_new_tokens: int, temperature: float,
               top_p: float, top_k: int, batch_size: int, seeds: list[list[int]], progress: bool,
               desc: str = "generate") -> list[list[str]]:
    """K responses per row of prompt ids, in row order; sample j of row i draws from its own stream ``seeds[i][j]``."""
    from tqdm.auto import tqdm

    kwargs = _generation_kwargs(tokenizer, max_new_tokens)
    device = next(model.parameters()).device
    # Longest prompts first, so a batch holds prompts of similar length (less padding); outputs are put back.
    order = sorted(range(len(prompt_rows)), key=lambda i: -len(prompt_rows[i]))
    per_call = max(1, batch_size // k)  # whole prompts per generate call, about batch_size sequences
    outputs: list[list[str]] = [[] for _ in prompt_rows]
    starts = range(0, len(prompt_rows), per_call)
    for start in tqdm(starts, desc=desc, unit="batch", disable=not progress):
        idx = order[start:start + per_call]
        input_ids, attention_mask = pad_rows([prompt_rows[i] for i in idx], kwargs["pad_token_id"], side="left")
        sampler = [SeededRowSampler([s for i in idx for s in seeds[i]], temperature=temperature, top_p=top_p,
                                    top_k=top_k, device=device)] if temperature > 0 else []
        out = _generate(model, input_ids.to(device), attention_mask.to(device), k,
                        {**kwargs, "logits_processor": sampler})
        texts = tokenizer.batch_decode(out[:, input_ids.shape[1]:], skip_special_tokens=True)  # response only
        for j, i in enumerate(idx):
            outputs[i] = texts[j * k:(j + 1) * k]
    return outputs


def sample(model, tokenizer, prompts: Sequence[Prompt], *, k: int = 1, max_new_tokens: int,
           temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0, batch_size: int = 64, seed: int = 0,
           seeds: Sequence[int] | None = None, progress: bool = True, backend: str = "hf",
           vllm_options: dict[str, Any] | None = None, desc: str = "generate",
           chat_template: bool = True, max_prompt_tokens: int | None = None) -> list[list[str]]:
    """K sampled responses for each prompt, in prompt order: ``out[i][j]`` is prompt i's j-th response.

    Args:
        model: a causal LM; for vLLM also a ``vllm.LLM`` or a local model path.
        tokenizer: its tokenizer; its padding side and the model's train/eval mode are restored afterwards.
        prompts: plain strings (sent as a user message when the tokenizer has a chat template) or chat messages.
        k: responses per prompt. max_new_tokens: generation length limit (an EOS ends a response earlier).
        temperature: 0 means greedy decoding (then the k responses are identical); top_p: nucleus sampling;
            top_k: sample among the top_k most likely tokens only (0: no top-k cut).
        batch_size: sequences per ``generate`` call (whole prompts: ``batch_size // k`` prompts × k, at least one).
        seed: prompt i is seeded ``derive_seed(seed, i)`` unless ``seeds`` is given; the global RNG is untouched.
        seeds: one seed per prompt (a round passes ``prefopt.seeds.prompt_seed(run seed, round, index)``); the same
            seed, prompt and model give the same K responses whatever else is in the call.
        progress: show a tqdm bar over batches, labelled ``desc``.
        backend: ``"hf"`` or ``"vllm"``.
        vllm_options: ``vllm.LLM`` arguments for the engine (``prefopt.rounds.vllm_engine.ENGINE_DEFAULTS``).
        chat_template: send plain-string prompts as a user turn when the tokenizer has a chat template; False
            tokenizes them as they are (the run decides per ``data.chat_template``, then passes False).
        max_prompt_tokens: keep only the last this-many prompt tokens (None: the whole prompt).

    Returns:
        ``len(prompts)`` lists of ``k`` strings, with the prompt and special tokens stripped.
    """
    if k < 1 or max_new_tokens < 1 or batch_size < 1:
        raise ValueError(f"k, max_new_tokens and batch_size must be >= 1, got {k}, {max_new_tokens}, {batch_size}")
    if temperature < 0 or not 0 < top_p <= 1 or top_k < 0:
        raise ValueError(f"need temperature >= 0, 0 < top_p <= 1 and top_k >= 0, got {temperature}, {top_p}, {top_k}")
    seeds = [derive_seed(seed, i) for i in range(len(prompts))] if seeds is None else [int(s) for s in seeds]
    if len(seeds) != len(prompts):
        raise ValueError(f"sample: {len(seeds)} seeds for {len(prompts)} prompts")
    if backend == "vllm":
        rows = _prompt_ids(tokenizer, prompts, chat_template, max_prompt_tokens)
        return vllm_sample(model, tokenizer, rows, seeds=seeds, k=k,
                           max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                           options=vllm_options, progress=progress)
    if backend != "hf":
        raise ValueError(f"unknown generation backend {backend!r}; valid: 'hf', 'vllm'")
    if not prompts:
        return []
    row_seeds = [[derive_seed(s, j) for j in range(k)] for s in seeds]  # sample j of prompt i: its own stream
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        with eval_mode(model), torch.random.fork_rng(devices=_cuda_devices(model)):
            return _sample_hf(model, tokenizer, _prompt_ids(tokenizer, prompts, chat_template, max_prompt_tokens), k=k,
                              max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                              batch_size=batch_size, seeds=row_seeds, progress=progress, desc=desc)
    finally:
        tokenizer.padding_side = padding_side


def sample_sharded(model, tokenizer, prompts: Sequence[Prompt], *, seeds: Sequence[int], k: int,
                   batch_size: int = 64, backend: str = "hf", progress: bool = True, **kwargs) -> list[list[str]]:
    """``sample`` split across the processes of ``accelerate launch``, the same on any number of them.

    Every process must call it with the same arguments; each gets every prompt's responses. The prompts are cut
    into batches as one process would cut them (longest first, ``batch_size // k`` prompts per ``generate`` call,
    ``prefopt.distributed.sorted_batches``) and each process generates whole batches. So not only the seeds but
    every batch, its padding and its floating-point results are the same on 1 or N processes: where a different
    padding width would change logits in their last bits and flip a near-tied token, the samples stay identical
    too. (vLLM batches internally: each process sends its whole share in one call.)

    Args:
        seeds: one per prompt (``prefopt.seeds.prompt_seed``); the rest as ``sample``.
    """
    if backend != "hf":
        return shard_call(lambda ps, ss: sample(model, tokenizer, ps, seeds=ss, k=k, batch_size=batch_size,
                                                backend=backend, progress=progress, **kwargs), prompts, seeds)
    desc = kwargs.pop("desc", "generate")
    lengths = [len(ids) for ids in _prompt_ids(tokenizer, prompts, kwargs.get("chat_template", True),
                                               kwargs.get("max_prompt_tokens"))]
    batches = sorted_batches(lengths, max(1, batch_size // k))
    run = lambda batch: sample(model, tokenizer, [prompts[i] for i in batch], seeds=[seeds[i] for i in batch], k=k,
                               batch_size=len(batch) * k, progress=False, **kwargs)  # one generate call
    out: list[list[str]] = [[] for _ in prompts]
    for batch, responses in zip(batches, shard_batches(run, batches, desc=desc if progress else None),
                                 strict=True):
        for i, response in zip(batch, responses, strict=True):
            out[i] = response
    return out


def _cuda_devices(model) -> list[int]:
    """The CUDA devices whose RNG ``fork_rng`` must save (none on CPU: it warns when asked to fork every GPU)."""
    return sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
