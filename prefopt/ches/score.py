"""CHES scores: how alike a preference pair looks to the model, from its last-layer hidden states.

Paper:
    Razin, Malladi, Bhaskar, Chen, Arora, Hanin (2024), "Unintentional Unalignment: Likelihood Displacement in
    Direct Preference Optimization", arXiv 2410.08847, Definition 2 (CHES) and Section 6 (length-normalised CHES,
    used to filter data). Reference implementation: github.com/princeton-nlp/unintentional-unalignment, ches/ches.py.

Formula:
    S(y)  = Σ_{k=1}^{|y|} h_{x, y<k}                    (sum of hidden states that predict the response tokens)
    CHES(x, y+, y−)    = ⟨S(y+), S(y−)⟩ − ‖S(y+)‖²
    LN-CHES(x, y+, y−) = ⟨S(y+)/|y+|, S(y−)/|y−|⟩ − ‖S(y+)/|y+|‖²

Where:
    h_{x, y<k}  = the last-layer hidden state (after the final norm: the input of the LM head) at the position that
                  predicts the k-th response token; k = 1 is the last prompt position and the state after the last
                  response token is not used.
    x, y+, y−   = prompt, chosen, rejected, tokenised by ``prefopt.data.tokenize.tokenize_list`` so the prompt/response
                  boundary (and the EOS appended to plain-text responses) is exactly what the DPO trainer sees.
    |y|         = number of response tokens.

A high score means the model embeds the rejected response like the chosen one; DPO on such pairs tends to lower the
chosen response's likelihood too ("likelihood displacement"). Usage::

    from prefopt.ches import ches_scores, score_records
    s = ches_scores(model, tokenizer, prompts, chosen, rejected)     # (N,) float32, LN-CHES by default
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from prefopt.data.tokenize import tokenize_list
from prefopt.distributed import shard_batches, sorted_batches
from prefopt.trainer import ListCollator, feature_hidden_sums


@dataclass
class PairTokens:
    """One tokenised pair: the shared prompt and the two responses (chosen first)."""

    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]

    @property
    def length(self) -> int:
        """Length of the longer of the two full sequences (what the batch pads to)."""
        return len(self.prompt_ids) + max(len(self.chosen_ids), len(self.rejected_ids))


def tokenize_pairs(tokenizer, prompts: Sequence, chosen: Sequence, rejected: Sequence) -> list[PairTokens]:
    """Tokenise N pairs the way the DPO trainer does (chat template for messages, EOS after plain responses)."""
    if not len(prompts) == len(chosen) == len(rejected):
        raise ValueError(f"ches_scores: prompts, chosen and rejected must have the same length, got "
                         f"{len(prompts)}, {len(chosen)}, {len(rejected)}")
    pairs = []
    for i, (prompt, pos, neg) in enumerate(zip(prompts, chosen, rejected, strict=True)):
        tok = tokenize_list(tokenizer, prompt, [pos, neg])
        # k = 1 needs a prompt position to predict the first response token from; a template whose lone prompt
        # shares no token with the full rendering leaves none.
        if not tok.prompt_ids:
            raise ValueError(f"ches_scores: pair {i} has no prompt token before the response (the prompt's rendering "
                             "shares no prefix with prompt+response); CHES needs the last prompt position")
        if not tok.response_ids[0] or not tok.response_ids[1]:
            raise ValueError(f"ches_scores: pair {i} has an empty response after tokenization")
        pairs.append(PairTokens(tok.prompt_ids, tok.response_ids[0], tok.response_ids[1]))
    return pairs


def _pad_id(tokenizer) -> int:
    for token_id in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    return 0  # padding under an attention mask never reaches a real position, so any id will do


def response_embedding_sums(model, pairs: Sequence[PairTokens], *, pad_id: int,
                            batch_size: int = 16) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """S(y+), S(y−) and the response lengths of every pair, in float32 on the CPU.

    Returns:
        (s_pos (N, D), s_neg (N, D), len_pos (N,), len_neg (N,)).
    The hidden states come from the trainer's own forward (``prefopt.trainer.feature_hidden_sums``): the prompt
    encoded once with both responses after it where the model can take a block mask, and the positions that
    predict each response token exactly those of the log-probs DPO optimises. Pairs are scored longest first (less
    padding per batch, and an out-of-memory error shows up at once) and returned in the caller's order.
    """
    if batch_size < 1:
        raise ValueError(f"ches_scores: batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(pairs)), key=lambda i: -pairs[i].length)
    features = [{"prompt_ids": pairs[i].prompt_ids, "response_ids": [pairs[i].chosen_ids, pairs[i].rejected_ids],
                 "scores": [1.0, 0.0]} for i in order]
    sums = feature_hidden_sums(model, features, ListCollator(pad_token_id=pad_id), batch_size=batch_size)
    stacked = [torch.empty(0)] * len(pairs)
    for i, (s_pos, s_neg) in zip(order, sums, strict=True):
        stacked[i] = torch.stack([s_pos, s_neg])                                  # (2, D): chosen, rejected
    out = torch.stack(stacked) if stacked else torch.zeros(0, 2, 0)               # (N, 2, D)
    len_pos = torch.tensor([len(p.chosen_ids) for p in pairs], dtype=torch.float32)
    len_neg = torch.tensor([len(p.rejected_ids) for p in pairs], dtype=torch.float32)
    return out[:, 0], out[:, 1], len_pos, len_neg


def ches_from_sums(s_pos: Tensor, s_neg: Tensor, len_pos: Tensor, len_neg: Tensor, *,
                   length_normalize: bool = True) -> Tensor:
    """CHES (or LN-CHES) from the summed hidden states: (N, D), (N, D), (N,), (N,) -> (N,) float32.

    Computed as ⟨S+, S− − S+⟩ in float64: equal to ⟨S+, S−⟩ − ‖S+‖², without subtracting two large, nearly equal
    numbers when the responses are alike (the pairs this score exists to find).
    """
    s_pos, s_neg = s_pos.double(), s_neg.double()
    if length_normalize:
        s_pos = s_pos / len_pos.double().unsqueeze(-1)
        s_neg = s_neg / len_neg.double().unsqueeze(-1)
    return (s_pos * (s_neg - s_pos)).sum(-1).float()                              # (N,)


def ches_scores(model, tokenizer, prompts: Sequence, chosen: Sequence, rejected: Sequence, *,
                length_normalize: bool = True, batch_size: int = 16) -> Tensor:
    """CHES score of each (prompt, chosen, rejected) pair; higher means more likely to cause likelihood displacement.

    Args:
        model: a transformers causal LM (or a PEFT wrapper of one), any dtype and device; its LM head runs at one
            position per row only.
        tokenizer: the model's tokenizer (its chat template renders message lists).
        prompts: N prompts, plain strings or chat messages ending before the assistant turn.
        chosen: N preferred responses (strings, or assistant turns as messages).
        rejected: N dispreferred responses.
        length_normalize: LN-CHES (each sum divided by its response length); the paper filters with it.
        batch_size: pairs per forward (each pair contributes two sequences).

    Returns:
        (N,) float32 on the CPU. Under ``accelerate launch`` every process must call this: each scores a share.
    """
    pairs = tokenize_pairs(tokenizer, prompts, chosen, rejected)
    if batch_size < 1:
        raise ValueError(f"ches_scores: batch_size must be >= 1, got {batch_size}")

    def run(batch: list[int]) -> list[float]:  # one forward, as response_embedding_sums would batch these pairs
        sums = response_embedding_sums(model, [pairs[i] for i in batch], pad_id=_pad_id(tokenizer),
                                       batch_size=batch_size)
        return ches_from_sums(*sums, length_normalize=length_normalize).tolist()

    # Under accelerate launch each process scores whole batches of the one-process plan (longest first), so every
    # score is bit-for-bit the one a single process computes; float32 survives the trip through Python floats.
    batches = sorted_batches([p.length for p in pairs], batch_size)
    scores = torch.zeros(len(pairs), dtype=torch.float32)                         # (N,)
    for batch, values in zip(batches, shard_batches(run, batches, desc="CHES"), strict=True):
        scores[batch] = torch.tensor(values, dtype=torch.float32)
    return scores


def record_pair(record: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(prompt, chosen, rejected) of a preference record: best vs worst by score (first max, last min, as DPO)."""
    scores = record["scores"]
    best = max(range(len(scores)), key=lambda k: (scores[k], -k))
    worst = min(range(len(scores)), key=lambda k: (scores[k], -k))
    if scores[best] == scores[worst]:
        raise ValueError("ches: a record whose scores are all equal has no chosen/rejected pair")
    return record["prompt"], record["responses"][best], record["responses"][worst]


def score_records(records: Sequence[dict[str, Any]], model, tokenizer, *, length_normalize: bool = True,
                  batch_size: int = 16) -> Tensor:
    """CHES of every preference record (pairs, or lists scored best-vs-worst): (N,) float32."""
    triples = [record_pair(r) for r in records]
    prompts, chosen, rejected = (list(t) for t in zip(*triples, strict=True)) if triples else ([], [], [])
    return ches_scores(model, tokenizer, prompts, chosen, rejected, length_normalize=length_normalize,
                       batch_size=batch_size)
