"""Each paper's claim, tested on the tiny world under protocol v2: controls, tuning and evaluation seeds, paired tests.

    python -m benchmarks.claims                     # every claim at full size; writes docs/claims.md
    python -m benchmarks.claims lipo dno            # some claims; prints one JSON line per claim
    python -m benchmarks.claims dpo --seeds 100 101 102 103 104 105   # other evaluation seeds
    python -m benchmarks.claims dpo --size smoke    # the smallest size: checks the machinery (CI)
    python -m benchmarks.claims --report            # re-render docs/claims.md and the quotes from saved results
    python -m benchmarks.claims real_dpo real_lipo  # the real-model arm (SmolLM2-135M world), a separate command

One module per claim (``lipo``, ``dno``, ...) defines it: the arms (``prefopt.train`` overrides), the checks, the
positive control and the notes; ``core`` holds the protocol (grid, seeds, sizes, margins, verdict rule), ``stats``
its statistics, ``protocol`` runs a claim phase by phase and ``summary`` reads the runs; all fixed before any v2
result was seen.
"""

from __future__ import annotations

import importlib

from benchmarks.claims.core import Claim

NAMES = ("lipo", "dno", "d2o", "cream", "osp", "rrpo", "ches", "ra_dpo", "dpo")  # the table's order
REAL_NAMES = ("real_dpo", "real_lipo")  # the real-model arm: its own command (python -m benchmarks.claims real_dpo ...)
RUN_ORDER = ("dpo", "rrpo", "d2o", "ra_dpo", "ches", "osp", "cream", "lipo", "dno")  # shared runs and controls first


def load(name: str) -> Claim:
    """The claim defined in ``benchmarks/claims/<name>.py``."""
    if name not in NAMES + REAL_NAMES:
        raise ValueError(f"unknown claim {name!r}; valid: {', '.join(NAMES + REAL_NAMES)}")
    return importlib.import_module(f"benchmarks.claims.{name}").CLAIM
