"""DPO (Rafailov et al., 2023, arXiv 2305.18290): preference optimisation beats the SFT policy it starts from.

Claim: DPO beats the SFT policy (the check that the others rest on). The SFT policy is the world's base policy
(supervised warm-up on demonstrations, ``prefopt/world/warmup.py``); DPO trains 75 steps on best-vs-worst pairs of
its samples (512 prompts × K = 4, ``recipes/dpo.yaml``). The base's reward is read in the same runs, before
training, on the same held-out prompts (``reward_before``).
"""

from __future__ import annotations

from benchmarks.claims.budget import recipe
from benchmarks.claims.controls import pair_signal
from benchmarks.claims.core import Arm, Check, Claim

CLAIM = Claim(
    name="dpo",
    title="DPO",
    statement="DPO beats the SFT policy (the check that the others rest on).",
    setting="World reward. 512 prompts × K = 4 samples of the SFT (base) policy, best vs worst; 75 steps × 32 "
            "pairs. SFT: the base policy, evaluated in the same runs before training.",
    arms=(Arm("dpo", "DPO", recipe("dpo")),),
    checks=(Check("DPO > SFT policy (held-out reward)", ("dpo", "reward"), ("dpo", "reward_before")),),
    control=pair_signal("dpo"),
    notes="The SFT arm needs no training run: it is each run's reward before training.",
    docs="docs/losses/dpo.md",
    metrics={"reward": "held-out reward after DPO", "reward_before": "held-out reward of the SFT (base) policy"},
)
