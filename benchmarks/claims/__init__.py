"""Each paper's claim, tested on the tiny world: pre-registered experiments with seeds, intervals and a verdict.

    python -m benchmarks.claims                     # every claim at full size; writes docs/claims.md (~20-40 min)
    python -m benchmarks.claims lipo dno            # some claims; prints one JSON line per claim
    python -m benchmarks.claims dpo --size smoke    # the smallest size: checks the machinery (CI)
    python -m benchmarks.claims --report            # re-render docs/claims.md and the quotes from saved results

One module per claim (``lipo``, ``dno``, ...) defines it: the arms (``prefopt.train`` overrides), the checks and the
notes; ``core`` holds the shared grid, seeds, sizes and the verdict rule, all fixed before any result was seen.
"""

from __future__ import annotations

import importlib

from benchmarks.claims.core import Claim

NAMES = ("lipo", "dno", "d2o", "cream", "osp", "rrpo", "ches", "ra_dpo", "dpo")  # the table's order
RUN_ORDER = ("dpo", "rrpo", "ra_dpo", "ches", "d2o", "osp", "dno", "lipo", "cream")  # cheapest first


def load(name: str) -> Claim:
    """The claim defined in ``benchmarks/claims/<name>.py``."""
    if name not in NAMES:
        raise ValueError(f"unknown claim {name!r}; valid: {', '.join(NAMES)}")
    return importlib.import_module(f"benchmarks.claims.{name}").CLAIM
