"""``prefopt --help`` and docs/cli.md, both rendered from one source: the config dataclasses' field metadata,
the recipes' first comment lines and the loss registry.

    prefopt --help                 every key, grouped by block, with its default and description
    prefopt --help train           one block
    prefopt recipe=lipo --help     the recipe's resolved values; a value not from the defaults shows its source
                                   (recipe / world overlay / your YAML / command line) and its default
"""

from __future__ import annotations

import inspect
from dataclasses import MISSING, fields, is_dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from losses import LOSSES
from prefopt.config import RECIPES_DIR, Resolved, RunConfig, list_recipes, recipe_path
from prefopt.world.worlds import world_of

DOCS = RECIPES_DIR.parent / "docs"

USAGE = """usage: prefopt recipe=NAME [key=value ...]      (same as: python -m prefopt.train ...)
       prefopt models list | fetch NAME           (models prefopt can fetch into its cache, e.g. smollm2-135m)

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


LAYERS_TEXT = """Settings resolve in layers, lowest first; each key takes its value from the highest layer that sets it:

1. **default**: values that suit a real model (the `key(default, help)` of each key below; a loss's hyper-parameters
   from its registry entry, the paper's; `data.max_length` and `generation.max_new_tokens` left to the model; `threads`
   unset);
2. **recipe**: `recipe=NAME`, one of `recipes/` (the algorithm: loss, pairing, scorer, rounds, K);
3. **world overlay**: `recipes/worlds/<world>.yaml`, only when the run is in a world (`prefopt.world.worlds`): no
   `model`, `model=<a world's name>`, or `world=NAME` for a model of yours trained in one. The tiny world's overlay
   holds what its 134k-parameter model needs (β = 1, 12 new tokens, 256-token lists, 150 steps at lr 1e-4, one
   thread), with a `per_recipe` section for the multi-round recipes. A loss hyper-parameter the run's loss does not
   take is left out;
4. **your YAML**: `config=my.yaml`, or a recipe file of your own (`recipe=my.yaml`, outside `recipes/`);
5. **command line**: `key=value`.

`prefopt recipe=NAME [key=value ...] --help` prints the resolved values; a value that is not the default's shows its
layer and the default, e.g. `train.max_steps=150 ... (world overlay; default: 0)`."""


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

def _note(resolved: Resolved | None, key: str, value: Any, default: Any) -> str:
    """Where a resolved value came from, unless it is the default's own."""
    source = "default" if resolved is None else resolved.source(key)
    if source == "default" and _same(value, default):
        return ""
    return f"  ({source}" + ("" if _same(value, default) else f"; default: {show(default)}") + ")"


def _key_lines(rows, resolved: Resolved | None) -> list[str]:
    lines = []
    for key, default, help_ in rows:
        value = default if resolved is None else OmegaConf.select(resolved.cfg, key)
        lines.append(f"  {key}={show(value)}".ljust(40) + f" {help_}{_note(resolved, key, value, default)}")
    return lines


def _loss_lines(resolved: Resolved | None) -> list[str]:
    if resolved is not None and isinstance(resolved.cfg.loss.name, str) and resolved.cfg.loss.name in LOSSES:
        set_here = OmegaConf.to_container(resolved.cfg.loss)
        spec = LOSSES[set_here.pop("name")]
        lines = []
        for k, default in spec.defaults.items():
            value = set_here.get(k, default)
            line = f"  loss.{k}={show(value)}".ljust(40) + _note(resolved, f"loss.{k}", value, default)
            lines.append(line.rstrip())
        return lines
    rows = loss_rows()
    width = max(len(row[0]) for row in rows)  # TRL's names run to 12 characters (aot_unpaired, sigmoid_norm)
    return [f"  {name:{width}s} {summary}\n{' ' * (width + 3)}"
            f"{', '.join(f'{k}={v}' for k, v in hp.items()) or 'no hyper-parameters'}   ({paper})"
            for name, summary, hp, paper in rows]


def _resolved(cfg: Resolved | DictConfig | None) -> Resolved | None:
    return Resolved(cfg, {}) if isinstance(cfg, DictConfig) else cfg


def block_help(name: str, cfg: Resolved | DictConfig | None = None) -> str:
    """One block's keys (``name`` from ``blocks()``, or ``loss`` / ``recipes``); with ``cfg``, its resolved values
    (a ``Resolved`` adds each value's source)."""
    resolved = _resolved(cfg)
    cfg = resolved.cfg if resolved else None
    table = blocks()
    if name == "recipes":
        return "recipes (recipe=NAME):\n" + "\n".join(f"  {r:30s} {recipe_summary(r)}" for r in list_recipes())
    if name == "loss":
        rows = {row[0]: row for row in loss_rows()}
        head = "losses (loss.name=NAME, then loss.<hyper-parameter>=value):"
        if cfg is not None and isinstance(cfg.loss.name, str) and cfg.loss.name in rows:
            head = f"loss.name={cfg.loss.name}: {rows[cfg.loss.name][1]} ({rows[cfg.loss.name][3]})"
        return head + "\n" + "\n".join(_loss_lines(resolved))
    if name not in table:
        raise ValueError(f"no help block {name!r}; valid: {', '.join([*table, 'loss', 'recipes'])}")
    description, rows = table[name]
    return f"{name}: {description}\n" + "\n".join(_key_lines(rows, resolved))


def full_help(cfg: Resolved | DictConfig | None = None) -> str:
    """Usage, recipes, losses and every key; with ``cfg``, the resolved values of that config and their sources."""
    resolved = _resolved(cfg)
    cfg = resolved.cfg if resolved else None
    if cfg is None:
        parts = [USAGE, block_help("recipes"), block_help("loss"), "keys (key=default  description):"]
    else:
        about = f"recipe {cfg.recipe}: {recipe_summary(cfg.recipe)}\n" if cfg.recipe else ""
        world = world_of(cfg)
        layers = (f"resolved values, lowest layer first: default → recipe → world overlay"
                  f"{f' ({world.name}: recipes/{world.overlay}.yaml)' if world else ' (none: not a world model)'}"
                  " → your YAML (config=) → command line; a value not from the defaults shows its source:")
        parts = [USAGE, f"{about}{layers}", block_help("loss", resolved)]
    parts += [block_help(name, resolved) for name in blocks()]
    return "\n\n".join(parts) + "\n\n" + EXAMPLES.split("\n\n")[1] + "\n"


# ---- docs/cli.md ---------------------------------------------------------------------------------------------

def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown() -> str:
    """docs/cli.md: the same rows as ``prefopt --help``, as tables."""
    parts = ["# Command line\n", "Generated from the config dataclasses, the recipes and the loss registry by "
             "`python -m prefopt.apidoc`; do not edit by hand. The same text is printed by `prefopt --help`.\n",
             "```text\n" + USAGE + "\n\n" + EXAMPLES + "\n```\n", "## Where a value comes from\n", LAYERS_TEXT + "\n",
             "## Recipes\n", "| recipe | summary |",
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
