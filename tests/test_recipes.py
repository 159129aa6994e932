"""Every recipe loads and validates; paper recipes carry their provenance; every recipe smoke-runs end to end.

The smoke runs are the CI check that a recipe still matches the pipeline: ``prefopt.train`` with ``smoke=true``
(``prefopt.smoke``) swaps the model for a 2-layer stand-in of the same family and the data for synthetic rows.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from transformers import AutoModelForCausalLM, AutoTokenizer

from prefopt.config import RECIPES_DIR, list_recipes, load_config, recipe_path
from prefopt.rounds.pairing import RULES, SMOKE_OPTIONS
from prefopt.rounds.scorers import SCORERS, smoke_scorer
from prefopt.smoke import apply_smoke, smoke_root, synthetic_pairs
from prefopt.train import main
from prefopt.world.standin import JUDGE, REWARD, STANDIN_CONFIGS, build_standin, family_of

RECIPES = list_recipes()
PAPER = {  # recipe name → arXiv id of the paper it reproduces
    "dpo": "2305.18290",
    "dno": "2404.03715",
    "lipo": "2402.01878",
    "d2o": "2403.03419",
    "osp": "2405.14103",
    "cream": "2410.12735",
    "rrpo": "2504.12083",
    "reward_augmented_dpo": "2410.08067",
    "ches_dpo": "2410.08847",
}


def header(path: Path) -> str:
    """The comment lines before the first YAML key."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return "\n".join(lines)


def block_lines(path: Path, key: str) -> list[str]:
    """The indented lines of a top-level YAML block (``loss:`` → its hyper-parameter lines)."""
    lines, inside = [], False
    for line in path.read_text().splitlines():
        if re.match(rf"^{key}:\s*(#.*)?$", line):
            inside = True
        elif inside and line and not line.startswith((" ", "#")):
            break
        elif inside and line.strip() and not line.strip().startswith("#"):
            lines.append(line)
    return lines


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_loads_and_validates(name):
    cfg = load_config([f"recipe={name}"])
    assert cfg.recipe == name  # the run folder and summary name the recipe they came from
    # the recipe names its loss itself (a missing name would silently fall back to the default, dpo)
    assert cfg.loss.name == OmegaConf.load(recipe_path(name)).loss.name


def test_every_paper_has_a_recipe():
    assert sorted(n.removeprefix("paper/") for n in RECIPES if n.startswith("paper/")) == sorted(PAPER)


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_recipe_header_and_expected(name):
    path = RECIPES_DIR / "paper" / f"{name}.yaml"
    top = header(path)
    assert f"arXiv {PAPER[name]}" in top
    assert re.search(r"\((19|20)\d\d\)", top), "authors (year)"
    assert re.search(r"Reproduces:.*(Table|Figure|table)", top, re.S)
    assert f"python -m prefopt.train recipe=paper/{name}" in top
    launch = re.search(r"accelerate launch --config_file (recipes/accelerate/\S+\.yaml) -m prefopt\.train", top)
    assert launch and (RECIPES_DIR.parent / launch.group(1)).exists()
    assert "GPU hours" in top and "estimate" in top
    cfg = load_config([f"recipe=paper/{name}"])
    assert cfg.model, "a reproduction recipe names the paper's model (or its stand-in)"
    assert cfg.data.train or cfg.data.prompts
    expected = OmegaConf.to_container(cfg.expected)
    assert {"metric", "value", "table", "source"} <= set(expected)
    text = path.read_text()
    if expected["value"] is None:  # a missing number says where to find it
        assert re.search(r"^  value: null\s+#", text, re.M)
    for line in block_lines(path, "loss"):  # every hyper-parameter cites where it comes from
        if not line.strip().startswith("name:"):
            assert "#" in line, f"uncited hyper-parameter: {line.strip()}"


@pytest.fixture
def keep_threads():
    """Smoke mode pins torch to one thread (tiny models run faster so); give the rest of the session its own."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_smoke_runs(name, tmp_path, monkeypatch, keep_threads):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    out = tmp_path / "run"
    assert main([f"recipe={name}", "smoke=true", f"output_dir={out}"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recipe"] == name and summary["steps"] > 0
    saved = OmegaConf.load(out / "config.yaml")
    assert saved.model is None or Path(saved.model).is_dir()  # a local stand-in, never a hub download
    for key in ("train", "prompts", "eval", "eval_prompts"):
        assert saved.data[key] is None or Path(saved.data[key]).exists()


# ---------------------------------------------------------------------------------------------------------------
# smoke mode's pieces: the family table, the stand-ins, the scorer and budget rewrites


@pytest.mark.parametrize(("model", "family"), [
    ("meta-llama/Meta-Llama-3-8B-Instruct", "llama"),
    ("mistralai/Mistral-7B-Instruct-v0.2", "mistral"),
    ("HuggingFaceH4/zephyr-7b-beta", "mistral"),
    ("Qwen/Qwen2-7B-Instruct", "qwen2"),
    ("google/gemma-2-9b-it", "gemma2"),
    ("google/gemma-2b-it", "gemma"),
    ("microsoft/phi-2", "phi"),
    ("openai-community/gpt2", "gpt2"),
    ("cleanrl/EleutherAI_pythia-1b-deduped__sft__tldr", "gpt_neox"),
    ("CarperAI/openai_summarize_tldr_sft", "gptj"),
])
def test_family_table(model, family):
    assert family_of(model) == (family, None)


def test_unknown_model_falls_back_to_llama_with_a_note():
    family, note = family_of("someone/some-model")
    assert family == "llama" and "someone/some-model" in note


@pytest.mark.parametrize("family", sorted(STANDIN_CONFIGS))
def test_every_standin_loads_runs_and_fits_the_tokenizer(family):
    path = build_standin(family, smoke_root())
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert model.config.model_type == family and model.get_input_embeddings().num_embeddings >= len(tok)
    assert sum(p.numel() for p in model.parameters()) < 200_000
    ids = torch.tensor([tok("sort 3142")["input_ids"]])
    out = model.generate(ids, max_new_tokens=3, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape == (1, ids.shape[1] + 3)


def test_scorer_rewrites():
    assert smoke_scorer(None) is None
    assert smoke_scorer({"type": "reward_model", "path": "org/rm"}) == REWARD
    assert smoke_scorer("my_module:reward") == REWARD
    assert smoke_scorer({"type": "llm_judge", "model": "org/judge"}) == {"type": "pairwise_judge", "fn": JUDGE}
    assert smoke_scorer({"type": "llm_judge", "model": "policy"})["labels"] == ["1", "2"]
    assert smoke_scorer("self_preference")["labels"] == ["1", "2"]
    assert smoke_scorer("implicit_reward") == {"type": "implicit_reward"}
    world = {"type": "pairwise_judge", "fn": "prefopt.world.judge:judge"}
    assert smoke_scorer(world) == world
    assert smoke_scorer("prefopt.world.tasks:reward") == {"type": "reward_fn", "fn": "prefopt.world.tasks:reward"}


@pytest.mark.parametrize("kind", sorted(SCORERS))
def test_every_scorer_type_has_an_offline_smoke_standin(kind):
    """Hub models and users' modules in any required option are replaced: the smoke spec stays in the package."""
    spec = {"type": kind, **{key: "org/remote:thing" for key in SCORERS[kind].keys}}
    smoke = smoke_scorer(spec)
    as_dict = {"type": "reward_fn", "fn": smoke} if isinstance(smoke, str) else smoke
    assert as_dict["type"] in SCORERS
    assert all(key not in as_dict for key in ("path", "model")) or as_dict.get("model") == "policy"
    assert "fn" not in as_dict or as_dict["fn"].startswith("prefopt.")


def test_smoke_options_open_real_thresholds_of_registered_rules():
    for rule, options in SMOKE_OPTIONS.items():
        params = inspect.signature(RULES[rule]).parameters
        assert options and set(options) <= set(params), rule  # a typo would be passed to the rule and fail late


def test_apply_smoke_opens_the_pairing_thresholds(tmp_path, keep_threads):
    cfg = apply_smoke(load_config(["recipe=paper/dno", "pairing.options.margin=3.0", f"output_dir={tmp_path}"]))
    assert cfg.pairing.rule == "dno"
    assert {k: cfg.pairing.options[k] for k in SMOKE_OPTIONS["dno"]} == SMOKE_OPTIONS["dno"]


def test_smoke_says_every_key_it_changes_keeps_checkpointing_and_why_there_is_no_reward(tmp_path, keep_threads,
                                                                                       capsys):
    """Issue 19: smoke mode is honest. Every changed key shows as ``key: old → new``; what a CPU runs is kept."""
    before = load_config(["recipe=paper/lipo", f"output_dir={tmp_path}"])
    cfg = apply_smoke(before)
    out = capsys.readouterr().out
    changed = out.split("smoke changed these keys:\n")[1].splitlines()
    for line in ("generation.backend: vllm → hf", "train.bf16: True → False", "train.max_steps: 625 → 2",
                 "generation.k: 8 → 4", "data.n_prompts: 20000 → 8", "scorer.type: reward_model → reward_fn"):
        assert f"  {line}" in changed, line
    flat = lambda c: {k: v for k, v in OmegaConf.to_container(c).items() if not isinstance(v, dict)}  # noqa: E731
    assert all(any(line.startswith(f"  {k}: ") for line in changed) for k, v in flat(cfg).items()
               if flat(before)[k] != v)  # every changed top-level key is listed, none silently
    assert cfg.train.gradient_checkpointing and not any("gradient_checkpointing" in line for line in changed)
    assert "no reward before/after: the recipe names no reward function" in out
    apply_smoke(load_config(["recipe=dpo", f"output_dir={tmp_path}"]))
    assert "reward before/after: prefopt.world.tasks:reward" in capsys.readouterr().out


def test_apply_smoke_shrinks_a_paper_recipe(tmp_path, keep_threads):
    argv = ["recipe=paper/rrpo", "peft.load_in_4bit=true", "loss.beta=0.37", f"output_dir={tmp_path}"]
    cfg = apply_smoke(load_config(argv))
    assert cfg.model != "Qwen/Qwen2-7B-Instruct" and cfg.tokenizer is None
    assert (cfg.train.max_steps, cfg.train.bf16, cfg.peft.load_in_4bit, cfg.peft.r) == (2, False, False, 8)
    assert cfg.peft.lora_alpha == 16  # alpha / r kept (256 / 128)
    assert cfg.generation.backend == "hf" and cfg.report_to == "none" and cfg.output_dir == str(tmp_path)
    # hyper-parameters are the run's own (0.37 is no loss's default, so a reset to defaults would show)
    assert OmegaConf.to_container(cfg.loss) == {"name": "rrpo", "beta": 0.37, "alpha": 0.01}


def test_synthetic_pairs_carry_scores_inside_the_source_scale():
    rows = synthetic_pairs(6, split="train", seed=0, scale=(1.0, 10.0))
    assert all(1 <= r["score_rejected"] < r["score_chosen"] <= 10 for r in rows)
    assert all(r["chosen"] != r["rejected"] for r in rows)
