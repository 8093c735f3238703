"""`HybridOptimizer.step` against the same two optimizers (torch's Muon and AdamW) stepped by hand.

Two copies of a small GPT (TinyGPT's layout: 4 blocks, width 128, a 512-token vocabulary, embedding tied to the
head), each with its Muon and AdamW built from the same `muon_split`: one pair stepped as ``muon.step();
adamw.step()``, the other wrapped in a `HybridOptimizer` and stepped as one, on the same fixed gradients, in
interleaved repeats in one process. Two forms: ``step()`` and ``step(closure)`` (the closure Lightning passes; here
one that only returns the loss, against calling it by hand before the two steps). Goal: ratio <= 1.02.

Times are CPU time of this process (``time.process_time``, one torch thread). Run:
``python benchmarks/hybrid_step.py [--repeats 9] [--steps 200]``.
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


def _pair() -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = TinyGPT(vocab=512, dim=128, layers=4, heads=4, tokens=64)
    split = muon_split(model)
    muon = torch.optim.Muon(split.muon_groups(0.01), lr=0.02)
    adamw = torch.optim.AdamW(split.adamw_groups(0.01), lr=3e-4)
    g = torch.Generator().manual_seed(1)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=g) * 1e-3
    return model, muon, adamw


def _time(step, steps: int) -> float:
    start = time.process_time()
    for _ in range(steps):
        step()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    _, muon_a, adamw_a = _pair()
    _, muon_b, adamw_b = _pair()
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

    forms = {
        "step()": (by_hand, hybrid.step),
        "step(closure)": (by_hand_closure, lambda: hybrid.step(closure)),
    }
    for hand, one in forms.values():  # warm up: states allocated, code paths cached
        _time(hand, 5)
        _time(one, 5)
    print(f"HybridOptimizer.step vs Muon.step() + AdamW.step() by hand ({args.steps} steps x {args.repeats}"
          " interleaved repeats, CPU time, 1 thread)")
    print(f"{'form':<14}  {'by hand (ms/step)':>17}  {'hybrid (ms/step)':>16}  {'ratio (median)':>14}")
    for name, (hand, one) in forms.items():
        ratios, hand_times, one_times = [], [], []
        for repeat in range(args.repeats):
            order = (hand, one) if repeat % 2 == 0 else (one, hand)
            times = {id(f): _time(f, args.steps) for f in order}
            hand_times.append(times[id(hand)])
            one_times.append(times[id(one)])
            ratios.append(times[id(one)] / times[id(hand)])
        per_step = 1000 / args.steps
        print(f"{name:<14}  {statistics.median(hand_times) * per_step:>17.3f}"
              f"  {statistics.median(one_times) * per_step:>16.3f}  {statistics.median(ratios):>14.3f}")


if __name__ == "__main__":
    main()
