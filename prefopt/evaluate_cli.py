"""``prefopt eval``: score a saved model, and compare it with another by a paired win rate, without training.

    prefopt eval model=runs/dpo                                   a run of the tiny world: its reward and prompts
    prefopt eval model=runs/dpo baseline=runs/dpo/round_0         + the paired win rate against the baseline
    prefopt eval model=user/name data.eval_prompts=p.jsonl reward=mypkg.rewards:score

``model`` and ``baseline`` may each be a run folder (its final ``model/``), a round folder (``round_k/``), a model
or adapter folder (``model/``, ``adapter/``, any ``save_pretrained`` folder), or a hub id. When the model comes
from a run folder, the run's own settings (reward, evaluation prompts, ``eval.*``, ``generation.max_new_tokens``,
``data.chat_template``, seed) are the defaults; every other key is a ``key=value`` as in training. The evaluation is
the run's own (``prefopt.rounds.evaluate``): the same prompts under the same per-prompt seeds for both models, so
the win rate is paired. Writes ``output_dir`` (default ``runs/eval-<name>``): ``eval.json`` and
``samples/model.jsonl`` (and ``samples/baseline.jsonl``). Mistakes: one ``error:`` line each, exit 2, nothing
written; a model that fails to load: one ``error:`` line, exit 1.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from prefopt.run_folder import MARKER, RunFolder

USAGE = ("usage: prefopt eval model=PATH_OR_ID [baseline=PATH_OR_ID] [data.eval_prompts=FILE] "
         "[reward=module:function | scorer=...] [eval.n_prompts=N] [output_dir=DIR] [key=value ...]")
SCORER_TYPES = ("reward_fn", "reward_model")  # scorers that rate each response on its own


def _run_root(path: Path) -> Path | None:
    """The run folder ``path`` belongs to: itself, or the parent of its model/, adapter/ or round_k/."""
    for candidate in (path, path.parent, path.parent.parent):
        if (candidate / MARKER).exists() and (candidate / "config.yaml").exists():
            return candidate
    return None


def resolve(spec: str) -> tuple[str, Path | None]:
    """(what ``from_pretrained`` loads, the run folder it came from or None); ValueError when it is neither a
    local model folder nor a hub id."""
    from prefopt.world.worlds import WORLDS, model_folder

    path = Path(spec)
    if spec in WORLDS and not path.exists():  # a world's name: its own model
        return model_folder(WORLDS[spec]), None
    if path.is_dir():
        for inner in (path / "model", path):  # a run or round folder holds model/
            if (inner / "config.json").exists() or (inner / "adapter_config.json").exists():
                return str(inner), _run_root(path)
        raise ValueError(f"{spec} holds no model (no config.json or adapter_config.json, no model/ folder)")
    if path.exists() or spec.startswith((".", "/", "~")) or not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", spec):
        raise ValueError(f"{spec}: no such model folder, and not a hub id")
    return spec, None


def _config(run: Path | None, overrides: list[str]) -> DictConfig:
    from prefopt.config import load_config

    base = [f"recipe={run / 'config.yaml'}"] if run else []
    cfg = load_config([*base, *overrides])
    cfg.eval.enabled = True
    return cfg


def _checks(cfg: DictConfig, model: str, run: Path | None) -> list[str]:
    """``model``: as the user gave it. Outside a run folder it becomes ``cfg.model``, so a world's name brings its
    world's reward and prompts and any other model none by default."""
    from prefopt.rounds.evaluate import eval_prompts, reward_spec
    from prefopt.validate import check_ranges, import_problems

    if run is None:
        cfg.model = model
    out = check_ranges(cfg)
    scorer = OmegaConf.to_container(cfg.scorer) if OmegaConf.is_config(cfg.scorer) else cfg.scorer
    if scorer is not None:
        from prefopt.rounds.scorers import scorer_spec

        try:
            kind = scorer_spec(scorer)["type"]
        except (TypeError, ValueError) as err:
            return [*out, f"scorer: {err}"]
        if kind not in SCORER_TYPES:
            out.append(f"scorer type {kind!r} compares responses with each other; prefopt eval scores each "
                       f"response on its own: use reward= or a scorer of type {' or '.join(SCORER_TYPES)}")
    elif reward_spec(cfg) is None:
        out.append(f"model={model} is not a run or a world's model: give reward=module:function (or scorer=...)")
    else:
        out += import_problems(reward_spec(cfg), "reward")
    try:
        if not out and not eval_prompts(cfg):
            out.append("no prompts to evaluate on: give data.eval_prompts=FILE (prompt-only rows)")
    except (OSError, ValueError, KeyError) as err:
        out.append(f"data.eval_prompts: {err}")
    return out


def _load(spec: str, cfg: DictConfig):
    """(model on this process's device, tokenizer) of a resolved model; a run's model lacking a tokenizer (an
    older run's round folder) takes the run's tokenizer."""
    from accelerate import PartialState

    from prefopt.modeling import load_frozen, load_tokenizer

    model = load_frozen(spec, cfg).to(PartialState(cpu=not _cuda()).device)
    try:
        tokenizer = load_tokenizer(spec)
    except (OSError, ValueError):  # the run's tokenizer
        from prefopt.world.worlds import model_folder, uses_world_model, world_of

        tokenizer = load_tokenizer(cfg.tokenizer or (model_folder(world_of(cfg)) if uses_world_model(cfg)
                                                     else cfg.model))
    return model, tokenizer


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _scorer(cfg: DictConfig):
    if cfg.scorer is None:
        return None
    from prefopt.rounds.scorers import make_scorer

    return make_scorer(OmegaConf.to_container(cfg.scorer) if OmegaConf.is_config(cfg.scorer) else cfg.scorer)


def evaluate(model: str, baseline: str | None, cfg: DictConfig, out: RunFolder) -> dict[str, Any]:
    """Evaluate ``model`` (and ``baseline``) on the same prompts and seeds; writes ``out``; returns the result."""
    from prefopt.modeling import model_lengths
    from prefopt.rounds.evaluate import RewardEval, mean_ci95, paired_win_rate
    from prefopt.samples import save_samples

    scorer, result = _scorer(cfg), {"model": model, "baseline": baseline}
    runs: dict[str, list[dict]] = {}
    for name, spec in (("model", model), ("baseline", baseline)):
        if spec is None:
            continue
        policy, tokenizer = _load(spec, cfg)
        if name == "model":  # lengths left to the model are the model's, for the baseline too (a paired test)
            cfg = model_lengths(cfg, policy, tokenizer)
        evaluator = RewardEval.from_config(cfg, tokenizer, scorer)
        runs[name] = evaluator.samples(policy)
        result[f"{name}_reward"] = mean_ci95([s["reward"] for s in runs[name]])
        save_samples(out, name, runs[name], f"samples of {name} {spec}")
        result.setdefault("samples", {})[name] = str(out.samples(name).relative_to(out.root))
    if baseline is not None:
        result["win_rate"] = paired_win_rate(runs["model"], runs["baseline"])
    result.update(prompts=len({s["index"] for s in runs["model"]}), samples_per_prompt=cfg.eval.samples_per_prompt)
    out.write_json(out.root / "eval.json", result)
    return result


def _report(result: dict[str, Any]) -> None:
    from prefopt.outputs import format_reward

    print(f"[prefopt] reward of {result['model']}: {format_reward(result['model_reward'])}")
    if result["baseline"] is not None:
        w = result["win_rate"]
        print(f"[prefopt] reward of {result['baseline']} (baseline): {format_reward(result['baseline_reward'])}")
        print(f"[prefopt] win rate against the baseline: {w['mean']:.3f} [{w['ci95_low']:.3f}, {w['ci95_high']:.3f}]"
              f" over {w['n']} prompts (same prompts and seeds; a tie counts half)")


def main(argv: list[str]) -> int:
    """``prefopt eval key=value ...``; returns the exit status."""
    if not argv or any(a in ("-h", "--help", "help") for a in argv):
        print(USAGE + "\n\n" + __doc__.split("\n\n", 1)[1], end="")
        return 0
    args = dict(a.split("=", 1) for a in argv if "=" in a)
    bad = [a for a in argv if "=" not in a]
    model, baseline = args.pop("model", None), args.pop("baseline", None)
    try:
        if bad:
            raise ValueError(f"arguments must be key=value, got {bad}")
        if not model:
            raise ValueError("prefopt eval needs model=PATH_OR_ID (a run, round, model or adapter folder, or a hub id)")
        model_path, run = resolve(model)
        baseline_path = resolve(baseline)[0] if baseline else None
        cfg = _config(run, [f"{k}={v}" for k, v in args.items() if k != "output_dir"])
        problems = _checks(cfg, model, run)
    except (ValueError, KeyError, FileNotFoundError) as err:
        problems = [str(err.args[0] if err.args else err)]
    out = Path(args.get("output_dir") or f"runs/eval-{Path(str(model).rstrip('/')).name}")
    if not problems and out.exists() and not out.is_dir():
        problems = [f"output_dir {out} is a file, not a folder"]
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        result = evaluate(model_path, baseline_path, cfg, RunFolder(out))
    except OSError as err:  # a hub id that is not there, a model folder that does not load
        print(f"error: could not load a model: {str(err).splitlines()[0]}", file=sys.stderr)
        return 1
    _report(result)
    print(f"[prefopt] written: {out / 'eval.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
