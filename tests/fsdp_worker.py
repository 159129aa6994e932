"""Launched on 2 CPU processes by tests/test_fsdp.py: the trainer's loss path under FSDP2 vs DDP, same weights.

    accelerate launch --num_processes 2 ... tests/fsdp_worker.py OUT.json dpo rrpo

accelerate turns FSDP off on CPU (``AcceleratorState`` enables it only for GPU-like distributed types, so a CPU
launch with an FSDP config silently trains with DDP), so the model is sharded here with PyTorch's own FSDP2
(``torch.distributed.fsdp.fully_shard``) the way accelerate's ``TRANSFORMER_BASED_WRAP`` does it on GPUs: each
decoder layer, then the root (which holds the embeddings and the LM head). The reference is sharded the same way
(TRL's ``prepare_fsdp``). Both runs start from the same weights, take the same global batch split in two, and run
``PreferenceTrainer.compute_loss`` — whose log-prob path projects response positions through the LM head *outside*
the model's forward, and for RRPO also the reference's, for the per-token KL. Rank 0 writes the largest weight
difference between the runs, how far the weights moved and whether every FSDP parameter was really sharded.
"""

from __future__ import annotations

import copy
import json
import sys

import torch
from accelerate import PartialState
from torch.distributed.fsdp import fully_shard
from torch.nn.parallel import DistributedDataParallel
from transformers import TrainingArguments

from prefopt.data.features import tokenize_records
from prefopt.data.segments import segment_ids
from prefopt.train import close_process_group
from prefopt.trainer import ListCollator, PreferenceTrainer, frozen_copy
from tests.conftest import make_model, make_tokenizer
from tests.test_cli import PAIRS

STEPS, GLOBAL_BATCH = 3, 4


def shard(model):
    for layer in model.model.layers:
        fully_shard(layer)
    fully_shard(model)
    return model


def full_weights(model) -> dict[str, torch.Tensor]:
    model = getattr(model, "module", model)
    return {n: (p.full_tensor() if hasattr(p, "full_tensor") else p).detach().clone()
            for n, p in model.named_parameters()}


def train(mode: str, loss: str, features: list[dict], collator: ListCollator, out_dir: str, state: PartialState):
    torch.manual_seed(0)
    policy = make_model()
    ref = frozen_copy(policy)
    args = TrainingArguments(output_dir=out_dir, use_cpu=True, report_to=[], learning_rate=1e-2)
    trainer = PreferenceTrainer(copy.deepcopy(policy), args, loss=loss, loss_kwargs={"beta": 0.5}, ref_model=ref,
                                collator=collator)
    model = trainer.model
    if mode == "fsdp":
        model, trainer.ref_model = shard(model), shard(trainer.ref_model)
    else:
        model = DistributedDataParallel(model)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    half = GLOBAL_BATCH // state.num_processes
    for step in range(STEPS):
        rows = features[step * GLOBAL_BATCH:(step + 1) * GLOBAL_BATCH][state.process_index * half:][:half]
        trainer.compute_loss(model, collator(rows)).backward()  # mean over this half; both wrappers average
        optimizer.step()
        optimizer.zero_grad()
    sharded = all(p.to_local().numel() < p.numel() for p in model.parameters()) if mode == "fsdp" else None
    return full_weights(model), {n: p.detach() for n, p in policy.named_parameters()}, sharded


def compare(loss: str, target: str, state: PartialState) -> dict:
    tok = make_tokenizer()
    records = [{"prompt": p["prompt"], "responses": [p["chosen"], p["rejected"]], "scores": [1.0, 0.0]}
               for p in PAIRS]
    features, _ = tokenize_records(records, tok, segment_fn=segment_ids if loss == "rrpo" else None)
    collator = ListCollator(pad_token_id=tok.pad_token_id)
    fsdp, start, sharded = train("fsdp", loss, features, collator, f"{target}.{loss}.fsdp", state)
    ddp, _, _ = train("ddp", loss, features, collator, f"{target}.{loss}.ddp", state)
    return {"max_diff": max((fsdp[n] - ddp[n]).abs().max().item() for n in ddp),
            "moved": max((ddp[n] - start[n]).abs().max().item() for n in ddp),
            "sharded": sharded, "names": sorted(fsdp) == sorted(ddp)}


if __name__ == "__main__":
    torch.set_num_threads(1)
    state = PartialState(cpu=True)
    target, losses = sys.argv[1], sys.argv[2:]
    results = {loss: compare(loss, target, state) for loss in losses}
    if state.is_main_process:
        with open(target, "w") as f:
            json.dump(results, f)
    close_process_group()
