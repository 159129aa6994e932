"""RRPO segments: which response tokens belong to the refined sub-sequences where a pair's responses differ.

Paper: Sarkar, Etemad (2025), "Self-alignment of Large Video Language Models with Refined Regularized Preference
Optimization", arXiv 2504.12083. The loss (``losses/rrpo.py``) compares the two responses only on their differing
sub-sequences; each response token gets a segment id, 0 outside every segment, k ≥ 1 inside the k-th.

Two sources, one output (``segment_ids``, one list of ids per response, aligned with ``tokenize_list``'s
``response_ids``):

- **Found by alignment** (no ``segments`` in the record): ``diff_segments`` aligns the two responses' token ids
  with ``difflib.SequenceMatcher``. Each gap between matching blocks that holds tokens on both sides (a
  ``replace`` opcode) is one segment, numbered 1, 2, ... left to right, with the same number on both sides. This
  is the authors' text path (github.com/pritamqu/RRPO, ``videochat2/diff_lib.py``, ``get_diff_signs``, adapted
  from Muffin's ``diff_lib``). Recipes choose the settings with ``data.segments``; the defaults suit the tiny
  world's short answers, and differ from the authors' in three ways:
    * ``autojunk=False`` (default): the authors use difflib's default ``autojunk=True``, which for sequences of
      200+ tokens treats tokens that fill over 1% of the sequence as junk and can leave long shared stretches
      unmatched;
    * ``min_match_size=1`` (default: every common block separates segments); ``get_diff_signs`` defaults to 3,
      which merges differences separated by a common run of 1–2 tokens into one segment;
    * ``one_sided=True`` (default): insert/delete-only gaps (tokens on one side only) are segments on the side
      that has the tokens, so a pair that differs only by an added clause still gets a training signal on it. The
      authors keep only gaps with tokens on both sides (``generate_modification_mapping_impl``); ``False``
      does the same.
  ``data.segments: {min_match_size: 3, autojunk: true, one_sided: false}`` is the authors' setting
  (recipes/paper/rrpo.yaml).
- **Given in the data**: ``record["segments"][k]`` is a list of [start, end) character spans of response k; the
  i-th span is segment i + 1. Spans are mapped to tokens with the fast tokenizer's offset mapping of the rendered
  prompt + response: a token belongs to a span when their character ranges overlap.

For lists of K > 2 (the loss reduces them to best vs worst) alignment marks the best and the worst response only;
the others get zeros.
"""

from __future__ import annotations

import difflib

from prefopt.data.records import PreferenceDataError
from prefopt.data.tokenize import TokenizedList, as_assistant, is_messages


def diff_segments(a: list[int], b: list[int], *, min_match_size: int = 1, one_sided: bool = True,
                  autojunk: bool = False) -> tuple[list[int], list[int]]:
    """Segment ids of every token of ``a`` and ``b`` (0 where the two agree).

    Args:
        a, b: token ids of the two responses.
        min_match_size: common blocks shorter than this do not separate segments (the authors use 3).
        one_sided: number gaps that hold tokens on one side only (insertions/deletions) as segments too (the
            authors do not).
        autojunk: difflib's popular-token heuristic for sequences of 200+ tokens (the authors keep it on).
    """
    if isinstance(min_match_size, bool) or not isinstance(min_match_size, int) or min_match_size < 1:
        raise ValueError(f"segments: min_match_size must be an integer >= 1, got {min_match_size!r}")
    blocks = difflib.SequenceMatcher(None, a, b, autojunk=autojunk).get_matching_blocks()
    blocks = [m for m in blocks[:-1] if m.size >= min_match_size] + [blocks[-1]]  # the last is the (len, len, 0) end
    seg_a, seg_b = [0] * len(a), [0] * len(b)
    i = j = 0
    number = 0
    for block in blocks:
        gap_a, gap_b = range(i, block.a), range(j, block.b)
        if (gap_a and gap_b) or (one_sided and (gap_a or gap_b)):
            number += 1
            for t in gap_a:
                seg_a[t] = number
            for t in gap_b:
                seg_b[t] = number
        i, j = block.a + block.size, block.b + block.size
    return seg_a, seg_b


def _response_text(response, row: str) -> str:
    if not is_messages(response):
        return response
    turns = as_assistant(response)
    if len(turns) != 1:
        raise PreferenceDataError(f"{row}: field 'segments' needs each response to be one assistant message, "
                                  f"got {len(turns)} messages")
    return turns[0]["content"]


def _rendered(tokenizer, prompt, response) -> tuple[str, int, bool]:
    """(prompt + response as tokenize_list renders it, where the response text starts in it, add specials?)."""
    text = _response_text(response, "record")
    if is_messages(prompt):
        full = tokenizer.apply_chat_template(prompt + as_assistant(response), tokenize=False)
        head = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        shared = next((n for n, (x, y) in enumerate(zip(full, head, strict=False)) if x != y),
                      min(len(full), len(head)))  # the response starts after the common rendering
        start = full.find(text, shared)
        if start < 0:
            raise PreferenceDataError("field 'segments': the chat template changed the response text, so its "
                                      "character spans cannot be located in the rendered conversation")
        return full, start, False
    eos = tokenizer.eos_token or ""
    return prompt + (text if text.endswith(eos) else text + eos), len(prompt), True


def span_segments(tokenizer, prompt, response, spans: list, response_ids: list[int], *,
                  row: str = "record") -> list[int]:
    """Segment ids of ``response_ids``, the last tokens of the rendered prompt + response (``tokenize_list``).

    Span i ([start, end) characters of the response text) becomes segment i + 1; a token overlapping several spans
    takes the later one.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("character-span segments need a fast tokenizer (offsets mapping)")
    text = _response_text(response, row)
    for i, span in enumerate(spans):
        ok = (isinstance(span, (list, tuple)) and len(span) == 2 and all(isinstance(v, int) for v in span)
              and 0 <= span[0] < span[1] <= len(text))
        if not ok:
            raise PreferenceDataError(f"{row}: field 'segments' span {i} = {span!r} is not a [start, end) character "
                                      f"range inside the response ({len(text)} characters)")
    full, offset, special = _rendered(tokenizer, prompt, response)
    enc = tokenizer(full, add_special_tokens=special, return_offsets_mapping=True)
    n_tokens = len(response_ids)
    if enc["input_ids"][len(enc["input_ids"]) - n_tokens:] != list(response_ids):
        raise PreferenceDataError(f"{row}: the response tokens differ from the tokenized response; the rendering "
                                  "used for character offsets does not match tokenize_list's")
    ids = [0] * n_tokens
    for t, (s, e) in enumerate(enc["offset_mapping"][len(enc["input_ids"]) - n_tokens:]):
        for number, (start, end) in enumerate(spans, start=1):
            if max(s, offset + start) < min(e, offset + end):
                ids[t] = number
    return ids


def segment_ids(tokenizer, tokenized: TokenizedList, record: dict, *, min_match_size: int = 1,
                one_sided: bool = True, autojunk: bool = False) -> list[list[int]]:
    """Per response, one segment id per token of ``tokenized.response_ids`` (same lengths), for the collator.

    Character spans in ``record["segments"]`` are used when present, else the two responses are aligned
    (``diff_segments``; for K > 2, the best against the worst by ``record["scores"]``).
    """
    responses = tokenized.response_ids
    given = record.get("segments")
    if given is not None:
        if len(given) != len(responses):
            raise PreferenceDataError(f"field 'segments' has {len(given)} entries for {len(responses)} responses")
        return [span_segments(tokenizer, record["prompt"], r, spans or [], ids, row=f"segments[{k}]")
                for k, (r, spans, ids) in enumerate(zip(record["responses"], given, responses, strict=True))]
    out = [[0] * len(ids) for ids in responses]
    scores = record.get("scores") or [1.0, 0.0]
    if len(responses) == 2:
        best, worst = 0, 1
    else:
        best, worst = scores.index(max(scores)), len(scores) - 1 - scores[::-1].index(min(scores))
    if best != worst:
        out[best], out[worst] = diff_segments(responses[best], responses[worst], min_match_size=min_match_size,
                                              one_sided=one_sided, autojunk=autojunk)
    return out
