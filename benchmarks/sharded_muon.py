"""Muon on matrices sharded over 2 CPU ranks (gloo), as FSDP2 shards them: the cost and the numbers of each way.

Three ways to step the hidden matrices of a GPT (TinyGPT's layout, 4 x 128, 16 matrices) on the same gradients:

* ``replicated``: every rank holds whole matrices and steps torch's `Muon` on them (what DDP does): the reference;
* ``torch on DTensor``: torch's `Muon` on the DTensor shards as it is: each Newton-Schulz product is a distributed
  one (its partial products summed across the ranks in bfloat16);
* ``FlatMuon (gathered)``: what `hybrid_optimizer` builds for sharded matrices (`lightning_optim_recipes.sharded_muon`):
  the update gathered whole once per matrix, orthogonalized on every rank, each rank keeping its shard.

Printed: the wall time of a step of each (median over the steps, both ranks in step), its ratio to the replicated
one, the bytes each rank receives per step, and after the steps the largest difference of the weights from the
replicated ones. The ranks are 2 processes of this machine; one torch thread each. Run:
``python benchmarks/sharded_muon.py [--steps 30]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

warnings.filterwarnings("ignore")
PORT = "29517"


def _matrices() -> list[torch.Tensor]:
    from lightning_optim_recipes import muon_split
    from lightning_optim_recipes.catalogue._examples import TinyGPT

    torch.manual_seed(0)
    model = TinyGPT(vocab=512, dim=128, layers=4, heads=4, tokens=64)
    return [p.detach().clone() for p in muon_split(model).muon_params]


def _grads(shapes: list[torch.Size], step: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(100 + step)
    return [torch.randn(shape, generator=g) * 1e-3 for shape in shapes]


def _run(rank: int, steps: int, out: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=PORT)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    from lightning_optim_recipes.hybrid import FlatMuon

    mesh = init_device_mesh("cpu", (2,))
    start = _matrices()
    shapes = [m.shape for m in start]
    ways: dict[str, tuple[list[torch.nn.Parameter], torch.optim.Optimizer]] = {}
    for name, cls, sharded in (("replicated", torch.optim.Muon, False), ("torch on DTensor", torch.optim.Muon, True),
                               ("FlatMuon (gathered)", FlatMuon, True)):
        params = [torch.nn.Parameter(distribute_tensor(m.clone(), mesh, [Shard(0)]) if sharded else m.clone())
                  for m in start]
        ways[name] = (params, cls(params, lr=0.02, weight_decay=0.01))
    times: dict[str, list[float]] = {name: [] for name in ways}
    for step in range(steps):
        grads = _grads(shapes, step)
        for name, (params, optimizer) in ways.items():
            for p, g in zip(params, grads):
                p.grad = distribute_tensor(g, mesh, [Shard(0)]) if hasattr(p, "full_tensor") else g.clone()
            dist.barrier()
            clock = time.perf_counter()
            optimizer.step()
            dist.barrier()
            times[name].append(time.perf_counter() - clock)
    whole = {name: [p.full_tensor() if hasattr(p, "full_tensor") else p.detach() for p in params]
             for name, (params, _) in ways.items()}
    if rank == 0:
        reference = whole["replicated"]
        for name in ways:
            diff = max(float((a - b).abs().max()) for a, b in zip(whole[name], reference))
            out[name] = (statistics.median(times[name][2:]), diff)
    dist.barrier()
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_run, args=(args.steps, out), nprocs=2, join=True)
        results = dict(out)
    base = results["replicated"][0]
    matrices = _matrices()
    gathered = sum(m.numel() * 4 // 2 for m in matrices)  # each rank receives the other half of every update
    print(f"Muon on {len(matrices)} matrices of a 4 x 128 GPT over 2 CPU ranks (gloo), {args.steps} steps")
    print(f"{'way':<22}{'ms/step':>9}{'ratio':>8}{'max |w - replicated|':>22}")
    for name, (seconds, diff) in results.items():
        print(f"{name:<22}{seconds * 1e3:>9.2f}{seconds / base:>8.2f}{diff:>22.3g}")
    print(f"FlatMuon gathers {gathered / 1e6:.2f} MB per rank and step (one all-gather per matrix).")


if __name__ == "__main__":
    sys.exit(main())
