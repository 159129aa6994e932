"""OSP (Zhai et al., 2024, arXiv 2405.14103): soft preference strengths beat hard labels from the same judge.

Claim: soft preferences from a noisy judge beat hard labels from the same judge.

The judge is ``prefopt.world.noisy:self_biased_judge``: the world reward seen through an error of size σ = 0.3 that
correlates 0.7 with the base policy's own per-token likelihood (a judge that prefers what the policy already finds
likely, as a self-preferring policy does), reporting P(a ≻ b) = Φ((r̂_a − r̂_b)/(σ√2)).
Both arms run the world OSP recipe's 2 rounds of 256 fresh prompts × K = 4 samples, 50 steps per round, on the
same pairs: every pair the judge's win rates order (``pairing.rule=strength`` and ``all_pairs`` keep the same
pairs). OSP trains on each pair's judged strength as a soft label (``osp`` loss); the hard arm trains DPO on the
same pairs, label 1.
"""

from __future__ import annotations

from benchmarks.claims.budget import recipe
from benchmarks.claims.controls import SELF_JUDGE
from benchmarks.claims.core import Arm, Check, Claim

ROUNDS, PROMPTS, STEPS = 2, 256, 50  # per round
JUDGE = "scorer.fn=prefopt.world.noisy:self_biased_judge"

CLAIM = Claim(
    name="osp",
    title="OSP",
    statement="Soft preferences from a noisy judge beat hard labels from the same judge.",
    setting=f"Self-biased pairwise judge (world reward + 0.3·(0.7·z + 0.71·ε), z the base policy's standardised "
            f"per-token log-likelihood; calibrated probability). {ROUNDS} rounds × "
            f"{PROMPTS} prompts × K = 4, every ordered pair, {STEPS} steps per round. OSP: soft label = judged "
            "strength. Hard: DPO on the same pairs.",
    arms=(
        Arm("osp", "OSP, soft labels", recipe("osp", f"rounds={ROUNDS}", JUDGE, "pairing.rule=strength",
                                               prompts=PROMPTS, steps=STEPS)),
        Arm("hard", "DPO, hard labels, same pairs", recipe("osp", f"rounds={ROUNDS}", JUDGE, "pairing.rule=all_pairs",
                                                           "loss.name=dpo", prompts=PROMPTS, steps=STEPS)),
    ),
    checks=(
        Check("OSP soft labels > hard labels (held-out reward)", ("osp", "reward"), ("hard", "reward")),
    ),
    control=SELF_JUDGE,
    notes="The judge is the world reward with an error tied to the base policy's likelihood, not the policy judging "
          "itself (the world's model cannot judge; recipes/osp.yaml); its bias follows the base, not each iterate.",
    docs="docs/losses/osp.md",
    metrics={"reward": "held-out (exact) reward after the last round"},
)
