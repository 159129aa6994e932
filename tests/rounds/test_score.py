"""Scorers: reward functions by import path, reward models (batched = one at a time), the make_scorer factory."""

from __future__ import annotations

import math
import sys
import textwrap

import pytest
import torch
from transformers import AutoModelForSequenceClassification, LlamaConfig

from prefopt.rounds.scorers import make_scorer
from prefopt.rounds.scoring import (
    RewardFnScorer,
    RewardModelScorer,
    Scorer,
    ScoringError,
    resolve_import_path,
    score_records,
)

REWARDS = '''
def length(prompt, response):
    return float(len(prompt) + 10 * len(response))

def echo(prompt, response):
    return f"{prompt}|{response}"

def nan_on_b(prompt, response):
    return math.nan if response == "b" else 1.0

def passed(prompt, response):
    return response == "ok"

class Holder:
    @staticmethod
    def first_char(prompt, response):
        return float(ord(response[0]))

NOT_CALLABLE = 3
'''


@pytest.fixture
def rewards_module(tmp_path, monkeypatch):
    """A throwaway module ``prefopt_test_rewards`` importable by path string."""
    (tmp_path / "prefopt_test_rewards.py").write_text("import math\n" + textwrap.dedent(REWARDS))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "prefopt_test_rewards"
    sys.modules.pop("prefopt_test_rewards", None)


def test_import_path_resolves_functions_and_dotted_attributes(rewards_module):
    assert resolve_import_path(f"{rewards_module}:length")("ab", "c") == 12.0
    assert resolve_import_path(f"{rewards_module}:Holder.first_char")("", "a") == 97.0


@pytest.mark.parametrize("path, error, words", [
    ("no_colon_here", ValueError, "package.module:function"),
    ("a:b:c", ValueError, "package.module:function"),
    (":fn", ValueError, "package.module:function"),
    ("prefopt_no_such_module:fn", ImportError, "cannot import module"),
    ("{mod}:missing", ImportError, "no attribute 'missing'"),
    ("{mod}:NOT_CALLABLE", TypeError, "not callable"),
])
def test_import_path_errors_say_what_is_wrong(rewards_module, path, error, words):
    with pytest.raises(error, match=words):
        resolve_import_path(path.format(mod=rewards_module))


def test_reward_fn_scores_text_and_chat_alike():
    seen = []
    scorer = RewardFnScorer(lambda p, r: seen.append((p, r)) or 0.0)  # records what the function receives
    chat_prompt = [{"role": "system", "content": "sys"}, {"role": "user", "content": "first"},
                   {"role": "assistant", "content": "mid"}, {"role": "user", "content": "last"}]
    chat_response = [{"role": "assistant", "content": "answer"}]
    assert scorer(["plain", chat_prompt], [["x"], [chat_response, "y"]]) == [[0.0], [0.0, 0.0]]
    assert seen == [("plain", "x"), ("last", "answer"), ("last", "y")]


def test_reward_fn_values_and_bool_rewards(rewards_module):
    assert RewardFnScorer(f"{rewards_module}:length")(["ab", "c"], [["x", "yz"], ["w"]]) == [[12.0, 22.0], [11.0]]
    assert RewardFnScorer(f"{rewards_module}:passed")(["p"], [["ok", "no"]]) == [[1.0, 0.0]]
    assert isinstance(RewardFnScorer(f"{rewards_module}:length"), Scorer)


def test_reward_fn_world_task_by_import_path():
    pytest.importorskip("prefopt.world.tasks")
    scorer = make_scorer("prefopt.world.tasks:reward")
    chat = [{"role": "user", "content": "sort 52813"}]
    assert scorer(["sort 52813", chat], [["12358", "12359"], [[{"role": "assistant", "content": "1235"}]]]) == [
        [1.0, pytest.approx(0.8)], [pytest.approx(0.8)]]


def test_reward_fn_non_finite_or_non_numeric_names_prompt_and_response(rewards_module):
    with pytest.raises(ScoringError, match=r"prompt 1 \('q'\), response 2"):
        RewardFnScorer(f"{rewards_module}:nan_on_b")(["p", "q"], [["a"], ["a", "a", "b"]])
    with pytest.raises(ScoringError, match=r"prompt 0 \('p'\), response 0.*expected a finite number"):
        RewardFnScorer(f"{rewards_module}:echo")(["p"], [["a"]])
    with pytest.raises(ScoringError, match="2 prompts but 1 response lists"):
        RewardFnScorer(f"{rewards_module}:length")(["p", "q"], [["a"]])


def test_score_records_writes_scores_and_keeps_the_rest(rewards_module):
    records = [{"prompt": "ab", "responses": ["x", "yz"], "scores": [0.0, 0.0], "weight": 0.5, "segments": None,
                "meta": {"round": 1}}]
    out = score_records(RewardFnScorer(f"{rewards_module}:length"), records)
    assert out[0]["scores"] == [12.0, 22.0] and out[0]["weight"] == 0.5
    assert out[0]["meta"] == {"round": 1, "scorer": "RewardFnScorer"}
    assert records[0]["scores"] == [0.0, 0.0]  # input untouched


# ---------------------------------------------------------------------------------------------------------------
# reward model


def _reward_model(vocab_size: int = 48):
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, num_labels=1, pad_token_id=0)
    return AutoModelForSequenceClassification.from_config(config)


@pytest.mark.parametrize("chat", [False, True])
def test_reward_model_batched_equals_one_at_a_time(tokenizer, chat_tokenizer, chat):
    tok = chat_tokenizer if chat else tokenizer
    model = _reward_model()
    prompts = ["sort 312", "add 1 2", "x"]
    lists = [["123", "321 and a much longer answer", "1"], ["3", "three"], ["a", "bb", "ccc", "dddd"]]
    batched = RewardModelScorer(model, tok, batch_size=4)(prompts, lists)
    single = RewardModelScorer(model, tok, batch_size=1)(prompts, lists)
    assert [len(r) for r in batched] == [3, 2, 4]
    torch.testing.assert_close(torch.tensor(sum(batched, [])), torch.tensor(sum(single, [])), atol=1e-5, rtol=0)
    assert len(set(sum(batched, []))) == 9  # responses really get different scores


def test_reward_model_scores_the_rendered_conversation(chat_tokenizer):
    """Direct computation: the chat template renders user turn + assistant turn; the head reads the last token."""
    model = _reward_model().eval()
    scorer = RewardModelScorer(model, chat_tokenizer)
    text = chat_tokenizer.apply_chat_template([{"role": "user", "content": "add 1 2"},
                                               {"role": "assistant", "content": "3"}], tokenize=False)
    ids = torch.tensor([chat_tokenizer(text, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        expected = model(input_ids=ids).logits[0, 0].item()
    assert scorer(["add 1 2"], [["3"]])[0][0] == pytest.approx(expected, abs=1e-6)
    assert model.training is False


def test_reward_model_rejects_chat_data_without_template_and_multi_label(tokenizer):
    scorer = RewardModelScorer(_reward_model(), tokenizer)
    with pytest.raises(ValueError, match="no chat template"):
        scorer([[{"role": "user", "content": "hi"}]], [["a"]])
    config = LlamaConfig(vocab_size=48, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2, num_labels=2, pad_token_id=0)
    with pytest.raises(ValueError, match="num_labels=1"):
        RewardModelScorer(AutoModelForSequenceClassification.from_config(config), tokenizer)


# ---------------------------------------------------------------------------------------------------------------
# factory


def test_make_scorer_from_strings_mappings_and_objects(rewards_module, tokenizer):
    path = f"{rewards_module}:length"
    assert make_scorer(path)(["ab"], [["x"]]) == [[12.0]]
    assert make_scorer({"type": "reward_fn", "fn": path})(["ab"], [["x"]]) == [[12.0]]
    scorer = RewardFnScorer(path)
    assert make_scorer(scorer) is scorer
    rm = make_scorer({"type": "reward_model", "path": _reward_model(), "tokenizer": tokenizer, "batch_size": 2})
    assert isinstance(rm, RewardModelScorer) and rm.batch_size == 2


def test_make_scorer_errors_list_valid_types_and_missing_pieces(rewards_module):
    with pytest.raises(ValueError, match="valid types: implicit_reward, llm_judge, pairwise_judge, "
                                         "reward_fn, reward_model, self_preference"):
        make_scorer({"type": "oracle"})
    with pytest.raises(ValueError, match="unknown scorer type 'nonsense'"):
        make_scorer("nonsense")
    with pytest.raises(ValueError, match="needs option\\(s\\) path"):
        make_scorer({"type": "reward_model"})
    with pytest.raises(ValueError, match="needs the live policy and tokenizer"):
        make_scorer("implicit_reward")
    with pytest.raises(ValueError, match="unknown option"):
        make_scorer({"type": "reward_fn", "fn": f"{rewards_module}:length", "temperature": 2})
    with pytest.raises(TypeError, match="string, a mapping or a scorer"):
        make_scorer(3)


def test_make_scorer_builds_self_judges(tiny_model, chat_tokenizer):
    from prefopt.rounds.judges import ImplicitRewardScorer, LLMJudge, PairwiseJudgeScorer

    implicit = make_scorer("implicit_reward", policy=tiny_model, tokenizer=chat_tokenizer)
    assert isinstance(implicit, ImplicitRewardScorer) and implicit.ref is None
    judge = make_scorer({"type": "self_preference", "labels": ["1", "2"]}, policy=tiny_model,
                        tokenizer=chat_tokenizer)
    assert isinstance(judge, PairwiseJudgeScorer) and isinstance(judge.judge, LLMJudge)
    assert judge.judge.model is tiny_model
    scores = judge(["add 1 2"], [["3", "4", "5"]])
    assert math.isclose(sum(scores[0]), 1.5, abs_tol=1e-6)  # win rates of K responses sum to K/2
    llm = make_scorer({"type": "llm_judge", "model": "policy", "labels": ["1", "2"]}, policy=tiny_model,
                      tokenizer=chat_tokenizer)
    assert llm(["add 1 2"], [["3", "4", "5"]])[0] == pytest.approx(scores[0], abs=1e-6)


def test_pairwise_judge_from_an_import_path_gives_win_rates():
    """World judge P(a ≻ b) = σ((r(a) − r(b)) / 0.1); rewards for 'sort 321': '123' → 1, '132' → 1/3 (two
    substitutions over three characters); win rate of '123' = P('123' ≻ '132') = σ(6.67) ≈ 0.99873."""
    scorer = make_scorer({"type": "pairwise_judge", "fn": "prefopt.world.judge:judge"})
    [[w_best, w_other]] = scorer(["sort 321"], [["123", "132"]])
    assert w_best == pytest.approx(1 / (1 + math.exp(-(2 / 3) / 0.1)), abs=1e-9)
    assert w_best + w_other == pytest.approx(1.0)
