"""The library's error and warning types."""

from __future__ import annotations

import functools
import os
import sys
import types
import warnings
from typing import Any, Optional

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


_LIBRARY = os.path.dirname(os.path.abspath(__file__)) + os.sep
_SKIPPED = tuple(
    os.path.dirname(os.path.abspath(str(module.__file__))) + os.sep
    for module in (functools, warnings)
) + (_LIBRARY,)


def _skipped(filename: str) -> bool:
    if filename.startswith(_SKIPPED) or filename.startswith("<frozen"):
        return True
    parts = filename.replace("\\", "/").split("/site-packages/")
    if len(parts) > 1:  # Lightning's and torch's own frames: the user's line is further out
        top = parts[-1].split("/", 1)[0]
        return top in ("pytorch_lightning", "lightning", "lightning_fabric", "torch", "_pytest", "pluggy")
    return False


def caller_line() -> Optional[tuple[str, int]]:
    """The innermost line outside this library, Lightning and torch: where a warning given later should point."""
    frame: Optional[types.FrameType] = sys._getframe(1)
    while frame is not None and _skipped(frame.f_code.co_filename):
        frame = frame.f_back
    return (frame.f_code.co_filename, frame.f_lineno) if frame is not None else None


def rank_zero() -> bool:
    """Whether this process is the first of the run (as Lightning's ``rank_zero_warn`` asks): the process group's
    rank 0 once it exists, else the rank its launcher set (``RANK``, ``LOCAL_RANK``, ``SLURM_PROCID``, as Lightning
    reads them)."""
    distributed = sys.modules.get("torch.distributed")
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        return bool(distributed.get_rank() == 0)
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key]) == 0
    return True


def warn(message: str, category: type[Warning] = RecipeWarning, at: Any = None) -> None:
    """Warn, pointing at the user's line: the definition of `at` (e.g. the module's ``configure_optimizers``, or a
    ``(filename, line)``) when given, else the innermost caller outside this library, Lightning and torch. Under
    several processes only the first warns, as Lightning's own warnings do: every rank runs the same checks."""
    if not rank_zero():
        return
    if isinstance(at, tuple) and len(at) == 2:
        warnings.warn_explicit(message, category, at[0], at[1])
        return
    code = getattr(getattr(at, "__func__", at), "__code__", None) if at is not None else None
    if code is not None:
        warnings.warn_explicit(message, category, code.co_filename, code.co_firstlineno,
                               module=getattr(at, "__module__", None))
        return
    frame: Optional[types.FrameType] = sys._getframe(1)
    level = 1
    while frame is not None and _skipped(frame.f_code.co_filename):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1 if frame is not None else 2)
