"""CHES: find and filter the preference pairs that cause likelihood displacement in DPO.

Razin et al. (2024), "Unintentional Unalignment: Likelihood Displacement in Direct Preference Optimization",
arXiv 2410.08847. Library use::

    from prefopt.ches import ches_scores, apply_ches_filter
    scores = ches_scores(model, tokenizer, prompts, chosen, rejected)            # (N,) LN-CHES, float32
    kept, report = apply_ches_filter(records, model, tokenizer, keep_fraction=0.05, out_dir="run/ches")

Command line: ``python -m prefopt.ches model=... data=... output=... keep_fraction=0.05`` (``--help`` for more);
demonstration on the tiny world: ``python -m prefopt.ches.demo``. See docs/ches.md.
"""

from prefopt.ches.filter import apply_ches_filter, check_rule, select, summarize
from prefopt.ches.score import ches_from_sums, ches_scores, record_pair, score_records, tokenize_pairs

__all__ = [
    "apply_ches_filter",
    "check_rule",
    "ches_from_sums",
    "ches_scores",
    "record_pair",
    "score_records",
    "select",
    "summarize",
    "tokenize_pairs",
]
