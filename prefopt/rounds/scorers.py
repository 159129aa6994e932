"""The scorer factory: any scorer of the round pipeline built from a recipe entry (``scorer: ...``).

    make_scorer("prefopt.world.tasks:reward")                  a reward function (prompt: str, response: str)
    make_scorer({"type": "reward_model", "path": "my/rm"})      a sequence-classification reward model
    make_scorer("implicit_reward", policy=π, ref=π_ref, ...)    CREAM's self-reward

Each type is one entry of ``SCORERS``: its builder, required options, required live objects and its smoke
stand-in; nothing dispatches on a type name elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from prefopt.rounds.judges import ImplicitRewardScorer, LLMJudge, PairwiseJudgeScorer
from prefopt.rounds.labels import TRANSFORMS, with_transform
from prefopt.rounds.scoring import RewardFnScorer, RewardModelScorer, Scorer, resolve_import_path
from prefopt.world import standin


def _reward_fn(spec: dict, ctx: dict) -> Scorer:
    return RewardFnScorer(spec.pop("fn"), **spec)


def _process_device():
    """This process's device: under ``accelerate launch`` each process scores its share with its own copy there."""
    from accelerate import PartialState

    return PartialState().device


def _reward_model(spec: dict, ctx: dict) -> Scorer:
    scorer = RewardModelScorer(spec.pop("path"), spec.pop("tokenizer", None), **spec)
    scorer.model.to(_process_device())
    return scorer


def _llm_judge(spec: dict, ctx: dict) -> Scorer:

    model, baseline = spec.pop("model"), spec.pop("baseline", None)
    tokenizer = spec.pop("tokenizer", None)
    if model == "policy":
        model, tokenizer = ctx["policy"], tokenizer or ctx["tokenizer"]
    elif isinstance(model, str):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = tokenizer or AutoTokenizer.from_pretrained(model)
        model = AutoModelForCausalLM.from_pretrained(model).to(_process_device())
    return PairwiseJudgeScorer(LLMJudge(model, tokenizer, **spec), baseline=baseline)


def _pairwise_judge(spec: dict, ctx: dict) -> Scorer:
    """A judge given as an import path, ``fn(prompt, a, b) -> P(a ≻ b)`` (a rule, an API client, a stand-in)."""

    return PairwiseJudgeScorer(resolve_import_path(spec.pop("fn")), **spec)


def _self_preference(spec: dict, ctx: dict) -> Scorer:
    """OSP's self-preferring: the policy is its own pairwise judge (Zhai et al., 2024, arXiv 2405.14103)."""

    baseline = spec.pop("baseline", None)
    return PairwiseJudgeScorer(LLMJudge(ctx["policy"], ctx["tokenizer"], **spec), baseline=baseline)


def _implicit_reward(spec: dict, ctx: dict) -> Scorer:

    return ImplicitRewardScorer(ctx["policy"], ctx["ref"], ctx["tokenizer"], **spec)


# Smoke stand-ins (``smoke=true``): spec → the spec a smoke run uses. Hub models and users' modules become a
# scorer of the same kind over the tiny world's reward; prefopt's own functions and the policy's own judges stay.


def _in_package(spec: dict) -> bool:
    """Whether the spec's import path is prefopt's own (offline, and made for world prompts)."""
    return str(spec.get("fn", "")).startswith("prefopt.")


def _same(spec: dict) -> Any:
    return spec


def _world_reward(spec: dict) -> Any:
    return spec if _in_package(spec) else standin.REWARD


def _world_judge(spec: dict) -> Any:
    # still a pairwise judge: strength pairing reads its preference matrices
    return spec if _in_package(spec) else {"type": "pairwise_judge", "fn": standin.JUDGE}


def _world_labels(spec: dict) -> Any:
    return {**spec, "labels": ["1", "2"]}  # verdict labels the world's character tokenizer knows (no capitals)


def _llm_judge_smoke(spec: dict) -> Any:
    if spec.get("model") == "policy":
        return _world_labels(spec)
    return {"type": "pairwise_judge", "fn": standin.JUDGE}


class ScorerType(NamedTuple):
    build: Callable[[dict, dict], Scorer]  # (options, live objects) -> scorer
    keys: tuple[str, ...]  # required options
    needs: tuple[str, ...]  # required live objects (policy, ref, tokenizer)
    smoke: Callable[[dict], Any]  # spec (with its "type") -> the spec a smoke run uses instead


SCORERS: dict[str, ScorerType] = {
    "reward_fn": ScorerType(_reward_fn, ("fn",), (), _world_reward),
    "reward_model": ScorerType(_reward_model, ("path",), (), lambda spec: standin.REWARD),
    "llm_judge": ScorerType(_llm_judge, ("model",), (), _llm_judge_smoke),
    "pairwise_judge": ScorerType(_pairwise_judge, ("fn",), (), _world_judge),
    "self_preference": ScorerType(_self_preference, (), ("policy", "tokenizer"), _world_labels),
    "implicit_reward": ScorerType(_implicit_reward, (), ("policy", "tokenizer"), _same),
}


def scorer_spec(spec) -> dict:
    """A recipe's scorer entry as ``{"type": NAME, ...options}`` with NAME a key of ``SCORERS``."""
    if isinstance(spec, str):
        spec = {"type": "reward_fn", "fn": spec} if ":" in spec else {"type": spec}
    if not isinstance(spec, Mapping):
        raise TypeError(f"scorer spec must be a string, a mapping or a scorer, got {type(spec).__name__}")
    spec = dict(spec)
    if spec.get("type") not in SCORERS:
        raise ValueError(f"unknown scorer type {spec.get('type')!r}; valid types: {', '.join(sorted(SCORERS))} "
                         "(or 'pkg.module:function')")
    return spec


def smoke_scorer(spec) -> Any:
    """The scorer spec a smoke run uses in place of ``spec`` (its type's ``smoke`` stand-in); None stays None."""
    if spec is None:
        return None
    spec = scorer_spec(spec)
    smoke = SCORERS[spec["type"]].smoke(spec)
    kept = {k: spec[k] for k in ("transform", "baseline") if k in spec}  # how scores are made, not what makes them
    if not kept:
        return smoke
    return {**(scorer_spec(smoke)), **kept}


def make_scorer(spec, *, policy=None, ref=None, tokenizer=None, reward_timeout_s: float | None = None) -> Scorer:
    """Build a scorer from a recipe entry.

    Args:
        spec: ``"pkg.module:function"`` (a reward function); a type name alone (``"implicit_reward"``,
            ``"self_preference"``); a mapping ``{"type": NAME, ...options}`` with NAME one of ``SCORERS``
            (``reward_fn``: ``fn``; ``reward_model``: ``path``, ``batch_size``, ``max_length``; ``llm_judge``:
            ``model`` (a path, or ``"policy"``), ``template``, ``labels``, ``batch_size``; the pairwise judges
            also ``baseline``: compare each response with that one only, OSP's n calls per list); or a scorer
            object, returned as is. Any type also takes ``transform``: a key of
            ``prefopt.rounds.labels.TRANSFORMS`` applied to its output (``mean_win_probability``: LiPO's labels).
        policy, ref, tokenizer: the live models the self-judging scorers use (``ref=None``: round 0, no
            reference yet, CREAM's length-normalised likelihood).
        reward_timeout_s: a reward function's time limit per call (the run's ``reward_timeout_s``).
    """
    if callable(spec) and not isinstance(spec, (str, Mapping)):
        return spec
    spec = scorer_spec(spec)
    kind, transform = spec.pop("type"), spec.pop("transform", "none")
    if kind == "reward_fn" and reward_timeout_s:
        spec.setdefault("timeout_s", reward_timeout_s)
    if transform not in TRANSFORMS:  # checked before a judge or reward model is loaded
        raise ValueError(f"unknown scorer transform {transform!r}; valid: {', '.join(sorted(TRANSFORMS))}")
    builder, keys, needs, _ = SCORERS[kind]
    missing = [k for k in keys if k not in spec]
    if missing:
        raise ValueError(f"scorer type {kind!r} needs option(s) {', '.join(missing)}")
    ctx = {"policy": policy, "ref": ref, "tokenizer": tokenizer}
    absent = [n for n in needs if ctx[n] is None]
    if absent:
        raise ValueError(f"scorer type {kind!r} needs the live {' and '.join(absent)} (pass them to make_scorer)")
    try:
        return with_transform(builder(spec, ctx), transform)
    except TypeError as err:
        if "unexpected keyword" not in str(err):
            raise
        raise ValueError(f"scorer type {kind!r}: unknown option among {sorted(spec)} ({err})") from err
