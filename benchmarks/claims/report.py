"""docs/claims.md and each algorithm page's quote of its row, rendered from the saved results (never by hand).

    python -m benchmarks.claims --report      # re-render both from benchmarks/claims/results/*.json

A claim with no saved result is listed as pending, with the command that runs it. The quotes live between
``<!-- claims:NAME:begin -->`` and ``<!-- claims:NAME:end -->`` in the page the claim names (``Claim.docs``); a
page without the markers gets the section appended.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from benchmarks.claims import NAMES, load
from benchmarks.claims.core import SIZES

ROOT = Path(__file__).resolve().parents[2]
CLAIMS_PAGE = ROOT / "docs" / "claims.md"
RESULTS = Path(__file__).resolve().parent / "results"


def _ci(x: dict, signed: bool = False) -> str:
    f = "{:+.3f}" if signed else "{:.3f}"
    return f"{f.format(x['mean'])} [{f.format(x['low'])}, {f.format(x['high'])}]"


def _check_line(c: dict) -> str:
    return (f"{c['text']}: {c['a_label']} {_ci(c['a'])} vs {c['b_label']} {_ci(c['b'])}; "
            f"Δ {_ci(c['delta'], signed=True)} → {c['verdict']}")


def _rel(page: Path, target: str) -> str:
    return os.path.relpath(ROOT / target, page.parent)


def _row(name: str, result: dict | None, page: Path) -> str:
    code = f"[{name}.py]({_rel(page, f'benchmarks/claims/{name}.py')})"
    claim = load(name)
    title = f"[{claim.title}](#{name})"
    if result is None:
        return f"| {title} | {claim.setting} | pending | | **pending** | | {code} |"
    if result["verdict"] == "error":
        return f"| {title} | {claim.setting} | runs failed (logs: see details) | | **error** | | {code} |"
    arms = "<br>".join(_check_line(c).rsplit(";", 1)[0] for c in result["checks"])
    effect = "<br>".join(f"Δ {_ci(c['delta'], signed=True)}" for c in result["checks"])
    grid = "<br>".join(f"{a}: {v['best_label']}" for a, v in result["arms"].items())
    verdicts = "<br>".join(c["verdict"] for c in result["checks"])
    return (f"| {title} | {result['setting']} | {arms} | {effect} | **{result['verdict']}**<br>({verdicts}) | "
            f"{grid} | {code} |")


def _cpu(result: dict) -> str:
    return f" ({result['cpu_seconds']:.0f} s of CPU, about its time on idle cores)" if "cpu_seconds" in result else ""


def _details(name: str, result: dict | None) -> list[str]:
    claim = load(name)
    lines = [f"### {claim.title}", f'<a id="{name}"></a>', "", f"**Claim.** {claim.statement}", "",
             f"**Setting.** {claim.setting}", ""]
    if result is None:
        return [*lines, f"**Pending**: not run yet. Run it with `python -m benchmarks.claims {name}`.", ""]
    lines.append(f"**Verdict: {result['verdict']}.**")
    lines.append("")
    for c in result["checks"]:
        lines.append(f"- {_check_line(c)}")
    if result["verdict"] == "error":
        lines += [f"- failed run, log: `{log}`" for log in result["errors"]]
    lines += ["", "| arm | best grid point | " + " | ".join(result["grid"]) + " | metrics at the best point |",
              "|---|---|" + "---|" * len(result["grid"]) + "---|"]
    for arm, v in result["arms"].items():
        means = " | ".join(f"{m:.3f}" for m in v["grid_means"])
        shown = [m for m in v["metrics"] if m in result["metrics_legend"] or m == v["select"]]
        metrics = "; ".join(f"{m} {_ci(v['metrics'][m])}" for m in shown)
        lines.append(f"| {arm}: {v['label']} | {v['best_label']} | {means} | {metrics} |")
    legend = "; ".join(f"`{k}`: {v}" for k, v in result["metrics_legend"].items())
    selects = ", ".join(sorted({v["select"] for v in result["arms"].values()}))
    env = result.get("env", {})
    lines += ["", f"Grid columns: mean over seeds of each arm's selection metric ({selects}). "
              f"Metrics: {legend}.", "",
              f"Notes: {result['notes']}", "",
              *([f"**Observed after the run** (an explanation, not a change of the setting): {claim.observed}", ""]
                if claim.observed else []),
              f"Run: {result['run_seconds']:.0f} s of training and measurement{_cpu(result)} (runs shared with "
              f"another claim counted in both), seeds {result['seeds']}, {env.get('date', '?')}, commit "
              f"{env.get('commit', '?')}.", ""]
    return lines


def _machine(env: dict) -> str:
    if not env:
        return "**Machine.** Not run yet."
    text = (f"**Machine.** {env['machine']}; Python {env['python']}, torch {env['torch']}, transformers "
            f"{env['transformers']}, trl {env['trl']}; {env['jobs']} worker process(es), one thread each. Wall time "
            f"of the suite: {env['suite_seconds'] / 60:.0f} min; load average {env['load_start']} at the start and "
            f"{env['load_end']} at the end ({env['contention']}).")
    suite = RESULTS / "_suite.json"  # measured while the suite ran (CPU time sampled from /proc), when present
    if suite.exists():
        cpu = json.loads(suite.read_text())
        text += (f" CPU time of the whole suite: {cpu['cpu_seconds_total'] / 60:.0f} min, about "
                 f"{cpu['idle_minutes_on_2_cores']:.0f} min of wall time on 2 idle cores ({cpu['what']}). "
                 f"{cpu['note']}")
    return text


def render(results: dict[str, dict]) -> str:
    """The whole of docs/claims.md."""
    full = SIZES["full"]
    envs = [r["env"] for r in results.values() if "env" in r]
    env = max(envs, key=lambda e: e["suite_seconds"]) if envs else {}  # the run that wrote the last claim
    lines = [
        "# The papers' claims on the tiny world",
        "",
        "Generated by `python -m benchmarks.claims` (code: [benchmarks/claims](../benchmarks/claims/__init__.py)); "
        "do not edit by hand. Each paper claims *when* its method beats a simpler one; each claim is tested here "
        "on the tiny embedded world with a setting fixed in code before its result was seen.",
        "",
        f"**Protocol.** Every arm runs at every point of one shared grid ({'; '.join(p.label() for p in full.grid)}) "
        f"for seeds {list(full.seeds)}, and is reported at its best grid point (mean over seeds of its selection "
        "metric, usually the held-out reward). A result is the mean and 95% t-interval over seeds of the per-seed "
        f"value (held-out reward: {full.eval_prompts} eval prompts × {full.eval_samples} samples at temperature 1). "
        "Δ is the paired difference (same seed: same prompts and evaluation seed) with its 95% interval. "
        "A check `a > b` is **reproduced** when a's interval lies wholly above b's, **not reproduced** when a's "
        "mean is not above b's (absent or reversed), and **inconclusive** otherwise (the intervals overlap); a "
        "check `a not below b` is reproduced when a's mean is at least b's, not reproduced when a's interval lies "
        "wholly below b's, inconclusive otherwise. A claim is reproduced when all its checks are, not reproduced "
        "when one is not.",
        "",
        _machine(env),
        "",
        "| claim | setting | results (each arm at its best grid point) | effect size | verdict | best grid point "
        "(of the shared grid) | code |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [_row(name, results.get(name), CLAIMS_PAGE) for name in NAMES]
    lines += ["", "## Details", ""]
    for name in NAMES:
        lines += _details(name, results.get(name))
    return "\n".join(lines).rstrip() + "\n"


def quote(name: str, result: dict | None, page: Path) -> str:
    """The section an algorithm page carries: its claim, the verdict and the checks, linked to the full row."""
    claim = load(name)
    link = f"[the claims page]({_rel(page, 'docs/claims.md')}#{name})"
    code = f"[{name}.py]({_rel(page, f'benchmarks/claims/{name}.py')})"
    head = [f"<!-- claims:{name}:begin -->", f"## Claim on the tiny world: {claim.title}", "",
            "Generated by `python -m benchmarks.claims` from the same results as " + link + f" (code: {code}).", "",
            f"> **Claim.** {claim.statement}", ">", f"> **Setting.** {claim.setting}", ">"]
    if result is None:
        body = ["> **Pending**: not run yet."]
    else:
        body = [f"> **Verdict: {result['verdict']}.**", ">"] + [f"> - {_check_line(c)}" for c in result["checks"]]
    return "\n".join([*head, *body, f"<!-- claims:{name}:end -->"]) + "\n"


def write_quotes(results: dict[str, dict]) -> list[Path]:
    """Insert or refresh every claim's quote in its docs page; returns the pages written."""
    written = []
    for name in NAMES:
        page = ROOT / load(name).docs
        text = page.read_text()
        section = quote(name, results.get(name), page)
        pattern = re.compile(rf"<!-- claims:{name}:begin -->.*?<!-- claims:{name}:end -->\n", re.S)
        found = pattern.search(text)
        new = (text[:found.start()] + section + text[found.end():]) if found else text.rstrip("\n") + "\n\n" + section
        if new != text:
            page.write_text(new)
            written.append(page)
    return written


def write_all(results: dict[str, dict]) -> list[Path]:
    CLAIMS_PAGE.write_text(render(results))
    return [CLAIMS_PAGE, *write_quotes(results)]
