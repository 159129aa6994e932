"""Session fixtures for the CHES tests: one tiny Llama and a character-level tokenizer."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the test modules import ches_helpers as a top-level module
from ches_helpers import char_tokenizer, tiny_llama  # noqa: E402


@pytest.fixture(scope="session")
def ches_tok():
    return char_tokenizer()


@pytest.fixture(scope="session")
def ches_model(ches_tok):
    return tiny_llama(len(ches_tok))
