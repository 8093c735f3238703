"""Reading a Lightning checkpoint dict as a resume needs it: what it will restore, the loaded dict of a fit, and how
many steps a saved scheduler had taken."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Optional

from lightning_optim_recipes.resume.state import RECORD_KEY

__all__ = ["Restored", "SavedCadence", "checkpoint_being_restored", "read_checkpoint", "steps_taken"]


def checkpoint_being_restored(trainer: Any) -> Optional[dict[str, Any]]:
    """The checkpoint dict a fit has loaded and not yet restored (the one the ``on_load_checkpoint`` hooks see), or
    None."""
    fn = getattr(getattr(trainer, "state", None), "fn", None)
    if str(getattr(fn, "value", fn)) != "fit":
        return None
    loaded = getattr(getattr(trainer, "_checkpoint_connector", None), "_loaded_checkpoint", None)
    return loaded if isinstance(loaded, dict) and loaded else None


def short(qualname: Optional[str]) -> str:
    return (qualname or "?").rpartition(".")[2]


@dataclasses.dataclass(frozen=True)
class SavedCadence:
    cls: str
    interval: str
    frequency: int
    optimizer: int


@dataclasses.dataclass
class Restored:
    """What the checkpoint will restore, read once."""

    optimizers: list[dict[str, Any]]
    schedulers: list[dict[str, Any]]
    global_step: int
    epoch: int
    batches: Optional[int]  # batches trained over the run

    def optimizer_class(self, index: int) -> Optional[str]:
        info = self.optimizers[index].get(RECORD_KEY) if index < len(self.optimizers) else None
        return info.get("class") if isinstance(info, Mapping) else None

    def cadence_of(self, k: int) -> Optional[SavedCadence]:
        for index, state in enumerate(self.optimizers):
            info = state.get(RECORD_KEY)
            for entry in (info.get("schedulers") or []) if isinstance(info, Mapping) else []:
                if entry[0] == k:
                    return SavedCadence(entry[1], entry[2], int(entry[3]), index)
        return None


def read_checkpoint(checkpoint: Mapping[str, Any]) -> Restored:
    try:
        batches: Optional[int] = int(checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["processed"])
    except (KeyError, TypeError, ValueError):
        batches = None
    return Restored(list(checkpoint.get("optimizer_states") or []), list(checkpoint.get("lr_schedulers") or []),
                     int(checkpoint.get("global_step", 0) or 0), int(checkpoint.get("epoch", 0) or 0), batches)


def steps_taken(state: Optional[Mapping[str, Any]]) -> Optional[int]:
    """How many times the scheduler whose ``state_dict`` this is had stepped."""
    if state is None:
        return None
    value = state.get("last_epoch")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    inner = state.get("_schedulers")  # ChainedScheduler
    if isinstance(inner, list) and inner and isinstance(inner[0], Mapping):
        return steps_taken(inner[0])
    return None

