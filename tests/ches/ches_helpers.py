"""Tiny models and in-process tokenizers for the CHES tests (no hub access, no dependency on prefopt.world)."""

from __future__ import annotations

import re
import string

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|end|>"]
CHARS = list(string.ascii_letters + string.digits + string.punctuation + " \n")

# A ChatML-like template. The lone prompt (generation prompt) ends with "<|assistant|>\n", but a rendered assistant
# turn has no newline after "<|assistant|>": the two renderings diverge inside the prompt, which tokenize_list must
# resolve by common prefix (the "\n" then belongs to neither, and the response starts right after <|assistant|>).
DIVERGING_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'user' %}<|user|>{{ m['content'] }}<|end|>"
    "{% else %}<|assistant|>{{ m['content'] }}<|end|>{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def char_tokenizer(chat_template: str | None = None, merges: dict[str, int] | None = None) -> PreTrainedTokenizerFast:
    """A character-level tokenizer with special tokens; ``merges`` adds multi-character words (greedy, longest first),
    so a prompt ending in "a" followed by a response starting with "b" can merge into "ab" across the boundary."""
    vocab = {tok: i for i, tok in enumerate(SPECIALS + CHARS)}
    for word in merges or {}:
        vocab.setdefault(word, len(vocab))
    words = sorted(merges or {}, key=len, reverse=True)
    alternatives = [re.escape(w) for w in words] + [r"[\s\S]"]
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("|".join(alternatives)), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(SPECIALS)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>")
    if chat_template:
        fast.chat_template = chat_template
    return fast


def tiny_llama(vocab_size: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         intermediate_size=64, vocab_size=vocab_size, max_position_embeddings=256,
                         pad_token_id=0, bos_token_id=2, eos_token_id=3)
    return LlamaForCausalLM(config).to(dtype).eval()
