"""SFT as a preference loss: the negative log-likelihood of each list's chosen response (TRL's loss_type="sft")."""

from __future__ import annotations

import torch
from torch import Tensor

from losses._common import compute_dtype, lengths_of, pair_columns
from losses.types import PreferenceLogps


def chosen_nll(x: PreferenceLogps, name: str) -> Tensor:
    """(B,) entries whose batch mean is the mean NLL per chosen token over the batch (TRL's token-level mean).

    Entry b = −log πθ(y_w,b|x_b)·B / N, N = Σ |y_w| over the lists with a preference; 0 on tied lists.
    """
    lengths = lengths_of(x, name)
    dtype = compute_dtype(x)
    logp_w, _, has_pref = pair_columns(x, x.policy.to(dtype))
    n_w, _, _ = pair_columns(x, lengths)
    tokens = torch.where(has_pref, n_w, 0.0).sum().clamp(min=1.0)
    return torch.where(has_pref, -logp_w * (x.policy.shape[0] / tokens), 0.0)


def sft_loss(x: PreferenceLogps) -> Tensor:
    """Negative log-likelihood of the chosen responses, per chosen token over the batch.

    Paper:
        The supervised fine-tuning objective; combined with DPO (TRL ``loss_type=["sigmoid", "sft"]``) it is the
        RPO/MPO recipe: Pang, Yuan, Cho, He, Sukhbaatar, Weston (2024), "Iterative Reasoning Preference
        Optimization", arXiv 2404.19733, Eq. 1 (the NLL term); Wang et al. (2024), "Enhancing the Reasoning Ability
        of Multimodal Large Language Models via Mixed Preference Optimization", arXiv 2411.10442 (MPO).

    Formula:
        loss = −Σ_b log πθ(y_w,b|x_b) / Σ_b |y_w,b|

    Where:
        πθ(y|x) = ``x.policy`` (B, K) summed response log-probs; |y| = ``x.lengths`` (B, K)
        y_w = the valid entry with the highest ``x.scores``

    Returns:
        (B,) entries whose mean is the loss above (entry b = −log πθ(y_w,b|x_b)·B/N): a batch-level mean, as TRL
        takes it over all chosen tokens of the batch, so ``batchwise=True``; 0 on lists without a preference
        (they are not counted in N). Float32 for bf16/fp16 inputs.

    Open choices:
        No reference and no hyper-parameters; the scale of the term against others is ``loss.weights``.

    Reduction to DPO:
        None: it is the likelihood of the chosen responses alone.
    """
    return chosen_nll(x, "sft_loss")
