"""Batch B preference lists of up to K responses into one padded (N, L) forward, N = number of responses.

Only responses that exist are forwarded (a ragged list costs nothing for its missing slots). Rows are ordered
slot-major, so a batch of pairs is [all chosen..., all rejected...] like TRL's DPO collator, and sequences are
truncated per row the way TRL does (``keep_start`` or ``keep_end`` of prompt+response).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


def _pad(rows: list[list[int]], value: int, multiple: int | None) -> Tensor:
    width = max(len(r) for r in rows)
    if multiple:
        width = -(-width // multiple) * multiple
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out


@dataclass
class ListCollator:
    """Collate tokenized preference lists.

    A feature is ``{"prompt_ids": [int], "response_ids": [[int]] * K, "scores": [float] * K}`` with optional
    ``"weight": float``, ``"segment_ids": [[int]] * K`` (aligned with response_ids) and ``"ref_logps": [float] * K``.
    """

    pad_token_id: int
    max_length: int | None = None
    truncation_mode: str = "keep_start"
    pad_to_multiple_of: int | None = None

    def _cut(self, seq: list[int]) -> list[int]:
        if self.max_length is None or len(seq) <= self.max_length:
            return seq
        if self.truncation_mode == "keep_start":
            return seq[: self.max_length]
        if self.truncation_mode == "keep_end":
            return seq[-self.max_length:]
        raise ValueError(f"truncation_mode must be 'keep_start' or 'keep_end', got {self.truncation_mode!r}")

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Tensor]:
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
        batch = {
            "input_ids": _pad(ids, self.pad_token_id, self.pad_to_multiple_of),
            "attention_mask": _pad([[1] * len(r) for r in ids], 0, self.pad_to_multiple_of),
            "completion_mask": _pad(completion, 0, self.pad_to_multiple_of),
            "list_index": torch.tensor(list_index, dtype=torch.long),
            "slot": torch.tensor(slot, dtype=torch.long),
        }
        mask = torch.zeros(len(features), k_max, dtype=torch.bool)
        mask[batch["list_index"], batch["slot"]] = True
        batch["mask"] = mask
        batch["scores"] = self._grid(features, "scores")
        if "ref_logps" in features[0]:
            batch["ref_logps"] = self._grid(features, "ref_logps")
        if features[0].get("weight") is not None:
            batch["weight"] = torch.tensor([f["weight"] for f in features], dtype=torch.float32)
        if segs:
            batch["segments"] = _pad(segs, 0, self.pad_to_multiple_of)
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
