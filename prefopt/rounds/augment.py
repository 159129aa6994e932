"""Reward-augmented preference pairs: every scored pair taught twice, conditioned on each response's score.

Paper: Zhang, Liu, Liu, Zhang, Yang, Liu, Chen, Sun, Wang (2024), "Reward-Augmented Data Enhances Direct
Preference Alignment of LLMs", arXiv 2410.08067 (ICML 2025), §4 (reward-augmented data relabeling) and the
experiments on UltraFeedback (GPT-4 scores on 1–10).

A scored pair (x, y_w, r_w, y_l, r_l) becomes two rows:

    goal r_w + x :  y_w ≻ y_l      (reaching a high score means answering like y_w, not y_l)
    goal r_l + x :  y_l ≻ y_w      (reaching y_l's score means answering like y_l — y_l is not unlearned)

The goal is the authors' system prompt (``GOAL_TEMPLATE``, word for word as in their release,
github.com/shenao-zhang/reward-augmented-preference, ``scripts/reward_augmentation.py``)::

    You are an assistant that generates responses for the instruction while implicitly achieving the following
    target scores (on a scale of 1-10, where 1 is lowest and 10 is highest):
    Overall score: {score}.

It is a system message for chat prompts; for chat templates without a system role it is prepended to the first
user turn followed by a blank line (the authors' ``_nosys`` variant); plain-text prompts get it prepended the same
way. At inference the policy is conditioned on the top score, 10 (``condition_on_top_score``). Only the training
split is augmented: evaluation data keeps its prompts (``split``), as the authors leave ``test_prefs`` unchanged.
A model whose context cannot hold the authors' sentence (the tiny world's 64 positions) takes a shorter
``template`` with the same ``{score}`` field (``augment: {template: "goal {score}"}``); the method is unchanged.

Run::

    rows, report = reward_augment(records, source_scale=(0, 1), tokenizer=tok)
"""

from __future__ import annotations

from prefopt.data.records import DataReport, PreferenceDataError
from prefopt.data.tokenize import is_messages

GOAL_TEMPLATE = (
    "You are an assistant that generates responses for the instruction while implicitly achieving the following "
    "target scores (on a scale of 1-10, where 1 is lowest and 10 is highest):\nOverall score: {score}."
)
SCALE = (1.0, 10.0)  # the template's scale
TOP_SCORE = 10


def format_score(score: float) -> str:
    """``7`` for 7.0, ``7.5`` for 7.5: integral scores print without a decimal point, as the authors do."""
    return str(int(score)) if float(score).is_integer() else str(score)


def goal_text(score: float, template: str = GOAL_TEMPLATE) -> str:
    """The system prompt that asks for a response of this overall score."""
    if "{score}" not in template:
        raise ValueError(f"goal template must contain the field {{score}}, got {template!r}")
    return template.format(score=format_score(score))


def rescale(score: float, source: tuple[float, float], *, decimals: int | None = 1) -> float:
    """Map ``score`` linearly from ``source = (min, max)`` onto the template's 1–10, rounded to ``decimals``."""
    lo, hi = source
    if not hi > lo:
        raise ValueError(f"source scale must have max > min, got {source}")
    value = SCALE[0] + (SCALE[1] - SCALE[0]) * (score - lo) / (hi - lo)
    return value if decimals is None else round(value, decimals)


def supports_system_role(tokenizer) -> bool:
    """Whether the chat template renders a system message (a template may raise on one, or silently drop it)."""
    marker = "prefopt-system-probe"
    try:
        text = tokenizer.apply_chat_template([{"role": "system", "content": marker},
                                              {"role": "user", "content": "hi"}], tokenize=False)
    except Exception:  # jinja2 TemplateError, or a template's raise_exception("System role not supported")
        return False
    return marker in text


def condition_prompt(prompt, score: float, *, system_role: bool = True, template: str = GOAL_TEMPLATE):
    """``prompt`` with the goal of ``score`` stated: system message, or prepended to the first user turn / text."""
    goal = goal_text(score, template)
    if not is_messages(prompt):
        return f"{goal}\n\n{prompt}"
    messages = [dict(m) for m in prompt]
    if system_role:
        if messages and messages[0]["role"] == "system":  # one system message: the goal leads the existing one
            messages[0]["content"] = f"{goal}\n\n{messages[0]['content']}"
            return messages
        return [{"role": "system", "content": goal}] + messages
    for m in messages:
        if m["role"] in ("user", "system"):
            m["content"] = f"{goal}\n\n{m['content']}"
            return messages
    raise ValueError("a chat prompt without a user message cannot carry the goal")


def condition_on_top_score(prompt, *, system_role: bool | None = None, tokenizer=None, top: float = TOP_SCORE,
                           template: str = GOAL_TEMPLATE):
    """The inference-time prompt: conditioned on the best score of the scale (10), as the authors evaluate."""
    return condition_prompt(prompt, top, system_role=_system_role(system_role, tokenizer), template=template)


def _system_role(system_role: bool | None, tokenizer) -> bool:
    if system_role is not None:
        return system_role
    return True if tokenizer is None else supports_system_role(tokenizer)


def _raw_scores(record: dict, index: int) -> tuple[int, int, float, float]:
    """(chosen index, rejected index, r_w, r_l): from meta score_chosen/score_rejected when present."""
    scores = record["scores"]
    if len(scores) != 2:
        raise PreferenceDataError(f"reward_augment row {index}: field 'responses' has {len(scores)} responses; "
                                  "reward augmentation takes pairs (apply a pairing rule first)")
    w = 0 if scores[0] >= scores[1] else 1
    meta = record.get("meta") or {}
    if "score_chosen" in meta and "score_rejected" in meta:
        return w, 1 - w, float(meta["score_chosen"]), float(meta["score_rejected"])
    return w, 1 - w, float(scores[w]), float(scores[1 - w])


def _goal_score(raw: float, source, index: int, field: str, decimals: int | None) -> float:
    value = raw if source is None else rescale(raw, source, decimals=decimals)
    if not SCALE[0] - 1e-9 <= value <= SCALE[1] + 1e-9:
        hint = "give source_scale=(min, max)" if source is None else f"outside the source scale {tuple(source)}"
        raise PreferenceDataError(f"reward_augment row {index}: field '{field}' = {raw} is not on the 1-10 scale "
                                  f"({hint})")
    return value


def _row(record: dict, order: list[int], score: float, system_role: bool, tag: str, template: str) -> dict:
    segments = record.get("segments")
    return {
        "prompt": condition_prompt(record["prompt"], score, system_role=system_role, template=template),
        "responses": [record["responses"][i] for i in order],
        "scores": [1.0, 0.0],
        "weight": record.get("weight"),
        "segments": None if segments is None else [segments[i] for i in order],
        "meta": {**(record.get("meta") or {}), "goal_score": score, "augment": tag},
    }


def reward_augment(records: list[dict], *, source_scale: tuple[float, float] | None = None, split: str = "train",
                   system_role: bool | None = None, tokenizer=None, decimals: int | None = 1,
                   keep_ties: bool = False, template: str | None = None) -> tuple[list[dict], DataReport]:
    """Two goal-conditioned rows per scored pair (see the module docstring).

    Args:
        records: pairs (K = 2). Raw scores come from ``meta["score_chosen"]``/``meta["score_rejected"]`` when
            present (TRL data with UltraFeedback-style scores), else from ``scores``; the chosen response is the
            higher-scored one.
        source_scale: (min, max) of the raw scores when they are not on 1–10; mapped linearly onto 1–10.
        split: only a training split (a name starting with "train") is augmented; any other split is returned
            unchanged, since evaluation prompts must not carry a training goal.
        system_role: state the goal in a system message (True) or in the first user turn (False); None asks
            ``tokenizer`` (``supports_system_role``), and assumes a system role when there is no tokenizer.
        decimals: rescaled scores are rounded to this many decimals (None: not rounded).
        keep_ties: a pair whose goals are equal still gives its two rows, y_w ≻ y_l and y_l ≻ y_w under the same
            goal, as the authors' ``scripts/reward_augmentation.py`` does (it filters nothing on the overall
            scores, so UltraFeedback pairs with tied scores are relabelled like any other). False drops the pair
            as a tie: two rows that teach opposite preferences under one goal cancel each other's first-order
            gradient and cost two forward passes.
        template: the goal sentence with a ``{score}`` field (None: the authors' ``GOAL_TEMPLATE``).
    Returns:
        (rows, report): rows interleaved per pair as [goal r_w row, goal r_l row]; a tied pair is kept or dropped
        (``keep_ties``), and a pair whose raw scores contradict its label (r_w < r_l) is dropped as
        ``raw_scores_disagree`` (the authors' data never has one: their chosen response is the top-scored one).
    """
    if not isinstance(keep_ties, bool):
        raise ValueError(f"reward_augment: keep_ties must be true or false, got {keep_ties!r}")
    report = DataReport(rows=len(records))
    if not split.startswith("train"):
        report.kept = len(records)
        return [dict(r) for r in records], report
    system = _system_role(system_role, tokenizer)
    template = template or GOAL_TEMPLATE
    goal_text(TOP_SCORE, template)  # a template without {score} fails here, before any row is built
    out: list[dict] = []
    for index, record in enumerate(records):
        chosen, rejected, r_w, r_l = _raw_scores(record, index)
        goal_w = _goal_score(r_w, source_scale, index, "score_chosen", decimals)
        goal_l = _goal_score(r_l, source_scale, index, "score_rejected", decimals)
        if goal_w == goal_l and not keep_ties:
            report.dropped_ties += 1
        elif goal_w < goal_l:
            report.drop("raw_scores_disagree")
        else:
            out.append(_row(record, [chosen, rejected], goal_w, system, "goal_chosen", template))
            out.append(_row(record, [rejected, chosen], goal_l, system, "goal_rejected", template))
    report.kept = len(out)
    return out, report
