"""The preference-list record: reading, normalising and validating data before any model time is spent.

Every example becomes one record (see DESIGN.md)::

    {"prompt": str | messages, "responses": [str | messages, ...], "scores": [float, ...],
     "weight": float | None, "segments": [...] | None, "meta": {...}}

TRL's pairwise format (``prompt``/``chosen``/``rejected``, plain or conversational, with or without an explicit
prompt) is read as a list of two with scores [1, 0]. Bad rows raise ``PreferenceDataError`` naming the source,
the row and the field; lists with no preference (all scores equal) are dropped and counted, not raised.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trl.data_utils import extract_prompt

from prefopt.data.tokenize import is_messages


class PreferenceDataError(ValueError):
    """A row of preference data is malformed; the message names the source, row and field."""


@dataclass
class DataReport:
    """What validation kept and dropped, for the log and the run summary."""

    rows: int = 0
    kept: int = 0
    dropped_ties: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


def read_rows(spec: str, *, split: str = "train") -> list[dict[str, Any]]:
    """Rows of a local ``.jsonl``/``.json``/``.parquet`` file, or of a hub dataset id (``datasets.load_dataset``)."""
    path = Path(spec)
    if path.suffix == ".jsonl":
        if not path.exists():
            raise FileNotFoundError(f"data file not found: {spec}")
        rows = []
        for i, line in enumerate(path.read_text().splitlines()):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise PreferenceDataError(f"{spec} line {i + 1}: not valid JSON ({err.msg})") from None
        return rows
    if path.suffix == ".json":
        if not path.exists():
            raise FileNotFoundError(f"data file not found: {spec}")
        data = json.loads(path.read_text())
        return data if isinstance(data, list) else data[split]
    import datasets  # heavy: only when needed

    if path.suffix == ".parquet":
        if not path.exists():
            raise FileNotFoundError(f"data file not found: {spec}")
        return list(datasets.load_dataset("parquet", data_files=str(path), split="train"))
    return list(datasets.load_dataset(spec, split=split))


def _where(source: str, index: int, name: str) -> str:
    return f"{source} row {index}: field '{name}'"


def _check_text(value: Any, source: str, index: int, name: str, allow_empty: bool = False) -> None:
    if is_messages(value):
        if not value or any(not isinstance(m.get("content"), str) for m in value):
            raise PreferenceDataError(f"{_where(source, index, name)} has a message without text 'content'")
        if not allow_empty and not "".join(m["content"] for m in value).strip():
            raise PreferenceDataError(f"{_where(source, index, name)} is empty")
    elif isinstance(value, str):
        if not allow_empty and not value.strip():
            raise PreferenceDataError(f"{_where(source, index, name)} is empty")
    else:
        raise PreferenceDataError(f"{_where(source, index, name)} must be a string or a list of chat messages, "
                                  f"got {type(value).__name__}")


def _number(value: Any, source: str, index: int, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PreferenceDataError(f"{_where(source, index, name)} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise PreferenceDataError(f"{_where(source, index, name)} must be finite, got {value!r}")
    return float(value)


def normalize_row(row: dict[str, Any], *, index: int, source: str, allow_empty: bool = False) -> dict[str, Any]:
    """One row in any accepted format → a validated preference-list record (raises on bad input).

    ``allow_empty`` accepts empty responses: a policy sample that stops at once is a real (bad) response, while
    an empty response in a user's file is almost always a broken row.
    """
    if not isinstance(row, dict):
        raise PreferenceDataError(f"{source} row {index}: expected an object, got {type(row).__name__}")
    if "responses" in row:
        responses, scores = row["responses"], row.get("scores")
        if scores is None:
            raise PreferenceDataError(f"{_where(source, index, 'scores')} is missing (a list needs prompt, "
                                      "responses, scores)")
    elif "chosen" in row and "rejected" in row:
        if "prompt" not in row and is_messages(row["chosen"]):
            row = {**row, **extract_prompt(row)}
        responses, scores = [row["chosen"], row["rejected"]], [1.0, 0.0]
    else:
        present = ", ".join(sorted(row)) or "none"
        raise PreferenceDataError(f"{source} row {index}: expected fields prompt/responses/scores or "
                                  f"prompt/chosen/rejected; found: {present}")
    if "prompt" not in row:
        raise PreferenceDataError(f"{_where(source, index, 'prompt')} is missing")
    _check_text(row["prompt"], source, index, "prompt")
    if not isinstance(responses, list) or len(responses) < 2:
        n = len(responses) if isinstance(responses, list) else "not a list"
        raise PreferenceDataError(f"{_where(source, index, 'responses')} needs at least 2 responses, got {n}")
    if not isinstance(scores, list) or len(scores) != len(responses):
        raise PreferenceDataError(f"{_where(source, index, 'scores')} must be a list of {len(responses)} numbers, "
                                  f"one per response; got {scores!r}")
    for k, response in enumerate(responses):
        _check_text(response, source, index, f"responses[{k}]", allow_empty)
    record = {
        "prompt": row["prompt"],
        "responses": list(responses),
        "scores": [_number(s, source, index, f"scores[{k}]") for k, s in enumerate(scores)],
        "weight": None if row.get("weight") is None else _number(row["weight"], source, index, "weight"),
        "segments": row.get("segments"),
        "meta": dict(row.get("meta") or {}),
    }
    extra = {k: row[k] for k in ("score_chosen", "score_rejected") if k in row}
    record["meta"].update(extra)  # kept for transforms that need the raw scale (reward-augmented pairs)
    return record


def normalize_rows(rows: Iterable[dict[str, Any]], *, source: str, report: DataReport | None = None,
                   allow_empty: bool = False) -> tuple[list[dict[str, Any]], DataReport]:
    """Validate every row (the first bad one raises) and drop lists without a preference, counting them."""
    report = report or DataReport()
    records = []
    for index, row in enumerate(rows):
        report.rows += 1
        record = normalize_row(row, index=index, source=source, allow_empty=allow_empty)
        if max(record["scores"]) == min(record["scores"]):
            report.dropped_ties += 1
            continue
        records.append(record)
    report.kept = len(records)
    if not records:
        raise PreferenceDataError(f"{source}: no usable preference list ({report.rows} rows, "
                                  f"{report.dropped_ties} with all scores tied)")
    return records, report


def load_records(spec: str, *, split: str = "train") -> tuple[list[dict[str, Any]], DataReport]:
    """Read and validate a preference dataset (local file or hub id)."""
    return normalize_rows(read_rows(spec, split=split), source=spec)


def load_prompts(spec: str, *, split: str = "train", gold_field: str | None = None) -> list:
    """Prompts of a prompt-only dataset (rows with a ``prompt`` field, or plain JSON strings).

    With ``gold_field``, returns ``(prompt, gold)`` pairs instead: each row's reference response (DNO compares the
    policy's samples with a strong model's answer), validated like a response.
    """
    prompts = []
    for index, row in enumerate(read_rows(spec, split=split)):
        prompt = row if isinstance(row, str) else row.get("prompt") if isinstance(row, dict) else None
        if prompt is None:
            raise PreferenceDataError(f"{spec} row {index}: field 'prompt' is missing")
        _check_text(prompt, spec, index, "prompt")
        if gold_field is None:
            prompts.append(prompt)
            continue
        gold = row.get(gold_field) if isinstance(row, dict) else None
        if gold is None:
            raise PreferenceDataError(f"{spec} row {index}: field '{gold_field}' (data.gold_field) is missing")
        _check_text(gold, spec, index, gold_field)
        prompts.append((prompt, gold))
    return prompts
