"""What every entry point runs once ``configure_optimizers`` has been validated, before the first training step.

The mixins (`OptimRecipeMixin`, `AlternatingOptimizersMixin`) and the checking callbacks (`ConfigureOptimizersCheck`,
`SchedulerCadenceCheck`) all call `configured`: the checks that need the run (`lightning_optim_recipes.fit_checks`),
then the resume reconciliation when the fit resumes from a checkpoint (`lightning_optim_recipes.resume`), then the
check of a cooldown that starts where training resumes (`lightning_optim_recipes.wsd.check_decay_start`), which the
resume has anchored. One call, so that every entry point checks the same things in the same order.
"""

from __future__ import annotations

from typing import Any, Optional

from lightning_optim_recipes import cadence, fit_checks
from lightning_optim_recipes.resume.reconcile import on_configured
from lightning_optim_recipes.resume.state import ResumeReport
from lightning_optim_recipes.standin import StandInTrainer
from lightning_optim_recipes.validation import OptimizerSetup
from lightning_optim_recipes.wsd import check_decay_start

__all__ = ["configured"]


def configured(module: Any, setup: OptimizerSetup, trainer: Any, *, loop: Optional[cadence.Loop] = None,
               own_resume: Optional[str] = None, at: Any = None) -> Optional[ResumeReport]:
    """Run the checks before training on `setup` (what `module`'s ``configure_optimizers`` returned, validated) for
    `trainer`'s run, then reconcile it with the checkpoint being resumed, if any.

    Args:
        module: the LightningModule.
        setup: its validated optimizers and schedulers.
        trainer: the Trainer (None: no check needs the run).
        loop: the module's own training loop (`AlternatingOptimizersMixin`), else Lightning's automatic one.
        own_resume: the module's ``resume`` option (the mixins'), else the checking callbacks' or "checkpoint".
        at: where warnings point (default: the module's ``configure_optimizers``).

    Returns:
        The resume's `ResumeReport`, or None when the fit does not resume.
    """
    fit_checks.check_before_training(setup, trainer, module, loop=loop, at=at)
    report = on_configured(module, setup, trainer, own=own_resume, loop=loop, at=at)
    if trainer is not None and not isinstance(trainer, StandInTrainer):  # a preview checks after its own resume
        check_decay_start(setup.schedulers, trainer, at=at if at is not None else fit_checks.user_line(module))
    return report
