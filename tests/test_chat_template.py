"""data.chat_template through the real CLI: plain text follows TRL (no template) under ``auto`` with one warning
naming the key; ``always`` sends prompts as user turns; the tiny world's own prompts stay user turns (unchanged)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest

from prefopt.data.tokenize import PLAIN_TEXT_WARNING
from prefopt.train import main
from tests.conftest import make_model, make_tokenizer

PAIRS = [{"prompt": f"sort {a}{b}:", "chosen": f" {min(a, b)}{max(a, b)}", "rejected": f" {max(a, b)}{min(a, b)}x"}
         for a in range(1, 5) for b in range(5, 8)]


def _prompts(run) -> list:
    return [json.loads(line)["prompt"] for line in (run / "round_0" / "data.jsonl").read_text().splitlines()]


@pytest.fixture
def chat_model_run(tmp_path):
    """A local model whose tokenizer has a chat template, and plain-text TRL pairs for training and eval."""
    model = tmp_path / "model"
    make_model().save_pretrained(model)
    make_tokenizer(chat=True).save_pretrained(model)
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    return [f"model={model}", f"data.train={data}", f"data.eval={data}", "train.max_steps=1",
            "train.per_device_batch_size=4", f"output_dir={tmp_path / 'run'}"]


def test_auto_keeps_plain_text_and_warns_once_naming_the_key(chat_model_run, tmp_path):
    done = subprocess.run([sys.executable, "-m", "prefopt.train", *chat_model_run], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.count("data.chat_template=always") == 1  # train and eval data are both plain: one warning
    assert all(isinstance(p, str) for p in _prompts(tmp_path / "run"))


def test_always_sends_prompts_as_user_turns_and_never_is_silent(chat_model_run, tmp_path):
    assert main([*chat_model_run, "data.chat_template=always"]) == 0
    assert _prompts(tmp_path / "run")[0] == [{"role": "user", "content": "sort 15:"}]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=PLAIN_TEXT_WARNING[:40])
        assert main([*chat_model_run, "data.chat_template=never", "overwrite=true"]) == 0
    assert _prompts(tmp_path / "run")[0] == "sort 15:"


def test_always_without_a_chat_template_is_an_error(chat_model_run, tmp_path, capsys):
    plain = tmp_path / "plain_model"
    make_model().save_pretrained(plain)
    make_tokenizer().save_pretrained(plain)
    assert main([*chat_model_run, f"model={plain}", "data.chat_template=always"]) == 1
    [error] = [e for e in capsys.readouterr().err.splitlines() if e.startswith("error:")]
    assert "data.chat_template=always but the tokenizer has no chat template" in error


def test_the_tiny_worlds_own_prompts_are_user_turns_unless_never(tmp_path):
    tiny = ["recipe=dpo", "train.max_steps=1", "data.n_prompts=4", "eval.n_prompts=2", "generation.k=2", "threads=1"]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=PLAIN_TEXT_WARNING[:40])  # prefopt's own prompts: no warning
        assert main([*tiny, f"output_dir={tmp_path / 'auto'}"]) == 0
    assert all(p == [{"role": "user", "content": p[0]["content"]}] for p in _prompts(tmp_path / "auto"))
    assert main([*tiny, "data.chat_template=never", f"output_dir={tmp_path / 'never'}"]) == 0
    assert all(isinstance(p, str) for p in _prompts(tmp_path / "never"))  # no template, as asked


def test_bad_mode_is_rejected():
    with pytest.raises(ValueError, match="data.chat_template must be one of auto, always, never"):
        from prefopt.data.tokenize import wants_chat

        wants_chat(make_tokenizer(chat=True), "sometimes", given=True)


def test_the_docs_list_the_characters_the_tiny_worlds_model_can_write():
    from pathlib import Path

    from prefopt.world.tokenizer import CHARACTERS

    page = (Path(__file__).resolve().parent.parent / "docs" / "quickstart.md").read_text()
    assert f"```text\n{CHARACTERS}\n```" in page and f"only these {len(CHARACTERS)} characters" in page
