"""How long a scheduler factory's warm-up, decay and run are: from what the factory was given (steps, a fraction of
the run, epochs) and the run's sizes read from the Trainer, and the multiplier its decay ends at. `schedulers` and
`wsd` read them; each raises a `RecipeError` that names the argument and the fix.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from torch.optim import Optimizer

from lightning_optim_recipes.errors import RecipeError, warn

__all__ = ["check_warmup_start", "decay_steps_of", "final_multiplier", "requested_warmup", "steps_per_epoch_of",
           "total_steps_from", "warmup_length"]


def final_multiplier(optimizer: Optimizer, what: str, min_lr: Optional[float], min_lr_ratio: Optional[float]) -> float:
    """The multiplier the schedule ends at."""
    if min_lr is not None and min_lr_ratio is not None:
        raise RecipeError(f"`{what}` got both `min_lr` (absolute) and `min_lr_ratio` (of the peak): remove one.")
    if min_lr_ratio is not None:
        if isinstance(min_lr_ratio, bool) or not isinstance(min_lr_ratio, (int, float)) or not 0 <= min_lr_ratio <= 1:
            raise RecipeError(f"`min_lr_ratio` must be between 0 and 1 (a fraction of the peak lr), got {min_lr_ratio!r}.")
        return float(min_lr_ratio)
    min_lr = 0.0 if min_lr is None else min_lr
    base_lr = optimizer.defaults.get("lr")
    if not isinstance(base_lr, (int, float)) or base_lr <= 0:
        raise RecipeError(
            f"`{what}` needs the optimizer's default lr to place `min_lr`, got lr={base_lr!r}:"
            f" construct {type(optimizer).__name__} with `lr=`."
        )
    if isinstance(min_lr, bool) or not isinstance(min_lr, (int, float)) or not 0 <= min_lr <= base_lr:
        raise RecipeError(f"`min_lr` must be between 0 and the optimizer's lr ({base_lr}), got {min_lr!r}.")
    return min_lr / base_lr


def check_warmup_start(start: Any) -> None:
    if start is None or start == "zero":
        return
    if isinstance(start, bool) or not isinstance(start, (int, float)) or not 0 <= start <= 1:
        raise RecipeError(
            f"`warmup_start` must be a number in [0, 1] (the warm-up's multiplier of the peak lr at its first step) or"
            f" 'zero' (step k at k / warm-up steps, the first at lr 0), got {start!r}. In a recipe, 'unscaled' starts the warm-up at the lr before `lr_scaling`."
        )


def decay_steps_of(fraction: Any, total: int, warmup: int, what: str) -> Optional[int]:
    """The steps the warm-up and the decay span for ``decay_fraction`` (None: the whole run, no hold)."""
    if fraction is None:
        return None
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise RecipeError(
            f"`decay_fraction` must be in (0, 1] (the share of the run after which the lr holds at its floor), got"
            f" {fraction!r}."
        )
    steps = int(round(fraction * total))
    if steps <= max(warmup, 1):
        raise RecipeError(
            f"`{what}`'s `decay_fraction` {fraction!r} of the run's {total} steps ends the decay at step {steps - 1},"
            f" before the {warmup}-step warm-up is over: set a larger `decay_fraction`, or a shorter warm-up."
        )
    return steps if steps < total else None


def requested_warmup(steps: Optional[int], fraction: Optional[float], epochs: Optional[float], total: Optional[int],
               per_epoch: Optional[int], warmup: int, what: str) -> float:
    """The warm-up's length before rounding, in optimizer steps; a `RecipeWarning` when a warm-up given as a fraction
    of the run or in epochs rounds to 0 steps (training would start at the peak lr, in silence)."""
    if steps is not None:
        return float(steps)
    if fraction is not None:
        given, requested = f"warmup_fraction={fraction!r} of the run's {total} optimizer steps", fraction * (total or 0)
    else:
        given, requested = f"warmup_epochs={epochs!r} of {per_epoch} optimizer steps", (epochs or 0) * (per_epoch or 0)
    if warmup == 0 and requested > 0:
        warn(
            f"`{what}`'s warm-up of {given} ({requested:.3g} steps) rounds to 0 steps: training starts at the peak"
            " lr, with no warm-up. Give it at least one step (`warmup_steps=1`, or in a recipe's scheduler"
            " {'warmup_fraction': None, 'warmup_steps': 1}), or train longer. If no warm-up is meant, set the fraction"
            " or the epochs to 0, or silence this with `warnings.filterwarnings('ignore', '.*rounds to 0 steps')`."
        )
    return float(requested)


def warmup_length(
    steps: Any, fraction: Optional[float], epochs: Optional[float], total: Optional[int],
    per_epoch: Optional[int], what: str,
) -> int:
    given = [k for k, v in (("warmup_steps", steps), ("warmup_fraction", fraction), ("warmup_epochs", epochs))
             if v is not None]
    if len(given) != 1:
        raise RecipeError(
            f"`{what}` needs the warm-up's length in exactly one way, got {', '.join(given) or 'none'}: pass one of"
            " `warmup_steps=` (optimizer steps), `warmup_fraction=` (of the run) or `warmup_epochs=`."
        )
    if steps is not None:
        return steps  # checked by the schedule
    if fraction is not None:
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction < 1:
            raise RecipeError(f"`warmup_fraction` must be in [0, 1) (a share of the run), got {fraction!r}.")
        return int(round(fraction * (total or 0)))
    if isinstance(epochs, bool) or not isinstance(epochs, (int, float)) or epochs < 0:
        raise RecipeError(f"`warmup_epochs` must be a non-negative number of epochs, got {epochs!r}.")
    return int(round(epochs * (per_epoch or 0)))


def steps_per_epoch_of(trainer: Any, what: str) -> int:
    """Optimizer steps per epoch of the run, from the Trainer (its epoch length and accumulation)."""
    if trainer is None:
        raise RecipeError(
            f"`{what}` counts in epochs, so it needs the run's epoch length: pass `trainer=self.trainer` inside"
            " `configure_optimizers` (or `steps_per_epoch=`)."
        )
    total = total_steps_from(trainer, what)
    batches = getattr(trainer, "num_training_batches", None)
    accumulate = getattr(trainer, "accumulate_grad_batches", 1) or 1
    if isinstance(batches, int) and batches > 0:
        return math.ceil(batches / accumulate)
    epochs = getattr(trainer, "max_epochs", None)
    if isinstance(epochs, int) and epochs > 0:
        return max(total // epochs, 1)
    raise RecipeError(f"`{what}` counts in epochs, but the run has no epoch length: set `max_epochs` on the Trainer.")


def total_steps_from(trainer: Any, what: str = "warmup_cosine") -> int:
    if trainer is None:
        raise RecipeError(
            f"`{what}` needs the length of training: pass `total_steps=`, or `trainer=self.trainer` inside"
            " `configure_optimizers` to use `trainer.estimated_stepping_batches`."
        )
    total = trainer.estimated_stepping_batches
    if not isinstance(total, (int, float)) or total == float("inf") or total < 1:
        raise RecipeError(
            f"`trainer.estimated_stepping_batches` is {total!r}, so the schedule has no end: set `max_steps` or"
            " `max_epochs` on the Trainer, or pass `total_steps=`."
        )
    return int(total)

