"""A property-based fuzzer of the failure contract (docs/reliability.md): generated data files, prompt files, chat
rows, configs and reward functions go through the real entry point, ``prefopt.train.main``, in-process.

    python -m benchmarks.fuzz --cases 2000     # prints the count of cases per class and every contract violation

The contract, checked on every case: the exit status is 0 (no ``error:`` line), 2 (one or more ``error:`` lines,
nothing written: the case's folder is byte for byte as before) or 1 (exactly one ``error:`` line); no traceback and
no exception leaves ``main``. Most cases are broken on purpose and fail the pre-flight check in milliseconds; the
sound ones train one step of the tiny model (about a second). tests/test_fuzz.py runs a small budget in CI.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

# ---- pieces of a case -------------------------------------------------------------------------------------------
TEXT = st.sampled_from(["sort 21:", " 12", " 21", "rev ab", "", "   ", "ü→✓", "x" * 3000, "sort 3 1 2", "\n"])
ROLE = st.sampled_from(["user", "assistant", "system", "tool", "robot", None, 3])
NUMBER = st.one_of(st.sampled_from([0, 1, -1, 0.5, 1e308, -1e308, 500, 1e-9, True, "1", None, [1]]),
                   st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**20, 10**20))


@st.composite
def messages(draw, last_role: str):
    turns = draw(st.lists(st.fixed_dictionaries({"role": ROLE, "content": TEXT}), max_size=3))
    if draw(st.booleans()):
        turns.append({"role": last_role, "content": draw(TEXT)})
    return turns


def text_or_chat(role: str):
    return st.one_of(TEXT, TEXT, messages(role), NUMBER)


@st.composite
def row(draw):
    """A pair, a list, both, or neither, with optional weight and segments; mostly sound."""
    sound = draw(st.integers(0, 3)) > 0
    a, b = draw(st.sampled_from([(1, 5), (2, 6), (3, 7), (4, 5)]))
    good = {"prompt": f"sort {a}{b}:", "chosen": f" {a}{b}", "rejected": f" {b}{a}x"}
    if sound:
        out = dict(good)
        if draw(st.booleans()):
            out = {"prompt": good["prompt"], "responses": [good["chosen"], good["rejected"], f" {a}"],
                   "scores": [2.0, 0.0, 1.0]}
        return out
    kind = draw(st.sampled_from(["pair", "list", "both", "neither"]))
    out: dict = {}
    if draw(st.integers(0, 4)):
        out["prompt"] = draw(text_or_chat("user"))
    if kind in ("pair", "both"):
        out["chosen"], out["rejected"] = draw(text_or_chat("assistant")), draw(text_or_chat("assistant"))
    if kind in ("list", "both"):
        out["responses"] = draw(st.lists(text_or_chat("assistant"), max_size=4))
        out["scores"] = draw(st.lists(NUMBER, max_size=4))
    if draw(st.booleans()):
        out["weight"] = draw(NUMBER)
    if draw(st.booleans()):
        out["segments"] = draw(st.one_of(st.none(), st.lists(st.one_of(st.none(), st.lists(
            st.lists(st.integers(-3, 40), min_size=0, max_size=3), max_size=2)), max_size=3)))
    return out


@st.composite
def data_file(draw) -> bytes:
    rows = draw(st.lists(row(), min_size=0, max_size=8))
    lines = [json.dumps(r, allow_nan=True) for r in rows]
    for _ in range(draw(st.integers(0, 1))):  # a broken line: not JSON, a blank line, bytes that are not UTF-8
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(["{", "", "  ", "[1, 2]", "null", "3"])))
    raw = ("\n".join(lines) + "\n").encode()
    return raw + b"\xff\xfe\n" if draw(st.integers(0, 20)) == 0 else raw


@st.composite
def prompt_file(draw) -> bytes:
    prompts = draw(st.lists(st.one_of(
        st.sampled_from([f"sort {i}{i + 3}" for i in range(6)]).map(lambda p: {"prompt": p}),
        st.builds(lambda t: {"prompt": t}, text_or_chat("user")),
        st.sampled_from([{}, {"text": "hi"}, "sort 12", 7, {"prompt": "sort 1" + "2" * 20_000}])), max_size=8))
    return "".join(json.dumps(p) + "\n" for p in prompts).encode()


REWARD_BODIES = {  # what a user's reward does; names the class of the case
    "number": "return float(sum(c.isdigit() for c in response))",
    "bool": "return any(c.isdigit() for c in response)",
    "numpy": "import numpy; return numpy.float32(len(response))",
    "tensor": "import torch; return torch.tensor(float(len(response)))",
    "nan_sometimes": "return float('nan') if len(response) % 3 == 0 else 1.0 * len(response)",
    "string": "return 'good'",
    "none": "return None",
    "raises_sometimes": "if len(response) % 4 == 1: raise KeyError('score')\n    return float(len(response))",
    "slow_sometimes": "import time\n    if len(response) % 5 == 2: time.sleep(0.6)\n    return float(len(response))",
    "array": "import numpy; return numpy.array([1.0, 2.0])",
    "constant": "return 0.5",
}
REWARD_MODULES = {  # how the module itself goes wrong, if it does
    "fine": "def reward(prompt, response):\n    {body}\n",
    "syntax_error": "def reward(prompt, response)\n    {body}\n",
    "raises_at_import": "raise RuntimeError('no GPU')\ndef reward(prompt, response):\n    {body}\n",
    "exits_at_import": "import sys\nsys.exit(3)\n",
    "not_callable": "reward = 3\n",
    "wrong_signature": "def reward(prompt):\n    return 1.0\n",
}

OVERRIDES = st.sampled_from([
    "train.learning_rate=-1", "train.learning_rate=nan", "train.learning_rate=abc", "rounds=0", "generation.k=1",
    "pairing.rule=nope", "pairing.rule=all_pairs", "loss.name=nope", "loss.beta=-1", "loss.beta=${nope}",
    "output_dir=", "output_dir=~", "output_dir=1_000", "output_dir= x", "output_dir=afile/run", "overwrite=true",
    "resume=true", "data.max_prompt_length=8", "data.max_length=0", "train.seed=${oc.env:PREFOPT_FUZZ_UNSET}",
    "model=${oc.env:PREFOPT_FUZZ_UNSET}", "nokey", "train.nokey=1", "reward_timeout_s=0", "reward_timeout_s=0.3",
    "weighting={type: nope}", "eval.enabled=false", "eval.holdout_fraction=1.5", "train.max_steps=2",
    "data.n_prompts=3", "generation.top_p=0", "peft.enabled=true", "recipe=lipo", "recipe=rrpo", "recipe=nope",
])


@dataclass
class Case:
    kind: str                    # the generator: data, prompts, reward, config
    files: dict[str, bytes]      # relative path -> content, written into the case's folder
    args: list[str]
    label: str = ""              # a finer class: the reward's behaviour, the module's fault
    extra: dict = field(default_factory=dict)


@st.composite
def cases(draw) -> Case:
    kind = draw(st.sampled_from(["data", "data", "prompts", "reward", "config"]))
    base = ["train.max_steps=1", "train.per_device_batch_size=2", "threads=1", "train.logging_steps=1",
            "generation.k=2", "generation.max_new_tokens=3", "eval.n_prompts=2", "eval.samples_per_prompt=1",
            "data.n_prompts=4", "output_dir=run"]
    files: dict[str, bytes] = {"afile": b"x"}
    label = ""
    if kind == "data":
        files["data.jsonl"] = draw(data_file())
        args = [*base, "model=MODEL", "data.train=data.jsonl"]
    elif kind == "prompts":
        files["prompts.jsonl"] = draw(prompt_file())
        args = [*base, "data.prompts=prompts.jsonl", "reward=fuzz_reward_NAME:reward", "eval.enabled=false"]
        files["fuzz_reward_NAME.py"] = REWARD_MODULES["fine"].format(body=REWARD_BODIES["number"]).encode()
    elif kind == "reward":
        body, module = draw(st.sampled_from(sorted(REWARD_BODIES))), draw(st.sampled_from(
            ["fine"] * 6 + sorted(set(REWARD_MODULES) - {"fine"})))
        label = f"{module}/{body}" if module == "fine" else module
        files["fuzz_reward_NAME.py"] = REWARD_MODULES[module].format(body=REWARD_BODIES[body]).encode()
        args = [*base, "reward=fuzz_reward_NAME:reward", "reward_timeout_s=0.3"]
    else:
        args = [*base, "model=MODEL", "data.train=data.jsonl"]
        files["data.jsonl"] = "".join(json.dumps({"prompt": f"sort {a}{b}:", "chosen": f" {a}{b}",
                                                  "rejected": f" {b}{a}"}) + "\n"
                                      for a in range(1, 4) for b in range(5, 8)).encode()
    args += draw(st.lists(OVERRIDES, max_size=3 if kind == "config" else 1))
    return Case(kind, files, args, label)


# ---- running a case ---------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    status: int | None
    errors: list[str]
    violation: str | None


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under ``folder``."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in folder.rglob("*")
            if "__pycache__" not in p.parts}


def _output_dir(args: list[str]) -> str:
    """The run folder as typed (the last ``output_dir=`` wins, as in the dotlist)."""
    return [a.split("=", 1)[1] for a in args if a.startswith("output_dir=")][-1]


def run_case(case: Case, model: str, serial: int) -> Outcome:
    """Run one case in a fresh folder (the working directory while it runs) and check the contract."""
    from prefopt.train import main

    name = f"c{serial}_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="prefopt-fuzz-") as tmp:
        folder = Path(tmp)
        for rel, content in case.files.items():
            (folder / rel.replace("NAME", name)).write_bytes(content)
        args = [a.replace("MODEL", model).replace("NAME", name) for a in case.args]
        before, cwd, path = _snapshot(folder), os.getcwd(), list(sys.path)
        err, out = io.StringIO(), io.StringIO()
        os.chdir(folder)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                status = main(args)
        except BaseException as exc:  # noqa: BLE001  (anything leaving main is a violation)
            return Outcome(None, [], f"{type(exc).__name__} left main: {str(exc)[:300]}")
        finally:
            os.chdir(cwd)
            sys.path[:] = path
            sys.modules.pop(f"fuzz_reward_{name}", None)
        if status == 143:  # SIGTERM reached the harness while a case ran: stop fuzzing, as the user asked
            raise KeyboardInterrupt
        text = err.getvalue()
        errors = [line for line in text.splitlines() if line.startswith("error: ")]
        violation = None
        if "Traceback (most recent call last)" in text:
            violation = "a traceback was printed"
        elif status == 0 and errors:
            violation = "exit 0 with an error line"
        elif status == 0 and not any((folder / d / "summary.json").exists()
                                     for d in {_output_dir(args), _output_dir(args).strip()}):  # YAML strips
            violation = "exit 0 without summary.json"
        elif status == 1 and len(errors) != 1:
            violation = f"exit 1 with {len(errors)} error lines"
        elif status == 2 and not errors:
            violation = "exit 2 without an error line"
        elif status == 2 and _snapshot(folder) != before:
            violation = "exit 2 but files were written"
        elif status not in (0, 1, 2):
            violation = f"exit {status}"
        return Outcome(status, errors, violation)


KINDS = ("not valid JSON", "not UTF-8", "arguments must be key=value", "Interpolation", "Environment variable",
         "output_dir", "resume=true", "no prompts", "held out", "no usable preference", "role", "no 'user'",
         "no 'assistant'", "both a list", "segments", "'weight'", "scores", "cannot use its scores", "reward",
         "learning_rate", "loss", "pairing", "recipe", "must be", "field", "unknown", "valid keys")


def case_class(case: Case, outcome: Outcome) -> str:
    """``kind[/label] -> exit N: what``: how the cases fell, for the report (``what``: the stage of an exit-1
    failure, or the kind of the first pre-flight error)."""
    what = ""
    if outcome.errors and outcome.status == 1:
        what = outcome.errors[0][len("error: "):].split(" failed:")[0]
    elif outcome.errors:
        what = next((k for k in KINDS if k in outcome.errors[0]), "other")
    return f"{case.kind}{'/' + case.label if case.label else ''} -> exit {outcome.status}{': ' + what if what else ''}"


def tiny_model_folder(root: Path) -> str:
    """The tiny world's model saved as a local HF folder (a model of the user's own)."""
    from tests.conftest import make_model, make_tokenizer

    folder = root / "tiny-model"
    make_model().save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)
    return str(folder)


def fuzz(n: int, model: str, *, seed: int | None = None, stop_at_first: bool = False,
         progress: bool = False) -> tuple[Counter, list[tuple[Case, Outcome]]]:
    """Run ``n`` generated cases; returns the count per class and the violations (the first one raises an
    AssertionError with the shrunk case when ``stop_at_first``)."""
    counts: Counter = Counter()
    violations: list[tuple[Case, Outcome]] = []
    serial = [0]
    start = time.time()

    @settings(max_examples=n, deadline=None, database=None, derandomize=seed is not None,
              phases=[Phase.generate, Phase.shrink] if stop_at_first else [Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(cases())
    def check(case: Case) -> None:
        serial[0] += 1
        outcome = run_case(case, model, serial[0])
        if stop_at_first:
            assert outcome.violation is None, f"{outcome.violation}: {case.args} {outcome.errors}"
        counts[case_class(case, outcome)] += 1
        if outcome.violation:
            violations.append((case, outcome))
            if progress:
                print(f"VIOLATION {outcome.violation}: {case.kind} {case.args} {case.files} {outcome.errors[:2]}",
                      flush=True)
        if progress and serial[0] % 100 == 0:
            print(f"  {serial[0]} cases, {len(violations)} violations, {time.time() - start:.0f}s", flush=True)

    check()
    return counts, violations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    args = parser.parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")
    with tempfile.TemporaryDirectory(prefix="prefopt-fuzz-model-") as tmp:
        model = tiny_model_folder(Path(tmp))
        start = time.time()
        counts, violations = fuzz(args.cases, model, progress=True)
    total = sum(counts.values())
    print(f"\n{total} cases in {time.time() - start:.0f}s; {len(violations)} contract violations")
    by_exit = Counter(key.split(" -> exit ")[1].split(":")[0] for key in counts.elements())
    print("by exit status: " + ", ".join(f"{k}: {v}" for k, v in sorted(by_exit.items())))
    for key, count in sorted(counts.items()):
        print(f"  {count:6d}  {key}")
    for case, outcome in violations[:20]:
        print(f"VIOLATION {outcome.violation}: {case.kind} {case.args} {outcome.errors[:2]}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
