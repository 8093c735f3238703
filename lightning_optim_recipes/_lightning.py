"""Namespace-free helpers for the two Lightning packages (`pytorch_lightning` and `lightning.pytorch`).

The two packages have separate class hierarchies. The library keeps its logic free of both and only builds the few
classes that must subclass a Lightning base over whichever namespaces are installed.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__: list[str] = []


def _installed_namespaces() -> list[Any]:
    modules = []
    for name in ("pytorch_lightning", "lightning.pytorch"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:  # pragma: no cover - depends on the environment
            continue
    return modules


def callback_bases() -> tuple[type, ...]:
    """The `Callback` base class of every installed namespace, so that one callback class works with both Trainers."""
    bases = tuple(module.Callback for module in _installed_namespaces())
    if not bases:  # pragma: no cover
        raise ImportError("lightning_optim_recipes needs `pytorch-lightning` (or `lightning`): pip install pytorch-lightning")
    return bases


def is_lightning_module(obj: Any) -> bool:
    """Whether `obj` is a `LightningModule` of either namespace."""
    return any(isinstance(obj, module.LightningModule) for module in _installed_namespaces())
