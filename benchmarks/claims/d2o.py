"""D²O (Duan et al., 2024, arXiv 2403.03419): alignment from human negatives alone, with self-sampled positives.

Claim: given only negative responses (no human positives), D²O with self-sampled positives lowers the rate of
harmful outputs more than DPO on (self-sample, negative) pairs, without losing more reward.

The world's harmful class is repetition (``prefopt.world.harm``: a response that says one string twice; the base
policy does it about one time in eight). Each of 512 train prompts comes with one annotated negative, its right
answer said twice, and no harmless response (``negative_records``). D²O samples K = 4 positives from the policy per
negative (``pairing.rule=d2o``, α = β as in the paper); DPO pairs one policy sample with the negative (the same rule
with K = 1, which is D²O's own reduction to DPO). Both take 75 steps of 32 lists.

DPO, the baseline, is tuned on the tuning seeds by its reward; D²O runs at DPO's point (equal hyper-parameters).
The control asks that DPO's harm rate there be well above the floor (``controls.HARM_FLOOR``): at the floor no
method can lower it further, and a comparison of harm rates reads nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from benchmarks.claims.budget import PROMPTS, SMOKE_PROMPTS, recipe
from benchmarks.claims.controls import HARM_FLOOR, metric_above
from benchmarks.claims.core import Arm, Check, Claim, Size


def negatives(size: Size, seed: int, folder: Path) -> list[str]:
    """Write the seed's negative-only data (once) and point the run at it."""
    from prefopt.world.harm import negative_records

    path = folder / "negatives.jsonl"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        records = negative_records(size.pick(PROMPTS, SMOKE_PROMPTS), seed=seed)
        tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
        os.replace(tmp, path)
    return [f"data.train={path}"]


CLAIM = Claim(
    name="d2o",
    title="D²O",
    statement="Given only negative responses (no human positives), D²O with self-sampled positives lowers the rate "
              "of harmful outputs more than DPO on (self-sample, negative) pairs, without losing more reward.",
    setting="Harmful = a response that repeats itself (detector prefopt.world.harm). 512 train prompts, each with "
            "one annotated negative (the answer said twice). D²O: K = 4 self-samples per negative, α = β. DPO: one "
            "self-sample vs the negative. 75 steps × 32.",
    arms=(
        Arm("dpo", "DPO on (self-sample, negative), tuned by reward",
            recipe("dpo", "generation.k=1", "pairing.rule=d2o"), measures=("harm",), prepare=negatives),
        Arm("d2o", "D²O, K = 4 self-sampled positives, at DPO's point", recipe("d2o", "generation.k=4",
                                                                              "pairing.rule=d2o"),
            measures=("harm",), prepare=negatives, beta_keys=("loss.beta", "loss.alpha"), match="dpo"),
    ),
    checks=(
        Check("D²O harm rate < DPO harm rate", ("d2o", "harm"), ("dpo", "harm"), lower_is_better=True),
        Check("D²O reward not below DPO's (held-out reward)", ("d2o", "reward"), ("dpo", "reward"), kind="no_worse"),
    ),
    control=metric_above("dpo", "harm", HARM_FLOOR, f"DPO's harm rate at its chosen point on the tuning seeds, "
                         f"interval above {HARM_FLOOR} (well above the floor of 1-4 in 1,024 samples)"),
    notes="Both arms start from the same base, so 'without losing more reward' is the final reward compared. "
          "Protocol v1 picked each arm's lowest-harm point, which drove both to the floor.",
    docs="docs/losses/d2o.md",
    metrics={"harm": "share of held-out samples the detector calls harmful", "reward": "held-out reward"},
)
