"""The trainer's batched Kendall τ-a metric, and where it differs from the round pipeline's τ-b."""

from __future__ import annotations

import math

import pytest
import torch

from prefopt.rounds.consistency import kendall_tau_b
from prefopt.trainer.metrics import kendall_tau_a


def test_tau_a_by_hand_with_a_tie_and_a_padded_slot():
    """List 0: a = [3, 1, 2], b = [3, 2, 1]: pairs (0,1) +, (0,2) +, (1,2) − → τ = (2 − 1)/3 = 1/3.
    List 1: a = [1, 1, 2], b = [1, 2, 3]: (0,1) tied in a → 0, (0,2) +, (1,2) + → τ-a = 2/3, while τ-b divides by
    √(2·3) untied pairs: 2/√6 = 0.8164966. List 2: one valid entry → NaN."""
    a = torch.tensor([[3.0, 1.0, 2.0], [1.0, 1.0, 2.0], [5.0, 0.0, 0.0]])
    b = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0], [1.0, 0.0, 0.0]])
    valid = torch.tensor([[True, True, True], [True, True, True], [True, False, False]])
    tau = kendall_tau_a(a, b, valid)
    assert tau[:2].tolist() == pytest.approx([1 / 3, 2 / 3]) and math.isnan(tau[2])
    assert kendall_tau_b(a[:2].tolist(), b[:2].tolist()).tolist() == pytest.approx([1 / 3, 2 / math.sqrt(6)])
