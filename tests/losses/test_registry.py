"""LossSpec: hyper-parameter rules read from the signature, validation messages, users' own losses by import path."""

from __future__ import annotations

import sys
from typing import Annotated, Literal

import pytest
import torch
from torch.testing import assert_close

from losses import LOSSES, Interval, LossSpec, PreferenceLogps, get_loss, load_loss
from tests.losses import plugin_ipo

PAIR = PreferenceLogps(policy=torch.tensor([[-1.0, -3.0]]), ref=torch.tensor([[-2.0, -2.0]]),
                       scores=torch.tensor([[1.0, 0.0]]))


def annotated(x, *, beta: Annotated[float, Interval(gt=0)] = 0.1, steps: int = 3, on: bool = True,
              mode: Literal["b", "ordinal"] = "b", p: Annotated[float, Interval(ge=0, le=1)] | None = None):
    return x.policy.sum(1)


def bare(x, *, beta=0.1, steps=3, on=True, mode="b", anything=None):
    return x.policy.sum(1)


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_built_in_declares_a_checked_type_and_accepts_its_defaults(name):
    spec = LOSSES[name]
    assert all(rule.kind is not None for rule in spec.rules.values())  # sft has no hyper-parameter, as in TRL
    assert spec.validate(spec.defaults) == []
    assert spec.summary and "\n" not in spec.summary and not spec.summary.endswith(".")


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf")])
@pytest.mark.parametrize("name", [name for name, spec in LOSSES.items() if "beta" in spec.defaults])
def test_beta_must_be_positive_and_finite(name, value):
    assert get_loss(name).validate({"beta": value}) == [f"loss.beta must be > 0 and finite, got {value!r}"]


def test_ranges_declared_next_to_the_signature():
    assert get_loss("dpo").validate({"label_smoothing": 0.5}) == ["loss.label_smoothing must be in [0, 0.5), got 0.5"]
    assert get_loss("dpo").validate({"label_smoothing": 0.0, "beta": 2}) == []  # an int is a number
    assert get_loss("rrpo").validate({"alpha": 0.0}) == []  # α = 0 switches the KL term off
    assert get_loss("d2o").validate({"alpha": -0.1}) == ["loss.alpha must be >= 0 and finite, got -0.1"]


def test_one_message_per_problem_naming_the_config_key():
    problems = get_loss("dpo").validate({"beta": "abc", "label_smoothing": True, "bta": 1})
    assert problems == ["loss.beta must be a number, got 'abc'", "loss.label_smoothing must be a number, got True",
                        "dpo_loss has no hyper-parameter loss.bta; valid: loss.beta, loss.label_smoothing"]


def test_types_and_ranges_from_annotations():
    spec = LossSpec(annotated)
    assert spec.validate({"steps": 2.0, "on": 1, "mode": "a", "p": 1.5}) == [
        "loss.steps must be an integer, got 2.0", "loss.on must be true or false, got 1",
        "loss.mode must be one of 'b', 'ordinal', got 'a'", "loss.p must be in [0, 1], got 1.5"]
    assert spec.validate({"steps": True}) == ["loss.steps must be an integer, got True"]
    assert spec.validate({"beta": None}) == ["loss.beta must be a number, got None"]
    assert spec.validate({"steps": 7, "on": False, "mode": "ordinal", "p": None, "beta": 3}) == []
    assert str(spec.rules["p"]) == "a number or None in [0, 1]"


def test_a_function_without_annotations_is_checked_by_its_defaults_types():
    spec = LossSpec(bare)
    assert spec.validate({"beta": -5.0, "steps": 1, "on": False, "mode": "anything", "anything": [1]}) == []
    assert spec.validate({"beta": "x", "steps": 1.5, "on": "yes", "mode": 3, "anything": None}) == [
        "loss.beta must be a number, got 'x'", "loss.steps must be an integer, got 1.5",
        "loss.on must be true or false, got 'yes'", "loss.mode must be a string, got 3"]
    assert spec.validate({"beta": float("nan")}) == ["loss.beta must be finite, got nan"]


def test_call_rejects_unknown_keys_and_bad_values():
    spec = get_loss("dpo")
    with pytest.raises(TypeError, match=r"unknown hyper-parameter\(s\) \['bta'\]"):
        spec(PAIR, bta=1.0)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 0.5\), got 0.5"):
        spec(PAIR, label_smoothing=0.5)


def test_hyper_parameters_need_a_default_and_x_is_the_one_positional_argument():
    with pytest.raises(TypeError, match="'tau' needs a default"):
        LossSpec(lambda x, *, tau: x)
    with pytest.raises(TypeError, match="one positional argument"):
        LossSpec(lambda x, tau: x)


def test_plugin_function_and_spec_by_import_path():
    plain = get_loss("tests.losses.plugin_ipo:ipo_loss")
    assert plain.fn is plugin_ipo.ipo_loss and plain.needs_ref and not plain.uses_weight
    assert plain.defaults == {"tau": 0.1} and plain.summary == "Identity Preference Optimisation loss, per list"
    assert get_loss("tests.losses.plugin_ipo:ipo") is plugin_ipo.ipo
    assert plain.validate({"tau": 0}) == ["loss.tau must be > 0 and finite, got 0"]
    # h = [−1 − (−2)] − [−3 − (−2)] = 2, τ = 0.25: (2 − 1/(2·0.25))² = (2 − 2)² = 0; τ = 0.5: (2 − 1)² = 1
    assert_close(plain(PAIR, tau=0.25), torch.tensor([0.0]))
    assert_close(plain(PAIR, tau=0.5), torch.tensor([1.0]))


def test_plugin_errors_name_the_path(monkeypatch):
    with pytest.raises(ValueError, match=r"loss 'no_such_pkg.mod:fn': cannot import module 'no_such_pkg.mod' "
                                         r"\(ModuleNotFoundError"):
        get_loss("no_such_pkg.mod:fn")
    with pytest.raises(ValueError, match="has no attribute 'nope'"):
        get_loss("tests.losses.plugin_ipo:nope")
    with pytest.raises(ValueError, match="is a str, not a loss function"):
        get_loss("tests.losses.plugin_ipo:__doc__")
    with pytest.raises(ValueError, match="'package.module:function'"):
        load_loss("tests.losses.plugin_ipo:")
    monkeypatch.setitem(sys.modules, "broken_plugin", None)  # importing it raises ImportError
    with pytest.raises(ValueError, match="cannot import module 'broken_plugin'"):
        get_loss("broken_plugin:fn")
    with pytest.raises(KeyError, match="or 'package.module:function' for a loss of your own"):
        get_loss("ipo_v2")
