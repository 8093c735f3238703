"""The library's error and warning types."""

from __future__ import annotations

__all__ = ["CadenceError", "RecipeError", "RecipeWarning"]


class RecipeError(ValueError):
    """A mistake in an optimizer, param-group or scheduler configuration, raised before training starts.

    Example:
        >>> from lightning_optim_recipes import RecipeError, scheduled
        >>> import torch
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        >>> try:
        ...     scheduled(torch.optim.lr_scheduler.StepLR(opt, 1), interval="batch")
        ... except RecipeError as err:
        ...     print(str(err).split(".")[0])
        `interval` must be 'step' or 'epoch', got 'batch'
    """


class CadenceError(RuntimeError):
    """A scheduler stepped more or less often than the cadence it declared (see `SchedulerCadenceCheck`)."""


class RecipeWarning(UserWarning):
    """A configuration that runs but is probably not what was meant (e.g. a warmup on an 'epoch' interval)."""
