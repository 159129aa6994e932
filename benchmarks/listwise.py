"""List-wise training cost: per-sequence rows vs a shared prompt vs shared + padding-free, against the floor.

    python -m benchmarks.listwise                          # the grid below, then TRL; ~15 min on one CPU thread
    python -m benchmarks.listwise --k 8 --prompt 256 --no-trl
    python -m benchmarks.listwise --ragged                 # prompts of P/2..P tokens, responses of R/2..R

For each K in ``--k`` and prompt length P in ``--prompt`` (responses of ``--response`` tokens), a batch of
``--batch`` lists per step on a Llama ``--layers`` x ``--hidden`` (vocab 8192, as ``benchmarks/trainer.py``):

  per-sequence   each response its own row with its own copy of the prompt (``train.shared_prompt=false``)
  shared         one row per list: the prompt once, the K responses under a block mask (the default)
  shared+pf      the whole batch in one row, no padding (``train.padding_free=true``)
  floor          a bare causal-LM forward + backward + AdamW step over the same unique tokens: one row per list,
                 the prompt and the K responses concatenated under the plain causal mask, labels on the responses

The prefopt rows are PreferenceTrainer steps (LiPO-λ, DPO for K = 2) with precomputed reference log-probs, so a
step is the policy's forward + backward + optimizer step, like the floor's. Printed: ms per list (median over the
timed steps, of process CPU time on CPU, so that other processes on a shared machine do not inflate it), unique
tokens/s (prompt + responses, each counted once) and peak memory. Then TRL's DPOTrainer against prefopt's DPO on
one pair data set (K = 2, prompts of ``--trl-prompt``/2..``--trl-prompt`` tokens, responses of R/2..R, drawn as in
``benchmarks/trainer.py``), all three with a live reference model.

Each measurement runs in its own process (spawn), so its peak memory (resident-set high-water mark on CPU, CUDA
allocator peak on GPU, minus the footprint before the model is built) is its own. On a shared machine use few
repeats and read the medians; the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time

import torch

# Run as a script, benchmarks/ is sys.path[0] and its losses.py would shadow the ``losses`` package: drop it.
if os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

from benchmarks.trainer import WARMUP, _common, _memory, _model, bare_step, measure  # noqa: E402

LAYOUTS = {"per-sequence": dict(shared_prompt=False), "shared": dict(shared_prompt=True),
           "shared+pf": dict(shared_prompt=True, padding_free=True)}


def clock() -> float:
    """Seconds of this process's CPU time on CPU (immune to other processes on a shared machine; equal to wall time
    for one thread on an idle one), wall time on GPU."""
    return time.perf_counter() if torch.cuda.is_available() else time.process_time()


def lists(args, k: int, prompt: int, n: int) -> list[dict]:
    """``n`` tokenized lists: random ids, distinct scores; lengths fixed, or drawn from [L/2, L] with --ragged."""
    rng = random.Random(1000 * k + prompt)
    length = lambda n_max: rng.randint(n_max // 2, n_max) if args.ragged else n_max
    ids = lambda n_tok: [rng.randrange(3, args.vocab) for _ in range(n_tok)]
    return [{"prompt_ids": ids(length(prompt)), "response_ids": [ids(length(args.response)) for _ in range(k)],
             "scores": rng.sample(range(100), k)} for _ in range(n)]


def unique_tokens(features: list[dict]) -> int:
    return sum(len(f["prompt_ids"]) + sum(len(r) for r in f["response_ids"]) for f in features)


class _StepClock:
    """TrainerCallback recording each step's wall time."""

    def __new__(cls):
        from transformers import TrainerCallback

        class Clock(TrainerCallback):
            def __init__(self):
                self.times: list[float] = []

            def on_step_begin(self, a, state, control, **kw):
                self.start = clock()

            def on_step_end(self, a, state, control, **kw):
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                self.times.append(clock() - self.start)

        return Clock()


def _result(times: list[float], features: list[dict], batch: int, base: float) -> dict:
    step = statistics.median(times[WARMUP:])
    per_step = unique_tokens(features) / len(features) * batch
    return {"ms_per_list": 1000 * step / batch, "tokens_per_s": per_step / step, "peak_mb": _memory() - base}


def _trainer(args, features, layout: dict, loss: str, live_ref: bool, clock):
    import copy

    from transformers import TrainingArguments

    from prefopt.trainer import ListCollator, PreferenceTrainer, precompute_ref_logps

    model = _model(args)
    collator = ListCollator(pad_token_id=0, **layout)
    ref = copy.deepcopy(model)
    if not live_ref:
        features = precompute_ref_logps(ref, features, collator, cache_dir="/tmp/bench-listwise-cache")
        ref = None
    train_args = TrainingArguments(**{**_common(args, "/tmp/bench-listwise"), "max_steps": args.steps + WARMUP})
    return PreferenceTrainer(model, train_args, loss=loss, ref_model=ref, collator=collator,
                             train_dataset=features, callbacks=[clock])


def run_prefopt(args, queue, *, k: int, prompt: int, layout: str, features=None, live_ref: bool = False):
    torch.set_num_threads(args.threads)
    base = _memory()
    features = features or lists(args, k, prompt, args.batch * (args.steps + WARMUP))
    clock = _StepClock()
    trainer = _trainer(args, features, LAYOUTS[layout], "dpo" if k == 2 else "lipo", live_ref, clock)
    trainer.train()
    queue.put(_result(clock.times, features, args.batch, base))


def run_floor(args, queue, *, k: int, prompt: int):
    """Causal-LM forward + backward + clip + AdamW over one row per list: prompt + r_1 + … + r_K."""
    torch.set_num_threads(args.threads)
    base = _memory()
    features = lists(args, k, prompt, args.batch * (args.steps + WARMUP))
    model = _model(args)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    times = []
    for start in range(0, len(features), args.batch):
        chunk = features[start:start + args.batch]
        rows = [f["prompt_ids"] + sum(f["response_ids"], []) for f in chunk]
        width = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        labels = torch.full((len(rows), width), -100)
        for i, (r, f) in enumerate(zip(rows, chunk, strict=True)):
            ids[i, : len(r)] = torch.tensor(r)
            labels[i, len(f["prompt_ids"]): len(r)] = ids[i, len(f["prompt_ids"]): len(r)]
        mask = (torch.arange(width)[None] < torch.tensor([len(r) for r in rows])[:, None]).long()
        begin = clock()
        bare_step(model, opt, ids, mask, labels)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(clock() - begin)
    queue.put(_result(times, features, args.batch, base))


def _trl_pairs(args) -> list[dict]:
    """benchmarks/trainer.py's pairs (TRL's input) as tokenized pairs for prefopt: the same token ids."""
    from benchmarks.trainer import _pairs, _tokenizer

    tok = _tokenizer(args)
    out = []
    for p in _pairs(_trl_args(args)):
        prompt = tok(p["prompt"])["input_ids"]
        responses = [tok(p["prompt"] + p[key])["input_ids"][len(prompt):] + [tok.eos_token_id]
                     for key in ("chosen", "rejected")]
        out.append({"prompt_ids": prompt, "response_ids": responses, "scores": [1.0, 0.0]})
    return out


def _trl_args(args):
    return argparse.Namespace(**{**vars(args), "prompt_len": args.trl_prompt, "response_len": args.response,
                                 "pairs": args.batch * (args.steps + WARMUP)})


def run_trl_pairs(args, queue):
    """TRL's DPOTrainer (sigmoid loss, live reference) on ``benchmarks/trainer.py``'s pairs, timed like ours."""
    import copy

    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from benchmarks.trainer import _pairs, _tokenizer

    torch.set_num_threads(args.threads)
    base = _memory()
    model, clock = _model(args), _StepClock()
    config = DPOConfig(**{**_common(args, "/tmp/bench-listwise-trl"), "max_steps": args.steps + WARMUP},
                       max_length=None)
    trainer = DPOTrainer(model=model, ref_model=copy.deepcopy(model), processing_class=_tokenizer(args),
                         args=config, train_dataset=Dataset.from_list(_pairs(_trl_args(args))), callbacks=[clock])
    trainer.train()
    queue.put(_result(clock.times, _trl_pairs(args), args.batch, base))


def _row(name: str, r: dict, floor: dict | None = None, per_seq: dict | None = None) -> str:
    extra = ""
    if per_seq:
        extra += f"{per_seq['ms_per_list'] / r['ms_per_list']:6.2f}x"
    if floor:
        extra += f"   {r['ms_per_list'] / floor['ms_per_list']:5.2f} of floor"
    return (f"  {name:22s}{r['ms_per_list']:9.1f} ms/list{r['tokens_per_s']:10.0f} tok/s  peak +{r['peak_mb']:7.1f} MB"
            f"  {extra}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--prompt", type=int, nargs="+", default=[32, 256, 512])
    parser.add_argument("--response", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4, help="lists per step")
    parser.add_argument("--steps", type=int, default=3, help=f"timed steps (after {WARMUP} warm-up steps)")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ragged", action="store_true")
    parser.add_argument("--trl-prompt", type=int, default=512)
    parser.add_argument("--no-trl", action="store_true")
    parser.add_argument("--model", default=None, help="a real model: a world's name (smollm2-135m), a local folder or "
                        "an HF id (benchmarks/real.py); its vocabulary replaces --vocab; --hidden/--layers unused")
    args = parser.parse_args(argv)
    if args.model:
        from benchmarks.real import load_tokenizer

        args.vocab = len(load_tokenizer(args.model))
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({args.threads} thread(s))"
    model = args.model or f"Llama {args.layers}x{args.hidden}"
    print(f"device: {device}; {model}, vocab {args.vocab}; {args.batch} lists per step, "
          f"{args.steps} timed steps (median); responses of {args.response} tokens"
          f"{', ragged lengths' if args.ragged else ''}; load average {os.getloadavg()[0]:.1f}")
    results = {}
    for k in args.k:
        for prompt in args.prompt:
            rows = {name: measure(run_prefopt, args, k=k, prompt=prompt, layout=name) for name in LAYOUTS}
            rows["floor"] = measure(run_floor, args, k=k, prompt=prompt)
            results[f"K={k} P={prompt}"] = rows
            print(f"K={k}, prompt {prompt}:  (speed-up over per-sequence; step time / floor's)")
            for name, r in rows.items():
                print(_row(name, r, None if name == "floor" else rows["floor"],
                           None if name in ("per-sequence", "floor") else rows["per-sequence"]))
    if not args.no_trl:
        pairs = _trl_pairs(args)
        rows = {"TRL DPOTrainer": measure(run_trl_pairs, args)}
        for name in ("per-sequence", "shared"):
            rows[f"prefopt {name}"] = measure(run_prefopt, args, k=2, prompt=args.trl_prompt, layout=name,
                                              features=pairs, live_ref=True)
        results["TRL"] = rows
        print(f"K=2 pairs, prompts of {args.trl_prompt // 2}..{args.trl_prompt} tokens, live reference: "
              "(speed-up over TRL)")
        for name, r in rows.items():
            print(_row(name, r, None, None if name.startswith("TRL") else rows["TRL DPOTrainer"]))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
