"""lightning_optim_recipes: correct `configure_optimizers` for PyTorch Lightning, by construction.

Param groups with weight decay where it belongs (and layer-wise lr decay), Muon beside AdamW in one optimizer,
schedulers with an explicit cadence (and warmup-stable-decay schedules with cooldowns from any checkpoint, lengths in
units such as ``"10ep"``), a
catalogue of cited paper recipes, a validator for every `configure_optimizers` form, mixins (declarative recipes,
Lightning 1.x multi-optimizer modules and WGAN-style alternation on Lightning 2.x), callbacks that log learning rates
and check every scheduler's cadence, schedule-free optimizers switched between train and eval mode at every boundary,
and previews of the schedule before training.
"""

import warnings as _warnings

# Lightning 2.6 with torch >= 2.10 warns on every fit that its own code uses a deprecated torch API; nobody but
# Lightning can act on it, so the library silences exactly that message.
_warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning)

from lightning_optim_recipes.callbacks import (  # noqa: E402
    CadenceReport,
    ConfigureOptimizersCheck,
    LearningRateLogger,
    OptimizerCadence,
    ScheduleFreeModes,
    SchedulerCadence,
    SchedulerCadenceCheck,
)
from lightning_optim_recipes.errors import CadenceError, RecipeError, RecipeWarning
from lightning_optim_recipes.hybrid import FlatMuon, HybridOptimizer, hybrid_optimizer
from lightning_optim_recipes.mixins import AlternatingOptimizersMixin, OptimRecipeMixin
from lightning_optim_recipes.muon_split import MuonSplit, SplitRow, muon_split
from lightning_optim_recipes.no_decay import DEFAULT_NO_DECAY, NORM_LAYERS, POSITION_TOKEN_NAMES, NoDecayRule
from lightning_optim_recipes.param_checks import check_param_groups
from lightning_optim_recipes.param_groups import param_groups
from lightning_optim_recipes.plot import plot_schedule
from lightning_optim_recipes.preview import SchedulePreview, ScheduleRecord, preview_schedule
from lightning_optim_recipes.recipe import Recipe, configure_from_recipe
from lightning_optim_recipes.recipes import CatalogueRecipe, describe_recipe, get_recipe, list_recipes
from lightning_optim_recipes.resume import ResumeDifference, ResumeFrom, ResumeReport, place_scheduler
from lightning_optim_recipes.schedulers import (
    cosine,
    exponential,
    multistep,
    scheduled,
    warmup_cosine,
    warmup_linear,
    warmup_multistep,
)
from lightning_optim_recipes.validation import OptimizerSetup, SchedulerSpec, validate_optimizers
from lightning_optim_recipes.wsd import cooldown, warmup_stable_decay

__version__ = "0.1.0"

__all__ = [
    "AlternatingOptimizersMixin",
    "CadenceError",
    "CadenceReport",
    "CatalogueRecipe",
    "ConfigureOptimizersCheck",
    "DEFAULT_NO_DECAY",
    "FlatMuon",
    "HybridOptimizer",
    "LearningRateLogger",
    "MuonSplit",
    "NORM_LAYERS",
    "NoDecayRule",
    "OptimRecipeMixin",
    "OptimizerCadence",
    "OptimizerSetup",
    "POSITION_TOKEN_NAMES",
    "Recipe",
    "RecipeError",
    "RecipeWarning",
    "ResumeDifference",
    "ResumeFrom",
    "ResumeReport",
    "SchedulePreview",
    "ScheduleFreeModes",
    "ScheduleRecord",
    "SchedulerCadence",
    "SchedulerCadenceCheck",
    "SchedulerSpec",
    "SplitRow",
    "check_param_groups",
    "configure_from_recipe",
    "cooldown",
    "cosine",
    "describe_recipe",
    "exponential",
    "get_recipe",
    "hybrid_optimizer",
    "list_recipes",
    "multistep",
    "muon_split",
    "param_groups",
    "place_scheduler",
    "plot_schedule",
    "preview_schedule",
    "scheduled",
    "validate_optimizers",
    "warmup_cosine",
    "warmup_linear",
    "warmup_multistep",
    "warmup_stable_decay",
]
