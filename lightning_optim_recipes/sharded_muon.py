"""Muon's step for matrices sharded as DTensors (FSDP2's ``fully_shard``, tensor parallelism): each matrix's update
gathered whole for Newton-Schulz, then each rank keeps its own shard.

Newton-Schulz orthogonalizes the whole matrix: ``X @ X.T`` needs every row. torch's `Muon` runs on a DTensor, but
then each of its matrix products is a distributed one: about 15 collectives per matrix per step (5 iterations of 3
products), and each sums the ranks' partial products in bfloat16, a rounding the unsharded step does not make. Here
the momentum (kept sharded, as the parameter is) and the weight decay stay on each rank's shard, and the update is
gathered once (one all-gather per matrix per step), orthogonalized by torch's own ``_zeropower_via_newtonschulz`` on
every rank, and sliced back to the parameter's placement: the same numbers as the unsharded step. The elementwise
work runs on each rank's shards as plain tensors (``to_local``: the DTensors' own storage).
`lightning_optim_recipes.hybrid.FlatMuon` (what `hybrid_optimizer` builds for sharded matrices) steps its DTensor
parameters with `step_sharded`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import torch
from torch.optim import Optimizer

from lightning_optim_recipes.errors import warn
from lightning_optim_recipes.sharding import is_dtensor

__all__ = ["orthogonalized", "step_sharded", "warn_torch_muon_on_shards"]


def orthogonalized(update: torch.Tensor, group: Mapping[str, Any]) -> torch.Tensor:
    """torch's Newton-Schulz orthogonalization of the whole of `update` on its 2-D view ``(first dim, the rest)``,
    with `group`'s coefficients, steps and eps, returned in `update`'s shape (a DTensor: in its placement, each rank's
    shard; the gather is its only collective)."""
    from torch.optim._muon import _zeropower_via_newtonschulz

    whole = update.full_tensor() if is_dtensor(update) else update  # type: ignore[attr-defined]
    matrix = whole.reshape(whole.shape[0], -1)
    result = _zeropower_via_newtonschulz(matrix, group["ns_coefficients"], group["ns_steps"], group["eps"])
    result = result.reshape(whole.shape)
    if not is_dtensor(update):
        return result
    from torch.distributed.tensor import DTensor, Replicate

    mesh = update.device_mesh  # type: ignore[attr-defined]
    replicated = DTensor.from_local(result, mesh, [Replicate()] * mesh.ndim, run_check=False)
    return replicated.redistribute(mesh, update.placements)  # type: ignore[attr-defined]  # a local slice: no comm


@torch.no_grad()
def step_sharded(optimizer: Optimizer, group: MutableMapping[str, Any]) -> None:
    """torch's Muon step, for the DTensor parameters of `group` that have a gradient: momentum and Nesterov on the
    shards, the update orthogonalized whole (`orthogonalized`), the lr adjusted by the matrix's global shape
    (torch's ``_adjust_lr``), decoupled weight decay on the shards."""
    from torch.optim._muon import _adjust_lr

    lr = float(group["lr"])
    momentum, decay = group["momentum"], group["weight_decay"]
    for param in group["params"]:
        if param.grad is None or not is_dtensor(param):
            continue
        from torch.distributed.tensor import DTensor

        grad = param.grad
        state = optimizer.state[param]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(grad, memory_format=torch.preserve_format)
        # elementwise work on this rank's shards as plain tensors (the DTensors' own storage): no dispatch per op
        shard, buffer = grad.to_local(), state["momentum_buffer"].to_local()
        buffer.lerp_(shard, 1 - momentum)
        local = shard.lerp(buffer, momentum) if group["nesterov"] else buffer
        update = DTensor.from_local(local, grad.device_mesh, grad.placements, run_check=False, shape=grad.shape,
                                    stride=grad.stride())
        ortho = orthogonalized(update, group).to_local()  # type: ignore[attr-defined]
        adjusted = _adjust_lr(lr, group["adjust_lr_fn"], torch.Size((param.shape[0], math.prod(param.shape[1:]))))
        weights = param.to_local()
        weights.mul_(1 - lr * decay)
        weights.add_(ortho, alpha=-adjusted)


def warn_torch_muon_on_shards(optimizers: Iterable[Any]) -> None:
    """Warn (`RecipeWarning`) about torch's own `Muon` (a `HybridOptimizer`'s part included) holding DTensor
    matrices: it trains, but each Newton-Schulz product is a distributed one (see this module), slower and rounded
    where the unsharded step is not."""
    for optimizer in optimizers:
        for part in getattr(optimizer, "parts", (optimizer,)):
            if type(part) is not torch.optim.Muon:
                continue
            sharded = sum(1 for group in part.param_groups for p in group["params"] if is_dtensor(p))
            if sharded:
                warn(
                    f"torch.optim.Muon holds {sharded} matrices sharded as DTensors (FSDP2 or tensor parallelism):"
                    " its Newton-Schulz iteration then runs as distributed matrix products, about 15 collectives per"
                    " matrix and step, each summing the ranks' partial products in bfloat16 (on 2 CPU ranks, a 4 x 128"
                    " GPT: 7 to 11 times the time of the unsharded step, and weights 1e-3 away from it after 30 steps"
                    " at lr 0.02; `benchmarks/sharded_muon.py`). Use `FlatMuon` (lightning_optim_recipes.hybrid; what"
                    " `hybrid_optimizer` builds), which gathers each update whole once: the unsharded step's numbers"
                    " at about twice its time. If this is deliberate, silence it with"
                    " `warnings.filterwarnings('ignore', '.*torch.optim.Muon holds', RecipeWarning)`."
                )
