"""The recipe catalogue as data: named optimizer recipes from papers, with the source of every number each states.

One module per family (`classic`, `gans`, `language`, `optimizers`, `schedule_free`, `vision`) registers its entries
(`RecipeEntry`) in the registry when imported; `_examples` holds the small models the entries are written for. Nothing
here imports the library
above `errors`: the recipe engine reads it to resolve ``{'recipe': name}``, and the catalogue's front
(`lightning_optim_recipes.recipes`: `list_recipes`, `describe_recipe`, `get_recipe`), its pages and the command
line present it.
"""

from lightning_optim_recipes.catalogue import (  # noqa: F401 - they register theirs
    classic,
    gans,
    language,
    optimizers,
    schedule_free,
    vision,
)
from lightning_optim_recipes.catalogue._registry import (
    REGISTRY,
    LrScaling,
    RecipeEntry,
    Source,
    lookup,
    recipe_of,
    register,
)

__all__ = ["REGISTRY", "LrScaling", "RecipeEntry", "Source", "lookup", "recipe_of", "register"]
