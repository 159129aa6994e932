"""RA-DPO's positive control: a base policy that reads a goal score, made by a short goal-conditioned warm-up.

The world's base never saw a goal, and under ``goal 10`` it answers worse than without one (protocol v1: 0.235
against 0.579). The paper's models are instruction-tuned and read a system prompt. So the control first teaches
the base to read one, the way reward-conditioned fine-tuning does, without teaching it any new answer:

1. ``PROMPTS`` train prompts × K = 4 samples of the base (its own answers), each scored by the world reward;
2. supervised steps on those very samples, each taught twice: under its goal (``goal {score}`` as a system turn,
   the score rescaled from [0, 1] to 1-10 as ``augment`` does) and under the plain prompt (so the plain prompt's
   answers stay the base's own);
3. the warmed base is then read on the held-out prompts under ``goal 10``, ``goal 1`` and no goal.

It follows goal prompts when ``goal 10`` scores above ``goal 1``. Both RA-DPO and DPO then start from it.
Character check: ``goal 8.2`` is inside the world's vocabulary, and the system turn renders as a user turn, so the
goal adds no unknown token (``goal_ids`` equals the tokenizer's ids of the chat template's text, checked here).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

PROMPTS, K, STEPS, BATCH, LR = 2048, 4, 400, 64, 1e-3
TEMPLATE = "goal {score}"
WARM_SEED = 7  # the warm-up's own seed: one warmed base, as the world has one base


def goal_ids(tokenizer, goal: str | None, prompt: str, response: str) -> tuple[list[int], int]:
    """Ids of the chat text ``[system goal,] user prompt, assistant response`` and the prompt part's length."""
    messages = ([{"role": "system", "content": goal}] if goal else []) + [{"role": "user", "content": prompt}]
    head = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tokenizer(head + response + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    return ids, len(tokenizer(head, add_special_tokens=False)["input_ids"])


def _rows(model, tokenizer, n: int) -> list[tuple[list[int], int]]:
    from prefopt.rounds.augment import goal_text, rescale
    from prefopt.rounds.generate import sample
    from prefopt.world import make_prompts
    from prefopt.world.tasks import MAX_NEW_TOKENS, reward

    prompts = make_prompts(n, seed=90_000 + WARM_SEED, split="train")
    lists = sample(model, tokenizer, [[{"role": "user", "content": p}] for p in prompts], k=K,
                   max_new_tokens=MAX_NEW_TOKENS, seed=WARM_SEED, progress=False)
    rows = []
    for prompt, responses in zip(prompts, lists, strict=True):
        for y in responses:
            goal = goal_text(rescale(reward(prompt, y), (0.0, 1.0)), TEMPLATE)
            rows += [goal_ids(tokenizer, goal, prompt, y), goal_ids(tokenizer, None, prompt, y)]
    return rows


def warm_up(folder: Path, *, smoke: bool = False) -> Path:
    """The goal-reading base in ``folder`` (built once; a rerun reuses it)."""
    from prefopt.tensors import pad_rows
    from prefopt.world import load_base_policy

    if (folder / "config.json").exists():
        return folder
    torch.manual_seed(WARM_SEED)
    model, tokenizer = load_base_policy()
    unk = tokenizer.unk_token_id
    rows = _rows(model, tokenizer, 8 if smoke else PROMPTS)
    if any(unk in ids for ids, _ in rows):
        raise ValueError("a goal-conditioned row holds an unknown token")
    rng = random.Random(WARM_SEED)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    model.train()
    for _ in range(2 if smoke else STEPS):
        batch = rng.sample(rows, min(BATCH, len(rows)))
        input_ids, mask = pad_rows([ids for ids, _ in batch], tokenizer.pad_token_id)  # (B, T), (B, T)
        labels = pad_rows([[-100] * n + ids[n:] for ids, n in batch], -100)[0]  # (B, T): the response only
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    model.eval()
    tmp = folder.with_name(folder.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(folder)
    return folder


def prompt_files(folder: Path, seed: int, n_train: int, n_eval: int) -> tuple[Path, Path]:
    """This seed's first-round train prompts (the world run's own) and the world's held-out prompts, as files."""
    from prefopt.seeds import WORLD_EVAL_SEED, round_seed
    from prefopt.world import make_prompts

    folder.mkdir(parents=True, exist_ok=True)
    train, held = folder / "prompts.jsonl", folder.parent / f"eval-{n_eval}.jsonl"
    for path, prompts in ((train, make_prompts(n_train, seed=round_seed(seed, 0), split="train")),
                          (held, make_prompts(n_eval, seed=WORLD_EVAL_SEED, split="eval"))):
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
            tmp.replace(path)
    return train, held


def follows_goals(model, tokenizer, seeds, n_prompts: int, samples: int) -> dict:
    """The model's held-out reward under ``goal 10``, ``goal 1`` and no goal, per evaluation seed."""
    from prefopt.rounds.augment import goal_text
    from prefopt.rounds.evaluate import evaluate_reward
    from prefopt.seeds import WORLD_EVAL_SEED, eval_seed
    from prefopt.world import make_prompts
    from prefopt.world.tasks import MAX_NEW_TOKENS, reward

    prompts = make_prompts(n_prompts, seed=WORLD_EVAL_SEED, split="eval")
    out: dict[str, list[float]] = {"goal 10": [], "goal 1": [], "no goal": []}
    for seed in seeds:
        for name, score in (("goal 10", 10), ("goal 1", 1), ("no goal", None)):
            system = [{"role": "system", "content": goal_text(score, TEMPLATE)}] if score else []
            chats = [[*system, {"role": "user", "content": p}] for p in prompts]
            out[name].append(evaluate_reward(model, tokenizer, chats, reward, samples_per_prompt=samples,
                                             max_new_tokens=MAX_NEW_TOKENS, temperature=1.0,
                                             seed=eval_seed(seed))["mean"])
    return out
