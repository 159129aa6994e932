"""Is the tiny world fit for purpose? Self-generated best-vs-worst DPO must raise the held-out reward.

    python -m benchmarks.world_dpo_check                 # the shipped/cached default world
    python -m benchmarks.world_dpo_check --noise 0.3 --warmup-steps 400 --cache /tmp/w   # try another world

The loop is deliberately plain (no Trainer): sample K responses per training prompt from the base policy, score
them with the task reward, keep the best and the worst of each list (ties dropped), and train with ``dpo_loss`` on
summed response log-probs against a frozen copy of the base (its log-probs computed once up front: with no
dropout they equal a live reference forward). It prints the held-out reward before and after with 95% intervals,
and the time of each phase; it exits 1 when the intervals overlap.
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

# Run as a script, benchmarks/ is sys.path[0] and its losses.py would shadow the ``losses`` package: drop it.
if os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

from losses import PreferenceLogps, dpo_loss  # noqa: E402
from prefopt.rounds.evaluate import evaluate_reward  # noqa: E402
from prefopt.rounds.generate import sample  # noqa: E402
from prefopt.rounds.pairing import best_vs_worst  # noqa: E402
from prefopt.world import tasks  # noqa: E402
from prefopt.world.model import WorldConfig, load_base_policy  # noqa: E402
from prefopt.world.warmup import DemoEncoder  # noqa: E402


def best_worst_pairs(prompts, responses):
    """(prompt, chosen, rejected) per prompt whose best and worst task rewards differ: the round pipeline's
    ``best_vs_worst`` rule (first highest against last lowest) on the scored lists."""
    records = [{"prompt": p, "responses": list(group), "scores": [tasks.reward(p, r) for r in group]}
               for p, group in zip(prompts, responses, strict=True)]
    pairs, _ = best_vs_worst(records)
    return [(r["prompt"], *r["responses"]) for r in pairs]


def encode_pairs(tokenizer, pairs):
    """(2P, T) right-padded ids, attention mask and response-token mask: chosen rows first, then rejected."""
    encoder = DemoEncoder(tokenizer)
    rows = [encoder.encode(p, c) for p, c, _ in pairs] + [encoder.encode(p, r) for p, _, r in pairs]
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    response = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (row, prompt_len) in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        response[i, prompt_len : len(row)] = True
    return ids, (ids != tokenizer.pad_token_id) | response, response


def sequence_logps(model, ids, attention, response):
    """(N,) summed log-probs of the response tokens (the EOS included)."""
    logits = model(input_ids=ids, attention_mask=attention.long()).logits[:, :-1]  # (N, T-1, V)
    token = torch.gather(F.log_softmax(logits.float(), -1), 2, ids[:, 1:, None]).squeeze(2)  # (N, T-1)
    return (token * response[:, 1:]).sum(1)


def train_dpo(policy, ids, attention, response, ref, *, steps, batch, lr, beta, seed):
    """Plain DPO on P pairs (rows i and P+i of the inputs); returns the mean loss of the last 10 steps."""
    n_pairs = ids.shape[0] // 2
    optimizer = torch.optim.AdamW(policy.parameters(), lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    policy.train()
    history = []
    for _ in range(steps):
        pick = torch.randint(n_pairs, (batch,), generator=gen)
        rows = torch.cat([pick, pick + n_pairs])
        logps = sequence_logps(policy, ids[rows], attention[rows], response[rows])
        x = PreferenceLogps(policy=torch.stack([logps[:batch], logps[batch:]], 1),  # (B, 2): chosen, rejected
                            ref=torch.stack([ref[pick], ref[pick + n_pairs]], 1),
                            scores=torch.tensor([[1.0, 0.0]]).expand(batch, 2))
        loss = dpo_loss(x, beta=beta).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    policy.eval()
    return sum(history[-10:]) / len(history[-10:])


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    d = WorldConfig()
    p.add_argument("--noise", type=float, default=d.noise)
    p.add_argument("--repeat-rate", type=float, default=d.repeat_rate)
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    p.add_argument("--warmup-batch", type=int, default=d.batch_size)
    p.add_argument("--hidden", type=int, default=d.hidden_size)
    p.add_argument("--layers", type=int, default=d.num_layers)
    p.add_argument("--cache", default=None, help="cache folder for a non-default world")
    p.add_argument("--train-prompts", type=int, default=1024)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--eval-prompts", type=int, default=256)
    p.add_argument("--eval-samples", type=int, default=4)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for this tiny model)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    random.seed(0)
    config = WorldConfig(noise=args.noise, repeat_rate=args.repeat_rate, warmup_steps=args.warmup_steps,
                         batch_size=args.warmup_batch, hidden_size=args.hidden, num_layers=args.layers)
    clock = {}
    t = time.perf_counter()
    policy, tokenizer = load_base_policy(args.cache, config=config)
    clock["load/build base"] = time.perf_counter() - t

    t = time.perf_counter()
    train_prompts = tasks.make_prompts(args.train_prompts, seed=1, split="train")
    responses = sample(policy, tokenizer, train_prompts, k=args.k, max_new_tokens=tasks.MAX_NEW_TOKENS, seed=1,
                       batch_size=256, progress=False)
    pairs = best_worst_pairs(train_prompts, responses)
    clock["generate + score"] = time.perf_counter() - t

    eval_prompts = tasks.make_prompts(args.eval_prompts, seed=0, split="eval")
    evaluate = lambda m: evaluate_reward(m, tokenizer, eval_prompts, tasks.reward, max_new_tokens=tasks.MAX_NEW_TOKENS,
                                         samples_per_prompt=args.eval_samples, seed=123)
    t = time.perf_counter()
    before = evaluate(policy)
    clock["eval before"] = time.perf_counter() - t

    t = time.perf_counter()
    ids, attention, response = encode_pairs(tokenizer, pairs)
    reference = copy.deepcopy(policy).eval().requires_grad_(False)
    with torch.no_grad():
        ref = sequence_logps(reference, ids, attention, response)
    last_loss = train_dpo(policy, ids, attention, response, ref, steps=args.steps, batch=args.batch, lr=args.lr,
                          beta=args.beta, seed=0)
    clock["dpo train"] = time.perf_counter() - t

    t = time.perf_counter()
    after = evaluate(policy)
    clock["eval after"] = time.perf_counter() - t

    fmt = lambda s: f"{s['mean']:.3f} [{s['ci95_low']:.3f}, {s['ci95_high']:.3f}] (n={s['n']})"
    print(f"world {config.fingerprint()}  noise={args.noise} repeat_rate={args.repeat_rate} "
          f"warmup_steps={args.warmup_steps} hidden={args.hidden} layers={args.layers}")
    print(f"pairs {len(pairs)}/{len(train_prompts)} (ties dropped), dpo steps {args.steps} x {args.batch}, "
          f"lr {args.lr}, beta {args.beta}, final loss {last_loss:.3f}")
    print(f"reward before  {fmt(before)}")
    print(f"reward after   {fmt(after)}")
    print("  ".join(f"{k}: {v:.1f}s" for k, v in clock.items()) + f"  total: {sum(clock.values()):.1f}s")
    separated = after["ci95_low"] > before["ci95_high"]
    print("OK: intervals do not overlap" if separated else "FAIL: intervals overlap")
    return 0 if separated else 1


if __name__ == "__main__":
    sys.exit(main())
