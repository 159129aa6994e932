"""RRPO (Sarkar & Etemad, 2025, arXiv 2504.12083): a refined margin plus token-wise KL keeps the policy close.

Claim: at a matched reward gain, RRPO stays closer to the reference (lower sequence KL) than DPO.

Both arms train on the same best-vs-worst pairs (512 prompts × K = 4 samples of the base policy, world reward) for
75 steps: RRPO with its refined sub-sequence margin and token-wise KL (α = 0.01, ``recipes/rrpo.yaml``), DPO as
``recipes/dpo.yaml``. The sequence KL to the base policy (the reference) is estimated on the policy's own held-out
samples, KL(π ‖ π_ref) = E_{y∼π}[log π(y|x) − log π_ref(y|x)] (``measures.kl``). "Matched reward gain" is tested as
RRPO's reward not below DPO's, each arm at its best-reward grid point.
"""

from __future__ import annotations

from benchmarks.claims.budget import recipe
from benchmarks.claims.core import Arm, Check, Claim

CLAIM = Claim(
    name="rrpo",
    title="RRPO",
    statement="At a matched reward gain, RRPO stays closer to the reference (lower sequence KL) than DPO.",
    setting="World reward. 512 prompts × K = 4 base samples, best vs worst; 75 steps × 32 pairs. RRPO α = 0.01 "
            "(refined segments by token alignment). Sequence KL to the base on 256 held-out prompts × 4 samples.",
    arms=(
        Arm("rrpo", "RRPO", recipe("rrpo"), measures=("kl",)),
        Arm("dpo", "DPO", recipe("dpo"), measures=("kl",)),
    ),
    checks=(
        Check("RRPO reward not below DPO's (matched gain)", ("rrpo", "reward"), ("dpo", "reward"), kind="no_worse"),
        Check("RRPO sequence KL < DPO's", ("rrpo", "kl"), ("dpo", "kl"), lower_is_better=True),
    ),
    notes="Best grid point per arm by reward; the KL is read at that point.",
    docs="docs/losses/rrpo.md",
    metrics={"reward": "held-out reward", "kl": "sequence KL(π ‖ π_ref) on held-out samples (nats)"},
)
