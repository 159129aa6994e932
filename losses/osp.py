"""OSP: Online Self-Preferring, a soft-preference cross-entropy (SPCE) on self-judged pairs.

STATUS: reconstruction. The paper's method section (the SPCE equation, the strength, the ranked pairing) could not
be read; the loss below is our reading of the abstract's words (docs/losses/osp.md, "Verified vs chosen").

The ranked pairing (several pairs per prompt, each with its own strength) happens on the data side
(``prefopt.rounds.pairing.strength_pairs``); each pair reaches this loss as a list of two with ``weight`` = its
preference strength.
"""

from __future__ import annotations

from torch import Tensor

from losses._common import soft_label_pair_loss
from losses.hparams import Positive
from losses.types import PreferenceLogps


def osp_loss(x: PreferenceLogps, *, beta: Positive = 0.1) -> Tensor:
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
        p = ``x.weight`` (B,) in [0, 1]: the self-judged preference strength of y_w over y_l, the judge's
            verdict probability averaged over both presentation orders (``prefopt.rounds.judges.debiased_matrix``);
            None is the hard label p = 1
        β = ``beta`` > 0

    Returns:
        (B,) unreduced loss. A list whose valid scores are all equal has no preference: loss 0, no gradient.
        Inputs in bf16/fp16 are computed and returned in float32.

    Deviations (chosen, NOT verified against the unread method section):
        SPCE as the Bernoulli cross-entropy of p against σ(β·h) (minimised at σ(β·h) = p); p order-averaged; the
        initial SFT model as reference; β's value; one ranked pair per list with its strength in ``weight``.

    Reduction to DPO:
        p = 1 (``weight=None``) is exactly ``dpo_loss``; p = 1 − ε is conservative DPO with label smoothing ε.
    """
    return soft_label_pair_loss(x, beta, "osp_loss")
