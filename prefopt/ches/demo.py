"""Likelihood displacement on the tiny world, and how CHES finds the pairs that cause it.

    python -m prefopt.ches.demo [--out runs/ches_demo] [--plot PATH] [--steps 60]

Writes only under ``--out`` (summary.json, ches_demo.png) unless ``--plot`` names another path; the figure in
docs/ches.md is regenerated with ``--plot docs/img/ches_demo.png``.

1. Pairs on tiny-world prompts: the chosen response is the right answer; the rejected one is either the answer with
   one character changed ("near-identical") or a string of the other alphabet and length ("distinct").
2. Score every pair by LN-CHES with the base policy; take the highest- and the lowest-scoring quarter.
3. Train DPO separately on each subset from the same base policy (reference = a frozen copy; summed response-token
   log-probs; ``losses.dpo_loss``) and follow the mean log-probability of the chosen and rejected responses.

Razin et al. (2024, arXiv 2410.08847) predict that the chosen responses' log-probability falls on the high-CHES
subset (likelihood displacement) and not on the low-CHES one. ~1 min on CPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from losses import PreferenceLogps, dpo_loss
from prefopt.ches.score import ches_scores
from prefopt.data.tokenize import tokenize_list
from prefopt.tensors import pad_rows

DIGITS, LETTERS = "0123456789", "abcdefghijklmnopqrstuvwxyz"


@dataclass
class DemoConfig:
    pairs_per_group: int = 64   # near-identical pairs, and as many distinct ones
    subset: int = 32            # pairs in each of the high- and low-CHES training subsets
    steps: int = 60             # full-batch DPO steps per subset
    lr: float = 3e-4            # Adam; 1e-4 and 1e-3 show the same contrast (docs/ches.md)
    beta: float = 0.1
    seed: int = 0
    fall: float = 0.5           # nats: a mean change below -fall counts as the chosen log-prob falling


def _policy():
    """(model, tokenizer): the tiny world's base policy."""
    from prefopt.world import load_base_policy

    return load_base_policy()


def _world():
    from prefopt.world.tasks import make_prompts, solve

    return make_prompts, solve


def _change_one(answer: str, rng: random.Random) -> str:
    """The answer with one character replaced by another of its alphabet (the first differing position is random)."""
    alphabet = DIGITS if answer.isdigit() else LETTERS
    i = rng.randrange(len(answer))
    return answer[:i] + rng.choice(alphabet.replace(answer[i], "")) + answer[i + 1:]


def _unrelated(answer: str, rng: random.Random) -> str:
    """A string of the other alphabet and a different length: shares no character with the answer."""
    alphabet = LETTERS if answer.isdigit() else DIGITS
    length = rng.choice([n for n in range(2, 8) if n != len(answer)])
    return "".join(rng.choice(alphabet) for _ in range(length))


def demo_pairs(n_per_group: int = 64, seed: int = 0) -> tuple[list[dict[str, Any]], list[str]]:
    """Preference records on tiny-world prompts and the group of each ("near-identical" or "distinct").

    Prompts are chat messages; only answers of 3+ characters are used so one changed character leaves a long
    shared part (a one-character answer would make both groups alike).
    """
    make_prompts, solve = _world()
    rng = random.Random(f"prefopt-ches-demo/{seed}")
    prompts = [p for p in make_prompts(8 * n_per_group, seed=seed) if len(solve(p)) >= 3][: 2 * n_per_group]
    if len(prompts) < 2 * n_per_group:
        raise ValueError(f"demo: could not draw {2 * n_per_group} prompts with answers of 3+ characters")
    records, groups = [], []
    for i, prompt in enumerate(prompts):
        answer = solve(prompt)
        similar = i % 2 == 0
        rejected = _change_one(answer, rng) if similar else _unrelated(answer, rng)
        records.append({"prompt": [{"role": "user", "content": prompt}], "responses": [answer, rejected],
                        "scores": [1.0, 0.0], "weight": None, "segments": None,
                        "meta": {"source": "prefopt.ches.demo", "group": "near-identical" if similar else "distinct"}})
        groups.append("near-identical" if similar else "distinct")
    return records, groups


def demo_records() -> list[dict[str, Any]]:
    """The demo pairs (the CLI's default data)."""
    return demo_pairs()[0]


def _batch(tokenizer, records: list[dict[str, Any]]) -> dict[str, Tensor]:
    """Right-padded [c0, r0, c1, r1, ...] with a mask on the response tokens' label positions."""
    seqs, starts = [], []
    for r in records:
        tok = tokenize_list(tokenizer, r["prompt"], r["responses"])
        for response in tok.response_ids:
            seqs.append(tok.prompt_ids + response)
            starts.append(len(tok.prompt_ids))
    ids, attention = pad_rows(seqs, tokenizer.pad_token_id)                         # (2B, T), (2B, T)
    response = [[0] * start + [1] * (len(seq) - start) for seq, start in zip(seqs, starts, strict=True)]
    labels = pad_rows(response, 0)[0].bool()                                        # (2B, T) response tokens
    return {"input_ids": ids, "attention_mask": attention, "labels": labels}


def _logps(model, batch: dict[str, Tensor]) -> Tensor:
    """Summed response-token log-probs, (B, 2): column 0 chosen, column 1 rejected."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
    targets = batch["input_ids"][:, 1:]
    token_logps = logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (2B, T-1)
    summed = (token_logps * batch["labels"][:, 1:]).sum(-1)                              # (2B,)
    return summed.view(-1, 2)


def train_dpo(base, batch: dict[str, Tensor], cfg: DemoConfig) -> dict[str, list[float]]:
    """DPO from ``base`` on one subset; the mean change of the chosen/rejected log-probs at every step."""
    torch.manual_seed(cfg.seed)
    policy = copy.deepcopy(base).train()
    with torch.no_grad():
        ref = _logps(base.eval(), batch)                                                  # (B, 2), frozen
    scores = torch.tensor([[1.0, 0.0]]).expand_as(ref)
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    chosen, rejected = [], []
    for step in range(cfg.steps + 1):
        logps = _logps(policy, batch)
        delta = (logps.detach() - ref).mean(0)                                           # (2,)
        chosen.append(float(delta[0]))
        rejected.append(float(delta[1]))
        if step == cfg.steps:
            break
        loss = dpo_loss(PreferenceLogps(policy=logps, ref=ref, scores=scores), beta=cfg.beta).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return {"chosen": chosen, "rejected": rejected}


def plot(scores: Tensor, groups: list[str], curves: dict[str, dict[str, list[float]]], path: Path) -> None:
    """Three panels: LN-CHES by group, then the chosen and the rejected log-prob change during DPO on each subset."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(14, 4), dpi=100)
    FigureCanvasAgg(fig)  # no pyplot: the global backend is left alone
    hist, chosen, rejected = fig.subplots(1, 3)
    for group, color in (("near-identical", "tab:red"), ("distinct", "tab:blue")):
        hist.hist([s for s, g in zip(scores.tolist(), groups, strict=True) if g == group], bins=20, alpha=0.6,
                  color=color, label=f"{group} pairs")
    hist.set(xlabel="LN-CHES under the base policy", ylabel="pairs", title="LN-CHES of the demo pairs")
    hist.legend()
    for ax, key in ((chosen, "chosen"), (rejected, "rejected")):
        for name, color in (("high-CHES", "tab:red"), ("low-CHES", "tab:blue")):
            ax.plot(curves[name][key], color=color, label=f"DPO on the {name} subset")
        ax.axhline(0.0, color="gray", linewidth=0.8)
        ax.set(xlabel="DPO step", ylabel="mean change in log-prob (nats)", title=f"{key} responses")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def _world_fingerprint() -> str | None:
    """The base policy's build fingerprint (the demo's numbers belong to one build of the tiny world)."""
    try:
        from prefopt.world import world_paths

        return json.loads((Path(world_paths().model) / "world.json").read_text()).get("fingerprint")
    except (OSError, ValueError, ImportError, AttributeError):
        return None


def run(cfg: DemoConfig, out_dir: Path, plot_path: Path) -> dict[str, Any]:
    start = time.perf_counter()
    model, tokenizer = _policy()
    records, groups = demo_pairs(cfg.pairs_per_group, cfg.seed)
    prompts = [r["prompt"] for r in records]
    scores = ches_scores(model, tokenizer, prompts, [r["responses"][0] for r in records],
                         [r["responses"][1] for r in records])
    order = torch.argsort(scores, descending=True).tolist()
    subsets = {"high-CHES": order[: cfg.subset], "low-CHES": order[-cfg.subset:]}
    curves, summary = {}, {"config": asdict(cfg), "paper": "Razin et al., 2024, arXiv 2410.08847", "subsets": {}}
    for name, idx in subsets.items():
        curves[name] = train_dpo(model, _batch(tokenizer, [records[i] for i in idx]), cfg)
        summary["subsets"][name] = {
            "pairs": len(idx),
            "near_identical": sum(groups[i] == "near-identical" for i in idx),
            "ln_ches_mean": float(scores[idx].mean()),
            "chosen_logp_change": curves[name]["chosen"][-1],
            "rejected_logp_change": curves[name]["rejected"][-1],
            "chosen_logp_change_min": min(curves[name]["chosen"]),
        }
    by_group = {g: scores[[i for i, x in enumerate(groups) if x == g]] for g in ("near-identical", "distinct")}
    summary["ln_ches_by_group"] = {g: {"mean": float(s.mean()), "min": float(s.min()), "max": float(s.max())}
                                   for g, s in by_group.items()}
    high, low = (summary["subsets"][k]["chosen_logp_change"] for k in ("high-CHES", "low-CHES"))
    summary["displacement_shown"] = high < -cfg.fall <= low  # falls on the high-CHES subset, not on the low one
    summary["world_fingerprint"] = _world_fingerprint()
    summary["curves"] = curves
    summary["seconds"] = round(time.perf_counter() - start, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(scores, groups, curves, plot_path)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/ches_demo", help="folder for summary.json and the plot")
    parser.add_argument("--plot", default=None, help="where to write the PNG (default: OUT/ches_demo.png)")
    for field, default in asdict(DemoConfig()).items():
        parser.add_argument(f"--{field.replace('_', '-')}", type=type(default), default=default)
    args = parser.parse_args(argv)
    cfg = DemoConfig(**{k: getattr(args, k) for k in asdict(DemoConfig())})
    plot_path = Path(args.plot) if args.plot else Path(args.out) / "ches_demo.png"
    summary = run(cfg, Path(args.out), plot_path)
    for name, s in summary["subsets"].items():
        print(f"{name:9s} ({s['pairs']} pairs, {s['near_identical']} near-identical, mean LN-CHES "
              f"{s['ln_ches_mean']:+.3f}): chosen log-prob {s['chosen_logp_change']:+.3f}, "
              f"rejected {s['rejected_logp_change']:+.3f} nats after {cfg.steps} DPO steps")
    print(f"likelihood displacement on high-CHES and not on low-CHES: {summary['displacement_shown']} "
          f"({summary['seconds']} s); wrote {args.out}/summary.json and {plot_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
