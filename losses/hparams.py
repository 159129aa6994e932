"""Hyper-parameter types and ranges, declared next to a loss's signature and checked before anything runs.

    def dpo_loss(x, *, beta: Positive = 0.1, label_smoothing: Annotated[float, Interval(ge=0, lt=0.5)] = 0.0)

A keyword-only hyper-parameter's annotation gives its type (``float``, ``int``, ``bool``, ``str``, a ``Literal``
of choices, any of them ``| None``) and, inside ``typing.Annotated``, its range (an ``Interval``). A float must
also be finite; an int accepts no bool and a float accepts an int. Without an annotation the default's type is
the rule (a function with no annotations gets type checks only). ``rules(fn)`` reads them once with
``typing.get_type_hints(fn, include_extras=True)``; ``Rule.check(key, value)`` gives the one-line message.
"""

from __future__ import annotations

import inspect
import math
import numbers
import types
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints


@dataclass(frozen=True)
class Interval:
    """A range of real numbers: ``gt``/``ge`` the lower bound (exclusive/inclusive), ``lt``/``le`` the upper."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    def __post_init__(self) -> None:
        if (self.gt is not None and self.ge is not None) or (self.lt is not None and self.le is not None):
            raise ValueError("Interval takes at most one lower bound (gt or ge) and one upper bound (lt or le)")

    def __contains__(self, value: float) -> bool:
        return (math.isfinite(value) and (self.gt is None or value > self.gt) and (self.ge is None or value >= self.ge)
                and (self.lt is None or value < self.lt) and (self.le is None or value <= self.le))

    def __str__(self) -> str:
        """In words: ``> 0 and finite``, ``in [0, 0.5)``, ``finite``."""
        low = ("(", self.gt) if self.gt is not None else ("[", self.ge) if self.ge is not None else None
        high = (")", self.lt) if self.lt is not None else ("]", self.le) if self.le is not None else None
        if low and high:
            return f"in {low[0]}{low[1]:g}, {high[1]:g}{high[0]}"
        if low:
            return f"{'>' if low[0] == '(' else '>='} {low[1]:g} and finite"
        if high:
            return f"{'<' if high[0] == ')' else '<='} {high[1]:g} and finite"
        return "finite"


Positive = Annotated[float, Interval(gt=0)]  # a scale such as β: > 0 and finite
NonNegative = Annotated[float, Interval(ge=0)]  # a weight that may switch a term off, such as a KL coefficient
Probability = Annotated[float, Interval(ge=0, le=1)]

_KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


@dataclass(frozen=True)
class Rule:
    """What one hyper-parameter accepts. ``kind``: bool/int/float/str, a tuple of choices, or None (unchecked)."""

    kind: Any = None
    optional: bool = False
    interval: Interval | None = None

    def check(self, key: str, value: Any) -> str | None:
        """None when ``value`` is acceptable, else ``"<key> must be ..., got <value>"``."""
        if value is None:
            return None if self.optional or self.kind is None else f"{key} must be {self.expects()}, got None"
        kind = self.kind
        if isinstance(kind, tuple):
            ok = value in kind
        elif kind in (int, float):
            ok = isinstance(value, int if kind is int else numbers.Real) and not isinstance(value, bool)
        else:
            ok = kind is None or isinstance(value, kind)
        if not ok:
            return f"{key} must be {self.expects()}, got {value!r}"
        if self.interval is not None and float(value) not in self.interval:
            return f"{key} must be {self.interval}, got {value!r}"
        return None

    def expects(self) -> str:
        """The type in words, e.g. ``a number`` or ``one of 'b', 'ordinal'`` (``or None`` when optional)."""
        if isinstance(self.kind, tuple):
            words = "one of " + ", ".join(repr(c) for c in self.kind)
        else:
            words = _KINDS.get(self.kind, "any value")
        return words + (" or None" if self.optional else "")

    def __str__(self) -> str:
        """Type and range in words, for help: ``a number > 0 and finite``."""
        return self.expects() + ("" if self.interval is None else f" {self.interval}")


def _rule(annotation: Any, default: Any) -> Rule:
    """The rule of one keyword-only parameter from its resolved annotation (``inspect.Parameter.empty`` if none)."""
    if annotation is inspect.Parameter.empty:
        kind = type(default) if type(default) in _KINDS else None
        return Rule(kind, optional=default is None, interval=Interval() if kind is float else None)
    interval, optional = None, False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation, *extras = get_args(annotation)
            interval = next((e for e in extras if isinstance(e, Interval)), interval)
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            optional = len(members) < len(get_args(annotation))
            annotation = members[0] if len(members) == 1 else Any
        else:
            break
    if get_origin(annotation) is Literal:
        return Rule(get_args(annotation), optional)
    kind = annotation if annotation in _KINDS else None
    if kind is float and interval is None:
        interval = Interval()
    return Rule(kind, optional, interval if kind in (int, float) else None)


def rules(fn) -> dict[str, tuple[Any, Rule]]:
    """``{name: (default, Rule)}`` for each keyword-only parameter of ``fn``, in signature order.

    Raises:
        TypeError: a keyword-only parameter without a default, or a second parameter ``x`` would not receive.
    """
    params = list(inspect.signature(fn).parameters.values())
    name = getattr(fn, "__name__", repr(fn))
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not positional or any(p.default is p.empty for p in positional[1:]):
        raise TypeError(f"{name} must take the batch as its one positional argument: fn(x, *, hyper=default)")
    try:
        hints = get_type_hints(fn, include_extras=True)
    except Exception:  # annotations that do not resolve (e.g. names imported only for type checkers): use defaults
        hints = {}
    out = {}
    for p in params:
        if p.kind is not p.KEYWORD_ONLY:
            continue
        if p.default is p.empty:
            raise TypeError(f"{name}: hyper-parameter {p.name!r} needs a default (fn(x, *, {p.name}=...))")
        out[p.name] = (p.default, _rule(hints.get(p.name, p.empty), p.default))
    return out
