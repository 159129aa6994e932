"""Filter preference data by CHES score before DPO, with a report and a histogram of the scores.

Razin et al. (2024, arXiv 2410.08847, Section 6) train on the pairs with the lowest length-normalised CHES (they keep
5%), which removes the pairs that drive likelihood displacement. Three ways to cut, exactly one per call:

    keep_fraction=0.05   keep the lowest 5% (the paper's rule)
    drop_fraction=0.10   drop the highest 10%
    threshold=-2.0       drop every pair scored above -2.0

The trainer calls ``apply_ches_filter`` for a recipe's ``ches:`` block::

    kept, report = apply_ches_filter(records, model, tokenizer, **recipe.ches, out_dir=run_dir / "ches")

Under ``accelerate launch`` every process calls it: each scores whole batches of the pairs (``ches_scores``), all
get every score and make the same cut, and the main process alone writes ``out_dir``.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from prefopt.ches.score import score_records
from prefopt.distributed import is_main_process

QUANTILES = {"min": 0.0, "p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "max": 1.0}


def check_rule(keep_fraction: float | None, drop_fraction: float | None, threshold: float | None) -> dict[str, float]:
    """The one cutting rule given, as {name: value}; raises ValueError unless exactly one is set and in range."""
    given = {k: v for k, v in (("keep_fraction", keep_fraction), ("drop_fraction", drop_fraction),
                               ("threshold", threshold)) if v is not None}
    if len(given) != 1:
        names = ", ".join(given) or "none"
        raise ValueError(f"ches filter: set exactly one of keep_fraction, drop_fraction, threshold (got: {names})")
    name, value = next(iter(given.items()))
    value = float(value)
    if name == "keep_fraction" and not 0.0 < value <= 1.0:
        raise ValueError(f"ches filter: keep_fraction must lie in (0, 1], got {value}")
    if name == "drop_fraction" and not 0.0 <= value < 1.0:
        raise ValueError(f"ches filter: drop_fraction must lie in [0, 1), got {value}")
    if name == "threshold" and not math.isfinite(value):
        raise ValueError(f"ches filter: threshold must be finite, got {value}")
    return {name: value}


def select(scores: Tensor, *, keep_fraction: float | None = None, drop_fraction: float | None = None,
           threshold: float | None = None) -> tuple[Tensor, float | None]:
    """Which pairs to keep: (N,) bool mask and the cut (the highest kept score; None when nothing is kept).

    Fractions count pairs, rounded half up: keep_fraction keeps ⌊f·N + ½⌋ (at least one), drop_fraction drops
    ⌊f·N + ½⌋.
    Ties at the cut are broken by position (stable sort), so the counts are exact. A non-finite score (a model
    that overflowed) ranks above every finite one and is never kept.
    """
    (name, value), = check_rule(keep_fraction, drop_fraction, threshold).items()
    n = scores.numel()
    ranked = torch.where(torch.isfinite(scores), scores.double(), torch.tensor(math.inf, dtype=torch.float64))
    if name == "threshold":
        keep = ranked <= value
    else:
        # round half up (Python's round() sends 6.5 to 6 but 7.5 to 8); the 1e-9 absorbs 0.35 · 10 = 3.4999…
        count = math.floor(value * n + 0.5 + 1e-9)
        n_keep = max(1, count) if name == "keep_fraction" else n - count
        n_keep = min(n_keep, int(torch.isfinite(ranked).sum()))
        order = torch.argsort(ranked, stable=True)
        keep = torch.zeros(n, dtype=torch.bool)
        keep[order[:n_keep]] = True
    cut = float(scores[keep].max()) if keep.any() else None
    return keep, cut


def summarize(scores: Tensor, keep: Tensor, cut: float | None, rule: dict[str, float], *,
              length_normalize: bool) -> dict[str, Any]:
    """The report: counts kept/dropped, the rule and cut, quantiles and mean of the (finite) scores."""
    finite = scores[torch.isfinite(scores)].double()
    stats = {}
    if finite.numel():
        stats = {name: float(torch.quantile(finite, q)) for name, q in QUANTILES.items()}
        stats["mean"] = float(finite.mean())
    return {
        "score": "LN-CHES" if length_normalize else "CHES",
        "rule": rule,
        "cut": cut,
        "n": int(scores.numel()),
        "kept": int(keep.sum()),
        "dropped": int((~keep).sum()),
        "non_finite": int(scores.numel() - finite.numel()),
        "quantiles": {k: v for k, v in stats.items() if k != "mean"},
        "mean": stats.get("mean"),
        "kept_mean": float(scores[keep].double().mean()) if keep.any() else None,
        "paper": "Razin et al., 2024, arXiv 2410.08847",
    }


def plot_histogram(scores: Tensor, keep: Tensor, report: dict[str, Any], path: str | Path) -> Path:
    """Histogram of the scores, kept and dropped stacked in two colours, with the cut marked."""
    # Figure + the Agg canvas directly: no pyplot, so the caller's global matplotlib backend is left alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    finite = torch.isfinite(scores)
    kept, dropped = scores[keep & finite].double().numpy(), scores[~keep & finite].double().numpy()
    fig = Figure(figsize=(7, 4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    bins = max(10, min(60, int(math.sqrt(max(int(finite.sum()), 1))) * 2))
    ax.hist([kept, dropped], bins=bins, stacked=True, color=["tab:blue", "tab:red"],
            label=[f"kept ({report['kept']})", f"dropped ({report['dropped']})"])
    if report["cut"] is not None:
        ax.axvline(report["cut"], color="black", linestyle="--", linewidth=1, label=f"cut = {report['cut']:.4g}")
    (rule, value), = report["rule"].items()
    ax.set_xlabel(f"{report['score']} score (higher: more likely to cause likelihood displacement)")
    ax.set_ylabel("pairs")
    ax.set_title(f"{report['score']} of {report['n']} pairs, {rule} = {value:g}")
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _json_safe(value: float) -> float | None:
    return value if math.isfinite(value) else None  # NaN/inf are not JSON


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_outputs(out_dir: str | Path, scored: list[dict[str, Any]], keep: Tensor, scores: Tensor,
                  report: dict[str, Any], *, scored_name: str = "ches_scores.jsonl",
                  filtered_name: str | None = None) -> dict[str, str]:
    """Write the scored records (each line with ``ches_kept``), the report, the histogram and, optionally, the kept
    records alone in the list-record format ``load_records`` reads. Returns {what: path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"scored": out / scored_name, "report": out / "ches_report.json", "histogram": out / "ches_hist.png"}
    _write_jsonl(paths["scored"], [{**r, "ches_kept": bool(k)} for r, k in zip(scored, keep.tolist(), strict=True)])
    if filtered_name:
        paths["filtered"] = out / filtered_name
        _write_jsonl(paths["filtered"], [r for r, k in zip(scored, keep.tolist(), strict=True) if k])
    paths["report"].write_text(json.dumps(report, indent=2) + "\n")
    plot_histogram(scores, keep, report, paths["histogram"])
    return {k: str(v) for k, v in paths.items()}


def score_and_select(records: list[dict[str, Any]], model, tokenizer, *, keep_fraction: float | None = None,
                     drop_fraction: float | None = None, threshold: float | None = None,
                     length_normalize: bool = True, batch_size: int = 16):
    """Score, cut and annotate: (scored copies with meta["ches"], keep mask, scores, report). No I/O."""
    rule = check_rule(keep_fraction, drop_fraction, threshold)  # fail on a bad option before any model time
    scores = score_records(records, model, tokenizer, length_normalize=length_normalize, batch_size=batch_size)
    keep, cut = select(scores, **rule)
    report = summarize(scores, keep, cut, rule, length_normalize=length_normalize)
    scored = []
    for record, score in zip(records, scores.tolist(), strict=True):
        record = copy.deepcopy(record)  # the caller's records stay as they were
        record["meta"] = {**(record.get("meta") or {}), "ches": _json_safe(score)}
        scored.append(record)
    return scored, keep, scores, report


def apply_ches_filter(records: list[dict[str, Any]], model, tokenizer, *, keep_fraction: float | None = None,
                      drop_fraction: float | None = None, threshold: float | None = None,
                      length_normalize: bool = True, batch_size: int = 16,
                      out_dir: str | Path | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score every record by (LN-)CHES and keep the low-scoring ones.

    Args:
        records: preference records (``load_records``); lists are scored best vs worst.
        model, tokenizer: the policy DPO will start from (the paper scores with the initial model).
        keep_fraction | drop_fraction | threshold: the cut, exactly one (see the module docstring).
        length_normalize: LN-CHES (default, as the paper filters) or plain CHES.
        batch_size: pairs per forward.
        out_dir: when given, write ``ches_scores.jsonl`` (all records, ``meta.ches`` and ``ches_kept``),
            ``ches_report.json`` and ``ches_hist.png`` there.

    Returns:
        (kept records, copies with ``meta["ches"]`` set, in their original order; the report dict).
        Raises ValueError when the cut keeps nothing (after writing ``out_dir``, so the scores can be inspected).
    """
    scored, keep, scores, report = score_and_select(
        records, model, tokenizer, keep_fraction=keep_fraction, drop_fraction=drop_fraction, threshold=threshold,
        length_normalize=length_normalize, batch_size=batch_size)
    if out_dir is not None and is_main_process():
        report["files"] = write_outputs(out_dir, scored, keep, scores, report)
    if records and not keep.any():
        where = f"; scores are in {out_dir}" if out_dir is not None else ""
        raise ValueError(f"ches filter: {report['rule']} keeps none of the {len(records)} pairs "
                         f"(scores range {report['quantiles'].get('min')} to {report['quantiles'].get('max')}){where}")
    return [r for r, k in zip(scored, keep.tolist(), strict=True) if k], report
