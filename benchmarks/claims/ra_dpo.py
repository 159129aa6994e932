"""Reward-augmented DPO (Zhang et al., 2024, arXiv 2410.08067): the same pairs, relabelled by goal, beat plain DPO.

Claim: on the same pairs, RA-DPO beats DPO.

The control comes first (``goal_warmup``): the world's base is warmed up to read a goal score, and must then score
higher under ``goal 10`` than under ``goal 1``. Both arms start from that warmed base and train 75 steps on
best-vs-worst pairs of its samples (512 prompts × K = 4, world reward; the prompts are the world run's own, given as
files because the warmed base is a model path). RA-DPO turns each pair into two rows conditioned on a goal score
(``augment:``, rewards rescaled from [0, 1] to 1-10), stated in a system turn. The authors' goal sentence is some
190 characters, three times the world model's context of 64 positions, so the world states it as ``goal {score}``
(``augment.template``); the method is unchanged. At inference RA-DPO is conditioned on the top score, 10, as the
authors evaluate (``measures.reward_goal``); DPO is evaluated on the plain prompts.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.claims import goal_warmup
from benchmarks.claims.budget import PROMPTS, SMOKE_PROMPTS, recipe
from benchmarks.claims.core import MARGINS, Arm, Check, Claim, Control, Size
from benchmarks.claims.stats import interval, paired

AUGMENT = ("augment.source_scale=[0,1]", "augment.system_role=true", f"augment.template={goal_warmup.TEMPLATE}")


def _warm_base(root: Path, size: Size) -> Path:
    return goal_warmup.warm_up(root / f"warm-base-{size.name}", smoke=size.smoke)


def warmed(size: Size, seed: int, folder: Path) -> list[str]:
    """Start from the warmed base, with this seed's world prompts and the world's held-out prompts as files."""
    base = _warm_base(folder.parent, size)
    train, held = goal_warmup.prompt_files(folder, seed, size.pick(PROMPTS, SMOKE_PROMPTS), size.eval_prompts)
    return [f"model={base}", "reward=prefopt.world.tasks:reward", f"data.prompts={train}",
            f"data.eval_prompts={held}", "data.chat_template=always"]


def _control(ctx) -> dict:
    from prefopt.world import load_base_policy

    base = _warm_base(ctx.root / "data" / "ra_dpo", ctx.size)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = AutoModelForCausalLM.from_pretrained(base).eval(), AutoTokenizer.from_pretrained(base)
    warm = goal_warmup.follows_goals(model, tokenizer, ctx.seeds, ctx.size.eval_prompts, ctx.size.eval_samples)
    plain = goal_warmup.follows_goals(*load_base_policy(), ctx.seeds, ctx.size.eval_prompts, ctx.size.eval_samples)
    delta = paired(warm["goal 10"], warm["goal 1"]) if len(ctx.seeds) > 1 else None
    return {"warmed base": {k: interval(v) for k, v in warm.items()},
            "world base (never saw a goal)": {k: interval(v) for k, v in plain.items()},
            "goal10_minus_goal1": ({k: v for k, v in delta.items() if k != "values"} if delta else
                                   interval([a - b for a, b in zip(warm["goal 10"], warm["goal 1"], strict=True)]))}


CONTROL = Control(
    f"the warmed base follows goal prompts: its held-out reward under 'goal 10' minus under 'goal 1' (paired over "
    f"the tuning seeds), interval above the reward margin {MARGINS['reward']}", _control,
    lambda n: n["goal10_minus_goal1"]["low"] > MARGINS["reward"])

CLAIM = Claim(
    name="ra_dpo",
    title="Reward-augmented DPO",
    statement="On the same pairs, RA-DPO beats DPO.",
    setting="World reward, from a goal-reading base (the world's base after a goal-conditioned warm-up on its own "
            "samples). 512 prompts × K = 4 samples, best vs worst; 75 steps × 32 rows. RA-DPO: two goal-conditioned "
            "rows per pair ('goal 8.2' as a system turn), evaluated with 'goal 10'.",
    arms=(
        Arm("ra_dpo", "RA-DPO, conditioned on the top score", recipe("dpo", *AUGMENT), measures=("reward_goal",),
            prepare=warmed, select="reward_goal"),
        Arm("dpo", "DPO on the same pairs", recipe("dpo"), prepare=warmed),
    ),
    checks=(
        Check("RA-DPO (goal 10) > DPO (held-out reward)", ("ra_dpo", "reward_goal"), ("dpo", "reward")),
    ),
    control=CONTROL,
    notes=f"The goal is 'goal {{score}}' instead of the authors' sentence, which does not fit the world's 64-position "
          f"context. Warm-up: {goal_warmup.PROMPTS} train prompts × K = {goal_warmup.K} base samples, each taught "
          f"under its goal and under the plain prompt, {goal_warmup.STEPS} AdamW steps × {goal_warmup.BATCH} at lr "
          f"{goal_warmup.LR:g}. Protocol v1 used the world's base, which never saw a goal (0.235 under 'goal 10' "
          "against 0.579 without). RA-DPO's unconditioned reward is reported too (metric 'reward').",
    docs="docs/data.md",
    metrics={"reward_goal": "held-out reward with the prompt conditioned on goal 10",
             "reward": "held-out reward on plain prompts"},
)
