"""The tiny world's base policy: a small Llama built from a config, warmed up on imperfect demonstrations, cached.

    from prefopt.world import load_base_policy, world_paths
    model, tokenizer = load_base_policy()            # shipped checkpoint, else cached, else built (~30 s)
    AutoModelForCausalLM.from_pretrained(world_paths().model)   # the same model, as a local HF folder

Where the weights come from, first match wins:
  1. ``prefopt/world/assets/tiny-world-v1`` (shipped in the package, made by ``python -m prefopt.world.build``),
     when ``use_assets`` and the requested config is the one the assets were built from (same fingerprint);
  2. the cache: ``<root>/tiny-world-v1`` for the default config, ``<root>/tiny-world-v1-<fingerprint>`` for any
     other, with ``<root>`` = ``cache_dir``, else ``$PREFOPT_CACHE``, else ``~/.cache/prefopt``;
  3. a fresh build into the cache: built in a temporary folder beside it and renamed into place, so concurrent
     processes never see a half-written model (the loser of a race discards its identical copy).

The fingerprint hashes the config, the vocabulary, the chat template, the task constants and ``WORLD_VERSION``
(bump it when the warm-up or task code changes meaning), so stale shipped or cached weights are never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from prefopt.world import tasks
from prefopt.world.tokenizer import CHAT_TEMPLATE, build_tokenizer, vocabulary

WORLD_VERSION = 1
WORLD_NAME = f"tiny-world-v{WORLD_VERSION}"
ASSETS_DIR = Path(__file__).parent / "assets" / WORLD_NAME
MANIFEST = "world.json"


@dataclass(frozen=True)
class WorldConfig:
    """Architecture and warm-up of the base policy. The defaults are what the recipes and the assets use."""

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    mlp_ratio: int = 4
    warmup_steps: int = 320  # ~30 s on one CPU core; the base stays imperfect (sampled reward ~0.6)
    batch_size: int = 128
    lr: float = 8e-3
    noise: float = 0.0  # per-character corruption probability of the demonstrations
    tie_embeddings: bool = True
    repeat_rate: float = 0.5  # share of demonstrations that say the answer twice
    seed: int = 0

    def fingerprint(self) -> str:
        """Short hash of everything that determines the built weights."""
        world = {"version": WORLD_VERSION, "config": asdict(self), "vocab": vocabulary(), "template": CHAT_TEMPLATE,
                 "tasks": [tasks.TASKS, tasks.MIN_LEN, tasks.MAX_LEN, tasks.EVAL_FRACTION]}
        return hashlib.sha256(json.dumps(world, sort_keys=True).encode()).hexdigest()[:12]


class WorldPaths(NamedTuple):
    """Local folders to pass to ``AutoModelForCausalLM.from_pretrained`` / ``AutoTokenizer.from_pretrained``."""

    model: Path
    tokenizer: Path


def build_model(config: WorldConfig, tokenizer):
    """A randomly initialised ``LlamaForCausalLM`` sized by ``config`` (seeded: same config, same weights)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    llama = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.mlp_ratio * config.hidden_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_heads,
        max_position_embeddings=tokenizer.model_max_length,
        tie_word_embeddings=config.tie_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):  # seed the init without disturbing the caller's RNG
        torch.manual_seed(config.seed)
        model = LlamaForCausalLM(llama)
    model.generation_config.max_new_tokens = tasks.MAX_NEW_TOKENS
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def build_base_policy(out_dir: str | Path, config: WorldConfig | None = None, *, log_every: int = 0) -> Path:
    """Build, warm up and save the base policy and tokenizer to ``out_dir`` (HF format). Not atomic: see
    ``world_paths`` for the cached, concurrency-safe entry point."""
    from prefopt.world.warmup import warm_up

    config = config or WorldConfig()
    out_dir = Path(out_dir)
    start, cpu_start = time.perf_counter(), time.process_time()
    tokenizer = build_tokenizer(padding_side="left")
    model = build_model(config, tokenizer)
    # One thread: the model is too small to gain from intra-op threads (on a busy 2-core machine two threads ran
    # ten times slower), and a fixed thread count keeps float reductions, hence the weights, machine-independent.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            losses = warm_up(model, tokenizer, steps=config.warmup_steps, batch_size=config.batch_size, lr=config.lr,
                             noise=config.noise, repeat_rate=config.repeat_rate, seed=config.seed, log_every=log_every)
    finally:
        torch.set_num_threads(threads)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    manifest = {"name": WORLD_NAME, "fingerprint": config.fingerprint(), "config": asdict(config),
                "final_loss": round(sum(losses[-20:]) / max(1, len(losses[-20:])), 4),
                "build_seconds": round(time.perf_counter() - start, 1),
                "build_cpu_seconds": round(time.process_time() - cpu_start, 1), "torch": torch.__version__}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")  # written last: marks a complete build
    return out_dir


def _fingerprint_of(folder: Path) -> str | None:
    try:
        return json.loads((folder / MANIFEST).read_text())["fingerprint"]
    except (OSError, ValueError, KeyError):
        return None


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, else ``$PREFOPT_CACHE``, else ``~/.cache/prefopt``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get("PREFOPT_CACHE") or Path.home() / ".cache" / "prefopt").expanduser()


def _build_into_cache(final: Path, config: WorldConfig) -> None:
    """Build in a temporary sibling folder, then rename it to ``final`` (atomic on one filesystem)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.building-", dir=final.parent))
    try:
        build_base_policy(tmp, config)
        if final.exists() and _fingerprint_of(final) != config.fingerprint():  # stale: move it aside, then drop
            stale = Path(tempfile.mkdtemp(prefix=f".{final.name}.stale-", dir=final.parent))
            os.replace(final, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.rename(tmp, final)
        except OSError:
            if _fingerprint_of(final) != config.fingerprint():  # not a lost race with an identical build
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def world_paths(cache_dir: str | Path | None = None, *, config: WorldConfig | None = None,
                use_assets: bool = True) -> WorldPaths:
    """Local folder of the base policy and tokenizer, building it into the cache on first use (see module doc)."""
    config = config or WorldConfig()
    fingerprint = config.fingerprint()
    if use_assets and _fingerprint_of(ASSETS_DIR) == fingerprint:
        return WorldPaths(ASSETS_DIR, ASSETS_DIR)
    name = WORLD_NAME if config == WorldConfig() else f"{WORLD_NAME}-{fingerprint}"
    final = cache_root(cache_dir) / name
    if _fingerprint_of(final) != fingerprint:
        _build_into_cache(final, config)
    return WorldPaths(final, final)


def load_base_policy(cache_dir: str | Path | None = None, *, config: WorldConfig | None = None,
                     use_assets: bool = True):
    """The tiny world's base policy and tokenizer, ``(LlamaForCausalLM in eval mode, tokenizer)``, float32 on CPU.

    Args:
        cache_dir: where to cache a built model (default ``$PREFOPT_CACHE`` or ``~/.cache/prefopt``).
        config: a non-default ``WorldConfig`` (tests use a short warm-up); it gets its own cache folder.
        use_assets: False ignores the shipped checkpoint and builds (or reuses) one in the cache.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    paths = world_paths(cache_dir, config=config, use_assets=use_assets)
    model = AutoModelForCausalLM.from_pretrained(paths.model, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(paths.tokenizer)
    return model.eval(), tokenizer
