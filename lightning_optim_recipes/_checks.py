"""Small argument checks shared by the modules, each raising `RecipeError` with the fix in the message."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from lightning_optim_recipes.errors import RecipeError


def check_keys(mapping: Mapping[str, Any], valid: Sequence[str], where: str) -> None:
    """Raise on the first key of `mapping` not in `valid`, suggesting the closest valid one."""
    for key in mapping:
        if key in valid:
            continue
        close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise RecipeError(f"Unknown key {key!r} in {where}: {hint}Valid keys: {', '.join(repr(k) for k in valid)}.")
