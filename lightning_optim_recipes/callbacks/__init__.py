"""Callbacks: learning-rate logging, cadence checks and configuration checks (both Lightning namespaces)."""

from lightning_optim_recipes.callbacks.cadence_check import (
    CadenceReport,
    OptimizerCadence,
    SchedulerCadence,
    SchedulerCadenceCheck,
)
from lightning_optim_recipes.callbacks.lr_logger import LearningRateLogger

__all__ = ["CadenceReport", "LearningRateLogger", "OptimizerCadence", "SchedulerCadence", "SchedulerCadenceCheck"]
