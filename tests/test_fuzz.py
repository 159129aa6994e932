"""The fuzzer of the failure contract at a small budget (benchmarks/fuzz.py; `python -m benchmarks.fuzz --cases N`
runs a large one): generated data files, prompt files, chat rows, configs and reward functions through
`prefopt.train.main`, asserting the exit status, the `error:` lines and that a pre-flight error writes nothing."""

from __future__ import annotations

from benchmarks.fuzz import Case, fuzz, run_case


def test_the_contract_holds_on_generated_cases(model_dir, monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    counts, violations = fuzz(25, str(model_dir), seed=21, stop_at_first=True)
    assert not violations and sum(counts.values()) == 25
    assert any(" -> exit 2" in k for k in counts)  # the budget reaches the pre-flight check


def test_the_fuzzer_flags_each_kind_of_violation(model_dir, monkeypatch):
    """The checks are not vacuous: an entry point that breaks the contract in each way is caught."""
    import sys
    from pathlib import Path

    import prefopt.train

    def writes_then_refuses(argv):
        Path("run").mkdir()
        print("error: bad", file=sys.stderr)
        return 2

    def two_lines(argv):
        print("error: a\nerror: b", file=sys.stderr)
        return 1

    def traceback(argv):
        print("Traceback (most recent call last):\nerror: x", file=sys.stderr)
        return 1

    def raises(argv):
        raise KeyError("x")

    case = Case("config", {}, ["output_dir=run"])
    for fake, violation in ((writes_then_refuses, "exit 2 but files were written"),
                            (two_lines, "exit 1 with 2 error lines"), (traceback, "a traceback was printed"),
                            (raises, "KeyError left main")):
        monkeypatch.setattr(prefopt.train, "main", fake)
        assert violation in (run_case(case, str(model_dir), 1).violation or ""), fake.__name__
