"""What every entry point runs once ``configure_optimizers`` has been validated, before the first training step.

The mixins (`OptimRecipeMixin`, `AlternatingOptimizersMixin`) and the checking callbacks (`ConfigureOptimizersCheck`,
`SchedulerCadenceCheck`) all call `configured`: the checks that need the run (`lightning_optim_recipes.fit_checks`),
the schedule-free checks (`check_schedule_free`), then the resume reconciliation when the fit resumes from a
checkpoint (`lightning_optim_recipes.resume`), then the check of a cooldown that starts where training resumes
(`lightning_optim_recipes.wsd.check_decay_start`), which the resume has anchored. One call, so that every entry point
checks the same things in the same order.
"""

from __future__ import annotations

from typing import Any, Optional

from lightning_optim_recipes import cadence, fit_checks, schedule_free
from lightning_optim_recipes.resume.deferred import on_configured, restores_after_setup
from lightning_optim_recipes.resume.state import ResumeReport
from lightning_optim_recipes.standin import StandInTrainer
from lightning_optim_recipes.validation import OptimizerSetup
from lightning_optim_recipes.wsd import check_decay_start

__all__ = ["check_schedule_free", "configured"]


def configured(module: Any, setup: OptimizerSetup, trainer: Any, *, loop: Optional[cadence.Loop] = None,
               own_resume: Optional[str] = None, at: Any = None, owner: Any = None) -> Optional[ResumeReport]:
    """Run the checks before training on `setup` (what `module`'s ``configure_optimizers`` returned, validated) for
    `trainer`'s run, then reconcile it with the checkpoint being resumed, if any.

    Args:
        module: the LightningModule.
        setup: its validated optimizers and schedulers.
        trainer: the Trainer (None: no check needs the run).
        loop: the module's own training loop (`AlternatingOptimizersMixin`), else Lightning's automatic one.
        own_resume: the module's ``resume`` option (the mixins'), else the checking callbacks' or "checkpoint".
        at: where warnings point (default: the module's ``configure_optimizers``).
        owner: whose ``resume_report`` a resume reconciled later gets (the module's by default; a strategy that
            loads the checkpoint after ``configure_optimizers``, as FSDP2's, resumes then: `resume.deferred`).

    Returns:
        The resume's `ResumeReport`, or None when the fit does not resume (or resumes later).
    """
    fit_checks.check_before_training(setup, trainer, module, loop=loop, at=at)
    check_schedule_free(module, setup, trainer, at=at)
    report = on_configured(module, setup, trainer, own=own_resume, loop=loop, at=at, owner=owner)
    # a preview checks after its own resume; a strategy that restores after setup, once it has restored
    if trainer is not None and not isinstance(trainer, StandInTrainer) and not restores_after_setup(trainer):
        warned = check_decay_start(setup.schedulers, trainer, at=at if at is not None else fit_checks.user_line(module),
                                   positions=report.positions if report is not None else None)
        module.__dict__.setdefault(fit_checks.WARNED_KEY, {}).update(dict.fromkeys(warned, True))
    return report


def check_schedule_free(module: Any, setup: OptimizerSetup, trainer: Any, *, at: Any = None) -> None:
    """A schedule-free optimizer in a run whose callbacks do not switch its train and eval modes: warn so, and about
    a scheduler attached to it. A run with `ScheduleFreeModes` is left to it (it checks at fit start); in a preview
    (the stand-in Trainer) the real run's callbacks are unknown: only the scheduler is checked."""
    if not any(schedule_free.is_schedule_free(o) for o in setup.optimizers):
        return
    callbacks = getattr(trainer, "callbacks", None) if trainer is not None else None
    if schedule_free.handler(callbacks) is not None or not getattr(trainer, "is_global_zero", True):
        return
    at = at if at is not None else fit_checks.user_line(module)
    schedulers = [(s.scheduler, s.optimizer_index, s.name) for s in setup.schedulers]
    schedule_free.warn_schedulers(setup.optimizers, schedulers, at=at)
    if isinstance(callbacks, list) and not isinstance(trainer, StandInTrainer):
        schedule_free.warn_unhandled(setup.optimizers, module, at=at)
