"""Schedulers with an explicit cadence: `scheduled` and factories returning the dicts Lightning accepts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Optional, TypedDict, Union

from torch.optim import Optimizer
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LRScheduler,
    MultiStepLR,
    ReduceLROnPlateau,
)

from lightning_optim_recipes.errors import RecipeError, warn
from lightning_optim_recipes.schedules import join, linear, piecewise_constant, warmup_schedule
from lightning_optim_recipes.schedules import warmup_stable_decay_schedule

__all__ = [
    "INTERVALS",
    "SchedulerDict",
    "cosine",
    "exponential",
    "multistep",
    "scheduled",
    "warmup_cosine",
    "warmup_linear",
    "warmup_multistep",
    "warmup_stable_decay",
]

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
    warmup_steps: Optional[int] = None,
    total_steps: Optional[int] = None,
    min_lr: Optional[float] = None,
    trainer: Any = None,
    name: Optional[str] = None,
    warmup_fraction: Optional[float] = None,
    warmup_epochs: Optional[float] = None,
    min_lr_ratio: Optional[float] = None,
    warmup_start: Union[float, str, None] = None,
    decay_fraction: Optional[float] = None,
) -> SchedulerDict:
    """Linear warmup to the optimizer's lr, then cosine down to `min_lr` at the last optimizer step (interval 'step').

    The warm-up is `warmup_steps` optimizer steps, or `warmup_fraction` of the run, or `warmup_epochs` epochs (the
    last two read the run's length from `trainer`). Its step k runs at ``(k + 1) / warmup_steps`` of the peak, or,
    with ``warmup_start`` (a number in [0, 1], as in `warmup_multistep`), from ``warmup_start`` of the peak at step
    0 to the peak at the warm-up's last step, or with ``warmup_start="zero"`` at ``k / warmup_steps``, the peak one
    step after the warm-up (Hugging Face's, BERT's and MAE's convention: the first step runs at lr 0). A warm-up
    given as a fraction or in epochs that rounds to 0 steps is a `RecipeWarning`. `min_lr` is absolute for groups that use the optimizer's default lr
    (``min_lr_ratio``: a fraction of the peak instead); groups with their own lr keep their ratio to it.
    ``total_steps=None`` reads ``trainer.estimated_stepping_batches`` (inside ``configure_optimizers``, pass
    ``trainer=self.trainer``).

    ``decay_fraction`` (a number in (0, 1], default: the whole run) ends the cosine early: the lr reaches `min_lr`
    at optimizer step ``round(decay_fraction * total_steps) - 1`` and stays there to the end of the run, as GPT-3
    trains (its cosine spans 260B of 300B tokens: ``decay_fraction=260 / 300``). The schedule still ends with the
    run for the fit checks: the hold is deliberate.

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
    return _warmup(optimizer, "cosine", "warmup_cosine", warmup_steps, warmup_fraction, warmup_epochs, total_steps,
                   trainer, name, final=_final(optimizer, "warmup_cosine", min_lr, min_lr_ratio), start=warmup_start,
                   decay_fraction=decay_fraction)


def warmup_linear(
    optimizer: Optimizer,
    *,
    warmup_steps: Optional[int] = None,
    total_steps: Optional[int] = None,
    trainer: Any = None,
    name: Optional[str] = None,
    warmup_fraction: Optional[float] = None,
    warmup_epochs: Optional[float] = None,
    min_lr_ratio: float = 0.0,
    warmup_start: Union[float, str, None] = None,
) -> SchedulerDict:
    """Linear warm-up to the optimizer's lr, then linear decay to ``min_lr_ratio`` of it (0: to zero) at the last
    optimizer step (interval 'step'), as BERT fine-tunes. The warm-up as in `warmup_cosine`, ``warmup_start``
    included (the warm-up's multiplier of the peak at step 0, in [0, 1], or ``"zero"``; default ``1 / warmup_steps``).

    Example:
        >>> import torch
        >>> opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        >>> sched = warmup_linear(opt, warmup_fraction=0.2, total_steps=10)["scheduler"]
        >>> lrs = []
        >>> for _ in range(10):
        ...     lrs.append(round(opt.param_groups[0]["lr"], 3)); opt.step(); sched.step()
        >>> lrs
        [0.5, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0.0]
    """
    final = _final(optimizer, "warmup_linear", None, min_lr_ratio)
    return _warmup(optimizer, "linear", "warmup_linear", warmup_steps, warmup_fraction, warmup_epochs, total_steps,
                   trainer, name, final=final, start=warmup_start)


def warmup_stable_decay(
    optimizer: Optimizer,
    *,
    decay_fraction: float,
    warmup_steps: Optional[int] = None,
    warmup_fraction: Optional[float] = None,
    warmup_epochs: Optional[float] = None,
    min_lr_ratio: float = 0.0,
    warmup_start: Optional[float] = None,
    total_steps: Optional[int] = None,
    trainer: Any = None,
    name: Optional[str] = None,
) -> SchedulerDict:
    """Warm-up, stable, decay ("WSD", interval 'step'): a linear warm-up (as `warmup_cosine`'s; ``warmup_steps=0``
    for none), the peak held, then a linear decay over the last `decay_fraction` of the run to ``min_lr_ratio`` of
    the peak at the last optimizer step (the modded-nanogpt record: no warm-up, the last 40% decaying to 10%).

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        >>> sched = warmup_stable_decay(opt, warmup_steps=0, decay_fraction=0.4, min_lr_ratio=0.1,
        ...                             total_steps=10)["scheduler"]
        >>> lrs = []
        >>> for _ in range(10):
        ...     lrs.append(round(opt.param_groups[0]["lr"], 3)); opt.step(); sched.step()
        >>> lrs
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.7, 0.4, 0.1]
    """
    _check_warmup_start(warmup_start)
    final = _final(optimizer, "warmup_stable_decay", None, min_lr_ratio)
    if total_steps is None:
        total_steps = _total_steps_from(trainer, "warmup_stable_decay")
    if isinstance(decay_fraction, bool) or not isinstance(decay_fraction, (int, float)) or not 0 < decay_fraction <= 1:
        raise RecipeError(f"`decay_fraction` must be in (0, 1] (the share of the run that decays), got {decay_fraction!r}.")
    per_epoch = _steps_per_epoch(trainer, "warmup_stable_decay") if warmup_epochs is not None else None
    warmup = _warmup_length(warmup_steps, warmup_fraction, warmup_epochs, total_steps, per_epoch, "warmup_stable_decay")
    decay_steps = int(round(decay_fraction * total_steps))
    schedule = warmup_stable_decay_schedule(warmup, total_steps, decay_steps, final=final, start=warmup_start)
    scheduler = LambdaLR(optimizer, schedule)
    scheduler.warmup_steps = warmup  # type: ignore[attr-defined]  # read by previews and the fit checks
    scheduler.total_steps = total_steps  # type: ignore[attr-defined]
    scheduler.decay_steps = decay_steps  # type: ignore[attr-defined]
    return scheduled(scheduler, interval="step", name=name)


def warmup_multistep(
    optimizer: Optimizer,
    *,
    milestones: Sequence[float],
    gamma: float = 0.1,
    warmup_steps: Optional[int] = None,
    warmup_epochs: Optional[float] = None,
    warmup_start: Union[float, str, None] = None,
    of_epochs: Optional[int] = None,
    trainer: Any = None,
    steps_per_epoch: Optional[int] = None,
    name: Optional[str] = None,
) -> SchedulerDict:
    """Linear warm-up, then the lr times `gamma` at each of the `milestones` (in epochs), on interval 'step'.

    Goyal et al.'s large-batch ImageNet schedule: the warm-up starts at ``warmup_start`` of the lr (a number in
    [0, 1]: their unscaled lr over the scaled one, which a recipe's ``'warmup_start': 'unscaled'`` computes; or
    ``"zero"``, see `warmup_cosine`; default ``1 / warmup_steps``) and the milestones are counted in epochs but applied at the exact optimizer
    step where their epoch starts. With ``of_epochs``, the milestones are fractions of that many epochs scaled to
    the run's (``milestones=[30, 60, 80], of_epochs=90`` on a 9-epoch run: epochs 3, 6 and 8).

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        >>> sched = warmup_multistep(opt, milestones=[2, 3], warmup_epochs=1, steps_per_epoch=2)["scheduler"]
        >>> lrs = []
        >>> for _ in range(8):
        ...     lrs.append(round(opt.param_groups[0]["lr"], 3)); opt.step(); sched.step()
        >>> lrs
        [0.5, 1.0, 1.0, 1.0, 0.1, 0.1, 0.01, 0.01]
    """
    per_epoch = steps_per_epoch or _steps_per_epoch(trainer, "warmup_multistep")
    if of_epochs is not None:
        epochs = getattr(trainer, "max_epochs", None)
        if not isinstance(epochs, int) or epochs < 1:
            raise RecipeError("`of_epochs` scales the milestones to the run's epochs: pass `trainer=self.trainer`.")
        milestones = [max(1, round(m * epochs / of_epochs)) for m in milestones]
    if isinstance(milestones, (int, str)) or not all(
            isinstance(m, (int, float)) and not isinstance(m, bool) and m > 0 for m in milestones):
        raise RecipeError(f"`milestones` must be a list of positive epochs such as [30, 60], got {milestones!r}.")
    _check_gamma(gamma)
    _check_warmup_start(warmup_start)
    warmup = _warmup_length(warmup_steps, None, warmup_epochs, None, per_epoch, "warmup_multistep")
    requested = _requested(warmup_steps, None, warmup_epochs, None, per_epoch, warmup, "warmup_multistep")
    boundaries = [int(round(m * per_epoch)) for m in milestones]
    zero = warmup_start == "zero" and warmup > 0
    peak = warmup if zero else max(warmup - 1, 0)  # the step that runs at the full lr
    if boundaries != sorted(set(boundaries)) or (boundaries and boundaries[0] <= peak and warmup):
        raise RecipeError(
            f"`milestones` must be increasing and after the warm-up: got epochs {list(milestones)} (steps"
            f" {boundaries}) with a warm-up of {warmup} steps."
        )
    after = piecewise_constant([b - peak for b in boundaries], [gamma**k for k in range(len(boundaries) + 1)])
    if zero:
        schedule = join([linear(0.0, 1.0, warmup + 1), after], [peak])
    elif warmup:
        ramp = linear(float(warmup_start), 1.0, warmup) if warmup_start is not None else \
            linear(1.0 / warmup, 1.0, warmup)
        schedule = join([ramp, after], [peak])
    else:
        schedule = after
    scheduler = LambdaLR(optimizer, schedule)
    scheduler.warmup_steps = warmup  # type: ignore[attr-defined]  # read by previews and the fit checks
    scheduler.warmup_requested = requested  # type: ignore[attr-defined]
    scheduler.peak_step = peak  # type: ignore[attr-defined]  # the first step at the full lr
    scheduler.milestone_steps = boundaries  # type: ignore[attr-defined]
    return scheduled(scheduler, interval="step", name=name)


def _final(optimizer: Optimizer, what: str, min_lr: Optional[float], min_lr_ratio: Optional[float]) -> float:
    """The multiplier the schedule ends at."""
    if min_lr is not None and min_lr_ratio is not None:
        raise RecipeError(f"`{what}` got both `min_lr` (absolute) and `min_lr_ratio` (of the peak): remove one.")
    if min_lr_ratio is not None:
        if isinstance(min_lr_ratio, bool) or not isinstance(min_lr_ratio, (int, float)) or not 0 <= min_lr_ratio <= 1:
            raise RecipeError(f"`min_lr_ratio` must be between 0 and 1 (a fraction of the peak lr), got {min_lr_ratio!r}.")
        return float(min_lr_ratio)
    min_lr = 0.0 if min_lr is None else min_lr
    base_lr = optimizer.defaults.get("lr")
    if not isinstance(base_lr, (int, float)) or base_lr <= 0:
        raise RecipeError(
            f"`{what}` needs the optimizer's default lr to place `min_lr`, got lr={base_lr!r}:"
            f" construct {type(optimizer).__name__} with `lr=`."
        )
    if isinstance(min_lr, bool) or not isinstance(min_lr, (int, float)) or not 0 <= min_lr <= base_lr:
        raise RecipeError(f"`min_lr` must be between 0 and the optimizer's lr ({base_lr}), got {min_lr!r}.")
    return min_lr / base_lr


def _warmup(
    optimizer: Optimizer, decay: str, what: str, warmup_steps: Optional[int], warmup_fraction: Optional[float],
    warmup_epochs: Optional[float], total_steps: Optional[int], trainer: Any, name: Optional[str], final: float,
    start: Union[float, str, None] = None, decay_fraction: Optional[float] = None,
) -> SchedulerDict:
    _check_warmup_start(start)
    if total_steps is None:
        total_steps = _total_steps_from(trainer, what)
    per_epoch = _steps_per_epoch(trainer, what) if warmup_epochs is not None else None
    warmup = _warmup_length(warmup_steps, warmup_fraction, warmup_epochs, total_steps, per_epoch, what)
    requested = _requested(warmup_steps, warmup_fraction, warmup_epochs, total_steps, per_epoch, warmup, what)
    decay_steps = _decay_steps(decay_fraction, total_steps, warmup, what)
    scheduler = LambdaLR(optimizer, warmup_schedule(warmup, total_steps, decay=decay, final=final, start=start,
                                                    decay_steps=decay_steps))
    scheduler.warmup_steps = warmup  # type: ignore[attr-defined]  # read by previews and the fit checks
    scheduler.warmup_requested = requested  # type: ignore[attr-defined]
    scheduler.peak_step = warmup if start == "zero" and warmup else max(warmup - 1, 0)  # type: ignore[attr-defined]
    scheduler.total_steps = total_steps  # type: ignore[attr-defined]
    if decay_steps is not None:  # compared on resume (a LambdaLR saves no function)
        scheduler.decay_steps = decay_steps  # type: ignore[attr-defined]
    return scheduled(scheduler, interval="step", name=name)


def _check_warmup_start(start: Any) -> None:
    if start is None or start == "zero":
        return
    if isinstance(start, bool) or not isinstance(start, (int, float)) or not 0 <= start <= 1:
        raise RecipeError(
            f"`warmup_start` must be a number in [0, 1] (the warm-up's multiplier of the peak lr at its first step) or"
            f" 'zero' (step k at k / warm-up steps, the first at lr 0), got {start!r}. In a recipe, 'unscaled' starts the warm-up at the lr before `lr_scaling`."
        )


def _decay_steps(fraction: Any, total: int, warmup: int, what: str) -> Optional[int]:
    """The steps the warm-up and the decay span for ``decay_fraction`` (None: the whole run, no hold)."""
    if fraction is None:
        return None
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise RecipeError(
            f"`decay_fraction` must be in (0, 1] (the share of the run after which the lr holds at its floor), got"
            f" {fraction!r}."
        )
    steps = int(round(fraction * total))
    if steps <= max(warmup, 1):
        raise RecipeError(
            f"`{what}`'s `decay_fraction` {fraction!r} of the run's {total} steps ends the decay at step {steps - 1},"
            f" before the {warmup}-step warm-up is over: set a larger `decay_fraction`, or a shorter warm-up."
        )
    return steps if steps < total else None


def _requested(steps: Optional[int], fraction: Optional[float], epochs: Optional[float], total: Optional[int],
               per_epoch: Optional[int], warmup: int, what: str) -> float:
    """The warm-up's length before rounding, in optimizer steps; a `RecipeWarning` when a warm-up given as a fraction
    of the run or in epochs rounds to 0 steps (training would start at the peak lr, in silence)."""
    if steps is not None:
        return float(steps)
    if fraction is not None:
        given, requested = f"warmup_fraction={fraction!r} of the run's {total} optimizer steps", fraction * (total or 0)
    else:
        given, requested = f"warmup_epochs={epochs!r} of {per_epoch} optimizer steps", (epochs or 0) * (per_epoch or 0)
    if warmup == 0 and requested > 0:
        warn(
            f"`{what}`'s warm-up of {given} ({requested:.3g} steps) rounds to 0 steps: training starts at the peak"
            " lr, with no warm-up. Give it at least one step (`warmup_steps=1`, or in a recipe's scheduler"
            " {'warmup_fraction': None, 'warmup_steps': 1}), or train longer. If no warm-up is meant, set the fraction"
            " or the epochs to 0, or silence this with `warnings.filterwarnings('ignore', '.*rounds to 0 steps')`."
        )
    return float(requested)


def _warmup_length(
    steps: Optional[int], fraction: Optional[float], epochs: Optional[float], total: Optional[int],
    per_epoch: Optional[int], what: str,
) -> int:
    given = [k for k, v in (("warmup_steps", steps), ("warmup_fraction", fraction), ("warmup_epochs", epochs))
             if v is not None]
    if len(given) != 1:
        raise RecipeError(
            f"`{what}` needs the warm-up's length in exactly one way, got {', '.join(given) or 'none'}: pass one of"
            " `warmup_steps=` (optimizer steps), `warmup_fraction=` (of the run) or `warmup_epochs=`."
        )
    if steps is not None:
        return steps  # checked by the schedule
    if fraction is not None:
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction < 1:
            raise RecipeError(f"`warmup_fraction` must be in [0, 1) (a share of the run), got {fraction!r}.")
        return int(round(fraction * (total or 0)))
    if isinstance(epochs, bool) or not isinstance(epochs, (int, float)) or epochs < 0:
        raise RecipeError(f"`warmup_epochs` must be a non-negative number of epochs, got {epochs!r}.")
    return int(round(epochs * (per_epoch or 0)))


def _steps_per_epoch(trainer: Any, what: str) -> int:
    """Optimizer steps per epoch of the run, from the Trainer (its epoch length and accumulation)."""
    if trainer is None:
        raise RecipeError(
            f"`{what}` counts in epochs, so it needs the run's epoch length: pass `trainer=self.trainer` inside"
            " `configure_optimizers` (or `steps_per_epoch=`)."
        )
    total = _total_steps_from(trainer, what)
    batches = getattr(trainer, "num_training_batches", None)
    accumulate = getattr(trainer, "accumulate_grad_batches", 1) or 1
    if isinstance(batches, int) and batches > 0:
        return math.ceil(batches / accumulate)
    epochs = getattr(trainer, "max_epochs", None)
    if isinstance(epochs, int) and epochs > 0:
        return max(total // epochs, 1)
    raise RecipeError(f"`{what}` counts in epochs, but the run has no epoch length: set `max_epochs` on the Trainer.")


def _total_steps_from(trainer: Any, what: str = "warmup_cosine") -> int:
    if trainer is None:
        raise RecipeError(
            f"`{what}` needs the length of training: pass `total_steps=`, or `trainer=self.trainer` inside"
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
