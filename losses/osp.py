"""OSP: Online Self-Preferring, a soft-preference cross-entropy (SPCE) on self-judged pairs.

STATUS: reconstruction. The paper's method section (the SPCE equation, the strength, the ranked pairing) could not
be read; the loss below is our reading of the abstract's words, see ``osp_loss``'s "Verified vs chosen".

The ranked pairing (several pairs per prompt, each with its own strength) happens on the data side; each pair
reaches this loss as a list of two with ``weight`` = its preference strength, built with ``osp_soft_label``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from losses._common import pair_margin, soft_logistic, weight_or_one
from losses.types import PreferenceLogps


def osp_soft_label(prob_w_first: Tensor, prob_w_second: Tensor) -> Tensor:
    """Preference strength of y_w over y_l: the self-judge's verdict probability averaged over both orders.

    Args:
        prob_w_first: (...) probability the judge prefers y_w when y_w is shown first (the first verdict token's
            probability, renormalised over the two verdict tokens).
        prob_w_second: (...) the same with y_w shown second.
    Returns:
        (...) p = (prob_w_first + prob_w_second) / 2 in [0, 1]; averaging the two orders cancels position bias.

    Chosen here, not read in the paper (its definition of the strength is in the unread method section).
    """
    p = (prob_w_first + prob_w_second) / 2
    if not torch.compiler.is_compiling() and ((p < 0) | (p > 1) | p.isnan()).any():
        raise ValueError("osp_soft_label: judge probabilities must lie in [0, 1]")
    return p


def osp_loss(x: PreferenceLogps, *, beta: float = 0.1) -> Tensor:
    """Online Self-Preferring soft-preference cross-entropy (SPCE) loss, per pair.

    Paper:
        Zhai, Zhang, Xu, Peng, Yu, Feng, Yang, Ding, Wang (2024), "Online Self-Preferring Language Models",
        arXiv 2405.14103 (v1). The SPCE loss of the method section; equation number and exact form NOT verified.

    Formula:
        h = [log πθ(y_w|x) − log πref(y_w|x)] − [log πθ(y_l|x) − log πref(y_l|x)]
        loss = −p·log σ(β·h) − (1 − p)·log σ(−β·h)

    Where:
        πθ(y|x) = ``x.policy`` (B, K); πref(y|x) = ``x.ref`` (B, K)
        y_w, y_l = the valid entries with the highest and the lowest ``x.scores`` (a pair: K = 2)
        p = ``x.weight`` (B,) in [0, 1]: the self-judged preference strength of y_w over y_l
            (``osp_soft_label``); None is the hard label p = 1
        β = ``beta``

    Returns:
        (B,) unreduced loss. A list whose valid scores are all equal has no preference: loss 0, no gradient.
        Inputs in bf16/fp16 are computed and returned in float32.

    Reduction to DPO:
        p = 1 (``weight=None``) is exactly ``dpo_loss``; p = 1 − ε is conservative DPO with label smoothing ε.

    Verified vs chosen (review of 2405.14103v1). Read: the arXiv HTML v1 page as far as it is stored here, i.e. the
    title, authors, abstract and the first two sentences of Section 1; the method section is not in the stored copy
    and no other source found quotes the SPCE equation (a second search, listed in docs/losses/osp.md: no v2, no
    OpenReview or proceedings text, no authors' code). The abstract defines the method only in words: OSP learns
    "from self-generated response pairs and self-judged preference strengths"; "a ranked pairing method to construct
    multiple response pairs with preference strength information"; "the soft-preference cross-entropy loss to
    leverage such information". Nothing read contradicts the form above, and nothing read confirms it.
    Chosen here, NOT verified: the SPCE as the Bernoulli cross-entropy of the target p against σ(β·h) (its
    minimiser is σ(β·h) = p, tested); the equation number; p as the verdict probability averaged over both
    presentation orders (``osp_soft_label``); the reference (the initial SFT model, as in DPO); β's value; pairwise
    packaging (one ranked pair per list, the pair's strength in ``weight``). The ranked pairing lives in the data
    module. Same arithmetic as ``dno_loss``; the methods differ in where p and the reference come from.
    """
    h, has_pref = pair_margin(x)
    p = weight_or_one(x, "osp_loss")
    return soft_logistic(beta * h, p) * has_pref
