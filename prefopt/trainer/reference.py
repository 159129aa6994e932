"""Reference log-probs: a frozen model, the PEFT base with the adapter off, or precomputed once and cached on disk.

The precomputed cache is keyed by (fingerprint of the tokenized data, hash of the reference weights), so a rerun
on the same data and model reads it instead of recomputing, and any change to either misses the cache.

Under ``accelerate launch`` every process calls ``precompute_ref_logps``: the cache is read only when every process
sees it (each node may have its own cache folder), otherwise each process computes whole batches of the lists and
all gather the whole (``prefopt.distributed``; the batches are the ones one process would run, so the log-probs
are bit-for-bit the same on any number of processes); the first process of each node writes that node's cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import nullcontext
from pathlib import Path

from accelerate import PartialState
from accelerate.utils import gather_object
from peft import PeftModel
from trl.trainer.utils import hash_module

from prefopt.cache import cache_dir
from prefopt.distributed import shard_map
from prefopt.trainer.collate import ListCollator
from prefopt.trainer.logps import feature_logps


def adapter_off(model):
    """Context in which a PEFT model computes as its base model (no second copy of the weights)."""
    core = getattr(model, "module", model)
    if not isinstance(core, PeftModel):
        raise ValueError("reference.mode=adapter needs a PEFT model (set peft.enabled=true)")
    return core.disable_adapter()


def features_fingerprint(features: list[dict]) -> str:
    h = hashlib.sha256()
    for f in features:
        h.update(json.dumps([f["prompt_ids"], f["response_ids"]]).encode())
    return h.hexdigest()[:16]


def default_cache_dir() -> Path:
    return cache_dir("ref_logps")


def precompute_ref_logps(ref_model, features: list[dict], collator: ListCollator, *, batch_size: int = 16,
                         cache_dir: str | Path | None = None, disable_adapter: bool = False) -> list[dict]:
    """Return copies of ``features`` with ``"ref_logps"`` (K floats) added, read from or written to the cache."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = f"{features_fingerprint(features)}-{hash_module(ref_model)[:16]}-{collator.max_length}"
    path = cache_dir / f"{key}.json"
    state = PartialState()
    if all(gather_object([path.exists()])):  # one decision for all processes: they must all compute, or none
        cached = json.loads(path.read_text())
    else:
        part = lambda batch: feature_logps(ref_model, batch, collator, batch_size=batch_size)
        with adapter_off(ref_model) if disable_adapter else nullcontext():
            # one batch per call, the batches one process would run: exact on any number of processes
            cached = shard_map(part, features, unit=batch_size, desc="reference log-probs")
        if state.is_local_main_process:
            cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")  # nodes sharing one folder do not write the same tmp
            tmp.write_text(json.dumps(cached))
            tmp.replace(path)  # atomic: a killed run never leaves half a cache
    return [{**f, "ref_logps": r} for f, r in zip(features, cached, strict=True)]

