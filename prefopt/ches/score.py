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
from prefopt.tensors import eval_mode, pad_rows


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


def _backbone(model):
    """The transformer without its LM head, whose ``last_hidden_state`` is the LM head's input (post final norm).

    ``get_decoder`` covers transformers' causal LMs and PEFT wrappers (the LoRA layers are injected in place, so the
    adapters stay active); ``base_model_prefix`` is the older spelling of the same attribute.
    """
    if isinstance(model, (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)):
        model = model.module
    get_decoder = getattr(model, "get_decoder", None)
    backbone = get_decoder() if callable(get_decoder) else None
    if backbone is None:
        backbone = getattr(model, getattr(model, "base_model_prefix", ""), None) or model
    return backbone


def _input_device(model) -> torch.device:
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if embeddings is not None:
        return embeddings.weight.device
    return next(model.parameters()).device


def _pad_id(tokenizer) -> int:
    for token_id in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    return 0  # right padding under an attention mask never reaches a real position, so any id will do


def _collate(pairs: Sequence[PairTokens], pad_id: int) -> tuple[Tensor, Tensor, Tensor]:
    """Right-padded ids and mask for [c0, r0, c1, r1, ...] and the response-position weights (one per response).

    The weight on sequence position t is 1 where t predicts a response token: t = P-1 … P+|y|-2 for a prompt of P
    tokens (the state after the last response token is excluded, as in the paper's sum over k = 1..|y|).
    """
    seqs, spans = [], []
    for pair in pairs:
        p = len(pair.prompt_ids)
        for response in (pair.chosen_ids, pair.rejected_ids):
            seqs.append(pair.prompt_ids + response)
            spans.append((p - 1, p - 1 + len(response)))
    ids, mask = pad_rows(seqs, pad_id)                                      # (2b, T), (2b, T)
    positions = torch.zeros(ids.shape, dtype=torch.float32)                 # (2b, T)
    for row, (start, stop) in enumerate(spans):
        positions[row, start:stop] = 1.0
    return ids, mask, positions


def response_embedding_sums(model, pairs: Sequence[PairTokens], *, pad_id: int,
                            batch_size: int = 16) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """S(y+), S(y−) and the response lengths of every pair, in float32 on the CPU.

    Returns:
        (s_pos (N, D), s_neg (N, D), len_pos (N,), len_neg (N,)).
    Pairs are scored longest first (less padding per batch, and an out-of-memory error shows up at once) and
    returned in the caller's order. Both responses of a pair go through the same forward.
    """
    if batch_size < 1:
        raise ValueError(f"ches_scores: batch_size must be >= 1, got {batch_size}")
    backbone, device = _backbone(model), _input_device(model)
    order = sorted(range(len(pairs)), key=lambda i: -pairs[i].length)
    sums: list[Tensor] = [torch.empty(0)] * len(pairs)
    with eval_mode(model), torch.no_grad():
        for start in range(0, len(order), batch_size):  # the progress bar is ches_scores', over its batches
            chunk = order[start : start + batch_size]
            ids, mask, weights = _collate([pairs[i] for i in chunk], pad_id)
            out = backbone(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False)
            if getattr(out, "last_hidden_state", None) is None:
                raise TypeError(f"ches_scores: cannot find the transformer under {type(model).__name__} (its "
                                "get_decoder() / base_model_prefix returns no last_hidden_state)")
            hidden = out.last_hidden_state.float()                                 # (2b, T, D), fp32 whatever dtype
            s = torch.einsum("bt,btd->bd", weights.to(hidden.device), hidden).cpu()  # (2b, D)
            for j, i in enumerate(chunk):
                sums[i] = s[2 * j : 2 * j + 2]                                    # (2, D): chosen, rejected
    stacked = torch.stack(sums) if sums else torch.zeros(0, 2, 0)                 # (N, 2, D)
    len_pos = torch.tensor([len(p.chosen_ids) for p in pairs], dtype=torch.float32)
    len_neg = torch.tensor([len(p.rejected_ids) for p in pairs], dtype=torch.float32)
    return stacked[:, 0], stacked[:, 1], len_pos, len_neg


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
        model: a transformers causal LM (or a PEFT wrapper of one), any dtype and device; its LM head is not run.
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
