"""The tiny world's tokenizer: character-level, built in-process with the ``tokenizers`` library.

One token per character (digits, lowercase letters, space and a few punctuation marks) plus six special tokens.
Character-level tokenization makes the tokens of a prompt a prefix of the tokens of prompt + response, so the
response boundary is never blurred by a merge. The chat template is a small ``<|user|>`` / ``<|assistant|>`` one
with an EOS after each assistant turn, so the tiny world exercises the same chat code path as a real chat model:

    <|bos|><|user|>sort 3142<|assistant|>1234<|eos|>

    from prefopt.world.tokenizer import build_tokenizer
    tok = build_tokenizer()                      # left padding by default (generation); set "right" to train
    tok.apply_chat_template([{"role": "user", "content": "sort 3142"}], add_generation_prompt=True)
"""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS, UNK = "<|pad|>", "<|bos|>", "<|eos|>", "<|unk|>"
USER, ASSISTANT = "<|user|>", "<|assistant|>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK, USER, ASSISTANT]  # ids 0..5, in this order
CHARACTERS = "0123456789abcdefghijklmnopqrstuvwxyz +-=:,.?"

# The world has no system role; a system message is rendered as a user turn rather than raising, so generic chat
# code that always sends a system prompt still runs.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}{{ '<|assistant|>' + message['content'] + eos_token }}"
    "{% elif message['role'] == 'system' %}{{ '<|user|>' + message['content'] }}"
    "{% else %}{{ '<|user|>' + message['content'] }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def vocabulary() -> dict[str, int]:
    """Token → id: the special tokens first (pad = 0), then one id per character."""
    return {token: i for i, token in enumerate(SPECIAL_TOKENS + list(CHARACTERS))}


def build_tokenizer(padding_side: str = "left") -> PreTrainedTokenizerFast:
    """A character-level ``PreTrainedTokenizerFast`` with pad/bos/eos/unk, chat template and ``padding_side``.

    No BOS is added by plain ``tokenizer(text)``: the chat template writes it, as Qwen-style templates do, so
    rendering a conversation and then tokenizing it never doubles the BOS. Characters outside ``CHARACTERS``
    (uppercase, newlines) map to ``<|unk|>``.
    """
    core = Tokenizer(models.WordLevel(vocabulary(), unk_token=UNK))
    # Split every character into its own pre-token; [\s\S] because Oniguruma's "." skips newlines.
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()  # join characters back without the spaces WordLevel would put between them
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        additional_special_tokens=[USER, ASSISTANT],
        chat_template=CHAT_TEMPLATE,
        padding_side=padding_side,
        model_max_length=64,
    )
    return tokenizer
