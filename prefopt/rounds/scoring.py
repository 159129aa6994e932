"""Scoring: one interface turns K responses per prompt into K numbers, higher is better.

A scorer is any callable ``scorer(prompts, lists) -> scores`` with ``lists[i]`` the responses to ``prompts[i]``
and ``scores[i][k]`` the score of ``lists[i][k]`` (the ``Scorer`` protocol). This module holds the protocol, the
text helpers every scorer shares, the two external scorers and the factory that builds any scorer from a config:

    RewardFnScorer("prefopt.world.tasks:reward")       a verifiable reward, (prompt: str, response: str) -> float
    RewardModelScorer("path/to/rm")                    AutoModelForSequenceClassification with one label
    make_scorer({"type": "reward_model", "path": ...})  the same, from a recipe

The judges (DNO's pairwise preference oracle, the policy as its own judge) live in ``prefopt.rounds.judges``.
``score_records`` writes a scorer's output into records' ``scores``; under ``accelerate launch`` each process
scores its share of the records (``prefopt.distributed.shard_call``).
"""

from __future__ import annotations

import importlib
import math
import numbers
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

import torch
from tqdm.auto import tqdm

from prefopt.data.tokenize import as_assistant, is_messages
from prefopt.distributed import shard_call
from prefopt.tensors import eval_mode, pad_rows


class ScoringError(ValueError):
    """A scorer failed or returned something that is not a usable score. The message names the prompt by its
    index in the call; ``score_records`` turns that into the run's global index, with the start of its text."""

    def __init__(self, message: str, *, prompt: int | None = None, response: int | None = None, text: Any = None):
        self.template, self.prompt, self.response = message, prompt, response
        where = "a prompt" if prompt is None else f"prompt {prompt}"
        where += f" ({_start(text)})" if text is not None else ""
        where += f", response {response}" if response is not None else ""
        super().__init__(message.replace(PLACE, where))

    def at(self, index: int, text: Any) -> ScoringError:
        """The same error, naming prompt ``index`` (the run's) and the start of its text."""
        return ScoringError(self.template, prompt=index, response=self.response, text=text)


PLACE = "\x00where\x00"  # in a message: "prompt i ('its text…'), response k", filled in by ScoringError


def _start(text: Any) -> str:
    text = text if isinstance(text, str) else str(text)
    return repr(text[:40] + ("…" if len(text) > 40 else ""))


@runtime_checkable
class Scorer(Protocol):
    """``scorer(prompts, lists) -> scores``: ``scores[i][k]`` rates ``lists[i][k]`` as an answer to ``prompts[i]``."""

    def __call__(self, prompts: list, lists: list[list]) -> list[list[float]]: ...


# ---------------------------------------------------------------------------------------------------------------
# text helpers shared by the scorers


def prompt_text(prompt: str | list[dict]) -> str:
    """The instruction as plain text: the string itself, or the content of the last user message."""
    if not is_messages(prompt):
        return prompt
    users = [m["content"] for m in prompt if m.get("role") == "user"]
    if not users:
        raise ScoringError("a chat prompt without a user message has no instruction to score against")
    return users[-1]


def response_text(response: str | list[dict]) -> str:
    """The answer as plain text: the string itself, or the content of the (last) assistant message."""
    if not is_messages(response):
        return response
    turns = [m["content"] for m in response if m.get("role") == "assistant"] or [m["content"] for m in response]
    return turns[-1]


def as_score(value: Any) -> float | None:
    """The documented return types of a reward as a float: a Python number, ``bool`` (1/0), a numpy scalar or a
    one-element array or tensor; None for anything else. Not checked for finiteness."""
    if hasattr(value, "item") and not isinstance(value, numbers.Real):  # 0-d tensors and arrays, numpy bool_
        try:
            value = value.item()
        except (ValueError, RuntimeError, TypeError):
            return None  # a multi-element array
    if not isinstance(value, numbers.Real):  # bool is Real: a pass/fail reward reads as 1/0
        return None
    try:
        return float(value)
    except (OverflowError, ValueError):  # an int too large for a float
        return None


def check_score(value: Any, i: int, k: int, source: str, text: Any = None) -> float:
    """A finite float from a scorer's raw output (``as_score``), or a ``ScoringError`` naming prompt ``i`` and
    response ``k`` (and the start of the prompt's ``text`` when given)."""
    number = as_score(value)
    if number is not None and math.isfinite(number):
        return number
    got = f"{str(value)[:80]!r} ({type(value).__name__})" if number is None else str(number)
    raise ScoringError(f"{source} returned {got} for {PLACE}; expected a finite number", prompt=i, response=k,
                       text=text)


class RewardTimeout(Exception):
    """Raised inside a reward call that ran past ``reward_timeout_s``."""


@contextmanager
def _deadline(seconds: float | None) -> Iterator[None]:
    """``RewardTimeout`` if the block runs longer than ``seconds``: by SIGALRM in the main thread (it interrupts a
    reward stuck in Python code or a sleep); elsewhere only once the call returns."""
    use_alarm = bool(seconds) and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if use_alarm:
        def alarm(signum, frame):
            raise RewardTimeout
        previous = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def call_reward(fn: Callable, prompt: str, response: str, i: int, k: int, source: str,
                timeout_s: float | None = None) -> float:
    """One call of a reward under the contract: plain strings in, a finite number out (``as_score``), within
    ``timeout_s``. Any failure is a ``ScoringError`` naming prompt ``i`` (with the start of its text) and
    response ``k``; the reward's own exception is kept as its cause."""
    start = time.perf_counter()
    try:
        with _deadline(timeout_s):
            value = fn(prompt, response)
    except RewardTimeout:
        raise ScoringError(f"{source} took longer than reward_timeout_s={timeout_s}s on {PLACE}; make it faster or "
                           "raise reward_timeout_s", prompt=i, response=k, text=prompt) from None
    except Exception as err:
        raise ScoringError(f"{source} raised {type(err).__name__}: {str(err)[:200]} on {PLACE}", prompt=i,
                           response=k, text=prompt) from err
    if timeout_s and time.perf_counter() - start > timeout_s:  # a call the alarm could not interrupt
        raise ScoringError(f"{source} took {time.perf_counter() - start:.1f}s (> reward_timeout_s={timeout_s}) on "
                           f"{PLACE}", prompt=i, response=k, text=prompt)
    return check_score(value, i, k, source, prompt)


def check_lists(prompts: list, lists: list[list], source: str) -> None:
    if len(prompts) != len(lists):
        raise ScoringError(f"{source}: {len(prompts)} prompts but {len(lists)} response lists")


SHARD_UNIT = 16  # lists per scorer call when lists are split across processes (at least; see shard_unit)


def shard_unit(scorer) -> int:
    """Lists per scorer call under ``accelerate launch``: the scorer's batch size, and at least ``SHARD_UNIT``.

    The lists are cut into consecutive chunks of this many, whatever the number of processes, and each chunk is
    scored in one call (``prefopt.distributed.shard_call(..., unit=...)``): a model scorer's numbers then do not
    depend on how the lists were split, to the last bit, and each call still fills its batches.
    """
    size = getattr(scorer, "batch_size", None) or getattr(getattr(scorer, "judge", None), "batch_size", None)
    return max(SHARD_UNIT, int(size or 0))


def score_records(scorer: Scorer, records: list[dict]) -> list[dict]:
    """New records whose ``scores`` are ``scorer``'s, with the scorer's class name in ``meta['scorer']``.

    Every process must call this (each scores a share); a scorer must score each list on its own (all do).
    """
    prompts = [r["prompt"] for r in records]

    def scored(indices: list[int], chunk: list, lists: list[list]) -> list[list[float]]:
        try:
            return scorer(chunk, lists)
        except ScoringError as err:  # the scorer counts prompts within its chunk: name the run's prompt
            if err.prompt is None or not 0 <= err.prompt < len(indices):
                raise
            i = indices[err.prompt]
            raise err.at(i, prompt_text_or_repr(prompts[i])) from err.__cause__

    scores = shard_call(scored, list(range(len(records))), prompts, [r["responses"] for r in records],
                        unit=shard_unit(scorer))
    out = []
    for i, (record, row) in enumerate(zip(records, scores, strict=True)):
        if len(row) != len(record["responses"]):
            raise ScoringError(f"scorer returned {len(row)} scores for prompt {i} with "
                               f"{len(record['responses'])} responses")
        meta = {**record.get("meta", {}), "scorer": type(scorer).__name__}
        out.append({**record, "scores": [float(s) for s in row], "meta": meta})
    return out


def prompt_text_or_repr(prompt: Any) -> str:
    try:
        return prompt_text(prompt)
    except ScoringError:
        return str(prompt)


# ---------------------------------------------------------------------------------------------------------------
# reward function


def resolve_import_path(path: str) -> Callable:
    """``"pkg.module:function"`` (attributes may be dotted: ``"pkg.mod:Class.method"``) → the callable."""
    if not isinstance(path, str) or path.count(":") != 1 or not all(path.split(":")):
        raise ValueError(f"reward function must be given as 'package.module:function', got {path!r}")
    module_name, attr_path = path.split(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise ImportError(f"reward function {path!r}: cannot import module {module_name!r} ({err})") from err
    except BaseException as err:  # the module itself fails: SyntaxError, an exception or sys.exit at import
        if isinstance(err, KeyboardInterrupt):
            raise
        where = f" ({err.filename}, line {err.lineno})" if isinstance(err, SyntaxError) else ""
        raise ImportError(f"reward function {path!r}: importing module {module_name!r} failed with "
                          f"{type(err).__name__}: {getattr(err, 'msg', None) or err}{where}") from err
    for attr in attr_path.split("."):
        if not hasattr(obj, attr):
            raise ImportError(f"reward function {path!r}: module {module_name!r} has no attribute {attr_path!r}")
        obj = getattr(obj, attr)
    if not callable(obj):
        raise TypeError(f"reward function {path!r} resolved to a {type(obj).__name__}, which is not callable")
    return obj


class RewardFnScorer:
    """A verifiable reward ``fn(prompt: str, response: str) -> float`` applied to every response.

    Chat messages are reduced to text first (``prompt_text``/``response_text``), so one reward function serves
    plain and conversational data. A non-numeric or non-finite return raises ``ScoringError`` naming the prompt
    and response index: a silent NaN would poison every pairing and loss downstream.
    """

    def __init__(self, fn: str | Callable[[str, str], float], timeout_s: float | None = None):
        self.name = fn if isinstance(fn, str) else getattr(fn, "__qualname__", repr(fn))
        self.fn = resolve_import_path(fn) if isinstance(fn, str) else fn
        self.timeout_s = timeout_s

    def __call__(self, prompts: list, lists: list[list]) -> list[list[float]]:
        check_lists(prompts, lists, f"reward function {self.name}")
        out = []
        rows = tqdm(zip(prompts, lists, strict=True), total=len(prompts), desc="score", unit="prompt")
        for i, (prompt, responses) in enumerate(rows):
            text = prompt_text(prompt)
            out.append([call_reward(self.fn, text, response_text(r), i, k, f"reward function {self.name}",
                                    self.timeout_s) for k, r in enumerate(responses)])
        return out


# ---------------------------------------------------------------------------------------------------------------
# reward model


class RewardModelScorer:
    """A sequence-classification reward model (one label) scoring prompt + response, batched, in eval/no-grad.

    The text is rendered with the tokenizer's chat template when it has one (a plain prompt becomes one user
    turn), else prompt and response are concatenated as TRL's reward trainer does. Batches are right-padded:
    the classification head reads the last non-pad token, and right padding leaves the positions of real tokens
    unchanged, so a batch scores exactly as one-at-a-time.
    """

    def __init__(self, model_or_path, tokenizer=None, batch_size: int = 16, max_length: int | None = None):
        if isinstance(model_or_path, str):
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            tokenizer = tokenizer or AutoTokenizer.from_pretrained(model_or_path)
            model_or_path = AutoModelForSequenceClassification.from_pretrained(model_or_path, num_labels=1)
        if tokenizer is None:
            raise ValueError("RewardModelScorer needs a tokenizer when given a model object")
        if model_or_path.config.num_labels != 1:
            raise ValueError(f"a reward model must have num_labels=1, got {model_or_path.config.num_labels}")
        self.model, self.tokenizer = model_or_path, tokenizer
        self.batch_size, self.max_length = batch_size, max_length
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad is None:
            raise ValueError("the reward model's tokenizer has neither a pad nor an EOS token to pad batches with")
        self.pad_token_id = pad
        if self.model.config.pad_token_id is None:  # the head finds the last token by looking for padding
            self.model.config.pad_token_id = pad

    def text(self, prompt, response) -> tuple[str, bool]:
        """(text to tokenize, whether the tokenizer should add its special tokens)."""
        if getattr(self.tokenizer, "chat_template", None):
            turns = prompt if is_messages(prompt) else [{"role": "user", "content": prompt}]
            return self.tokenizer.apply_chat_template(turns + as_assistant(response), tokenize=False), False
        if is_messages(prompt) or is_messages(response):
            raise ValueError("the data has chat messages but the reward model's tokenizer has no chat template")
        return prompt + response, True

    @torch.no_grad()
    def _forward(self, texts: list[str], special: bool) -> list[float]:
        enc = self.tokenizer(texts, add_special_tokens=special, truncation=self.max_length is not None,
                             max_length=self.max_length)
        ids, mask = pad_rows(enc["input_ids"], self.pad_token_id)  # right padding whatever tokenizer.padding_side
        device = next(self.model.parameters()).device
        logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits  # (n, 1)
        return logits[:, 0].float().cpu().tolist()

    def __call__(self, prompts: list, lists: list[list]) -> list[list[float]]:
        check_lists(prompts, lists, "reward model")
        flat = [(i, k, *self.text(p, r))
                for i, (p, rs) in enumerate(zip(prompts, lists, strict=True)) for k, r in enumerate(rs)]
        values: list[float] = []
        with eval_mode(self.model):
            for start in tqdm(range(0, len(flat), self.batch_size), desc="score (reward model)", unit="batch"):
                chunk = flat[start: start + self.batch_size]
                values.extend(self._forward([c[2] for c in chunk], chunk[0][3]))
        out: list[list[float]] = [[] for _ in prompts]
        for (i, k, _, _), v in zip(flat, values, strict=True):
            out[i].append(check_score(v, i, k, "reward model"))
        return out
