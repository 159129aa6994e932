"""RRPO segments: alignment of hand-made token sequences, character spans mapped to tokens, collator alignment."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from prefopt.data.records import PreferenceDataError
from prefopt.data.segments import diff_segments, segment_ids, span_segments
from prefopt.data.tokenize import tokenize_list


def test_each_replaced_span_is_one_segment_numbered_on_both_sides():
    a = [1, 2, 3, 4, 5, 6, 7]
    b = [1, 9, 3, 4, 8, 8, 7]  # 2→9 and 5,6→8,8
    assert diff_segments(a, b) == ([0, 1, 0, 0, 2, 2, 0], [0, 1, 0, 0, 2, 2, 0])
    c = [1, 9, 9, 9, 4, 5, 6, 7]  # 2,3→9,9,9: spans of different lengths
    assert diff_segments(a, c) == ([0, 1, 1, 0, 0, 0, 0], [0, 1, 1, 1, 0, 0, 0, 0])


def test_identical_responses_have_no_segments():
    assert diff_segments([5, 6, 7], [5, 6, 7]) == ([0, 0, 0], [0, 0, 0])


def test_insertions_and_deletions_are_one_sided_segments_unless_disabled():
    a = [1, 2, 3, 4]
    b = [1, 2, 7, 7, 3, 4, 8]  # insert 7,7 after 2; append 8; no replace
    assert diff_segments(a, b) == ([0, 0, 0, 0], [0, 0, 1, 1, 0, 0, 2])
    assert diff_segments(b, a) == ([0, 0, 1, 1, 0, 0, 2], [0, 0, 0, 0])
    assert diff_segments(a, b, one_sided=False) == ([0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0])
    mixed = [1, 5, 2, 3, 4, 9]  # insert 5 (one-sided), then replace nothing..., append 9
    assert diff_segments(a, mixed, one_sided=False) == ([0] * 4, [0] * 6)
    d = [1, 6, 2, 3, 0]  # insert 6, replace 4→0
    assert diff_segments(a, d) == ([0, 0, 0, 2], [0, 1, 0, 0, 2])
    assert diff_segments(a, d, one_sided=False) == ([0, 0, 0, 1], [0, 0, 0, 0, 1])


def test_min_match_size_merges_differences_split_by_short_matches():
    """The authors' setting (3): the common run [5] between two replacements is too short to separate them, and
    so is a common run of 2 at the start."""
    a = [1, 2, 3, 4, 5, 6, 7, 8, 9]
    b = [1, 2, 3, 0, 5, 0, 7, 8, 9]
    assert diff_segments(a, b) == ([0, 0, 0, 1, 0, 2, 0, 0, 0], [0, 0, 0, 1, 0, 2, 0, 0, 0])
    assert diff_segments(a, b, min_match_size=3) == ([0, 0, 0, 1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1, 0, 0, 0])
    assert diff_segments([1, 2, 3, 4, 5, 6], [1, 2, 0, 4, 5, 6], min_match_size=3) == (
        [1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 0, 0])


def test_alignment_ignores_autojunk_on_long_sequences():
    """difflib's autojunk would treat a token in >1% of a 200+ token sequence as junk; here it must still match."""
    a = [7] * 150 + [1, 2, 3] + [7] * 150
    b = [7] * 150 + [1, 9, 3] + [7] * 150
    seg_a, seg_b = diff_segments(a, b)
    assert seg_a == seg_b and [i for i, s in enumerate(seg_a) if s] == [151]


def test_the_authors_autojunk_marks_shared_stretches_of_a_popular_token():
    """autojunk=True (difflib's default, the authors' setting): in 200+ tokens a token filling >1% of b is junk, so
    300 shared 7s next to one inserted 8 find no anchor and become one big two-sided segment; autojunk=False
    matches them and leaves only the one-sided insertion (dropped with one_sided=False)."""
    a, b = [7] * 300, [7] * 150 + [8] + [7] * 150
    assert diff_segments(a, b, one_sided=False) == ([0] * 300, [0] * 301)
    seg_a, seg_b = diff_segments(a, b, one_sided=False, autojunk=True)
    assert set(seg_a) == set(seg_b) == {0, 1} and sum(seg_a) >= 100 and sum(seg_b) >= 100


@pytest.mark.parametrize("bad", [0, 2.5, True])
def test_min_match_size_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="min_match_size"):
        diff_segments([1, 2], [1, 3], min_match_size=bad)


def test_recipe_segment_options_are_checked():
    from prefopt.rounds.build import _segment_fn

    assert _segment_fn({"min_match_size": 3, "autojunk": True, "one_sided": False}).keywords == {
        "min_match_size": 3, "autojunk": True, "one_sided": False}
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['min_match'\]"):
        _segment_fn({"min_match": 3})
    with pytest.raises(ValueError, match="autojunk must be true or false"):
        _segment_fn({"autojunk": "yes"})


def test_segment_ids_align_with_tokenize_list(tokenizer, chat_tokenizer):
    for tok, prompt in [(tokenizer, "q: "), (chat_tokenizer, [{"role": "user", "content": "q"}])]:
        record = {"prompt": prompt, "responses": ["the cat sat", "the dog sat"], "scores": [1.0, 0.0]}
        tl = tokenize_list(tok, prompt, record["responses"])
        ids = segment_ids(tok, tl, record)
        assert [len(x) for x in ids] == [len(r) for r in tl.response_ids]
        assert ids[0] == [0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0]  # "cat"/"dog" (three characters), then " sat<eos>"
        assert ids[1] == ids[0]


def test_lists_longer_than_two_mark_best_and_worst_only(tokenizer):
    record = {"prompt": "q", "responses": ["ab", "xy", "ac"], "scores": [0.5, 1.0, 0.0]}
    tl = tokenize_list(tokenizer, "q", record["responses"])
    # best "xy<eos>" against worst "ac<eos>": one replaced span "xy"→"ac"; the middle response gets zeros
    assert segment_ids(tokenizer, tl, record) == [[0, 0, 0], [1, 1, 0], [1, 1, 0]]


# ---------------------------------------------------------------------------------------------------------------
# character spans


def word_tokenizer(chat: bool = False) -> PreTrainedTokenizerFast:
    words = "<pad> <eos> the cat dog sat on a mat . q : <user> <assistant>".split()
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>")
    if chat:
        tok.chat_template = ("{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% if m['role'] == "
                             "'assistant' %}<eos> {% endif %}{% endfor %}{% if add_generation_prompt %}<assistant> "
                             "{% endif %}")
    return tok


def test_character_spans_map_to_overlapping_tokens_plain_text():
    tok = word_tokenizer()
    record = {"prompt": "q : ", "responses": ["the cat sat on a mat .", "the dog sat on a mat ."],
              "scores": [1.0, 0.0], "segments": [[[4, 7], [17, 20]], [[5, 6]]]}  # "cat", "mat"; "o" inside "dog"
    tl = tokenize_list(tok, record["prompt"], record["responses"])
    ids = segment_ids(tok, tl, record)
    # tokens: the cat sat on a mat . <eos>
    assert ids == [[0, 1, 0, 0, 0, 2, 0, 0], [0, 1, 0, 0, 0, 0, 0, 0]]


def test_character_spans_in_a_chat_rendering():
    tok = word_tokenizer(chat=True)
    prompt = [{"role": "user", "content": "q"}]
    record = {"prompt": prompt, "responses": ["the cat sat", "a dog sat"], "scores": [1.0, 0.0],
              "segments": [[[0, 7]], []]}  # "the cat"
    tl = tokenize_list(tok, prompt, record["responses"])
    assert segment_ids(tok, tl, record) == [[1, 1, 0, 0], [0, 0, 0, 0]]  # the cat sat <eos>


def test_character_span_errors(tokenizer):
    tl = tokenize_list(tokenizer, "q", ["abc", "abd"])
    with pytest.raises(PreferenceDataError, match=r"segments\[1\].*span 0 = \[2, 9\]"):
        segment_ids(tokenizer, tl, {"prompt": "q", "responses": ["abc", "abd"], "segments": [[], [[2, 9]]]})
    with pytest.raises(PreferenceDataError, match="1 entries for 2 responses"):
        segment_ids(tokenizer, tl, {"prompt": "q", "responses": ["abc", "abd"], "segments": [[]]})
    with pytest.raises(PreferenceDataError, match="differ from the tokenized response"):
        span_segments(tokenizer, "q", "abc", [[0, 1]], [5, 5, 5, 5])
