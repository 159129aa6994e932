"""Smoke mode: run any recipe on CPU in under a minute, offline, to check it before paying for GPUs.

    python -m prefopt.train recipe=paper/lipo smoke=true

``apply_smoke(cfg)`` rewrites a resolved config; the pipeline then runs unchanged:

* model: a hub id (or local folder) becomes a randomly initialised stand-in of the same architecture family (hidden
  32, 2 layers) built from a scaled-down transformers config and saved with the tiny world's character tokenizer, so
  ``load_policy`` reads it from a local folder. ``FAMILIES`` maps hub-id patterns to families; an unknown model falls
  back to Llama with a printed note; ``previous_model`` (CREAM's M0) becomes a stand-in of another seed. ``model: null``
  (the tiny-world recipes) keeps the world's model.
* data: ``data.train``/``data.eval`` become 16 synthetic tiny-world pairs (``prompt``/``chosen``/``rejected``, plus
  ``score_chosen``/``score_rejected`` when the recipe reward-augments); ``data.prompts``/``data.eval_prompts`` become
  prompt-only rows. The prompts are the world's, so its verifiable reward can score them.
* scoring: a scorer or reward that needs a hub model or a user's module becomes one of the same kind over the world's
  reward: ``prefopt.smoke:reward`` (plus a tie-breaker, see ``reward``) or the pairwise ``prefopt.smoke:judge``;
  the policy's own judges (self-preference, implicit reward) are kept, with verdict labels the character tokenizer
  knows. Pairing thresholds are opened, since a random stand-in's
  samples are never far apart.
* budget: 2 steps, batch 2, 8 prompts (16 on the world), K ≤ 4, ≤ 8 new tokens, ≤ 2 rounds (a per-round
  learning-rate list cut to match), 16 eval prompts,
  LoRA rank ≤ 8 and no 4-bit (QLoRA needs CUDA), fp32, no loggers, a temporary output folder unless one is given.

Every file goes under ``$TMPDIR/prefopt-smoke`` with deterministic names (same recipe, same files), written
atomically, so processes of one ``accelerate launch`` agree on them.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import math
import os
import random
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

SMOKE_REWARD = "prefopt.smoke:reward"
SMOKE_JUDGE = "prefopt.smoke:judge"
N_ROWS = 16  # synthetic pairs / prompts per file
HIDDEN, LAYERS, HEADS, KV_HEADS, POSITIONS = 32, 2, 4, 2, 512
STANDIN_VERSION = 1  # bump when the stand-in configs change: the cached folders are keyed on it

# hub-id pattern (fnmatch, lower case) → transformers model_type; first match wins
FAMILIES: list[tuple[str, str]] = [
    ("meta-llama/*", "llama"), ("*llama*", "llama"), ("pku-alignment/alpaca-*", "llama"),
    ("mistralai/*", "mistral"), ("huggingfaceh4/zephyr-*", "mistral"), ("huggingfaceh4/mistral-*", "mistral"),
    ("*mistral*", "mistral"),
    ("qwen/qwen1.5*", "qwen2"), ("qwen/qwen2*", "qwen2"), ("qwen/*", "qwen2"), ("lmms-lab/*qwen2*", "qwen2"),
    ("google/gemma-2-*", "gemma2"), ("google/gemma*", "gemma"),
    ("microsoft/phi-3*", "phi3"), ("microsoft/phi-*", "phi"),
    ("openai-community/gpt2*", "gpt2"), ("gpt2*", "gpt2"),
    ("eleutherai/pythia*", "gpt_neox"), ("*pythia*", "gpt_neox"),
    ("eleutherai/gpt-j*", "gptj"), ("*gpt-j*", "gptj"), ("carperai/openai_summarize_tldr_sft*", "gptj"),
]


def _common(tok) -> dict[str, Any]:
    return {"vocab_size": len(tok), "pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id}


def _decoder(tok) -> dict[str, Any]:  # Llama-style names (llama, mistral, qwen2, gemma, phi, gpt_neox)
    return {**_common(tok), "hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN, "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS, "max_position_embeddings": POSITIONS}


# model_type → scaled-down config kwargs; every family is built through AutoConfig.for_model
STANDIN_CONFIGS = {
    "llama": lambda t: {**_decoder(t), "num_key_value_heads": KV_HEADS, "tie_word_embeddings": True},
    "mistral": lambda t: {**_decoder(t), "num_key_value_heads": KV_HEADS, "sliding_window": None},
    "qwen2": lambda t: {**_decoder(t), "num_key_value_heads": KV_HEADS, "tie_word_embeddings": True},
    "gemma": lambda t: {**_decoder(t), "num_key_value_heads": KV_HEADS, "head_dim": HIDDEN // HEADS},
    "gemma2": lambda t: {**_decoder(t), "num_key_value_heads": KV_HEADS, "head_dim": HIDDEN // HEADS,
                         "query_pre_attn_scalar": HIDDEN // HEADS, "sliding_window": 64},
    "phi": lambda t: _decoder(t),
    "phi3": lambda t: {**_decoder(t), "num_key_value_heads": KV_HEADS},
    "gpt_neox": lambda t: {**_decoder(t), "rotary_pct": 0.5},
    "gpt2": lambda t: {**_common(t), "n_embd": HIDDEN, "n_inner": 2 * HIDDEN, "n_layer": LAYERS, "n_head": HEADS,
                       "n_positions": POSITIONS},
    "gptj": lambda t: {**_common(t), "n_embd": HIDDEN, "n_inner": 2 * HIDDEN, "n_layer": LAYERS, "n_head": HEADS,
                       "n_positions": POSITIONS, "rotary_dim": HIDDEN // HEADS // 2},
}


def smoke_root() -> Path:
    root = Path(tempfile.gettempdir()) / "prefopt-smoke"
    root.mkdir(parents=True, exist_ok=True)
    return root


def reward(prompt, response: str) -> float:
    """The world's graded reward plus a tie-breaker in [0, 0.01) from a hash of the response.

    A random stand-in's samples are all far from the answer, so the world's reward alone would tie most of them and
    leave no preference to train on; the tie-breaker separates distinct responses and keeps the run deterministic.
    """
    from prefopt.world.tasks import reward as world_reward

    return world_reward(prompt, response) + (zlib.crc32(response.encode()) % 1000) / 100_000


def family_of(model: str) -> tuple[str, str | None]:
    """(transformers model_type of the stand-in, a note when the family was guessed)."""
    config = Path(model) / "config.json"
    if config.exists():  # a local folder: its own model_type
        model_type = json.loads(config.read_text()).get("model_type")
        if model_type in STANDIN_CONFIGS:
            return model_type, None
        return "llama", f"model_type {model_type!r} of {model} has no stand-in; using Llama"
    name = model.lower()
    for pattern, family in FAMILIES:
        if fnmatch.fnmatch(name, pattern):
            return family, None
    return "llama", f"no known architecture family for {model!r}; using a Llama stand-in"


def build_standin(family: str, seed: int = 0) -> Path:
    """A randomly initialised ``family`` model (seeded) with the world's tokenizer, saved once to a local folder."""
    final = smoke_root() / f"standin-{family}-v{STANDIN_VERSION}{f'-seed{seed}' if seed else ''}"
    if (final / "DONE").exists():
        return final
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from prefopt.world.tokenizer import build_tokenizer

    tok = build_tokenizer()
    tok.model_max_length = POSITIONS  # the world's 64 is too short for reward-augmented prompts
    config = AutoConfig.for_model(family, **STANDIN_CONFIGS[family](tok))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "DONE").touch()
    try:
        os.rename(tmp, final)
    except OSError:  # another process won the race with an identical folder
        shutil.rmtree(tmp, ignore_errors=True)
    return final


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


def judge(prompt, a: str, b: str) -> float:
    """P(a ≻ b) = σ((r(a) − r(b)) / 0.1) over the smoke ``reward``: the pairwise judge of smoke runs."""
    return 1.0 / (1.0 + math.exp(-(reward(prompt, a) - reward(prompt, b)) / 0.1))


def _in_package(spec: dict) -> bool:
    """Whether the spec's import path is prefopt's own (offline, and made for world prompts)."""
    return str(spec.get("fn", "")).startswith("prefopt.")


def _scorer(spec: Any, notes: list[str]) -> Any:
    """The smoke run's scorer: hub models and user modules are replaced by a scorer of the same kind (a reward
    function or a pairwise judge) over the world's reward; the policy's own judges are kept."""
    if spec is None:
        return None
    if isinstance(spec, str):
        spec = {"type": "reward_fn", "fn": spec} if ":" in spec else {"type": spec}
    spec = dict(spec)
    kind = spec.get("type")
    if kind == "self_preference" or (kind == "llm_judge" and spec.get("model") == "policy"):
        return {**spec, "labels": ["1", "2"]}  # the character tokenizer has no capitals
    if kind == "implicit_reward" or (kind in ("reward_fn", "pairwise_judge") and _in_package(spec)):
        return spec
    kept = {k: spec[k] for k in ("transform", "baseline") if k in spec}  # how scores are made, not what makes them
    if kind in ("llm_judge", "pairwise_judge"):  # keep a pairwise judge: strength pairing reads its matrices
        notes.append(f"scorer {kind} → pairwise judge {SMOKE_JUDGE}")
        return {"type": "pairwise_judge", "fn": SMOKE_JUDGE, **kept}
    notes.append(f"scorer {kind} → {SMOKE_REWARD}")
    return {"type": "reward_fn", "fn": SMOKE_REWARD, **kept} if kept else SMOKE_REWARD


def _pairing(cfg: DictConfig, notes: list[str]) -> None:
    """Open the thresholds of threshold rules: a random stand-in's samples are never far apart."""
    options = OmegaConf.to_container(cfg.pairing.options) or {}
    opened = {"min_margin": 0.0} if cfg.pairing.rule in ("margin", "all_pairs", "strength") else {}
    if cfg.pairing.rule == "dno":
        opened = {"min_positive": -1e9, "margin": 0.0, "margin_if_policy": 0.0}
    if opened:
        cfg.pairing.options = {**options, **opened}
        notes.append(f"pairing {cfg.pairing.rule} thresholds opened")


def _data(cfg: DictConfig, slug: str, notes: list[str]) -> None:
    seed = cfg.train.seed
    scale = None
    if cfg.augment:
        scale = tuple(cfg.augment.get("source_scale") or (1.0, 10.0))
    root = smoke_root()
    replaced = []
    for key, split, make in (("train", "train", "pairs"), ("eval", "eval", "pairs"),
                             ("prompts", "train", "prompts"), ("eval_prompts", "eval", "prompts")):
        if not cfg.data.get(key):
            continue
        rows = (synthetic_pairs(N_ROWS, split=split, seed=seed, scale=scale) if make == "pairs"
                else synthetic_prompts(N_ROWS, split=split, seed=seed))
        cfg.data[key] = _write_jsonl(root / f"{slug}-{key}.jsonl", rows)
        replaced.append(f"data.{key}")
    if replaced:
        notes.append(f"{', '.join(replaced)} → {N_ROWS} synthetic rows each")


def _budget(cfg: DictConfig, world: bool) -> None:
    t = cfg.train
    t.max_steps, t.per_device_batch_size, t.gradient_accumulation_steps = 2, 2, 1
    t.logging_steps, t.save_steps, t.warmup_steps = 1, 0, 0
    t.bf16, t.gradient_checkpointing = False, False
    g = cfg.generation
    g.k, g.max_new_tokens, g.backend = max(2, min(g.k, 4)), min(g.max_new_tokens, 8), "hf"
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
    cfg.report_to, cfg.overwrite, cfg.resume = "none", True, False


def apply_smoke(cfg: DictConfig) -> DictConfig:
    """A copy of ``cfg`` that runs on CPU in under a minute, offline (see the module docstring)."""
    cfg = copy.deepcopy(cfg)
    import torch

    torch.set_num_threads(1)  # a 32-wide model gains nothing from threads; on a busy 2-core box two run 2x slower
    slug = (cfg.recipe or "run").replace("/", "-")
    notes: list[str] = []
    world = cfg.model is None
    if not world:
        family, note = family_of(cfg.model)
        if note:
            notes.append(note)
        path = build_standin(family)
        notes.append(f"model {cfg.model} → {LAYERS}-layer {family} stand-in (hidden {HIDDEN})")
        cfg.model, cfg.tokenizer = str(path), None
        if cfg.reference.model:
            notes.append(f"reference.model {cfg.reference.model} → a frozen copy of the stand-in")
            cfg.reference.model = None
        if cfg.previous_model:  # another seed: M0 = M1 would make every implicit reward 0
            previous_family, _ = family_of(cfg.previous_model)
            notes.append(f"previous_model {cfg.previous_model} → a {previous_family} stand-in of another seed")
            cfg.previous_model = str(build_standin(previous_family, seed=1))
    _data(cfg, slug, notes)
    scorer = _scorer(OmegaConf.to_container(cfg.scorer) if OmegaConf.is_config(cfg.scorer) else cfg.scorer, notes)
    cfg.scorer = scorer
    if cfg.reward:
        if cfg.reward != SMOKE_REWARD:
            notes.append(f"reward {cfg.reward} → {SMOKE_REWARD}")
        cfg.reward = SMOKE_REWARD
    if not world:
        _pairing(cfg, notes)
    _budget(cfg, world)
    if cfg.output_dir is None:
        out = smoke_root() / f"{slug}-run"
        # Start fresh: a finished round (round_k/DONE) is never redone, even with overwrite=true. Only the main
        # process clears; the others read the folder after run()'s first barrier, when this has happened.
        if os.environ.get("RANK", "0") == "0" and out.exists():
            shutil.rmtree(out)
        cfg.output_dir = str(out)
    budget = (f"{cfg.train.max_steps} steps × batch {cfg.train.per_device_batch_size}, {cfg.data.n_prompts} prompts, "
              f"K={cfg.generation.k}, {cfg.rounds} round(s)")
    print(f"[prefopt] smoke: {'; '.join(notes + [budget])}; output: {cfg.output_dir}", flush=True)
    return cfg
