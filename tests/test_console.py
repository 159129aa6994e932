"""``prefopt`` (the console script) and ``python -m prefopt.train`` behave the same, through real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# What pip writes as the `prefopt` console script: sys.path[0] is the script's folder, not the working directory.
CONSOLE_SCRIPT = """import re, sys
from prefopt.train import main
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(main())
"""
TINY = ["recipe=dpo", "reward=myreward:length", "train.max_steps=1", "data.n_prompts=8", "eval.n_prompts=4",
        "generation.k=2", "threads=1"]


def _commands(tmp_path: Path) -> dict[str, list[str]]:
    script = tmp_path / "bin" / "prefopt"
    script.parent.mkdir()
    script.write_text(CONSOLE_SCRIPT)
    return {"script": [sys.executable, str(script)], "module": [sys.executable, "-m", "prefopt.train"]}


def test_console_script_and_module_import_a_reward_from_the_working_directory(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "myreward.py").write_text("def length(prompt, response):\n    return float(len(response))\n")
    summaries = {}
    for name, command in _commands(tmp_path).items():
        done = subprocess.run([*command, *TINY, f"output_dir={tmp_path / name}"], cwd=work, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        summaries[name] = json.loads((tmp_path / name / "summary.json").read_text())
    assert summaries["script"]["reward_before"] == summaries["module"]["reward_before"]
    assert summaries["script"]["reward_after"] == summaries["module"]["reward_after"]


def test_a_closed_pipe_ends_help_quietly(tmp_path):
    for command in _commands(tmp_path).values():
        child = subprocess.Popen([*command, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        child.stdout.close()  # the reader leaves before the first line, as `| head` does after its lines
        assert child.wait(timeout=120) == 0
        assert child.stderr.read() == b""
