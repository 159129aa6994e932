"""DPO: the pairwise logistic loss on implicit rewards."""

from __future__ import annotations

from typing import Annotated

from torch import Tensor

from losses._common import pair_margin, soft_logistic
from losses.hparams import Interval, Positive
from losses.types import PreferenceLogps


def dpo_loss(x: PreferenceLogps, *, beta: Positive = 0.1,
             label_smoothing: Annotated[float, Interval(ge=0, lt=0.5)] = 0.0) -> Tensor:
    """Direct Preference Optimization loss, per list.

    Paper:
        Rafailov, Sharma, Mitchell, Ermon, Manning, Finn (2023), "Direct Preference Optimization: Your Language
        Model is Secretly a Reward Model", arXiv 2305.18290, Eq. 7. Label smoothing is conservative DPO
        (Mitchell, 2023, "A note on DPO with noisy preferences"), as TRL's ``label_smoothing``.

    Formula:
        h = [log πθ(y_w|x) − log πref(y_w|x)] − [log πθ(y_l|x) − log πref(y_l|x)]
        loss = −(1 − ε)·log σ(β·h) − ε·log σ(−β·h)

    Where:
        πθ(y|x)  = ``x.policy``    (B, K) summed response log-probs
        πref(y|x) = ``x.ref``      (B, K)
        y_w, y_l = the valid entries with the highest and the lowest ``x.scores`` (first max, last min)
        β = ``beta`` > 0, ε = ``label_smoothing`` in [0, 0.5)

    Returns:
        (B,) unreduced loss. A list whose valid scores are all equal has no preference: loss 0, no gradient.
        Inputs in bf16/fp16 are computed and returned in float32.

    Deviations:
        Lists longer than two reduce to best-vs-worst; ``x.weight`` and ``x.lengths`` are ignored.
    """
    h, has_pref = pair_margin(x)
    return soft_logistic(beta * h, 1.0 - label_smoothing) * has_pref
