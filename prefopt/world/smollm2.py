"""The real-model world: SmolLM2-135M-Instruct asked short questions, rewarded for one complete, short sentence
that names the subject.

    from prefopt.world.smollm2 import prompts, reward, model_path
    prompts(2, seed=0)   # ['Tell me one fact about a cathedral, in one sentence.', 'Tell me one fact ...']
    reward("In one sentence: what is a glacier?", "A glacier is a slow river of ice.")  # 1.5 - 0.02·8 = 1.34

The model (``model_path``) is fetched into prefopt's cache on first use (prefopt/world/fetch.py). A 135M instruct
model answers these questions sensibly but at length: under the world's 24-token budget most of its answers are
cut off mid-sentence, and a sentence that does end often leaves the subject unnamed. Both are things preference
optimisation on its own samples can fix in a few dozen LoRA steps (docs/worlds.md has the tuning record).

The reward, for a response ``y`` to a prompt about subject ``s`` (``words(y)`` = whitespace-separated words)::

    reward = 1.0 · [y ends a sentence: its last character is . ! or ?]
           + 0.5 · [y names s: the subject's word appears in y, case-insensitive, plural or singular]
           − 0.02 · words(y)

so a complete 8-word answer that names its subject scores 1.34, the same answer cut off scores 0.34, and an empty
response scores 0. It is importable as ``prefopt.world.smollm2:reward`` (the CLI's ``module:function`` form).

Train and eval prompts ask about disjoint subjects (one subject in five, fixed by a hash of its name, is kept for
eval), so no evaluation question is about a subject the policy was trained on.
"""

from __future__ import annotations

import random
import re
import zlib

NAME = "smollm2-135m"
SPLITS = ("train", "eval")
EVAL_FRACTION = 5  # one subject in EVAL_FRACTION belongs to the eval split

SUBJECTS = """
apple anchor bakery balloon bamboo battery beehive bicycle blanket bridge bucket butterfly cactus camera candle
canoe carrot castle cathedral cello chimney clock cloud compass computer coral cotton crane crystal desert diamond
dolphin drum eagle earthquake elephant engine feather fern forest fountain fridge frog garden giraffe glacier
guitar hammer harbor hedgehog helmet honey horse hurricane iceberg island jellyfish kangaroo kettle kite ladder
lantern lemon library lighthouse lizard magnet map marathon meadow microscope mirror moon mountain museum
mushroom needle octopus orchestra owl oyster parachute parrot passport penguin piano pillow planet pumpkin pyramid
rainbow river robot rocket saddle salt sandwich satellite scarf scissors shark spider submarine sunflower
telescope tent thermometer thunderstorm tiger tomato tornado tractor train tulip umbrella violin volcano
waterfall whale windmill wolf zebra
""".split()

# Each question asks for one sentence: the format the reward checks, and one a user of a small model would ask for.
TEMPLATES = (
    "In one sentence: what is {a}?",
    "In one sentence: what is {a} used for?",
    "Describe {a} in one sentence.",
    "In one sentence: where would you find {a}?",
    "In one sentence: why is {a} useful?",
    "Tell me one fact about {a}, in one sentence.",
)


def with_article(subject: str) -> str:
    return f"{'an' if subject[0] in 'aeiou' else 'a'} {subject}"


def split_of(subject: str) -> str:
    """``"eval"`` for one subject in EVAL_FRACTION (by a fixed hash of its name), else ``"train"``."""
    return "eval" if zlib.crc32(subject.encode()) % EVAL_FRACTION == 0 else "train"


def prompts(n: int, *, seed: int, split: str = "train") -> list[str]:
    """``n`` questions (plain user turns) about the split's subjects; the same ``seed`` gives the same list. The
    split's (subject, template) pairs are drawn without replacement, then again in a new order when n exceeds them."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    pool = [t.format(a=with_article(s)) for s in SUBJECTS if split_of(s) == split for t in TEMPLATES]
    rng, out = random.Random(f"{NAME}:{split}:{seed}"), []
    while len(out) < n:
        out += rng.sample(pool, len(pool))
    return out[:n]


_SUBJECT_IN = [re.compile("^" + re.escape(t).replace(re.escape("{a}"), r"an? (\w+)") + "$") for t in TEMPLATES]


def subject_of(prompt: str) -> str | None:
    """The subject a world question asks about, or None for a prompt not from this world."""
    text = prompt.strip()
    for pattern in _SUBJECT_IN:
        found = pattern.match(text)
        if found:
            return found.group(1)
    return None


def names(response: str, subject: str) -> bool:
    """Whether the response names the subject: the word itself or its plural, as a whole word, any case."""
    return re.search(rf"\b{re.escape(subject)}(s|es)?\b", response, re.IGNORECASE) is not None


def reward(prompt: str, response: str) -> float:
    """1 for a response that ends a sentence, 0.5 for naming the question's subject, minus 0.02 per word (module
    docstring). A prompt from outside the world has no subject to name: only the sentence and length terms count."""
    text = response.strip()
    subject = subject_of(prompt)
    ends = 1.0 if text[-1:] in (".", "!", "?") else 0.0
    named = 0.5 if subject is not None and names(text, subject) else 0.0
    return ends + named - 0.02 * len(text.split())


def model_path() -> str:
    """The local transformers folder of SmolLM2-135M-Instruct, fetched into prefopt's cache on first use."""
    from prefopt.world.fetch import model_folder

    return str(model_folder(NAME))

