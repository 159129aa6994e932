"""Readers of ranked hub schemas, read as preference lists of K: UltraFeedback raw (K = 4), Nectar (K = 7),
HelpSteer2 (rows grouped by prompt).

Each gives canonical list rows (``prompt``/``responses``/``scores``, higher is better), validated by
``normalize_rows`` with the dataset's own field names kept in ``_fields``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from prefopt.data.records import PreferenceDataError
from prefopt.data.schemas import Format, RowErrors, field_of, register, row_reader
from prefopt.data.schemas.pairs import hh_messages

# ---------------------------------------------------------------------------------------------------------------
# openbmb/UltraFeedback: instruction (str), models, completions: 4 × {model, response, overall_score,
# fine-grained_score, annotations: {helpfulness, honesty, instruction_following, truthfulness: {Rating, Rationale}},
# principle, custom_system_prompt, critique}. Ratings are strings "1".."5" or "N/A".

ASPECTS = ("helpfulness", "honesty", "instruction_following", "truthfulness")
RATINGS = ("overall", "fine_grained", *ASPECTS)


def _number(value: Any) -> float | None:
    """A rating as a float; "N/A", missing or non-finite ratings are None (UltraFeedback writes ratings as text)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _rating(completion: dict, rating: str) -> tuple[float | None, str]:
    """The chosen rating of one completion and its field name."""
    if rating == "overall":
        return _number(completion.get("overall_score")), "overall_score"
    if rating == "fine_grained":
        return _number(completion.get("fine-grained_score")), "fine-grained_score"
    return _number(((completion.get("annotations") or {}).get(rating) or {}).get("Rating")), \
        f"annotations.{rating}.Rating"


def _ultrafeedback(row: dict, at: str, source: str, options: dict[str, Any]) -> dict | str:
    """A list of the 4 completions scored by ``rating``: ``overall`` (GPT-4's overall score, 1-10),
    ``fine_grained`` (the mean of the four aspect ratings, UltraFeedback's ``fine-grained_score``) or one aspect's
    rating (1-5). Completions without that rating ("N/A") are left out; a list left with fewer than two is dropped."""
    completions = field_of(row, "completions", at, source, "ultrafeedback")
    if not isinstance(completions, list) or not all(isinstance(c, dict) for c in completions):
        raise PreferenceDataError(f"{source} {at}: field 'completions' must be a list of objects")
    responses, scores, fields = [], [], {"prompt": "instruction"}
    for k, completion in enumerate(completions):
        score, name = _rating(completion, options["rating"])
        if score is None:
            continue
        fields[f"responses[{len(responses)}]"] = f"completions[{k}].response"
        fields[f"scores[{len(responses)}]"] = f"completions[{k}].{name}"
        responses.append(completion.get("response"))
        scores.append(score)
    if len(responses) < 2:
        return "fewer_than_2_rated"
    return {"prompt": field_of(row, "instruction", at, source, "ultrafeedback"), "responses": responses,
            "scores": scores, "meta": {"models": [c.get("model") for c in completions], "rating": options["rating"]},
            "_fields": fields}


register(Format("ultrafeedback", ("instruction", "completions"), row_reader(_ultrafeedback),
                "openbmb/UltraFeedback", options={"rating": "overall"}, choices={"rating": RATINGS}))

# ---------------------------------------------------------------------------------------------------------------
# berkeley-nest/Nectar: prompt ("\n\nHuman: ...\n\nAssistant:" text), answers: 7 × {answer, model, rank (1 = best)},
# turns, num_responses, source, good_natured.


def _nectar(row: dict, at: str, source: str, options: dict[str, Any]) -> dict:
    """The answers ordered by rank (best first), scored (K − rank) / (K − 1) in [0, 1]: rank 1 → 1, rank K → 0
    (LiPO-λ's labels live in [0, 1]). The prompt's dialogue becomes chat messages (its trailing empty Assistant
    turn dropped); text without Human/Assistant turns stays plain."""
    answers = field_of(row, "answers", at, source, "nectar")
    if not isinstance(answers, list) or len(answers) < 2 or not all(isinstance(a, dict) for a in answers):
        raise PreferenceDataError(f"{source} {at}: field 'answers' must be a list of at least 2 objects "
                                  "{answer, model, rank}")
    for k, a in enumerate(answers):
        rank = a.get("rank")
        if isinstance(rank, bool) or not isinstance(rank, numbers.Real) or not 1 <= rank <= len(answers):
            raise PreferenceDataError(f"{source} {at}: field 'answers[{k}].rank' must be a number in 1.."
                                      f"{len(answers)}, got {rank!r}")
    order = sorted(range(len(answers)), key=lambda k: answers[k]["rank"])  # stable: equal ranks keep file order
    n = len(answers)
    text = field_of(row, "prompt", at, source, "nectar")
    prompt = text
    if isinstance(text, str) and "\n\nHuman:" in text:
        prompt = [m for m in hh_messages(text) if not (m["role"] == "assistant" and not m["content"])]
    fields = {"prompt": "prompt"}
    for i, k in enumerate(order):
        fields[f"responses[{i}]"] = f"answers[{k}].answer"
        fields[f"scores[{i}]"] = f"answers[{k}].rank"
    return {"prompt": prompt, "responses": [answers[k].get("answer") for k in order],
            "scores": [(n - float(answers[k]["rank"])) / (n - 1) for k in order],
            "meta": {"models": [answers[k].get("model") for k in order]}, "_fields": fields}


register(Format("nectar", ("prompt", "answers"), row_reader(_nectar), "berkeley-nest/Nectar"))

# ---------------------------------------------------------------------------------------------------------------
# nvidia/HelpSteer2: one response per row: prompt, response, helpfulness, correctness, coherence, complexity,
# verbosity (integers 0-4). Responses to one prompt sit on separate rows.

ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")


def _weights(options: dict[str, Any]) -> dict[str, float]:
    weights = options["weights"]
    if not isinstance(weights, dict) or not weights:
        raise PreferenceDataError(f"data.options.weights must map attributes to numbers, e.g. {{helpfulness: 1}}; "
                                  f"got {weights!r}")
    for name, w in weights.items():
        if name not in ATTRIBUTES:
            raise PreferenceDataError(f"data.options.weights: {name!r} is not a HelpSteer2 attribute "
                                      f"({', '.join(ATTRIBUTES)})")
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w):
            raise PreferenceDataError(f"data.options.weights.{name} must be a finite number, got {w!r}")
    return {k: float(v) for k, v in weights.items()}


def _helpsteer2(rows, where, source, options):
    """Rows grouped by prompt (first appearance order) into one list each, response k scored
    Σ_a weights[a] · attribute_a (``data.options.weights``, default ``{helpfulness: 1}``). A prompt with a single
    response is dropped (``single_response``); each row is checked where it stands (its own line)."""
    weights = _weights(options)
    groups: dict[str, dict] = {}
    errors = RowErrors()
    for row, at in zip(rows, where, strict=True):
        try:
            if not isinstance(row, dict):
                raise PreferenceDataError(f"{source} {at}: expected an object, got {type(row).__name__}")
            prompt = field_of(row, "prompt", at, source, "helpsteer2")
            response = field_of(row, "response", at, source, "helpsteer2")
            if not isinstance(prompt, str) or not isinstance(response, str) or not response.strip():
                bad = "prompt" if not isinstance(prompt, str) else "response"
                raise PreferenceDataError(f"{source} {at}: field '{bad}' must be non-empty text")
            score = 0.0
            for name, w in weights.items():
                value = field_of(row, name, at, source, "helpsteer2")
                if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                    raise PreferenceDataError(f"{source} {at}: field '{name}' must be a number, got {value!r}")
                score += w * float(value)
        except PreferenceDataError as err:
            errors.add(str(err))
            continue
        group = groups.setdefault(prompt, {"prompt": prompt, "responses": [], "scores": [], "at": at,
                                           "meta": {"lines": []}})
        group["responses"].append(response)
        group["scores"].append(score)
        group["meta"]["lines"].append(at)
    errors.raise_any()
    out = [g for g in groups.values() if len(g["responses"]) >= 2]
    dropped = {"single_response": len(groups) - len(out)} if len(out) < len(groups) else {}
    return [{k: v for k, v in g.items() if k != "at"} for g in out], [g["at"] for g in out], dropped


register(Format("helpsteer2", ("prompt", "response", "helpfulness"), _helpsteer2, "nvidia/HelpSteer2",
                options={"weights": {"helpfulness": 1.0}}))
