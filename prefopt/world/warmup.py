"""Supervised warm-up of the tiny world's base policy on imperfect demonstrations.

The base policy must be imperfect in a way preference optimisation from its own samples can fix. Half of its
demonstrations say the answer twice (``12358`` → ``1235812358``, reward 0.5), so it learns to ramble on after the
answer about half the time; a short warm-up also leaves it making real mistakes. Best-vs-worst pairs of its own
samples then carry a clear signal (stop after one right answer), and DPO lifts the sampled reward by about 0.1 to
0.15 in a few dozen steps (``benchmarks/world_dpo_check.py``). Optional per-character noise (``noise``) makes
harder worlds.

Only train-split prompts are used, so the eval split stays unseen. The loop is plain PyTorch (no Trainer) because it
runs inside ``load_base_policy`` when no shipped or cached checkpoint fits, and must stay around 30 s on one core.
"""

from __future__ import annotations

import math
import random
import time

import torch
from torch import Tensor

from prefopt.tensors import pad_rows
from prefopt.world.tasks import draw_prompt, noisy_demonstration


class DemoEncoder:
    """Token ids of chat-formatted (prompt, response) pairs for the world's character-level tokenizer.

    Going through Jinja and the HF tokenizer per demonstration costs about as much as the model's forward pass
    here, so the chat template is rendered once, split at a marker into the ids before and after the user text,
    and the text in between is looked up one character per token (the tests check the ids match the tokenizer's).
    """

    def __init__(self, tokenizer):
        marker = "\x00"
        rendered = tokenizer.apply_chat_template([{"role": "user", "content": marker}], add_generation_prompt=True,
                                                 tokenize=False)
        head, tail = rendered.split(marker)
        self.head = tokenizer(head, add_special_tokens=False)["input_ids"]
        self.tail = tokenizer(tail, add_special_tokens=False)["input_ids"]
        self.vocab = tokenizer.get_vocab()
        self.unk, self.eos, self.pad = tokenizer.unk_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id

    def chars(self, text: str) -> list[int]:
        return [self.vocab.get(c, self.unk) for c in text]

    def encode(self, prompt: str, response: str) -> tuple[list[int], int]:
        """Ids of ``<bos><user>prompt<assistant>response<eos>`` and the length of the prompt part."""
        prompt_ids = self.head + self.chars(prompt) + self.tail
        return prompt_ids + self.chars(response) + [self.eos], len(prompt_ids)


def demo_batch(encoder: DemoEncoder, rng: random.Random, batch_size: int, noise: float,
               repeat_rate: float) -> dict[str, Tensor]:
    """One batch of chat-formatted demonstrations, right-padded, with the loss on response tokens only."""
    pairs = []
    for _ in range(batch_size):
        prompt = draw_prompt(rng, "train")
        pairs.append(encoder.encode(prompt, noisy_demonstration(prompt, rng, noise, repeat_rate)))
    input_ids, attention_mask = pad_rows([ids for ids, _ in pairs], encoder.pad)  # (B, T), (B, T)
    labels = pad_rows([[-100] * n + ids[n:] for ids, n in pairs], -100)[0]  # (B, T): -100 on prompt and padding
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def lr_at(step: int, steps: int, lr: float) -> float:
    """Linear warm-up over the first 5% of steps, then cosine decay to 10% of ``lr``."""
    warm = max(1, steps // 20)
    if step < warm:
        return lr * (step + 1) / warm
    progress = (step - warm) / max(1, steps - warm)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def warm_up(model, tokenizer, *, steps: int, batch_size: int, lr: float, noise: float, repeat_rate: float,
            seed: int, log_every: int = 0) -> list[float]:
    """Train ``model`` in place for ``steps`` AdamW steps; returns the loss of every step.

    Deterministic for a fixed seed and initial weights: prompts and corruptions come from a seeded generator and
    the model has no dropout.
    """
    rng = random.Random(f"prefopt-world/warmup/{seed}")
    encoder = DemoEncoder(tokenizer)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.0)
    losses, start = [], time.perf_counter()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, steps, lr)
        loss = model(**demo_batch(encoder, rng, batch_size, noise, repeat_rate)).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if log_every and (step % log_every == 0 or step == steps - 1):
            print(f"warm-up step {step:4d}  loss {loss.item():.3f}  {time.perf_counter() - start:5.1f}s", flush=True)
    model.eval()
    return losses
