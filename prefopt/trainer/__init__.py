"""The trainer core: a ``transformers.Trainer`` subclass for ranked lists, its collator, log-prob heads and reference.

Public API (the round pipeline, CHES and benchmarks import only these names):

    PreferenceTrainer                       Trainer subclass: one forward over all responses, loss via the registry
    ListCollator                            batches tokenized lists (features): prompt once + responses, or per row
    feature_logps, sequence_logps           batched log-probs of tokenized lists / of (prompt, responses) texts
    policy_logps                            the differentiable loss input of a collated batch (a loop of your own)
    feature_hidden_sums                     batched sums of the hidden states that predict each response (CHES)
    feature_last_logits                     next-token logits after each response (an LLM judge's verdict)
    list_features                           tokenize (prompt, responses) lists the way the trainer does
    precompute_ref_logps                    reference log-probs computed once and cached on disk
    frozen_copy, ensure_fused_head          a detached reference copy; TRL's fused LM head, attached once
"""

from prefopt.trainer.collate import ListCollator
from prefopt.trainer.core import PreferenceTrainer
from prefopt.trainer.logps import (
    ensure_fused_head,
    feature_hidden_sums,
    feature_last_logits,
    feature_logps,
    frozen_copy,
    list_features,
    sequence_logps,
)
from prefopt.trainer.loop import policy_logps
from prefopt.trainer.reference import precompute_ref_logps

__all__ = ["ListCollator", "PreferenceTrainer", "ensure_fused_head", "feature_hidden_sums", "feature_last_logits",
           "feature_logps", "frozen_copy", "list_features", "policy_logps", "precompute_ref_logps",
           "sequence_logps"]
