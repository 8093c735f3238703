"""The recipe catalogue's registry: plain data. Each entry is a recipe dict with the source of every number in it.

It imports nothing of the library above `errors`: the recipe engine resolves ``{'recipe': name}`` through it, and
the catalogue's front (`lightning_optim_recipes.recipes`), its pages and the command line read it.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Optional

from torch import nn

from lightning_optim_recipes.errors import RecipeError

__all__ = ["LrScaling", "RecipeEntry", "Source", "lookup", "recipe_of", "register"]


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
class RecipeEntry:
    """One named recipe of the catalogue, as data (`describe_recipe` returns it as a `CatalogueRecipe`, whose
    docstring describes each field for the public API: name, summary, source, recipe, numbers, choices, preview, notes,
    also, module).
    """

    name: str
    summary: str
    source: Source
    recipe: Mapping[str, Any]
    numbers: tuple[tuple[str, str, str], ...] = ()
    choices: tuple[str, ...] = ()
    preview: Mapping[str, int] = dataclasses.field(default_factory=lambda: {"max_epochs": 10, "steps_per_epoch": 100})
    notes: tuple[str, ...] = ()
    also: tuple[Source, ...] = ()
    module: Optional[Callable[[], nn.Module]] = None

    def lr_scalings(self, batch_size: Optional[int] = None) -> list[LrScaling]:
        """How each of the recipe's lrs scales with the global batch (`batch_size`, default: the preview's), one
        `LrScaling` per optimizer that scales its lr; empty for a recipe that does not.

        Example:
            >>> [str(s) for s in lookup("deit").lr_scalings(256)]
            ['lr = 0.0005 x 256 / 512 = 0.00025']
        """
        batch = batch_size if batch_size is not None else self.preview.get("batch_size")
        return [LrScaling(role, spec["lr"], batch, spec["lr_scaling"]["base_batch_size"])
                for role, spec in _optimizer_specs(self.recipe) if spec.get("lr_scaling") is not None]

    def preview_recipe(self, batch_size: Optional[int] = None) -> dict[str, Any]:
        """What the preview builds: ``{'recipe': name}``, with the global ``batch_size`` (`batch_size`, default: the
        preview's) when the recipe scales its lr by it."""
        recipe: dict[str, Any] = {"recipe": self.name}
        batch = batch_size if batch_size is not None else self.preview.get("batch_size")
        if batch is not None and any(spec.get("lr_scaling") for _, spec in _optimizer_specs(self.recipe)):
            recipe["batch_size"] = batch
        return recipe


@dataclasses.dataclass(frozen=True)
class LrScaling:
    """One lr scaled by the global batch: ``lr x batch / base_batch_size`` (`role`: its optimizer's name under
    ``optimizers``, None for a recipe's only optimizer)."""

    role: Optional[str]
    lr: float
    batch_size: Optional[int]
    base_batch_size: int

    @property
    def scaled(self) -> Optional[float]:
        """The lr for `batch_size` (None without one)."""
        return None if self.batch_size is None else self.lr * self.batch_size / self.base_batch_size

    def __str__(self) -> str:
        who = f"{self.role} " if self.role else ""
        if self.batch_size is None:
            return f"{who}lr = {self.lr:g} x global batch / {self.base_batch_size}"
        return f"{who}lr = {self.lr:g} x {self.batch_size} / {self.base_batch_size} = {self.scaled:.6g}"


def _optimizer_specs(recipe: Mapping[str, Any]) -> Iterator[tuple[Optional[str], Mapping[str, Any]]]:
    """(name, spec) of each optimizer of a recipe: (None, the recipe) for one optimizer."""
    if "optimizers" in recipe:
        yield from recipe["optimizers"].items()
    else:
        yield None, recipe


REGISTRY: dict[str, RecipeEntry] = {}


def register(entry: RecipeEntry) -> RecipeEntry:
    """Add `entry` to the catalogue (its name must be new)."""
    if entry.name in REGISTRY:
        raise RecipeError(f"The catalogue already has a recipe named {entry.name!r}: give yours another name.")
    REGISTRY[entry.name] = entry
    return entry


def lookup(name: Any) -> RecipeEntry:
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


def recipe_of(name: Any) -> dict[str, Any]:
    """The catalogue entry's recipe dict (without the ``recipe`` key), a copy: what ``{'recipe': name}`` starts from.

    Example:
        >>> recipe_of("wgan-gp")["alternation"]
        {'critic': 5, 'generator': 1}
    """
    return copy.deepcopy(dict(lookup(name).recipe))
