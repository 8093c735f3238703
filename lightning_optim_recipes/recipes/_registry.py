"""The recipe catalogue's registry: each entry is a recipe dict with the source of every number in it."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any, Optional

from lightning_optim_recipes.errors import RecipeError

__all__ = ["CatalogueRecipe", "Source", "register"]


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a recipe's numbers come from.

    Attributes:
        authors: e.g. ``"Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville"``.
        year: the year of the version cited.
        title: the paper's title.
        venue: where it appeared (``"NeurIPS 2017"``, ``"arXiv:1704.00028"``).
        where: the section, table or algorithm the numbers are taken from.
    """

    authors: str
    year: int
    title: str
    venue: str
    where: str

    def citation(self) -> str:
        """``Authors (year), "Title", venue, where``."""
        return f'{self.authors} ({self.year}), "{self.title}", {self.venue}; {self.where}'


@dataclasses.dataclass(frozen=True)
class CatalogueRecipe:
    """One named recipe of the catalogue.

    Attributes:
        name: its name in `list_recipes()`.
        summary: one line for `list_recipes()`.
        source: the paper it reproduces.
        recipe: the recipe dict (the format of `configure_from_recipe`).
        numbers: ``(what, where in the source, the source's words)`` for every number the recipe takes from it.
        choices: where the source leaves a value open, the common choice made and why.
        preview: the sizes of a run that shows the schedule (``max_epochs``, ``steps_per_epoch``).
    """

    name: str
    summary: str
    source: Source
    recipe: Mapping[str, Any]
    numbers: tuple[tuple[str, str, str], ...] = ()
    choices: tuple[str, ...] = ()
    preview: Mapping[str, int] = dataclasses.field(default_factory=lambda: {"max_epochs": 10, "steps_per_epoch": 100})


REGISTRY: dict[str, CatalogueRecipe] = {}


def register(entry: CatalogueRecipe) -> CatalogueRecipe:
    """Add `entry` to the catalogue (its name must be new)."""
    if entry.name in REGISTRY:
        raise RecipeError(f"The catalogue already has a recipe named {entry.name!r}: give yours another name.")
    REGISTRY[entry.name] = entry
    return entry


def lookup(name: Any) -> CatalogueRecipe:
    """The catalogue entry `name`, or a `RecipeError` that suggests the close names."""
    entry = REGISTRY.get(name) if isinstance(name, str) else None
    if entry is None:
        names = sorted(REGISTRY)
        close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise RecipeError(
            f"Unknown recipe {name!r}: {hint}the catalogue has {', '.join(repr(n) for n in names)}"
            " (`list_recipes()`, or `python -m lightning_optim_recipes recipes`)."
        )
    return entry


def suggest(key: str, valid: list[str]) -> Optional[str]:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    return close[0] if close else None
