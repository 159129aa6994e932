"""Smoke mode: run any recipe on CPU in under a minute, offline, to check it before paying for GPUs.

    python -m prefopt.train recipe=paper/lipo smoke=true

``apply_smoke(cfg)`` rewrites a resolved config; the pipeline then runs unchanged. Each stage supplies its own
stand-in, so nothing here names a scorer type or a pairing rule:

* model: a hub id (or local folder) becomes a randomly initialised 2-layer stand-in of the same architecture
  family (``prefopt.world.standin``), saved with the tiny world's character tokenizer to a local folder.
  ``previous_model`` (CREAM's M0) becomes a stand-in of another seed. A world's model (``model: null``, the tiny
  world; ``prefopt.world.worlds``) is kept.
* data: ``data.train``/``data.eval`` naming a dataset prefopt has a schema fixture for (``prefopt.data.schemas.
  fixtures``: ultrafeedback_binarized, PKU-SafeRLHF, TL;DR, the CHES authors' file, ...) become that fixture, a few
  rows in the dataset's own schema, so the recipe's reader and chat rendering run as on the real data; other data
  becomes 16 synthetic tiny-world pairs (``prompt``/``chosen``/``rejected``, plus ``score_chosen``/``score_rejected``
  when the recipe reward-augments). ``data.prompts``/``data.eval_prompts`` become prompt-only rows. The prompts are
  the world's, so its verifiable reward can score them.
* scoring: the scorer type's smoke stand-in (``SCORERS[type].smoke`` in ``prefopt.rounds.scorers``): a scorer that
  needs a hub model or a user's module becomes one of the same kind over the world's reward; a ``reward`` becomes
  the stand-in reward ``prefopt.world.standin:reward``.
* pairing: the rule's thresholds are opened (``SMOKE_OPTIONS`` in ``prefopt.rounds.pairing``), since a random
  stand-in's samples are never far apart.
* budget: 2 steps, batch 2, 8 prompts (16 on the world), K ≤ 4, ≤ 8 new tokens, ≤ 2 rounds, 16 eval prompts,
  LoRA rank ≤ 8 and no 4-bit (QLoRA needs CUDA), fp32, generation with transformers (no vLLM), no loggers. What a CPU
  runs is kept: gradient checkpointing, the loss, pairing rule, weighting and reference mode.

It prints every key it changed (``old → new``) and whether the run will report a reward before/after, or why not.

The run writes under its ``output_dir``, by default ``runs/<recipe>-smoke`` (replaced at each smoke run; a folder you
name is treated as any run's, see ``overwrite``). Its inputs, the stand-in models and the synthetic data, are cached
under ``$PREFOPT_CACHE/smoke`` (default ``~/.cache/prefopt/smoke``, see ``prefopt.cache``) with deterministic names
(same recipe, same files), written atomically, so processes of one ``accelerate launch`` agree on them.
"""

from __future__ import annotations

import copy
import json
import os
import random
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from prefopt.cache import cache_dir
from prefopt.rounds.pairing import SMOKE_OPTIONS, rule_of
from prefopt.rounds.scorers import scorer_spec, smoke_scorer
from prefopt.world import standin
from prefopt.world.worlds import world_of

N_ROWS = 16  # synthetic pairs / prompts per file


def smoke_root() -> Path:
    """Where the stand-ins and synthetic data are cached (inputs, never a run's outputs)."""
    root = cache_dir("smoke")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _write_jsonl(path: Path, rows: list[dict]) -> str:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, path)
    return str(path)


def _wrong(answer: str, rng: random.Random) -> str:
    """The answer with one character replaced (a near miss; RRPO finds one refined segment in it)."""
    i = rng.randrange(len(answer))
    alphabet = "0123456789" if answer[i].isdigit() else "abcdefghijklmnopqrstuvwxyz"
    return answer[:i] + rng.choice([c for c in alphabet if c != answer[i]]) + answer[i + 1:]


def synthetic_pairs(n: int, *, split: str, seed: int, scale: tuple[float, float] | None = None) -> list[dict]:
    """TRL-style pairs on world prompts: the right answer against a near miss, optionally with raw scores."""
    from prefopt.world.tasks import make_prompts, solve

    rng = random.Random(f"prefopt-smoke/{split}/{seed}")
    rows = []
    for i, prompt in enumerate(make_prompts(n, seed=seed, split=split)):
        answer = solve(prompt)
        row = {"prompt": prompt, "chosen": answer, "rejected": _wrong(answer, rng)}
        if scale is not None:  # distinct goals inside the recipe's source scale, chosen above rejected
            lo, hi = scale
            row["score_chosen"] = round(lo + (0.7 + 0.1 * (i % 3)) * (hi - lo), 1)
            row["score_rejected"] = round(lo + (0.1 + 0.1 * (i % 3)) * (hi - lo), 1)
        rows.append(row)
    return rows


def synthetic_prompts(n: int, *, split: str, seed: int) -> list[dict]:
    from prefopt.world.tasks import make_prompts

    return [{"prompt": p} for p in make_prompts(n, seed=seed, split=split)]


def _scorer(cfg: DictConfig, notes: list[str]) -> None:
    """The scorer type's own smoke stand-in; the evaluation reward becomes the world's stand-in reward."""
    spec = OmegaConf.to_container(cfg.scorer) if OmegaConf.is_config(cfg.scorer) else cfg.scorer
    smoke = smoke_scorer(spec)
    if spec is not None and smoke != scorer_spec(spec):
        notes.append(f"scorer {spec} → {smoke}")
    cfg.scorer = smoke
    if cfg.reward:
        if cfg.reward != standin.REWARD:
            notes.append(f"reward {cfg.reward} → {standin.REWARD}")
        cfg.reward = standin.REWARD


def _pairing(cfg: DictConfig, notes: list[str]) -> None:
    """Open the rule's thresholds (``SMOKE_OPTIONS``): a random stand-in's samples are never far apart."""
    opened = SMOKE_OPTIONS.get(rule_of(cfg))
    if opened:
        cfg.pairing.options = {**(OmegaConf.to_container(cfg.pairing.options) or {}), **opened}
        notes.append(f"pairing {rule_of(cfg)} thresholds opened")


def _schema_fixtures(cfg: DictConfig, notes: list[str]) -> set[str]:
    """``data.train``/``data.eval`` that name a dataset with a schema fixture become it; the keys swapped."""
    from prefopt.data.schemas.fixtures import fixture_for

    swapped = set()
    for key in ("train", "eval"):
        value = cfg.data.get(key)
        sources = [value] if isinstance(value, str) else list(value or [])
        paths = [fixture_for(str(s)) for s in sources]
        if sources and all(paths):
            cfg.data[key] = str(paths[0]) if isinstance(value, str) else [str(p) for p in paths]
            notes.append(f"data.{key} {value} → its schema fixture{'s' if len(paths) > 1 else ''} "
                         f"({', '.join(p.name for p in paths)})")
            swapped.add(key)
    return swapped


def _data(cfg: DictConfig, slug: str, notes: list[str]) -> None:
    seed = cfg.train.seed
    scale = None
    if cfg.augment:
        scale = tuple(cfg.augment.get("source_scale") or (1.0, 10.0))
    root = smoke_root()
    replaced = []
    swapped = _schema_fixtures(cfg, notes)
    for key, split, make in (("train", "train", "pairs"), ("eval", "eval", "pairs"),
                             ("prompts", "train", "prompts"), ("eval_prompts", "eval", "prompts")):
        if not cfg.data.get(key) or key in swapped:
            continue
        rows = (synthetic_pairs(N_ROWS, split=split, seed=seed, scale=scale) if make == "pairs"
                else synthetic_prompts(N_ROWS, split=split, seed=seed))
        cfg.data[key] = _write_jsonl(root / f"{slug}-{key}.jsonl", rows)
        replaced.append(f"data.{key}")
    if "data.train" in replaced:  # synthetic pairs are TRL pairs: the recipe's schema settings do not apply
        cfg.data.format, cfg.data.columns, cfg.data.options, cfg.data.mix = "auto", {}, {}, []
    if replaced:
        notes.append(f"{', '.join(replaced)} → {N_ROWS} synthetic rows each")


def _budget(cfg: DictConfig, world: bool) -> None:
    t = cfg.train
    t.max_steps, t.per_device_batch_size, t.gradient_accumulation_steps = 2, 2, 1
    t.logging_steps, t.save_steps, t.warmup_steps = 1, 0, 0
    t.bf16 = False  # the stand-ins train in float32 on a CPU; gradient checkpointing runs there as it is
    g = cfg.generation
    g.k, g.max_new_tokens, g.backend = max(2, min(g.k, 4)), min(g.max_new_tokens or 8, 8), "hf"
    cfg.data.n_prompts = 16 if world else 8
    if not world:  # the stand-in reads 512 positions; long reward-augmented prompts must fit
        cfg.data.max_length, cfg.data.max_prompt_length = 384, None
    cfg.rounds = min(cfg.rounds, 2)
    if OmegaConf.is_list(t.learning_rate):  # one rate per round: keep the first rounds' rates
        t.learning_rate = list(t.learning_rate)[: cfg.rounds]
    cfg.eval.n_prompts, cfg.eval.samples_per_prompt = min(cfg.eval.n_prompts, 16), 1
    p = cfg.peft
    if p.enabled and p.r > 8:
        p.lora_alpha, p.r = max(1, round(p.lora_alpha * 8 / p.r)), 8  # keep alpha / r, so the update scale
    p.load_in_4bit = False
    if cfg.ches:
        cfg.ches = {**OmegaConf.to_container(cfg.ches), "batch_size": 4}
    cfg.report_to, cfg.resume = "none", False


def _flat(node, prefix: str = "") -> dict[str, object]:
    if isinstance(node, dict) and node:
        return {k: v for key, value in node.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
    return {prefix[:-1]: node}


def changed_keys(before: DictConfig, after: DictConfig) -> list[str]:
    """``key: old → new`` for every dotted key smoke mode changed (a key a block gained shows ``(unset)`` first)."""
    a, b = (_flat(OmegaConf.to_container(c, resolve=True)) for c in (before, after))
    missing = "(unset)"
    return [f"{k}: {a.get(k, missing)} → {b.get(k, missing)}" for k in sorted(set(a) | set(b))
            if a.get(k, missing) != b.get(k, missing)]


def reward_note(cfg: DictConfig) -> str:
    """Whether the smoke run will report a reward before/after, and why not when it will not."""
    from prefopt.rounds.evaluate import reward_spec

    if not cfg.eval.enabled:
        return "no reward before/after: eval.enabled=false"
    spec = reward_spec(cfg)
    if spec is None:
        return ("no reward before/after: the recipe names no reward function (reward=module:function) and its model "
                "is no world's, so the smoke run checks data, loss and training only")
    return f"reward before/after: {spec}"


def apply_smoke(cfg: DictConfig) -> DictConfig:
    """A copy of ``cfg`` that runs on CPU in under a minute, offline (see the module docstring). Prints what it
    replaced and why, every key it changed (old → new), and whether a reward will be reported."""
    original, cfg = cfg, copy.deepcopy(cfg)
    import torch

    torch.set_num_threads(1)  # a 32-wide model gains nothing from threads; on a busy 2-core box two run 2x slower
    slug = (cfg.recipe or "run").replace("/", "-")
    notes: list[str] = []
    world = world_of(cfg) is not None  # a world's model runs on a CPU as it is
    if not world:
        family, note = standin.family_of(cfg.model)
        if note:
            notes.append(note)
        path = standin.build_standin(family, smoke_root())
        notes.append(f"model {cfg.model} → {standin.LAYERS}-layer {family} stand-in (hidden {standin.HIDDEN})")
        cfg.model, cfg.tokenizer = str(path), None
        if cfg.reference.model:
            notes.append(f"reference.model {cfg.reference.model} → a frozen copy of the stand-in")
            cfg.reference.model = None
        if cfg.previous_model:  # another seed: M0 = M1 would make every implicit reward 0
            previous_family, _ = standin.family_of(cfg.previous_model)
            notes.append(f"previous_model {cfg.previous_model} → a {previous_family} stand-in of another seed")
            cfg.previous_model = str(standin.build_standin(previous_family, smoke_root(), seed=1))
    _data(cfg, slug, notes)
    _scorer(cfg, notes)
    if not world:
        _pairing(cfg, notes)
    _budget(cfg, world)
    if cfg.hub.push:  # a smoke model is nothing to publish
        notes.append("hub.push → false")
        cfg.hub.push = False
    if cfg.output_dir is None:  # smoke's own folder: each smoke run replaces the last one's
        cfg.output_dir, cfg.overwrite = f"runs/{slug}-smoke", True
    budget = (f"{cfg.train.max_steps} steps × batch {cfg.train.per_device_batch_size}, {cfg.data.n_prompts} prompts, "
              f"K={cfg.generation.k}, {cfg.rounds} round(s)")
    lines = [f"[prefopt] smoke: {'; '.join(notes + [budget])}; output: {cfg.output_dir}",
             f"[prefopt] smoke: {reward_note(cfg)}", "[prefopt] smoke changed these keys:",
             *(f"  {line}" for line in changed_keys(original, cfg))]
    print("\n".join(lines), flush=True)
    return cfg
