"""lightning_optim_recipes: correct `configure_optimizers` for PyTorch Lightning, by construction.

Param groups with weight decay where it belongs, schedulers with an explicit cadence, a validator for every
`configure_optimizers` form, mixins (declarative recipes, WGAN-style alternation on Lightning 2.x) and callbacks.
"""

from lightning_optim_recipes.mixins.alternating import AlternatingOptimizersMixin
from lightning_optim_recipes.callbacks import (
    CadenceReport,
    ConfigureOptimizersCheck,
    OptimizerCadence,
    SchedulerCadence,
    SchedulerCadenceCheck,
)
from lightning_optim_recipes.errors import CadenceError, RecipeError, RecipeWarning
from lightning_optim_recipes.callbacks import LearningRateLogger
from lightning_optim_recipes.no_decay import DEFAULT_NO_DECAY, NORM_LAYERS, NoDecayRule
from lightning_optim_recipes.param_groups import check_param_groups, param_groups
from lightning_optim_recipes.plot import plot_schedule
from lightning_optim_recipes.preview import SchedulePreview, ScheduleRecord, preview_schedule
from lightning_optim_recipes.recipe import Recipe, configure_from_recipe
from lightning_optim_recipes.mixins.recipe_mixin import OptimRecipeMixin
from lightning_optim_recipes.schedulers import cosine, exponential, multistep, scheduled, warmup_cosine
from lightning_optim_recipes.validation import OptimizerSetup, SchedulerSpec, validate_optimizers

__version__ = "0.1.0"

__all__ = [
    "AlternatingOptimizersMixin",
    "CadenceReport",
    "ConfigureOptimizersCheck",
    "LearningRateLogger",
    "SchedulerCadenceCheck",
    "DEFAULT_NO_DECAY",
    "NORM_LAYERS",
    "CadenceError",
    "NoDecayRule",
    "OptimRecipeMixin",
    "OptimizerCadence",
    "OptimizerSetup",
    "Recipe",
    "RecipeError",
    "RecipeWarning",
    "SchedulePreview",
    "SchedulerCadence",
    "ScheduleRecord",
    "SchedulerSpec",
    "check_param_groups",
    "configure_from_recipe",
    "cosine",
    "exponential",
    "multistep",
    "param_groups",
    "plot_schedule",
    "preview_schedule",
    "scheduled",
    "validate_optimizers",
    "warmup_cosine",
]
