"""Train any Hugging Face causal LM with any prefopt loss in a loop of your own (no Trainer).

    python examples/own_loop.py MODEL_PATH_OR_HUB_ID [LOSS] [STEPS]    e.g. ... HuggingFaceTB/SmolLM2-135M dpo 20

``policy_logps`` is the trainer's own code path, so the loss sees exactly what ``PreferenceTrainer`` would give it.
"""

import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from losses import get_loss
from prefopt.data.features import tokenize_records
from prefopt.data.records import normalize_rows
from prefopt.trainer import ListCollator, frozen_copy, policy_logps

path, loss_name, steps = sys.argv[1], (sys.argv[2:] or ["dpo"])[0], int((sys.argv[3:] or [20])[0])
model, tokenizer = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
pairs = [{"prompt": f"sort {a}{b}:", "chosen": f" {min(a, b)}{max(a, b)}", "rejected": f" {max(a, b)}{min(a, b)}"}
         for a in range(1, 5) for b in range(5, 9)]
features, _ = tokenize_records(normalize_rows(pairs, source="pairs")[0], tokenizer, max_length=64)
collate = ListCollator(pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
ref, loss_fn = frozen_copy(model), get_loss(loss_name)  # the reference: a frozen copy of the starting policy
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
model.train()
for step in range(steps):
    batch = collate(features[(step * 4) % len(features):][:4])
    x = policy_logps(model, batch, ref_model=ref, loss=loss_fn)  # PreferenceLogps, differentiable
    loss = loss_fn(x).mean()  # (B,) per list, reduced here; hyper-parameters as keywords: loss_fn(x, beta=0.5)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    print(f"step {step + 1} loss {loss.item():.4f}")
