"""Reward-augmented DPO (Zhang et al., 2024, arXiv 2410.08067): the same pairs, relabelled by goal, beat plain DPO.

Claim: on the same pairs, RA-DPO beats DPO.

Both arms train 75 steps on the same best-vs-worst pairs (512 prompts × K = 4 base samples, world reward; the
plain arm is ``recipes/dpo.yaml`` as in the DPO and RRPO claims). RA-DPO turns each pair into two rows conditioned
on a goal score (``augment:``, rewards rescaled from [0, 1] to 1-10), stated in a system turn. The authors'
goal sentence is some 190 characters, three times the world model's context of 64 positions, so the world states
it as ``goal {score}`` (``augment.template``); the method is unchanged. At inference RA-DPO is conditioned on the
top score, 10, as the authors evaluate (``measures.reward_goal``); DPO is evaluated on the plain prompts.
"""

from __future__ import annotations

from benchmarks.claims.budget import recipe
from benchmarks.claims.core import Arm, Check, Claim

AUGMENT = ("augment.source_scale=[0,1]", "augment.system_role=true", "augment.template=goal {score}")

CLAIM = Claim(
    name="ra_dpo",
    title="Reward-augmented DPO",
    statement="On the same pairs, RA-DPO beats DPO.",
    setting="World reward. 512 prompts × K = 4 base samples, best vs worst; 75 steps × 32 rows. RA-DPO: two "
            "goal-conditioned rows per pair ('goal 8.2' as a system turn), evaluated with 'goal 10'.",
    arms=(
        Arm("ra_dpo", "RA-DPO, conditioned on the top score", recipe("dpo", *AUGMENT), measures=("reward_goal",),
            select="reward_goal"),
        Arm("dpo", "DPO on the same pairs", recipe("dpo")),
    ),
    checks=(
        Check("RA-DPO (goal 10) > DPO (held-out reward)", ("ra_dpo", "reward_goal"), ("dpo", "reward")),
    ),
    notes="The goal is 'goal {score}' instead of the authors' sentence, which does not fit the world's 64-position "
          "context. RA-DPO's unconditioned reward is reported too (metric 'reward').",
    observed="In the first full run the base policy itself scored 0.235 under the 'goal 10' prompt (0.579 "
             "without): the world's base "
             "never saw a goal turn, and 75 DPO steps at β ≥ 0.5 on the augmented pairs (samples drawn without a "
             "goal) do not teach it to answer under one, at any grid point. The world is a weak test of this claim, "
             "which the paper makes for instruction-tuned models that read a system prompt.",
    docs="docs/data.md",
    metrics={"reward_goal": "held-out reward with the prompt conditioned on goal 10",
             "reward": "held-out reward on plain prompts"},
)
