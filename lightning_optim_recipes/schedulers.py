"""Schedulers with an explicit cadence: `scheduled` and factories returning the dicts Lightning accepts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, TypedDict

from torch.optim import Optimizer
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LRScheduler,
    MultiStepLR,
    ReduceLROnPlateau,
)

from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.schedules import warmup_cosine_schedule

__all__ = ["INTERVALS", "SchedulerDict", "cosine", "exponential", "multistep", "scheduled", "warmup_cosine"]

#: The only two cadences Lightning knows.
INTERVALS = ("step", "epoch")


class SchedulerDict(TypedDict, total=False):
    """The scheduler dict of Lightning's ``configure_optimizers`` (see `LRSchedulerConfig`)."""

    scheduler: Any
    interval: str
    frequency: int
    name: str
    monitor: str
    strict: bool


def scheduled(
    scheduler: Any,
    *,
    interval: str = "epoch",
    frequency: int = 1,
    monitor: Optional[str] = None,
    name: Optional[str] = None,
    strict: bool = True,
) -> SchedulerDict:
    """Wrap `scheduler` in the dict Lightning accepts, with its cadence checked.

    Args:
        scheduler: a torch scheduler.
        interval: ``'step'`` (after every optimizer step) or ``'epoch'`` (at the end of every epoch).
        frequency: step it every `frequency` intervals.
        monitor: the logged metric a `ReduceLROnPlateau` reads (required for it).
        name: the name learning-rate loggers use.
        strict: whether a missing `monitor` metric stops training (ReduceLROnPlateau only).

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        >>> config = scheduled(torch.optim.lr_scheduler.ExponentialLR(opt, 0.9), interval="step", name="lr-sgd")
        >>> sorted(config)
        ['frequency', 'interval', 'name', 'scheduler']
    """
    if isinstance(scheduler, Optimizer) or (
        not isinstance(scheduler, (LRScheduler, ReduceLROnPlateau)) and not hasattr(scheduler, "step")
    ):
        raise RecipeError(
            f"`scheduled` takes a torch lr scheduler (e.g. `MultiStepLR(optimizer, ...)`), got {type(scheduler).__name__}."
        )
    check_interval(interval)
    check_frequency(frequency)
    config: SchedulerDict = {"scheduler": scheduler, "interval": interval, "frequency": frequency}
    if name is not None:
        if not isinstance(name, str) or not name:
            raise RecipeError(f"`name` must be a non-empty string, got {name!r}.")
        config["name"] = name
    if isinstance(scheduler, ReduceLROnPlateau):
        if not isinstance(monitor, str) or not monitor:
            raise RecipeError(
                "A `ReduceLROnPlateau` scheduler needs the metric to watch: pass `monitor='val_loss'` (a name your"
                f" module logs with `self.log`), got monitor={monitor!r}."
            )
        if not isinstance(strict, bool):
            raise RecipeError(f"`strict` must be True or False, got {strict!r}.")
        config["monitor"] = monitor
        config["strict"] = strict
    elif monitor is not None:
        raise RecipeError(
            f"`monitor` is read only by `ReduceLROnPlateau`, not by {type(scheduler).__name__}: remove `monitor`."
        )
    return config


def check_interval(interval: Any, where: str = "`interval`") -> None:
    """Raise `RecipeError` unless `interval` is 'step' or 'epoch'."""
    if interval not in INTERVALS:
        hint = " Use 'step' for a per-batch schedule." if interval in ("batch", "iteration", "iter", "steps") else ""
        hint = hint or (" Use 'epoch'." if interval == "epochs" else "")
        raise RecipeError(f"{where} must be 'step' or 'epoch', got {interval!r}.{hint}")


def check_frequency(frequency: Any, where: str = "`frequency`") -> None:
    """Raise `RecipeError` unless `frequency` is a positive int."""
    if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 1:
        raise RecipeError(f"{where} must be a positive int (1 = every interval), got {frequency!r}.")


def multistep(
    optimizer: Optimizer,
    milestones: Sequence[int],
    gamma: float = 0.1,
    interval: str = "epoch",
    *,
    frequency: int = 1,
    name: Optional[str] = None,
) -> SchedulerDict:
    """Multiply the lr by `gamma` at each of the `milestones` (counted in `interval` units).

    Example:
        >>> import torch
        >>> opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
        >>> config = multistep(opt, milestones=[2000], gamma=0.5)  # halve the lr after 2000 epochs, then keep it
        >>> config["interval"], config["scheduler"].milestones
        ('epoch', Counter({2000: 1}))
    """
    if isinstance(milestones, (int, str)) or not all(
        isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in milestones
    ):
        raise RecipeError(f"`milestones` must be a list of positive ints such as [30, 80], got {milestones!r}.")
    if list(milestones) != sorted(milestones):
        raise RecipeError(f"`milestones` must be increasing, got {list(milestones)}.")
    _check_gamma(gamma)
    return scheduled(MultiStepLR(optimizer, list(milestones), gamma), interval=interval, frequency=frequency, name=name)


def exponential(
    optimizer: Optimizer,
    gamma: float,
    interval: str = "epoch",
    *,
    frequency: int = 1,
    name: Optional[str] = None,
) -> SchedulerDict:
    """Multiply the lr by `gamma` every interval.

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        >>> exponential(opt, gamma=0.99, interval="step")["interval"]
        'step'
    """
    _check_gamma(gamma)
    return scheduled(ExponentialLR(optimizer, gamma), interval=interval, frequency=frequency, name=name)


def cosine(
    optimizer: Optimizer,
    t_max: int,
    eta_min: float = 0.0,
    interval: str = "epoch",
    *,
    frequency: int = 1,
    name: Optional[str] = None,
) -> SchedulerDict:
    """Cosine annealing from the optimizer's lr to `eta_min` over `t_max` intervals (`CosineAnnealingLR`).

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        >>> cosine(opt, t_max=10)["scheduler"].T_max
        10
    """
    if isinstance(t_max, bool) or not isinstance(t_max, int) or t_max < 1:
        raise RecipeError(f"`t_max` must be a positive int (intervals to anneal over), got {t_max!r}.")
    return scheduled(CosineAnnealingLR(optimizer, t_max, eta_min), interval=interval, frequency=frequency, name=name)


def warmup_cosine(
    optimizer: Optimizer,
    *,
    warmup_steps: int,
    total_steps: Optional[int] = None,
    min_lr: float = 0.0,
    trainer: Any = None,
    name: Optional[str] = None,
) -> SchedulerDict:
    """Linear warmup to the optimizer's lr, then cosine down to `min_lr` at the last optimizer step (interval 'step').

    `min_lr` is absolute for groups that use the optimizer's default lr; groups with their own lr keep their ratio
    to it. ``total_steps=None`` reads ``trainer.estimated_stepping_batches`` (inside ``configure_optimizers``, pass
    ``trainer=self.trainer``).

    Example:
        >>> import torch
        >>> opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        >>> sched = warmup_cosine(opt, warmup_steps=2, total_steps=5)["scheduler"]
        >>> lrs = []
        >>> for _ in range(5):
        ...     lrs.append(round(opt.param_groups[0]["lr"], 3)); opt.step(); sched.step()
        >>> lrs
        [0.5, 1.0, 0.75, 0.25, 0.0]
    """
    if total_steps is None:
        total_steps = _total_steps_from(trainer)
    base_lr = optimizer.defaults.get("lr")
    if not isinstance(base_lr, (int, float)) or base_lr <= 0:
        raise RecipeError(
            f"`warmup_cosine` needs the optimizer's default lr to place `min_lr`, got lr={base_lr!r}:"
            f" construct {type(optimizer).__name__} with `lr=`."
        )
    if isinstance(min_lr, bool) or not isinstance(min_lr, (int, float)) or not 0 <= min_lr <= base_lr:
        raise RecipeError(f"`min_lr` must be between 0 and the optimizer's lr ({base_lr}), got {min_lr!r}.")
    schedule = warmup_cosine_schedule(warmup_steps, total_steps, final=min_lr / base_lr)
    scheduler = LambdaLR(optimizer, schedule)
    scheduler.warmup_steps = warmup_steps  # type: ignore[attr-defined]  # read by previews and unit checks
    scheduler.total_steps = total_steps  # type: ignore[attr-defined]
    return scheduled(scheduler, interval="step", name=name)


def _total_steps_from(trainer: Any) -> int:
    if trainer is None:
        raise RecipeError(
            "`warmup_cosine` needs the length of training: pass `total_steps=`, or `trainer=self.trainer` inside"
            " `configure_optimizers` to use `trainer.estimated_stepping_batches`."
        )
    total = trainer.estimated_stepping_batches
    if not isinstance(total, (int, float)) or total == float("inf") or total < 1:
        raise RecipeError(
            f"`trainer.estimated_stepping_batches` is {total!r}, so the schedule has no end: set `max_steps` or"
            " `max_epochs` on the Trainer, or pass `total_steps=`."
        )
    return int(total)


def _check_gamma(gamma: Any) -> None:
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or gamma <= 0:
        raise RecipeError(f"`gamma` must be a positive number (the lr multiplier), got {gamma!r}.")
