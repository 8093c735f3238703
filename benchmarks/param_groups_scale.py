"""`param_groups` is linear in the number of parameter tensors: time per tensor for 10k, 30k and 100k tensors.

The model is a deep stack of tiny Linear(2, 2) + LayerNorm(2) blocks (4 parameter tensors each), so building it is
cheap and the measured time is the grouping itself. Also timed: grouping with `overrides` (glob patterns),
`check_param_groups` plus `validate_optimizers` on the result (what `OptimRecipeMixin` runs before training), and as
a baseline torch's own walk over the model (`named_modules` + `named_parameters`), which any grouping must do: a
larger heap makes every pointer chase a little slower (CPU caches), so the honest test of linearity is that the
ratio of `param_groups` to that baseline does not grow. Times are CPU times of this process (best of 3), so other
processes on the machine disturb them less.

Run: python benchmarks/param_groups_scale.py [--quick]
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable

import torch
from torch import nn

from lightning_optim_recipes import check_param_groups, param_groups, validate_optimizers

SIZES = (10_000, 30_000, 100_000)


def stack(tensors: int) -> nn.Sequential:
    """`tensors // 4` blocks of Linear(2, 2) + LayerNorm(2), with no parameter initialization cost to speak of."""
    with torch.device("meta"):  # no storage: only the module tree and its Parameter objects are built
        return nn.Sequential(*(nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)) for _ in range(tensors // 4)))


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def torch_walk(model: nn.Module) -> set[int]:
    """The traversal every grouping needs: each module's own parameters, once each."""
    seen = set()
    for _, owner in model.named_modules():
        for _, param in owner.named_parameters(recurse=False):
            seen.add(id(param))
    return seen


def main(quick: bool = False) -> dict[str, list[float]]:
    sizes = SIZES[:2] if quick else SIZES
    overrides = {"0": {"lr": 1e-4}, "1*": {"lr": 1e-3}, "*.1": {"weight_decay": 0.0}}
    rows: dict[str, list[float]] = {
        "torch walk": [], "param_groups": [], "param_groups + overrides": [], "check + validate": []
    }
    print("CPU microseconds per parameter tensor")
    print(f"{'tensors':>8} {'torch walk':>11} {'param_groups':>13} {'+ overrides':>12} {'check + validate':>17}"
          f" {'param_groups / walk':>20}")
    for n in sizes:
        model = stack(n)
        assert sum(1 for _ in model.parameters()) == n
        walk = best_of(3, lambda: torch_walk(model))
        plain = best_of(3, lambda: param_groups(model, weight_decay=0.05))
        with_overrides = best_of(3, lambda: param_groups(model, weight_decay=0.05, overrides=overrides))
        groups = param_groups(model, weight_decay=0.05)
        optimizer = torch.optim.SGD(groups, lr=0.1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            checked = best_of(3, lambda: (check_param_groups(groups, model), validate_optimizers(optimizer, model)))
        for key, seconds in zip(rows, (walk, plain, with_overrides, checked)):
            rows[key].append(seconds / n * 1e6)
        print(f"{n:>8} {rows['torch walk'][-1]:>11.2f} {rows['param_groups'][-1]:>13.2f}"
              f" {rows['param_groups + overrides'][-1]:>12.2f} {rows['check + validate'][-1]:>17.2f}"
              f" {plain / walk:>20.2f}")
    for key, per_tensor in rows.items():
        growth = per_tensor[-1] / per_tensor[0]
        print(f"{key}: time per tensor at {sizes[-1]:,} / at {sizes[0]:,} tensors = {growth:.2f}x")
    return rows


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
