"""Forward + backward time of every registered loss on CPU, float32, B = 64 lists of K = 8 responses of T = 128 tokens.

Run from the repository root:

    python -m benchmarks.losses                 # median of 50 runs per loss
    python -m benchmarks.losses --runs 200 --threads 1
    python benchmarks/losses.py                 # works too

Inputs are built from each loss's declared needs (token tensors, segments, token KL, weight) exactly as the trainer
would build them, so a token-level loss pays for its (B, K, T) tensors and a pairwise loss does not.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

# Run as a script, this file (benchmarks/losses.py) would shadow the ``losses`` package: drop its folder from the path.
if os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

from losses import LOSSES, LossSpec, PreferenceLogps  # noqa: E402


def make_inputs(spec: LossSpec, B: int, K: int, T: int, seed: int = 0) -> tuple[PreferenceLogps, list[torch.Tensor]]:
    """Random consistent inputs (policy = masked sum of policy_tokens) and the leaves that receive gradients."""
    K = 2 if spec.unpaired else K  # KTO: [the labelled response, a mismatched one], the label in weight
    g = torch.Generator().manual_seed(seed)
    token_mask = torch.arange(T) < torch.randint(T // 2, T + 1, (B, K, 1), generator=g)  # (B, K, T)
    policy_tokens = (-torch.rand(B, K, T, generator=g) * 2).requires_grad_(spec.needs_tokens)
    ref_tokens = -torch.rand(B, K, T, generator=g) * 2
    token_kl = (torch.rand(B, K, T, generator=g) * 0.1).requires_grad_(spec.needs_token_kl)
    policy = torch.where(token_mask, policy_tokens.detach(), 0.0).sum(-1).requires_grad_(True)  # (B, K)
    x = PreferenceLogps(
        policy=policy,
        ref=torch.where(token_mask, ref_tokens, 0.0).sum(-1) if spec.needs_ref else None,
        scores=torch.stack([torch.randperm(K, generator=g) for _ in range(B)]).float(),
        weight=((torch.rand(B, generator=g) > 0.5).float() if spec.unpaired else torch.rand(B, generator=g))
        if spec.uses_weight else None,
        lengths=token_mask.sum(-1),
        policy_tokens=policy_tokens if spec.needs_tokens else None,
        ref_tokens=ref_tokens if spec.needs_tokens else None,
        token_mask=token_mask if spec.needs_tokens else None,
        segments=torch.randint(0, 3, (B, K, T), generator=g) if spec.needs_segments else None,
        token_kl=token_kl if spec.needs_token_kl else None,
    )
    leaves = [t for t in (policy, x.policy_tokens, x.token_kl) if t is not None and t.requires_grad]
    return x, leaves


def time_loss(spec: LossSpec, x: PreferenceLogps, leaves: list[torch.Tensor], runs: int) -> float:
    """Median milliseconds of loss(x).mean().backward(), after a few warm-up runs."""
    times = []
    for i in range(runs + 5):
        for leaf in leaves:
            leaf.grad = None
        start = time.perf_counter()
        spec(x).mean().backward()
        if i >= 5:
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--B", type=int, default=64)
    parser.add_argument("--K", type=int, default=8)
    parser.add_argument("--T", type=int, default=128)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, float32, "
          f"B={args.B} K={args.K} T={args.T}, median of {args.runs} runs")
    print(f"{'loss':<14}{'inputs':<34}{'fwd+bwd ms':>12}")
    for name in sorted(LOSSES):
        spec = LOSSES[name]
        x, leaves = make_inputs(spec, args.B, args.K, args.T)
        needs = ", ".join(n for n, on in (("ref", spec.needs_ref), ("tokens", spec.needs_tokens),
                                           ("segments", spec.needs_segments), ("token_kl", spec.needs_token_kl),
                                           ("weight", spec.uses_weight)) if on)
        print(f"{name:<14}{needs:<34}{time_loss(spec, x, leaves, args.runs):>12.3f}")


if __name__ == "__main__":
    main()
