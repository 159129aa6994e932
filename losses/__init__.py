"""prefopt's loss library: pure PyTorch preference losses, one file per algorithm.

    from losses import PreferenceLogps, get_loss
    per_list = get_loss("lipo")(x, beta=0.05)   # (B,), unreduced: the caller reduces

Adding a loss: a new file with ``<algo>_loss(x, *, hyper-parameters)``, and one entry in ``LOSSES`` below; or,
with no change here, a loss of your own named ``"package.module:function"`` (docs/guides/adding-a-loss.md).
"""

from losses._common import best_worst, log_ratios, pair_margin, soft_logistic
from losses.cream import cream_loss
from losses.d2o import d2o_loss
from losses.dno import dno_loss
from losses.dpo import dpo_loss
from losses.hparams import Interval, NonNegative, Positive, Probability
from losses.lipo import lipo_loss
from losses.osp import osp_loss
from losses.registry import LossSpec, load_loss
from losses.rrpo import rrpo_loss
from losses.types import PreferenceLogps

LOSSES: dict[str, LossSpec] = {
    "dpo": LossSpec(dpo_loss, paper="Rafailov et al., 2023, arXiv 2305.18290"),
    "lipo": LossSpec(lipo_loss, listwise=True, paper="Liu et al., 2024, arXiv 2402.01878"),
    "dno": LossSpec(dno_loss, uses_weight=True, paper="Rosset et al., 2024, arXiv 2404.03715"),
    "d2o": LossSpec(d2o_loss, listwise=True, paper="Duan et al., 2024, arXiv 2403.03419"),
    "osp": LossSpec(osp_loss, uses_weight=True, paper="Zhai et al., 2024, arXiv 2405.14103"),
    "cream": LossSpec(cream_loss, uses_weight=True, paper="Wang et al., 2024, arXiv 2410.12735"),
    "rrpo": LossSpec(rrpo_loss, needs_tokens=True, needs_segments=True, needs_token_kl=True,
                     paper="Sarkar & Etemad, 2025, arXiv 2504.12083"),
}


def get_loss(name: str) -> LossSpec:
    """The registered loss called ``name``, or a user's loss given as ``"package.module:function"``
    (``load_loss``); a clear error lists the valid names."""
    if ":" in name:
        return load_loss(name)
    try:
        return LOSSES[name]
    except KeyError:
        raise KeyError(f"unknown loss {name!r}; valid names: {', '.join(sorted(LOSSES))} "
                       "(or 'package.module:function' for a loss of your own)") from None


__all__ = ["LOSSES", "Interval", "LossSpec", "NonNegative", "Positive", "PreferenceLogps", "Probability",
           "best_worst", "cream_loss", "d2o_loss", "dno_loss", "dpo_loss", "get_loss", "lipo_loss", "load_loss",
           "log_ratios", "osp_loss", "pair_margin", "rrpo_loss", "soft_logistic"]
