"""Reading a Lightning checkpoint as a resume needs it: what it will restore, the loaded dict of a fit, a checkpoint
on disk (a file, or the directory of shards a sharded strategy writes) without its weights, and how many steps a
saved scheduler had taken."""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional, Union

import torch

from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.resume.state import RECORD_KEY

__all__ = ["Restored", "SavedCadence", "checkpoint_being_restored", "load_saved", "read_checkpoint", "steps_taken"]

#: The file of a sharded checkpoint (Lightning's ``_METADATA_FILENAME``) that holds everything but the weights and
#: the optimizers' states: the loops, the schedulers' states, the callbacks' states.
META_FILE = "meta.pt"
#: The key, at the top of a checkpoint written under a strategy that restores after setup, of each optimizer's record
#: (`RECORD_KEY`): torch's distributed state dicts keep only ``state`` and ``param_groups`` (`resume.deferred`).
RECORDS_KEY = "lightning_optim_recipes_records"


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



def load_saved(path: Union[str, "os.PathLike[str]"]) -> dict[str, Any]:
    """The Lightning checkpoint at `path` as the dict a resume reads (`read_checkpoint`, `reconcile`), without its
    weights: a ``.ckpt`` file (its tensors memory-mapped, not read), or the directory of shards that
    `ModelParallelStrategy` (FSDP2) and `FSDPStrategy` save (``meta.pt`` read whole; of the shards only the
    optimizers' param groups, and their states' shapes from the shards' index, as tensors on the meta device)."""
    where = Path(path)
    if where.is_dir():
        if not (where / META_FILE).is_file():
            raise RecipeError(f"{str(where)!r} is a directory but not a sharded Lightning checkpoint (no {META_FILE}"
                              " in it): give the checkpoint's directory (``epoch=...-step=....ckpt``) or file.")
        checkpoint = torch.load(where / META_FILE, map_location="cpu", weights_only=False)
        checkpoint["optimizer_states"] = _sharded_optimizer_states(where)
        records = checkpoint.get(RECORDS_KEY)
        for index, state in enumerate(checkpoint["optimizer_states"]):
            if isinstance(records, list) and index < len(records) and records[index] is not None:
                state[RECORD_KEY] = records[index]
        return checkpoint
    if not where.is_file():
        raise RecipeError(f"No checkpoint at {str(where)!r}: give the path of a ``.ckpt`` file or of the directory"
                          " a sharded strategy saved.")
    checkpoint = torch.load(where, map_location="cpu", mmap=True, weights_only=False)
    checkpoint.pop("state_dict", None)
    return checkpoint


def _sharded_optimizer_states(where: Path) -> list[dict[str, Any]]:
    """The optimizers' states of a directory of shards (torch.distributed.checkpoint), keyed as Lightning saves them
    (``optimizer_0.param_groups.0.lr``, ``optimizer_0.state.<parameter>.<name>``): every param group read, each state
    tensor a meta-device tensor of its saved (global) shape."""
    from torch.distributed.checkpoint import FileSystemReader, load
    from torch.distributed.checkpoint.metadata import BytesStorageMetadata, TensorStorageMetadata

    index = FileSystemReader(str(where)).read_metadata().state_dict_metadata
    wanted = {key: None for key, meta in index.items()
              if key.startswith("optimizer_") and isinstance(meta, BytesStorageMetadata)}
    if wanted:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "torch.distributed is ... uninitialized, assuming ... a single process"
            load(wanted, storage_reader=FileSystemReader(str(where)), no_dist=True)
    states: dict[int, dict[str, Any]] = {}
    for key, value in wanted.items():
        optimizer, _, rest = key.partition(".")
        kind, _, rest = rest.partition(".")
        if kind != "param_groups":
            continue
        group, _, option = rest.partition(".")
        groups = states.setdefault(int(optimizer[len("optimizer_"):]), {"state": {}, "param_groups": {}})["param_groups"]
        groups.setdefault(int(group), {})[option] = value
    for key, meta in index.items():
        if not key.startswith("optimizer_") or not isinstance(meta, TensorStorageMetadata):
            continue
        optimizer, _, rest = key.partition(".")
        kind, _, rest = rest.partition(".")
        if kind != "state":
            continue
        name, _, entry = rest.rpartition(".")
        state = states.setdefault(int(optimizer[len("optimizer_"):]), {"state": {}, "param_groups": {}})["state"]
        state.setdefault(name, {})[entry] = torch.empty(tuple(meta.size), device="meta")
    return [{"state": states[i]["state"], "param_groups": [states[i]["param_groups"][g]
                                                          for g in sorted(states[i]["param_groups"])]}
            for i in sorted(states)]
