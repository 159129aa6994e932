"""Tokenize a prompt and its K responses once, the way TRL's DPOTrainer does for a pair.

Conversational prompts (lists of messages) go through the chat template; plain strings are tokenized as they are
and get the EOS token appended to each response (TRL's convention, so prefopt's DPO matches TRL number for number).
The response starts where the tokenized prompt and the tokenized prompt+response stop agreeing, which handles
tokenizers that merge tokens across the boundary and templates that render a lone prompt differently.
"""

from __future__ import annotations

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
