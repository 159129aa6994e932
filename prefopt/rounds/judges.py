"""Judges: pairwise preference oracles turned into per-response scores, and the policy as its own judge.

    PairwiseJudgeScorer(judge_fn)      DNO's preference oracle: judge_fn(prompt, a, b) = P(a ≻ b) → win rates
    LLMJudge(model, tokenizer)         a judge_fn read off a causal LM's next-token distribution ("A" vs "B")
    ImplicitRewardScorer(policy, ref)  CREAM: log πθ(y|x) − log πref(y|x); length-normalised log πθ at round 0

Every judge sees plain text (``prompt_text``/``response_text`` of ``prefopt.rounds.scoring``). All are ``Scorer``s.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from prefopt.rounds.scoring import ScoringError, check_lists, prompt_text, response_text
from prefopt.trainer import ListCollator, feature_last_logits, feature_logps, list_features

JudgeFn = Callable[[str, str, str], float]

# ---------------------------------------------------------------------------------------------------------------
# pairwise preference → win rates


def _judge_all(judge: JudgeFn, triples: list[tuple[str, str, str]]) -> list[float]:
    """One batched call when the judge offers ``judge.batch(triples)`` (an LLM judge), else one call per triple."""
    batch = getattr(judge, "batch", None)
    return list(batch(triples)) if callable(batch) else [judge(*t) for t in tqdm(triples, desc="judge", unit="pair")]


def _check_probability(value, i: int, u: str, v: str) -> float:
    try:
        p = float(value)
    except (TypeError, ValueError):
        raise ScoringError(f"judge returned {value!r} for prompt {i}, pair ({u}, {v}); expected P(a ≻ b) in "
                           "[0, 1]") from None
    if not (math.isfinite(p) and 0.0 <= p <= 1.0):
        raise ScoringError(f"judge returned {p} for prompt {i}, pair ({u}, {v}); expected P(a ≻ b) in [0, 1]")
    return p


def debiased_matrix(raw: list[list[float]]) -> list[list[float]]:
    """P[u][v] = (p(u, v) + 1 − p(v, u)) / 2 from the raw judge matrix p (both presentation orders).

    A judge that prefers whichever response comes first gives p(u, v) = p(v, u) = p_first; averaging the two orders
    cancels that bias, and P[u][v] + P[v][u] = 1 by construction. The diagonal is 0.5.
    """
    n = len(raw)
    return [[0.5 if u == v else (raw[u][v] + 1.0 - raw[v][u]) / 2.0 for v in range(n)] for u in range(n)]


def win_rates(matrix: list[list[float]], k: int) -> list[float]:
    """Mean of P(u ≻ v) over every other entry v of the matrix, for the first ``k`` entries (the candidates)."""
    n = len(matrix)
    return [sum(matrix[u][v] for v in range(n) if v != u) / (n - 1) for u in range(k)]


class PairwiseJudgeScorer:
    """Each response's score is its mean win rate against the other responses of its list (DNO's oracle).

    Paper: Rosset et al. (2024), "Direct Nash Optimization", arXiv 2404.03715, Algorithm 2 (DNO-Prct): a
    preference function P(y ≻ y' | x) over all pairs of the K samples (plus the gold response) gives each
    sample's expected win rate, which then orders the list.

    Every unordered pair is judged in both presentation orders and averaged (``debiased_matrix``), so the K·(K−1)
    calls of a list remove the judge's position bias. With ``gold`` (one reference response per prompt) the gold
    response joins the comparison as one more opponent; its own win rate is not returned (append it to the list
    with ``prefopt.rounds.pairing.with_gold`` to score it as a candidate).

    With ``baseline=b`` every response is compared with one fixed response, entry b of the list (an index into
    the candidates, or len(list) for the gold response), in both orders: 2·(n−1) judge calls per list of n instead
    of n·(n−1). A candidate's score is then P(candidate ≻ baseline), the baseline's own score ½; the matrix entries
    of pairs not involving the baseline are nan (not judged). This is the one-baseline comparison of OSP's ranked
    pairing (``prefopt.rounds.pairing.baseline_pairs``; Zhai et al., 2024, arXiv 2405.14103, reconstructed: the
    paper's method section was not read, see docs/losses/osp.md).
    """

    def __init__(self, judge_fn: JudgeFn, *, baseline: int | None = None):
        if baseline is not None and (isinstance(baseline, bool) or not isinstance(baseline, int) or baseline < 0):
            raise ValueError(f"pairwise judge: baseline must be a response index >= 0 (or None), got {baseline!r}")
        self.judge, self.baseline = judge_fn, baseline

    def _pairs(self, n: int, i: int) -> list[tuple[int, int]]:
        """The ordered pairs (u, v) judged in list i of n responses: all of them, or each one against the baseline."""
        if self.baseline is None:
            return [(u, v) for u in range(n) for v in range(n) if u != v]
        if self.baseline >= n:
            raise ScoringError(f"pairwise judge: prompt {i} has {n} responses, so there is no baseline {self.baseline}")
        return [pair for u in range(n) if u != self.baseline for pair in ((u, self.baseline), (self.baseline, u))]

    def matrices(self, prompts: list, lists: list[list], gold: Sequence | None = None) -> list[list[list[float]]]:
        """The debiased preference matrix of each list, candidates first and the gold response (if any) last."""
        check_lists(prompts, lists, "pairwise judge")
        if gold is not None and len(gold) != len(prompts):
            raise ScoringError(f"pairwise judge: {len(gold)} gold responses for {len(prompts)} prompts")
        items, triples, owners = [], [], []
        for i, (prompt, responses) in enumerate(zip(prompts, lists, strict=True)):
            texts = [response_text(r) for r in responses] + ([] if gold is None else [response_text(gold[i])])
            if len(texts) < 2:
                raise ScoringError(f"pairwise judge: prompt {i} has {len(texts)} response(s); a win rate needs "
                                   "at least two (or a gold response)")
            items.append(texts)
            x = prompt_text(prompt)
            for u, v in self._pairs(len(texts), i):
                triples.append((x, texts[u], texts[v]))
                owners.append((i, u, v))
        # one n×n matrix per list; nan marks a pair left unjudged (baseline mode)
        unjudged = 0.5 if self.baseline is None else math.nan
        raw = [[[0.5 if u == v else unjudged for v in range(len(texts))] for u in range(len(texts))] for texts in items]
        for (i, u, v), p in zip(owners, _judge_all(self.judge, triples), strict=True):
            raw[i][u][v] = _check_probability(p, i, self._name(u, items[i], gold), self._name(v, items[i], gold))
        return [debiased_matrix(m) for m in raw]

    @staticmethod
    def _name(w: int, texts: list, gold) -> str:
        return "gold" if gold is not None and w == len(texts) - 1 else str(w)

    def __call__(self, prompts: list, lists: list[list], gold: Sequence | None = None) -> list[list[float]]:
        matrices = self.matrices(prompts, lists, gold)
        if self.baseline is None:
            return [win_rates(m, len(rs)) for m, rs in zip(matrices, lists, strict=True)]
        b = self.baseline
        return [[m[u][b] if u != b else 0.5 for u in range(len(rs))] for m, rs in zip(matrices, lists, strict=True)]


# ---------------------------------------------------------------------------------------------------------------
# an LLM as the judge

DEFAULT_TEMPLATE = (
    "Which response follows the instruction better?\n\n"
    "Instruction:\n{prompt}\n\n"
    "Response {label_a}:\n{a}\n\n"
    "Response {label_b}:\n{b}\n\n"
    "Answer with {label_a} or {label_b} only."
)


def _runs(prompts: list[str], size: int) -> list[list[int]]:
    """Indices of consecutive equal prompts, in chunks of at most ``size``."""
    runs: list[list[int]] = []
    for i, prompt in enumerate(prompts):
        if runs and prompts[runs[-1][0]] == prompt and len(runs[-1]) < size:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


class LLMJudge:
    """A ``judge_fn`` from a causal LM: P(a ≻ b) is the probability of the verdict "A" against "B".

    The template (``{prompt}``, ``{a}``, ``{b}``, ``{label_a}``, ``{label_b}``) is sent as one user turn through
    the tokenizer's chat template when it has one, the verdict being the first assistant token; without a chat
    template the text gets ``"\\nAnswer:"`` and the verdict is ``" A"``/``" B"``. The verdict tokens are where the
    tokenizations of context + label A and context + label B first differ, so merges across the boundary are
    handled; labels must differ in their first character, and labels that map to the same (or the unknown) token
    are refused. The two verdict logits are renormalised: P(a ≻ b) = softmax(logit_A, logit_B)[0]; the rest of the
    vocabulary is ignored.

    The pairs of one list share their context up to the first response: batched with the trainer's packed rows,
    that shared start is encoded once, and batched and one-at-a-time judgements agree.
    """

    def __init__(self, model, tokenizer, *, template: str = DEFAULT_TEMPLATE, labels: tuple[str, str] = ("A", "B"),
                 batch_size: int = 8):
        if len(labels) != 2 or not all(labels) or labels[0][0] == labels[1][0]:
            raise ValueError(f"labels must be two verdict strings with different first characters, got {labels!r}")
        self.model, self.tokenizer = model, tokenizer
        self.template, self.labels, self.batch_size = template, tuple(labels), batch_size
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_token_id = 0 if pad is None else pad
        self.unk = {tokenizer.unk_token_id} - {None}  # a verdict read off the unknown token means nothing

    def _context(self, prompt: str, a: str, b: str) -> tuple[str, bool, str]:
        """(context text, add special tokens?, separator before the verdict)."""
        la, lb = self.labels
        text = self.template.format(prompt=prompt, a=a, b=b, label_a=la, label_b=lb)
        if getattr(self.tokenizer, "chat_template", None):
            rendered = self.tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                          add_generation_prompt=True)
            return rendered, False, ""
        return text + "\nAnswer:", True, " "

    def encode(self, prompt: str, a: str, b: str) -> tuple[list[int], int, int]:
        """(context ids, verdict token id of label A, of label B)."""
        context, special, sep = self._context(prompt, a, b)
        ids = [self.tokenizer(context + sep + label, add_special_tokens=special)["input_ids"] for label in self.labels]
        # The texts agree up to the labels' first characters (which differ), so the first token where the two
        # tokenizations differ is the verdict token, and everything before it is the context the model reads.
        cut = _common_prefix(ids[0], ids[1])
        if cut >= min(len(ids[0]), len(ids[1])) or ids[0][cut] in self.unk or ids[1][cut] in self.unk:
            raise ValueError(f"verdict labels {self.labels!r} do not start with two different known tokens after "
                             "the judge prompt in this tokenizer; choose other labels (e.g. ('1', '2'))")
        return ids[0][:cut], ids[0][cut], ids[1][cut]

    def batch(self, triples: list[tuple[str, str, str]]) -> list[float]:
        """P(a ≻ b) for each (prompt, a, b).

        Consecutive triples with the same prompt (the pairs of one list) share the start of their judge contexts
        (template and prompt): up to ``batch_size`` of them go into one packed row, that shared start encoded
        once and each pair's rest after it (``prefopt.trainer.feature_last_logits``).
        """
        enc = [self.encode(*t) for t in triples]
        runs = _runs([t[0] for t in triples], self.batch_size)
        features = []
        for run in runs:
            contexts = [enc[i][0] for i in run]
            shared = min(_common_prefix(contexts[0], c) for c in contexts)
            # each response: the rest of its context, then a placeholder whose prediction is the verdict
            features.append({"prompt_ids": contexts[0][:shared], "response_ids": [c[shared:] + [enc[i][1]] for c, i
                                                                                   in zip(contexts, run, strict=True)],
                             "scores": [0.0] * len(run)})
        lists_per_forward = max(1, self.batch_size // max(len(r) for r in runs)) if runs else 1
        out: list[float] = []
        collator = ListCollator(pad_token_id=self.pad_token_id)
        scored = feature_last_logits(self.model, features, collator, batch_size=lists_per_forward, desc="judge")
        for run, logits in zip(runs, scored, strict=True):
            pick = torch.tensor([[enc[i][1], enc[i][2]] for i in run])  # (n, 2)
            out.extend(logits.gather(1, pick).softmax(-1)[:, 0].tolist())
        return out

    def __call__(self, prompt: str, a: str, b: str) -> float:
        return self.batch([(prompt, a, b)])[0]


# ---------------------------------------------------------------------------------------------------------------
# implicit reward


class ImplicitRewardScorer:
    """CREAM's self-reward: the implicit DPO reward log πθ(y|x) − log πref(y|x) of each response.

    Paper: Wang et al. (2024), "CREAM: Consistency Regularized Self-Rewarding Language Models", arXiv 2410.12735:
    the policy of round t rewards its samples with the DPO reward against the reference of that round (β is left
    out: it does not change the ranking). With ``ref=None`` (round 0, no reference yet) the score is the
    length-normalised log-likelihood, the mean per-token log πθ(y|x), as in the authors' code
    (``rewarding.py``, ``normalized_by_length``).

    Log-probs come from ``prefopt.trainer.logps.sequence_logps``, i.e. the trainer's own tokenization, so the
    reward scored here is the one the trainer optimises.
    """

    def __init__(self, policy, ref, tokenizer, *, batch_size: int = 16):
        self.policy, self.ref, self.tokenizer, self.batch_size = policy, ref, tokenizer, batch_size

    def __call__(self, prompts: list, lists: list[list]) -> list[list[float]]:
        check_lists(prompts, lists, "implicit reward")
        features = list_features(self.tokenizer, prompts, lists)  # tokenized once for both models
        tok = self.tokenizer
        collator = ListCollator(pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
        if self.ref is None:
            return feature_logps(self.policy, features, collator, batch_size=self.batch_size, average=True,
                                 desc="score (policy log-probs)")
        policy = feature_logps(self.policy, features, collator, batch_size=self.batch_size,
                               desc="score (policy log-probs)")
        ref = feature_logps(self.ref, features, collator, batch_size=self.batch_size,
                            desc="score (reference log-probs)")
        return [[p - r for p, r in zip(ps, rs, strict=True)] for ps, rs in zip(policy, ref, strict=True)]
