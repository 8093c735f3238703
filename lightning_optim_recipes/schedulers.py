"""Schedulers with an explicit cadence: `scheduled` and factories returning the dicts Lightning accepts.

Every length a factory takes may be written in units (``"10ep"``, ``"500st"``, ``"2000ba"``, ``"5%"``: see
`lightning_optim_recipes.units`), resolved against ``trainer=`` into the scheduler's own steps and kept on the
scheduler (``scheduler.lengths``); a plain int keeps the meaning each factory documents.
"""

from __future__ import annotations

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

from lightning_optim_recipes import units
from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.run_lengths import (
    check_warmup_start,
    decay_steps_of,
    final_multiplier,
    requested_warmup,
    steps_per_epoch_of,
    total_steps_from,
    warmup_length,
)
from lightning_optim_recipes.schedules import join, linear, piecewise_constant, warmup_schedule

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
    milestones: Sequence[units.LengthLike],
    gamma: float = 0.1,
    interval: str = "epoch",
    *,
    frequency: int = 1,
    name: Optional[str] = None,
    trainer: Any = None,
) -> SchedulerDict:
    """Multiply the lr by `gamma` at each of the `milestones` (counted in `interval` units; or in units, ``"30ep"``,
    ``"5000st"``, ``"50%"``, resolved against `trainer` into the scheduler's steps).

    Example:
        >>> import torch
        >>> opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
        >>> config = multistep(opt, milestones=[2000], gamma=0.5)  # halve the lr after 2000 epochs, then keep it
        >>> config["interval"], config["scheduler"].milestones
        ('epoch', Counter({2000: 1}))
    """
    check_interval(interval)
    given = milestones
    if not isinstance(milestones, (int, str)):
        milestones = units.resolve_each(milestones, "milestones", trainer, _unit(interval), "`multistep`", frequency)
    if isinstance(milestones, (int, str)) or not all(
        isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in milestones
    ):
        raise RecipeError(f"`milestones` must be a list of positive ints such as [30, 80] (or lengths such as"
                          f" ['30ep', '60ep']), got {given!r}.")
    if list(milestones) != sorted(milestones):
        raise RecipeError(f"`milestones` must be increasing, got {list(milestones)}{units.shown(given, milestones)}.")
    _check_gamma(gamma)
    scheduler = MultiStepLR(optimizer, list(milestones), gamma)
    units.record(scheduler, {"milestones": (units.written(given), list(milestones))})
    return scheduled(scheduler, interval=interval, frequency=frequency, name=name)


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
    t_max: units.LengthLike,
    eta_min: float = 0.0,
    interval: str = "epoch",
    *,
    frequency: int = 1,
    name: Optional[str] = None,
    trainer: Any = None,
) -> SchedulerDict:
    """Cosine annealing from the optimizer's lr to `eta_min` over `t_max` intervals (`CosineAnnealingLR`); `t_max`
    may be a length in units (``"10ep"``, ``"100%"``), resolved against `trainer` into the scheduler's steps.

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        >>> cosine(opt, t_max=10)["scheduler"].T_max
        10
    """
    check_interval(interval)
    given, t_max = t_max, units.resolve(t_max, "t_max", trainer, _unit(interval), "`cosine`", frequency)
    if isinstance(t_max, bool) or not isinstance(t_max, int) or t_max < 1:
        raise RecipeError(f"`t_max` must be a positive int (intervals to anneal over) or a length ('10ep', '100%'),"
                          f" got {given!r}{units.shown(given, t_max)}.")
    scheduler = CosineAnnealingLR(optimizer, t_max, eta_min)
    units.record(scheduler, {"t_max": (given, t_max)})
    return scheduled(scheduler, interval=interval, frequency=frequency, name=name)


def warmup_cosine(
    optimizer: Optimizer,
    *,
    warmup_steps: Optional[units.LengthLike] = None,
    total_steps: Optional[units.LengthLike] = None,
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

    The warm-up is `warmup_steps` optimizer steps (or a length in units: ``"2ep"``, ``"5%"``, ``"400ba"``), or
    `warmup_fraction` of the run, or `warmup_epochs` epochs (these read the run's length from `trainer`). Its step k runs at ``(k + 1) / warmup_steps`` of the peak, or,
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
                   trainer, name, final=final_multiplier(optimizer, "warmup_cosine", min_lr, min_lr_ratio), start=warmup_start,
                   decay_fraction=decay_fraction)


def warmup_linear(
    optimizer: Optimizer,
    *,
    warmup_steps: Optional[units.LengthLike] = None,
    total_steps: Optional[units.LengthLike] = None,
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
    final = final_multiplier(optimizer, "warmup_linear", None, min_lr_ratio)
    return _warmup(optimizer, "linear", "warmup_linear", warmup_steps, warmup_fraction, warmup_epochs, total_steps,
                   trainer, name, final=final, start=warmup_start)


def warmup_multistep(
    optimizer: Optimizer,
    *,
    milestones: Sequence[Union[float, str]],
    gamma: float = 0.1,
    warmup_steps: Optional[units.LengthLike] = None,
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
    the run's (``milestones=[30, 60, 80], of_epochs=90`` on a 9-epoch run: epochs 3, 6 and 8). A milestone or the
    warm-up may be a length in units instead (``"5000st"``, ``"50%"``): the optimizer step it resolves to.

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
    per_epoch = steps_per_epoch or steps_per_epoch_of(trainer, "warmup_multistep")
    given = milestones
    if of_epochs is not None:
        epochs = getattr(trainer, "max_epochs", None)
        if not isinstance(epochs, int) or epochs < 1:
            raise RecipeError("`of_epochs` scales the milestones to the run's epochs: pass `trainer=self.trainer`.")
        milestones = [m if isinstance(m, str) else max(1, round(m * epochs / of_epochs)) for m in milestones]
    if isinstance(milestones, (int, str)) or not all(
            isinstance(m, str) or (isinstance(m, (int, float)) and not isinstance(m, bool) and m > 0)
            for m in milestones):
        raise RecipeError(f"`milestones` must be a list of positive epochs such as [30, 60] (or lengths such as"
                          f" ['5000st', '50%']), got {milestones!r}.")
    _check_gamma(gamma)
    check_warmup_start(warmup_start)
    run = units.RunSize.of(trainer, steps_per_epoch=steps_per_epoch)
    warmup_resolved = units.resolve(warmup_steps, "warmup_steps", run, what="`warmup_multistep`")
    warmup = warmup_length(warmup_resolved, None, warmup_epochs, None, per_epoch, "warmup_multistep")
    requested = requested_warmup(warmup_resolved, None, warmup_epochs, None, per_epoch, warmup, "warmup_multistep")
    boundaries = [units.resolve(m, "milestones", run, what="`warmup_multistep`") if isinstance(m, str)
                  else int(round(m * per_epoch)) for m in milestones]
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
    units.record(scheduler, {"warmup_steps": (warmup_steps, warmup), "milestones": (units.written(given), boundaries)})
    return scheduled(scheduler, interval="step", name=name)


def _warmup(
    optimizer: Optimizer, decay: str, what: str, warmup_steps: Optional[units.LengthLike],
    warmup_fraction: Optional[float], warmup_epochs: Optional[float], total_steps: Optional[units.LengthLike],
    trainer: Any, name: Optional[str], final: float,
    start: Union[float, str, None] = None, decay_fraction: Optional[float] = None,
) -> SchedulerDict:
    check_warmup_start(start)
    total: Any = total_steps_from(trainer, what) if total_steps is None else \
        units.resolve(total_steps, "total_steps", trainer, what=f"`{what}`")
    steps: Any = warmup_steps
    if isinstance(warmup_steps, str):
        run = units.RunSize.of(trainer, total_steps=total if isinstance(total, int) else None)
        steps = units.resolve(warmup_steps, "warmup_steps", run, what=f"`{what}`")
    per_epoch = steps_per_epoch_of(trainer, what) if warmup_epochs is not None else None
    warmup = warmup_length(steps, warmup_fraction, warmup_epochs, total, per_epoch, what)
    requested = requested_warmup(steps, warmup_fraction, warmup_epochs, total, per_epoch, warmup, what)
    decay_steps = decay_steps_of(decay_fraction, total, warmup, what)
    scheduler = LambdaLR(optimizer, warmup_schedule(warmup, total, decay=decay, final=final, start=start,
                                                    decay_steps=decay_steps))
    scheduler.warmup_steps = warmup  # type: ignore[attr-defined]  # read by previews and the fit checks
    scheduler.warmup_requested = requested  # type: ignore[attr-defined]
    scheduler.peak_step = warmup if start == "zero" and warmup else max(warmup - 1, 0)  # type: ignore[attr-defined]
    scheduler.total_steps = total  # type: ignore[attr-defined]
    if decay_steps is not None:  # compared on resume (a LambdaLR saves no function)
        scheduler.decay_steps = decay_steps  # type: ignore[attr-defined]
    units.record(scheduler, {"warmup_steps": (warmup_steps, warmup), "total_steps": (total_steps, total)})
    return scheduled(scheduler, interval="step", name=name)


def _unit(interval: str) -> str:
    return "epochs" if interval == "epoch" else "steps"


def _check_gamma(gamma: Any) -> None:
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or gamma <= 0:
        raise RecipeError(f"`gamma` must be a positive number (the lr multiplier), got {gamma!r}.")
