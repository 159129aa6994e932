"""prefopt's loss library: pure PyTorch preference losses, one file per algorithm (or per close family).

    from losses import PreferenceLogps, get_loss
    per_list = get_loss("lipo")(x, beta=0.05)   # (B,), unreduced: the caller reduces
    both = get_loss(["sigmoid", "sft"], weights=[1.0, 1.0])   # TRL's loss_type=[...] with loss_weights=[...]

Every ``loss_type`` of TRL's DPOTrainer is registered under TRL's own name (``sigmoid``, ``hinge``, ``ipo``, ...),
so ``loss.name=ipo`` means what ``loss_type="ipo"`` means; ``dpo`` is TRL's ``sigmoid`` with label smoothing.

Adding a loss: a new file with ``<algo>_loss(x, *, hyper-parameters)``, and one entry in ``LOSSES`` below; or,
with no change here, a loss of your own named ``"package.module:function"`` (docs/guides/adding-a-loss.md).
"""

from collections.abc import Sequence

from losses._common import best_worst, log_ratios, pair_margin, soft_logistic
from losses.aot import aot_loss, aot_unpaired_loss
from losses.apo import apo_down_loss, apo_zero_loss
from losses.combine import WeightedSum, combine
from losses.cream import cream_loss
from losses.d2o import d2o_loss
from losses.discopop import discopop_loss
from losses.dno import dno_loss
from losses.dpo import dpo_loss
from losses.hparams import Interval, NonNegative, Positive, Probability
from losses.kto import kto_loss, kto_metrics
from losses.lipo import lipo_loss
from losses.margin import exo_pair_loss, hinge_loss, robust_loss, sigmoid_loss
from losses.normalized import ipo_loss, sigmoid_norm_loss
from losses.orpo import orpo_loss
from losses.osp import osp_loss
from losses.per_response import bco_pair_loss, nca_pair_loss, sppo_hard_loss
from losses.registry import LossSpec, load_loss
from losses.rrpo import rrpo_loss
from losses.sft import sft_loss
from losses.simpo import simpo_loss
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
    # TRL DPOTrainer's loss_type values, under TRL's names (TRL 1.16, DPOTrainer._compute_loss)
    "sigmoid": LossSpec(sigmoid_loss, paper="Rafailov et al., 2023, arXiv 2305.18290"),
    "hinge": LossSpec(hinge_loss, paper="Zhao et al., 2023, arXiv 2305.10425"),
    "ipo": LossSpec(ipo_loss, paper="Azar et al., 2023, arXiv 2310.12036"),
    "exo_pair": LossSpec(exo_pair_loss, paper="Ji et al., 2024, arXiv 2402.00856"),
    "nca_pair": LossSpec(nca_pair_loss, paper="Chen et al., 2024, arXiv 2402.05369"),
    "robust": LossSpec(robust_loss, paper="Chowdhury et al., 2024, arXiv 2403.00409"),
    "bco_pair": LossSpec(bco_pair_loss, paper="Jung et al., 2024, arXiv 2404.04656"),
    "sppo_hard": LossSpec(sppo_hard_loss, paper="Wu et al., 2024, arXiv 2405.00675"),
    "aot": LossSpec(aot_loss, batchwise=True, paper="Melnyk et al., 2024, arXiv 2406.05882"),
    "aot_unpaired": LossSpec(aot_unpaired_loss, batchwise=True, paper="Melnyk et al., 2024, arXiv 2406.05882"),
    "apo_zero": LossSpec(apo_zero_loss, paper="D'Oosterlinck et al., 2024, arXiv 2408.06266"),
    "apo_down": LossSpec(apo_down_loss, paper="D'Oosterlinck et al., 2024, arXiv 2408.06266"),
    "discopop": LossSpec(discopop_loss, paper="Lu et al., 2024, arXiv 2406.08414"),
    "sft": LossSpec(sft_loss, needs_ref=False, batchwise=True, paper="Pang et al., 2024, arXiv 2404.19733"),
    "sigmoid_norm": LossSpec(sigmoid_norm_loss, paper="Rafailov et al., 2023, arXiv 2305.18290 (length-normalised)"),
    # beyond DPOTrainer: reference-free and unpaired
    "simpo": LossSpec(simpo_loss, needs_ref=False, paper="Meng et al., 2024, arXiv 2405.14734"),
    "orpo": LossSpec(orpo_loss, needs_ref=False, batchwise=True, paper="Hong et al., 2024, arXiv 2403.07691"),
    "kto": LossSpec(kto_loss, uses_weight=True, batchwise=True, unpaired=True, metrics=kto_metrics,
                    paper="Ethayarajh et al., 2024, arXiv 2402.01306"),
}

# TRL DPOTrainer's loss_type values, in TRL's order (each is a key of LOSSES)
TRL_LOSS_TYPES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
                  "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm")


def get_loss(name: str | Sequence[str], weights: Sequence[float] | None = None) -> LossSpec:
    """The registered loss called ``name``, a user's loss given as ``"package.module:function"`` (``load_loss``),
    or, for a list of names (with ``weights``, default all 1.0), their weighted sum (``losses.combine``); a clear
    error lists the valid names."""
    if isinstance(name, str) and weights is None:
        return _one(name)
    names = [name] if isinstance(name, str) else list(name)
    if not names:
        raise ValueError("loss.name is an empty list; give one loss name or several")
    return combine([(n, _one(n)) for n in names], list(weights) if weights is not None else [1.0] * len(names))


def loss_from_block(block: dict) -> LossSpec:
    """The loss a config block names: ``{"name": str | [str, ...], "weights": [float, ...] | None, **hyper}``."""
    name, weights = block["name"], block.get("weights")
    if weights is not None and not isinstance(weights, (list, tuple)):
        raise ValueError(f"loss.weights must be a list with one number per loss in loss.name, got {weights!r}")
    if isinstance(name, (list, tuple)) or weights is not None:
        return get_loss(list(name) if isinstance(name, (list, tuple)) else name, weights)
    return get_loss(name)


def _one(name: str) -> LossSpec:
    if not isinstance(name, str):
        raise KeyError(f"loss names are strings, got {name!r}")
    if ":" in name:
        return load_loss(name)
    try:
        return LOSSES[name]
    except KeyError:
        raise KeyError(f"unknown loss {name!r}; valid names: {', '.join(sorted(LOSSES))} "
                       "(or 'package.module:function' for a loss of your own)") from None


__all__ = ["Interval", "LOSSES", "LossSpec", "NonNegative", "Positive", "PreferenceLogps", "Probability",
           "TRL_LOSS_TYPES", "WeightedSum", "aot_loss", "aot_unpaired_loss", "apo_down_loss", "apo_zero_loss",
           "bco_pair_loss", "best_worst", "combine", "cream_loss", "d2o_loss", "discopop_loss", "dno_loss", "dpo_loss",
           "exo_pair_loss", "get_loss", "hinge_loss", "ipo_loss", "kto_loss", "lipo_loss", "load_loss", "log_ratios",
           "loss_from_block", "nca_pair_loss", "orpo_loss", "osp_loss", "pair_margin", "robust_loss", "rrpo_loss",
           "sft_loss", "sigmoid_loss", "sigmoid_norm_loss", "simpo_loss", "soft_logistic", "sppo_hard_loss"]
