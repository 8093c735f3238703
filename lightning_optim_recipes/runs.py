"""What a run will do, as the Trainer is configured: its sizes, and how many times each scheduler will step.

`run_of` reads the Trainer (epochs, batches per epoch after ``limit_train_batches`` and devices, accumulation,
``max_steps``) and replays one epoch of the loop model (`lightning_optim_recipes.cadence`), so accumulation,
frequencies and the alternating mixin's turns are counted as training will count them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional, Union

from lightning_optim_recipes import cadence
from lightning_optim_recipes.validation import OptimizerSetup

__all__ = ["Run", "run_of"]


#: At most this many batches of an epoch are replayed to count its steps (longer epochs are scaled).
_REPLAYED_BATCHES = 20_000


@dataclasses.dataclass(frozen=True)
class Run:
    """What a run will do, as the Trainer is configured.

    Attributes:
        max_epochs, batches, accumulate, devices, max_steps: the Trainer's sizes (`batches` per epoch and device).
        epochs: the epochs that run fully before ``max_steps`` ends training (may be fractional).
        scheduler_steps: per scheduler, how many times training will step it (None: unknown).
        per_epoch: per scheduler, its steps in one epoch (the tolerance of the checks).
        optimizer_steps_per_epoch, optimizer_steps: per optimizer, its steps in one epoch and over the run.
        limit_train_batches: the Trainer's, for messages.
        loop: the loop model the counts come from.
    """

    max_epochs: int
    batches: Optional[int]
    accumulate: int
    devices: int
    max_steps: int
    epochs: float
    scheduler_steps: tuple[Optional[int], ...]
    per_epoch: tuple[Optional[float], ...]
    optimizer_steps_per_epoch: tuple[int, ...] = ()
    limit_train_batches: Union[int, float] = 1.0
    optimizer_steps: tuple[int, ...] = ()  # per optimizer, its steps over the run
    loop: Optional[cadence.Loop] = None  # the loop model the counts come from


def run_of(setup: OptimizerSetup, trainer: Any, loop: Optional[cadence.Loop] = None) -> Optional[Run]:
    """How many times each scheduler of `setup` will step when `trainer` fits (None when the run has no end)."""
    max_epochs = getattr(trainer, "max_epochs", None)
    max_steps = getattr(trainer, "max_steps", -1)
    if max_steps is None:
        max_steps = -1
    if max_epochs is None or (isinstance(max_epochs, int) and max_epochs < 0):
        max_epochs = -1  # until max_steps
    bounded = max_epochs >= 0 or max_steps > 0
    batches = getattr(trainer, "num_training_batches", None)
    if batches == float("inf") and hasattr(trainer, "fit_loop") and bounded:
        try:  # Lightning sizes the epoch when the loader is set up, as `estimated_stepping_batches` does it (which
            # skips it for a run sized by max_steps alone: `Trainer(max_epochs=-1, max_steps=N)`)
            if max_epochs < 0 and getattr(trainer, "train_dataloader", None) is None:
                trainer.fit_loop.setup_data()
            else:
                trainer.estimated_stepping_batches  # noqa: B018
        except Exception:  # noqa: BLE001 - no loader yet (e.g. a datamodule set up later): no check then
            return None
        batches = trainer.num_training_batches
    if not isinstance(batches, int) or batches <= 0 or not isinstance(max_epochs, int) or not bounded:
        return None
    accumulate = int(getattr(trainer, "accumulate_grad_batches", 1) or 1)
    timings = tuple(cadence.Timing(s.optimizer_index, s.interval, s.frequency, s.reduce_on_plateau)
                    for s in setup.schedulers)
    if loop is None:
        loop = cadence.Loop("automatic", max(len(setup.optimizers), 1), timings, accumulate=(accumulate,))
    counter = cadence.Counter(loop.optimizers, len(setup.schedulers))
    state = cadence.LoopState.fresh(loop.optimizers)
    replayed = min(batches, _REPLAYED_BATCHES)
    for batch_idx in range(replayed):
        last = batch_idx == batches - 1 or batch_idx == replayed - 1
        cadence.run_batch(loop, state, batch_idx, last, counter)
    scale = batches / replayed
    global_per_epoch = sum(counter.optimizer_steps) * scale
    epochs = float(max_epochs) if max_epochs >= 0 else math.inf
    if max_steps is not None and max_steps > 0 and global_per_epoch > 0:
        epochs = min(epochs, max_steps / global_per_epoch)
    if not math.isfinite(epochs):
        return None
    if max_epochs < 0:
        max_epochs = math.ceil(epochs)
    steps, per_epoch = [], []
    for spec, count in zip(setup.schedulers, counter.scheduler_steps):
        if spec.interval == "epoch":
            per_epoch.append(1.0 / spec.frequency)
            steps.append(int(math.floor(epochs)) // spec.frequency)
        else:
            per_epoch.append(count * scale)
            steps.append(int(round(count * scale * epochs)))
    limit = getattr(trainer, "limit_train_batches", 1.0)
    per_optimizer = tuple(int(round(s * scale)) for s in counter.optimizer_steps)
    return Run(max_epochs, batches, accumulate, int(getattr(trainer, "world_size", 1) or 1), max_steps, epochs,
               tuple(steps), tuple(per_epoch), per_optimizer, limit if isinstance(limit, (int, float)) else 1.0,
               tuple(int(round(p * epochs)) for p in per_optimizer), loop)

