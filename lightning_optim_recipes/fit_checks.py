"""Checks before training that need the run: does each schedule fit the run it is configured for?

A schedule that should end with the run (``CosineAnnealingLR.T_max``, ``OneCycleLR.total_steps``, a decaying
``LinearLR``/``PolynomialLR``, `warmup_cosine`, ``SequentialLR`` and ``LambdaLR`` schedules from
`lightning_optim_recipes.schedules` whose length is known; one that decays over part of the run and then holds its
floor, ``warmup_cosine(decay_fraction=...)``, is written for the whole run) is compared, in its own unit (scheduler
steps), with how many times the run will step it: the cadence model (`lightning_optim_recipes.cadence`) replays one
epoch, so accumulation, frequencies and the alternating mixin's turns are counted as training will count them. A
horizon off by more than one epoch's worth of steps, and a milestone or warm-up end the run never reaches, get a
`RecipeWarning` that gives both numbers, the likely cause and the fix, pointing at the module's
``configure_optimizers`` (or its recipe). A ``ReduceLROnPlateau`` that watches a validation metric on epochs without
validation is a `RecipeError`.

The mixins, `ConfigureOptimizersCheck`, `SchedulerCadenceCheck` and `preview_schedule` run these checks.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any, Optional, Union

from torch.optim.lr_scheduler import (
    ConstantLR,
    CosineAnnealingLR,
    LambdaLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    PolynomialLR,
    SequentialLR,
)

from lightning_optim_recipes import cadence
from lightning_optim_recipes.errors import RecipeError, warn
from lightning_optim_recipes.schedules import schedule_length
from lightning_optim_recipes.validation import OptimizerSetup, SchedulerSpec

__all__ = ["Horizon", "Run", "check_before_training", "horizon_of", "run_of"]

#: At most this many batches of an epoch are replayed to count its steps (longer epochs are scaled).
_REPLAYED_BATCHES = 20_000


@dataclasses.dataclass(frozen=True)
class Horizon:
    """What a schedule is written for, in scheduler steps: where it ends (`end`), and points it must reach."""

    end: Optional[int] = None  # the step at which the schedule is done (None: it runs on)
    end_what: str = ""
    reach: tuple[tuple[int, str], ...] = ()  # (step, what): milestones, warm-up ends
    in_steps: bool = False  # the schedule is written in optimizer steps whatever its interval (OneCycleLR, warm-ups)


def horizon_of(scheduler: Any) -> Horizon:
    """The `Horizon` of a torch scheduler, when its type says it.

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        >>> horizon_of(torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)).end
        100
        >>> horizon_of(torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[30, 60])).reach
        ((30, 'milestone 30'), (60, 'milestone 60'))
    """
    if isinstance(scheduler, OneCycleLR):
        return Horizon(int(scheduler.total_steps), f"total_steps={scheduler.total_steps}", in_steps=True)
    if isinstance(scheduler, CosineAnnealingLR):
        return Horizon(int(scheduler.T_max), f"T_max={scheduler.T_max}")
    if isinstance(scheduler, PolynomialLR):
        return Horizon(int(scheduler.total_iters), f"total_iters={scheduler.total_iters}")
    if isinstance(scheduler, LinearLR):
        if scheduler.end_factor < scheduler.start_factor:  # a decay: it should end with the run
            return Horizon(int(scheduler.total_iters), f"total_iters={scheduler.total_iters}")
        return Horizon(reach=((int(scheduler.total_iters), f"the warm-up end (total_iters={scheduler.total_iters})"),))
    if isinstance(scheduler, ConstantLR):
        return Horizon(reach=((int(scheduler.total_iters), f"the end of its constant phase (total_iters="
                                                            f"{scheduler.total_iters})"),))
    if isinstance(scheduler, MultiStepLR):
        return Horizon(reach=tuple((int(m), f"milestone {m}") for m in sorted(scheduler.milestones)))
    if isinstance(scheduler, SequentialLR):
        milestones = list(scheduler._milestones)
        last = horizon_of(scheduler._schedulers[-1])
        reach = tuple((int(m), f"milestone {m}") for m in milestones)
        end = milestones[-1] + last.end if last.end is not None and milestones else None
        return Horizon(end, f"its last milestone plus {last.end_what}" if end is not None else "", reach)
    warmup = getattr(scheduler, "warmup_steps", None)
    total = getattr(scheduler, "total_steps", None)
    if isinstance(total, int):  # `warmup_cosine`
        reach = ((warmup, f"the warm-up end (warmup_steps={warmup})"),) if isinstance(warmup, int) and warmup else ()
        return Horizon(total, f"total_steps={total}", reach, in_steps=True)
    if isinstance(scheduler, LambdaLR) and len(scheduler.lr_lambdas) >= 1:
        length = schedule_length(scheduler.lr_lambdas[0])
        if length is not None:
            return Horizon(length, f"its schedule of {length} steps")
    return Horizon()


@dataclasses.dataclass(frozen=True)
class Run:
    """What a run will do, as the Trainer is configured.

    Attributes:
        max_epochs, batches, accumulate, devices, max_steps: the Trainer's sizes (`batches` per epoch and device).
        epochs: the epochs that run fully before ``max_steps`` ends training (may be fractional).
        scheduler_steps: per scheduler, how many times training will step it (None: unknown).
        per_epoch: per scheduler, its steps in one epoch (the tolerance of the checks).
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


def run_of(setup: OptimizerSetup, trainer: Any, loop: Optional[cadence.Loop] = None) -> Optional[Run]:
    """How many times each scheduler of `setup` will step when `trainer` fits (None when the run has no end)."""
    max_epochs = getattr(trainer, "max_epochs", None)
    max_steps = getattr(trainer, "max_steps", -1)
    if max_steps is None:
        max_steps = -1
    batches = getattr(trainer, "num_training_batches", None)
    if batches == float("inf") and hasattr(trainer, "fit_loop") and max_epochs not in (None, -1):
        try:  # Lightning sizes the epoch when the loader is set up: as for `estimated_stepping_batches` itself
            trainer.estimated_stepping_batches  # noqa: B018
        except Exception:  # noqa: BLE001 - no loader yet (e.g. a datamodule set up later): no check then
            return None
        batches = trainer.num_training_batches
    if not isinstance(batches, int) or batches <= 0 or not isinstance(max_epochs, int) or max_epochs < 0:
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
    epochs = float(max_epochs)
    if max_steps is not None and max_steps > 0 and global_per_epoch > 0:
        epochs = min(epochs, max_steps / global_per_epoch)
    steps, per_epoch = [], []
    for spec, count in zip(setup.schedulers, counter.scheduler_steps):
        if spec.interval == "epoch":
            per_epoch.append(1.0 / spec.frequency)
            steps.append(int(math.floor(epochs)) // spec.frequency)
        else:
            per_epoch.append(count * scale)
            steps.append(int(round(count * scale * epochs)))
    limit = getattr(trainer, "limit_train_batches", 1.0)
    return Run(max_epochs, batches, accumulate, int(getattr(trainer, "world_size", 1) or 1), max_steps, epochs,
               tuple(steps), tuple(per_epoch), tuple(int(round(s * scale)) for s in counter.optimizer_steps),
               limit if isinstance(limit, (int, float)) else 1.0)


# --------------------------------------------------------------------------------------------------- checks

Where = Union[Any, tuple[str, int], None]


def check_before_training(setup: OptimizerSetup, trainer: Any, module: Any = None,
                          loop: Optional[cadence.Loop] = None, at: Where = None) -> None:
    """Warn about schedules that do not fit the run; raise about plateau schedulers that will miss their metric."""
    if trainer is None or not setup.schedulers:
        return
    check_plateau_validation(setup, trainer, module)
    run = run_of(setup, trainer, loop)
    if run is None:
        return
    if at is None and module is not None:
        at = user_line(module)
    for index, spec in enumerate(setup.schedulers):
        message = schedule_misfit(spec, index, run)
        if message:
            warn(message, at=at)


def schedule_misfit(spec: SchedulerSpec, index: int, run: Run) -> Optional[str]:
    """The message for a scheduler whose schedule does not fit `run`, or None."""
    horizon = horizon_of(spec.scheduler)
    steps, per_epoch = run.scheduler_steps[index], run.per_epoch[index]
    if steps is None or per_epoch is None or (horizon.end is None and not horizon.reach):
        return None
    name = f"The {type(spec.scheduler).__name__}{f' {spec.name!r}' if spec.name else ''}"
    cadence_text = _cadence_text(spec, run, steps)
    unit = _unit_advice(spec, horizon, run, index)
    if horizon.end is not None:
        tolerance = max(per_epoch, 1.0)
        if abs(horizon.end - steps) > tolerance:
            reached = min(steps, horizon.end) / horizon.end if horizon.end else 1.0
            head = (f"{name} scheduler is written for {horizon.end} scheduler steps ({horizon.end_what}), but this run"
                    f" steps it {steps} times ({cadence_text})")
            if steps < horizon.end:
                head += f": training ends {reached:.1%} of the way through its schedule{_lr_at_end(spec, steps)}."
            else:
                head += f": its schedule ends after {horizon.end} steps and the rest of the run trains past it."
            return f"{head} {unit or _length_advice(spec, horizon, run, steps, index)}"
    for point, what in horizon.reach:
        if point > steps:
            head = (f"{name} scheduler never reaches {what}: this run steps it {steps} times ({cadence_text}).")
            return f"{head} {unit or _reach_advice(spec, steps, point)}"
    return None


def _cadence_text(spec: SchedulerSpec, run: Run, steps: int) -> str:
    if spec.interval == "epoch":
        every = "each epoch" if spec.frequency == 1 else f"every {spec.frequency} epochs"
        return f"interval='epoch': once at the end of {every}, over {_epochs(run)}"
    every = "each optimizer step" if spec.frequency == 1 else f"every {spec.frequency} optimizer steps"
    return f"interval='step': after {every}, over {_epochs(run)}"


def _lr_at_end(spec: SchedulerSpec, steps: int) -> str:
    """`, where its lr is 0.99 of the optimizer's` for schedules whose multiplier has a closed form."""
    scheduler = spec.scheduler
    if isinstance(scheduler, CosineAnnealingLR) and scheduler.base_lrs and scheduler.base_lrs[0]:
        base, low = scheduler.base_lrs[0], scheduler.eta_min
        lr = low + (base - low) * (1 + math.cos(math.pi * steps / scheduler.T_max)) / 2
        return f" (its lr ends at {lr:.6g} of {base:.6g}, not at eta_min={low:g})"
    if isinstance(scheduler, LambdaLR) and scheduler.lr_lambdas and callable(scheduler.lr_lambdas[0]):
        try:
            factor = float(scheduler.lr_lambdas[0](max(steps - 1, 0)))
        except Exception:  # noqa: BLE001 - a user's lambda: no number then
            return ""
        return f" (its last step runs at {factor:.3g} of the peak lr)"
    return ""


def _epochs(run: Run) -> str:
    if run.epochs < run.max_epochs:
        return f"{run.epochs:g} epochs before max_steps={run.max_steps} ends training"
    return f"{run.max_epochs} epoch{'s' if run.max_epochs != 1 else ''}"


def _unit_advice(spec: SchedulerSpec, horizon: Horizon, run: Run, index: int) -> Optional[str]:
    """'epoch' where 'step' was meant (or the reverse), when the numbers say so."""
    optimizer_steps = run.optimizer_steps_per_epoch[spec.optimizer_index] if run.optimizer_steps_per_epoch else 0
    run_in_steps = optimizer_steps * run.epochs
    target = horizon.end if horizon.end is not None else max(p for p, _ in horizon.reach)
    if spec.interval == "epoch" and (horizon.in_steps or (
            run_in_steps and abs(target - run_in_steps) <= max(optimizer_steps, 1) and target > run.max_epochs + 1)):
        return (
            "Its numbers are in optimizer steps, but it has interval='epoch', so it steps once per epoch. Did you mean"
            " interval='step'? (`scheduled(scheduler, interval='step')`, or 'interval': 'step' in its dict)"
        )
    steps = run.scheduler_steps[index]
    if spec.interval == "step" and not horizon.in_steps and abs(target - run.max_epochs) <= 1 and \
            steps is not None and steps > run.max_epochs + 1:
        return (
            f"Its numbers look like epochs ({target} of {run.max_epochs}), but it has interval='step'. Did you mean"
            " interval='epoch'?"
        )
    return None


def _length_advice(spec: SchedulerSpec, horizon: Horizon, run: Run, steps: int, index: int) -> str:
    end = horizon.end or 0
    causes = []
    per_epoch = run.per_epoch[index] or 1.0
    if spec.interval == "step":
        if run.accumulate > 1 and abs(end - steps * run.accumulate) <= max(per_epoch, 1) * run.accumulate:
            causes.append(f"the length ignores accumulate_grad_batches={run.accumulate} (the optimizer steps once"
                          f" every {run.accumulate} batches)")
        if run.devices > 1 and abs(end - steps * run.devices) <= steps * 0.05 + run.devices:
            causes.append(f"the length ignores the {run.devices} devices (each sees 1/{run.devices} of the batches)")
        if run.limit_train_batches not in (1, 1.0) and end > steps:
            causes.append(f"limit_train_batches={run.limit_train_batches} trains {run.batches} batches per epoch, not"
                          " the whole loader")
        if run.epochs < run.max_epochs:
            causes.append(f"max_steps={run.max_steps} ends training before max_epochs={run.max_epochs}")
    cause = f" Likely cause: {'; '.join(causes)}." if causes else ""
    fix = ("Compute it from the run: `trainer.estimated_stepping_batches` (optimizer steps; it counts accumulation,"
           " devices, limit_train_batches and max_steps)" if spec.interval == "step" else
           f"Set it to the run's length: {int(run.epochs) // spec.frequency} (`self.trainer.max_epochs`)")
    return f"{cause.strip()} {fix}, e.g. {_example(spec, steps)}.".strip()


def _example(spec: SchedulerSpec, steps: int) -> str:
    kind = type(spec.scheduler).__name__
    key = {"CosineAnnealingLR": "T_max", "OneCycleLR": "total_steps", "PolynomialLR": "total_iters",
           "LinearLR": "total_iters"}.get(kind)
    if key is not None:
        return f"{kind}(..., {key}={steps})"
    if getattr(spec.scheduler, "total_steps", None) is not None:
        return "`warmup_cosine(opt, warmup_steps=..., trainer=self.trainer)`"
    return f"a schedule of {steps} steps"


def _reach_advice(spec: SchedulerSpec, steps: int, point: int) -> str:
    unit = "epochs" if spec.interval == "epoch" else "scheduler steps"
    return (f"Train longer, or move it within the run ({point} {unit} asked, {steps} in the run); if that is"
            " deliberate, silence this with `warnings.filterwarnings('ignore', 'never reaches')`.")


# ------------------------------------------------------------------------------------------ plateau and val


def check_plateau_validation(setup: OptimizerSetup, trainer: Any, module: Any) -> None:
    """A strict ``ReduceLROnPlateau`` on a validation metric, stepped at the end of epochs that run no validation,
    fails inside Lightning after the first such epoch: say it now, with the fixes."""
    every = getattr(trainer, "check_val_every_n_epoch", 1)
    if not isinstance(every, int) or every <= 1:
        return
    for spec in setup.schedulers:
        if not (spec.reduce_on_plateau and spec.strict and spec.interval == "epoch" and spec.monitor):
            continue
        if not spec.monitor.lower().startswith(("val", "valid")) or spec.frequency % every == 0:
            continue
        raise RecipeError(
            f"The ReduceLROnPlateau{f' {spec.name!r}' if spec.name else ''} monitors {spec.monitor!r} at the end of"
            f" every {'' if spec.frequency == 1 else str(spec.frequency) + ' '}epoch, but"
            f" `Trainer(check_val_every_n_epoch={every})` validates only every {every} epochs, so after epoch 0"
            f" Lightning stops with \"{spec.monitor} ... is not available\". Fix one of: 'frequency': {every} in its"
            " scheduler dict (step it after each validation), 'strict': False (skip the epochs without the metric),"
            " or monitor a metric logged in `training_step`."
        )


# ------------------------------------------------------------------------------------------------ pointing


def user_line(module: Any) -> Where:
    """Where a warning about the module's optimizers should point: its own ``configure_optimizers``, else the line of
    its class that sets the recipe."""
    for klass in type(module).__mro__:
        function = klass.__dict__.get("configure_optimizers")
        if function is None:
            continue
        function = getattr(function, "__wrapped__", function)
        module_name = getattr(function, "__module__", "") or ""
        if module_name.startswith(("lightning_optim_recipes.", "pytorch_lightning", "lightning")):
            continue
        return function
    return _recipe_line(type(module))


def caller_line() -> Where:
    """The innermost line outside this library, Lightning and torch (a recipe dict passed to the library)."""
    import sys
    import types

    from lightning_optim_recipes.errors import _skipped

    frame: Optional[types.FrameType] = sys._getframe(1)
    while frame is not None and _skipped(frame.f_code.co_filename):
        frame = frame.f_back
    return (frame.f_code.co_filename, frame.f_lineno) if frame is not None else None


def _recipe_line(cls: type) -> Where:
    try:
        lines, first = inspect.getsourcelines(cls)
        filename = inspect.getsourcefile(cls)
    except (OSError, TypeError):
        return None
    for offset, line in enumerate(lines):
        if "optim_recipe" in line:
            return (filename or "", first + offset)
    return (filename or "", first)
