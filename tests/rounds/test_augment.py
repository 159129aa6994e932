"""Reward-augmented pairs against hand-written expected rows (Zhang et al., 2024, arXiv 2410.08067)."""

from __future__ import annotations

import pytest

from prefopt.data.records import PreferenceDataError, normalize_rows
from prefopt.rounds.augment import (
    GOAL_TEMPLATE,
    condition_on_top_score,
    goal_text,
    rescale,
    reward_augment,
    supports_system_role,
)
from tests.conftest import make_tokenizer

GOAL_8 = ("You are an assistant that generates responses for the instruction while implicitly achieving the following "
          "target scores (on a scale of 1-10, where 1 is lowest and 10 is highest):\nOverall score: 8.")
GOAL_3_5 = GOAL_8.replace("score: 8.", "score: 3.5.")


def pair(prompt, chosen="good", rejected="bad", scores=(8.0, 3.5), **extra):
    return {"prompt": prompt, "responses": [chosen, rejected], "scores": list(scores), "weight": None,
            "segments": None, "meta": dict(extra)}


def test_template_is_the_authors_text():
    assert goal_text(8.0) == GOAL_8 and goal_text(3.5) == GOAL_3_5
    assert GOAL_TEMPLATE.format(score=10).endswith("Overall score: 10.")


def test_chat_pair_becomes_two_system_conditioned_rows():
    user = [{"role": "user", "content": "Write a haiku."}]
    rows, report = reward_augment([pair(user)])
    assert rows == [
        {"prompt": [{"role": "system", "content": GOAL_8}, {"role": "user", "content": "Write a haiku."}],
         "responses": ["good", "bad"], "scores": [1.0, 0.0], "weight": None, "segments": None,
         "meta": {"goal_score": 8.0, "augment": "goal_chosen"}},
        {"prompt": [{"role": "system", "content": GOAL_3_5}, {"role": "user", "content": "Write a haiku."}],
         "responses": ["bad", "good"], "scores": [1.0, 0.0], "weight": None, "segments": None,
         "meta": {"goal_score": 3.5, "augment": "goal_rejected"}},
    ]
    assert (report.rows, report.kept) == (1, 2)
    assert user == [{"role": "user", "content": "Write a haiku."}]  # input untouched


def test_without_system_role_the_goal_leads_the_user_turn():
    user = [{"role": "user", "content": "Write a haiku."}]
    rows, _ = reward_augment([pair(user)], system_role=False)
    assert rows[0]["prompt"] == [{"role": "user", "content": GOAL_8 + "\n\nWrite a haiku."}]
    assert rows[1]["prompt"] == [{"role": "user", "content": GOAL_3_5 + "\n\nWrite a haiku."}]
    # the negative-goal row swaps the responses here too, unlike the authors' add_neg_goal_nosys, which swaps the
    # (identical) user turns and doubles the goal in the rejected side's prompt (docs/data.md)
    assert rows[1]["responses"] == ["bad", "good"] and rows[1]["prompt"][0]["content"].count("Overall score") == 1


def test_plain_prompt_gets_the_goal_as_text_and_existing_system_is_extended():
    rows, _ = reward_augment([pair("Write a haiku.")])
    assert [r["prompt"] for r in rows] == [GOAL_8 + "\n\nWrite a haiku.", GOAL_3_5 + "\n\nWrite a haiku."]
    sys_prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    rows, _ = reward_augment([pair(sys_prompt)])
    assert rows[0]["prompt"] == [{"role": "system", "content": GOAL_8 + "\n\nBe brief."},
                                 {"role": "user", "content": "Hi"}]


def test_system_role_detection_from_the_chat_template():
    raising = make_tokenizer(chat=True)
    raising.chat_template = ("{% for m in messages %}{% if m['role'] == 'system' %}"
                             "{{ raise_exception('System role not supported') }}{% endif %}"
                             "<{{ m['role'] }}>{{ m['content'] }}{% endfor %}")
    dropping = make_tokenizer(chat=True)
    dropping.chat_template = ("{% for m in messages %}{% if m['role'] != 'system' %}<{{ m['role'] }}>"
                              "{{ m['content'] }}{% endif %}{% endfor %}")
    assert supports_system_role(make_tokenizer(chat=True))
    assert not supports_system_role(raising) and not supports_system_role(dropping)
    user = [{"role": "user", "content": "q"}]
    rows, _ = reward_augment([pair(user)], tokenizer=raising)
    assert rows[0]["prompt"] == [{"role": "user", "content": GOAL_8 + "\n\nq"}]
    rows, _ = reward_augment([pair(user)], tokenizer=make_tokenizer(chat=True))
    assert rows[0]["prompt"][0] == {"role": "system", "content": GOAL_8}


def test_raw_scores_from_meta_rescaled_to_one_to_ten():
    """TRL row with UltraFeedback-style scores on 0–5: 4 → 1 + 9·4/5 = 8.2, 1.5 → 1 + 9·1.5/5 = 3.7."""
    records, _ = normalize_rows([{"prompt": "q", "chosen": "good", "rejected": "bad", "score_chosen": 4.0,
                                  "score_rejected": 1.5}], source="mem")
    rows, _ = reward_augment(records, source_scale=(0, 5))
    assert [r["meta"]["goal_score"] for r in rows] == [8.2, 3.7]
    assert rows[0]["prompt"] == goal_text(8.2) + "\n\nq" and rows[0]["responses"] == ["good", "bad"]
    assert rows[1]["prompt"].startswith(GOAL_8.replace("8.", "3.7.")) and rows[1]["responses"] == ["bad", "good"]
    assert rescale(0.0, (0, 1)) == 1.0 and rescale(1.0, (0, 1)) == 10.0 and rescale(1 / 3, (0, 1)) == 4.0


def test_chosen_is_the_higher_scored_response_and_segments_follow():
    record = pair("q", chosen="low", rejected="high", scores=(2.0, 9.0))
    record["segments"] = [[[0, 1]], [[1, 3]]]
    rows, _ = reward_augment([record])
    assert rows[0]["responses"] == ["high", "low"] and rows[0]["meta"]["goal_score"] == 9.0
    assert rows[0]["segments"] == [[[1, 3]], [[0, 1]]] and rows[1]["segments"] == [[[0, 1]], [[1, 3]]]


def test_ties_and_contradicting_raw_scores_are_dropped_and_counted():
    records = [pair("a", scores=(7.0, 7.0)),
               pair("b", scores=(1.0, 0.0), score_chosen=3.0, score_rejected=6.0),
               pair("c", scores=(1.0, 0.0), score_chosen=6.0, score_rejected=3.0)]
    rows, report = reward_augment(records)
    assert [r["prompt"][-1] for r in rows] == ["c", "c"]
    assert (report.rows, report.kept, report.dropped_ties, report.dropped) == (3, 2, 1, {"raw_scores_disagree": 1})


def test_tied_pairs_are_kept_as_the_authors_do():
    """keep_ties: a pair with equal overall scores (UltraFeedback, 7 vs 7) gives both goal-conditioned rows under the
    same goal, y_w ≻ y_l and y_l ≻ y_w (scripts/reward_augmentation.py: add_pos_goal and add_neg_goal filter
    nothing on the overall scores); both survive the round's validation."""
    tied = pair("t", scores=(1.0, 0.0), score_chosen=7.0, score_rejected=7.0)
    rows, report = reward_augment([tied, pair("c")], keep_ties=True)
    assert [(r["prompt"], r["responses"], r["meta"]["goal_score"]) for r in rows[:2]] == [
        (f"{goal_text(7.0)}\n\nt", ["good", "bad"], 7.0), (f"{goal_text(7.0)}\n\nt", ["bad", "good"], 7.0)]
    assert (report.rows, report.kept, report.dropped_ties) == (2, 4, 0)
    assert len(normalize_rows(rows, source="augmented")[0]) == 4
    _, report = reward_augment([tied, pair("c")])
    assert (report.kept, report.dropped_ties) == (2, 1)
    with pytest.raises(ValueError, match="keep_ties"):
        reward_augment([tied], keep_ties="yes")


def test_test_split_is_not_augmented():
    records = [pair("q")]
    rows, report = reward_augment(records, split="test")
    assert rows == records and rows[0] is not records[0] and report.kept == 1
    assert len(reward_augment(records, split="train_prefs")[0]) == 2


def test_bad_inputs_name_row_and_field():
    with pytest.raises(PreferenceDataError, match="row 0: field 'score_rejected' = 0.0 is not on the 1-10 scale"):
        reward_augment([pair("q", scores=(1.0, 0.0))])
    with pytest.raises(PreferenceDataError, match="row 0: field 'score_chosen' = 7.0 .*outside the source scale"):
        reward_augment([pair("q", scores=(7.0, 1.0))], source_scale=(0, 5))
    three = {**pair("q"), "responses": ["a", "b", "c"], "scores": [3.0, 2.0, 1.0]}
    with pytest.raises(PreferenceDataError, match="row 0: field 'responses' has 3 responses"):
        reward_augment([three])


def test_inference_conditions_on_the_top_score():
    goal_10 = GOAL_8.replace("score: 8.", "score: 10.")
    assert condition_on_top_score([{"role": "user", "content": "q"}]) == [
        {"role": "system", "content": goal_10}, {"role": "user", "content": "q"}]
    assert condition_on_top_score("q") == goal_10 + "\n\nq"
    assert condition_on_top_score([{"role": "user", "content": "q"}], system_role=False) == [
        {"role": "user", "content": goal_10 + "\n\nq"}]


def test_a_short_template_replaces_the_sentence_in_training_rows_and_at_inference():
    rows, _ = reward_augment([pair([{"role": "user", "content": "q"}], scores=(1.0, 0.25))], source_scale=(0, 1),
                             system_role=True, template="goal {score}")
    assert [r["prompt"][0] for r in rows] == [{"role": "system", "content": "goal 10"},
                                              {"role": "system", "content": "goal 3.2"}]
    assert condition_on_top_score("q", template="goal {score}") == "goal 10\n\nq"
    with pytest.raises(ValueError, match="must contain the field"):
        reward_augment([pair("q")], template="goal")
