"""One name per optimizer everywhere: the names Lightning's `LearningRateMonitor` logs, used by the cadence report,
the schedule preview, its plots and the command line, so that a plot line, a dashboard curve and a table row match.

An optimizer is named ``lr-<Class>`` (``lr-Adam``, then ``lr-Adam-1`` for a second Adam; optimizers with schedulers
first, in the order of their schedulers), or its scheduler's ``'name'``; each param group adds ``/<group name>`` (or
``/pgN``) when the optimizer has several groups or the group has a ``'name'``. Under `AlternatingOptimizersMixin`'s
named form the step's role follows in parentheses: ``lr-Adam-1 (critic)``. A `HybridOptimizer`'s groups are named by
the part that holds them (``lr-Muon/hidden``, ``lr-AdamW/embedding``; under a scheduler's ``'name'``,
``<name>/Muon/hidden``), and the optimizer as its parts joined (``lr-Muon+lr-AdamW``).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Optional

import torch

from lightning_optim_recipes._lightning import misconfiguration_bases
from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.hybrid import FlatMuon, HybridOptimizer

__all__ = ["LearningRateLoggerError", "OptimizerNames", "learning_rate_names", "optimizer_names", "record_label"]


class LearningRateLoggerError(RecipeError, *misconfiguration_bases()):  # type: ignore[misc]
    """A `LearningRateLogger` that cannot log: no logger, a bad ``logging_interval``, or param groups of one
    optimizer with the same ``'name'``.

    A `RecipeError` that ``except MisconfigurationException`` also catches (from ``pytorch_lightning`` or from
    ``lightning.pytorch``), as it catches `LearningRateMonitor`'s errors.

    Example:
        >>> import torch
        >>> from pytorch_lightning.utilities.exceptions import MisconfigurationException
        >>> p = [torch.nn.Parameter(torch.zeros(1)) for _ in range(2)]
        >>> twice = torch.optim.SGD([{"params": [p[0]], "name": "head"}, {"params": [p[1]], "name": "head"}], lr=0.1)
        >>> try:
        ...     learning_rate_names([], [twice])
        ... except MisconfigurationException as err:
        ...     print(type(err).__name__, isinstance(err, RecipeError))
        LearningRateLoggerError True
    """



def _unwrap_as_monitor(optimizer: Any) -> Any:
    """The torch optimizer inside a wrapper (DeepSpeed, LightningOptimizer), as `LearningRateMonitor` does."""
    return optimizer.optimizer if hasattr(optimizer, "optimizer") else optimizer



def _group_names(name: str, param_groups: Sequence[dict[str, Any]]) -> list[str]:
    """One name per param group: the group's ``'name'`` when set, else ``/pgN`` when there are several groups."""
    names = [group.get("name", f"pg{i}") for i, group in enumerate(param_groups, start=1)]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise LearningRateLoggerError(
            "A single `Optimizer` cannot have multiple parameter groups with identical `name` values:"
            f" {name} has duplicated parameter group names {duplicates}, and learning-rate metrics need one name"
            " per group. Give each group its own 'name' (`param_groups` does this for you)."
        )
    if len(param_groups) > 1:
        return [f"{name}/{group_name}" for group_name in names]
    return [f"{name}/{group['name']}" if group.get("name") else name for group in param_groups]


def learning_rate_names(
    scheduler_configs: Sequence[Any], optimizers: Sequence[Any]
) -> tuple[list[tuple[Any, Any, list[str]]], list[tuple[Any, list[str]]]]:
    """The metric names `LearningRateMonitor` gives: per scheduler config and per optimizer without a scheduler.

    A pure function of the scheduler configs (anything with ``.scheduler``, ``.name`` and ``.interval``, e.g.
    Lightning's ``trainer.lr_scheduler_configs``) and the optimizers, as they are now.

    Returns ``([(config, optimizer, names), ...], [(optimizer, names), ...])``: names per param group, ``lr-Adam``,
    ``lr-Adam/pg1``, ``lr-Adam-1`` for a second Adam, a group's ``'name'`` or the scheduler's ``name`` when given.

    Raises:
        LearningRateLoggerError: if two param groups of one optimizer have the same ``'name'``.

    Example:
        >>> import torch
        >>> p = [torch.nn.Parameter(torch.zeros(1)) for _ in range(3)]
        >>> a = torch.optim.Adam([{"params": [p[0]], "name": "decay"}, {"params": [p[1]], "name": "no_decay"}])
        >>> b = torch.optim.Adam([p[2]])
        >>> _, leftover = learning_rate_names([], [a, b])
        >>> [names for _, names in leftover]
        [['lr-Adam/decay', 'lr-Adam/no_decay'], ['lr-Adam-1']]
    """
    seen: list[Any] = []
    seen_types: defaultdict[type, int] = defaultdict(int)

    def names_for(optimizer: Any, name: str, counted: bool) -> list[str]:
        seen.append(optimizer)
        if isinstance(optimizer, HybridOptimizer):  # each part's groups under its own class: lr-Muon/hidden
            return [n for part in optimizer.parts for n in part_names(part, name, counted)]
        cls = type(optimizer)
        if counted:
            seen_types[cls] += 1
        count = seen_types.get(cls, 0)
        prefix = f"{name}-{count - 1}" if count > 1 else name
        return _group_names(prefix, optimizer.param_groups)

    def part_names(part: Any, name: str, counted: bool) -> list[str]:
        # `FlatMuon` is torch's Muon on views or on gathered shards: logged as Muon, the same under every strategy
        cls = torch.optim.Muon if isinstance(part, FlatMuon) else type(part)
        label = cls.__name__
        if not counted:
            return _group_names(f"{name}/{label}", part.param_groups)
        seen_types[cls] += 1
        count = seen_types[cls]
        prefix = f"lr-{label}-{count - 1}" if count > 1 else f"lr-{label}"
        return _group_names(prefix, part.param_groups)

    with_scheduler = []
    for config in scheduler_configs:
        optimizer = config.scheduler.optimizer
        name = config.name if config.name is not None else "lr-" + type(optimizer).__name__
        with_scheduler.append((config, optimizer, names_for(optimizer, name, counted=config.name is None)))
    without_scheduler = []
    for optimizer in optimizers:
        optimizer = _unwrap_as_monitor(optimizer)
        if any(optimizer is s for s in seen):
            continue
        without_scheduler.append((optimizer, names_for(optimizer, "lr-" + type(optimizer).__name__, counted=True)))
    return with_scheduler, without_scheduler



@dataclasses.dataclass(frozen=True)
class OptimizerNames:
    """The logged names of a configuration.

    Attributes:
        optimizers: per optimizer, its logged name without the group suffix (``lr-Adam-1``).
        groups: per optimizer, the logged name of each param group (``lr-Adam-1/decay``).
        schedulers: per scheduler, the logged name of its optimizer's lr series (its ``'name'`` when given).
        roles: per optimizer, the alternation role (``critic``) or None.
    """

    optimizers: tuple[str, ...]
    groups: tuple[tuple[str, ...], ...]
    schedulers: tuple[str, ...]
    roles: tuple[Optional[str], ...]

    def optimizer(self, index: int) -> str:
        """Optimizer `index`'s name with its role: ``lr-Adam-1 (critic)``."""
        role = self.roles[index] if index < len(self.roles) else None
        name = self.optimizers[index]
        return f"{name} ({role})" if role and role != name else name

    def group(self, index: int, group: int) -> str:
        """The logged name of param group `group` of optimizer `index`, with the optimizer's role."""
        role = self.roles[index] if index < len(self.roles) else None
        name = self.groups[index][group]
        return f"{name} ({role})" if role and role != self.optimizers[index] else name


def _unwrap(optimizer: Any) -> Any:
    """The torch optimizer inside a `LightningOptimizer` (or another wrapper)."""
    inner = getattr(optimizer, "_optimizer", None)
    if inner is not None:
        return inner
    return optimizer if hasattr(optimizer, "param_groups") else getattr(optimizer, "optimizer", optimizer)


def optimizer_names(
    schedulers: Sequence[Any], optimizers: Sequence[Any], roles: Optional[Sequence[Optional[str]]] = None
) -> OptimizerNames:
    """The names `LearningRateMonitor` logs for `optimizers` and `schedulers` (scheduler configs or `SchedulerSpec`s:
    anything with ``.scheduler`` and ``.name``).

    Example:
        >>> import torch
        >>> p = [torch.nn.Parameter(torch.zeros(1)) for _ in range(3)]
        >>> critic = torch.optim.Adam([p[0]])
        >>> generator = torch.optim.Adam([{"params": [p[1]], "name": "decay"}, {"params": [p[2]], "name": "no_decay"}])
        >>> sched = torch.optim.lr_scheduler.StepLR(generator, 1)
        >>> class Config:
        ...     scheduler, name, interval = sched, None, "epoch"
        >>> names = optimizer_names([Config()], [critic, generator], roles=["critic", "generator"])
        >>> names.optimizers, names.groups[1], names.optimizer(0)
        (('lr-Adam-1', 'lr-Adam'), ('lr-Adam/decay', 'lr-Adam/no_decay'), 'lr-Adam-1 (critic)')
    """
    raw = [_unwrap(o) for o in optimizers]
    with_scheduler, without_scheduler = learning_rate_names(schedulers, raw)
    prefixes: dict[int, str] = {}
    groups: dict[int, tuple[str, ...]] = {}
    scheduler_names = []
    for config, optimizer, names in with_scheduler:
        prefix = _prefix(names, optimizer.param_groups, optimizer)
        scheduler_names.append(prefix)
        prefixes.setdefault(id(optimizer), prefix)
        groups.setdefault(id(optimizer), tuple(names))
    for optimizer, names in without_scheduler:
        prefixes.setdefault(id(optimizer), _prefix(names, optimizer.param_groups, optimizer))
        groups.setdefault(id(optimizer), tuple(names))
    fallback = [f"lr-{type(o).__name__}" for o in raw]
    return OptimizerNames(
        optimizers=tuple(prefixes.get(id(o), fallback[i]) for i, o in enumerate(raw)),
        groups=tuple(groups.get(id(o), (fallback[i],)) for i, o in enumerate(raw)),
        schedulers=tuple(scheduler_names),
        roles=tuple(roles) if roles is not None else (None,) * len(raw),
    )


def record_label(record: Any, several_optimizers: bool = False) -> str:
    """How a preview record's line or column is labelled: its logged name with the role (``lr-Adam-1 (critic)``);
    records without names (hand-made) fall back to the optimizer index and group.

    Example:
        >>> record_label({"name": "lr-Adam-1", "role": "critic", "optimizer": 0, "group": "pg0"})
        'lr-Adam-1 (critic)'
        >>> record_label({"name": "lr-Adam/critic/decay", "role": "critic", "optimizer": 0, "group": "critic/decay"})
        'lr-Adam/critic/decay'
    """
    name = record.get("name")
    if not name:
        return f"optimizer {record['optimizer']}: {record['group']}" if several_optimizers else str(record["group"])
    role = record.get("role")
    return f"{name} ({role})" if role and role not in str(name).split("/") else str(name)  # lr-Adam/critic: no repeat


def _prefix(names: Sequence[str], param_groups: Sequence[dict[str, Any]], optimizer: Any = None) -> str:
    """The optimizer's name without the suffix of its first group (a `HybridOptimizer`: its parts', joined by +)."""
    if isinstance(optimizer, HybridOptimizer):
        parts, start = [], 0
        for part in optimizer.parts:
            count = len(part.param_groups)
            parts.append(_prefix(names[start:start + count], part.param_groups))
            start += count
        return "+".join(parts)
    if not names:
        return ""
    first = names[0]
    group = param_groups[0] if param_groups else {}
    suffix = group.get("name") if len(param_groups) <= 1 else group.get("name", "pg1")
    if suffix and first.endswith(f"/{suffix}"):
        return first[: -len(suffix) - 1]
    return first
