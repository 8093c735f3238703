"""Small argument checks shared by the modules, each raising `RecipeError` with the fix in the message."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from lightning_optim_recipes.errors import RecipeError


#: Other names for a key that spelling alone does not suggest (``learning_rate`` for ``lr``).
ALIASES = {"learning_rate": "lr", "learningrate": "lr", "base_lr": "lr", "wd": "weight_decay", "optim": "optimizer",
           "opt": "optimizer", "lr_scheduler": "scheduler", "schedule": "scheduler", "sched": "scheduler",
           "betas": "optimizer_kwargs", "momentum": "optimizer_kwargs", "eps": "optimizer_kwargs",
           "nesterov": "optimizer_kwargs", "clip": "gradient_clip_val", "grad_clip": "gradient_clip_val"}


def check_keys(mapping: Mapping[str, Any], valid: Sequence[str], where: str) -> None:
    """Raise on the first key of `mapping` not in `valid`, suggesting the closest valid one (or the key it is another
    name for: ``learning_rate`` -> ``lr``).

    Example:
        >>> check_keys({"learning_rate": 1e-3}, ["optimizer", "lr"], "the recipe")
        Traceback (most recent call last):
        ...
        lightning_optim_recipes.errors.RecipeError: Unknown key 'learning_rate' in the recipe: did you mean 'lr'? Valid keys: 'optimizer', 'lr'.
    """
    for key in mapping:
        if key in valid:
            continue
        alias = ALIASES.get(str(key).lower())
        close = [alias] if alias in valid else difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise RecipeError(f"Unknown key {key!r} in {where}: {hint}Valid keys: {', '.join(repr(k) for k in valid)}.")


def count(number: int, noun: str) -> str:
    """`number` and `noun`, plural unless it is 1.

    Example:
        >>> count(1, "time"), count(0, "step"), count(2, "trainable parameter")
        ('1 time', '0 steps', '2 trainable parameters')
    """
    return f"{number} {noun if number == 1 else noun + 's'}"
