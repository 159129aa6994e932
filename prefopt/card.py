"""The model card of a finished run: ``model/README.md``, hub metadata and what a reader needs to trust the model.

    write_model_card(folder, cfg, summary, argv)

Built with ``huggingface_hub.ModelCard`` / ``ModelCardData`` (the YAML header the hub reads: ``base_model``,
``library_name: transformers``, ``tags`` with ``prefopt`` and the loss, ``datasets`` when the data came from the
hub). The body: the reward before and after with 95% intervals and where the samples are, the command line, the
recipe, each round's data report, the algorithm's paper and its row in prefopt's claims table (with the verdict
read from ``docs/claims.md`` when the docs are present), and how to load the model.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from losses import LOSSES
from prefopt.config import loss_label, public_config
from prefopt.data.sources import sources_of
from prefopt.outputs import format_reward
from prefopt.rounds.evaluate import reward_spec
from prefopt.run_folder import RunFolder
from prefopt.world.fetch import KNOWN

CLAIMS = Path(__file__).resolve().parent.parent / "docs" / "claims.md"
CLAIMS_LINK = "docs/claims.md"  # relative to the prefopt repository (the row's anchor is the loss's name)
RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def _hub_id(value: str | None) -> str | None:
    """``value`` when it names a hub repository rather than a local file or folder."""
    if not value or Path(value).exists() or value.startswith((".", "/", "~")):
        return None
    return value if re.fullmatch(r"[\w.-]+/[\w.-]+", value) else None


def _fetched(cfg: DictConfig):
    """The registry entry of a model prefopt fetches by name (``model=smollm2-135m``), else None."""
    return KNOWN.get(cfg.model or "")


def card_data(cfg: DictConfig):
    from huggingface_hub import ModelCardData

    datasets = sorted({d for d in (*sources_of(cfg.data), cfg.data.prompts, cfg.data.eval_prompts) if _hub_id(d)})
    losses = [n if ":" not in n else "custom-loss" for n in loss_label(cfg).split("+")]  # a weighted sum: each
    known = _fetched(cfg)
    base_model = _hub_id(cfg.model) or (known.hub_id if known else None)  # a fetched model: its hub origin
    return ModelCardData(base_model=base_model, library_name="transformers", datasets=datasets or None,
                         tags=["prefopt", *losses, "preference-optimization", *(["lora"] if cfg.peft.enabled else [])])


def claims_row(loss: str) -> tuple[str, str] | None:
    """(checks, verdict) of the loss's row in docs/claims.md, when the docs are present and it has one; the columns
    are found by the table's header ("verdict", and the one that starts with "checks")."""
    if not CLAIMS.exists():
        return None
    header: list[str] = []
    for line in CLAIMS.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| claim |"):
            header = cells
        elif line.startswith("| [") and f"](#{loss})" in line and "verdict" in header:
            checks = next((i for i, name in enumerate(header) if name.startswith("checks")), None)
            verdict = re.sub(r"\*\*|\(.*|<br>.*", "", cells[header.index("verdict")]).strip()
            return (cells[checks].replace("<br>", "; ") if checks is not None else ""), verdict
    return None
    for line in CLAIMS.read_text().splitlines():
        if line.startswith("| [") and f"](#{loss})" in line:
            cells = [c.strip() for c in line.strip("|").split("|")]
            verdict = re.sub(r"\*\*|<br>.*", "", cells[4]).strip()
            claims = re.sub(r": [^<]*", "", cells[2]).replace("<br>", "; ")
            return claims, verdict
    return None


def _recipe_line(cfg: DictConfig) -> str:
    if not cfg.recipe:
        return "no recipe (defaults and the command line)"
    path = Path(cfg.recipe) if Path(cfg.recipe).suffix in (".yaml", ".yml") else RECIPES / f"{cfg.recipe}.yaml"
    head = next((ln.lstrip("# ").strip() for ln in path.read_text().splitlines() if ln.startswith("#")), "") \
        if path.exists() else ""
    return f"`{cfg.recipe}`" + (f": {head}" if head else "")


def _sources(cfg: DictConfig) -> list[str]:
    """Where the data came from, one bullet per source given."""
    given = {"preference data (data.train)": ", ".join(sources_of(cfg.data)),
             "prompts (data.prompts)": cfg.data.prompts,
             "evaluation prompts (data.eval_prompts)": cfg.data.eval_prompts, "scorer": cfg.scorer,
             "reward": reward_spec(cfg)}
    out = [f"- {what}: `{value}`" for what, value in given.items() if value]
    return out or ["- the tiny world's own prompts, sampled by the policy"]


def _results(cfg: DictConfig, summary: dict[str, Any]) -> list[str]:
    if not summary.get("reward_before"):
        return ["No reward function was given, so no reward was measured (pass `reward=module:function`)."]
    rows = [f"The reward `{reward_spec(cfg)}` of {cfg.eval.samples_per_prompt} sample(s) per held-out prompt, at "
            f"temperature {cfg.eval.temperature}; the same prompts and sampling seeds before and after.", "",
            "| evaluation | reward (mean [95% interval]) | samples |", "|---|---|---|"]
    samples = summary.get("samples", {})
    names = ["before", *(f"round_{i}" for i in range(len(summary["rounds"])))]
    for name, reward in zip(names, summary.get("reward_per_round", []), strict=False):
        label = "before training" if name == "before" else f"after round {name.split('_')[1]}"
        rows.append(f"| {label} | {format_reward(reward)} | {samples.get(name, '')} |")
    warnings = [f"**Warning:** {w}" for w in summary.get("warnings", [])]
    return [*rows, "", "Samples (prompt, response, reward) are JSONL files in the run folder.", *warnings]


def render(cfg: DictConfig, summary: dict[str, Any], folder: RunFolder, argv: list[str] | None) -> str:
    loss = loss_label(cfg)  # one name, or "sigmoid+sft" for a weighted sum
    spec = LOSSES.get(loss)
    row = claims_row(loss)
    known = _fetched(cfg)
    base = f"{cfg.model}: {known.origin}" if known else cfg.model or "the tiny embedded world's base policy"
    command = "prefopt " + " ".join(shlex.quote(a) for a in argv) if argv is not None else \
        "(run from Python: `prefopt.run.run(cfg)`; the resolved configuration is below)"
    algo = [f"- loss `{loss}`" + (f" ({spec.paper})" if spec and spec.paper else "")]
    if row:
        algo.append(f"- prefopt's claims on its tiny world ([{CLAIMS_LINK}#{loss}]({CLAIMS_LINK}#{loss})): "
                    f"{row[0]} — verdict **{row[1]}**")
    else:
        algo.append(f"- no row for `{loss}` in prefopt's claims table ({CLAIMS_LINK})")
    data = {r["round"]: r.get("data") for r in summary["rounds"]}
    lora = " LoRA: these are the merged weights; the adapter is `adapter/` beside this folder." \
        if cfg.peft.enabled else ""
    use = cfg.hub.model_id if cfg.hub.push else str(folder.model)  # where a reader of the card finds it
    body = [
        f"# {folder.root.name}", "",
        f"Trained from {base} with prefopt (a preference-optimization zoo) and the `{loss}` loss: "
        f"{len(summary['rounds'])} round(s), {summary['steps']} optimizer steps, {summary['tokens']} tokens in "
        f"{summary['train_seconds']:.0f} s.{lora}", "",
        "## Reward", "", *_results(cfg, summary), "",
        "## Algorithm", "", *algo, "",
        "## How it was trained", "", "```bash", command, "```", "", f"Recipe: {_recipe_line(cfg)}", "",
        "## Data", "", *_sources(cfg), "", "Each round's data report (kept, dropped and why, ties):", "", "```json",
        json.dumps(data, indent=2, default=str), "```", "",
        "## Use", "", "```python", "from transformers import pipeline", "",
        f'generate = pipeline("text-generation", model="{use}")', "```", "",
        "## Configuration", "", "<details><summary>the resolved config</summary>", "", "```yaml",
        OmegaConf.to_yaml(OmegaConf.create(public_config(cfg))).rstrip(),  # no secrets from the environment
        "```", "", "</details>", ""]
    return "\n".join(body)


def write_model_card(folder: RunFolder, cfg: DictConfig, summary: dict[str, Any], argv: list[str] | None) -> None:
    """Write ``model/README.md`` (atomically), the hub's metadata header first."""
    from huggingface_hub import ModelCard

    card = ModelCard(f"---\n{card_data(cfg).to_yaml()}\n---\n\n{render(cfg, summary, folder, argv)}")
    folder.write_text(folder.card, str(card))
