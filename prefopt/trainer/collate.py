"""Batch B preference lists of up to K responses for one forward.

Two layouts. Packed (``shared_prompt`` and/or ``padding_free``, see ``prefopt.trainer.packing``): each list's
prompt once and its responses after it under a block mask, one row per list or one row per batch. Per-sequence
(both off; the reference path of the parity tests): one padded (N, L) row per response, N = number of responses,
ordered slot-major, so a batch of pairs is [all chosen..., all rejected...] like TRL's DPO collator. Either way
only responses that exist are forwarded (a ragged list costs nothing for its missing slots), and every
prompt+response sequence is truncated the way TRL does (``keep_start`` or ``keep_end``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from prefopt.tensors import pad_rows
from prefopt.trainer.packing import pack_lists


@dataclass
class ListCollator:
    """Collate tokenized preference lists.

    A feature is ``{"prompt_ids": [int], "response_ids": [[int]] * K, "scores": [float] * K}`` with optional
    ``"weight": float``, ``"segment_ids": [[int]] * K`` (aligned with response_ids) and ``"ref_logps": [float] * K``.
    ``shared_prompt``: encode each list's prompt once (packed rows); ``padding_free``: the whole batch in one row.
    """

    pad_token_id: int
    max_length: int | None = None
    truncation_mode: str = "keep_start"
    pad_to_multiple_of: int | None = None
    shared_prompt: bool = True
    padding_free: bool = False

    def _cut(self, seq: list[int]) -> list[int]:
        if self.max_length is None or len(seq) <= self.max_length:
            return seq
        if self.truncation_mode == "keep_start":
            return seq[: self.max_length]
        if self.truncation_mode == "keep_end":
            return seq[-self.max_length:]
        raise ValueError(f"truncation_mode must be 'keep_start' or 'keep_end', got {self.truncation_mode!r}")

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Tensor]:
        if self.shared_prompt or self.padding_free:
            batch = pack_lists(features, self._cut, shared_prompt=self.shared_prompt, padding_free=self.padding_free,
                               pad_token_id=self.pad_token_id, pad_to_multiple_of=self.pad_to_multiple_of)
        else:
            batch = self._per_sequence(features)
        k_max = max(len(f["response_ids"]) for f in features)
        mask = torch.zeros(len(features), k_max, dtype=torch.bool)
        mask[batch["list_index"], batch["slot"]] = True
        batch["mask"] = mask
        batch["scores"] = self._grid(features, "scores")
        if "ref_logps" in features[0]:
            batch["ref_logps"] = self._grid(features, "ref_logps")
        if features[0].get("weight") is not None:
            batch["weight"] = torch.tensor([f["weight"] for f in features], dtype=torch.float32)
        return batch

    def _per_sequence(self, features: list[dict[str, Any]]) -> dict[str, Tensor]:
        k_max = max(len(f["response_ids"]) for f in features)
        ids, completion, segs, list_index, slot = [], [], [], [], []
        for k in range(k_max):  # slot-major: [slot 0 of every list, slot 1 of every list, ...]
            for b, f in enumerate(features):
                if k >= len(f["response_ids"]):
                    continue
                prompt, response = f["prompt_ids"], f["response_ids"][k]
                ids.append(self._cut(prompt + response))
                completion.append(self._cut([0] * len(prompt) + [1] * len(response)))
                if "segment_ids" in f:
                    segs.append(self._cut([0] * len(prompt) + list(f["segment_ids"][k])))
                list_index.append(b)
                slot.append(k)
        input_ids, attention_mask = pad_rows(ids, self.pad_token_id, multiple_of=self.pad_to_multiple_of)
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "completion_mask": pad_rows(completion, 0, multiple_of=self.pad_to_multiple_of)[0],
            "list_index": torch.tensor(list_index, dtype=torch.long),
            "slot": torch.tensor(slot, dtype=torch.long),
        }
        if segs:
            batch["segments"] = pad_rows(segs, 0, multiple_of=self.pad_to_multiple_of)[0]
        return batch

    @staticmethod
    def _grid(features: list[dict[str, Any]], key: str) -> Tensor:
        k_max = max(len(f["response_ids"]) for f in features)
        out = torch.zeros(len(features), k_max, dtype=torch.float32)
        for b, f in enumerate(features):
            out[b, : len(f[key])] = torch.tensor(f[key], dtype=torch.float32)
        return out

    @staticmethod
    def to_lists(values: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """Scatter per-row values (N, ...) back to (B, K, ...), zeros where a list has no such response."""
        b, k = batch["mask"].shape
        out = values.new_zeros((b, k, *values.shape[1:]))
        out[batch["list_index"].to(values.device), batch["slot"].to(values.device)] = values
        return out
