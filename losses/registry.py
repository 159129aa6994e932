"""The loss registry: a name maps to the function, the inputs it needs and its defaults.

The trainer reads only this table: it builds the tensors a loss declares (reference log-probs, token-level
tensors, per-token KL, weight) and calls every loss the same way, ``spec.fn(x, **hyper_parameters)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from losses.types import PreferenceLogps

LossFn = Callable[..., Tensor]


@dataclass(frozen=True)
class LossSpec:
    """What the trainer must know about a loss.

    Attributes:
        fn: ``fn(x: PreferenceLogps, **hyper_parameters) -> Tensor (B,)``.
        needs_ref: reference log-probs ``x.ref`` must be given.
        needs_tokens: per-token ``policy_tokens``/``ref_tokens``/``token_mask`` must be given.
        needs_segments: ``x.segments`` must be given (refined sub-sequences).
        needs_token_kl: ``x.token_kl`` (KL(ref || policy) per position, a full-vocabulary quantity) must be given.
        uses_weight: the loss reads ``x.weight`` when present (consistency, soft label ...).
        listwise: the loss reads the whole list, not only the best-vs-worst pair.
        paper: short citation shown in ``--help`` and docs.
    """

    fn: LossFn
    needs_ref: bool = True
    needs_tokens: bool = False
    needs_segments: bool = False
    needs_token_kl: bool = False
    uses_weight: bool = False
    listwise: bool = False
    paper: str = ""
    defaults: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        params = inspect.signature(self.fn).parameters.values()
        defaults = {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}
        object.__setattr__(self, "defaults", defaults)

    def __call__(self, x: PreferenceLogps, **hyper_parameters: Any) -> Tensor:
        unknown = set(hyper_parameters) - set(self.defaults)
        if unknown:
            raise TypeError(f"{self.fn.__name__}: unknown hyper-parameter(s) {sorted(unknown)}; "
                            f"valid: {sorted(self.defaults)}")
        return self.fn(x, **hyper_parameters)
