"""The data half of the pre-flight check: every data file read in full, the reward probed once, resume settings.

Each problem is one message for an ``error:`` line; nothing here writes anything or loads a model.
"""

from __future__ import annotations

import inspect
from typing import Any

from omegaconf import DictConfig, OmegaConf

from losses import loss_from_block
from prefopt.rounds.pairing import rule_of
from prefopt.world.worlds import world_of, world_prompts

# Keys that change nothing a run computes: a resumed run may change them freely.
RESULT_NEUTRAL = ("output_dir", "overwrite", "resume", "report_to", "threads", "train.logging_steps",
                  "train.save_steps", "train.save_total_limit", "reference.batch_size", "generation.batch_size",
                  "eval.enabled", "hub", "debug", "reward_timeout_s")


def _read(kind: str, spec: Any, **kwargs) -> tuple[list, list[str]]:
    """Records of ``data.train`` (kind "train", ``spec`` the data block) or ``data.eval`` ("eval"), or prompts."""
    from prefopt.data.records import PreferenceDataError, load_prompts
    from prefopt.data.sources import load_data, load_eval

    readers = {"train": lambda: load_data(spec, **kwargs)[0], "eval": lambda: load_eval(spec)[0],
               "prompts": lambda: load_prompts(spec, **kwargs)}
    try:
        return readers[kind](), []
    except FileNotFoundError as err:
        return [], [str(err)]
    except PreferenceDataError as err:
        return [], str(err).splitlines()
    except Exception as err:  # a hub id that cannot be reached, a broken parquet file
        name = spec if isinstance(spec, str) else spec.train if kind == "train" else spec.eval
        return [], [f"{name}: cannot be read ({type(err).__name__}: {err})"]


def probe_reward(path: str, prompt: Any, response: Any = "", timeout_s: float | None = None) -> list[str]:
    """Call the user's reward once, on a real prompt, the way scoring and evaluation will (plain strings, the same
    accepted return types, the same time limit)."""
    from prefopt.rounds.scoring import ScoringError, call_reward, prompt_text, resolve_import_path, response_text

    fn = resolve_import_path(path)
    try:
        text, answer = prompt_text(prompt), response_text(response)
        call_reward(fn, text, answer, 0, 0, f"reward {path}", timeout_s)
    except ScoringError as err:
        return [f"{err} (the pre-flight probe: reward({str(prompt_text(prompt))[:60]!r}, "
                f"{str(response_text(response))[:60]!r})); a reward takes (prompt: str, response: str) and returns "
                "a finite number"]
    return []


def _fits_loss(records: list[dict], key: str, unpaired_loss: bool) -> list[str]:
    """Unpaired examples (TRL's prompt/completion/label) carry no preference a pairwise or listwise loss can use."""
    from prefopt.data.unpaired import is_unpaired

    if unpaired_loss or not any(is_unpaired(r) for r in records):
        return []
    return [f"{key} is in TRL's unpaired format (prompt, completion, label): single labelled responses, which only an "
            "unpaired loss learns from; use loss.name=kto, or give pairs or lists"]


def check_data(cfg: DictConfig) -> list[str]:
    d, problems, first_prompt, first_response = cfg.data, [], None, ""
    unpaired_loss = loss_from_block(OmegaConf.to_container(cfg.loss)).unpaired
    world = world_of(cfg)
    if d.train:
        records, errors = _read("train", d, seed=cfg.train.seed)
        problems += errors + _fits_loss(records, "data.train", unpaired_loss)
        if records:
            first_prompt, first_response = records[0]["prompt"], records[0]["responses"][0]
    elif d.mix:
        problems.append("data.mix mixes the sources of data.train, but data.train is not set")
    if d.eval:
        records, errors = _read("eval", d)
        problems += errors + _fits_loss(records, "data.eval", unpaired_loss)
    if d.prompts:
        prompts, errors = _read("prompts", d.prompts, split=d.split, gold_field=d.gold_field)
        problems += errors
        if prompts:
            first_prompt = prompts[0][0] if d.gold_field else prompts[0]
    elif d.gold_field and (world is None or world.gold is None):
        problems.append("data.gold_field names a field of data.prompts, but data.prompts is not set")
    if d.eval_prompts:
        problems += _read("prompts", d.eval_prompts)[1]
    if not problems:
        problems += _left_for_training(cfg)
    if d.train and not problems:
        problems += row_problems(cfg)
    if cfg.reward and not problems:
        if first_prompt is None and world is not None:
            first_prompt = world_prompts(world, 1, seed=0, split="train")[0]
        if first_prompt is not None:
            problems += probe_reward(cfg.reward, first_prompt, first_response, cfg.reward_timeout_s)
    return problems


def _left_for_training(cfg: DictConfig) -> list[str]:
    """Prompts must be left to train on once the evaluation's held-out slice is taken out."""
    from prefopt.rounds.evaluate import held_out_keys, held_out_prompts

    held = held_out_prompts(cfg)
    if not held or not cfg.data.prompts:
        return []
    keys, prompts = held_out_keys(cfg), held[0]
    from prefopt.data.records import load_prompts
    from prefopt.rounds.evaluate import prompt_key

    rows = load_prompts(cfg.data.prompts, split=cfg.data.split, gold_field=cfg.data.gold_field)
    left = [r for r in rows if prompt_key(r[0] if cfg.data.gold_field else r) not in keys]
    if left:
        return []
    return [f"{cfg.data.prompts}: every prompt is held out for the reward before/after ({len(prompts)} held out, "
            f"{len(rows)} rows, duplicates counted once); give more prompts, data.eval_prompts, or eval.enabled=false"]


def _canonical_rows(data) -> list[tuple[str, str, dict]]:
    """(source, "line 7", canonical row) of every ``data.train`` source, through its schema reader and column map:
    the rows every reader produces, located in the user's file."""
    from prefopt.data.records import read_located_rows
    from prefopt.data.schemas import to_canonical
    from prefopt.data.sources import _per_source, _plain, sources_of

    names = sources_of(data)
    out = []
    for name, fmt, columns, options in zip(names, _per_source(data.format, len(names), "format", "auto"),
                                           _per_source(data.columns, len(names), "columns", None),
                                           _per_source(data.options, len(names), "options", None), strict=True):
        rows, where = read_located_rows(name, split=data.split)
        rows, where, _, _ = to_canonical(rows, where, source=name, format=fmt, columns=_plain(columns),
                                         options=_plain(options))
        out += [(name, at, row) for row, at in zip(rows, where, strict=True)]
    return out


def row_problems(cfg: DictConfig) -> list[str]:
    """Every per-row field the pairing rule, the reward augmentation and the loss read, checked on each row of
    ``data.train`` (every source, through its schema reader) as the run will use it: the rule and augmentation are
    applied to the row, and the loss is computed on it with zero log-probs (a finite value is required). Rules and
    weightings that need a model (judges, D²O's samples, consistency) are left to the run. One message per bad
    row, up to ``MAX_REPORTED``."""
    import torch

    from losses.types import PreferenceLogps
    from prefopt.config import loss_kwargs
    from prefopt.data.records import MAX_REPORTED, PreferenceDataError, normalize_row
    from prefopt.rounds import pairing

    loss, rule = loss_from_block(OmegaConf.to_container(cfg.loss)), pairing.RULES.get(cfg.pairing.rule)
    options = dict(OmegaConf.to_container(cfg.pairing.options, resolve=True) or {})
    model_bound = ("matrices", "samples", "baseline", "sample_scores")
    if rule is None or cfg.weighting or loss.needs_tokens or any(
            n in inspect.signature(rule).parameters and n not in options for n in model_bound):
        return []
    kwargs, out = loss_kwargs(cfg), []
    for spec, at, row in _canonical_rows(cfg.data):
        try:
            paired, _ = pairing.build([normalize_row(row, index=at, source=spec)], cfg.pairing.rule, **options)
            if cfg.augment and paired:
                from prefopt.rounds.augment import reward_augment

                augment = dict(OmegaConf.to_container(cfg.augment, resolve=True))
                if "source_scale" in augment:
                    augment["source_scale"] = tuple(augment["source_scale"])
                paired, _ = reward_augment(paired, tokenizer=None, **augment)
            for record in paired:
                scores = torch.tensor([record["scores"]], dtype=torch.float32)
                x = PreferenceLogps(policy=torch.zeros_like(scores), ref=torch.zeros_like(scores), scores=scores,
                                    weight=None if record.get("weight") is None else
                                    torch.tensor([record["weight"]], dtype=torch.float32),
                                    lengths=torch.ones_like(scores))
                value = loss.fn(x, **kwargs)
                if not torch.isfinite(value).all():
                    raise ValueError(f"the loss is {value.tolist()} on it")
        except PreferenceDataError as err:
            out.append(str(err).replace("reward_augment row 0", f"{spec} {at}: reward_augment"))
        except (ValueError, TypeError, RuntimeError) as err:
            out.append(f"{spec} {at}: loss {cfg.loss.name} cannot use its scores {row.get('scores', [1, 0])} / weight "
                       f"{row.get('weight')}: {str(err)[:200]}")
        if len(out) >= MAX_REPORTED:
            break
    return out


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out or {prefix[:-1]: {}}
    return {prefix[:-1]: node}


def resume_conflicts(saved: dict, now: dict) -> list[str]:
    """Keys (dotted) whose values differ between the run's saved config and this one, less the neutral ones."""
    a, b = _flat(saved), _flat(now)
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k)
                  and not any(k == n or k.startswith(n + ".") for n in RESULT_NEUTRAL))
    return [f"{k}: {a.get(k)!r} in the run, {b.get(k)!r} now" for k in keys]


def check_resume(cfg: DictConfig, folder) -> list[str]:
    saved = OmegaConf.to_container(OmegaConf.load(folder.config), resolve=True)
    now = OmegaConf.to_container(cfg, resolve=True)
    for c in (saved, now):  # a hyper-parameter left at its default compares as that default
        c["loss"] = {**loss_from_block(c["loss"]).defaults, **c["loss"]}
        c["pairing"]["rule"] = rule_of(OmegaConf.create(c))  # pairing.rule=auto compares as the rule it picks
    conflicts = resume_conflicts(saved, now)
    if not conflicts:
        return []
    return [f"resume=true with settings that differ from {folder.config} ({'; '.join(conflicts)}): a resumed run "
            "must compute what the original would have; start a new output_dir to change them"]
