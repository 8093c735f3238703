"""The learning rate a run will actually get: the lr of every param group at every optimizer step, replayed before
training.

`simulate` runs the loop model (`lightning_optim_recipes.cadence`) over a whole run with `Recording` effects: at each
optimizer step they write down every param group's lr (a `ScheduleRecord`), and they step the schedulers as
training will (a module's own ``lr_scheduler_step`` included). Optimizers never step: no parameter changes.
`preview_schedule` and the fit checks both read what it records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, TypedDict

from torch.optim.lr_scheduler import MultiStepLR

from lightning_optim_recipes import cadence, hooks
from lightning_optim_recipes._lightning import is_lightning_module
from lightning_optim_recipes.naming import optimizer_names
from lightning_optim_recipes.validation import OptimizerSetup

__all__ = ["Recording", "SchedulePreview", "ScheduleRecord", "loop_of", "simulate"]


class ScheduleRecord(TypedDict):
    """The lr one param group uses at one optimizer step.

    Attributes:
        step: the optimizer step, counted over the run from 0 (``trainer.global_step`` when it runs).
        epoch: the epoch it runs in.
        batch_idx: the dataloader batch it runs on, within the epoch.
        optimizer: the index of the optimizer in ``configure_optimizers``' order.
        group: the param group's ``'name'``, or ``'pgN'`` for the N-th group without one.
        lr: the learning rate of that group for that step.
        name: the name `LearningRateLogger` (and Lightning's `LearningRateMonitor`) logs that group's lr under,
            e.g. ``'lr-AdamW/decay'`` or ``'lr-Adam-1'``.
        role: under `AlternatingOptimizersMixin`, what the optimizer's step trains (``'critic'``), else None.
    """

    step: int
    epoch: int
    batch_idx: int
    optimizer: int
    group: str
    lr: float
    name: str
    role: Optional[str]


class SchedulePreview(list):  # type: ignore[type-arg]
    """What `preview_schedule` returns: a plain list of `ScheduleRecord` dicts, plus what a plot annotates.

    Attributes:
        max_epochs: the epochs previewed.
        steps_per_epoch: the training batches per epoch previewed.
        accumulate_grad_batches: the ``Trainer(accumulate_grad_batches=...)`` previewed.
        markers: ``{'step', 'optimizer', 'label'}`` dicts, one per MultiStepLR milestone reached and per warmup end
            (schedulers with a ``warmup_steps`` attribute, as `warmup_cosine` makes) and decay start
            (`warmup_stable_decay`): the first optimizer step that runs at the new lr.
        resume_report: for a resumed run (``resume_from=``), what the resume compared (a `ResumeReport`), else None.
        lengths: every length given in units (``'5%'``, ``'2ep'``), as written and resolved for this run
            (`lightning_optim_recipes.units.table`).
    """

    max_epochs: int
    steps_per_epoch: int
    accumulate_grad_batches: int
    markers: list[dict[str, Any]]
    resume_report: Any = None
    lengths: Sequence[dict[str, Any]] = ()


class Recording:
    """`cadence.Effects` that record the lr of every param group at every optimizer step and step the schedulers;
    optimizers never really step."""

    def __init__(self, model: Any, setup: OptimizerSetup, trainer: Any, preview: SchedulePreview) -> None:
        self.model, self.setup, self.trainer, self.preview = model, setup, trainer, preview
        roles = model.__dict__.get("_preview_roles") or getattr(model, "optimizer_roles", None)
        self.names = optimizer_names(setup.schedulers, setup.optimizers, roles)
        self.epoch = 0
        self._marked: set[tuple[int, str]] = set()

    def train(self, index: int, batch_idx: int, window: int, closes: bool) -> bool:
        return True

    def step(self, index: int, batch_idx: int, in_turn: bool) -> None:
        """Record the lrs optimizer `index` steps with, then count the step."""
        step = self.trainer.global_step
        for g, group in enumerate(self.setup.optimizers[index].param_groups):
            name = group.get("name")
            record: ScheduleRecord = {
                "step": step,
                "epoch": self.epoch,
                "batch_idx": batch_idx,
                "optimizer": index,
                "group": name if isinstance(name, str) else f"pg{g}",
                "lr": group["lr"],
                "name": self.names.groups[index][g] if g < len(self.names.groups[index]) else f"pg{g}",
                "role": self.names.roles[index],
            }
            self.preview.append(record)
        self._mark(index, step)
        self.trainer.global_step = step + 1

    def step_scheduler(self, index: int) -> None:
        spec = self.setup.schedulers[index]
        if spec.reduce_on_plateau:
            return
        if callable(getattr(self.model, "lr_scheduler_step", None)) and is_lightning_module(self.model):
            hooks.call(self.model, "lr_scheduler_step",
                         {"scheduler": spec.scheduler, "optimizer_idx": spec.optimizer_index, "metric": None})
        else:
            spec.scheduler.step()

    def _mark(self, index: int, step: int) -> None:
        for k, spec in enumerate(self.setup.schedulers):
            scheduler = spec.scheduler
            count = getattr(scheduler, "last_epoch", None)
            if spec.optimizer_index != index or not isinstance(count, int):
                continue
            labels = []
            if isinstance(scheduler, MultiStepLR) and count in scheduler.milestones:
                labels.append(f"milestone {count} ({spec.interval})")
            warmup = getattr(scheduler, "warmup_steps", None)
            if isinstance(warmup, int) and warmup > 0 and count == warmup - 1:
                labels.append("warmup end")
            decay_start = getattr(scheduler, "decay_start", None)  # warmup_stable_decay
            if isinstance(decay_start, int) and not isinstance(decay_start, bool) and count == decay_start:
                labels.append("decay start")
            for label in labels:
                if (k, label) not in self._marked:
                    self._marked.add((k, label))
                    self.preview.markers.append({"step": step, "optimizer": index, "label": label})


def loop_of(model: Any, setup: OptimizerSetup, trainer: Any) -> cadence.Loop:
    """The cadence of the run: the module's own (`AlternatingOptimizersMixin.training_cadence`), or Lightning's
    automatic optimization."""
    own = model.__dict__.get("_preview_cadence") or getattr(model, "training_cadence", None)
    if isinstance(own, cadence.Loop):
        return own
    timings = tuple(cadence.Timing(s.optimizer_index, s.interval, s.frequency, s.reduce_on_plateau)
                    for s in setup.schedulers)
    return cadence.Loop("automatic", 1, timings, accumulate=(trainer.accumulate_grad_batches,))


def simulate(model: Any, setup: OptimizerSetup, trainer: Any, preview: SchedulePreview) -> None:
    """Run the cadence model over the whole run with recording effects."""
    loop = loop_of(model, setup, trainer)
    effects = Recording(model, setup, trainer, preview)
    state = cadence.LoopState.fresh(loop.optimizers)
    batches = trainer.num_training_batches
    for epoch in range(trainer.max_epochs):
        trainer.current_epoch = effects.epoch = epoch
        for batch_idx in range(batches):
            cadence.run_batch(loop, state, batch_idx, batch_idx == batches - 1, effects)
        cadence.run_epoch_end(loop, epoch, effects)
    trainer.current_epoch = trainer.max_epochs

