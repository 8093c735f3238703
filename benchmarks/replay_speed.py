"""The trajectory check's cost before training: a 1,000,000-optimizer-step run with 10 param groups.

What is timed is `fit_checks.check_before_training`, the whole check every entry point runs before the first step
(the run's sizes, the declared lengths, the replay of each scheduler on copies, the shape checks), on a run of 1,000
epochs x 1,000 optimizer steps (interval 'step'), for torch's schedulers, transformers' (when installed) and the
library's. The run's sizes come from the preview's stand-in Trainer, so no training loop is built.

The anchor, run in the same process, is the naive replay: a deep copy of the same scheduler stepped once per
optimizer step, as a check that replays step by step would do. It is timed over its first 20,000 steps and scaled to
the run (its cost per step is flat), so the table shows how many times cheaper the check is than that replay. The
check's own budget (issue 17) is 1 s for such a run; a scheduler class that can only be replayed step by step stops
after `curves.TIME_BUDGET` seconds.

Times are CPU times of this process, the best of 3 rounds, the garbage collector paused while timing.

Run: python benchmarks/replay_speed.py [--quick]
"""

from __future__ import annotations

import copy
import gc
import logging
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    PolynomialLR,
    SequentialLR,
)

from lightning_optim_recipes import validate_optimizers, warmup_cosine, warmup_multistep, warmup_stable_decay
from lightning_optim_recipes.fit_checks import check_before_training
from lightning_optim_recipes.standin import StandInTrainer

EPOCHS, PER_EPOCH, GROUPS = 1_000, 1_000, 10
STEPS = EPOCHS * PER_EPOCH
ANCHOR_STEPS = 20_000

for _logger in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric"):
    logging.getLogger(_logger).setLevel(logging.WARNING)


def optimizer() -> torch.optim.Optimizer:
    groups = [{"params": [nn.Parameter(torch.zeros(1))], "lr": 1e-3 * (1 + g / 10)} for g in range(GROUPS)]
    return torch.optim.AdamW(groups, lr=1e-3)


def trainer() -> Any:
    class _Run:  # what the library's factories read inside `configure_optimizers`
        estimated_stepping_batches, num_training_batches, accumulate_grad_batches, max_epochs = \
            STEPS, PER_EPOCH, 1, EPOCHS

    return _Run()


class HalvingEvery(torch.optim.lr_scheduler.LRScheduler):
    """A user's own scheduler with a recursive `get_lr`: no formula to evaluate, so it is replayed step by step."""

    def __init__(self, optimizer: torch.optim.Optimizer, every: int) -> None:
        self.every = every
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        halve = self.last_epoch > 0 and self.last_epoch % self.every == 0
        return [group["lr"] * (0.5 if halve else 1.0) for group in self.optimizer.param_groups]


def transformers_cases() -> dict[str, Callable[[torch.optim.Optimizer], Any]]:
    try:
        import transformers
    except ImportError:
        return {}
    return {
        "transformers cosine with warm-up": lambda o: transformers.get_cosine_schedule_with_warmup(o, 2_000, STEPS),
        "transformers linear with warm-up": lambda o: transformers.get_linear_schedule_with_warmup(o, 2_000, STEPS),
    }


CASES: dict[str, Callable[[torch.optim.Optimizer], Any]] = {
    "torch CosineAnnealingLR": lambda o: CosineAnnealingLR(o, T_max=STEPS),
    "torch OneCycleLR": lambda o: OneCycleLR(o, max_lr=[g["lr"] for g in o.param_groups], total_steps=STEPS),
    "torch LinearLR then CosineAnnealingLR (SequentialLR)": lambda o: SequentialLR(
        o, [LinearLR(o, 0.01, 1.0, 2_000), CosineAnnealingLR(o, T_max=STEPS - 2_000)], milestones=[2_000]),
    "torch MultiStepLR": lambda o: MultiStepLR(o, milestones=[STEPS // 2, STEPS * 3 // 4]),
    "torch ExponentialLR": lambda o: ExponentialLR(o, gamma=0.999_995),
    "torch PolynomialLR": lambda o: PolynomialLR(o, total_iters=STEPS, power=2.0),
    **transformers_cases(),
    "library warmup_cosine": lambda o: warmup_cosine(o, warmup_steps=2_000, trainer=trainer())["scheduler"],
    "library warmup_stable_decay": lambda o: warmup_stable_decay(o, warmup=2_000, decay="20%",
                                                                 trainer=trainer())["scheduler"],
    "library warmup_multistep": lambda o: warmup_multistep(o, milestones=[500, 750], warmup_steps=2_000,
                                                           trainer=trainer())["scheduler"],
    "a user's own LRScheduler (step by step, bounded)": lambda o: HalvingEvery(o, every=200_000),
}


def cpu_seconds(work: Callable[[], Any], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        gc.disable()
        try:
            start = time.process_time()
            work()
            best = min(best, time.process_time() - start)
        finally:
            gc.enable()
    return best


def check(make: Callable[[torch.optim.Optimizer], Any]) -> Callable[[], None]:
    opt = optimizer()
    setup = validate_optimizers({"optimizer": opt, "lr_scheduler": {"scheduler": make(opt), "interval": "step"}})
    stand_in = StandInTrainer(EPOCHS, PER_EPOCH, 1)
    return lambda: check_before_training(setup, stand_in)


def naive(make: Callable[[torch.optim.Optimizer], Any], steps: int) -> Callable[[], None]:
    opt = optimizer()
    scheduler = make(opt)

    def replay() -> None:
        copied = copy.deepcopy(scheduler)
        for _ in range(steps):
            copied.step()

    return replay


def main(quick: bool = False) -> None:
    warnings.simplefilter("ignore")
    rounds = 1 if quick else 3
    anchor_steps = 2_000 if quick else ANCHOR_STEPS
    print(f"The check before training on a run of {STEPS:,} optimizer steps x {GROUPS} param groups"
          f" (CPU seconds, best of {rounds}):\n")
    print(f"{'scheduler':<54}{'check':>9}{'naive replay':>15}{'ratio':>9}")
    for label, make in CASES.items():
        checked = cpu_seconds(check(make), rounds)
        replayed = cpu_seconds(naive(make, anchor_steps), rounds) * STEPS / anchor_steps
        print(f"{label:<54}{checked:>8.3f}s{replayed:>14.1f}s{checked / replayed:>9.4f}")
    print("\nratio: the check's time over the naive replay's (a deep copy stepped once per optimizer step, timed over"
          f" its first {anchor_steps:,} steps and scaled to the run).")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
