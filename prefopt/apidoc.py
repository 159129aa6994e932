"""Write the generated docs pages: ``python -m prefopt.apidoc [--check]``.

docs/api.md comes from the public objects' signatures and docstrings; docs/cli.md from the config dataclasses,
the recipes and the loss registry (the same source as ``prefopt --help``). ``--check`` exits 1 when a committed
page differs from what the code says now (the docs test runs it).
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def public() -> dict[str, list[str]]:
    """The documented objects, by section; the losses come from the registry, never a hand-written list."""
    from losses import LOSSES

    loss_fns = [f"{spec.fn.__module__}:{spec.fn.__name__}" for spec in LOSSES.values()]
    return {
        "Losses (`losses`)": ["losses:PreferenceLogps", "losses:LossSpec", "losses:get_loss", "losses:load_loss",
                              "losses:Interval", *loss_fns],
        "Trainer (`prefopt.trainer`)": ["prefopt.trainer:PreferenceTrainer", "prefopt.trainer:ListCollator",
                                        "prefopt.trainer:precompute_ref_logps", "prefopt.trainer:sequence_logps",
                                        "prefopt.trainer:policy_logps"],
        "Data (`prefopt.data`)": ["prefopt.data.sources:load_records", "prefopt.data.sources:load_data",
                                  "prefopt.data.records:normalize_row", "prefopt.data.schemas:to_canonical",
                                  "prefopt.data.tokenize:tokenize_list", "prefopt.data.features:tokenize_records",
                                  "prefopt.data.segments:segment_ids"],
        "Round pipeline (`prefopt.rounds`)": [
            "prefopt.rounds.generate:sample", "prefopt.rounds.scorers:make_scorer", "prefopt.rounds.pairing:build",
            "prefopt.rounds.weighting:apply_weighting", "prefopt.rounds.augment:reward_augment",
            "prefopt.rounds.consistency:consistency", "prefopt.rounds.build:build_round_data",
            "prefopt.rounds.evaluate:evaluate_reward", "prefopt.rounds.evaluate:evaluate_samples",
            "prefopt.rounds.evaluate:paired_win_rate"],
        "CHES (`prefopt.ches`)": ["prefopt.ches:ches_scores", "prefopt.ches:apply_ches_filter"],
        "Integrations (`prefopt.integrations`)": ["prefopt.integrations.trl:PrefoptDPOTrainer"],
        "Runs (`prefopt`)": ["prefopt.config:load_config", "prefopt.run:run", "prefopt.world:load_base_policy",
                             "prefopt.evaluate_cli:main", "prefopt.card:write_model_card", "prefopt.hub:push_run"],
    }


def _entry(path: str) -> str:
    module, name = path.split(":")
    obj = getattr(importlib.import_module(module), name)
    try:
        signature = f"{name}{inspect.signature(obj)}"
    except (TypeError, ValueError):
        signature = name
    doc = inspect.getdoc(obj) or "(no docstring)"
    return f"### `{module}.{name}`\n\n```python\n{signature}\n```\n\n```text\n{doc}\n```\n"


def render() -> str:
    parts = ["# API\n\nGenerated from the docstrings by `python -m prefopt.apidoc`; do not edit by hand.\n"]
    for title, paths in public().items():
        parts.append(f"## {title}\n")
        parts.extend(_entry(p) for p in paths)
    return "\n".join(parts)


def pages() -> dict[Path, str]:
    from prefopt.cli_help import markdown

    return {DOCS / "api.md": render(), DOCS / "cli.md": markdown()}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    stale = [page for page, text in pages().items() if not page.exists() or page.read_text() != text]
    if "--check" in argv:
        for page in stale:
            print(f"{page} is out of date: run python -m prefopt.apidoc", file=sys.stderr)
        return 1 if stale else 0
    for page, text in pages().items():
        page.write_text(text)
        print(f"wrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
