"""Readers of pairwise hub schemas: ultrafeedback_binarized, Anthropic hh-rlhf, PKU-SafeRLHF, Stanford SHP.

Each turns one row into a TRL pair (``prompt``/``chosen``/``rejected``), which ``normalize_rows`` validates, with the
dataset's own field names kept in ``_fields`` for errors. Registered in ``prefopt.data.schemas.FORMATS`` (detection
order: the order of registration, the generic ``trl``/``list`` formats last).
"""

from __future__ import annotations

import re
from typing import Any

from trl.data_utils import extract_prompt, maybe_extract_prompt

from prefopt.data.records import PreferenceDataError
from prefopt.data.schemas import Format, field_of, register, row_reader

# ---------------------------------------------------------------------------------------------------------------
# HuggingFaceH4/ultrafeedback_binarized: prompt (str), chosen/rejected (messages that repeat the user turn),
# score_chosen/score_rejected (GPT-4 overall score, 1-10), prompt_id, messages (the chosen conversation).


def _ultrafeedback_binarized(row: dict, at: str, source: str, options: dict) -> dict:
    """TRL's ``maybe_extract_prompt``: a plain prompt beside chat responses is re-extracted from them, so the user
    turn renders once; the raw scores stay in ``meta`` (RA-DPO's goals)."""
    for name in ("chosen", "rejected"):
        field_of(row, name, at, source, "ultrafeedback_binarized")
    pair = maybe_extract_prompt({"prompt": row.get("prompt"), "chosen": row["chosen"], "rejected": row["rejected"]})
    out = {**pair, "meta": {"prompt_id": row.get("prompt_id")}}
    out.update({k: row[k] for k in ("score_chosen", "score_rejected") if row.get(k) is not None})
    return out


register(Format("ultrafeedback_binarized", ("prompt", "chosen", "rejected", "score_chosen", "score_rejected"),
                row_reader(_ultrafeedback_binarized), "HuggingFaceH4/ultrafeedback_binarized"))

# ---------------------------------------------------------------------------------------------------------------
# Anthropic/hh-rlhf: chosen/rejected are whole dialogues in plain text, "\n\nHuman: ...\n\nAssistant: ...".

TURN = re.compile(r"\n\n(Human|Assistant): ?")
ROLES = {"Human": "user", "Assistant": "assistant"}


def hh_messages(text: str) -> list[dict[str, str]]:
    """A "\\n\\nHuman:/\\n\\nAssistant:" dialogue as chat messages (text before the first turn is dropped)."""
    parts = TURN.split(text)
    return [{"role": ROLES[role], "content": content.strip()} for role, content in zip(parts[1::2], parts[2::2],
                                                                                        strict=True)]


def _is_hh(row: dict) -> bool:
    return isinstance(row.get("chosen"), str) and row["chosen"].lstrip(" ").startswith("\n\nHuman:")


def _hh_rlhf(row: dict, at: str, source: str, options: dict) -> dict | str:
    """The dialogues as chat messages; the shared turns are the prompt (TRL's ``extract_prompt`` on messages), the
    last assistant turn of each the response. A pair whose answer is empty (a few rows of the dataset) is dropped."""
    turns = {}
    for name in ("chosen", "rejected"):
        text = field_of(row, name, at, source, "hh_rlhf")
        if not isinstance(text, str):
            raise PreferenceDataError(f"{source} {at}: field '{name}' must be a dialogue in plain text "
                                      f"(\\n\\nHuman: ... \\n\\nAssistant: ...), got {type(text).__name__}")
        turns[name] = hh_messages(text)
        if not turns[name] or turns[name][-1]["role"] != "assistant" or turns[name][0]["role"] != "user":
            raise PreferenceDataError(f"{source} {at}: field '{name}' is not a Human/Assistant dialogue ending with "
                                      "an Assistant turn")
    pair = extract_prompt(turns)
    if not pair["prompt"] or pair["prompt"][-1]["role"] == "assistant":  # the answers differ earlier than the end
        pair = {"prompt": turns["chosen"][:-1], "chosen": turns["chosen"][-1:], "rejected": turns["rejected"][-1:]}
    if not all(m["content"] for k in ("chosen", "rejected") for m in pair[k]):
        return "empty_response"
    return pair


register(Format("hh_rlhf", ("chosen", "rejected"), row_reader(_hh_rlhf), "Anthropic/hh-rlhf", absent=("prompt",),
                probe=_is_hh))

# ---------------------------------------------------------------------------------------------------------------
# PKU-Alignment/PKU-SafeRLHF: prompt, response_0/response_1, is_response_{0,1}_safe, better_response_id,
# safer_response_id (0 or 1), harm categories and severity levels.


def _response_id(row: dict, name: str, at: str, source: str) -> int:
    value = field_of(row, name, at, source, "pku_saferlhf")
    if value not in (0, 1) or isinstance(value, bool):
        raise PreferenceDataError(f"{source} {at}: field '{name}' must be 0 or 1, got {value!r}")
    return int(value)


def _pku_saferlhf(row: dict, at: str, source: str, options: dict[str, Any]) -> dict | str:
    """chosen = the safer (``prefer: safer``) or the more helpful (``prefer: better``) response. With
    ``negatives: unsafe`` only pairs whose rejected response is labelled unsafe are kept, our reading of D²O's human
    negatives (Duan et al., 2024, arXiv 2403.03419, who align on PKU-SafeRLHF trusting only the negatives)."""
    win = _response_id(row, f"{options['prefer']}_response_id", at, source)
    lose = 1 - win
    safe = [field_of(row, f"is_response_{k}_safe", at, source, "pku_saferlhf") for k in (0, 1)]
    if options["negatives"] == "unsafe" and safe[lose]:
        return "rejected_labelled_safe"
    return {"prompt": field_of(row, "prompt", at, source, "pku_saferlhf"),
            "chosen": field_of(row, f"response_{win}", at, source, "pku_saferlhf"),
            "rejected": field_of(row, f"response_{lose}", at, source, "pku_saferlhf"),
            "meta": {"safe": [bool(safe[win]), bool(safe[lose])]},
            "_fields": {"chosen": f"response_{win}", "rejected": f"response_{lose}"}}


register(Format("pku_saferlhf", ("prompt", "response_0", "response_1", "safer_response_id"),
                row_reader(_pku_saferlhf), "PKU-Alignment/PKU-SafeRLHF",
                options={"prefer": "safer", "negatives": "any"},
                choices={"prefer": ("safer", "better"), "negatives": ("any", "unsafe")}))

# ---------------------------------------------------------------------------------------------------------------
# stanfordnlp/SHP: history (the post), human_ref_A/human_ref_B (two comments), labels (1: A preferred),
# score_A/score_B, score_ratio (preferred score / other score, >= 1), post_id.


def _shp_row(row: dict, at: str, source: str, options: dict[str, Any]) -> dict | str:
    label = field_of(row, "labels", at, source, "shp")
    if label not in (0, 1) or isinstance(label, bool):
        raise PreferenceDataError(f"{source} {at}: field 'labels' must be 0 or 1 (1: A preferred), got {label!r}")
    ratio = field_of(row, "score_ratio", at, source, "shp")
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio >= 1:
        raise PreferenceDataError(f"{source} {at}: field 'score_ratio' must be a number >= 1, got {ratio!r}")
    if ratio < options["min_ratio"]:
        return "below_score_ratio"
    win, lose = ("A", "B") if label == 1 else ("B", "A")
    return {"prompt": field_of(row, "history", at, source, "shp"),
            "chosen": field_of(row, f"human_ref_{win}", at, source, "shp"),
            "rejected": field_of(row, f"human_ref_{lose}", at, source, "shp"),
            "meta": {"post_id": row.get("post_id"), "score_ratio": float(ratio)},
            "_fields": {"prompt": "history", "chosen": f"human_ref_{win}", "rejected": f"human_ref_{lose}"}}


def _shp(rows, where, source, options):
    """Pairs with ``score_ratio >= min_ratio`` (default 2: the SHP card's advice to train on preferences with a
    2+ score ratio), at most ``max_per_post`` per post in file order (the card's 5 per post; 0 = no cap)."""
    for name in ("min_ratio", "max_per_post"):
        if isinstance(options[name], bool) or not isinstance(options[name], (int, float)) or options[name] < 0:
            raise PreferenceDataError(f"data.options.{name} must be a number >= 0, got {options[name]!r}")
    pairs, at, dropped = row_reader(_shp_row)(rows, where, source, options)
    if not options["max_per_post"]:
        return pairs, at, dropped
    seen: dict[Any, int] = {}
    kept, kept_at = [], []
    for pair, where_ in zip(pairs, at, strict=True):
        post = pair["meta"]["post_id"]
        seen[post] = seen.get(post, 0) + 1
        if seen[post] > options["max_per_post"]:
            dropped["over_max_per_post"] = dropped.get("over_max_per_post", 0) + 1
            continue
        kept.append(pair)
        kept_at.append(where_)
    return kept, kept_at, dropped


register(Format("shp", ("history", "human_ref_A", "human_ref_B", "labels"), _shp, "stanfordnlp/SHP",
                options={"min_ratio": 2.0, "max_per_post": 0}))
