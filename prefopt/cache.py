"""prefopt's on-disk cache, ``$PREFOPT_CACHE`` (default ``~/.cache/prefopt``): inputs that are expensive or
deterministic to rebuild (precomputed reference log-probs, smoke mode's stand-in models and synthetic data), never a
run's outputs, which go under its ``output_dir``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(name: str) -> Path:
    """``$PREFOPT_CACHE/name`` (not created here)."""
    return Path(os.environ.get("PREFOPT_CACHE", Path.home() / ".cache" / "prefopt")) / name
