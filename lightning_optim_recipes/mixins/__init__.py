"""Mixins for an existing `LightningModule`: validated or declarative optimizers, and alternating optimizers."""

from lightning_optim_recipes.mixins.alternating import AlternatingOptimizersMixin
from lightning_optim_recipes.mixins.recipe_mixin import OptimRecipeMixin

__all__ = ["AlternatingOptimizersMixin", "OptimRecipeMixin"]
