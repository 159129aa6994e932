"""Sampling with one random stream per generated sequence, so a sample does not depend on its batch.

transformers' ``generate`` draws every row of a batch from the global RNG (``torch.multinomial`` on the whole
batch), so a prompt's samples change with whatever else shares its batch, and with how many batches ran before on
this process. ``SeededRowSampler`` is a logits processor that makes the draw itself: it applies temperature and
top-p exactly as ``generate(do_sample=True)`` would, then adds Gumbel noise from the row's own generator, and
``generate`` runs in greedy mode, whose argmax then *is* the sample (Gumbel-max trick: argmax_v (s_v + G_v) with
G_v = −log(−log U_v), U_v ~ U(0, 1) i.i.d., is distributed as softmax(s); Gumbel 1954, as used by Maddison et al.,
2014, "A* Sampling"). Row r's t-th token always consumes the t-th draw of row r's stream, so the sample is a
function of the row's seed and its logits alone, whatever else is in the batch or ran before. (The logits themselves
can differ in their last bits with the batch's padded width, which is why ``sample_sharded`` also keeps the batches
of one process on any number of processes.)

Cost: one ``torch.rand`` call per row per step (a Python loop over the batch, ~6 µs a call on CPU) plus a (B, V)
float64 noise tensor: about 10% of generation time on the tiny world (512 prompts x K=8, 12 tokens: 0.3 s of
2.9 s), where a forward is nearly free; on a real model the forward dominates. The noise is float64 so its tail is
not cut short at float32's resolution (a float32 U caps G at about 16.6, which would make tokens e^16.6 times less
likely than the best one unreachable).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import LogitsProcessor, TopKLogitsWarper, TopPLogitsWarper


class SeededRowSampler(LogitsProcessor):
    """Temperature, top-p, then per-row Gumbel noise: ``generate(do_sample=False, logits_processor=[this])``.

    Args:
        seeds: one seed per row of the batch ``generate`` will run, in row order.
        temperature: > 0 (greedy decoding needs no sampler).
        top_p: nucleus mass in (0, 1]; 1 keeps the whole vocabulary.
        top_k: keep the k most likely tokens only (0: no cut), applied before top-p as ``generate`` does.
        device: where the rows' scores live (each generator draws there).
    """

    def __init__(self, seeds: Sequence[int], *, temperature: float, top_p: float = 1.0, top_k: int = 0,
                 device: torch.device | str = "cpu"):
        if temperature <= 0:
            raise ValueError(f"SeededRowSampler needs temperature > 0, got {temperature}")
        self.temperature = temperature
        self.top_p = TopPLogitsWarper(top_p) if top_p < 1.0 else None
        self.top_k = TopKLogitsWarper(top_k) if top_k > 0 else None
        self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """(B, V) next-token scores → (B, V) float64 perturbed scores whose argmax is each row's sample."""
        if scores.shape[0] != len(self.generators):
            raise ValueError(f"SeededRowSampler was built for {len(self.generators)} rows, got {scores.shape[0]}")
        scores = scores / self.temperature  # generate(do_sample=True)'s order: temperature, top-k, top-p
        if self.top_k is not None:
            scores = self.top_k(input_ids, scores)
        if self.top_p is not None:
            scores = self.top_p(input_ids, scores)
        vocab = scores.shape[1]
        uniform = torch.stack([torch.rand(vocab, generator=g, device=scores.device, dtype=torch.float64)
                               for g in self.generators])  # (B, V)
        return scores.double() - torch.log(-torch.log(uniform))  # U = 0 gives −inf noise: that token is skipped
