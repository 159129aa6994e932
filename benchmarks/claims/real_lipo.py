"""The real-model arm: LiPO-λ against DPO on the same graded lists, on the SmolLM2-135M world.

    python -m benchmarks.claims real_lipo

Both arms sample the same K = 4 lists per prompt from the instruct model (same seed, same prompts); LiPO-λ trains on
the whole list, DPO on its best-vs-worst pair, for equal steps, at the world's own settings (``WORLD_POINT``).
"""

from __future__ import annotations

from benchmarks.claims.budget import recipe
from benchmarks.claims.controls import graded_lists
from benchmarks.claims.core import WORLD_POINT, Arm, Check, Claim
from benchmarks.claims.real_dpo import DPO_PAIRS, EVAL, PROMPTS, STEPS, WORLD

CLAIM = Claim(
    name="real_lipo",
    title="LiPO-λ on SmolLM2-135M",
    statement="With graded lists, LiPO-λ beats DPO on best-vs-worst pairs from the same lists, on a real 135M "
              "instruct model.",
    setting=f"SmolLM2-135M-Instruct world. {PROMPTS} prompts × K = 4 samples of the instruct model; {STEPS} "
            f"steps of lists (LiPO-λ) or pairs (DPO, best vs worst of the same list). Held-out reward on "
            f"{EVAL[0]} prompts × {EVAL[1]}.",
    arms=(
        Arm("lipo", "LiPO-λ on the K = 4 list", recipe("lipo", WORLD, "generation.k=4", "pairing.rule=full_list",
                                                       prompts=PROMPTS, steps=STEPS)),
        Arm("dpo", "DPO, best vs worst of the same list", recipe("dpo", *DPO_PAIRS, prompts=PROMPTS, steps=STEPS)),
    ),
    checks=(Check("LiPO-λ > DPO best-vs-worst (held-out reward)", ("lipo", "reward"), ("dpo", "reward"),
                  margin=0.02),),
    control=graded_lists("lipo"),
    grid=(WORLD_POINT,),
    eval_size=EVAL,
    notes="K = 4 rather than the tiny world's 8: a list of 8 samples of a 135M model costs too much CPU here. The "
          "reward scores form, not content (real_dpo's notes, docs/worlds.md).",
    docs="docs/losses/lipo.md",
    metrics={"reward": "held-out reward after training"},
)
