"""tokenize_list: the response boundary matches TRL's (common prefix) for plain and chat data."""

from __future__ import annotations

import pytest

from prefopt.data.tokenize import tokenize_list


def test_plain_text_appends_eos_to_each_response(tokenizer):
    tok = tokenize_list(tokenizer, "ab:", ["c", "dd"])
    assert tok.prompt_ids == tokenizer("ab:")["input_ids"]
    assert tok.response_ids == [tokenizer("c")["input_ids"] + [tokenizer.eos_token_id],
                                tokenizer("dd")["input_ids"] + [tokenizer.eos_token_id]]
    assert tok.prompt_trimmed == 0


def test_chat_prompt_uses_the_template_and_strings_become_assistant_turns(chat_tokenizer):
    prompt = [{"role": "user", "content": "ab"}]
    tok = tokenize_list(chat_tokenizer, prompt, ["c", [{"role": "assistant", "content": "d"}]])
    rendered = chat_tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                                  return_dict=True)["input_ids"]
    assert tok.prompt_ids == list(rendered)
    assert tok.response_ids[0] == chat_tokenizer("c")["input_ids"] + [chat_tokenizer.eos_token_id]


def test_a_prompt_rendered_differently_alone_is_cut_at_the_common_prefix(chat_tokenizer):
    # a template whose generation prompt differs from the start of the assistant turn
    chat_tokenizer.chat_template = chat_tokenizer.chat_template.replace(
        "{% if add_generation_prompt %}<assistant>", "{% if add_generation_prompt %}<assistant>:")
    tok = tokenize_list(chat_tokenizer, [{"role": "user", "content": "ab"}], ["c"])
    assert tok.prompt_trimmed == 1  # the trailing ':' is not part of the training context
    assert tok.response_ids[0] == [chat_tokenizer.convert_tokens_to_ids("c"), chat_tokenizer.eos_token_id]


def test_messages_without_a_chat_template_are_a_clear_error(tokenizer):
    with pytest.raises(ValueError, match="no chat template"):
        tokenize_list(tokenizer, [{"role": "user", "content": "ab"}], ["c"])
