"""Every registered loss has a page docs/losses/<name>.md, or a section ``## `name` `` of the DPO family's page
docs/losses/dpo-family.md, citing the paper its docstring cites (no silent drift)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from losses import LOSSES

DOCS = Path(__file__).resolve().parents[1] / "docs" / "losses"
ARXIV_ID = re.compile(r"arXiv[:\s]*(\d{4}\.\d{4,5})")
FAMILY = DOCS / "dpo-family.md"


def family_section(name: str) -> str | None:
    """The text of the section headed ``## `name` `` in the family page (up to the next ``## ``), or None."""
    text = FAMILY.read_text(encoding="utf-8")
    match = re.search(rf"^## `{re.escape(name)}`.*?(?=^## |\Z)", text, re.M | re.S)
    return match.group(0) if match else None


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_page_cites_the_docstring_paper(name):
    ids = ARXIV_ID.findall(LOSSES[name].fn.__doc__ or "")
    assert ids, f"{LOSSES[name].fn.__name__}'s docstring cites no arXiv id (house style: paper, arXiv id, equation)"
    page = DOCS / f"{name}.md"
    text = page.read_text(encoding="utf-8") if page.is_file() else family_section(name)
    assert text is not None, f"{page} is missing and {FAMILY} has no section ## `{name}`: every loss is documented"
    assert ids[0] in text, f"the docs of {name} do not cite arXiv {ids[0]} (from the docstring)"
