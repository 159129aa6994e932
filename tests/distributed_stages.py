"""Every sharded stage's output, computed on however many processes launched this (tests/test_distributed_stages.py).

    accelerate launch --num_processes 2 ... tests/distributed_stages.py OUT.json    # rank 0 writes the outputs

Under 2 processes the accelerate primitives are checked too (order, uneven shares, an error on one process). The
test runs ``stage_outputs`` again in its own single process and compares the two, bit for bit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState

from prefopt.ches.score import score_records as ches_score_records
from prefopt.data.tokenize import as_chat
from prefopt.distributed import ShardError, main_value, shard_call, shard_map
from prefopt.rounds.evaluate import evaluate_reward
from prefopt.rounds.generate import sample_sharded
from prefopt.rounds.judges import ImplicitRewardScorer, LLMJudge, PairwiseJudgeScorer
from prefopt.rounds.scoring import RewardFnScorer, RewardModelScorer, score_records, shard_unit
from prefopt.seeds import prompt_seed
from prefopt.train import close_process_group
from prefopt.trainer import ListCollator, frozen_copy, list_features, precompute_ref_logps
from prefopt.world import load_base_policy, make_prompts, reward

N_PROMPTS = 40  # 3 chunks of 16 lists for the scorers, 20 generate calls: both processes get work


def check_primitives(state: PartialState) -> None:
    assert shard_map(lambda xs: [x * 2 for x in xs], range(5)) == [0, 2, 4, 6, 8]
    assert shard_map(lambda xs: [x + 1 for x in xs], [7]) == [8]  # fewer items than processes
    assert shard_map(lambda xs: [x * 3 for x in xs], range(7), unit=2) == [0, 3, 6, 9, 12, 15, 18]
    assert shard_call(lambda a, b: [x + y for x, y in zip(a, b, strict=True)], [1, 2], [10, 20]) == [11, 22]
    assert main_value(state.process_index) == 0
    try:
        shard_map(lambda xs: [1 // (state.process_index - 1) for _ in xs], range(4))  # fails on process 1 only
    except (ZeroDivisionError, ShardError) as err:
        assert type(err) is (ZeroDivisionError if state.process_index == 1 else ShardError), err
    else:
        raise AssertionError("an error on one process must raise on every process")


def _reward_model(vocab: int):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    return LlamaForSequenceClassification(LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                                                      num_hidden_layers=1, num_attention_heads=4,
                                                      num_key_value_heads=2, num_labels=1, pad_token_id=0))


def stage_outputs(cache_dir: Path) -> dict[str, Any]:
    """Generation, every scorer type, judge matrices, CHES, reference log-probs and the reward evaluation."""
    policy, tok = load_base_policy()
    prompts = as_chat(make_prompts(N_PROMPTS, seed=1, split="train"), tok, "auto", given=False)
    seeds = [prompt_seed(0, 3, i) for i in range(len(prompts))]
    lists = sample_sharded(policy, tok, prompts, seeds=seeds, k=3, max_new_tokens=8, batch_size=6, progress=False)
    records = [{"prompt": p, "responses": rs, "scores": [0.0] * len(rs)} for p, rs in zip(prompts, lists, strict=True)]
    other = frozen_copy(policy)
    weight = other.model.layers[0].mlp.up_proj.weight  # a reference unlike the policy, the same in every process
    weight.add_(0.05 * torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)))
    judge = PairwiseJudgeScorer(LLMJudge(policy, tok, template="{prompt} {a} {b}", labels=("1", "2")))
    scorers = {"reward function": RewardFnScorer(reward),
               "reward model": RewardModelScorer(_reward_model(len(tok)), tok),
               "LLM judge": judge,
               "implicit reward": ImplicitRewardScorer(policy, other, tok, batch_size=4),
               "implicit reward, round 0": ImplicitRewardScorer(policy, None, tok, batch_size=4)}
    out: dict[str, Any] = {"generation": lists}
    out.update({name: [r["scores"] for r in score_records(s, records)] for name, s in scorers.items()})
    out["judge matrices"] = shard_call(judge.matrices, prompts, lists, unit=shard_unit(judge))
    scored = [{**r, "scores": s} for r, s in zip(records, out["reward model"], strict=True) if max(s) > min(s)]
    out["CHES"] = ches_score_records(scored, policy, tok, batch_size=4).tolist()
    features = list_features(tok, prompts, lists)
    cached = precompute_ref_logps(other, features, ListCollator(pad_token_id=tok.pad_token_id), batch_size=4,
                                  cache_dir=cache_dir)
    out["reference log-probs"] = [f["ref_logps"] for f in cached]
    out["evaluation"] = evaluate_reward(policy, tok, prompts, reward, samples_per_prompt=2, max_new_tokens=8, seed=5,
                                        batch_size=8)
    return out


if __name__ == "__main__":
    torch.set_num_threads(1)
    state = PartialState(cpu=True)
    target = Path(sys.argv[1])
    check_primitives(state)
    outputs = stage_outputs(target.parent / "cache")
    if state.is_main_process:
        target.write_text(json.dumps({"processes": state.num_processes, "outputs": outputs}))
    close_process_group()
