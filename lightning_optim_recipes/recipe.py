"""Declarative recipes: a plain (YAML-friendly) dict that `configure_from_recipe` turns into optimizers and schedulers.

A recipe names the optimizer (a `torch.optim` class name such as ``"AdamW"``, a dotted path, or a class), its
options, weight decay with a no-decay rule, per-module overrides and a scheduler with its cadence::

    optimizer: AdamW
    lr: 3.0e-4
    weight_decay: 0.05
    optimizer_kwargs: {betas: [0.9, 0.95]}
    no_decay: default            # or none, or a dict added to the default rule:
                                 #   {names: [pos_embed], module_types: [Embedding]}; `replace: true` drops the
                                 #   default norm layers; `bias`/`one_dim`/`use_model_hook: false` turn those off
    overrides: {encoder: {lr: 1.0e-4}}
    scheduler: {type: warmup_cosine, warmup_steps: 100}   # interval/frequency/monitor/name as in `scheduled`
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Optional, TypedDict, Union

import torch
from torch import nn

from lightning_optim_recipes._checks import check_keys
from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.no_decay import DEFAULT_NO_DECAY, NoDecayRule
from lightning_optim_recipes.param_groups import param_groups
from lightning_optim_recipes.schedulers import cosine, exponential, multistep, scheduled, warmup_cosine

__all__ = ["SCHEDULER_FACTORIES", "Recipe", "configure_from_recipe"]

RECIPE_KEYS = ("optimizer", "lr", "weight_decay", "optimizer_kwargs", "no_decay", "overrides", "scheduler")
CADENCE_KEYS = ("interval", "frequency", "monitor", "name", "strict")

#: The library's scheduler factories by recipe name; any `torch.optim.lr_scheduler` class name works too.
SCHEDULER_FACTORIES: dict[str, Callable[..., Any]] = {
    "multistep": multistep,
    "exponential": exponential,
    "cosine": cosine,
    "warmup_cosine": warmup_cosine,
}


class Recipe(TypedDict, total=False):
    """The keys of a recipe dict (all optional except `lr`)."""

    optimizer: Union[str, type]
    lr: float
    weight_decay: float
    optimizer_kwargs: dict[str, Any]
    no_decay: Union[str, dict[str, Any], NoDecayRule, None]
    overrides: dict[str, dict[str, Any]]
    scheduler: Optional[dict[str, Any]]


def configure_from_recipe(module: nn.Module, recipe: Mapping[str, Any], trainer: Any = None) -> dict[str, Any]:
    """Build ``{'optimizer': ..., 'lr_scheduler': ...}`` for `module` from a recipe dict.

    Args:
        module: the model whose parameters are optimized.
        recipe: see `Recipe` and this module's docstring.
        trainer: for schedules that need ``estimated_stepping_batches`` (default: ``module.trainer`` if attached).

    Example:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
        >>> recipe = {"optimizer": "AdamW", "lr": 1e-3, "weight_decay": 0.05,
        ...           "scheduler": {"type": "multistep", "milestones": [2], "gamma": 0.5}}
        >>> config = configure_from_recipe(model, recipe)
        >>> type(config["optimizer"]).__name__, [g["name"] for g in config["optimizer"].param_groups]
        ('AdamW', ['decay', 'no_decay'])
    """
    if not isinstance(recipe, Mapping):
        raise RecipeError(f"A recipe must be a dict such as {{'optimizer': 'AdamW', 'lr': 1e-3}}, got {recipe!r}.")
    check_keys(recipe, RECIPE_KEYS, "the recipe")
    if "lr" not in recipe:
        raise RecipeError("The recipe has no 'lr': add the learning rate, e.g. {'optimizer': 'AdamW', 'lr': 1e-3}.")
    optimizer_cls = _optimizer_class(recipe.get("optimizer", "AdamW"))
    kwargs = dict(recipe.get("optimizer_kwargs") or {})
    if "betas" in kwargs and isinstance(kwargs["betas"], list):
        kwargs["betas"] = tuple(kwargs["betas"])  # YAML has no tuples
    groups = param_groups(
        module,
        weight_decay=recipe.get("weight_decay", 0.0),
        no_decay=_no_decay_rule(recipe.get("no_decay", "default")),
        overrides=recipe.get("overrides"),
    )
    try:
        optimizer = optimizer_cls(groups, lr=recipe["lr"], **kwargs)
    except TypeError as err:
        raise RecipeError(
            f"The recipe's optimizer_kwargs do not fit {optimizer_cls.__name__}: {err}. Remove or rename the"
            f" arguments {optimizer_cls.__name__} does not take."
        ) from err
    config: dict[str, Any] = {"optimizer": optimizer}
    if recipe.get("scheduler") is not None:
        if trainer is None:
            trainer = getattr(module, "_trainer", None)
        config["lr_scheduler"] = _scheduler(optimizer, recipe["scheduler"], trainer)
    return config


def _optimizer_class(spec: Any) -> type:
    if isinstance(spec, type) and issubclass(spec, torch.optim.Optimizer):
        return spec
    if not isinstance(spec, str):
        raise RecipeError(f"The recipe's 'optimizer' must be a name such as 'AdamW' or a class, got {spec!r}.")
    if "." in spec:
        return _import(spec, "optimizer")
    choices = sorted(
        name
        for name, obj in vars(torch.optim).items()
        if inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer) and obj is not torch.optim.Optimizer
    )
    if spec not in choices:
        close = [c for c in choices if c.lower() == spec.lower()]
        close = close or difflib.get_close_matches(spec, choices, n=1, cutoff=0.5)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        raise RecipeError(f"Unknown optimizer {spec!r}. {hint}Expected one of {choices} or a dotted path.")
    return getattr(torch.optim, spec)


_RULE_FLAGS = ("bias", "one_dim", "use_model_hook")


def _no_decay_rule(spec: Any) -> Optional[NoDecayRule]:
    if isinstance(spec, NoDecayRule):
        return spec
    if spec in (None, "none", False):
        return None
    if spec in ("default", True):
        return DEFAULT_NO_DECAY
    if isinstance(spec, Mapping):
        check_keys(spec, ("names", "module_types", "replace") + _RULE_FLAGS, "the recipe's 'no_decay'")
        types = tuple(_module_type(t) for t in spec.get("module_types", ()))
        names = spec.get("names", ())
        names = (names,) if isinstance(names, str) else tuple(names)
        flags = {key: spec[key] for key in _RULE_FLAGS if key in spec}
        for key, value in flags.items():
            if not isinstance(value, bool):
                raise RecipeError(f"The recipe's 'no_decay' {key!r} must be true or false, got {value!r}.")
        base = NoDecayRule(module_types=()) if spec.get("replace") else DEFAULT_NO_DECAY
        return dataclasses.replace(base.extend(names=names, module_types=types), **flags)
    raise RecipeError(
        f"The recipe's 'no_decay' must be 'default', 'none' or a dict such as {{'names': ['pos_embed']}}, got {spec!r}."
    )


def _module_type(spec: Any) -> type[nn.Module]:
    if isinstance(spec, type) and issubclass(spec, nn.Module):
        return spec
    if isinstance(spec, str) and "." not in spec and isinstance(getattr(nn, spec, None), type):
        return getattr(nn, spec)
    if isinstance(spec, str) and "." in spec:
        return _import(spec, "module type")
    raise RecipeError(f"Unknown module type {spec!r} in 'no_decay': use a `torch.nn` name such as 'Embedding'.")


def _scheduler(optimizer: torch.optim.Optimizer, spec: Any, trainer: Any) -> Any:
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise RecipeError(
            "The recipe's 'scheduler' must be a dict with a 'type', e.g. {'type': 'multistep', 'milestones': [30]},"
            f" got {spec!r}."
        )
    kind, options = spec["type"], {k: v for k, v in spec.items() if k != "type"}
    if kind in SCHEDULER_FACTORIES:
        factory = SCHEDULER_FACTORIES[kind]
        if kind == "warmup_cosine" and "total_steps" not in options:
            options["trainer"] = trainer
        check_keys(options, tuple(inspect.signature(factory).parameters)[1:], f"the {kind!r} scheduler")
        return factory(optimizer, **options)
    cls: Any = getattr(torch.optim.lr_scheduler, kind, None) if isinstance(kind, str) else None
    if not (inspect.isclass(cls) and hasattr(cls, "step")):
        choices = list(SCHEDULER_FACTORIES) + ["any torch.optim.lr_scheduler class, e.g. 'StepLR'"]
        known = list(SCHEDULER_FACTORIES) + [n for n, c in vars(torch.optim.lr_scheduler).items() if inspect.isclass(c)]
        close = [k for k in known if isinstance(kind, str) and k.lower() == kind.lower()] or (
            difflib.get_close_matches(kind, known, n=1, cutoff=0.6) if isinstance(kind, str) else []
        )
        hint = f"Did you mean {close[0]!r}? " if close else ""
        raise RecipeError(f"Unknown scheduler type {kind!r}. {hint}Expected one of {choices}.")
    cadence = {k: options.pop(k) for k in CADENCE_KEYS if k in options}
    try:
        scheduler = cls(optimizer, **options)  # type: ignore[call-arg]
    except TypeError as err:
        raise RecipeError(
            f"The recipe's scheduler options do not fit {kind}: {err}. Remove or rename the options {kind} does not"
            " take (cadence keys are 'interval', 'frequency', 'monitor', 'name', 'strict')."
        ) from err
    return scheduled(scheduler, **cadence)


def _import(path: str, what: str) -> Any:
    module_name, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise RecipeError(
            f"Cannot import the {what} {path!r}: {err}. Fix the dotted path (`package.module.Name`) or install the"
            " package that provides it."
        ) from err
