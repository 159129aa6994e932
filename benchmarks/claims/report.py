"""docs/claims.md and each algorithm page's quote of its row, rendered from the saved results (never by hand).

    python -m benchmarks.claims --report      # re-render both from benchmarks/claims/results/*.json

Only protocol-v2 results are read; a claim without one is listed as not yet run under protocol v2, with the command
that runs it. The quotes live between ``<!-- claims:NAME:begin -->`` and ``<!-- claims:NAME:end -->`` in the page
the claim names (``Claim.docs``); a page without the markers gets the section appended.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from benchmarks.claims import NAMES, REAL_NAMES, load
from benchmarks.claims.controls import HARM_FLOOR, SELF_CORR
from benchmarks.claims.core import MARGINS, SIZES, UNFINISHED
from benchmarks.claims.stats import ALPHA, POWER

ROOT = Path(__file__).resolve().parents[2]
CLAIMS_PAGE = ROOT / "docs" / "claims.md"
NOT_RUN = "not yet run under protocol v2"


def _ci(x: dict, signed: bool = False) -> str:
    f = "{:+.3f}" if signed else "{:.3f}"
    return f"{f.format(x['mean'])} [{f.format(x['low'])}, {f.format(x['high'])}]"


def _check_line(c: dict) -> str:
    return (f"{c['text']}: {c['a_label']} {_ci(c['a'])} vs {c['b_label']} {_ci(c['b'])}; paired Δ "
            f"{_ci(c['delta'], signed=True)}, margin {c['margin']:g}, Holm p {c['p_holm']:.3g}, MDE {c['mde']:.3f} "
            f"→ {c['verdict']}")


def _rel(page: Path, target: str) -> str:
    return os.path.relpath(ROOT / target, page.parent)


def _numbers(value, depth: int = 0) -> str:
    """A control's numbers in one line: intervals as mean [low, high], lists and scalars rounded."""
    if isinstance(value, dict) and {"mean", "low", "high"} <= value.keys():
        return _ci(value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_numbers(v, depth + 1)}" for k, v in value.items() if k != "cpu_seconds")
    if isinstance(value, list):
        return "[" + ", ".join(_numbers(v, depth + 1) for v in value) + "]"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _stopped(result: dict | None) -> str:
    return f" ({result['stopped']})" if result and result["verdict"] == UNFINISHED else ""


def _control_cell(result: dict) -> str:
    control = result["control"]
    if control["numbers"] is None and result["verdict"] == UNFINISHED:
        return "not measured yet"
    if control["numbers"] is None:
        return "not reached"
    return ("passed" if control["passed"] else "**failed**") + ": " + _numbers(control["numbers"])


def _row(name: str, result: dict | None, page: Path) -> str:
    claim = load(name)
    title = f"[{claim.title}](#{name})"
    code = f"[{name}.py]({_rel(page, f'benchmarks/claims/{name}.py')})"
    if result is None or result["verdict"] == UNFINISHED:
        control = _control_cell(result) if result else ""
        return (f"| {title} | {control} | | | {NOT_RUN} | **{NOT_RUN}**{_stopped(result)} | "
                f"`python -m benchmarks.claims {name}` ({code}) |")
    if result["verdict"] == "error":
        return f"| {title} | | | | runs failed (see details) | **error** | `{result['command']}` ({code}) |"
    points = "<br>".join(f"{a}: {v['point_label']}" + (" (= " + v["match"] + ")" if v["match"] else "")
                         for a, v in result["arms"].items())
    tuning = f"seeds {result['tuning_seeds']}<br>{points}" if result["arms"] else f"seeds {result['tuning_seeds']}"
    seeds = (f"{len(result['eval_seeds'])} seeds {result['eval_seeds'][0]}–{result['eval_seeds'][-1]}"
             + (f" (power asked more than {result['n_needed']}: capped)" if result.get("capped") else
                f" (power asked {result['n_needed']})" if result.get("n_needed") else "")
             if result["eval_seeds"] else "none (control failed)")
    checks = "<br>".join(f"{c['text']}: Δ {_ci(c['delta'], signed=True)}; margin {c['margin']:g}; MDE "
                         f"{c['mde']:.3f} → {c['verdict']}" for c in result["checks"]) or "not run"
    return (f"| {title} | {_control_cell(result)} | {tuning} | {seeds} | {checks} | **{result['verdict']}** | "
            f"`{result['command']}` ({code}) |")


def _arm_table(result: dict) -> list[str]:
    lines = ["| arm | point | tuning: mean of its selection metric per grid point | tuning seeds, at the point | "
             "evaluation seeds |", "|---|---|---|---|---|"]
    for arm, v in result["arms"].items():
        means = ("; ".join(f"{p}: {m:.3f}" for p, m in v["tuning_means"].items()) if v["tuning_means"]
                 else f"= {v['match']}'s point")
        shown = [m for m in v["tuning"] if m in result["metrics_legend"] or m == v["select"]]
        tuned = "; ".join(f"{m} {_ci(v['tuning'][m])}" for m in shown)
        evaluated = "; ".join(f"{m} {_ci(v['eval'][m])}" for m in shown) if "eval" in v else "not run"
        lines.append(f"| {arm}: {v['label']} | {v['point_label']} | {v['select']}: {means} | {tuned} | "
                     f"{evaluated} |")
    return lines


def _power_lines(result: dict) -> list[str]:
    if not result.get("power"):
        return []
    n_checks = len(result["power"])
    lines = [f"**Power** (one-sided α {ALPHA}/{n_checks}, power {POWER}, paired sd on the tuning seeds): "
             + "; ".join(f"{p['text']}: sd {p['sd']:.4f} → {p['n']} seeds" + (" (capped)" if p["capped"] else "")
                         for p in result["power"]) + f". Evaluation seeds used: {len(result['eval_seeds'])}.", ""]
    return lines


def _details(name: str, result: dict | None) -> list[str]:
    claim = load(name)
    lines = [f"### {claim.title}", f'<a id="{name}"></a>', "", f"**Claim.** {claim.statement}", "",
             f"**Setting.** {claim.setting}", "", f"**Positive control.** {claim.control.text}.", ""]
    if result is None or result["verdict"] == UNFINISHED:
        measured = [f"Control (measured before the session ended): {_control_cell(result)}.", ""] if result else []
        return [*lines, *measured, f"**{NOT_RUN[0].upper() + NOT_RUN[1:]}**{_stopped(result)}. Run it with "
                f"`python -m benchmarks.claims {name}`.", ""]
    lines += [f"Control: {_control_cell(result)}.", "", f"**Verdict: {result['verdict']}.**", ""]
    lines += [f"- {_check_line(c)}" for c in result["checks"]]
    lines += [f"- failed run, log: `{log}`" for log in result["errors"]]
    if result["arms"]:
        lines += ["", *_arm_table(result), ""]
    lines += _power_lines(result)
    legend = "; ".join(f"`{k}`: {v}" for k, v in result["metrics_legend"].items())
    env = result.get("env", {})
    lines += [f"Metrics: {legend}.", "", f"Notes: {result['notes']}", "",
              f"Run: {result['run_seconds']:.0f} s of training and measurement, {result['cpu_seconds']:.0f} s of CPU "
              f"(runs shared with another claim counted in both); wall time of the command "
              f"{env.get('wall_seconds', 0) / 60:.0f} min from {env.get('date', '?')}, load average "
              f"{env.get('load_start', '?')} → {env.get('load_end', '?')}; commit {env.get('commit', '?')}. "
              f"Rerun: `{result['command']}`.", ""]
    return lines


def _group_times(label: str, results: dict[str, dict]) -> str:
    cpu = sum(r["cpu_seconds"] for r in results.values())
    wall = sum(r["env"]["wall_seconds"] for r in results.values() if "env" in r)
    return f"{label}: {len(results)} claims, {wall / 60:.0f} min of wall time, {cpu / 60:.0f} min of CPU"


def _machine(results: dict[str, dict]) -> str:
    results = {k: r for k, r in results.items() if r["verdict"] != UNFINISHED}
    envs = [r["env"] for r in results.values() if "env" in r]
    if not envs:
        return "**Machine.** Nothing run under protocol v2 yet."
    e = envs[0]
    dates = sorted(r["env"]["date"] for r in results.values() if "env" in r)
    loads = [x for r in envs for x in (r["load_start"], r["load_end"])]
    nice = "" if e.get("nice") is None else f", at nice {e['nice']}"  # recorded since the idle-machine rerun
    groups = [_group_times(label, {k: r for k, r in results.items() if k in names})
              for label, names in (("tiny world", NAMES), ("real-model arm", REAL_NAMES))
              if any(k in names for k in results)]
    return (f"**Machine.** {e['machine']}; Python {e['python']}, torch {e['torch']}, transformers "
            f"{e['transformers']}, trl {e['trl']}; {e['jobs']} worker process(es) per command, one thread each"
            f"{nice}. Claims started from {dates[0]} to {dates[-1]}; {'; '.join(groups)} (a run two claims share is "
            f"counted in each); 1-minute load average between {min(loads):g} and {max(loads):g} at the claims' "
            f"starts and ends (each claim's own figures are in its details).")


def _protocol() -> str:
    full = SIZES["full"]
    margins = ", ".join(f"{k} {v:g}" for k, v in MARGINS.items())
    return (
        f"**Protocol v2**, fixed in code before its runs ([core.py](../benchmarks/claims/core.py)). (1) A positive "
        "control per claim shows the world can express the mechanism; a failed control ends the claim as **not "
        "testable here**, with its numbers. (2) Each tuned arm runs at every point of the grid "
        f"({'; '.join(p.label() for p in full.grid)}, plus a claim's own points where it says so) on the tuning "
        f"seeds {list(full.tuning_seeds)} and takes the point with the best mean of its selection metric; an arm "
        "marked (= other) runs at the other arm's point (equal hyper-parameters). (3) The number of evaluation "
        f"seeds comes from a power calculation on the tuning runs: the fewest n (at least {full.least}, at most "
        f"{full.most}) whose minimum detectable effect (MDE, one-sided t-test at α {ALPHA}/m over m checks, power "
        f"{POWER}) is no larger than the check's margin. (4) Every arm is then run at its point on fresh evaluation "
        f"seeds {full.first_eval_seed}, {full.first_eval_seed + 1}, …; each check reads the paired difference Δ "
        "over them (same seed: same prompts, samples and evaluation samples), with its 95% t-interval. A check "
        "`a > b` is **reproduced** when the one-sided paired t-test of Δ > 0 rejects at α after Holm's correction "
        "across the claim's checks (the interval lies above 0); **not reproduced** when the test of Δ < margin "
        "rejects (the effect is absent, smaller than the margin, or reversed); **inconclusive** otherwise "
        "(underpowered). A check `a not below b` is reproduced when Δ > −margin is shown, not reproduced when "
        f"Δ < −margin is shown. Margins (the smallest effect of interest, per metric): {margins}; the controls' "
        f"thresholds: harm rate above {HARM_FLOOR}, self-judge error correlation above {SELF_CORR}. A claim is "
        "reproduced when all its checks are, not reproduced when one is not. MDE in the table: the effect the "
        "evaluation seeds detect with power 0.8, from their own sd.")


def render(results: dict[str, dict]) -> str:
    """The whole of docs/claims.md."""
    header = ["| claim | positive control | tuning seeds and chosen points | evaluation seeds | checks: paired Δ "
              "[95% interval], margin, MDE | verdict | rerun (other seeds: `--seeds`) |",
              "|---|---|---|---|---|---|---|"]
    lines = [
        "# The papers' claims on the tiny world",
        "",
        "Generated by `python -m benchmarks.claims` (code: [benchmarks/claims](../benchmarks/claims/__init__.py)); "
        "do not edit by hand. Each paper claims *when* its method beats a simpler one; each claim is tested here "
        "on the tiny embedded world.",
        "",
        _protocol(),
        "",
        _machine(results),
        "",
        *header,
    ]
    lines += [_row(name, results.get(name), CLAIMS_PAGE) for name in NAMES]
    lines += ["", "## The real-model arm", "",
              "The same protocol on the SmolLM2-135M-Instruct world (`model=smollm2-135m`), at the world's own "
              "settings (one point, not searched). A separate command, `python -m benchmarks.claims "
              f"{' '.join(REAL_NAMES)}`: a run of a 135M model on CPU costs minutes where a tiny-world run costs "
              "seconds.", "", *header]
    lines += [_row(name, results.get(name), CLAIMS_PAGE) for name in REAL_NAMES]
    lines += ["", "## Details", ""]
    for name in NAMES + REAL_NAMES:
        lines += _details(name, results.get(name))
    return "\n".join(lines).rstrip() + "\n"


def quote(name: str, result: dict | None, page: Path) -> str:
    """The section an algorithm page carries: its claim, the verdict and the checks, linked to the full row."""
    claim = load(name)
    link = f"[the claims page]({_rel(page, 'docs/claims.md')}#{name})"
    code = f"[{name}.py]({_rel(page, f'benchmarks/claims/{name}.py')})"
    world = "the real-model world" if name in REAL_NAMES else "the tiny world"
    head = [f"<!-- claims:{name}:begin -->", f"## Claim on {world}: {claim.title}", "",
            "Generated by `python -m benchmarks.claims` from the same results as " + link + f" (code: {code}), "
            "under protocol v2.", "", f"> **Claim.** {claim.statement}", ">", f"> **Setting.** {claim.setting}", ">",
            f"> **Positive control.** {claim.control.text}.", ">"]
    if result is None or result["verdict"] == UNFINISHED:
        body = [f"> **{NOT_RUN[0].upper() + NOT_RUN[1:]}**{_stopped(result)}. Run it with "
                f"`python -m benchmarks.claims {name}`."]
    else:
        body = [f"> Control: {_control_cell(result)}.", ">", f"> **Verdict: {result['verdict']}.**", ">"]
        body += [f"> - {_check_line(c)}" for c in result["checks"]]
        body += [">", f"> Rerun: `{result['command']}`."]
    return "\n".join([*head, *body, f"<!-- claims:{name}:end -->"]) + "\n"


def write_quotes(results: dict[str, dict]) -> list[Path]:
    """Insert or refresh every claim's quote in its docs page; returns the pages written."""
    written = []
    for name in NAMES + REAL_NAMES:  # the real-model arm quoted on its algorithm page too
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
