"""Every registered loss has a page docs/losses/<name>.md citing the paper its docstring cites (no silent drift)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from losses import LOSSES

DOCS = Path(__file__).resolve().parents[1] / "docs" / "losses"
ARXIV_ID = re.compile(r"arXiv[:\s]*(\d{4}\.\d{4,5})")


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_page_cites_the_docstring_paper(name):
    ids = ARXIV_ID.findall(LOSSES[name].fn.__doc__ or "")
    assert ids, f"{LOSSES[name].fn.__name__}'s docstring cites no arXiv id (house style: paper, arXiv id, equation)"
    page = DOCS / f"{name}.md"
    assert page.is_file(), f"{page} is missing: every registered loss has a docs page"
    assert ids[0] in page.read_text(encoding="utf-8"), f"{page} does not cite arXiv {ids[0]} (from the docstring)"
