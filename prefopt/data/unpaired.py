"""Unpaired data (single responses labelled desirable or undesirable) for KTO, as TRL's KTOTrainer reads it.

Three steps, each TRL's own:

1. **Reading** TRL's unpaired format, a row ``{"prompt", "completion", "label"}`` (plain or conversational; the
   label true for desirable). ``unpaired_record`` turns it into a record with one response, its label as its score
   and ``meta.unpaired`` set; ``prefopt.data.records.normalize_row`` calls it for such rows (the hook), so a file or
   hub dataset in this format goes through the same pre-flight validation, errors naming the line and field.
2. **Unpairing** preference data: ``unpair_records`` takes each list's best-vs-worst pair and runs TRL's own
   ``trl.data_utils.unpair_preference_dataset`` on them (per 1,000 pairs, the chosen responses labelled desirable,
   then the rejected ones undesirable, as TRL orders them).
3. **The KL baseline**: ``with_kl_responses`` gives every example a mismatched response, the previous example's
   response within each batch of ``batch_size`` (the first takes the batch's last), as TRL's KTOTrainer rotates
   ``completion_ids``: (x_1, y_n), (x_2, y_1), ..., (x_n, y_{n-1}). Each feature becomes a list of two [y_i, y']
   with its label in ``weight``, the input ``losses.kto_loss`` reads; the trainer then keeps the batches in data
   order (LossSpec ``unpaired``).
"""

from __future__ import annotations

from typing import Any

UNPAIRED_FIELDS = ("completion", "label")  # with "prompt": TRL's unpaired format


def is_unpaired_row(row: Any) -> bool:
    """A row in TRL's unpaired format (``completion`` and ``label`` fields, no ``chosen``/``responses``)."""
    return isinstance(row, dict) and all(f in row for f in UNPAIRED_FIELDS) and "responses" not in row


def is_unpaired(record: dict[str, Any]) -> bool:
    """A record read from (or unpaired into) TRL's unpaired format: one response, its label as its score."""
    return bool((record.get("meta") or {}).get("unpaired"))


def unpaired_record(row: dict[str, Any], label_error) -> dict[str, Any]:
    """One TRL unpaired row → a record ``{"prompt", "responses": [completion], "scores": [1.0 | 0.0], ...}``.

    ``label_error(message)`` raises the caller's error naming the row (the texts are checked by the caller).
    """
    label = row["label"]
    if not (isinstance(label, bool) or (isinstance(label, int) and label in (0, 1))):
        label_error(f"must be true (desirable) or false (undesirable), got {label!r}")
    return {"prompt": row.get("prompt"), "responses": [row["completion"]], "scores": [float(bool(label))],
            "weight": None, "segments": None, "meta": {**dict(row.get("meta") or {}), "unpaired": True}}


def unpair_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Unpaired records as TRL's ``unpair_preference_dataset`` makes them from each list's best-vs-worst pair;
    records already unpaired are kept as they are, after them."""
    from datasets import Dataset
    from trl.data_utils import unpair_preference_dataset

    unpaired = [r for r in records if is_unpaired(r)]
    pairs = []
    for r in records:
        if is_unpaired(r):
            continue
        scores = r["scores"]
        best = max(range(len(scores)), key=lambda k: (scores[k], -k))  # first max, last min: losses.best_worst
        worst = max(range(len(scores)), key=lambda k: (-scores[k], k))
        pairs.append({"prompt": r["prompt"], "chosen": r["responses"][best], "rejected": r["responses"][worst]})
    if not pairs:
        return unpaired
    rows = unpair_preference_dataset(Dataset.from_list(pairs))
    made = [unpaired_record(row, _never) for row in rows]
    return made + unpaired


def _never(message: str) -> None:
    raise AssertionError(message)  # TRL's own labels are booleans


def with_kl_responses(features: list[dict[str, Any]], batch_size: int) -> list[dict[str, Any]]:
    """Tokenized unpaired features (one response each, score = label) → lists of two [the response, a mismatched
    one] with ``weight`` = label, the mismatched response rotated by one within each batch (module docstring).

    Raises:
        ValueError: a feature that is not a single labelled response.
    """
    out = []
    for start in range(0, len(features), batch_size):
        chunk = features[start:start + batch_size]
        if any(len(f["response_ids"]) != 1 for f in chunk):
            bad = start + next(i for i, f in enumerate(chunk) if len(f["response_ids"]) != 1)
            raise ValueError(f"unpaired example {bad} has {len(features[bad]['response_ids'])} responses; an "
                             "unpaired example is one labelled response")
        responses = [f["response_ids"][0] for f in chunk]
        mismatched = [responses[-1], *responses[:-1]]
        out += [{"prompt_ids": f["prompt_ids"], "response_ids": [own, other], "scores": [1.0, 0.0],
                 "weight": f["scores"][0]} for f, own, other in zip(chunk, responses, mismatched, strict=True)]
    return out


def unpaired_features(records: list[dict[str, Any]], tokenize, batch_size: int) -> tuple[list[dict[str, Any]], Any]:
    """Records (paired or unpaired) → (KTO's training lists, the tokenizer's report): ``unpair_records``, then
    ``tokenize(records) -> (features, report)`` (the run's tokenizer and truncation:
    ``prefopt.data.features.tokenize_records``, which drops a prompt that fills max_length, as TRL does before it
    rotates), then ``with_kl_responses``."""
    features, report = tokenize(unpair_records(records))
    return with_kl_responses(features, batch_size), report
