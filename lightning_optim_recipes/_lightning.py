"""Namespace-free helpers for the two Lightning packages (`pytorch_lightning` and `lightning.pytorch`).

The two packages have separate class hierarchies. The library keeps its logic free of both and only builds the few
classes that must subclass a Lightning base over whichever namespaces are installed.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__: list[str] = []


def _installed_namespaces() -> list[Any]:
    """Both Lightning packages that are installed. Importing one re-routes Lightning's rank-zero messages (the
    GPU/TPU banner, ...) to its own logger: keep the routing a Lightning package imported before this library set,
    so that ``logging.getLogger("pytorch_lightning").setLevel(...)`` still governs a `pytorch_lightning` user's run."""
    routing = _rank_zero_logger()
    modules = []
    for name in ("pytorch_lightning", "lightning.pytorch"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:  # pragma: no cover - depends on the environment
            continue
    if routing is not None and routing.name.partition(".")[0] in ("pytorch_lightning", "lightning"):
        _set_rank_zero_logger(routing)
    return modules


def _rank_zero_logger() -> Any:
    try:
        from lightning_utilities.core import rank_zero
    except ImportError:  # pragma: no cover
        return None
    return getattr(rank_zero, "log", None)


def _set_rank_zero_logger(logger: Any) -> None:
    from lightning_utilities.core import rank_zero

    rank_zero.log = logger


def callback_bases() -> tuple[type, ...]:
    """The `Callback` base class of every installed namespace, so that one callback class works with both Trainers."""
    bases = tuple(module.Callback for module in _installed_namespaces())
    if not bases:  # pragma: no cover
        raise ImportError("lightning_optim_recipes needs `pytorch-lightning` (or `lightning`): pip install pytorch-lightning")
    return bases


def is_lightning_module(obj: Any) -> bool:
    """Whether `obj` is a `LightningModule` of either namespace."""
    return any(isinstance(obj, module.LightningModule) for module in _installed_namespaces())


def namespace_of(obj: Any) -> Any:
    """The Lightning package (`pytorch_lightning` or `lightning.pytorch`) whose `LightningModule` `obj` is, or None."""
    for module in _installed_namespaces():
        if isinstance(obj, module.LightningModule):
            return module
    return None


def lightning_module_base() -> type:
    """The `LightningModule` of `pytorch_lightning` when installed, else of `lightning.pytorch` (for the demos)."""
    return _installed_namespaces()[0].LightningModule


def misconfiguration_bases() -> tuple[type, ...]:
    """`MisconfigurationException` of every installed namespace: `lightning_fabric`'s and `lightning.fabric`'s are
    two different classes, and `except MisconfigurationException` must catch the errors with either import."""
    bases: list[type] = []
    for name in ("pytorch_lightning.utilities.exceptions", "lightning.pytorch.utilities.exceptions"):
        try:
            cls = importlib.import_module(name).MisconfigurationException
        except ImportError:  # pragma: no cover - depends on the environment
            continue
        if cls not in bases:
            bases.append(cls)
    return tuple(bases)

