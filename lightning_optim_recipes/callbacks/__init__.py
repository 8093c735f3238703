"""Callbacks: learning-rate logging, cadence checks and configuration checks (both Lightning namespaces)."""

from lightning_optim_recipes.callbacks._cadence_report import CadenceReport, OptimizerCadence, SchedulerCadence
from lightning_optim_recipes.callbacks.cadence_check import SchedulerCadenceCheck
from lightning_optim_recipes.callbacks.configure_check import ConfigureOptimizersCheck
from lightning_optim_recipes.callbacks.lr_logger import LearningRateLogger

__all__ = [
    "CadenceReport",
    "ConfigureOptimizersCheck",
    "LearningRateLogger",
    "OptimizerCadence",
    "SchedulerCadence",
    "SchedulerCadenceCheck",
]
