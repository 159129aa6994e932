"""Packed rows: each list's prompt once, its K responses after it, under a block attention mask.

One list (prompt p of P tokens, responses r_1 … r_K) becomes one *group*::

    p_1 … p_{P-1} │ p_P r_1 │ p_P r_2 │ … │ p_P r_K
    shared prefix   block 1   block 2       block K

Each block starts with a copy of the prompt's last token, so every position predicts exactly one next token: the
row reads like an ordinary causal-LM row (labels shifted by one), and the direct response-position head and TRL's
fused head run on it unchanged; the copies cost K − 1 tokens. Token i attends to token j iff both are in the same
group, j ≤ i, and j is in the shared prefix or in i's own block. Position ids restart at 0 for each group and
continue from the prefix into every block, so block k's tokens sit at P−1, P, … exactly as in the per-sequence row
p + r_k: each response sees the same keys at the same positions as alone, and its log-probs equal the
per-sequence path's up to floating-point summation order.

A response repeated in a list (self-generated samples often are) reuses its first copy's block: it is computed
once, and its log-probs are bitwise those of the copy, so exact ties between scores stay exact.

Without ``padding_free`` a batch is one row per list (rows right-padded to the longest); with it, every group of
the batch goes into a single row with no padding. Without ``shared_prompt`` each response is its own group (the
per-sequence rows, packed). A list whose prompts differ after truncation (``keep_end`` cutting into the prompt)
is packed as per-sequence groups.

The mask is built on the model's device at forward time through transformers' own mask interface
(``masking_utils.ALL_MASK_ATTENTION_FUNCTIONS``) with a custom mask function, so each backend gets its native
form: a 4-D boolean mask for SDPA, a 4-D additive mask for eager attention, a ``BlockMask`` for flex_attention.
A 4-D mask (or a mapping of them, one per layer type) passes through every ``create_*_mask`` untouched.
flash-attention cannot take a block mask: there only padding-free per-sequence groups run (varlen attention from
the restarting position ids, transformers' packed-sequence path).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from peft import PeftModel
from torch import Tensor
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

MASKED_BACKENDS = ("sdpa", "eager", "flex_attention")  # take a custom 4-D mask / BlockMask
LAYER_TYPES = ("full_attention", "sliding_attention")  # layer types the mask function can express


def _core(model):
    model = getattr(model, "module", model)  # DDP
    return model.get_base_model() if isinstance(model, PeftModel) else model


def packing_support(model, *, shared_prompt: bool) -> str | None:
    """None when ``model`` can run packed rows, else the reason it cannot (for the one-line notice)."""
    wrapped = getattr(model, "module", model)
    if isinstance(wrapped, PeftModel) and wrapped.active_peft_config.is_prompt_learning:
        return "prompt-learning PEFT prepends virtual tokens to every row"
    config = _core(model).config
    impl = config._attn_implementation
    if impl in MASKED_BACKENDS:
        types = set(getattr(config.get_text_config(), "layer_types", None) or ["full_attention"])
        return None if types <= set(LAYER_TYPES) else f"layer types {sorted(types - set(LAYER_TYPES))}"
    if impl and impl.startswith("flash_attention") and not shared_prompt:
        return None  # padding-free per-sequence groups: varlen attention from the position ids
    return f"attention implementation {impl!r} cannot take a block mask"


_NOTICED: set[str] = set()


def adapt_collator(collator, *models):
    """``collator`` with ``shared_prompt``/``padding_free`` switched off where a model cannot run them.

    Falls back to per-sequence rows (padding-free ones where the backend allows) with a one-line notice.
    """
    for model in (m for m in models if m is not None):
        for shared, padding_free in ((collator.shared_prompt, collator.padding_free), (False, collator.padding_free),
                                     (False, False)):
            if not (shared or padding_free) or packing_support(model, shared_prompt=shared) is None:
                break
        if (shared, padding_free) != (collator.shared_prompt, collator.padding_free):
            reason = packing_support(model, shared_prompt=collator.shared_prompt)
            if reason not in _NOTICED:
                _NOTICED.add(reason)
                print(f"[prefopt] shared_prompt/padding_free: {reason}; using "
                      f"{'padding-free ' if padding_free else ''}per-sequence rows", file=sys.stderr)
            collator = replace(collator, shared_prompt=shared, padding_free=padding_free)
    return collator


class _Rows:
    """Token columns of the packed rows being built (python lists; padded into tensors at the end)."""

    KEYS = ("input_ids", "position_ids", "group_ids", "block_ids", "completion_mask", "segments")

    def __init__(self):
        self.rows: list[dict[str, list[int]]] = []
        self.targets: list[list[tuple[int, int]]] = []  # per response: (row, column) of each predicted token

    def new_row(self) -> None:
        self.rows.append({k: [] for k in self.KEYS})

    def add(self, ids: list[int], *, start: int, group: int, block: int, completion: list[int],
            segments: list[int]) -> None:
        row = self.rows[-1]
        if block >= 0:
            self.targets.append([(len(self.rows) - 1, len(row["input_ids"]) + i) for i, c in enumerate(completion)
                                 if c])
        row["input_ids"] += ids
        row["position_ids"] += range(start, start + len(ids))
        row["group_ids"] += [group] * len(ids)
        row["block_ids"] += [block] * len(ids)
        row["completion_mask"] += completion
        row["segments"] += segments


def _groups(prompts: list[list[int]], shared: bool) -> list[list[int]]:
    """Response indices sharing one prefix: all of them when their (truncated) prompts agree, else one each."""
    if shared and all(p == prompts[0] for p in prompts):
        return [list(range(len(prompts)))]
    return [[k] for k in range(len(prompts))]


def pack_lists(features: list[dict[str, Any]], cut: Callable[[list[int]], list[int]], *, shared_prompt: bool,
               padding_free: bool, pad_token_id: int, pad_to_multiple_of: int | None) -> dict[str, Tensor]:
    """Packed token columns of a batch of lists (see the module docstring for the layout).

    Args:
        features: ``ListCollator`` features; ``cut`` truncates one prompt+response sequence (the collator's rule).
    Returns:
        ``input_ids``, ``attention_mask`` (1 on real tokens), ``position_ids``, ``group_ids`` (−1 on padding),
        ``block_ids`` (the response index n of a block's tokens, −1 on prefixes and padding), ``completion_mask``
        (1 on predicted response tokens): (R, L). ``token_index`` (N, T): flat index into the (R, L − 1) grid of
        next-token predictions of each response's t-th token; ``response_mask`` (N, T); ``list_index``, ``slot``
        (N,); ``segments`` (R, L) when the features carry ``segment_ids``. Responses are numbered list-major.
    """
    rows, group, list_index, slot = _Rows(), 0, [], []
    for b, f in enumerate(features):
        if not rows.rows or not padding_free:
            rows.new_row()
        prompt = f["prompt_ids"]
        seqs = [cut(prompt + r) for r in f["response_ids"]]
        comps = [cut([0] * len(prompt) + [1] * len(r)) for r in f["response_ids"]]
        segs = ([cut([0] * len(prompt) + list(s)) for s in f["segment_ids"]] if "segment_ids" in f
                else [[0] * len(s) for s in seqs])
        cuts = [c.count(0) for c in comps]  # the truncated prompt is the leading run of zeros
        for members in _groups([s[:p] for s, p in zip(seqs, cuts, strict=True)], shared_prompt):
            p = cuts[members[0]]
            prefix = seqs[members[0]][: max(p - 1, 0)]
            rows.add(prefix, start=0, group=group, block=-1, completion=[0] * len(prefix), segments=[0] * len(prefix))
            first: dict[tuple, int] = {}  # a repeated response reuses its first copy's block
            for k in members:
                block = seqs[k][len(prefix):]  # the last prompt token (if any), then the response
                completion = comps[k][len(prefix):]
                completion[:1] = [0]  # nothing in the row predicts a block's first token
                key = (tuple(block), tuple(segs[k][len(prefix):]))
                if key in first:
                    rows.targets.append(rows.targets[first[key]])
                else:
                    first[key] = len(list_index)
                    rows.add(block, start=len(prefix), group=group, block=len(list_index), completion=completion,
                             segments=segs[k][len(prefix):])
                list_index.append(b)
                slot.append(k)
            group += 1
    return _tensors(rows, list_index, slot, pad_token_id, pad_to_multiple_of,
                    with_segments=any("segment_ids" in f for f in features))


def _tensors(rows: _Rows, list_index: list[int], slot: list[int], pad_token_id: int, multiple: int | None, *,
             with_segments: bool) -> dict[str, Tensor]:
    width = max(len(r["input_ids"]) for r in rows.rows)
    if multiple:
        width = -(-width // multiple) * multiple
    pads = {"input_ids": pad_token_id, "group_ids": -1, "block_ids": -1}
    out = {}
    for key in _Rows.KEYS:
        if key == "segments" and not with_segments:
            continue
        out[key] = torch.tensor([r[key] + [pads.get(key, 0)] * (width - len(r[key])) for r in rows.rows],
                                dtype=torch.long)
    out["attention_mask"] = (out["group_ids"] >= 0).long()
    longest = max((len(t) for t in rows.targets), default=0)
    flat = [[r * (width - 1) + c - 1 for r, c in t] for t in rows.targets]  # position c − 1 predicts column c
    index = torch.tensor([f + [0] * (longest - len(f)) for f in flat], dtype=torch.long).view(len(flat), longest)
    mask = torch.tensor([[True] * len(f) + [False] * (longest - len(f)) for f in flat], dtype=torch.bool)
    mask = mask.view(len(flat), longest)
    out.update(token_index=index, response_mask=mask, list_index=torch.tensor(list_index, dtype=torch.long),
               slot=torch.tensor(slot, dtype=torch.long))
    return out


def is_packed(batch: dict[str, Tensor]) -> bool:
    return "token_index" in batch


def per_response(values: Tensor, batch: dict[str, Tensor]) -> Tensor:
    """Per-prediction values (R, L − 1, ...) → per response (N, T, ...), 0 where a response has no t-th token.

    Identity for per-sequence rows (there R = N and T = L − 1).
    """
    if not is_packed(batch):
        return values
    out = values.flatten(0, 1)[batch["token_index"]]  # (N, T, ...)
    keep = batch["response_mask"].view(*batch["response_mask"].shape, *([1] * (values.dim() - 2)))
    return torch.where(keep, out, torch.zeros((), dtype=out.dtype, device=out.device))


def block_mask_function(group_ids: Tensor, block_ids: Tensor, position_ids: Tensor,
                        window: int | None = None) -> Callable:
    """transformers mask function (batch, head, q, kv) → bool for the packed layout; optional sliding window."""

    def inner(b, h, q, kv):
        same_group = group_ids[b, q] == group_ids[b, kv]
        visible = (block_ids[b, kv] == -1) | (block_ids[b, kv] == block_ids[b, q])
        allowed = same_group & visible & (kv <= q)
        if window is not None:
            allowed = allowed & (position_ids[b, q] - position_ids[b, kv] < window)
        return allowed

    return inner


def packed_attention_mask(model, batch: dict[str, Tensor]):
    """The ``attention_mask`` argument for a packed batch on ``model``'s attention backend.

    A 4-D mask (SDPA: bool, eager: additive, flex_attention: ``BlockMask``), or ``{layer type: mask}`` for a model
    mixing full and sliding-window layers; None under flash-attention (padding-free per-sequence groups only).
    """
    core = _core(model)
    impl = core.config._attn_implementation
    shared = batch["token_index"].shape[0] > int(batch["group_ids"].max()) + 1  # some group holds two blocks
    reason = packing_support(model, shared_prompt=shared)
    if reason is not None:
        raise ValueError(f"this batch is packed but the model cannot take it ({reason}); collate it with "
                         "ListCollator(shared_prompt=False, padding_free=False) or adapt the collator to the model "
                         "(prefopt.trainer.packing.adapt_collator)")
    if impl not in MASKED_BACKENDS:
        return None
    text = core.config.get_text_config()
    window = getattr(text, "sliding_window", None)
    types = list(dict.fromkeys(getattr(text, "layer_types", None)
                               or ["sliding_attention" if window else "full_attention"]))
    rows, width = batch["input_ids"].shape
    dtype = core.get_input_embeddings().weight.dtype
    masks = {t: ALL_MASK_ATTENTION_FUNCTIONS[impl](
        batch_size=rows, q_length=width, kv_length=width, mask_function=block_mask_function(
            batch["group_ids"], batch["block_ids"], batch["position_ids"],
            window if t == "sliding_attention" else None),
        attention_mask=None, allow_is_causal_skip=False, dtype=dtype, config=core.config,
        device=batch["input_ids"].device) for t in types}
    return masks[types[0]] if len(types) == 1 else masks
