"""The recipe catalogue: named optimizer recipes from papers, each with the source of every number it states.

``list_recipes()`` lists them; ``get_recipe(name, **changes)`` returns one as a recipe dict that works wherever a
recipe dict does (`OptimRecipeMixin`, `configure_from_recipe`, `preview_schedule`, the command line, YAML:
``optim_recipe: {recipe: bert-finetune, lr: 3.0e-5}``). One module per family.
"""

from __future__ import annotations

import copy
from typing import Any

from lightning_optim_recipes.recipes import classic, gans, language, vision  # noqa: F401 - they register theirs
from lightning_optim_recipes.recipes._registry import REGISTRY, CatalogueRecipe, Source, lookup
from lightning_optim_recipes.recipe import RECIPE_KEYS, merge, resolve_recipe
from lightning_optim_recipes._checks import check_keys

__all__ = ["CatalogueRecipe", "Source", "describe_recipe", "get_recipe", "list_recipes"]


def list_recipes() -> dict[str, str]:
    """The catalogue: recipe names with a one-line description each.

    Example:
        >>> "wgan-gp" in list_recipes()
        True
    """
    return {name: entry.summary for name, entry in sorted(REGISTRY.items())}


def describe_recipe(name: str) -> CatalogueRecipe:
    """The catalogue entry `name`: its recipe, its source, where each number comes from and the choices it made.

    Example:
        >>> print(describe_recipe("wgan-gp").source.where)
        Algorithm 1 (default values)
    """
    return lookup(name)


def get_recipe(name: str, **changes: Any) -> dict[str, Any]:
    """The recipe `name` as a recipe dict, with `changes` applied (dicts merged key by key).

    Example:
        >>> recipe = get_recipe("wgan-gp", alternation_cycle="epoch")
        >>> recipe["optimizers"]["critic"]["lr"], recipe["alternation"], recipe["alternation_cycle"]
        (0.0001, {'critic': 5, 'generator': 1}, 'epoch')
    """
    entry = lookup(name)
    check_keys(changes, tuple(k for k in RECIPE_KEYS if k != "recipe"), f"the changes to recipe {name!r}")
    recipe = merge(copy.deepcopy(dict(entry.recipe)), changes)
    recipe["recipe"] = name
    resolve_recipe(recipe)  # checks the result now rather than at fit time
    return recipe


def catalogue_recipe(name: str) -> dict[str, Any]:
    """The catalogue entry's recipe dict (without the ``recipe`` key): what ``{'recipe': name}`` starts from."""
    return copy.deepcopy(dict(lookup(name).recipe))
