"""The data half of the pre-flight check: every data file read in full, the reward probed once, resume settings.

Each problem is one message for an ``error:`` line; nothing here writes anything or loads a model.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from omegaconf import DictConfig, OmegaConf

from losses import get_loss
from prefopt.rounds.pairing import rule_of
from prefopt.world.worlds import world_of, world_prompts

# Keys that change nothing a run computes: a resumed run may change them freely.
RESULT_NEUTRAL = ("output_dir", "overwrite", "resume", "report_to", "threads", "train.logging_steps",
                  "train.save_steps", "train.save_total_limit", "reference.batch_size", "generation.batch_size",
                  "eval.enabled", "hub")


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


def probe_reward(path: str, prompt: Any, response: Any = "") -> list[str]:
    """Call the user's reward once, on a real prompt, the way scoring and evaluation will (plain strings)."""
    from prefopt.rounds.scoring import prompt_text, resolve_import_path, response_text

    fn = resolve_import_path(path)
    text, answer = prompt_text(prompt), response_text(response)
    try:
        value = fn(text, answer)
    except Exception as err:
        return [f"reward {path} raised {type(err).__name__}: {err} when called as reward({text[:60]!r}, "
                f"{answer[:60]!r}); a reward takes (prompt: str, response: str) and returns a float"]
    if hasattr(value, "item") and not isinstance(value, numbers.Real):
        value = value.item() if getattr(value, "size", 1) == 1 else value
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        return [f"reward {path} returned {value!r} for prompt {text[:60]!r}; it must return a finite number"]
    return []


def check_data(cfg: DictConfig) -> list[str]:
    d, problems, first_prompt, first_response = cfg.data, [], None, ""
    world = world_of(cfg)
    if d.train:
        records, errors = _read("train", d, seed=cfg.train.seed)
        problems += errors
        if records:
            first_prompt, first_response = records[0]["prompt"], records[0]["responses"][0]
    elif d.mix:
        problems.append("data.mix mixes the sources of data.train, but data.train is not set")
    if d.eval:
        problems += _read("eval", d)[1]
    if d.prompts:
        prompts, errors = _read("prompts", d.prompts, split=d.split, gold_field=d.gold_field)
        problems += errors
        if prompts:
            first_prompt = prompts[0][0] if d.gold_field else prompts[0]
    elif d.gold_field and (world is None or world.gold is None):
        problems.append("data.gold_field names a field of data.prompts, but data.prompts is not set")
    if d.eval_prompts:
        problems += _read("prompts", d.eval_prompts)[1]
    if cfg.reward and not problems:
        if first_prompt is None and world is not None:
            first_prompt = world_prompts(world, 1, seed=0, split="train")[0]
        if first_prompt is not None:
            problems += probe_reward(cfg.reward, first_prompt, first_response)
    return problems


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
        c["loss"] = {**get_loss(c["loss"]["name"]).defaults, **c["loss"]}
        c["pairing"]["rule"] = rule_of(OmegaConf.create(c))  # pairing.rule=auto compares as the rule it picks
    conflicts = resume_conflicts(saved, now)
    if not conflicts:
        return []
    return [f"resume=true with settings that differ from {folder.config} ({'; '.join(conflicts)}): a resumed run "
            "must compute what the original would have; start a new output_dir to change them"]
