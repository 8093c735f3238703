"""`HybridOptimizer.step` against the same two optimizers (torch's Muon and AdamW) stepped by hand.

Two copies of a GPT (TinyGPT's layout, embedding tied to the head; a 4 x 128 one, where Muon's Newton-Schulz
iterations dominate, and the 2 x 8 one of the tests, where any overhead of the wrapper would show), each with its Muon
and AdamW built from the same `muon_split`: one pair stepped as ``muon.step(); adamw.step()``, the other wrapped in a
`HybridOptimizer` and stepped as one, on the same fixed gradients, each step timed right after (or before) its
counterpart, in one process. Two forms: ``step()`` and ``step(closure)`` (the closure Lightning passes; here one that
only returns the loss, against calling it by hand before the two steps). Goal: ratio <= 1.02.

Times are CPU time of this process (``time.process_time``, one torch thread). Run:
``python benchmarks/hybrid_step.py [--repeats 7] [--steps 200]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch

from lightning_optim_recipes import HybridOptimizer, muon_split
from lightning_optim_recipes.catalogue._examples import TinyGPT

warnings.filterwarnings("ignore")


def _pair(size: dict[str, int]) -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = TinyGPT(**size)
    split = muon_split(model)
    muon = torch.optim.Muon(split.muon_groups(0.01), lr=0.02)
    adamw = torch.optim.AdamW(split.adamw_groups(0.01), lr=3e-4)
    g = torch.Generator().manual_seed(1)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=g) * 1e-3
    return model, muon, adamw


def _paired(hand, one, steps: int) -> tuple[float, float]:
    """CPU seconds of `steps` calls of each, alternating call by call (the order swapped every call)."""
    clock = time.process_time
    totals = [0.0, 0.0]
    for step in range(steps):
        for which in ((0, 1) if step % 2 == 0 else (1, 0)):
            f = hand if which == 0 else one
            start = clock()
            f()
            totals[which] += clock() - start
    return totals[0], totals[1]


SIZES = {
    "GPT 4 x 128, vocab 512": dict(vocab=512, dim=128, layers=4, heads=4, tokens=64),
    "TinyGPT 2 x 8, vocab 32": dict(),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"HybridOptimizer.step vs Muon.step() + AdamW.step() by hand ({args.steps} steps x {args.repeats} repeats,"
          " each step timed alternately with its counterpart; CPU time, 1 thread)")
    print(f"{'model':<24}  {'form':<14}  {'by hand (ms/step)':>17}  {'hybrid (ms/step)':>16}  {'ratio (median)':>14}")
    for label, size in SIZES.items():
        _, muon_a, adamw_a = _pair(size)
        _, muon_b, adamw_b = _pair(size)
        hybrid = HybridOptimizer([muon_b, adamw_b])
        loss = torch.tensor(1.0)

        def closure() -> torch.Tensor:
            return loss

        def by_hand() -> None:
            muon_a.step()
            adamw_a.step()

        def by_hand_closure() -> None:
            closure()
            muon_a.step()
            adamw_a.step()

        forms = {"step()": (by_hand, hybrid.step), "step(closure)": (by_hand_closure, lambda: hybrid.step(closure))}
        for name, (hand, one) in forms.items():
            _paired(hand, one, 5)  # warm up: states allocated, code paths cached
            runs = [_paired(hand, one, args.steps) for _ in range(args.repeats)]
            per_step = 1000 / args.steps
            print(f"{label:<24}  {name:<14}  {statistics.median(h for h, _ in runs) * per_step:>17.3f}"
                  f"  {statistics.median(o for _, o in runs) * per_step:>16.3f}"
                  f"  {statistics.median(o / h for h, o in runs):>14.3f}")


if __name__ == "__main__":
    main()
