"""What the model writes: every evaluation's samples saved as JSONL, a few shown on the console and in the tracker.

    save_samples(folder, "before", samples)    samples/before.jsonl, and three of them printed
    read_samples(path, limit)                  the first rows of a samples file (the trackers' tables)

A sample is ``{"index", "sample", "prompt", "response", "reward"}`` (``prefopt.rounds.evaluate.evaluate_samples``):
prompt ``index`` of the evaluation's prompts, its ``sample``-th response. The same prompts and seeds are used
before and after training, so row i of ``before.jsonl`` and of ``round_0.jsonl`` answer the same prompt.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefopt.rounds.scoring import prompt_text
from prefopt.run_folder import RunFolder

SHOWN = 3  # samples printed per evaluation
WIDTH = 100  # characters of a prompt or response on the console


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\n", "\\n")
    return text if len(text) <= WIDTH else text[: WIDTH - 1] + "…"


def console_lines(samples: list[dict[str, Any]], title: str, n: int = SHOWN) -> list[str]:
    """``title`` and the first sample of the first ``n`` prompts, one line each for prompt and response."""
    firsts = [s for s in samples if s["sample"] == 0][:n]
    lines = [f"[prefopt] {title}:"]
    for s in firsts:
        lines += [f"  prompt   {_short(prompt_text(s['prompt']))}",
                  f"  response {_short(s['response'])}  (reward {s['reward']:.3f})"]
    return lines


def save_samples(folder: RunFolder, name: str, samples: list[dict[str, Any]], title: str) -> Path:
    """Write ``samples/<name>.jsonl`` atomically and print a few; call on the main process only."""
    path = folder.samples(name)
    folder.write_jsonl(path, samples)
    print("\n".join(console_lines(samples, f"{title} ({len(samples)} in {path})")))
    return path


def read_samples(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    rows = []
    with Path(path).open() as f:
        for line in f:
            if limit is not None and len(rows) >= limit:
                break
            rows.append(json.loads(line))
    return rows
