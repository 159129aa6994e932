"""CHES scoring speed: batched (padded, both responses of a pair in one forward) vs one pair at a time.

    python benchmarks/ches.py [--pairs 256] [--batch-size 16] [--hidden 64] [--layers 2] [--world]

Uses a Llama built from a config (``--hidden``, ``--layers``) with a character-level tokenizer and random pairs of
varied lengths (prompt 8-40, responses 4-60 characters); ``--world``: the tiny world's base policy on the CHES demo
pairs instead. Prints pairs/s for each mode (best of three) and the largest difference between their scores.
"""

from __future__ import annotations

import argparse
import random
import string
import sys
import time
from pathlib import Path

import torch

# Run as a script, this folder comes first on sys.path, where benchmarks/losses.py would shadow the losses package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def tiny_model_and_tokenizer(hidden: int, layers: int):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>"]
    vocab = {t: i for i, t in enumerate(specials + list(string.ascii_lowercase + string.digits + " .,?"))}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
                         intermediate_size=4 * hidden, vocab_size=len(vocab), max_position_embeddings=256)
    return LlamaForCausalLM(config).eval(), tokenizer


def random_pairs(n: int, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    rng = random.Random(seed)
    text = lambda lo, hi: "".join(rng.choice(string.ascii_lowercase + " ") for _ in range(rng.randint(lo, hi)))
    return [text(8, 40) for _ in range(n)], [text(4, 60) for _ in range(n)], [text(4, 60) for _ in range(n)]


def pairs_per_second(fn, n: int, repeats: int = 3) -> tuple[float, torch.Tensor]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return n / best, out


def main() -> None:
    from prefopt.ches import ches_scores

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--world", action="store_true", help="the tiny world's base policy on the CHES demo pairs")
    args = parser.parse_args()
    if args.world:
        from prefopt.ches.demo import demo_records
        from prefopt.world import load_base_policy

        model, tokenizer = load_base_policy()
        records = demo_records()
        prompts, chosen, rejected = ([r["prompt"] for r in records], [r["responses"][0] for r in records],
                                     [r["responses"][1] for r in records])
        args.pairs = len(records)
    else:
        model, tokenizer = tiny_model_and_tokenizer(args.hidden, args.layers)
        prompts, chosen, rejected = random_pairs(args.pairs)
    run = lambda bs: ches_scores(model, tokenizer, prompts, chosen, rejected, batch_size=bs)
    batched, s_batched = pairs_per_second(lambda: run(args.batch_size), args.pairs)
    single, s_single = pairs_per_second(lambda: run(1), args.pairs)
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {type(model).__name__}, {params / 1e3:.0f}k parameters; {args.pairs} pairs; "
          f"{torch.get_num_threads()} threads")
    print(f"batched (batch_size={args.batch_size}): {batched:8.1f} pairs/s")
    print(f"one pair at a time (batch_size=1): {single:8.1f} pairs/s")
    print(f"speed-up: {batched / single:.1f}x; max |score difference|: {(s_batched - s_single).abs().max():.2e}")


if __name__ == "__main__":
    main()
