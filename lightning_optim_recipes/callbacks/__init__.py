"""Callbacks: learning-rate logging, cadence checks, configuration checks and the train/eval modes of schedule-free
optimizers (both Lightning namespaces; `ScheduleFreeModes` is defined beside this package, which
`OptimRecipeMixin` adds too)."""

from lightning_optim_recipes.callbacks._cadence_report import CadenceReport, OptimizerCadence, SchedulerCadence
from lightning_optim_recipes.callbacks.cadence_check import SchedulerCadenceCheck
from lightning_optim_recipes.callbacks.configure_check import ConfigureOptimizersCheck
from lightning_optim_recipes.callbacks.lr_logger import LearningRateLogger
from lightning_optim_recipes.schedule_free_modes import ScheduleFreeModes

__all__ = [
    "CadenceReport",
    "ConfigureOptimizersCheck",
    "LearningRateLogger",
    "OptimizerCadence",
    "SchedulerCadence",
    "ScheduleFreeModes",
    "SchedulerCadenceCheck",
]
