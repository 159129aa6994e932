"""Pairing and list building: scored lists → the lists or pairs a loss trains on, with what was dropped counted.

Every rule is a pure function ``rule(records, **options) -> (new_records, DataReport)``: the input records are not
modified, and the report (``prefopt.data.records.DataReport``) counts input lists (``rows``), output records
(``kept``), ties (``dropped_ties``) and every other drop by reason (``dropped``). Rules that emit pairs count ties
per tied pair; rules that emit one record per list count them per list.

    auto             the default: full_list for a listwise loss, best_vs_worst for a pairwise one (``rule_of``)
    full_lists       keep the whole ranked list (LiPO-λ)
    best_vs_worst    the highest- against the lowest-scored response
    all_pairs        i ≻ j for every scores_i > scores_j;  margin_pairs: only when scores_i − scores_j ≥ min_margin
    strength_pairs   all_pairs with the judge's preference strength P(i ≻ j) as weight (OSP)
    baseline_pairs   each response against one baseline, weight P(winner ≻ loser) (OSP, n judge calls, not n²)
    dno_pairs        DNO's rule: every pair with positive ≥ min_positive and negative at least a margin lower
    d2o_lists        D²O: self-generated samples as positives, the given negative strictly lowest

A derived record keeps the source's prompt, weight and meta, picks the chosen responses' ``segments``, and records
where its responses came from in ``meta["source_indices"]``. ``mix_replay`` mixes earlier rounds' pairs into this
round's (DNO), ``with_gold`` appends a reference response to each list and marks it in ``meta["gold_index"]``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

from losses import get_loss
from prefopt.data.records import DataReport, PreferenceDataError

GOLD = "gold_index"  # meta key: position of the gold (reference, e.g. GPT-4) response in the list


def _derive(record: dict, indices: list[int], scores: list[float] | None = None) -> dict:
    """A new record made of ``record``'s responses at ``indices`` (scores taken along unless given)."""
    meta = dict(record.get("meta") or {})
    gold = meta.pop(GOLD, None)
    if gold in indices:
        meta[GOLD] = indices.index(gold)
    meta["source_indices"] = list(indices)
    segments = record.get("segments")
    return {
        "prompt": record["prompt"],
        "responses": [record["responses"][i] for i in indices],
        "scores": list(scores) if scores is not None else [record["scores"][i] for i in indices],
        "weight": record.get("weight"),
        "segments": None if segments is None else [segments[i] for i in indices],
        "meta": meta,
    }


def _report(records: list, out: list, ties: int = 0, **dropped: int) -> tuple[list[dict], DataReport]:
    report = DataReport(rows=len(records), kept=len(out), dropped_ties=ties)
    report.dropped.update({k: v for k, v in dropped.items() if v})
    return out, report


def full_lists(records: list[dict]) -> tuple[list[dict], DataReport]:
    """Keep every list whole (LiPO-λ learns from all K at once); lists whose scores are all equal are dropped."""
    out = [_derive(r, list(range(len(r["responses"])))) for r in records if max(r["scores"]) > min(r["scores"])]
    return _report(records, out, ties=len(records) - len(out))


def best_vs_worst(records: list[dict]) -> tuple[list[dict], DataReport]:
    """One pair per list: the first highest-scored response against the last lowest-scored one."""
    out = []
    for r in records:
        s = r["scores"]
        if max(s) > min(s):
            best, worst = s.index(max(s)), len(s) - 1 - s[::-1].index(min(s))
            out.append(_derive(r, [best, worst]))
    return _report(records, out, ties=len(records) - len(out))


def _ordered_pairs(scores: list[float]):
    """Each unordered pair of a list, in list order, as (higher, lower) index; None for a tie."""
    for i in range(len(scores)):
        for j in range(i + 1, len(scores)):
            yield None if scores[i] == scores[j] else ((i, j) if scores[i] > scores[j] else (j, i))


def all_pairs(records: list[dict], *, min_margin: float = 0.0) -> tuple[list[dict], DataReport]:
    """Every ordered pair (i, j) with scores_i > scores_j, in list order; equal scores are ties.

    Args:
        min_margin: keep a pair only when scores_i − scores_j ≥ ``min_margin`` (0 keeps every strict pair);
            pairs under the margin are counted as ``below_margin``.
    """
    out, ties, below = [], 0, 0
    for r in records:
        s = r["scores"]
        for pair in _ordered_pairs(s):
            if pair is None:
                ties += 1
            elif s[pair[0]] - s[pair[1]] < min_margin:
                below += 1
            else:
                out.append(_derive(r, list(pair)))
    return _report(records, out, ties=ties, below_margin=below)


def margin_pairs(records: list[dict], *, min_margin: float) -> tuple[list[dict], DataReport]:
    """``all_pairs`` above a score (or win-rate) margin: scores_i − scores_j ≥ ``min_margin``."""
    return all_pairs(records, min_margin=min_margin)


def strength_pairs(records: list[dict], matrices: Sequence[Sequence[Sequence[float]]], *,
                   min_margin: float = 0.0) -> tuple[list[dict], DataReport]:
    """``all_pairs`` with each pair's preference strength in ``weight`` (OSP's self-judged pairs).

    Paper: Zhai et al. (2024), "Online Self-Preferring Language Models", arXiv 2405.14103: several ranked pairs per
    prompt, each with a self-judged preference strength. ``matrices[n]`` is list n's debiased preference matrix
    (``PairwiseJudgeScorer.matrices``, candidates first); the pair (i ≻ j) gets weight P(i ≻ j) = (p(i, j) + 1 −
    p(j, i)) / 2, the judge's verdict averaged over its two presentation orders (``debiased_matrix``), which
    ``losses.osp_loss`` reads as the target. The ranking is the records' ``scores`` (e.g. the same judge's win
    rates).
    """
    if len(matrices) != len(records):
        raise PreferenceDataError(f"strength_pairs: {len(matrices)} preference matrices for {len(records)} records")
    out, total = [], DataReport(rows=len(records))
    for record, matrix in zip(records, matrices, strict=True):
        pairs, report = all_pairs([record], min_margin=min_margin)
        out.extend({**p, "weight": float(matrix[p["meta"]["source_indices"][0]][p["meta"]["source_indices"][1]])}
                   for p in pairs)
        total.dropped_ties += report.dropped_ties
        for reason, n in report.dropped.items():
            total.dropped[reason] = total.dropped.get(reason, 0) + n
    total.kept = len(out)
    return out, total


def baseline_pairs(records: list[dict], *, baseline: int) -> tuple[list[dict], DataReport]:
    """OSP's ranked pairs against one baseline: each response paired with the baseline, weight = the strength.

    Reconstruction (Zhai et al., 2024, "Online Self-Preferring Language Models", arXiv 2405.14103; the method
    section was not read, see docs/losses/osp.md): the abstract's "ranked pairing method to construct multiple
    response pairs with preference strength information", with each of the n responses compared with one fixed
    baseline (n − 1 comparisons, not n²). The records' ``scores`` must come from a pairwise judge in baseline mode
    (``PairwiseJudgeScorer(baseline=b)``): score_u = P(u ≻ b), the baseline's own score ½.

    For every u ≠ b: P(u ≻ b) > ½ gives the pair (u ≻ b) with weight P(u ≻ b); P(u ≻ b) < ½ gives (b ≻ u) with
    weight 1 − P(u ≻ b); ½ is a tie. The weight is the self-judged probability that the pair's chosen response is
    the better one, the target p of ``losses.osp.osp_loss``.
    """
    out, ties = [], 0
    for n, r in enumerate(records):
        s = r["scores"]
        if not 0 <= baseline < len(s) or s[baseline] != 0.5:
            raise PreferenceDataError(
                f"baseline_pairs row {n}: field 'scores' has no baseline score 0.5 at index {baseline} ({s}); score "
                f"the lists with a pairwise judge in baseline mode (scorer: {{..., baseline: {baseline}}})")
        for u, p in enumerate(s):
            if u == baseline:
                continue
            if p == 0.5:
                ties += 1
                continue
            winner, loser = (u, baseline) if p > 0.5 else (baseline, u)
            out.append({**_derive(r, [winner, loser]), "weight": max(p, 1.0 - p)})
    return _report(records, out, ties=ties)


def dno_pairs(records: list[dict], *, min_positive: float = 5.0, margin: float = 2.0,
              margin_if_policy: float = 1.0) -> tuple[list[dict], DataReport]:
    """DNO's large-margin pairs: every pair whose positive is good enough and whose negative is far enough below.

    Paper: Rosset et al. (2024), "Direct Nash Optimization", arXiv 2404.03715, §5.1: the K policy samples and the
    gold response are scored on a 6-point scale; positives must score 5 or 6, and every pair whose negative is at
    least 2 points lower is kept (1 point when the positive is a policy sample).

    For every pair i, j of a list (in list order) with scores_i > scores_j: kept when scores_i ≥ ``min_positive``
    and scores_i − scores_j ≥ the margin, ``margin`` when the positive is the gold response
    (``meta["gold_index"]``), ``margin_if_policy`` when it is a policy sample (lists without a gold mark are all
    policy samples). Counted per pair: equal scores → tie; positive below ``min_positive`` →
    ``positive_below_min``; gap under the margin → ``below_margin``.
    """
    out, ties, low, narrow = [], 0, 0, 0
    for r in records:
        s, gold = r["scores"], (r.get("meta") or {}).get(GOLD)
        for pair in _ordered_pairs(s):
            if pair is None:
                ties += 1
                continue
            hi, lo = pair
            if s[hi] < min_positive:
                low += 1
            elif s[hi] - s[lo] < (margin if hi == gold else margin_if_policy):
                narrow += 1
            else:
                out.append(_derive(r, [hi, lo]))
    return _report(records, out, ties=ties, positive_below_min=low, below_margin=narrow)


def d2o_lists(records: list[dict], samples: Sequence[Sequence], *,
              sample_scores: Sequence[Sequence[float]] | None = None) -> tuple[list[dict], DataReport]:
    """D²O lists: the policy's samples as positives beside the record's given (human) negative.

    Paper: Duan et al. (2024), "Negating Negatives: Alignment with Human Negative Samples via Distributional
    Dispreference Optimization", arXiv 2403.03419: only the negative is trusted; self-generated samples stand in
    for the positives.

    Each output list is ``[samples..., negative]``. The negative is the record's lowest-scored response (for a TRL
    pair, ``rejected``). Sample scores default to 1 each with the negative at 0; given ``sample_scores`` (e.g. a
    reward model's), they are kept and the negative gets min(sample scores) − 1, so it is always strictly lowest.
    The negative's position is ``meta["negative_index"]``.

    Drops: a record whose lowest score is shared by several responses (which one is the negative?) → tie; a
    sample identical to the negative → ``sample_equals_negative`` (counted per sample); no sample left →
    ``no_samples``.
    """
    if len(samples) != len(records):
        raise PreferenceDataError(f"d2o_lists: {len(samples)} sample lists for {len(records)} records")
    if sample_scores is not None and len(sample_scores) != len(records):
        raise PreferenceDataError(f"d2o_lists: {len(sample_scores)} sample score lists for {len(records)} records")
    out, ties, same, empty = [], 0, 0, 0
    for n, r in enumerate(records):
        s = r["scores"]
        if s.count(min(s)) > 1:
            ties += 1
            continue
        negative = r["responses"][s.index(min(s))]
        given = sample_scores[n] if sample_scores is not None else [1.0] * len(samples[n])
        if len(given) != len(samples[n]):
            raise PreferenceDataError(f"d2o_lists row {n}: {len(given)} sample scores for {len(samples[n])} samples")
        kept = [(y, float(v)) for y, v in zip(samples[n], given, strict=True) if y != negative]
        same += len(samples[n]) - len(kept)
        if not kept:
            empty += 1
            continue
        scores = [v for _, v in kept]
        meta = {**(r.get("meta") or {}), "negative_index": len(kept)}
        meta.pop(GOLD, None)
        out.append({"prompt": r["prompt"], "responses": [y for y, _ in kept] + [negative],
                    "scores": scores + [min(scores) - 1.0 if sample_scores is not None else 0.0],
                    "weight": r.get("weight"), "segments": None, "meta": meta})
    return _report(records, out, ties=ties, sample_equals_negative=same, no_samples=empty)


def with_gold(records: list[dict], golds: Sequence, *, score: float = 0.0) -> list[dict]:
    """Append one gold (reference) response to each list and mark its position in ``meta["gold_index"]``.

    DNO compares the policy's samples with a strong model's answer; appended before scoring, the gold response is
    judged like any sample and can become the positive (with ``dno_pairs``' own ``margin``). Its score is a
    placeholder (``score``) until a scorer rewrites the list's scores (``prefopt.rounds.scoring.score_records``).
    """
    if len(golds) != len(records):
        raise PreferenceDataError(f"with_gold: {len(golds)} gold responses for {len(records)} records")
    out = []
    for r, g in zip(records, golds, strict=True):
        segments = r.get("segments")
        out.append({**r, "responses": list(r["responses"]) + [g],
                    "scores": list(r.get("scores") or [0.0] * len(r["responses"])) + [float(score)],
                    "segments": None if segments is None else list(segments) + [[]],
                    "meta": {**(r.get("meta") or {}), GOLD: len(r["responses"])}})
    return out


def mix_replay(current: list[dict], previous: Sequence[list[dict]], *, fractions: Sequence[float] = (0.3, 0.15),
               relative_to: str = "previous", seed: int = 0) -> tuple[list[dict], dict[str, int]]:
    """This round's records plus a seeded sample of earlier rounds' records (DNO's replay).

    Paper: Rosset et al. (2024), arXiv 2404.03715, §5.1: round t also trains on up to 30% of the pairs of round
    t−1 and 15% of round t−2, replayed as they were (not re-sampled).

    Args:
        current: round t's records.
        previous: ``[round t−1 records, round t−2 records, ...]`` (most recent first; a missing round may be left
            out or given as an empty list).
        fractions: one per earlier round (30% of t−1, 15% of t−2 by default).
        relative_to: what a fraction is a share of. ``"previous"``: ``floor(fraction × len(that round))`` of that
            round's records; ``"current"``: ``floor(fraction × len(current))`` of them, or all that round has if
            fewer ("up to"). Records are drawn without replacement.
        seed: the draw is reproducible for a given seed.
    Returns:
        (records, counts): the mixed list (current first, then the replayed records with ``meta["replay"] = lag``),
        and how many came from each lag, ``{"t-1": n1, "t-2": n2}``.
    """
    if len(previous) > len(fractions):
        raise ValueError(f"mix_replay: {len(previous)} earlier rounds but only {len(fractions)} fractions")
    if any(not 0.0 <= f <= 1.0 for f in fractions):
        raise ValueError(f"mix_replay: fractions must lie in [0, 1], got {list(fractions)}")
    if relative_to not in ("previous", "current"):
        raise ValueError(f"mix_replay: relative_to must be 'previous' or 'current', got {relative_to!r}")
    rng = random.Random(seed)
    out, counts = list(current), {}
    for lag, (old, fraction) in enumerate(zip(previous, fractions, strict=False), start=1):
        base = len(old) if relative_to == "previous" else len(current)
        n = min(len(old), math.floor(fraction * base + 1e-9))  # 1e-9: 0.29 × 100 is 28.999…
        picked = sorted(rng.sample(range(len(old)), n))
        out.extend({**old[i], "meta": {**(old[i].get("meta") or {}), "replay": lag}} for i in picked)
        counts[f"t-{lag}"] = n
    return out, counts


# rule name → function, for recipes (``pairing: {rule: dno, min_positive: 5}``)
RULES: dict[str, Callable[..., tuple[list[dict], DataReport]]] = {
    "full_list": full_lists,
    "best_vs_worst": best_vs_worst,
    "all_pairs": all_pairs,
    "margin": margin_pairs,
    "dno": dno_pairs,
    "strength": strength_pairs,
    "baseline": baseline_pairs,
    "d2o": d2o_lists,
}

# rules whose output keeps whole lists (a listwise loss needs one of them); every other rule emits pairs
LIST_RULES = ("full_list", "d2o")

# rule name → the options that open its thresholds in smoke runs (``smoke=true``): a random stand-in model's
# samples are never far apart, so the paper's margins would drop every pair. Rules without thresholds are absent.
SMOKE_OPTIONS: dict[str, dict[str, float]] = {
    "all_pairs": {"min_margin": 0.0},
    "margin": {"min_margin": 0.0},
    "strength": {"min_margin": 0.0},
    "dno": {"min_positive": -1e9, "margin": 0.0, "margin_if_policy": 0.0},
}


AUTO = "auto"  # the default rule: whatever the loss learns from (``rule_of``)


def rule_of(cfg: Any) -> str:
    """The run's pairing rule: ``pairing.rule``, where ``auto`` (the default) follows the loss: a listwise loss
    (``LossSpec.listwise``, e.g. LiPO-λ) gets the whole ranked list (``full_list``), a pairwise one the best
    against the worst response (``best_vs_worst``). An explicit rule is kept as given (validation refuses one that
    does not fit the loss)."""
    if cfg.pairing.rule != AUTO:
        return cfg.pairing.rule
    return "full_list" if get_loss(cfg.loss.name).listwise else "best_vs_worst"


def build(records: list[dict], rule: str, **options: Any) -> tuple[list[dict], DataReport]:
    """Apply the pairing rule named ``rule`` (a key of ``RULES``) with its options."""
    if rule not in RULES:
        raise ValueError(f"unknown pairing rule {rule!r}; valid rules: {', '.join(sorted(RULES))}")
    return RULES[rule](records, **options)
