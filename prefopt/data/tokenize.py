"""Tokenize a prompt and its K responses once, the way TRL's DPOTrainer does for a pair.

Conversational prompts (lists of messages) go through the chat template; plain strings are tokenized as they are
and get the EOS token appended to each response (TRL's convention, so prefopt's DPO matches TRL number for number).
The response starts where the tokenized prompt and the tokenized prompt+response stop agreeing, which handles
tokenizers that merge tokens across the boundary and templates that render a lone prompt differently.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from trl.data_utils import common_prefix_length

Messages = list[dict[str, Any]]


@dataclass
class TokenizedList:
    """Token ids of one preference list: a shared prompt and K responses."""

    prompt_ids: list[int]
    response_ids: list[list[int]]
    prompt_trimmed: int = 0  # prompt tokens dropped because a response rendering diverged from the lone prompt


def is_messages(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(m, dict) and "role" in m for m in value)


def as_assistant(response: str | Messages) -> Messages:
    return response if is_messages(response) else [{"role": "assistant", "content": response}]


CHAT_TEMPLATE_MODES = ("auto", "always", "never")
PLAIN_TEXT_WARNING = ("the data is plain text and the tokenizer has a chat template: following TRL, plain text is "
                      "tokenized as it is, without the template. Set data.chat_template=always to send prompts as "
                      "user turns (responses as assistant turns), or data.chat_template=never to silence this.")


def wants_chat(tokenizer, mode: str, *, given: bool) -> bool:
    """Whether plain-text prompts become user turns under ``data.chat_template=mode`` (docs/data.md):

    * ``always``: yes (the tokenizer must have a chat template);
    * ``never``: no;
    * ``auto``: text the user gave (``given``: data.train, data.eval, data.prompts, data.eval_prompts) stays as it
      is, TRL's convention for plain-text data, with one warning when the tokenizer has a chat template; prompts
      prefopt makes itself (the tiny world's) become user turns when the tokenizer has a template.

    Chat messages are not affected: they always go through the template.
    """
    if mode not in CHAT_TEMPLATE_MODES:
        raise ValueError(f"data.chat_template must be one of {', '.join(CHAT_TEMPLATE_MODES)}, got {mode!r}")
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if mode == "always" and not has_template:
        raise ValueError("data.chat_template=always but the tokenizer has no chat template")
    if mode == "auto" and given and has_template:
        # one location (as_chat's call), so the default filter shows it once per process whatever the data source
        warnings.warn(PLAIN_TEXT_WARNING, UserWarning, stacklevel=2)
    return has_template and (mode == "always" or (mode == "auto" and not given))


def as_chat(prompts: list, tokenizer, mode: str, *, given: bool) -> list:
    """Plain prompts as user turns, or as they are, per ``wants_chat``; chat-message prompts are kept."""
    if all(is_messages(p) for p in prompts) or not wants_chat(tokenizer, mode, given=given):
        return list(prompts)
    return [p if is_messages(p) else [{"role": "user", "content": p}] for p in prompts]


def chat_records(records: list[dict[str, Any]], tokenizer, mode: str) -> list[dict[str, Any]]:
    """Given preference lists with their prompts as user turns or as they are (``as_chat``, ``given=True``); a
    string response beside a chat prompt is tokenized as an assistant turn."""
    prompts = as_chat([r["prompt"] for r in records], tokenizer, mode, given=True)
    return [{**r, "prompt": p} for r, p in zip(records, prompts, strict=True)]


def _ids(tokenizer, text_or_messages, **chat_kwargs) -> list[int]:
    if is_messages(text_or_messages):
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("the data has chat messages but the tokenizer has no chat template; set one "
                             "(tokenizer.chat_template) or give the prompt and responses as plain strings")
        out = tokenizer.apply_chat_template(text_or_messages, tokenize=True, return_dict=True, **chat_kwargs)
        return list(out["input_ids"])
    return list(tokenizer(text=text_or_messages)["input_ids"])


def tokenize_list(tokenizer, prompt: str | Messages, responses: list[str | Messages]) -> TokenizedList:
    """Token ids of ``prompt`` and each response, with the response boundary found by common prefix.

    Args:
        tokenizer: a transformers tokenizer.
        prompt: plain text, or chat messages ending before the assistant turn.
        responses: K plain strings, or K assistant turns (a string beside a chat prompt is wrapped as one).
    """
    if is_messages(prompt):
        prompt_ids = _ids(tokenizer, prompt, add_generation_prompt=True)
        fulls = [_ids(tokenizer, prompt + as_assistant(r)) for r in responses]
    else:
        eos = tokenizer.eos_token or ""
        prompt_ids = _ids(tokenizer, prompt)
        fulls = [_ids(tokenizer, prompt + (r if r.endswith(eos) else r + eos)) for r in responses]
    prompt_len = min(common_prefix_length(prompt_ids, full) for full in fulls)
    return TokenizedList(prompt_ids[:prompt_len], [full[prompt_len:] for full in fulls], len(prompt_ids) - prompt_len)
