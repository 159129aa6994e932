"""CREAM (Wang et al., 2024, arXiv 2410.12735): consistency regularisation keeps self-rewarding from drifting.

Claim: with a noisy self-judge, consistency-regularised rounds keep or raise the reward where plain
self-rewarding (C = 1) falls or rises less.

The world's model cannot judge itself (``recipes/cream.yaml``), so the judge is the world reward seen through an
error that shares the policy's own bias (``prefopt.world.noisy:self_biased_reward``: error size σ = 0.3, correlated
0.7 with the base policy's per-token likelihood): a judge that prefers what the policy already finds likely, as a
self-rewarding model does. Protocol v1's judge erred by exogenous noise, which leaves no self-bias to correct.
Both arms run 3 rounds of 256 fresh prompts × K = 4 samples, best vs worst by the judge, 50 steps per round, each
round against its own starting policy. CREAM weights each pair by C = (τ + 1)/2, Kendall's τ between the judge's
ranking and the previous iterate's own implicit-reward ranking of the same samples (round 0: C = 1); the plain arm
is DPO (C = 1).
"""

from __future__ import annotations

from benchmarks.claims.budget import recipe
from benchmarks.claims.controls import SELF_JUDGE
from benchmarks.claims.core import Arm, Check, Claim

ROUNDS, PROMPTS, STEPS = 3, 256, 50  # per round
JUDGE = "scorer=prefopt.world.noisy:self_biased_reward"

CLAIM = Claim(
    name="cream",
    title="CREAM",
    statement="With a noisy self-judge, consistency-regularised rounds keep or raise the reward where plain "
              "self-rewarding (C = 1) falls or rises less.",
    setting=f"Self-biased judge: world reward + 0.3·(0.7·z + 0.71·ε), z the base policy's standardised per-token "
            f"log-likelihood, ε fixed noise per response. {ROUNDS} rounds × {PROMPTS} prompts × "
            f"K = 4, best vs worst by the judge, {STEPS} steps per round. CREAM: per-sample consistency C with the "
            "previous iterate's implicit reward. Plain: DPO (C = 1).",
    arms=(
        Arm("cream", "CREAM, consistency-weighted", recipe("cream", f"rounds={ROUNDS}", JUDGE, prompts=PROMPTS,
                                                          steps=STEPS)),
        Arm("plain", "self-rewarding DPO (C = 1)", recipe("dpo", f"rounds={ROUNDS}", JUDGE, prompts=PROMPTS,
                                                          steps=STEPS)),
    ),
    checks=(
        Check("CREAM keeps or raises its reward after iteration 1", ("cream", "reward"), ("cream", "reward_iter1"),
              kind="no_worse"),
        Check("CREAM > plain self-rewarding after 3 iterations (held-out reward)", ("cream", "reward"),
              ("plain", "reward")),
    ),
    control=SELF_JUDGE,
    notes="The judge is the world reward with an error tied to the base policy's likelihood, not the model's own "
          "implicit reward (the 134k-parameter model cannot reward itself; recipes/cream.yaml); its bias follows the "
          "base, not each iterate. Consistency is measured as the paper does, against the "
          "previous iterate's implicit reward.",
    docs="docs/losses/cream.md",
    metrics={"reward": "held-out (exact) reward after the last round", "reward_iter1": "after the first round"},
)
