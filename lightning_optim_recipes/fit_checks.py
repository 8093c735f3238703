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
validation, or steps per optimizer step before the run's first validation, is a `RecipeError`; so is a ``OneCycleLR``
the run steps past its ``total_steps`` (torch raises there).

The mixins, `ConfigureOptimizersCheck`, `SchedulerCadenceCheck` and `preview_schedule` run these checks.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Optional, Union

from lightning_optim_recipes import cadence, hooks
from lightning_optim_recipes._lightning import is_lightning_module
from lightning_optim_recipes.curves import Curve, replay_curves
from lightning_optim_recipes.errors import RecipeError, warn
from lightning_optim_recipes.horizons import Horizon, horizon_of
from lightning_optim_recipes.misfit import epoch_misfit, schedule_misfit, schedule_overrun
from lightning_optim_recipes.naming import optimizer_names
from lightning_optim_recipes.runs import Run, run_of
from lightning_optim_recipes.shapes import shape_problem
from lightning_optim_recipes.validation import OptimizerSetup

__all__ = ["Horizon", "Run", "check_before_training", "horizon_of", "run_of", "schedule_misfit"]

log = logging.getLogger("lightning_optim_recipes")
#: Where the checks list the optimizers they warned about, on the module (the watch during training skips those).
WARNED_KEY = "_lightning_optim_recipes_warned_optimizers"


# --------------------------------------------------------------------------------------------------- checks

Where = Union[Any, tuple[str, int], None]


def check_before_training(setup: OptimizerSetup, trainer: Any, module: Any = None,
                          loop: Optional[cadence.Loop] = None, at: Where = None) -> None:
    """Warn about schedules that do not fit the run and learning-rate curves that are almost surely mistakes; raise
    about plateau schedulers that will miss their metric."""
    if trainer is None or not setup.schedulers:
        return
    check_plateau_validation(setup, trainer, module)
    run = run_of(setup, trainer, loop)
    if run is None:
        return
    check_plateau_steps(setup, trainer, run)
    if at is None and module is not None:
        at = user_line(module)
    automatic = module is None or getattr(module, "automatic_optimization", True) or loop is not None
    by_hand = hooks.steps_schedulers_by_hand(type(module)) if module is not None and automatic and loop is None \
        else None
    if by_hand is not None:  # Lightning's cadence is not the run's: the cadence check follows it during training
        log.debug("%s steps its schedulers by hand in `%s`: the schedules are checked during training.",
                  type(module).__name__, by_hand)
        return
    if not automatic:  # manual optimization: the module steps them where it likes, and Lightning ignores 'interval'
        log.debug("%s steps its schedulers itself (manual optimization): the schedules are checked during training.",
                  type(module).__name__)
        return
    for index, spec in enumerate(setup.schedulers):
        overrun = schedule_overrun(spec, index, run)
        if overrun:  # a scheduler that raises past its end: the run would stop there
            raise RecipeError(overrun)
    misfits: dict[int, bool] = {}
    if module is not None:
        module.__dict__[WARNED_KEY] = misfits  # the optimizers warned about
    for index, spec in enumerate(setup.schedulers):
        message = schedule_misfit(spec, index, run) or epoch_misfit(spec, index, run)
        if message:
            misfits[spec.optimizer_index] = True
            warn(message, at=at)
    curves = _curves(setup, run, module, trainer) if automatic else None
    for curve in curves or ():
        if misfits.get(curve.optimizer):
            continue  # one warning per optimizer: the misfit says it with the schedule's own numbers
        specs = setup.schedulers_of(curve.optimizer)
        names = optimizer_names(setup.schedulers, setup.optimizers)
        only = specs[0] if len(specs) == 1 else None
        message = shape_problem(curve, only, run, names.optimizers[curve.optimizer] if curve.optimizer < len(
            names.optimizers) else f"optimizer {curve.optimizer}", fits=only is not None and horizon_of(
            only.scheduler).end is not None)
        if message:
            misfits[curve.optimizer] = True
            warn(message, at=at)


def _curves(setup: OptimizerSetup, run: Run, module: Any, trainer: Any) -> Optional[list[Curve]]:
    """The lr curve of every optimizer with a scheduler, replayed on copies (None when it cannot be: a module whose
    own ``optimizer_step`` may set lrs by hand, a scheduler that cannot be copied, a rank other than 0)."""
    if not getattr(trainer, "is_global_zero", True) or run.loop is None or not run.optimizer_steps:
        return None
    view, by_hand = None, False
    clock = _Clock(trainer)
    if module is not None and is_lightning_module(module):
        for name in ("lr_scheduler_step", "optimizer_step"):
            if name == "optimizer_step" and run.loop.mode != "automatic":
                continue  # the alternating mixin calls it itself, as its loop model says
            own = hooks.user_hook(type(module), name) if hooks.overridden(module, name) else None
            if own is not None and not hooks.replayable(own):
                log.debug("%s's own `%s` does more than step or set what it is given: its lr curve is checked"
                          " during training.", type(module).__name__, name)
                return None
            by_hand = by_hand or (own is not None and name == "optimizer_step")
        view = _view(module, clock)
    try:
        curves = replay_curves(setup, run.loop, run.batches or 1, run.optimizer_steps, view, clock,
                               run_optimizer_step=by_hand)
    except Exception as err:  # noqa: BLE001 - a user's scheduler or hook that fails on a copy: not checked
        log.debug("The schedules could not be replayed before training (%s: %s): not checked.",
                  type(err).__name__, err)
        return None
    with_scheduler = {spec.optimizer_index for spec in setup.schedulers if not spec.reduce_on_plateau}
    return [curve for curve in curves or () if curve.optimizer in with_scheduler]


class _Clock:
    """The replay's Trainer: its own ``global_step`` and ``current_epoch``, everything else the real Trainer's."""

    def __init__(self, trainer: Any) -> None:
        self._trainer, self.global_step, self.current_epoch = trainer, 0, 0

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._trainer, name)


def _view(module: Any, clock: _Clock) -> Any:
    """A shallow copy of `module` whose ``trainer`` is the replay's `clock`: its hooks read the replayed step and epoch;
    its parameters, submodules and attributes are the module's own (nothing is copied). Made without calling the
    class (as `copy.copy` would): a module sharded by FSDP2 re-runs ``__init__`` when its class is called."""
    view = object.__new__(type(module))
    view.__dict__.update(module.__dict__)
    view.__dict__["_trainer"] = clock
    return view


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


def check_plateau_steps(setup: OptimizerSetup, trainer: Any, run: Run) -> None:
    """A strict ``ReduceLROnPlateau`` on a validation metric, stepped after optimizer steps (interval='step'), that
    steps before the run's first validation: Lightning fails there (the metric is not available yet). Say it now."""
    if getattr(getattr(trainer, "state", None), "fn", None) != "fit":
        return  # a preview's stand-in Trainer: the real run's validation is not known
    batches = run.batches or 0
    for spec in setup.schedulers:
        if not (spec.reduce_on_plateau and spec.strict and spec.interval == "step" and spec.monitor) or batches < 1:
            continue
        if not spec.monitor.lower().startswith(("val", "valid")):
            continue
        first = next((b for b in range(batches) if ((b + 1) % run.accumulate == 0 or b == batches - 1)
                      and (b + 1) % spec.frequency == 0), None)  # Lightning counts batches within the epoch
        if first is None:
            continue
        validates, every = getattr(trainer, "enable_validation", True), getattr(trainer, "check_val_every_n_epoch", 1)
        check = getattr(trainer, "val_check_batch", None)
        if not isinstance(check, int):
            interval = getattr(trainer, "val_check_interval", 1.0)
            check = interval if isinstance(interval, int) else max(1, int(batches * float(interval or 1.0)))
        if not validates:
            why = "this run validates nothing (no `validation_step`, no val data, or `limit_val_batches=0`)"
        elif isinstance(every, int) and every > 1:
            why = f"`Trainer(check_val_every_n_epoch={every})` first validates at the end of epoch {every - 1}"
        elif check - 1 > first:
            why = (f"the first validation runs after batch {check - 1}"
                   f" (`val_check_interval={getattr(trainer, 'val_check_interval', 1.0)!r}`)")
        else:
            continue
        every_text = "every optimizer step" if spec.frequency == 1 else f"every {spec.frequency} batches"
        frequency = f" 'frequency': {check} (step it after each validation)," if validates and not (
            isinstance(every, int) and every > 1) else ""
        raise RecipeError(
            f"The ReduceLROnPlateau{f' {spec.name!r}' if spec.name else ''} monitors {spec.monitor!r} after"
            f" {every_text} (interval='step'), so it first steps after batch {first} of epoch 0, but {why}: Lightning"
            f" stops there with \"ReduceLROnPlateau conditioned on metric {spec.monitor} which is not available\"."
            f" Fix one of: 'interval': 'epoch' in its scheduler dict (step it once per epoch, after validation),"
            f"{frequency} 'strict': False (skip the steps without the metric), or monitor a metric logged in"
            " `training_step`."
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
