"""One round's training data: read or self-generate, score, pair, weight, filter, tokenize; saved atomically.

A round's records are written to ``round_k/data.jsonl`` (write then rename) before training starts; a resumed run
reads them back and never regenerates a finished round's data.

Under ``accelerate launch`` every process runs this together: the model stages inside (sampling, scoring, judging,
CHES) each take a share of the prompts (``prefopt.distributed``) and gather the results, the main process alone
writes the file, and every process then holds the main process's records. Each prompt samples from its own seed,
``prefopt.seeds.prompt_seed(train.seed, round, prompt index)``, so the data is the same on any number of processes.
"""

from __future__ import annotations

import functools
import inspect
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from losses import get_loss
from prefopt.data.features import tokenize_records
from prefopt.data.records import PreferenceDataError, load_prompts, normalize_rows, prompt_key
from prefopt.data.sources import load_data
from prefopt.data.tokenize import as_chat, chat_records
from prefopt.distributed import is_main_process, main_value, shard_call
from prefopt.rounds import pairing
from prefopt.rounds.evaluate import held_out_keys, prompt_token_cap, reward_spec
from prefopt.rounds.scorers import make_scorer
from prefopt.rounds.scoring import score_records, shard_unit
from prefopt.rounds.weighting import RoundContext, apply_weighting
from prefopt.run_folder import RoundPaths, RunFolder
from prefopt.seeds import prompt_seed, replay_seed, round_seed
from prefopt.stages import stage
from prefopt.world.worlds import resolve, world_of, world_prompts


@dataclass
class RoundData:
    records: list[dict[str, Any]]
    features: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, round_dir: Path) -> RoundData:
        path = RoundPaths(round_dir).data
        return cls([json.loads(line) for line in path.read_text().splitlines()])


def _container(node) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _sample(cfg: DictConfig, policy, tokenizer, prompts: list, index: int) -> list[list[str]]:
    """K samples per prompt, prompt i of round ``index`` seeded by ``prompt_seed``; sharded across processes."""
    from prefopt.rounds import generate

    g = cfg.generation
    seeds = [prompt_seed(cfg.train.seed, index, i) for i in range(len(prompts))]
    with stage("generate", f"round {index} generate") as s:
        # the prompts are already user turns where data.chat_template says so
        out = generate.sample_sharded(policy, tokenizer, prompts, seeds=seeds, k=g.k, max_new_tokens=g.max_new_tokens,
                                      temperature=g.temperature, top_p=g.top_p, top_k=g.top_k,
                                      batch_size=g.batch_size, backend=g.backend, vllm_options=_container(g.vllm),
                                      chat_template=False, max_prompt_tokens=prompt_token_cap(cfg))
        s.note = f"{len(prompts) * g.k} responses to {len(prompts)} prompts"
    return out


def _round_prompts(cfg: DictConfig, index: int) -> tuple[list, list | None]:
    """This round's prompts (and gold responses when ``data.gold_field`` is set)."""
    if cfg.data.prompts:  # round k samples the k-th slice, so iterations see fresh prompts (DNO, CREAM)
        every = load_prompts(cfg.data.prompts, split=cfg.data.split, gold_field=cfg.data.gold_field)
        held = held_out_keys(cfg)  # the evaluation's prompts are never trained on
        every = [r for r in every if prompt_key(r[0] if cfg.data.gold_field else r) not in held]
        n = min(cfg.data.n_prompts, len(every))
        start = (index * n) % len(every)
        rows = (every[start:] + every[:start])[:n]
        return ([p for p, _ in rows], [g for _, g in rows]) if cfg.data.gold_field else (rows, None)
    world = world_of(cfg)
    if world is not None:
        prompts = world_prompts(world, cfg.data.n_prompts, seed=round_seed(cfg.train.seed, index), split="train")
        return prompts, [resolve(world.gold)(p) for p in prompts] if cfg.data.gold_field else None
    raise ValueError("a real model needs data: give data.train (preference data) or data.prompts (prompts to "
                     "self-generate from)")


def self_generate(cfg: DictConfig, policy, tokenizer, index: int) -> list[dict[str, Any]]:
    """K samples per prompt from the current policy, as unscored lists (plus the gold response, if any)."""
    prompts, golds = _round_prompts(cfg, index)
    prompts = as_chat(prompts, tokenizer, cfg.data.chat_template, given=bool(cfg.data.prompts))
    samples = _sample(cfg, policy, tokenizer, prompts, index)
    records = [{"prompt": p, "responses": list(rs), "scores": [0.0] * len(rs), "weight": None, "segments": None,
                "meta": {"round": index, "generator": "policy"}} for p, rs in zip(prompts, samples, strict=True)]
    return pairing.with_gold(records, golds) if golds is not None else records


def _pair(cfg: DictConfig, records: list[dict], ctx: RoundContext, index: int, report: dict,
          scorer=None) -> list[dict]:
    options = dict(_container(cfg.pairing.options) or {})
    name = pairing.rule_of(cfg)
    rule = pairing.RULES.get(name)
    if rule is not None and "matrices" in inspect.signature(rule).parameters and "matrices" not in options:
        # OSP's strength pairs: each pair's weight is the judge's debiased P(i ≻ j)
        if not hasattr(scorer, "matrices"):
            raise ValueError(f"pairing rule {name!r} needs a pairwise judge scorer "
                             "(scorer: {type: pairwise_judge | llm_judge | self_preference, ...})")
        with stage("score", f"round {index} judge") as s:
            options["matrices"] = shard_call(scorer.matrices, [r["prompt"] for r in records],
                                             [r["responses"] for r in records], unit=shard_unit(scorer))
            s.note = f"{len(records)} lists"  # every pair of a list, both orders
    if rule is not None and "baseline" in inspect.signature(rule).parameters and "baseline" not in options:
        # OSP's one-baseline pairs: the judge that scored the lists knows which response was the baseline
        if getattr(scorer, "baseline", None) is None:
            raise ValueError(f"pairing rule {name!r} needs a pairwise judge scorer with a baseline "
                             "(scorer: {type: pairwise_judge | llm_judge | self_preference, baseline: 0, ...})")
        options["baseline"] = scorer.baseline
    if rule is not None and "samples" in inspect.signature(rule).parameters and "samples" not in options:
        # D²O: the policy's own samples are the positives beside each list's given negative. On self-generated
        # lists the samples are already there (the lowest-scored one becomes the negative).
        options["samples"] = ([r["responses"] for r in records] if not cfg.data.train else
                              _sample(cfg, ctx.policy, ctx.tokenizer, [r["prompt"] for r in records], index))
    records, pair_report = pairing.build(records, name, **options)
    report["pairing"] = asdict(pair_report)
    return records


def build_records(cfg: DictConfig, ctx: RoundContext, index: int, report: dict) -> list[dict[str, Any]]:
    """Given data is re-scored only when a scorer is configured; self-generated data is always scored."""
    if cfg.data.train:
        records, data_report = load_data(cfg.data, seed=cfg.train.seed)
        records = chat_records(records, ctx.tokenizer, cfg.data.chat_template)
        report["data"] = asdict(data_report)
        held = held_out_keys(cfg)  # the evaluation's prompts are never trained on
        if held:
            records = [r for r in records if prompt_key(r["prompt"]) not in held]
            report["data"]["held_out_for_eval"] = data_report.kept - len(records)
        spec = _container(cfg.scorer)
    else:
        records = self_generate(cfg, ctx.policy, ctx.tokenizer, index)
        spec = _container(cfg.scorer) or reward_spec(cfg)
        if spec is None:
            raise ValueError("self-generated data needs a scorer: set reward=module:function or scorer=...")
    scorer = None
    if spec is not None:
        with stage("score", f"round {index} score") as s:
            scorer = make_scorer(spec, policy=ctx.policy, ref=ctx.previous, tokenizer=ctx.tokenizer,
                                 reward_timeout_s=cfg.reward_timeout_s)
            records = score_records(scorer, records)
            s.note = f"{sum(len(r['responses']) for r in records)} responses ({type(scorer).__name__})"
    weighting = _container(cfg.weighting)
    records = apply_weighting(records, ctx, weighting, stage="lists")
    records = _pair(cfg, records, ctx, index, report, scorer)
    return apply_weighting(records, ctx, weighting, stage="pairs")


def _replay(cfg: DictConfig, records: list[dict], index: int, round_dir: Path, report: dict) -> list[dict]:
    """DNO's replay: mix in a share of the pairs of earlier rounds, read from their saved data."""
    fractions = list(cfg.pairing.replay or [])
    run = RunFolder(round_dir.parent)
    earlier = [run.round(index - lag).dir for lag in range(1, len(fractions) + 1) if index - lag >= 0]
    if not earlier:
        return records
    previous = [[r for r in RoundData.load(d).records if "replay" not in r.get("meta", {})] for d in earlier]
    records, report["replay"] = pairing.mix_replay(records, previous, fractions=fractions[: len(previous)],
                                                   seed=replay_seed(cfg.train.seed, index))
    return records


def _transforms(cfg: DictConfig, records: list[dict], ctx: RoundContext, round_dir: Path, report: dict) -> list:
    if cfg.augment:
        from prefopt.rounds.augment import reward_augment

        options = dict(_container(cfg.augment))
        if "source_scale" in options:
            options["source_scale"] = tuple(options["source_scale"])
        records, aug_report = reward_augment(records, tokenizer=ctx.tokenizer, **options)
        report["augment"] = asdict(aug_report)
    if cfg.ches:
        from prefopt.ches import apply_ches_filter

        with stage("ches", f"{round_dir.name.replace('_', ' ')} CHES filter") as s:
            total = len(records)
            records, report["ches"] = apply_ches_filter(records, ctx.policy, ctx.tokenizer, out_dir=round_dir,
                                                        **_container(cfg.ches))
            s.note = f"{len(records)} of {total} lists kept"
    return records


def _segment_fn(options: dict[str, Any]):
    """``segment_ids`` with the recipe's ``data.segments`` diff settings (RRPO's refined segments)."""
    from prefopt.data.segments import segment_ids

    valid = {"min_match_size", "one_sided", "autojunk", "skip_empty"}
    if set(options) - valid:
        raise ValueError(f"data.segments: unknown option(s) {sorted(set(options) - valid)}; valid: {sorted(valid)}")
    for key in ("one_sided", "autojunk", "skip_empty"):
        if key in options and not isinstance(options[key], bool):
            raise ValueError(f"data.segments.{key} must be true or false, got {options[key]!r}")
    return functools.partial(segment_ids, **{k: v for k, v in options.items() if k != "skip_empty"})


def _with_segments(features: list[dict], report: dict) -> list[dict]:
    """``data.segments.skip_empty``: drop the lists whose best or worst response has no refined segment, as the
    RRPO authors skip such pairs (their loss has no margin to learn there, only the KL term)."""
    def has_both(f: dict) -> bool:
        best = max(range(len(f["scores"])), key=f["scores"].__getitem__)
        worst = min(range(len(f["scores"])), key=f["scores"].__getitem__)
        return any(f["segment_ids"][best]) and any(f["segment_ids"][worst])

    kept = [f for f in features if has_both(f)]
    report["segments"] = {"rows": len(features), "kept": len(kept), "dropped_no_segment": len(features) - len(kept)}
    if features and not kept:
        raise PreferenceDataError("data.segments.skip_empty: no list has a refined segment on both its best and its "
                                  "worst response; check data.segments (one_sided, min_match_size) or turn it off")
    return kept


def report_line(report: dict[str, Any]) -> str:
    """The data report in one line: each step's rows in → kept, and its non-zero counts (``pairing 512→498,
    dropped_ties 14; tokenize 498→498``)."""
    parts = []
    for step, counts in report.items():
        if not isinstance(counts, dict) or "kept" not in counts:
            continue
        nested = counts.get("dropped") if isinstance(counts.get("dropped"), dict) else {}  # pairing: per reason
        flat = {**{k: v for k, v in counts.items() if not isinstance(v, dict)}, **nested}
        extra = [f"{k} {v}" for k, v in flat.items()
                 if k not in ("rows", "n", "kept") and type(v) is int and v]  # counts only: no bools, no floats
        rows = counts.get("rows", counts.get("n", "?"))
        parts.append(f"{step} {rows}→{counts['kept']}" + "".join(f", {e}" for e in extra))
    return "; ".join(parts) or "no report"


def build_round_data(cfg: DictConfig, ctx: RoundContext, *, index: int, round_dir: Path) -> RoundData:
    """The round's records (read back if this round already saved them) and their tokenized features.

    Called by every process; the main process decides whether the saved file is reused and alone writes it.
    """
    path, report = RoundPaths(round_dir).data, {}
    if main_value(path.exists()):
        records = main_value(RoundData.load(round_dir).records if is_main_process() else None)
        report["reused"] = True
    else:
        records = _transforms(cfg, build_records(cfg, ctx, index, report), ctx, round_dir, report)
        records = _replay(cfg, records, index, round_dir, report)
        if not records:
            raise PreferenceDataError(
                f"round {index}: no list with a preference is left after scoring and pairing (pairing.rule="
                f"{pairing.rule_of(cfg)}; report: {json.dumps(report, default=str)[:300]}). Every candidate pair was "
                "tied or filtered out: check that the reward or judge tells the responses apart, raise "
                "generation.k or generation.temperature, or loosen pairing.options")
        # validates (a user's file was checked on load) and drops lists left without a preference
        records, _ = normalize_rows(records, source=f"round {index} data", allow_empty=True)
        if is_main_process():  # fingerprinted: a resume reuses it only as written
            RunFolder(round_dir.parent).write_text(path, "".join(json.dumps(r) + "\n" for r in records))
        records = main_value(records)  # every process trains on exactly the lists the main process saved
    spec = get_loss(cfg.loss.name)
    segment_fn = None
    if spec.needs_segments:
        segment_fn = _segment_fn(_container(cfg.data.segments) or {})
    features, tok_report = tokenize_records(records, ctx.tokenizer, max_length=cfg.data.max_length,
                                            max_prompt_length=cfg.data.max_prompt_length,
                                            truncation_mode=cfg.data.truncation_mode, segment_fn=segment_fn)
    report["tokenize"] = {k: v for k, v in asdict(tok_report).items() if k != "dropped_rows"}
    if segment_fn is not None and (_container(cfg.data.segments) or {}).get("skip_empty"):
        features = _with_segments(features, report)
    if is_main_process():
        print(f"[prefopt] round {index} data: {len(features)} lists ready"
              f"{' (saved earlier, reused)' if report.get('reused') else ''}; {report_line(report)}")
    return RoundData(records, features, report)
