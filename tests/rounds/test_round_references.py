"""What each round trains against and with: ``reference.per_round`` over 3 rounds, per-round learning rates, and
CREAM's base model M0 (``previous_model``) ranking round 0's samples as the authors' first DPO round does."""

from __future__ import annotations

import json

import pytest
import torch

import prefopt.run as run_module
from prefopt.config import learning_rates, load_config
from prefopt.rounds.consistency import consistency
from prefopt.rounds.judges import ImplicitRewardScorer
from prefopt.train import main
from tests.conftest import make_model, make_tokenizer


def weights(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.fixture
def three_rounds(tmp_path, model_dir):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"sort {a}{b}{c}"}) + "\n"
                               for a, b, c in ["321", "987", "514", "260", "873", "419"]))
    return [f"model={model_dir}", f"data.prompts={prompts}", "data.n_prompts=2",
            "reward=tests.rounds.test_rounds:digit_count", "rounds=3", "generation.k=3",
            "generation.max_new_tokens=4", "train.max_steps=2", "train.per_device_batch_size=2",
            "pairing.rule=all_pairs", f"output_dir={tmp_path / 'run'}"]


@pytest.mark.parametrize("per_round", [False, True])
def test_reference_of_each_round_over_three_rounds(three_rounds, monkeypatch, per_round):
    """per_round=false: rounds 0, 1 and 2 all train against the initial policy's weights; true: against the
    weights the round started from, which differ from the initial ones after round 0 trained."""
    seen, rates = [], []
    real_reference, real_arguments = run_module._reference, run_module.training_arguments

    def spy_reference(cfg, policy, features, collator, initial=None):
        ref, features = real_reference(cfg, policy, features, collator, initial)
        seen.append((weights(ref), weights(policy)))
        return ref, features

    def spy_arguments(cfg, out, index=0):
        args = real_arguments(cfg, out, index)
        rates.append(args.learning_rate)
        return args

    monkeypatch.setattr(run_module, "_reference", spy_reference)
    monkeypatch.setattr(run_module, "training_arguments", spy_arguments)
    assert main([*three_rounds, f"reference.per_round={str(per_round).lower()}",
                 "train.learning_rate=[0.01,0.005,0.0025]"]) == 0
    initial = weights(make_model())
    assert len(seen) == 3
    for index, (ref, start) in enumerate(seen):
        assert same(ref, initial) is (not per_round or index == 0)
        assert same(ref, start) is (per_round or index == 0)
    assert rates == [0.01, 0.005, 0.0025]


@pytest.mark.parametrize(("value", "match"), [("[0.1,0.2]", "2 values for 3 round"), ("[0.1,0,0.1]", r"\[1\] = 0"),
                                              ("-1", "learning_rate = -1")])
def test_bad_learning_rates_are_refused_at_load(value, match):
    with pytest.raises(ValueError, match=match):
        load_config(["rounds=3", f"train.learning_rate={value}"])
    assert learning_rates(load_config(["rounds=2", "train.learning_rate=0.5"])) == [0.5, 0.5]


def test_cream_round_0_ranks_against_the_base_model_m0(tmp_path, model_dir, monkeypatch):
    """previous_model = M0: round 0's self-reward is log π_M1(y|x) − log π_M0(y|x) (summed), and its consistency
    is Kendall's τ against M0's length-normalised likelihood ranking of the same K responses (Raibows/CREAM
    rewarding.py: --checkpoint sft --ref_model_ckpt none, then --checkpoint none --enable_ref no)."""
    m0 = tmp_path / "m0"
    make_model(seed=1).save_pretrained(m0)
    make_tokenizer().save_pretrained(m0)
    lists = []
    real = run_module.build_round_data

    def keep_lists(cfg, ctx, *, index, round_dir):
        data = real(cfg, ctx, index=index, round_dir=round_dir)
        lists.append(data.records)
        return data

    monkeypatch.setattr(run_module, "build_round_data", keep_lists)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"sort {n}"}) + "\n" for n in ["321", "987", "514"]))
    assert main([f"model={model_dir}", f"previous_model={m0}", f"data.prompts={prompts}", "data.n_prompts=3",
                 "scorer=implicit_reward", "pairing.rule=full_list", "weighting.type=cream_consistency",
                 "weighting.variant=ordinal", "loss.name=cream", "generation.k=4", "generation.max_new_tokens=5",
                 "train.max_steps=1", "train.per_device_batch_size=2", f"output_dir={tmp_path / 'run'}"]) == 0
    (records,) = lists
    tok = make_tokenizer()
    m1, base = make_model(), make_model(seed=1)
    prompts_, responses = [r["prompt"] for r in records], [r["responses"] for r in records]
    expected = ImplicitRewardScorer(m1, base, tok)(prompts_, responses)  # log π_M1 − log π_M0
    for r, e in zip(records, expected, strict=True):
        torch.testing.assert_close(r["scores"], e, rtol=1e-5, atol=1e-5)
    m0_likelihood = ImplicitRewardScorer(base, None, tok)(prompts_, responses)  # M0, length-normalised
    rates = consistency([r["scores"] for r in records], m0_likelihood, variant="ordinal")
    torch.testing.assert_close([r["weight"] for r in records], rates)
    assert any(w != 1.0 for w in rates)  # not the C = 1 a run without M0 would give
