"""Records → tokenized features for the collator, with TRL's truncation rules and counted drops."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from prefopt.data.tokenize import TokenizedList, tokenize_list


@dataclass
class TokenizeReport:
    rows: int = 0
    kept: int = 0
    dropped_prompt_too_long: int = 0
    truncated_prompts: int = 0
    truncated_rows: int = 0
    dropped_rows: list[int] = field(default_factory=list)


def tokenize_records(records: list[dict[str, Any]], tokenizer, *, max_length: int | None = None,
                     max_prompt_length: int | None = None, truncation_mode: str = "keep_start",
                     segment_fn: Callable[[Any, TokenizedList, dict], list[list[int]]] | None = None,
                     progress: bool = False) -> tuple[list[dict[str, Any]], TokenizeReport]:
    """Tokenize each list once; drop (and count) rows whose prompt alone fills ``max_length``.

    Args:
        max_length: cap on prompt+response tokens per sequence (the collator truncates, as TRL does).
        max_prompt_length: keep only the last this-many prompt tokens (counted as truncated prompts).
        segment_fn: ``(tokenizer, tokenized, record) -> segment ids per response token`` for losses that need
            refined segments (RRPO).
    """
    report = TokenizeReport(rows=len(records))
    features = []
    for index, record in enumerate(tqdm(records, desc="tokenizing", disable=not progress)):
        tok = tokenize_list(tokenizer, record["prompt"], record["responses"])
        if max_prompt_length is not None and len(tok.prompt_ids) > max_prompt_length:
            tok.prompt_ids = tok.prompt_ids[-max_prompt_length:]
            report.truncated_prompts += 1
        if max_length is not None and truncation_mode == "keep_start" and len(tok.prompt_ids) >= max_length:
            report.dropped_prompt_too_long += 1  # no response token would survive truncation
            report.dropped_rows.append(index)
            continue
        if max_length is not None and any(len(tok.prompt_ids) + len(r) > max_length for r in tok.response_ids):
            report.truncated_rows += 1
        feature = {"prompt_ids": tok.prompt_ids, "response_ids": tok.response_ids,
                   "scores": [float(s) for s in record["scores"]]}
        if record.get("weight") is not None:
            feature["weight"] = float(record["weight"])
        if segment_fn is not None:
            feature["segment_ids"] = segment_fn(tokenizer, tok, record)
        features.append(feature)
    report.kept = len(features)
    with_weight = sum("weight" in f for f in features)
    if 0 < with_weight < len(features):
        missing = next(i for i, f in enumerate(features) if "weight" not in f)
        raise ValueError(f"kept row {missing}: field 'weight' is missing while {with_weight} other rows have one; "
                         "give a weight on every row or on none")
    return features, report
