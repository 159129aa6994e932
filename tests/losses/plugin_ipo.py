"""A user's own loss, outside the package, in the two plugin forms (docs/guides/adding-a-loss.md):

    loss.name=tests.losses.plugin_ipo:ipo_loss   a plain function: reference log-probs only
    loss.name=tests.losses.plugin_ipo:ipo        a LossSpec declaring what it needs
"""

from __future__ import annotations

from torch import Tensor

from losses import LossSpec, Positive, PreferenceLogps, pair_margin


def ipo_loss(x: PreferenceLogps, *, tau: Positive = 0.1) -> Tensor:
    """Identity Preference Optimisation loss, per list.

    Paper:
        Azar, Rowland, Piot, Guo, Calandriello, Valko, Munos (2023), "A General Theoretical Paradigm to Understand
        Learning from Human Preferences", arXiv 2310.12036, Eq. 17.

    Formula:
        h = [log πθ(y_w|x) − log πref(y_w|x)] − [log πθ(y_l|x) − log πref(y_l|x)]
        loss = (h − 1/(2τ))²

    Where:
        πθ(y|x) = ``x.policy`` (B, K); πref(y|x) = ``x.ref`` (B, K)
        y_w, y_l = the valid entries with the highest and the lowest ``x.scores``
        τ = ``tau`` > 0

    Returns:
        (B,) unreduced; 0 with no gradient on a list without a preference.
    """
    h, has_pref = pair_margin(x)  # (B,) best-vs-worst margin, (B,) bool
    return (h - 1 / (2 * tau)) ** 2 * has_pref


ipo = LossSpec(ipo_loss, needs_ref=True, paper="Azar et al., 2023, arXiv 2310.12036")
