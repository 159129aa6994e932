"""TRL's DPOTrainer loss types on fixed small inputs, the arithmetic written out; reductions to DPO.

The pair used throughout: policy [-1, -3], ref [-2, -2], scores [1, 0], lengths [2, 4]:
ℓ_w = -1 - (-2) = 1, ℓ_l = -3 - (-2) = -1, h = ℓ_w - ℓ_l = 2, h̄ = 1/2 - (-1/4) = 0.75.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from losses import LOSSES, TRL_LOSS_TYPES, PreferenceLogps, dpo_loss, get_loss

t = lambda *rows: torch.tensor(rows, dtype=torch.float64)
sp = lambda z: math.log1p(math.exp(z))  # softplus: -log σ(-z)
sig = lambda z: 1 / (1 + math.exp(-z))

PAIR = PreferenceLogps(policy=t([-1.0, -3.0]), ref=t([-2.0, -2.0]), scores=t([1.0, 0.0]),
                       lengths=torch.tensor([[2, 4]]))


def value(name, x=PAIR, **hp):
    return get_loss(name)(x, **hp)


def test_every_trl_loss_type_is_registered_under_trls_name():
    assert set(TRL_LOSS_TYPES) <= set(LOSSES) and len(TRL_LOSS_TYPES) == 15


@pytest.mark.parametrize("name, hp, expected", [
    ("sigmoid", dict(beta=0.5), sp(-1.0)),                                   # -log σ(βh) = -log σ(1)
    ("hinge", dict(beta=0.25), 0.5),                                         # max(0, 1 - 0.25·2)
    ("hinge", dict(beta=0.5), 0.0),                                          # max(0, 1 - 1)
    ("ipo", dict(beta=0.5), 0.0625),                                         # (0.75 - 1/(2·0.5))² = 0.25²
    ("exo_pair", dict(beta=0.5, label_smoothing=0.1),                        # KL((σ(1), σ(-1)) ‖ (0.9, 0.1))
     sig(1) * (math.log(sig(1)) - math.log(0.9)) + sig(-1) * (math.log(sig(-1)) - math.log(0.1))),
    ("nca_pair", dict(beta=0.5), sp(-0.5) + 0.5 * sp(0.5) + 0.5 * sp(-0.5)),  # r_w = 0.5, r_l = -0.5
    ("robust", dict(beta=0.5, label_smoothing=0.1), (0.9 * sp(-1) - 0.1 * sp(1)) / 0.8),
    ("bco_pair", dict(beta=0.5), 2 * sp(-0.5)),                              # -log σ(0.5) - log σ(0.5)
    ("sppo_hard", dict(beta=0.25), 2.0),                                     # (1 - 2)² + (-1 + 2)²
    ("apo_zero", dict(beta=0.5), 1 - sig(0.5) + sig(-0.5)),
    ("apo_down", dict(beta=0.5), sig(0.5) + 1 - sig(1.0)),
    ("discopop", dict(beta=0.5, discopop_tau=0.05), (1 - sig(20)) * sp(-1) + sig(20) * math.exp(-1)),
    ("discopop", dict(beta=0.5, discopop_tau=2.0), (1 - sig(0.5)) * sp(-1) + sig(0.5) * math.exp(-1)),
    ("sft", {}, 0.5),                                                        # -(-1)/2 tokens
    ("sigmoid_norm", dict(beta=0.5), sp(-0.375)),                            # -log σ(0.5·0.75)
    ("simpo", dict(beta=2.0, gamma_beta_ratio=0.5), sp(0.5)),                # 2·(-0.5 + 0.75) - 1 = -0.5
])
def test_hand_values(name, hp, expected):
    assert_close(value(name, **hp), t(expected))


def test_orpo_hand_value():
    """avg log-probs a_w = -1/2, a_l = -3/4; log odds(a) = a - log(1 - e^a);
    loss = 1/2 (NLL per chosen token) + λ·(-log σ(log odds_w - log odds_l))."""
    odds = lambda a: a - math.log(1 - math.exp(a))
    expected = 0.5 + 0.1 * sp(-(odds(-0.5) - odds(-0.75)))
    assert_close(value("orpo", beta=0.1), t(expected))


def test_sft_is_a_token_mean_over_the_batch():
    """Chosen log-probs -1 (2 tokens) and -3 (3 tokens): mean = (1 + 3)/(2 + 3) = 0.8, as TRL's
    ``-chosen_per_token_logps[chosen_mask].mean()``; entries are -log π·B/N = [0.4, 1.2]."""
    x = PreferenceLogps(policy=t([-1.0, -9.0], [-7.0, -3.0]), ref=None, scores=t([1.0, 0.0], [0.0, 1.0]),
                        lengths=torch.tensor([[2, 5], [1, 3]]))
    assert_close(value("sft", x), t(0.4, 1.2))
    assert_close(value("sft", x).mean(), torch.tensor(0.8, dtype=torch.float64))


def test_aot_sorts_over_the_batch():
    """List 0: policy margin u = -1 - (-3) = 2, ref margin v = 0; list 1 (chosen column 0): u = -2 - (-1) = -1,
    v = -1.5 - (-2) = 0.5. Sorted u = [-1, 2], v = [0, 0.5] → Δ = [-1, 1.5]; β = 1: [sp(1), sp(-1.5)].
    Unpaired: ℓ_w = [1, -0.5], ℓ_l = [-1, 1] → sorted Δ = [-0.5 - (-1), 1 - 1] = [0.5, 0]: [sp(-0.5), log 2]."""
    x = PreferenceLogps(policy=t([-1.0, -3.0], [-2.0, -1.0]), ref=t([-2.0, -2.0], [-1.5, -2.0]),
                        scores=t([1.0, 0.0], [1.0, 0.0]))
    assert_close(value("aot", x, beta=1.0), t(sp(1.0), sp(-1.5)))
    assert_close(value("aot_unpaired", x, beta=1.0), t(sp(-0.5), math.log(2)))


@pytest.mark.parametrize("name, hp", [("sigmoid", {}), ("robust", dict(label_smoothing=0.0)), ("aot", {}),
                                      ("aot_unpaired", {})])
def test_reductions_to_dpo(name, hp, make_logps):
    """sigmoid is DPO; robust at ε = 0 is DPO; AOT on a batch of one list is DPO."""
    x = make_logps(get_loss(name), B=5, K=3, dtype=torch.float64, seed=7)
    if get_loss(name).batchwise:
        one = lambda b: PreferenceLogps(policy=x.policy[b:b + 1], ref=x.ref[b:b + 1], scores=x.scores[b:b + 1])
        ours = torch.cat([value(name, one(b), beta=0.3, **hp) for b in range(5)])
    else:
        ours = value(name, x, beta=0.3, **hp)
    assert_close(ours, dpo_loss(x, beta=0.3))


def test_sigmoid_norm_and_ipo_at_unit_lengths():
    """Responses of one token: sigmoid_norm is DPO, ipo is TRL's unnormalised (h - 1/(2τ))²."""
    x = PreferenceLogps(policy=PAIR.policy, ref=PAIR.ref, scores=PAIR.scores, lengths=torch.ones(1, 2))
    assert_close(value("sigmoid_norm", x, beta=0.3), dpo_loss(x, beta=0.3))
    assert_close(value("ipo", x, beta=0.5), t((2 - 1) ** 2))


def test_discopop_matches_trls_formula_where_it_is_finite_and_stays_finite_beyond():
    h = torch.linspace(-500, 500, 101, dtype=torch.float64)
    x = PreferenceLogps(policy=torch.stack([h, torch.zeros_like(h)], 1), ref=torch.zeros(101, 2, dtype=torch.float64),
                        scores=t(*[[1.0, 0.0]] * 101))
    z = 0.1 * h
    trl = torch.sigmoid(z / 0.05) * torch.exp(-z) + (1 - torch.sigmoid(z / 0.05)) * -torch.nn.functional.logsigmoid(z)
    ours = value("discopop", x, beta=0.1)
    assert_close(ours, trl)
    assert torch.isfinite(value("discopop", PreferenceLogps(policy=x.policy.float() * 100, ref=x.ref.float(),
                                                            scores=x.scores.float()), beta=0.1)).all()


def test_exo_pair_needs_positive_label_smoothing():
    assert get_loss("exo_pair").validate({"label_smoothing": 0.0}) == [
        "loss.label_smoothing must be in (0, 1), got 0.0"]


def test_kto_hand_value_and_kl_baseline():
    """List 0 desirable: r = -1 - (-2) = 1, mismatched ratio -2 - (-2.5) = 0.5; list 1 undesirable: r = -1,
    mismatched ratio 1. z₀ = mean(0.5, 1) = 0.75; β = 0.5: [1 - σ(0.5·0.25), 2·(1 - σ(0.5·1.75))] with
    λ_U = 2. A negative mean is clamped: z₀ = 0."""
    x = PreferenceLogps(policy=t([-1.0, -2.0], [-3.0, -1.0]), ref=t([-2.0, -2.5], [-2.0, -2.0]),
                        scores=t([1.0, 0.0], [1.0, 0.0]), weight=t(1.0, 0.0))
    assert_close(value("kto", x, beta=0.5, undesirable_weight=2.0), t(1 - sig(0.125), 2 * (1 - sig(0.875))))
    neg = PreferenceLogps(policy=x.policy, ref=t([-2.0, 0.0], [-2.0, 0.0]), scores=x.scores, weight=x.weight)
    assert_close(value("kto", neg, beta=0.5), t(1 - sig(0.5), 1 - sig(0.5)))  # r = 1 and -1, z₀ = 0
    policy = x.policy.clone().requires_grad_(True)
    from dataclasses import replace
    value("kto", replace(x, policy=policy)).sum().backward()
    assert (policy.grad[:, 1] == 0).all() and (policy.grad[:, 0] != 0).all()  # the baseline is detached
    with pytest.raises(ValueError, match="must be 1 \\(desirable\\) or 0"):
        value("kto", replace(x, weight=t(0.5, 1.0)))


def test_combination_is_the_weighted_sum_with_shared_hyper_parameters():
    both = get_loss(["sigmoid", "sft"], weights=[1.0, 0.5])
    assert both.name == "sigmoid+sft" and both.needs_ref and both.batchwise
    assert both.defaults == {"beta": 0.1}
    assert_close(both(PAIR, beta=0.5), value("sigmoid", beta=0.5) + 0.5 * value("sft"))
    pair = get_loss(["exo_pair", "robust"])
    assert pair.defaults["label_smoothing"] == 1e-3  # the first part's default
    assert pair.validate({"label_smoothing": 0.6}) == ["loss.label_smoothing must be in [0, 0.5), got 0.6"]
    assert pair.validate({"tau": 1.0})[0].startswith("exo_pair+robust has no hyper-parameter loss.tau")
    assert not get_loss(["simpo", "sft"]).needs_ref


@pytest.mark.parametrize("names, weights, message", [
    (["sigmoid", "sft"], [1.0], "loss.weights has 1 value"),
    (["sigmoid", "sft"], [1.0, float("nan")], r"loss.weights\[1\] must be a finite number"),
    (["kto", "sft"], None, "cannot be combined"),
])
def test_combination_errors_name_the_key(names, weights, message):
    with pytest.raises(ValueError, match=message):
        get_loss(names, weights=weights)


def _kto_on_one_rank(rank: int, world: int, port: int, out: str) -> None:
    """One process of a gloo group: it holds list ``rank`` of the hand example above."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        policy, ref = t([-1.0, -2.0], [-3.0, -1.0])[rank:rank + 1], t([-2.0, -2.5], [-2.0, -2.0])[rank:rank + 1]
        x = PreferenceLogps(policy=policy, ref=ref, scores=t([1.0, 0.0]), weight=t(1.0, 0.0)[rank:rank + 1])
        torch.save(value("kto", x, beta=0.5, undesirable_weight=2.0), f"{out}/{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_kto_kl_baseline_is_averaged_over_processes(tmp_path):
    """Two processes, one list each: each uses z₀ = mean(0.5, 1) = 0.75, the one-process batch's, as TRL's
    KTOTrainer gathers the KL over processes (alone, each would use its own 0.5 or 1)."""
    import torch.multiprocessing as mp

    from tests.conftest import free_port

    mp.spawn(_kto_on_one_rank, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    both = torch.cat([torch.load(tmp_path / f"{rank}.pt") for rank in (0, 1)])
    assert_close(both, t(1 - sig(0.125), 2 * (1 - sig(0.875))))
