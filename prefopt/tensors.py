"""Two tensor helpers every model-facing stage shares: padding token rows, and eval mode for a forward.

The bottom layer of the package: it imports nothing from prefopt, so anything may import it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor


def pad_rows(rows: Sequence[Sequence[int]], value: int, *, side: str = "right",
             multiple_of: int | None = None) -> tuple[Tensor, Tensor]:
    """Pad ragged rows of integers into one (B, T) long tensor and its (B, T) mask.

    Args:
        rows: B rows of ints (token ids, labels, 0/1 flags); a row may be empty.
        value: the fill for padded positions.
        side: ``"right"`` puts each row at the start (training, scoring); ``"left"`` puts each row at the end,
            so every row's last token is in the last column (generation, reading a verdict at position -1).
        multiple_of: round the width T up to a multiple of this (tensor-core friendly shapes); None: T is the
            longest row.

    Returns:
        ``(ids, mask)``: ``ids`` (B, T) long, the rows with ``value`` elsewhere; ``mask`` (B, T) long, 1 on the
        rows' own positions and 0 on padding (the attention mask when the rows are token ids).
    """
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    width = max((len(r) for r in rows), default=0)
    if multiple_of:
        width = -(-width // multiple_of) * multiple_of
    ids = torch.full((len(rows), width), value, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(0, len(row)) if side == "right" else slice(width - len(row), width)
        ids[i, span] = torch.as_tensor(list(row), dtype=torch.long)
        mask[i, span] = 1
    return ids, mask


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Put ``model`` in eval mode (dropout off) for the block; its train/eval mode is restored afterwards.

    Gradients are the caller's choice (``torch.no_grad()`` beside it where no backward follows).
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
