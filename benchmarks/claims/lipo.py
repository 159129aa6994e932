"""LiPO-λ (Liu et al., 2024, arXiv 2402.01878): the whole graded list beats DPO on pairs drawn from it.

Claim: with graded K = 8 lists, LiPO-λ beats DPO on best-vs-worst pairs from the same lists, and DPO on random
pairs, at equal prompts and steps. Every arm samples from the same 512 train prompts per seed (the base policy,
seeded: the K = 8 lists of the first two arms are the same lists) and takes 75 steps of 32 lists or pairs.

A random pair is two samples drawn from the policy and ordered by the reward (ties dropped): the
``generation.k=2`` arm, since the samples of a list are i.i.d., so its pair is distributed as a random pair of the
K = 8 list (not the same draw: prefopt's pairing rules pick by score, and none picks at random).
"""

from __future__ import annotations

from benchmarks.claims.budget import recipe
from benchmarks.claims.controls import graded_lists
from benchmarks.claims.core import Arm, Check, Claim

CLAIM = Claim(
    name="lipo",
    title="LiPO-λ",
    statement="With graded K = 8 lists, LiPO-λ beats DPO on best-vs-worst pairs from the same lists, and DPO on "
              "random pairs, at equal prompts and steps.",
    setting="World reward (graded). 512 train prompts × K = 8 samples of the base policy; 75 steps × 32 lists "
            "(LiPO-λ) or pairs (DPO). DPO random pairs: K = 2 samples per prompt, best vs worst.",
    arms=(
        Arm("lipo", "LiPO-λ on the K = 8 list", recipe("lipo", "generation.k=8", "pairing.rule=full_list")),
        Arm("dpo_best_worst", "DPO, best vs worst of the same K = 8 list",
            recipe("dpo", "generation.k=8", "pairing.rule=best_vs_worst")),
        Arm("dpo_random", "DPO, a random pair (K = 2) per prompt", recipe("dpo", "generation.k=2")),
    ),
    checks=(
        Check("LiPO-λ > DPO best-vs-worst (held-out reward)", ("lipo", "reward"), ("dpo_best_worst", "reward")),
        Check("LiPO-λ > DPO random pairs (held-out reward)", ("lipo", "reward"), ("dpo_random", "reward")),
    ),
    control=graded_lists("lipo"),
    notes="Random pairs are K = 2 samples ordered by reward (distributed as a random pair of the list; no pairing "
          "rule draws one at random from a K = 8 list).",
    docs="docs/losses/lipo.md",
    metrics={"reward": "mean held-out world reward after training"},
)
