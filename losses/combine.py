"""Weighted sums of registered losses, as TRL's ``loss_type=[...]`` with ``loss_weights=[...]``.

    spec = combine([("sigmoid", LOSSES["sigmoid"]), ("sft", LOSSES["sft"])], [1.0, 1.0])
    spec(x, beta=0.1)        # 1.0·sigmoid_loss(x, beta=0.1) + 1.0·sft_loss(x), (B,)

The sum is one ``LossSpec``: it needs what any part needs, and its hyper-parameters are the union of the parts'
(a name shared by two parts, such as ``beta``, is one value given to both, as TRL shares ``beta``; the first part's
default is the sum's). Each part validates the values it takes. The trainer sees one loss and takes the batch mean,
so mean(Σ w_i·loss_i) = Σ w_i·mean(loss_i): TRL's ``loss += per_sequence_loss.mean() * loss_weight``.
"""

from __future__ import annotations

import inspect
import math
import numbers
from dataclasses import dataclass
from typing import Any, get_type_hints

from torch import Tensor

from losses.registry import LossSpec
from losses.types import PreferenceLogps


@dataclass(frozen=True)
class WeightedSum(LossSpec):
    """A ``LossSpec`` whose ``fn`` is Σ w_i·part_i; ``parts`` holds (name, spec, weight) per term."""

    parts: tuple = ()

    def validate(self, hyper_parameters: dict) -> list[str]:
        valid = ", ".join(f"loss.{k}" for k in self.rules) or "none"
        problems = [f"{self.name} has no hyper-parameter loss.{k}; valid: {valid}"
                    for k in hyper_parameters if k not in self.rules]
        for _, spec, _ in self.parts:
            mine = {k: v for k, v in hyper_parameters.items() if k in spec.rules}
            problems += [p for p in spec.validate(mine) if p not in problems]
        return problems


def _keyword_parameters(fn) -> list[inspect.Parameter]:
    """The keyword-only parameters of ``fn`` with their annotations resolved (``Annotated`` ranges kept)."""
    try:
        hints = get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable annotations: LossSpec falls back to the defaults' types too
        hints = {}
    return [p.replace(annotation=hints.get(p.name, p.empty)) for p in inspect.signature(fn).parameters.values()
            if p.kind is p.KEYWORD_ONLY]


def combine(parts: list[tuple[str, LossSpec]], weights: list[float]) -> LossSpec:
    """One ``LossSpec`` computing Σ w_i·loss_i(x) over ``parts`` (name, spec).

    Raises:
        ValueError: naming ``loss.weights`` when the weights are not one finite number per loss, or when an
            unpaired loss (KTO: single labelled responses) is combined with another (their data differ).
    """
    if len(weights) != len(parts):
        raise ValueError(f"loss.weights has {len(weights)} value(s) for {len(parts)} loss(es); give one weight per "
                         "loss in loss.name")
    for i, w in enumerate(weights):
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w):
            raise ValueError(f"loss.weights[{i}] must be a finite number, got {w!r}")
    if len(parts) > 1 and any(spec.unpaired for _, spec in parts):
        unpaired = next(name for name, spec in parts if spec.unpaired)
        raise ValueError(f"loss {unpaired} learns from single labelled responses and cannot be combined with "
                         "other losses")
    terms = tuple((name, spec, float(w)) for (name, spec), w in zip(parts, weights, strict=True))
    params: dict[str, inspect.Parameter] = {}
    for _, spec, _ in terms:
        for p in _keyword_parameters(spec.fn):
            params.setdefault(p.name, p)

    def weighted_sum(x: PreferenceLogps, **hyper_parameters: Any) -> Tensor:
        total = None
        for _, spec, w in terms:
            term = w * spec.fn(x, **{k: v for k, v in hyper_parameters.items() if k in spec.defaults})
            total = term if total is None else total + term
        return total

    x_param = inspect.Parameter("x", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    weighted_sum.__signature__ = inspect.Signature([x_param, *params.values()])
    weighted_sum.__annotations__ = {k: p.annotation for k, p in params.items() if p.annotation is not p.empty}
    weighted_sum.__name__ = "+".join(name for name, _, _ in terms)
    weighted_sum.__doc__ = ("Weighted sum " + " + ".join(f"{w:g}·{name}" for name, _, w in terms)
                            + "\n\nAs TRL's loss_type=[...] with loss_weights=[...] (losses.combine).")
    flags = {f: any(getattr(spec, f) for _, spec, _ in terms)
             for f in ("needs_ref", "needs_tokens", "needs_segments", "needs_token_kl", "uses_weight", "listwise",
                       "batchwise", "unpaired")}
    paper = "; ".join(dict.fromkeys(spec.paper for _, spec, _ in terms if spec.paper))
    return WeightedSum(weighted_sum, paper=paper, parts=terms, **flags)
