"""The docs cannot drift: every documented training command parses against the real config, every relative link
resolves, the API page matches the docstrings, and CI runs the README's test command."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from prefopt.apidoc import main as apidoc
from prefopt.config import load_config
from prefopt.train import SUBCOMMANDS
from prefopt.train import main as train_main

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _commands() -> list[tuple[str, list[str]]]:
    found = []
    for page in PAGES:
        text = page.read_text().replace("\\\n", " ")
        for block in re.findall(r"```bash\n(.*?)```", text, re.S):
            for line in block.splitlines():
                for part in line.split("&&"):
                    words = shlex.split(part.strip(), comments=True)
                    for command in ("prefopt.train", "prefopt"):  # the module, or the console script
                        if command in words:
                            args = words[words.index(command) + 1:]
                            if args and args[0] in SUBCOMMANDS:  # `prefopt models ...`: tested on its own
                                break
                            found.append((f"{page.relative_to(ROOT)}: {part.strip()}", args))
                            break
    return found


COMMANDS = _commands()


def test_the_docs_have_training_commands():
    assert len(COMMANDS) >= 8


@pytest.mark.parametrize("where, args", COMMANDS, ids=[c[0][:80] for c in COMMANDS])
def test_every_documented_training_command_parses(where, args, capsys):
    if any(a in ("-h", "--help", "help") for a in args):
        assert train_main(args) == 0, capsys.readouterr().err  # help commands run: they are cheap
        return
    if args and args[0] in SUBCOMMANDS:  # `prefopt eval model=... baseline=...`: the rest are config keys
        args = [a for a in args[1:] if a.split("=", 1)[0] not in ("model", "baseline", "output_dir")]
    cfg = load_config(args)  # raises on an unknown key, recipe or loss hyper-parameter
    for arg in args:  # and every key=value the page shows lands in the run's config
        key = arg.split("=", 1)[0]
        assert OmegaConf.select(cfg, key) == OmegaConf.select(OmegaConf.from_dotlist([arg]), key), f"{where}: {arg}"


def test_relative_links_resolve():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#]+)\)", page.read_text()):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken


def test_api_page_matches_the_docstrings():
    assert apidoc(["--check"]) == 0, "run: python -m prefopt.apidoc"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    assert len(blocks) == 2, "README gives exactly two set-up-and-go commands"
    test_command = blocks[1].strip()
    assert test_command in (ROOT / ".ci" / "run").read_text()
