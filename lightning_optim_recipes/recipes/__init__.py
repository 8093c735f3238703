"""The recipe catalogue's front: named optimizer recipes from papers, each with the source of every number it states.

``list_recipes()`` lists them; ``get_recipe(name, **changes)`` returns one as a recipe dict that works wherever a
recipe dict does (`OptimRecipeMixin`, `configure_from_recipe`, `preview_schedule`, the command line, YAML:
``optim_recipe: {recipe: bert-finetune, lr: 3.0e-5}``); ``describe_recipe(name)`` returns its entry, whose
``preview_schedule()`` shows its schedule. The entries themselves are plain data in `lightning_optim_recipes.catalogue`.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Optional

from lightning_optim_recipes._checks import check_keys
from lightning_optim_recipes.catalogue import REGISTRY, RecipeEntry, Source, lookup
from lightning_optim_recipes.preview import SchedulePreview, preview_schedule
from lightning_optim_recipes.recipe import RECIPE_KEYS, apply_changes, resolve_recipe

__all__ = ["CatalogueRecipe", "Source", "describe_recipe", "get_recipe", "list_recipes"]


@dataclasses.dataclass(frozen=True)
class CatalogueRecipe(RecipeEntry):
    """One named recipe of the catalogue (what `describe_recipe` returns): its recipe, its source, where each number
    comes from, the choices it made, and a preview of its schedule.

    Attributes:
        name: its name in `list_recipes()`.
        summary: one line for `list_recipes()`.
        source: the paper it reproduces.
        recipe: the recipe dict (the format of `configure_from_recipe`).
        numbers: ``(what, where in the source, the source's words)`` for every number the recipe takes from it.
        choices: where the source leaves a value open, the common choice made and why.
        preview: the sizes of a run that shows the schedule (``max_epochs``, ``steps_per_epoch``), and for a recipe
            that scales its lr by the global batch, the ``batch_size`` previewed.
        notes: where the recipe differs from what is often said of it, or from another version of its source
            (the reference code, a later paper), with the source's words.
        also: the other sources a choice or a note quotes.
        module: a class, built without arguments, of a small model the recipe is written for (the parameter names
            and module types its no-decay rule, overrides and layer-wise decay read): previews use it.
    """

    @classmethod
    def of(cls, entry: RecipeEntry) -> CatalogueRecipe:
        """The registry's `entry` (plain data) as a `CatalogueRecipe`."""
        if isinstance(entry, cls):
            return entry
        return cls(**{field.name: getattr(entry, field.name) for field in dataclasses.fields(entry)})

    def preview_schedule(self, *, batch_size: Optional[int] = None, max_epochs: Optional[int] = None,
                         steps_per_epoch: Optional[int] = None) -> SchedulePreview:
        """`preview_schedule` of the recipe on its example `module`, for the preview's sizes (or those given).

        Example:
            >>> preview = describe_recipe("bert-finetune").preview_schedule()
            >>> max(r["lr"] for r in preview), preview[-1]["lr"]
            (5e-05, 0.0)
        """
        return preview_schedule(  # type: ignore[no-any-return]
            self.preview_recipe(batch_size),
            module=self.module() if self.module is not None else None,
            max_epochs=max_epochs if max_epochs is not None else self.preview["max_epochs"],
            steps_per_epoch=steps_per_epoch if steps_per_epoch is not None else self.preview["steps_per_epoch"],
        )


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
    return CatalogueRecipe.of(lookup(name))


def get_recipe(name: str, **changes: Any) -> dict[str, Any]:
    """The recipe `name` as a recipe dict, with `changes` applied (dicts merged key by key). An ``lr`` given to a
    recipe of Muon beside AdamW changes both parts' lrs, the recipe's ratio between them kept (``hybrid``'s own
    ``lr`` and its groups' follow, unless `changes` gives them).

    Example:
        >>> recipe = get_recipe("muon-moonlight", lr=1e-3)
        >>> recipe["lr"], recipe["hybrid"]["lr"]
        (0.001, 0.001)
        >>> recipe = get_recipe("wgan-gp", alternation_cycle="epoch")
        >>> recipe["optimizers"]["critic"]["lr"], recipe["alternation"], recipe["alternation_cycle"]
        (0.0001, {'critic': 5, 'generator': 1}, 'epoch')
    """
    entry = lookup(name)
    check_keys(changes, tuple(k for k in RECIPE_KEYS if k != "recipe"), f"the changes to recipe {name!r}")
    recipe = apply_changes(copy.deepcopy(dict(entry.recipe)), changes)
    recipe["recipe"] = name
    resolve_recipe(recipe)  # checks the result now rather than at fit time
    return recipe
