"""``prefopt --help`` and docs/cli.md, both rendered from one source: the config dataclasses' field metadata,
the recipes' first comment lines and the loss registry.

    prefopt --help                 every key, grouped by block, with its default and description
    prefopt --help train           one block
    prefopt recipe=lipo --help     the recipe's resolved values (a changed value also shows its default)
"""

from __future__ import annotations

import inspect
from dataclasses import MISSING, fields, is_dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from losses import LOSSES
from prefopt.config import RECIPES_DIR, RunConfig, list_recipes, recipe_path

DOCS = RECIPES_DIR.parent / "docs"

USAGE = """usage: prefopt recipe=NAME [key=value ...]      (same as: python -m prefopt.train ...)

Train a language model with a preference loss. A recipe (YAML) sets the keys; key=value overrides any of them
(dotted keys, OmegaConf syntax). With no model/data a recipe runs on the tiny embedded world on a CPU."""

EXAMPLES = """examples:
  prefopt recipe=dpo                                    # DPO on the tiny world, about a minute on a laptop CPU
  prefopt recipe=lipo train.max_steps=50 loss.beta=0.1  # override any key
  prefopt recipe=dpo model=Qwen/Qwen2.5-0.5B-Instruct data.train=trl-lib/ultrafeedback_binarized \\
      output_dir=runs/qwen-dpo                          # a real model and dataset

  prefopt --help            all keys with defaults      prefopt --help train        one block
  prefopt recipe=lipo --help   the recipe's values      docs: docs/cli.md
  prefopt eval model=runs/dpo [baseline=...]   a saved model's reward (and a paired win rate): prefopt eval --help"""


def short_usage() -> str:
    """What a bare ``prefopt`` prints: usage and three example commands."""
    return f"{USAGE}\n\n{EXAMPLES}\n"


# ---- the single source: one row per key ---------------------------------------------------------------------

def _default(f) -> Any:
    return f.default_factory() if f.default is MISSING else f.default


def blocks() -> dict[str, tuple[str, list[tuple[str, Any, str]]]]:
    """``{block: (description, [(dotted key, default, help), ...])}``; top-level scalars form the ``run`` block."""
    out: dict[str, tuple[str, list]] = {"run": ("what to run and where its outputs go", [])}
    for f in fields(RunConfig):
        default = _default(f)
        if is_dataclass(default):
            rows = [(f"{f.name}.{g.name}", _default(g), g.metadata["help"]) for g in fields(default)]
            out[f.name] = (f.metadata["help"], rows)
        else:
            out["run"][1].append((f.name, default, f.metadata["help"]))
    return out


def recipe_summary(name: str) -> str:
    """The first sentence of a recipe file's opening comment (the comment may wrap over several lines)."""
    words = []
    for line in recipe_path(name).read_text().splitlines():
        text = line.lstrip("#").strip()
        if not line.startswith("#") or text.startswith("Paper:") or (words and not text):
            break
        words.append(text)
    joined = " ".join(words)
    return joined.split(". ")[0].rstrip(".")


def loss_rows() -> list[tuple[str, str, dict[str, Any], str]]:
    """``(name, one-line summary, hyper-parameter defaults, paper)`` for every registered loss."""
    rows = []
    for name, spec in LOSSES.items():
        summary = (inspect.getdoc(spec.fn) or "").splitlines()[0].rstrip(".").removesuffix(", per list")
        rows.append((name, summary, dict(spec.defaults), spec.paper))
    return rows


def show(value: Any) -> str:
    """A value as it would be typed on the command line (OmegaConf/YAML spelling)."""
    if isinstance(value, (DictConfig,)) or OmegaConf.is_list(value):
        value = OmegaConf.to_container(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)


def _same(value: Any, default: Any) -> bool:
    if isinstance(value, DictConfig) or OmegaConf.is_list(value):
        value = OmegaConf.to_container(value)
    return value == default and type(value) is not bool or value is default


# ---- the terminal --------------------------------------------------------------------------------------------

def _key_lines(rows, cfg: DictConfig | None) -> list[str]:
    lines = []
    for key, default, help_ in rows:
        value = default if cfg is None else OmegaConf.select(cfg, key)
        note = "" if cfg is None or _same(value, default) else f"  (default: {show(default)})"
        lines.append(f"  {key}={show(value)}".ljust(40) + f" {help_}{note}")
    return lines


def _loss_lines(cfg: DictConfig | None) -> list[str]:
    if cfg is not None and cfg.loss.name in LOSSES:
        set_here = OmegaConf.to_container(cfg.loss)
        spec = LOSSES[set_here.pop("name")]
        return [f"  loss.{k}={show(set_here.get(k, v))}".ljust(40) + (
            f" (default: {show(v)})" if k in set_here and set_here[k] != v else "") for k, v in spec.defaults.items()]
    return [f"  {name:6s} {summary}\n         {', '.join(f'{k}={v}' for k, v in hp.items())}   ({paper})"
            for name, summary, hp, paper in loss_rows()]


def block_help(name: str, cfg: DictConfig | None = None) -> str:
    """One block's keys (``name`` from ``blocks()``, or ``loss`` / ``recipes``)."""
    table = blocks()
    if name == "recipes":
        return "recipes (recipe=NAME):\n" + "\n".join(f"  {r:30s} {recipe_summary(r)}" for r in list_recipes())
    if name == "loss":
        rows = {row[0]: row for row in loss_rows()}
        head = "losses (loss.name=NAME, then loss.<hyper-parameter>=value):"
        if cfg is not None and cfg.loss.name in rows:
            head = f"loss.name={cfg.loss.name}: {rows[cfg.loss.name][1]} ({rows[cfg.loss.name][3]})"
        return head + "\n" + "\n".join(_loss_lines(cfg))
    if name not in table:
        raise ValueError(f"no help block {name!r}; valid: {', '.join([*table, 'loss', 'recipes'])}")
    description, rows = table[name]
    return f"{name}: {description}\n" + "\n".join(_key_lines(rows, cfg))


def full_help(cfg: DictConfig | None = None) -> str:
    """Usage, recipes, losses and every key; with ``cfg``, the resolved values of that config."""
    if cfg is None:
        parts = [USAGE, block_help("recipes"), block_help("loss"), "keys (key=default  description):"]
    else:
        about = f"recipe {cfg.recipe}: {recipe_summary(cfg.recipe)}\n" if cfg.recipe else ""
        parts = [USAGE, f"{about}resolved values (key=value overrides any of them; a changed value shows its "
                        "default):", block_help("loss", cfg)]
    parts += [block_help(name, cfg) for name in blocks()]
    return "\n\n".join(parts) + "\n\n" + EXAMPLES.split("\n\n")[1] + "\n"


# ---- docs/cli.md ---------------------------------------------------------------------------------------------

def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown() -> str:
    """docs/cli.md: the same rows as ``prefopt --help``, as tables."""
    parts = ["# Command line\n", "Generated from the config dataclasses, the recipes and the loss registry by "
             "`python -m prefopt.apidoc`; do not edit by hand. The same text is printed by `prefopt --help`.\n",
             "```text\n" + USAGE + "\n\n" + EXAMPLES + "\n```\n", "## Recipes\n", "| recipe | summary |",
             "|---|---|"]
    parts += [f"| `{r}` | {_cell(recipe_summary(r))} |" for r in list_recipes()]
    parts += ["\n## Losses\n", "`loss.name=NAME`, then `loss.<hyper-parameter>=value`.\n",
              "| loss | summary | hyper-parameters (defaults) | paper |", "|---|---|---|---|"]
    parts += [f"| [`{n}`](losses/{n}.md) | {_cell(s)} | {', '.join(f'`{k}={v}`' for k, v in hp.items())} | {p} |"
              if (DOCS / "losses" / f"{n}.md").exists() else
              f"| `{n}` | {_cell(s)} | {', '.join(f'`{k}={v}`' for k, v in hp.items())} | {p} |"
              for n, s, hp, p in loss_rows()]
    parts.append("\n## Keys\n")
    for name, (description, rows) in blocks().items():
        parts += [f"### `{name}`\n", f"{description[0].upper()}{description[1:]}.\n", "| key | default | description |",
                  "|---|---|---|"]
        parts += [f"| `{k}` | `{_cell(show(d))}` | {_cell(h)} |" for k, d, h in rows]
        parts.append("")
    return "\n".join(parts)
