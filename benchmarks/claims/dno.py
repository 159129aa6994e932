"""DNO (Rosset et al., 2024, arXiv 2404.03715): iterating against a preference oracle keeps improving the policy.

Claim: reward rises over 3 iterations, and the final policy beats single-round DPO given the same total steps and
prompts. DNO runs the world recipe (``recipes/dno.yaml``: the world's Bradley–Terry judge, DNO's large-margin
pairs, soft targets) for 3 rounds of 384 fresh prompts and 50 steps each; DPO gets all 1,152 prompts and 150 steps
in one round, ranked by the world reward (the judge's win rates order a list exactly as the reward does, so the
single-round arm sees the same preferences, only not on-policy).
"""

from __future__ import annotations

from benchmarks.claims.budget import recipe
from benchmarks.claims.controls import pair_signal
from benchmarks.claims.core import Arm, Check, Claim

ROUNDS, PROMPTS, STEPS = 3, 384, 50  # per round

CLAIM = Claim(
    name="dno",
    title="DNO",
    statement="Reward rises over 3 iterations, and the final policy beats single-round DPO given the same total "
              "steps and prompts.",
    setting=f"World Bradley–Terry judge (τ 0.1). DNO: {ROUNDS} rounds × {PROMPTS} fresh prompts × K = 4, "
            f"{STEPS} steps each, each round against the previous iterate. DPO: one round, "
            f"{ROUNDS * PROMPTS} prompts × K = 4, best vs worst, {ROUNDS * STEPS} steps.",
    arms=(
        Arm("dno", f"DNO, {ROUNDS} iterations", recipe("dno", f"rounds={ROUNDS}", prompts=PROMPTS, steps=STEPS)),
        Arm("dpo", "DPO, one round, same prompts and steps",
            recipe("dpo", prompts=ROUNDS * PROMPTS, steps=ROUNDS * STEPS)),
    ),
    checks=(
        Check("DNO iteration 3 > DNO iteration 1 (held-out reward)", ("dno", "reward"), ("dno", "reward_iter1")),
        Check("DNO after 3 iterations > single-round DPO (held-out reward)", ("dno", "reward"), ("dpo", "reward")),
    ),
    control=pair_signal("dno", round_index=1, by_world_reward=True),
    notes="'Rises over 3 iterations' is tested as iteration 3 above iteration 1 (every policy is far above the "
          "base after one iteration). The paper's gold responses and replay are not used (the world recipe's "
          "choice).",
    docs="docs/losses/dno.md",
    metrics={"reward": "held-out reward after the last round", "reward_iter1": "after the first round"},
)
