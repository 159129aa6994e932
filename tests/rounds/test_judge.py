"""Judges: win rates from a stub oracle with known probabilities, position-bias averaging, the LLM judge, the
policy as its own judge, and CREAM's implicit reward against a direct log-prob computation."""

from __future__ import annotations

import pytest
import torch

from prefopt.data.tokenize import tokenize_list
from prefopt.rounds.judges import (
    ImplicitRewardScorer,
    LLMJudge,
    PairwiseJudgeScorer,
    debiased_matrix,
)
from prefopt.rounds.scoring import ScoringError
from tests.conftest import make_model

# p(a, b) as the stub judge reports it, presentation order included
TABLE = {("x", "y"): 0.9, ("y", "x"): 0.3,
         ("x", "z"): 0.6, ("z", "x"): 0.6,
         ("y", "z"): 0.2, ("z", "y"): 0.4,
         ("x", "g"): 0.1, ("g", "x"): 0.7,
         ("y", "g"): 0.0, ("g", "y"): 1.0,
         ("z", "g"): 0.5, ("g", "z"): 0.5}


class StubJudge:
    def __init__(self, table=TABLE):
        self.table, self.calls = table, []

    def __call__(self, prompt, a, b):
        self.calls.append((prompt, a, b))
        return self.table[(a, b)]


def test_win_rates_from_known_probabilities():
    """P(u≻v) = (p(u,v) + 1 − p(v,u)) / 2:
        P(x≻y) = (0.9 + 0.7)/2 = 0.8    P(x≻z) = (0.6 + 0.4)/2 = 0.5    P(y≻z) = (0.2 + 0.6)/2 = 0.4
    win(x) = (0.8 + 0.5)/2 = 0.65,  win(y) = (0.2 + 0.4)/2 = 0.30,  win(z) = (0.5 + 0.6)/2 = 0.55
    """
    judge = StubJudge()
    scores = PairwiseJudgeScorer(judge)(["q"], [["x", "y", "z"]])
    assert scores[0] == pytest.approx([0.65, 0.30, 0.55])
    assert len(judge.calls) == 6 and {c[0] for c in judge.calls} == {"q"}  # K(K−1): both orders of every pair


def test_gold_response_joins_as_an_opponent():
    """With gold g: P(x≻g) = (0.1 + 0.3)/2 = 0.2, P(y≻g) = 0, P(z≻g) = 0.5;
    win(x) = (0.8 + 0.5 + 0.2)/3 = 0.5,  win(y) = (0.2 + 0.4 + 0)/3 = 0.2,  win(z) = (0.5 + 0.6 + 0.5)/3 = 0.5333…
    """
    judge = StubJudge()
    scorer = PairwiseJudgeScorer(judge)
    assert scorer(["q"], [["x", "y", "z"]], gold=["g"])[0] == pytest.approx([0.5, 0.2, 1.6 / 3])
    assert len(judge.calls) == 12
    matrix = scorer.matrices(["q"], [["x", "y", "z"]], gold=["g"])[0]
    assert len(matrix) == 4 and matrix[3][0] == pytest.approx(0.8)  # P(g≻x), gold last
    # one candidate plus the gold is enough for a win rate
    assert scorer(["q"], [["x"]], gold=["g"]) == [[pytest.approx(0.2)]]


def test_position_bias_is_averaged_away():
    """A judge that answers 0.7 for whoever is shown first: p(u,v) = p(v,u) = 0.7 ⇒ P(u≻v) = (0.7 + 0.3)/2."""
    scores = PairwiseJudgeScorer(lambda prompt, a, b: 0.7)(["q", "r"], [["a", "b", "c"], ["d", "e"]])
    assert scores == [[0.5, 0.5, 0.5], [0.5, 0.5]]
    m = debiased_matrix([[0.5, 0.9, 0.2], [0.4, 0.5, 0.6], [0.3, 0.1, 0.5]])
    for u in range(3):
        for v in range(3):
            assert m[u][v] + m[v][u] == pytest.approx(1.0)


def test_batched_judges_are_called_once_per_scorer_call():
    class Batched(StubJudge):
        def batch(self, triples):
            self.calls.append(len(triples))
            return [self.table[(a, b)] for _, a, b in triples]

    judge = Batched()
    scores = PairwiseJudgeScorer(judge)(["q", "q"], [["x", "y", "z"], ["x", "y"]])
    assert judge.calls == [8] and scores[0] == pytest.approx([0.65, 0.30, 0.55])
    assert scores[1] == pytest.approx([0.8, 0.2])


def test_judge_errors_name_prompt_and_pair():
    with pytest.raises(ScoringError, match=r"prompt 1, pair \(0, 1\).*\[0, 1\]"):
        PairwiseJudgeScorer(lambda p, a, b: 0.5 if p == "ok" else 1.5)(["ok", "bad"], [["a", "b"], ["c", "d"]])
    with pytest.raises(ScoringError, match=r"pair \(gold, 0\)"):
        PairwiseJudgeScorer(lambda p, a, b: float("nan") if a == "g" else 0.5)(["q"], [["a"]], gold=["g"])
    with pytest.raises(ScoringError, match="at least two"):
        PairwiseJudgeScorer(StubJudge())(["q"], [["x"]])


# ---------------------------------------------------------------------------------------------------------------
# LLM judge on a tiny model


@pytest.mark.parametrize("chat", [False, True])
def test_llm_judge_reads_the_verdict_tokens(tiny_model, tokenizer, chat_tokenizer, chat):
    """Direct computation: the next-token logits after the context, softmax over the two verdict tokens."""
    tok = chat_tokenizer if chat else tokenizer
    judge = LLMJudge(tiny_model, tok, labels=("1", "2"))
    context, id_a, id_b = judge.encode("add 1 2", "3", "4")
    assert (id_a, id_b) == tuple(tok.convert_tokens_to_ids(["1", "2"]))
    if chat:
        assert "".join(tok.convert_ids_to_tokens(context)).endswith("<assistant>")
    with torch.no_grad():
        logits = tiny_model.eval()(input_ids=torch.tensor([context])).logits[0, -1]
    expected = logits[[id_a, id_b]].softmax(-1)[0].item()
    assert judge("add 1 2", "3", "4") == pytest.approx(expected, abs=1e-6)


def test_llm_judge_batched_equals_one_at_a_time(tiny_model, chat_tokenizer):
    judge = LLMJudge(tiny_model, chat_tokenizer, labels=("1", "2"), batch_size=3)
    triples = [("add 1 2", "3", "4"), ("sort 312", "123", "a much longer answer"), ("x", "y", "z"),
               ("count to five", "1 2 3 4 5", "5")]
    batched = judge.batch(triples)
    single = [judge(*t) for t in triples]
    torch.testing.assert_close(torch.tensor(batched), torch.tensor(single), atol=1e-5, rtol=0)
    assert len(set(batched)) == 4


def test_llm_judge_pairs_of_one_list_share_their_context_start(tiny_model, chat_tokenizer):
    """The 6 ordered pairs of a 3-response list (one prompt) go in packed rows of 4 and 2, the template and the
    prompt encoded once per row: each equals the direct next-token computation on its own full context."""
    judge = LLMJudge(tiny_model, chat_tokenizer, labels=("1", "2"), batch_size=4)
    responses = ["3", "4", "five"]
    triples = [("add 1 2", a, b) for a in responses for b in responses if a != b]
    expected = []
    for t in triples:
        context, id_a, id_b = judge.encode(*t)
        with torch.no_grad():
            logits = tiny_model.eval()(input_ids=torch.tensor([context])).logits[0, -1]
        expected.append(logits[[id_a, id_b]].softmax(-1)[0].item())
    torch.testing.assert_close(torch.tensor(judge.batch(triples)), torch.tensor(expected), atol=1e-5, rtol=0)


def test_llm_judge_refuses_labels_that_share_a_token(tiny_model, tokenizer):
    judge = LLMJudge(tiny_model, tokenizer)  # the test vocabulary has no capitals: "A" and "B" are both <pad>
    with pytest.raises(ValueError, match="two different known tokens"):
        judge("q", "a", "b")
    with pytest.raises(ValueError, match="different first characters"):
        LLMJudge(tiny_model, tokenizer, labels=("10", "12"))


def test_self_preference_judge_is_the_policy_judging(tiny_model, chat_tokenizer):
    own = PairwiseJudgeScorer(LLMJudge(tiny_model, chat_tokenizer, labels=("1", "2")))
    same = PairwiseJudgeScorer(LLMJudge(tiny_model, chat_tokenizer, labels=("1", "2")))
    lists = [["3", "4", "five"]]
    assert own(["add 1 2"], lists) == same(["add 1 2"], lists)
    assert sum(own(["add 1 2"], lists)[0]) == pytest.approx(1.5)


# ---------------------------------------------------------------------------------------------------------------
# implicit reward


def _direct_logps(model, tok, prompt, responses, average=False):
    """Reference computation: one unpadded forward per response, log-softmax gathered at the response tokens."""
    tl = tokenize_list(tok, prompt, responses)
    out = []
    for r in tl.response_ids:
        ids = torch.tensor([tl.prompt_ids + r])
        with torch.no_grad():
            logp = model.eval()(input_ids=ids).logits[0, :-1].log_softmax(-1)
        token = logp[torch.arange(len(tl.prompt_ids) - 1, ids.shape[1] - 1), torch.tensor(r)]
        out.append((token.mean() if average else token.sum()).item())
    return out


@pytest.mark.parametrize("chat", [False, True])
def test_implicit_reward_is_policy_minus_reference(chat, tokenizer, chat_tokenizer):
    tok = chat_tokenizer if chat else tokenizer
    policy, ref = make_model(seed=0), make_model(seed=1)
    prompts, lists = ["add 1 2", "sort 31"], [["3", "three"], ["13", "31", "1 3"]]
    got = ImplicitRewardScorer(policy, ref, tok, batch_size=1)(prompts, lists)
    for p, rs, row in zip(prompts, lists, got, strict=True):
        expected = [a - b for a, b in zip(_direct_logps(policy, tok, p, rs), _direct_logps(ref, tok, p, rs),
                                          strict=True)]
        assert row == pytest.approx(expected, abs=1e-4)
    assert ImplicitRewardScorer(policy, ref, tok, batch_size=8)(prompts, lists)[1] == pytest.approx(got[1], abs=1e-5)


def test_implicit_reward_round_zero_is_mean_token_logprob(tiny_model, chat_tokenizer):
    prompts, lists = ["add 1 2", "sort 31"], [["3", "three"], ["13", "31", "1 3"]]
    got = ImplicitRewardScorer(tiny_model, None, chat_tokenizer)(prompts, lists)
    for p, rs, row in zip(prompts, lists, got, strict=True):
        assert row == pytest.approx(_direct_logps(tiny_model, chat_tokenizer, p, rs, average=True), abs=1e-5)
