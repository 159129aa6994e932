"""Per-token log-probabilities of response tokens, without materialising (N, T, V) logits.

Two paths, picked by size. Small: ``response_logits`` projects only the positions that predict a response token
(not the prompt, not the padding) through the LM head once: cheaper than a plain forward, which projects every
position. Large: TRL's fused LM head (``trl.trainer.utils.add_fused_lm_head``) projects in tiles, keeps only each
label's log-prob and recomputes the tiles in the backward, trading about a third more compute for never holding
the (M, V) logits. Losses that need a full-vocabulary quantity per token (RRPO's KL to the reference) always take
the first path. Both go through the model's own forward, so DDP/FSDP hooks and PEFT adapters apply.

Every function takes a collated batch, per-sequence rows or packed rows (each list's prompt once,
``prefopt.trainer.packing``): values come per prediction position, (R, L - 1), and ``per_response`` maps them to
(N, T). The ``feature_*`` functions are the batched scoring loops of everything outside the trainer that scores
lists the way the trainer does (reference precompute, implicit reward, CHES, LLM judges).
"""

from __future__ import annotations

import copy

import torch
from peft import PeftModel
from torch import Tensor
from tqdm.auto import tqdm
from trl.trainer.utils import add_fused_lm_head

from prefopt.data.tokenize import tokenize_list
from prefopt.tensors import eval_mode
from prefopt.trainer.collate import ListCollator
from prefopt.trainer.packing import adapt_collator, is_packed, packed_attention_mask, per_response


def _core(model):
    """The transformers model under a PEFT or accelerate wrapper (where the fused head is attached)."""
    model = getattr(model, "module", model)  # DDP
    return model.get_base_model() if isinstance(model, PeftModel) else model


def ensure_fused_head(model) -> None:
    """Attach TRL's fused LM head once; ``forward`` is unchanged unless called with ``fused_lm_head=True``."""
    core = _core(model)
    if not getattr(core, "_prefopt_fused_head", False):
        add_fused_lm_head(core)
        core._prefopt_fused_head = True


# Above this many response logits (M tokens × V), the fused head: 2^27 fp32 logits hold 512 MB, twice with the
# softmax kept for the backward.
DIRECT_LOGITS_MAX = 2**27


def frozen_copy(model):
    """A frozen, independent copy of ``model`` (a reference, an earlier iterate).

    ``copy.deepcopy`` alone is not enough once the fused head is attached: the patched ``forward`` keeps, in its
    closure, the *original* model's forward, so the copy's plain forward would run the live policy's weights. The
    copy gets its class's forward back (and the fused head again on first use).
    """
    clone = copy.deepcopy(model)
    core = _core(clone)
    if getattr(core, "_prefopt_fused_head", False):
        del core.forward
        core._prefopt_fused_head = False
    return clone.requires_grad_(False).eval()


def model_inputs(model, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """The forward's ``input_ids``/``attention_mask`` (and ``position_ids`` for a packed batch) on ``model``."""
    if not is_packed(batch):
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    return {"input_ids": batch["input_ids"], "attention_mask": packed_attention_mask(model, batch),
            "position_ids": batch["position_ids"]}


def response_token_logps(model, batch: dict[str, Tensor]) -> Tensor:
    """log π(y_t | x, y_<t) at every response token of a collated batch (per-sequence or packed).

    Returns:
        (R, L - 1) float32 log-probs aligned with ``completion_mask[:, 1:]`` (0 elsewhere); ``per_response`` maps
        them to (N, T).
    """
    input_ids, completion_mask = batch["input_ids"], batch["completion_mask"]
    vocab = _core(model).get_output_embeddings().weight.shape[0]
    if int(completion_mask[:, 1:].sum()) * vocab <= DIRECT_LOGITS_MAX:
        return logps_from_logits(response_logits(model, batch), input_ids, completion_mask)
    ensure_fused_head(model)
    labels = input_ids.masked_fill(completion_mask == 0, -100)
    out = model(**model_inputs(model, batch), labels=labels, fused_lm_head=True, use_cache=False)
    return out.log_probs[:, -(input_ids.shape[1] - 1):].float()  # prompt-learning PEFT prepends virtual tokens


def response_hidden_states(model, batch: dict[str, Tensor]) -> Tensor:
    """Last-layer hidden states (after the final norm: the LM head's input) at the positions that predict a
    response token.

    Returns:
        (M, D) in the model's dtype, M = number of response tokens, ordered as ``completion_mask[:, 1:].nonzero()``.
    """
    input_ids = batch["input_ids"]
    # Through the (possibly DDP/PEFT-wrapped) forward; the model itself projects only its last position.
    out = model(**model_inputs(model, batch), output_hidden_states=True, logits_to_keep=1, use_cache=False)
    hidden = out.hidden_states[-1][:, -input_ids.shape[1]:]  # after the final norm; drops PEFT virtual tokens
    return hidden[:, :-1][batch["completion_mask"][:, 1:].bool()]


def response_logits(model, batch: dict[str, Tensor]) -> Tensor:
    """Full-vocabulary logits at the positions that predict a response token.

    Returns:
        (M, V) float32 logits, M = number of response tokens, ordered as ``completion_mask[:, 1:].nonzero()``.
    """
    return _core(model).get_output_embeddings()(response_hidden_states(model, batch)).float()


def logps_from_logits(logits: Tensor, input_ids: Tensor, completion_mask: Tensor) -> Tensor:
    """(M, V) response logits (``response_logits``) → (N, L - 1) label log-probs, 0 off the response."""
    labels = input_ids[:, 1:][completion_mask[:, 1:].bool()]
    return per_token(logits.log_softmax(-1).gather(1, labels[:, None]).squeeze(1), completion_mask)


def per_token(values: Tensor, completion_mask: Tensor) -> Tensor:
    """(M, ...) values at the response tokens → (R, L - 1, ...), 0 off the response."""
    predicts = completion_mask[:, 1:].bool()
    out = torch.zeros((*predicts.shape, *values.shape[1:]), dtype=values.dtype, device=values.device)
    out[predicts] = values
    return out


def token_kl(ref_logits: Tensor, policy_logits: Tensor) -> Tensor:
    """KL(ref || policy) per row of (M, V) logits → (M,)."""
    ref_logp = ref_logits.log_softmax(-1)
    return (ref_logp.exp() * (ref_logp - policy_logits.log_softmax(-1))).sum(-1)


def list_features(tokenizer, prompts: list, responses: list[list]) -> list[dict]:
    """Collator features of each prompt's responses, tokenized once as the trainer does (``tokenize_list``)."""
    out = []
    for p, rs in zip(prompts, responses, strict=True):
        tok = tokenize_list(tokenizer, p, rs)
        out.append({"prompt_ids": tok.prompt_ids, "response_ids": tok.response_ids, "scores": [0.0] * len(rs)})
    return out


def _feature_batches(model, features: list[dict], collator: ListCollator, batch_size: int, desc: str | None):
    """Yield (chunk, collated batch on the model's device) in eval mode; the model's mode is restored."""
    device = next(model.parameters()).device
    collator = adapt_collator(collator, model)
    with eval_mode(model):
        for start in tqdm(range(0, len(features), batch_size), desc=desc, disable=desc is None):
            chunk = features[start:start + batch_size]
            yield chunk, {k: v.to(device) for k, v in collator(chunk).items()}


def _by_list(values: Tensor, batch: dict[str, Tensor], chunk: list[dict]) -> list[list]:
    grid = ListCollator.to_lists(values.cpu(), {k: batch[k].cpu() for k in ("mask", "list_index", "slot")})
    return [row[: len(f["response_ids"])] for row, f in zip(grid.tolist(), chunk, strict=True)]


@torch.no_grad()
def feature_logps(model, features: list[dict], collator: ListCollator, *, batch_size: int = 16,
                  average: bool = False, desc: str | None = None) -> list[list[float]]:
    """Summed (or per-token mean) response log-probs of tokenized lists, batched; the model's mode is restored.

    The collator's layout is used where the model can run it (``shared_prompt``: each prompt encoded once).
    """
    out: list[list[float]] = []
    for chunk, batch in _feature_batches(model, features, collator, batch_size, desc):
        mask = per_response(batch["completion_mask"][:, 1:], batch)  # (N, T)
        seq = (per_response(response_token_logps(model, batch), batch) * mask).sum(1)  # (N,)
        if average:
            seq = seq / mask.sum(1).clamp(min=1)
        out.extend(_by_list(seq, batch, chunk))
    return out


@torch.no_grad()
def feature_hidden_sums(model, features: list[dict], collator: ListCollator, *, batch_size: int = 16,
                        desc: str | None = None) -> list[list[Tensor]]:
    """Σ_t h_t of each response: the last-layer hidden states (after the final norm) at the positions that
    predict its tokens, summed; float32 on the CPU, (D,) per response. CHES's S(y) (``prefopt.ches.score``)."""
    out: list[list[Tensor]] = []
    for chunk, batch in _feature_batches(model, features, collator, batch_size, desc):
        hidden = response_hidden_states(model, batch).float()  # (M, D)
        grid = per_token(hidden, batch["completion_mask"])  # (R, L - 1, D)
        sums = per_response(grid, batch).sum(1).cpu()  # (N, D)
        lists = ListCollator.to_lists(sums, {k: batch[k].cpu() for k in ("mask", "list_index", "slot")})
        out.extend(list(lists[b, : len(f["response_ids"])]) for b, f in enumerate(chunk))
    return out


@torch.no_grad()
def feature_last_logits(model, features: list[dict], collator: ListCollator, *, batch_size: int = 16,
                        desc: str | None = None):
    """Yield, per tokenized list, the (K, V) float32 logits of the model's own head (scaling and soft-capping
    included) at the position that predicts each response's last token: the next-token distribution after the
    response minus its last token. A judge's verdict: the context is the response, the last token a placeholder.

    The prompt is encoded once per list where the model can take a block mask; only the needed positions are
    projected (``logits_to_keep`` with explicit indices).
    """
    for chunk, batch in _feature_batches(model, features, collator, batch_size, desc):
        index, valid = prediction_index(batch)  # (N, T)
        last = torch.where(valid, index, -1).max(1).values  # (N,) flat index into the (R, L - 1) grid
        width = batch["input_ids"].shape[1] - 1
        keep, column = torch.unique(last % width, return_inverse=True)
        # counted from the end, so tokens a prompt-tuning adapter prepends do not shift them
        logits = model(**model_inputs(model, batch), logits_to_keep=keep - width - 1, use_cache=False).logits
        # logits: (R, C, V)
        picked = logits[last // width, column].float().cpu()  # (N, V)
        owner, slot = batch["list_index"].cpu(), batch["slot"].cpu()
        for b in range(len(chunk)):
            rows = (owner == b).nonzero().squeeze(1)
            yield picked[rows[slot[rows].argsort()]]


def prediction_index(batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """(N, T) flat index into the (R, L − 1) grid of next-token predictions of each response's tokens, and where
    it is valid; for per-sequence rows, T = L − 1 and the response's tokens are where ``completion_mask`` is 1."""
    if is_packed(batch):
        return batch["token_index"], batch["response_mask"]
    valid = batch["completion_mask"][:, 1:].bool()
    rows, width = valid.shape
    return torch.arange(rows * width, device=valid.device).view(rows, width), valid


def sequence_logps(model, tokenizer, prompts: list, responses: list[list], *, batch_size: int = 16,
                   average: bool = False) -> list[list[float]]:
    """Summed (or per-token mean) response log-probs for each prompt's list of responses.

    Tokenization and the response boundary are the trainer's (``prefopt.data.tokenize.tokenize_list``), so scores
    computed here equal the log-probs the trainer optimises.
    """
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return feature_logps(model, list_features(tokenizer, prompts, responses), ListCollator(pad_token_id=pad),
                         batch_size=batch_size, average=average)
