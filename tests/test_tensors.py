"""The shared padding and eval-mode helpers."""

import pytest
import torch

from prefopt.tensors import eval_mode, pad_rows


def test_right_padding_puts_rows_first_and_masks_the_rest():
    ids, mask = pad_rows([[5, 6, 7], [8], []], 0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0], [0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert ids.dtype == mask.dtype == torch.long


def test_left_padding_ends_every_row_in_the_last_column():
    ids, mask = pad_rows([[5, 6, 7], [8], []], -1, side="left")
    assert ids.tolist() == [[5, 6, 7], [-1, -1, 8], [-1, -1, -1]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1], [0, 0, 0]]


def test_multiple_of_rounds_the_width_up():
    ids, mask = pad_rows([[1, 2, 3, 4, 5], [6]], 9, multiple_of=4)
    assert ids.shape == mask.shape == (2, 8)
    assert ids[0].tolist() == [1, 2, 3, 4, 5, 9, 9, 9]
    assert mask.sum(1).tolist() == [5, 1]
    assert pad_rows([[1, 2, 3, 4]], 0, multiple_of=4)[0].shape == (1, 4)  # already a multiple: unchanged


def test_an_unknown_side_is_refused():
    with pytest.raises(ValueError, match="side"):
        pad_rows([[1]], 0, side="middle")


@pytest.mark.parametrize("training", [True, False])
def test_eval_mode_restores_the_mode_even_after_an_error(training):
    model = torch.nn.Sequential(torch.nn.Dropout(0.5)).train(training)
    with eval_mode(model) as inside:
        assert inside is model and not model.training and not model[0].training
    assert model.training is training and model[0].training is training
    with pytest.raises(RuntimeError), eval_mode(model):
        raise RuntimeError("boom")
    assert model.training is training
