"""prefopt DPO vs TRL's DPOTrainer: tokens/s and peak memory on the same model and data, in one run; and the
overhead of a prefopt step with precomputed reference log-probs over a bare forward+backward of the same tokens.

    python -m benchmarks.trainer                      # CPU: a 4-layer Llama, 128 pairs, batch 8
    python -m benchmarks.trainer --hidden 512 --layers 8 --steps 20
    python -m benchmarks.trainer --model smollm2-135m --batch 2 --steps 3   # a real model (benchmarks/real.py)

Each measurement runs in its own subprocess, so peak memory (CUDA allocator peak on GPU, resident-set high-water
mark on CPU, minus the process's footprint before training) is not polluted by the others.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
import os
import random
import resource
import time

import torch

WARMUP = 2


def _model(args):
    if getattr(args, "model", None):
        from benchmarks.real import load_model

        return load_model(args.model)
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=4 * args.hidden,
                      num_hidden_layers=args.layers, num_attention_heads=8, num_key_value_heads=8,
                      max_position_embeddings=1024, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return LlamaForCausalLM(cfg).to("cuda" if torch.cuda.is_available() else "cpu")


def _tokenizer(args):
    """The real model's tokenizer with ``--model``, else a word-level one over ``w3 .. w{vocab-1}``."""
    if getattr(args, "model", None):
        from benchmarks.real import load_tokenizer

        return load_tokenizer(args.model)
    vocab = args.vocab
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = {"<pad>": 0, "<bos>": 1, "<eos>": 2, **{f"w{i}": i for i in range(3, vocab)}}
    tok = Tokenizer(models.WordLevel(words, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>")


def _pairs(args):
    if getattr(args, "model", None):
        from benchmarks.real import text_pairs

        return text_pairs(_tokenizer(args), args.pairs, args.prompt_len, args.response_len)
    rng = random.Random(0)
    text = lambda n: " ".join(f"w{rng.randrange(3, args.vocab)}" for _ in range(n))
    return [{"prompt": text(rng.randint(args.prompt_len // 2, args.prompt_len)) + " ",
             "chosen": text(rng.randint(args.response_len // 2, args.response_len)),
             "rejected": text(rng.randint(args.response_len // 2, args.response_len))} for _ in range(args.pairs)]


def _memory() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def _common(args, out):
    return dict(output_dir=out, per_device_train_batch_size=args.batch, max_steps=args.steps + WARMUP,
                learning_rate=1e-5, report_to=[], logging_steps=10**6, save_strategy="no", disable_tqdm=True,
                bf16=torch.cuda.is_available(), use_cpu=not torch.cuda.is_available(), gradient_checkpointing=False)


class _Clock:
    """TrainerCallback timing the steps after the warm-up ones."""

    def __new__(cls):
        from transformers import TrainerCallback

        class Clock(TrainerCallback):
            start = None

            def on_step_end(self, a, state, control, **kw):
                if state.global_step == WARMUP:
                    if torch.cuda.is_available():
                        torch.cuda.synchronize()
                    self.start = time.perf_counter()

            def on_train_end(self, a, state, control, **kw):
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                self.seconds = time.perf_counter() - self.start

        return Clock()


def _tokens_per_step(features, batch: int) -> float:
    tokens = [sum(len(f["prompt_ids"]) + len(r) for r in f["response_ids"]) for f in features]
    return sum(tokens) / len(tokens) * batch


def run_trl(args, queue):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    base = _memory()  # before the models, as for prefopt
    model, tok = _model(args), _tokenizer(args)
    clock = _Clock()
    trainer = DPOTrainer(model=model, ref_model=copy.deepcopy(model), processing_class=tok,
                         args=DPOConfig(**_common(args, "/tmp/bench-trl"), max_length=None),
                         train_dataset=Dataset.from_list(_pairs(args)), callbacks=[clock])
    feats = [{"prompt_ids": e["prompt_ids"], "response_ids": [e["chosen_ids"], e["rejected_ids"]]}
             for e in trainer.train_dataset]
    trainer.train()
    queue.put({"seconds": clock.seconds, "tokens": _tokens_per_step(feats, args.batch) * args.steps,
               "peak_mb": _memory() - base})


def _ours(args, precompute: bool):
    from transformers import TrainingArguments

    from prefopt.data.features import tokenize_records
    from prefopt.data.records import normalize_rows
    from prefopt.trainer.collate import ListCollator
    from prefopt.trainer.core import PreferenceTrainer
    from prefopt.trainer.reference import precompute_ref_logps

    model, tok = _model(args), _tokenizer(args)
    records, _ = normalize_rows(_pairs(args), source="bench")
    feats, _ = tokenize_records(records, tok)
    collator = ListCollator(pad_token_id=tok.pad_token_id)
    ref = copy.deepcopy(model)
    if precompute:
        feats = precompute_ref_logps(ref, feats, collator, cache_dir="/tmp/bench-cache")
        ref = None
    clock = _Clock()
    trainer = PreferenceTrainer(model, TrainingArguments(**_common(args, "/tmp/bench-ours")), loss="dpo",
                                ref_model=ref, collator=collator, train_dataset=feats, callbacks=[clock])
    return trainer, feats, clock


def run_ours(args, queue, precompute=False):
    base = _memory()
    trainer, feats, clock = _ours(args, precompute)
    trainer.train()
    queue.put({"seconds": clock.seconds, "tokens": _tokens_per_step(feats, args.batch) * args.steps,
               "peak_mb": _memory() - base})


def bare_step(model, opt, ids, mask, labels) -> None:
    """One plain causal-LM step (the physical floor the preference steps are compared with): forward with labels,
    backward, clip, AdamW; bf16 autocast on GPU as the Trainer uses."""
    device = next(model.parameters()).device
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=torch.cuda.is_available()):
        loss = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad()


def run_bare(args, queue):
    """Plain causal-LM forward (labels on response tokens) + backward + AdamW on the same batches."""
    trainer, feats, _ = _ours(args, precompute=True)
    model = trainer.model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    loader = trainer.get_train_dataloader()
    device = next(model.parameters()).device
    batches = [b for _, b in zip(range(args.steps + WARMUP), loader, strict=False)]
    for i, b in enumerate(batches):
        if i == WARMUP:
            start = time.perf_counter()
        ids, mask = b["input_ids"].to(device), b["attention_mask"].to(device)
        bare_step(model, opt, ids, mask, ids.masked_fill(b["completion_mask"].to(device) == 0, -100))
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    queue.put({"seconds": time.perf_counter() - start})


def measure(fn, args, **kw) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=fn, args=(args, queue), kwargs=kw)
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--pairs", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--prompt-len", type=int, default=64)
    parser.add_argument("--response-len", type=int, default=96)
    parser.add_argument("--model", default=None, help="a real model: a world's name (smollm2-135m), a local folder or "
                        "an HF id (benchmarks/real.py); --hidden/--layers/--vocab then do not apply")
    args = parser.parse_args()
    trl, ours = measure(run_trl, args), measure(run_ours, args)
    pre, bare = measure(run_ours, args, precompute=True), measure(run_bare, args)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"
    rows = {"TRL DPOTrainer": trl, "prefopt dpo": ours, "prefopt dpo, precomputed ref": pre}
    model = args.model or f"Llama {args.layers}x{args.hidden}, vocab {args.vocab}"
    print(f"device: {device}; model: {model}; batch {args.batch} pairs, {args.steps} timed steps; "
          f"load average {os.getloadavg()[0]:.1f}")
    for name, r in rows.items():
        print(f"  {name:30s} {r['tokens'] / r['seconds']:10.0f} tokens/s   peak +{r['peak_mb']:8.1f} MB   "
              f"{r['seconds'] / args.steps * 1000:8.1f} ms/step")
    print(f"  throughput ratio prefopt/TRL: {trl['seconds'] / ours['seconds']:.3f} (≥ 1 is faster)")
    print(f"  peak memory ratio prefopt/TRL: {ours['peak_mb'] / max(trl['peak_mb'], 1e-9):.3f} (≤ 1 is leaner)")
    print(f"  bare forward+backward: {bare['seconds'] / args.steps * 1000:.1f} ms/step; prefopt precomputed-ref "
          f"overhead: {100 * (pre['seconds'] / bare['seconds'] - 1):+.1f}%")
    print(json.dumps({"trl": trl, "prefopt": ours, "prefopt_precomputed": pre, "bare": bare}))


if __name__ == "__main__":
    main()
