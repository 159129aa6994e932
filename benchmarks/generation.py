"""Generation throughput on the tiny world: batched HF ``generate`` against one prompt at a time.

    python -m benchmarks.generation                  # about half a minute on 2 CPU cores
    python -m benchmarks.generation --threads 1 2    # torch intra-op threads to compare (default: 1 and all)
    python -m benchmarks.generation --prefill        # K samples of long prompts: shared prefill against K prefills

Prints responses/s and generated tokens/s (EOS included) of ``prefopt.rounds.generate.sample`` on the shipped base
policy, sampling at temperature 1 with the world's ``MAX_NEW_TOKENS``: batched (the whole request split into
batches of ``--batch``) and sequential (batch size 1, on fewer prompts so it stays short). Each figure is the best
of ``--repeats`` runs after one warm-up run, which is the least disturbed by other processes on a shared machine.

``--prefill``: ``--k`` samples (default 8) of each of ``--prompts`` prompts of ``--prompt-len`` random tokens on
``benchmarks/trainer.py``'s Llama 4x256 (vocab 8192), exactly ``--new-tokens`` new tokens each, with the prompt's
prefill run once and its KV cache repeated K times (``prefopt.rounds.generate._generate``, what ``sample`` does)
against K full prefills (plain ``generate`` on K copies); process CPU time, best of ``--repeats``.

``--model NAME`` (a world's model such as ``smollm2-135m``, a local folder or an HF id; benchmarks/real.py): K
samples of each of ``--prompts`` of the world's eval questions as chat turns, ``--new-tokens`` at most, by
``prefopt.rounds.generate.sample`` against plain HF ``generate`` (the chat-rendered batch, left padding,
``num_return_sequences=K``), both sampling at temperature 1 with no top-k/top-p cut; process CPU time, best of
``--repeats`` after a warm-up run, on ``--threads`` (default 1) threads.
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

from prefopt.rounds.generate import _generate, _generation_kwargs, sample  # noqa: E402
from prefopt.rounds.row_sampling import SeededRowSampler  # noqa: E402
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


def prefill(args) -> None:
    """Shared prefill against K prefills (see the module docstring)."""
    import random

    from benchmarks.trainer import _model, _tokenizer

    torch.set_num_threads((args.threads or [1])[0])
    bench = argparse.Namespace(vocab=8192, hidden=256, layers=4)
    model, tokenizer = _model(bench).eval(), _tokenizer(bench)
    rng = random.Random(0)
    ids = torch.tensor([[rng.randrange(3, bench.vocab) for _ in range(args.prompt_len)] for _ in range(args.prompts)])
    mask = torch.ones_like(ids)
    # sampling at temperature 1 as ``sample`` does it (one seeded stream per row), exactly new_tokens each
    kwargs = lambda: {**_generation_kwargs(tokenizer, args.new_tokens), "min_new_tokens": args.new_tokens,
                      "logits_processor": [SeededRowSampler(range(args.prompts * args.k), temperature=1.0)]}
    print(f"Llama 4x256: {args.prompts} prompts x K={args.k}, {args.prompt_len}-token prompts, {args.new_tokens} new "
          f"tokens, {torch.get_num_threads()} thread(s), load average {os.getloadavg()[0]:.1f}")
    seconds = {}
    for shared in (False, True):
        run = lambda: _generate(model, ids, mask, args.k, kwargs(), shared_prefill=shared)  # noqa: B023
        run()
        best = float("inf")
        for _ in range(args.repeats):
            start = time.process_time()
            run()
            best = min(best, time.process_time() - start)
        seconds[shared] = best
        name = "shared prefill" if shared else f"{args.k} prefills"
        print(f"  {name:<16}{best:8.2f} s CPU{args.prompts * args.k * args.new_tokens / best:10.0f} new tokens/s")
    print(f"  speed-up: {seconds[False] / seconds[True]:.2f}x")


def real_model(args) -> None:
    """prefopt's ``sample`` against plain HF ``generate`` on a real model (see the module docstring)."""
    from benchmarks.real import load_model, load_tokenizer
    from prefopt.world.worlds import WORLDS, world_prompts

    torch.set_num_threads((args.threads or [1])[0])
    model, tokenizer = load_model(args.model).eval(), load_tokenizer(args.model)
    world = WORLDS.get(args.model, WORLDS["smollm2-135m"])
    chats = [[{"role": "user", "content": p}] for p in world_prompts(world, args.prompts, seed=0, split="eval")]

    def plain() -> list[list[str]]:
        tokenizer.padding_side = "left"
        batch = tokenizer.apply_chat_template(chats, add_generation_prompt=True, padding=True, return_dict=True,
                                              return_tensors="pt").to(model.device)
        out = model.generate(**batch, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                             max_new_tokens=args.new_tokens, num_return_sequences=args.k,
                             pad_token_id=tokenizer.pad_token_id)
        texts = tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
        return [texts[i * args.k:(i + 1) * args.k] for i in range(len(chats))]

    ours = lambda: sample(model, tokenizer, chats, k=args.k, max_new_tokens=args.new_tokens, batch_size=args.batch,
                          progress=False)
    print(f"{args.model}: {len(chats)} prompts x K={args.k}, at most {args.new_tokens} new tokens, "
          f"{torch.get_num_threads()} thread(s), load average {os.getloadavg()[0]:.1f}")
    for name, run in (("prefopt sample", ours), ("plain HF generate", plain)):
        responses = run()
        best = float("inf")
        for _ in range(args.repeats):
            start = time.process_time()
            run()
            best = min(best, time.process_time() - start)
        tokens = generated_tokens(tokenizer, responses, args.new_tokens)
        print(f"  {name:<20}{best:8.2f} s CPU{len(chats) * args.k / best:8.2f} responses/s{tokens / best:8.0f} "
              "tokens/s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=None, help="prompts for the batched runs (256; --prefill: 8)")
    parser.add_argument("--k", type=int, default=None, help="responses per prompt (4; --prefill: 8)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--sequential-prompts", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="*", default=None)
    parser.add_argument("--prefill", action="store_true", help="shared prefill against K prefills (only)")
    parser.add_argument("--prompt-len", type=int, default=256, help="--prefill: prompt tokens")
    parser.add_argument("--new-tokens", type=int, default=None, help="--prefill: tokens generated per sample (32); "
                        "--model: at most this many (24)")
    parser.add_argument("--model", default=None, help="a real model (smollm2-135m, a folder or an HF id): prefopt's "
                        "sample against plain HF generate on the world's questions (only)")
    args = parser.parse_args(argv)
    if args.model:
        args.k, args.prompts = args.k or 4, args.prompts or 8
        args.new_tokens = args.new_tokens or 24
        return real_model(args)
    args.new_tokens = args.new_tokens or 32
    args.k = args.k or (8 if args.prefill else 4)
    args.prompts = args.prompts or (8 if args.prefill else 256)
    if args.prefill:
        return prefill(args)
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
