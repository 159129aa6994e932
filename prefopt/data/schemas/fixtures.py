"""A few rows of each hub dataset's own schema, written by hand for tests and smoke mode (nothing fetched).

    fixture_for("HuggingFaceH4/ultrafeedback_binarized")   # prefopt/data/fixtures/ultrafeedback_binarized.jsonl

Smoke mode (``prefopt.smoke``) runs a paper recipe on the fixture of its own dataset instead of synthetic rows, so
the recipe's reader, prompt extraction and chat rendering are exercised as on the real data. The files ship as
package data (pyproject ``[tool.setuptools.package-data]``).
"""

from __future__ import annotations

from pathlib import Path

FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures"

# data.train as recipes name it → the fixture in that dataset's schema
HUB_FIXTURES = {
    "HuggingFaceH4/ultrafeedback_binarized": "ultrafeedback_binarized.jsonl",
    "trl-lib/ultrafeedback_binarized": "trl_ultrafeedback_binarized.jsonl",
    "trl-lib/tldr-preference": "tldr_preference.jsonl",
    "Anthropic/hh-rlhf": "hh_rlhf.jsonl",
    "openbmb/UltraFeedback": "ultrafeedback.jsonl",
    "berkeley-nest/Nectar": "nectar.jsonl",
    "nvidia/HelpSteer2": "helpsteer2.jsonl",
    "PKU-Alignment/PKU-SafeRLHF": "pku_saferlhf.jsonl",
    "stanfordnlp/SHP": "shp.jsonl",
    # the CHES authors' generated SORRY-Bench preferences (recipes/paper/ches_dpo.yaml): query/chosen/rejected
    "sorrybench_preferences/train.jsonl": "sorrybench_preferences.jsonl",
}


def fixture_for(source: str) -> Path | None:
    """The fixture of ``source``'s schema, or None when prefopt has none."""
    name = HUB_FIXTURES.get(source)
    return FIXTURES_DIR / name if name else None
