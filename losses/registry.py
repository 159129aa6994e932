"""The loss registry's entry type: a function, the inputs it needs, its hyper-parameters and their rules.

The trainer reads only ``LossSpec``: it builds the tensors a loss declares (reference log-probs, token-level
tensors, per-token KL, weight) and calls every loss the same way, ``spec(x, **hyper_parameters)``. A user's own
loss needs no fork: ``load_loss("mypkg.losses:my_loss")`` accepts a plain function or a ``LossSpec``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from losses.hparams import Rule, rules
from losses.types import PreferenceLogps

LossFn = Callable[..., Tensor]


@dataclass(frozen=True)
class LossSpec:
    """What the trainer must know about a loss.

    Attributes:
        fn: ``fn(x: PreferenceLogps, *, hyper=default, ...) -> Tensor (B,)``; each keyword-only argument is a
            hyper-parameter (config key ``loss.<name>``), its annotation its type and range (``losses.hparams``).
        needs_ref: reference log-probs ``x.ref`` must be given.
        needs_tokens: per-token ``policy_tokens``/``ref_tokens``/``token_mask`` must be given.
        needs_segments: ``x.segments`` must be given (refined sub-sequences).
        needs_token_kl: ``x.token_kl`` (KL(ref || policy) per position, a full-vocabulary quantity) must be given.
        uses_weight: the loss reads ``x.weight`` when present (consistency, soft label ...).
        listwise: the loss learns from whole lists; run validation refuses a pairing rule that cuts lists into pairs.
        paper: short citation shown in ``--help`` and docs.
        defaults: (derived) ``{hyper-parameter: default}`` in signature order.
        rules: (derived) ``{hyper-parameter: Rule}``, what each accepts.
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
    rules: dict[str, Rule] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        table = rules(self.fn)
        object.__setattr__(self, "defaults", {k: default for k, (default, _) in table.items()})
        object.__setattr__(self, "rules", {k: rule for k, (_, rule) in table.items()})

    @property
    def name(self) -> str:
        return getattr(self.fn, "__name__", type(self.fn).__name__)

    @property
    def summary(self) -> str:
        """The first line of the function's docstring, without its final period ("" when undocumented)."""
        lines = (inspect.getdoc(self.fn) or "").strip().splitlines()
        return lines[0].strip().removesuffix(".") if lines else ""

    def validate(self, hyper_parameters: dict) -> list[str]:
        """One message per problem with ``hyper_parameters`` (the loss block without ``name``), each naming the
        config key: ``loss.beta must be > 0 and finite, got -1.0``; ``[]`` when all is well."""
        valid = ", ".join(f"loss.{k}" for k in self.rules) or "none"
        problems = []
        for key, value in hyper_parameters.items():
            rule = self.rules.get(key)
            if rule is None:
                problems.append(f"{self.name} has no hyper-parameter loss.{key}; valid: {valid}")
            elif (message := rule.check(f"loss.{key}", value)) is not None:
                problems.append(message)
        return problems

    def __call__(self, x: PreferenceLogps, **hyper_parameters: Any) -> Tensor:
        unknown = set(hyper_parameters) - set(self.defaults)
        if unknown:
            raise TypeError(f"{self.name}: unknown hyper-parameter(s) {sorted(unknown)}; "
                            f"valid: {sorted(self.defaults)}")
        problems = self.validate(hyper_parameters)
        if problems:
            raise ValueError(f"{self.name}: " + "; ".join(problems))
        return self.fn(x, **hyper_parameters)


def _shadow_hint(module_name: str) -> str:
    """`losses` is this library's name: a user's ``losses.py`` (or ``losses/``) in the working directory is never
    imported under it, so say which file the user may have meant."""
    if module_name.split(".")[0] != "losses":
        return ""
    mine = [p for p in (Path.cwd() / "losses.py", Path.cwd() / "losses") if p.exists()]
    return (f"; `losses` is prefopt's own loss library, so your {mine[0]} is not imported under that name: rename "
            "it (e.g. my_losses.py) and use loss.name=my_losses:<function>") if mine else ""


def load_loss(path: str) -> LossSpec:
    """A user's loss from ``"package.module:attribute"``: a ``LossSpec`` as it is, a plain function as
    ``LossSpec(fn)`` (reference log-probs only; its keyword defaults are its hyper-parameters).

    Raises:
        ValueError: naming ``path``, when it does not import, has no such attribute, or is not a loss.
    """
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"loss {path!r}: a loss of your own is named 'package.module:function'")
    try:
        obj = importlib.import_module(module_name)
    except Exception as err:  # whatever the user's module raises on import, reported in one line
        raise ValueError(f"loss {path!r}: cannot import module {module_name!r} ({type(err).__name__}: {err})") from err
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"loss {path!r}: module {module_name!r} has no attribute {attribute!r}"
                             + _shadow_hint(module_name))
        obj = getattr(obj, part)
    if isinstance(obj, LossSpec):
        return obj
    if not callable(obj):
        raise ValueError(f"loss {path!r} is a {type(obj).__name__}, not a loss function or a LossSpec")
    try:
        return LossSpec(obj)
    except (TypeError, ValueError) as err:
        raise ValueError(f"loss {path!r}: {err}") from err
