"""Generation throughput on the tiny world: batched HF ``generate`` against one prompt at a time.

    python -m benchmarks.generation                  # about half a minute on 2 CPU cores
    python -m benchmarks.generation --threads 1 2    # torch intra-op threads to compare (default: 1 and all)

Prints responses/s and generated tokens/s (EOS included) of ``prefopt.rounds.generate.sample`` on the shipped base
policy, sampling at temperature 1 with the world's ``MAX_NEW_TOKENS``: batched (the whole request split into
batches of ``--batch``) and sequential (batch size 1, on fewer prompts so it stays short). Each figure is the best
of ``--repeats`` runs after one warm-up run, which is the least disturbed by other processes on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

# Run as a script, benchmarks/ is sys.path[0] and its losses.py would shadow the ``losses`` package: drop it.
if os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

from prefopt.rounds.generate import sample  # noqa: E402
from prefopt.world import tasks  # noqa: E402
from prefopt.world.model import load_base_policy  # noqa: E402


def generated_tokens(tokenizer, responses: list[list[str]], max_new_tokens: int) -> int:
    """Tokens generated: each response's own tokens plus its EOS (absent only when it hit the length limit)."""
    total = 0
    for group in responses:
        for text in group:
            n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            total += min(n + 1, max_new_tokens)
    return total


def measure(model, tokenizer, prompts, *, batch_size: int, k: int, repeats: int) -> tuple[float, float]:
    """(responses/s, tokens/s), best of ``repeats`` timed runs after one untimed warm-up run."""
    run = lambda: sample(model, tokenizer, prompts, k=k, max_new_tokens=tasks.MAX_NEW_TOKENS, batch_size=batch_size,
                         progress=False)
    responses = run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    n_tokens = generated_tokens(tokenizer, responses, tasks.MAX_NEW_TOKENS)
    return len(prompts) * k / best, n_tokens / best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=256, help="prompts for the batched runs")
    parser.add_argument("--k", type=int, default=4, help="responses per prompt in the batched runs")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--sequential-prompts", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="*", default=None)
    args = parser.parse_args(argv)
    model, tokenizer = load_base_policy()
    prompts = tasks.make_prompts(args.prompts, seed=0, split="eval")
    threads = args.threads or sorted({1, torch.get_num_threads()})
    params = sum(p.numel() for p in model.parameters())
    print(f"tiny world: {params / 1e3:.0f}k parameters, max_new_tokens={tasks.MAX_NEW_TOKENS}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'mode':<34}{'threads':>8}{'responses/s':>14}{'tokens/s':>12}")
    for n in threads:
        torch.set_num_threads(n)
        rows = [(f"batched ({args.prompts}x{args.k}, batch {args.batch})",
                 measure(model, tokenizer, prompts, batch_size=args.batch, k=args.k, repeats=args.repeats)),
                (f"one at a time ({args.sequential_prompts}x1)",
                 measure(model, tokenizer, prompts[: args.sequential_prompts], batch_size=1, k=1,
                         repeats=args.repeats))]
        for name, (rps, tps) in rows:
            print(f"{name:<34}{n:>8}{rps:>14.1f}{tps:>12.0f}")


if __name__ == "__main__":
    main()
