"""The positive controls the claims share: each shows the world can express a claim's mechanism, with numbers.

A control is ``core.Control(text, measure, passed, after_tuning)``; ``measure(ctx)`` gets a ``protocol.Context``
(the tuning seeds, and after tuning each arm's chosen point, per-seed metrics and run folders). The thresholds
below are fixed with the protocol, before any v2 run.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from benchmarks.claims.core import MARGINS, Control
from benchmarks.claims.stats import interval

HARM_FLOOR = 0.02  # a harm rate "well above the floor": 20 in 1,000 samples (v1's arms sat at 1-4 in 1,024)
GRADED_LEVELS = 3.0  # a list carries more than a pair when it holds at least 3 distinct rewards on average


def _records(folder: Path, round_index: int = 0) -> list[dict]:
    path = folder / f"round_{round_index}" / "data.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _world_reward(record: dict, response) -> float:
    from prefopt.world.tasks import reward

    return reward(record["prompt"], response if isinstance(response, str) else response[-1]["content"])


def pair_signal(arm: str, round_index: int = 0, by_world_reward: bool = False) -> Control:
    """The arm's training pairs carry a preference: the chosen response's world reward beats the rejected one's.

    Per tuning seed, the mean over the arm's round-``round_index`` records of reward(best) − reward(worst), best and
    worst by the record's scores (read again with the world reward when the scores are a judge's).
    """

    def measure(ctx) -> dict:
        gaps = []
        for seed in ctx.seeds:
            per_record = []
            for r in _records(ctx.folders[arm][seed], round_index):
                hi, lo = r["scores"].index(max(r["scores"])), r["scores"].index(min(r["scores"]))
                if by_world_reward:
                    per_record.append(_world_reward(r, r["responses"][hi]) - _world_reward(r, r["responses"][lo]))
                else:
                    per_record.append(r["scores"][hi] - r["scores"][lo])
            gaps.append(statistics.fmean(per_record))
        return {"gap": interval(gaps), "per_seed": gaps}

    where = f"round {round_index + 1}'s" if round_index else "its"
    return Control(f"{arm}'s pairs in {where} data carry a preference: mean world-reward gap chosen − rejected "
                   f"over the tuning seeds, interval above the reward margin {MARGINS['reward']}", measure,
                   lambda n: n["gap"]["low"] > MARGINS["reward"], after_tuning=True)


def graded_lists(arm: str) -> Control:
    """The arm's lists are graded: on average at least ``GRADED_LEVELS`` distinct rewards per list."""

    def measure(ctx) -> dict:
        levels = [statistics.fmean(len(set(r["scores"])) for r in _records(ctx.folders[arm][s])) for s in ctx.seeds]
        return {"levels": interval(levels), "per_seed": levels}

    return Control(f"{arm}'s K-sample lists are graded: at least {GRADED_LEVELS:g} distinct rewards per list on "
                   "average (a list holds more than one pair's information)", measure,
                   lambda n: n["levels"]["mean"] >= GRADED_LEVELS, after_tuning=True)


def metric_above(arm: str, metric: str, threshold: float, text: str) -> Control:
    """The arm's ``metric`` at its chosen point, over the tuning seeds: interval (or mean, see ``text``) check."""

    def measure(ctx) -> dict:
        values = [ctx.tuning[arm]["per_seed"][s][metric] for s in ctx.seeds]
        return {metric: interval(values), "per_seed": values, "threshold": threshold}

    return Control(text, measure, lambda n: n[metric]["low"] > threshold, after_tuning=True)


def metric_below(arm: str, metric: str, threshold: float, text: str) -> Control:
    def measure(ctx) -> dict:
        values = [ctx.tuning[arm]["per_seed"][s][metric] for s in ctx.seeds]
        return {metric: interval(values), "per_seed": values, "threshold": threshold}

    return Control(text, measure, lambda n: n[metric]["high"] < threshold, after_tuning=True)


def _self_judge_numbers(ctx) -> dict:
    """Per tuning seed, on the base policy's own K = 4 samples of that seed's first-round train prompts: the
    correlation of the self-biased judge's error with the base's likelihood, and the true-reward gap of the judge's
    best-vs-worst pairs."""
    from prefopt.rounds.generate import sample
    from prefopt.seeds import round_seed
    from prefopt.world import load_base_policy, make_prompts
    from prefopt.world.noisy import base_loglik, self_biased_reward
    from prefopt.world.tasks import MAX_NEW_TOKENS, reward

    model, tokenizer = load_base_policy()
    corr, gap = [], []
    for seed in ctx.seeds:
        prompts = make_prompts(ctx.size.pick(256, 8), seed=round_seed(seed, 0), split="train")
        lists = sample(model, tokenizer, [[{"role": "user", "content": p}] for p in prompts], k=4,
                       max_new_tokens=MAX_NEW_TOKENS, seed=seed, progress=False)
        errors, likes, gaps = [], [], []
        for prompt, responses in zip(prompts, lists, strict=True):
            judged = [self_biased_reward(prompt, y) for y in responses]
            true = [reward(prompt, y) for y in responses]
            errors += [j - t for j, t in zip(judged, true, strict=True)]
            likes += [base_loglik(prompt, y) for y in responses]
            gaps.append(true[judged.index(max(judged))] - true[judged.index(min(judged))])
        corr.append(statistics.correlation(errors, likes))
        gap.append(statistics.fmean(gaps))
    return {"error_likelihood_corr": interval(corr), "judged_pair_gap": interval(gap), "per_seed_corr": corr,
            "per_seed_gap": gap}


SELF_CORR = 0.3  # the judge's error must correlate with the policy's own likelihood at least this much

SELF_JUDGE = Control(
    f"the self-biased judge errs with the policy: correlation of its error with the base policy's own per-token "
    f"likelihood, interval above {SELF_CORR}; and it still informs: the world-reward gap of its best-vs-worst "
    f"pairs, interval above the reward margin {MARGINS['reward']}", _self_judge_numbers,
    lambda n: n["error_likelihood_corr"]["low"] > SELF_CORR and n["judged_pair_gap"]["low"] > MARGINS["reward"])
