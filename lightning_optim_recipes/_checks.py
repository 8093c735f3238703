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
           "nesterov": "optimizer_kwargs", "clip": "gradient_clip_val", "grad_clip": "gradient_clip_val",
           "cooldown": "decay"}

#: What other libraries put around a length's name (``num_warmup_steps``, ``warmup_epochs``): `check_keys` compares
#: the names without them, so that ``warmup_steps`` suggests ``warmup`` (and ``warmup`` suggests ``warmup_steps``).
_LENGTH_PREFIXES = ("num_", "n_", "number_of_")
_LENGTH_SUFFIXES = ("_steps", "_step", "_epochs", "_epoch", "_iters", "_iter", "_iterations", "_batches")


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
        stem = _length_stem(str(key))
        alias = ALIASES.get(str(key).lower()) or ALIASES.get(stem)
        close = [alias] if alias in valid else [k for k in valid if _length_stem(k) == stem][:1] or \
            difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise RecipeError(f"Unknown key {key!r} in {where}: {hint}Valid keys: {', '.join(repr(k) for k in valid)}.")


def _length_stem(key: str) -> str:
    """`key` without the words around a length's name: ``num_warmup_steps`` -> ``warmup``.

    Example:
        >>> [_length_stem(k) for k in ("num_warmup_steps", "warmup_epochs", "decay_steps", "warmup", "warmup_start")]
        ['warmup', 'warmup', 'decay', 'warmup', 'warmup_start']
    """
    stem = key.lower()
    for prefix in _LENGTH_PREFIXES:
        if stem.startswith(prefix) and len(stem) > len(prefix):
            stem = stem[len(prefix):]
            break
    for suffix in _LENGTH_SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[:-len(suffix)]
    return stem


def count(number: int, noun: str) -> str:
    """`number` and `noun`, plural unless it is 1.

    Example:
        >>> count(1, "time"), count(0, "step"), count(2, "trainable parameter")
        ('1 time', '0 steps', '2 trainable parameters')
    """
    return f"{number} {noun if number == 1 else noun + 's'}"
