"""The preference-list record: reading, normalising and validating data before any model time is spent.

Every example becomes one record (see DESIGN.md)::

    {"prompt": str | messages, "responses": [str | messages, ...], "scores": [float, ...],
     "weight": float | None, "segments": [...] | None, "meta": {...}}

TRL's pairwise format (``prompt``/``chosen``/``rejected``, plain or conversational, with or without an explicit
prompt) is read as a list of two with scores [1, 0]. Bad rows raise ``PreferenceDataError`` naming the source,
the line (1-based, of the user's file) and the user's own field name (``chosen``, not ``responses[0]``); lists
with no preference (all scores equal, or all responses identical) are dropped and counted, not raised.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trl.data_utils import is_conversational, maybe_extract_prompt

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
    format: str | None = None  # the schema read (prefopt.data.schemas), for a user's file
    sources: dict[str, int] = field(default_factory=dict)  # a mixture: lists taken from each source

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n


def _decode(path: Path, spec: str) -> str:
    """The file's text; a missing file or bytes that are not UTF-8 are a ``PreferenceDataError`` naming the line."""
    if not path.exists():
        raise FileNotFoundError(f"data file not found: {spec}")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise PreferenceDataError(f"{spec} line {line}: not UTF-8 text (byte {raw[err.start]:#04x}); save the file "
                                  "as UTF-8") from None


def read_located_rows(spec: str, *, split: str = "train") -> tuple[list[Any], list[str]]:
    """Rows of a local ``.jsonl``/``.json``/``.parquet`` file or a hub dataset id, each with where it came from:
    ``"line 7"`` (1-based line of a ``.jsonl`` file, blank lines counted) or ``"row 7"`` (1-based row)."""
    path = Path(spec)
    if path.suffix == ".jsonl":
        rows, where = [], []
        for i, line in enumerate(_decode(path, spec).splitlines()):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise PreferenceDataError(f"{spec} line {i + 1}: not valid JSON ({err.msg})") from None
            where.append(f"line {i + 1}")
        return rows, where
    if path.suffix == ".json":
        try:
            data = json.loads(_decode(path, spec))
        except json.JSONDecodeError as err:
            raise PreferenceDataError(f"{spec} line {err.lineno}: not valid JSON ({err.msg})") from None
        rows = data if isinstance(data, list) else data.get(split) if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise PreferenceDataError(f"{spec}: expected a JSON list of rows (or an object with a {split!r} list)")
        return rows, [f"row {i + 1}" for i in range(len(rows))]
    import datasets  # heavy: only when needed

    if path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists()):
        return _from_disk(path, spec, split)
    if path.suffix == ".parquet":
        if not path.exists():
            raise FileNotFoundError(f"data file not found: {spec}")
        rows = list(datasets.load_dataset("parquet", data_files=str(path), split="train"))
    else:
        rows = list(datasets.load_dataset(spec, split=split))
    return rows, [f"row {i + 1}" for i in range(len(rows))]


def _from_disk(path: Path, spec: str, split: str) -> tuple[list[Any], list[str]]:
    """Rows of a ``Dataset.save_to_disk`` folder, or of ``split`` of a ``DatasetDict.save_to_disk`` folder."""
    import datasets

    data = datasets.load_from_disk(str(path))
    if isinstance(data, datasets.DatasetDict):
        if split not in data:
            raise PreferenceDataError(f"{spec}: split {split!r} not in this saved DatasetDict (splits: "
                                      f"{', '.join(data)}); set data.split")
        data = data[split]
    rows = list(data)
    return rows, [f"row {i + 1}" for i in range(len(rows))]


def read_rows(spec: str, *, split: str = "train") -> list[dict[str, Any]]:
    """Rows of a local ``.jsonl``/``.json``/``.parquet`` file, or of a hub dataset id (``datasets.load_dataset``)."""
    return read_located_rows(spec, split=split)[0]


def _at(index: int | str) -> str:
    """``"line 7"``/``"row 7"`` as given, or ``"row N"`` for a 0-based index of an in-memory list."""
    return index if isinstance(index, str) else f"row {index}"


def _where(source: str, index: int | str, name: str) -> str:
    return f"{source} {_at(index)}: field '{name}'"


ROLES = ("system", "user", "assistant", "tool")  # the roles chat templates render


def _named(fields: dict[str, str], name: str) -> str:
    """The user's name for a canonical field (a schema reader's ``_fields``: ``responses[2]`` → ``answers[0].answer``,
    or by its root under a column map: ``chosen`` → ``good``)."""
    if name in fields:
        return fields[name]
    root = name.split("[", 1)[0]
    return fields[root] + name[len(root):] if root in fields else name


def _check_text(value: Any, source: str, index: int, name: str, allow_empty: bool = False,
                needs: str | None = None) -> None:
    """A string, or chat messages with known roles and text content; ``needs``: a role that must appear (a
    prompt's ``user``, a response's ``assistant``)."""
    if is_messages(value):
        if not value or any(not isinstance(m.get("content"), str) for m in value):
            raise PreferenceDataError(f"{_where(source, index, name)} has a message without text 'content'")
        roles = [m.get("role") for m in value]
        unknown = [r for r in roles if r not in ROLES]
        if unknown:
            raise PreferenceDataError(f"{_where(source, index, name)} has a message with role {unknown[0]!r}; "
                                      f"valid roles: {', '.join(ROLES)}")
        if needs and needs not in roles:
            raise PreferenceDataError(f"{_where(source, index, name)} has no {needs!r} message (roles: "
                                      f"{', '.join(roles)})")
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


def _repeats_user_turn(row: dict[str, Any]) -> bool:
    """Chat responses that carry the conversation before the answer (TRL's implicit prompt)."""
    return all(is_messages(row[k]) and row[k] and row[k][0].get("role") != "assistant" for k in ("chosen", "rejected"))


def normalize_row(row: dict[str, Any], *, index: int | str, source: str, allow_empty: bool = False) -> dict[str, Any]:
    """One row in any accepted format → a validated preference-list record (raises on bad input).

    ``index`` is where the row came from: ``"line 7"`` (as ``read_located_rows`` gives) or a 0-based list index.
    ``allow_empty`` accepts empty responses: a policy sample that stops at once is a real (bad) response, while
    an empty response in a user's file is almost always a broken row.
    """
    if not isinstance(row, dict):
        raise PreferenceDataError(f"{source} {_at(index)}: expected an object, got {type(row).__name__}")
    fields = row.get("_fields") or {}  # the user's names of the canonical fields (prefopt.data.schemas)
    if "responses" in row and ("chosen" in row or "rejected" in row):
        both = ", ".join(k for k in ("chosen", "rejected") if k in row)
        raise PreferenceDataError(f"{source} {_at(index)}: has both a list (responses/scores) and a pair ({both}); "
                                  "keep one form per row")
    if "responses" in row:
        responses, scores = row["responses"], row.get("scores")
        names = [f"responses[{k}]" for k in range(len(responses) if isinstance(responses, list) else 0)]
        if scores is None:
            raise PreferenceDataError(f"{_where(source, index, 'scores')} is missing (a list needs prompt, "
                                      "responses, scores)")
    elif "chosen" in row and "rejected" in row:
        if _repeats_user_turn(row) and ("prompt" not in row or not is_conversational({"prompt": row["prompt"]})):
            # TRL's rule: a plain prompt beside chat responses that repeat the user turn (ultrafeedback_binarized)
            # is re-extracted from the responses, so the prompt renders once
            row = {**row, **maybe_extract_prompt(row)}
        responses, scores = [row["chosen"], row["rejected"]], [1.0, 0.0]
        names = ["chosen", "rejected"]  # errors name the user's own fields
    else:
        present = ", ".join(sorted(row)) or "none"
        raise PreferenceDataError(f"{source} {_at(index)}: expected fields prompt/responses/scores or "
                                  f"prompt/chosen/rejected; found: {present}")
    names = [_named(fields, n) for n in names]
    if "prompt" not in row:
        raise PreferenceDataError(f"{_where(source, index, _named(fields, 'prompt'))} is missing")
    _check_text(row["prompt"], source, index, _named(fields, "prompt"), needs="user")
    if not isinstance(responses, list) or len(responses) < 2:
        n = len(responses) if isinstance(responses, list) else "not a list"
        raise PreferenceDataError(f"{_where(source, index, _named(fields, 'responses'))} needs at least 2 responses, "
                                  f"got {n}")
    if not isinstance(scores, list) or len(scores) != len(responses):
        raise PreferenceDataError(f"{_where(source, index, _named(fields, 'scores'))} must be a list of "
                                  f"{len(responses)} numbers, one per response; got {scores!r}")
    for k, response in enumerate(responses):
        _check_text(response, source, index, names[k], allow_empty, needs="assistant")
    if row.get("segments") is not None:
        _check_segments(row["segments"], responses, source, index)
    record = {
        "prompt": row["prompt"],
        "responses": list(responses),
        "scores": [_number(s, source, index, _named(fields, f"scores[{k}]")) for k, s in enumerate(scores)],
        "weight": None if row.get("weight") is None else _number(row["weight"], source, index, "weight"),
        "segments": row.get("segments"),
        "meta": dict(row.get("meta") or {}),
    }
    extra = {k: row[k] for k in ("score_chosen", "score_rejected") if k in row}
    record["meta"].update(extra)  # kept for transforms that need the raw scale (reward-augmented pairs)
    return record


def _check_segments(segments: Any, responses: list, source: str, index: int | str) -> None:
    """RRPO's ``segments``: one entry per response (None or a list of [start, end) character spans of its text)."""
    if not isinstance(segments, list) or len(segments) != len(responses):
        raise PreferenceDataError(f"{_where(source, index, 'segments')} must be a list with one entry per response "
                                  f"({len(responses)}), got {segments!r}"[:300])
    for k, (spans, response) in enumerate(zip(segments, responses, strict=True)):
        if spans is None:
            continue
        turns = [m for m in response if m.get("role") == "assistant"] if is_messages(response) else None
        if turns is not None and len(turns) != 1:
            raise PreferenceDataError(f"{_where(source, index, f'segments[{k}]')} needs the response to be one "
                                      f"assistant message, got {len(turns)}")
        text = turns[0]["content"] if turns is not None else response
        if not isinstance(spans, list):
            raise PreferenceDataError(f"{_where(source, index, f'segments[{k}]')} must be a list of [start, end] "
                                      f"spans, got {spans!r}"[:300])
        for i, span in enumerate(spans):
            if not (isinstance(span, list) and len(span) == 2 and all(type(v) is int for v in span)
                    and 0 <= span[0] < span[1] <= len(text)):
                raise PreferenceDataError(f"{_where(source, index, f'segments[{k}]')} span {i} = {span!r} is not a "
                                          f"[start, end) character range inside the response ({len(text)} "
                                          "characters)"[:300])


def prompt_key(prompt: str | list[dict[str, Any]]) -> str:
    """One canonical form of a prompt, to compare prompts whatever their schema or rendering: a plain string is the
    user turn it becomes under ``data.chat_template=always`` (``[["user", text]]``), chat messages are their
    (role, content) turns. So the held-out slice is found in training data as text or as chat."""
    turns = [[m.get("role"), m.get("content")] for m in prompt] if is_messages(prompt) else [["user", prompt]]
    return json.dumps(turns, ensure_ascii=False)


MAX_REPORTED = 10  # bad rows listed in one error; the rest are counted


def has_signal(record: dict[str, Any]) -> str | None:
    """Why a list carries no preference (``"tied"``, ``"identical"``), or None when it does."""
    if max(record["scores"]) == min(record["scores"]):
        return "tied"
    texts = {json.dumps(r, sort_keys=True) for r in record["responses"]}
    return "identical" if len(texts) == 1 else None


def normalize_rows(rows: Iterable[dict[str, Any]], *, source: str, report: DataReport | None = None,
                   allow_empty: bool = False,
                   where: list[str] | None = None) -> tuple[list[dict[str, Any]], DataReport]:
    """Validate every row and drop lists without a preference (all scores tied, or all responses identical),
    counting them. Every bad row is reported in one ``PreferenceDataError`` (one line each, up to
    ``MAX_REPORTED``); ``where[i]`` names row i's location (``"line 7"``), else its 0-based index is used."""
    report = report or DataReport()
    records, errors, rows_seen = [], [], []
    for index, row in enumerate(rows):
        rows_seen.append(row)
        report.rows += 1
        try:
            record = normalize_row(row, index=where[index] if where else index, source=source,
                                   allow_empty=allow_empty)
        except PreferenceDataError as err:
            errors.append(str(err))
            continue
        reason = has_signal(record)
        if reason == "tied":
            report.dropped_ties += 1
        elif reason is not None:
            report.drop(reason)
        else:
            records.append(record)
    weighted = [index for index, row in enumerate(rows_seen) if isinstance(row, dict) and row.get("weight") is not None]
    if weighted and len(weighted) < len(rows_seen) and not errors:  # the collator batches a weight for all or none
        have = set(weighted)
        missing = next(i for i in range(len(rows_seen)) if i not in have)
        errors.append(f"{source} {_at(where[missing] if where else missing)}: field 'weight' is missing, but "
                      f"{len(weighted)} of {len(rows_seen)} rows have one; give every row a weight, or none")
    if errors:
        more = f"\n({len(errors) - MAX_REPORTED} more bad rows)" if len(errors) > MAX_REPORTED else ""
        raise PreferenceDataError("\n".join(errors[:MAX_REPORTED]) + more)
    report.kept = len(records)
    if not records:
        why = [f"{report.dropped_ties} had all scores tied"] if report.dropped_ties else []
        why += [f"{n} had identical responses (e.g. chosen = rejected)" for r, n in report.dropped.items()
                if r == "identical"]
        raise PreferenceDataError(f"{source}: no usable preference data: all {report.rows} rows carry no preference "
                                  f"({'; '.join(why) or 'the file is empty'})")
    return records, report


def load_prompts(spec: str, *, split: str = "train", gold_field: str | None = None) -> list:
    """Prompts of a prompt-only dataset (rows with a ``prompt`` field, or plain JSON strings).

    With ``gold_field``, returns ``(prompt, gold)`` pairs instead: each row's reference response (DNO compares the
    policy's samples with a strong model's answer), validated like a response.
    """
    prompts = []
    rows, where = read_located_rows(spec, split=split)
    for index, row in zip(where, rows, strict=True):
        prompt = row if isinstance(row, str) else row.get("prompt") if isinstance(row, dict) else None
        if prompt is None:
            raise PreferenceDataError(f"{spec} {index}: field 'prompt' is missing")
        _check_text(prompt, spec, index, "prompt", needs="user")
        if gold_field is None:
            prompts.append(prompt)
            continue
        gold = row.get(gold_field) if isinstance(row, dict) else None
        if gold is None:
            raise PreferenceDataError(f"{spec} {index}: field '{gold_field}' (data.gold_field) is missing")
        _check_text(gold, spec, index, gold_field, needs="assistant")
        prompts.append((prompt, gold))
    if not prompts:
        raise PreferenceDataError(f"{spec}: no prompts in it (the file is empty or holds only blank lines)")
    return prompts
