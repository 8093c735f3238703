"""`LearningRateLogger`: the learning rate of every param group, logged through the Trainer's loggers.

A drop-in for Lightning's `LearningRateMonitor` (same metric names, same values, same logging steps) that works with
both Lightning namespaces, under automatic and manual optimization and under `AlternatingOptimizersMixin`, and adds
nothing measurable to a training step: the names are computed once when training starts, and each logging call only
reads the floats already in the param groups (no tensors are created, no device is synchronized).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Optional

from lightning_optim_recipes._lightning import callback_bases
from lightning_optim_recipes.errors import RecipeError

__all__ = ["LearningRateLogger", "learning_rate_names"]

_INTERVALS = (None, "step", "epoch")


def _unwrap(optimizer: Any) -> Any:
    """The torch optimizer inside a wrapper (DeepSpeed, LightningOptimizer), as `LearningRateMonitor` does."""
    return optimizer.optimizer if hasattr(optimizer, "optimizer") else optimizer


def _group_names(name: str, param_groups: Sequence[dict[str, Any]]) -> list[str]:
    """One name per param group: the group's ``'name'`` when set, else ``/pgN`` when there are several groups."""
    names = [group.get("name", f"pg{i}") for i, group in enumerate(param_groups, start=1)]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RecipeError(
            f"{name} has param groups with the same 'name' {duplicates}: learning-rate metrics need one name per"
            " group. Give each group its own 'name' (`param_groups` does this for you)."
        )
    if len(param_groups) > 1:
        return [f"{name}/{group.get('name', f'pg{i}')}" for i, group in enumerate(param_groups, start=1)]
    group_name = param_groups[0].get("name") if param_groups else None
    return [f"{name}/{group_name}" if group_name else name]


def learning_rate_names(
    scheduler_configs: Sequence[Any], optimizers: Sequence[Any]
) -> tuple[list[tuple[Any, Any, list[str]]], list[tuple[Any, list[str]]]]:
    """The metric names `LearningRateMonitor` gives: per scheduler config and per optimizer without a scheduler.

    Returns ``([(config, optimizer, names), ...], [(optimizer, names), ...])``: names per param group, ``lr-Adam``,
    ``lr-Adam/pg1``, ``lr-Adam-1`` for a second Adam, a group's ``'name'`` or the scheduler's ``name`` when given.

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
        cls = type(optimizer)
        if counted:
            seen_types[cls] += 1
        count = seen_types.get(cls, 0)
        prefix = f"{name}-{count - 1}" if count > 1 else name
        return _group_names(prefix, optimizer.param_groups)

    with_scheduler = []
    for config in scheduler_configs:
        optimizer = config.scheduler.optimizer
        name = config.name if config.name is not None else "lr-" + type(optimizer).__name__
        with_scheduler.append((config, optimizer, names_for(optimizer, name, counted=config.name is None)))
    without_scheduler = []
    for optimizer in optimizers:
        optimizer = _unwrap(optimizer)
        if any(optimizer is s for s in seen):
            continue
        without_scheduler.append((optimizer, names_for(optimizer, "lr-" + type(optimizer).__name__, counted=True)))
    return with_scheduler, without_scheduler


class LearningRateLogger(*callback_bases()):  # type: ignore[misc]
    """Log the learning rate of every param group of every optimizer, as Lightning's `LearningRateMonitor` does.

    The names are `LearningRateMonitor`'s (``lr-Adam``, ``lr-Adam/pg1``, a group's ``'name'``, a scheduler's
    ``name``), so dashboards built on it keep working; optimizers without a scheduler are logged too.

    Args:
        logging_interval: ``'step'`` or ``'epoch'`` to log every learning rate at that interval; None (default)
            logs each scheduler's at its own interval, and optimizers without a scheduler at both.
        log_momentum: also log ``<name>-momentum`` (``momentum``, or Adam's ``beta1``; 0 when there is none).
        log_weight_decay: also log ``<name>-weight_decay``.

    Unlike `LearningRateMonitor` it does not copy the values into ``trainer.callback_metrics`` (that would create a
    device tensor per name per step).

    Example:
        >>> import pytorch_lightning as pl
        >>> trainer = pl.Trainer(callbacks=[LearningRateLogger(logging_interval="step", log_momentum=True)],
        ...                      logger=False, enable_progress_bar=False, enable_model_summary=False)
        >>> LearningRateLogger(logging_interval="batch")
        Traceback (most recent call last):
        ...
        lightning_optim_recipes.errors.RecipeError: `logging_interval` must be 'step', 'epoch' or None, got 'batch'.
    """

    def __init__(
        self, logging_interval: Optional[str] = None, log_momentum: bool = False, log_weight_decay: bool = False
    ) -> None:
        if logging_interval not in _INTERVALS:
            raise RecipeError(f"`logging_interval` must be 'step', 'epoch' or None, got {logging_interval!r}.")
        self.logging_interval = logging_interval
        self.log_momentum = log_momentum
        self.log_weight_decay = log_weight_decay
        # (metric name, param group, key or None for beta1) read at each logging call
        self._step_entries: list[tuple[str, dict[str, Any], Optional[str]]] = []
        self._epoch_entries: list[tuple[str, dict[str, Any], Optional[str]]] = []

    @property
    def names(self) -> list[str]:
        """Every metric name this logger writes (known once training has started)."""
        return list(dict.fromkeys(name for name, _, _ in self._step_entries + self._epoch_entries))

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.loggers:
            raise RecipeError(
                "`LearningRateLogger` needs a logger, but the Trainer has none (`logger=False`). Pass one, e.g."
                " `Trainer(logger=CSVLogger('logs'))` or `logger=True` for TensorBoard, or remove the callback."
            )
        with_scheduler, without_scheduler = learning_rate_names(trainer.lr_scheduler_configs, trainer.optimizers)
        self._step_entries, self._epoch_entries = [], []
        for config, optimizer, names in with_scheduler:
            entries = self._entries(optimizer, names)
            if self.logging_interval == "step" or (self.logging_interval is None and config.interval == "step"):
                self._step_entries += entries
            if self.logging_interval == "epoch" or (self.logging_interval is None and config.interval == "epoch"):
                self._epoch_entries += entries
        for optimizer, names in without_scheduler:
            entries = self._entries(optimizer, names)
            if self.logging_interval != "epoch":
                self._step_entries += entries
            if self.logging_interval != "step":
                self._epoch_entries += entries

    def _entries(self, optimizer: Any, names: list[str]) -> list[tuple[str, dict[str, Any], Optional[str]]]:
        entries: list[tuple[str, dict[str, Any], Optional[str]]] = []
        betas = "betas" in getattr(optimizer, "defaults", {})
        for group, name in zip(optimizer.param_groups, names):
            entries.append((name, group, "lr"))
            if self.log_momentum:
                entries.append((f"{name}-momentum", group, None if betas else "momentum"))
            if self.log_weight_decay:
                entries.append((f"{name}-weight_decay", group, "weight_decay"))
        return entries

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self._step_entries and trainer._logger_connector.should_update_logs:
            self._log(trainer, self._step_entries)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if self._epoch_entries:
            self._log(trainer, self._epoch_entries)

    @staticmethod
    def _log(trainer: Any, entries: list[tuple[str, dict[str, Any], Optional[str]]]) -> None:
        metrics = {
            name: group["betas"][0] if key is None else group.get(key, 0) if key != "lr" else group["lr"]
            for name, group, key in entries
        }
        step = trainer.fit_loop.epoch_loop._batches_that_stepped
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)
