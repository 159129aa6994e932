"""The real-model arm: DPO beats the SFT policy on the SmolLM2-135M world (``model=smollm2-135m``).

A separate command, not part of the default suite (a run of a 135M model on CPU costs minutes, not seconds):

    python -m benchmarks.claims real_dpo real_lipo

The world (prefopt/world/smollm2.py, the real-model issue) supplies the prompts, the reward (one complete short
sentence that names the subject) and the overlay (LoRA, lengths); the run here only names the model. The arm runs
at the world's own settings (``WORLD_POINT``: its overlay's β and learning rate, not searched: one grid point), so
tuning only measures the paired sd for the power calculation. The SFT policy is the instruct model itself, read in
the same runs before training (``reward_before``).
"""

from __future__ import annotations

from benchmarks.claims.budget import recipe
from benchmarks.claims.controls import pair_signal
from benchmarks.claims.core import WORLD_POINT, Arm, Check, Claim

WORLD = "model=smollm2-135m"
PROMPTS, STEPS, EVAL = 128, 40, (64, 2)  # per run; the held-out reward on 64 prompts × 2 samples
# The world's own K and pairing, spelled out: real_lipo's DPO arm has the very same overrides, so the two claims
# share these runs (a run is cached by its override list) instead of training the same DPO twice.
DPO_PAIRS = (WORLD, "generation.k=4", "pairing.rule=best_vs_worst")

CLAIM = Claim(
    name="real_dpo",
    title="DPO on SmolLM2-135M",
    statement="DPO beats the SFT policy (the check that the others rest on), on a real 135M instruct model.",
    setting=f"SmolLM2-135M-Instruct world (its reward and overlay). {PROMPTS} prompts × K = 4 samples of the "
            f"instruct model, best vs worst; {STEPS} steps. SFT: the instruct model, evaluated in the same runs "
            f"before training, on {EVAL[0]} held-out prompts × {EVAL[1]}.",
    arms=(Arm("dpo", "DPO", recipe("dpo", *DPO_PAIRS, prompts=PROMPTS, steps=STEPS)),),
    checks=(Check("DPO > SFT policy (held-out reward)", ("dpo", "reward"), ("dpo", "reward_before"),
                  margin=0.02),),
    control=pair_signal("dpo"),
    grid=(WORLD_POINT,),
    eval_size=EVAL,
    notes="Margin 0.02 on the world's reward scale (a complete named sentence scores about 1.3, a cut-off one "
          "about 0.3). The reward scores form, not content: one short complete sentence that names the subject. A "
          "trained model answers 'A volcano is a volcano.' (docs/worlds.md, 'What this reward does not measure'), so "
          "the verdict says DPO optimises the reward it is given on a real model, not that the answers got better.",
    docs="docs/losses/dpo.md",
    metrics={"reward": "held-out reward after DPO", "reward_before": "held-out reward of the instruct model"},
)
