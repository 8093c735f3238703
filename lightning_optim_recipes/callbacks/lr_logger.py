"""`LearningRateLogger`: the learning rate of every param group, logged through the Trainer's loggers.

A drop-in for Lightning's `LearningRateMonitor`: the same metric names, values and logging steps, the same ``lrs``,
``last_momentum_values`` and ``last_weight_decay_values``, the same entries in ``trainer.callback_metrics`` (so that
`EarlyStopping` and `ModelCheckpoint` can monitor a learning rate), the same warning and errors (catchable as
`MisconfigurationException`). It works with both Lightning namespaces, under automatic and manual optimization and
under `AlternatingOptimizersMixin`, and costs less than `LearningRateMonitor`: the names are computed when training
starts and again only when the param groups or the scheduler configs change (param groups added by
`BackboneFinetuning`, the per-epoch scheduler `StochasticWeightAveraging` swaps in), which each logging call detects
by comparing a few lengths and identities; logging reads the floats already in the param groups, and a tensor for
``trainer.callback_metrics`` is created only when a value has changed, on the CPU (no device synchronization).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Optional

import torch

from lightning_optim_recipes import schedule_free
from lightning_optim_recipes._lightning import callback_bases
from lightning_optim_recipes.callbacks._lr_watch import PostHook, watch_for
from lightning_optim_recipes.callbacks.cadence_check import SchedulerCadenceCheck
from lightning_optim_recipes.errors import RecipeWarning, warn
from lightning_optim_recipes.hybrid import HybridOptimizer
from lightning_optim_recipes.naming import LearningRateLoggerError, learning_rate_names, optimizer_names

__all__ = ["LearningRateLogger", "LearningRateLoggerError", "LearningRateLoggerWarning", "learning_rate_names"]

_INTERVALS = (None, "step", "epoch")
_RENAMED_TOKEN = "/pg1"  # an optimizer's single group, named 'lr-SGD', becomes 'lr-SGD/pg1' when a group is added

# What an entry reads from its param group (and where it keeps the value); _APPLIED_LR: a schedule-free optimizer's
# lr with its built-in warm-up (`schedule_free.applied_lr`).
_LR, _MOMENTUM, _BETA1, _WEIGHT_DECAY, _APPLIED_LR = range(5)

_Entry = tuple[str, dict[str, Any], int]


class LearningRateLoggerWarning(RecipeWarning, RuntimeWarning):
    """``log_momentum=True`` with an optimizer that has no momentum (a `RuntimeWarning`, as `LearningRateMonitor`'s)."""


def _without_momentum(optimizers: Sequence[Any]) -> list[str]:
    """The class names of the optimizers that have neither ``momentum`` nor ``betas``."""
    names = []
    for optimizer in [part for o in optimizers for part in (o.parts if isinstance(o, HybridOptimizer) else (o,))]:
        defaults = getattr(optimizer, "defaults", {})
        if "momentum" not in defaults and "betas" not in defaults:
            names.append(type(optimizer).__name__)
    return list(dict.fromkeys(names))


class LearningRateLogger(*callback_bases()):  # type: ignore[misc]
    """Log the learning rate of every param group of every optimizer, as Lightning's `LearningRateMonitor` does.

    A drop-in replacement: the names are `LearningRateMonitor`'s (``lr-Adam``, ``lr-Adam/pg1``, ``lr-Adam-1``, a
    group's ``'name'``, a scheduler's ``name``), logged at the same steps with the same values, so dashboards built
    on it keep working. Optimizers without a scheduler are logged too, param groups added during training (e.g. by
    `BackboneFinetuning`) from the next logging call on, with the single group's ``lr-SGD`` renamed ``lr-SGD/pg1``
    (its history in `lrs` follows), and a scheduler swapped in during training (`StochasticWeightAveraging`'s
    per-epoch one) is logged at its own interval. Two differences, on purpose: for a schedule-free optimizer
    (``schedulefree.AdamWScheduleFree``, ...) it logs the lr each step applies, its built-in warm-up included, where
    `LearningRateMonitor` logs the group's ``'lr'`` (constant); and a `HybridOptimizer`'s groups are named by the part
    that holds them, ``lr-Muon/hidden``, ``lr-AdamW/embedding`` (as in `preview_schedule`, the plots and the cadence
    report), where `LearningRateMonitor` names them all by the hybrid's class, ``lr-HybridOptimizer/hidden``,
    ``lr-HybridOptimizer/embedding``: the values and steps are the same, a dashboard built on `LearningRateMonitor`'s
    names needs those columns renamed.

    Args:
        logging_interval: ``'step'`` or ``'epoch'`` to log every learning rate at that interval; None (default)
            logs each scheduler's at its own interval, and optimizers without a scheduler at both.
        log_momentum: also log ``<name>-momentum`` (``momentum``, or Adam's ``beta1``; 0 when there is none).
        log_weight_decay: also log ``<name>-weight_decay``.

    Attributes:
        lrs: every logged learning rate, per name, in logging order.
        last_momentum_values: the last logged momentum per ``<name>-momentum`` (None until logged).
        last_weight_decay_values: the last logged weight decay per ``<name>-weight_decay`` (None until logged).

    Each logged value is also put into ``trainer.callback_metrics`` (as `LearningRateMonitor` does, so that
    ``EarlyStopping(monitor="lr-SGD")`` works), as a CPU tensor created only when the value has changed.

    Raises:
        LearningRateLoggerError: for a ``logging_interval`` other than ``'step'``, ``'epoch'`` or None; when training
            starts without a logger; for param groups of one optimizer with the same ``'name'``.

    Example:
        >>> import tempfile
        >>> import pytorch_lightning as pl
        >>> from pytorch_lightning.demos.boring_classes import BoringModel
        >>> lr_logger = LearningRateLogger(logging_interval="step", log_momentum=True)
        >>> trainer = pl.Trainer(max_steps=4, log_every_n_steps=2, limit_val_batches=0, callbacks=[lr_logger],
        ...                      logger=pl.loggers.CSVLogger(tempfile.mkdtemp()), accelerator="cpu",
        ...                      enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
        >>> trainer.fit(BoringModel())
        >>> lr_logger.lrs, lr_logger.last_momentum_values
        ({'lr-SGD': [0.1, 0.1]}, {'lr-SGD-momentum': 0})
        >>> LearningRateLogger(logging_interval="batch")
        Traceback (most recent call last):
        ...
        lightning_optim_recipes.naming.LearningRateLoggerError: `logging_interval` must be 'step', \
'epoch' or None, got 'batch'.
    """

    def __init__(
        self, logging_interval: Optional[str] = None, log_momentum: bool = False, log_weight_decay: bool = False
    ) -> None:
        if logging_interval not in _INTERVALS:
            raise LearningRateLoggerError(
                f"`logging_interval` must be 'step', 'epoch' or None, got {logging_interval!r}."
            )
        self.logging_interval = logging_interval
        self.log_momentum = log_momentum
        self.log_weight_decay = log_weight_decay
        self.lrs: dict[str, list[float]] = {}
        self.last_momentum_values: dict[str, Optional[float]] = {}
        self.last_weight_decay_values: dict[str, Optional[float]] = {}
        # (metric name, param group, what to read) read at each logging call
        self._step_entries: list[_Entry] = []
        self._epoch_entries: list[_Entry] = []
        # what the names were computed from: the configs, the optimizers, each one's param-group list and its length
        self._configs: list[Any] = []
        self._optimizers: list[Any] = []
        self._groups: list[tuple[Any, list[dict[str, Any]], int]] = []
        # name -> (the value, its tensor) last put into trainer.callback_metrics
        self._tensors: dict[str, tuple[Any, torch.Tensor]] = {}
        # the step post-hooks of the lr watch, when no SchedulerCadenceCheck watches (see `callbacks._lr_watch`)
        self._watch_handles: list[Any] = []

    @property
    def names(self) -> list[str]:
        """Every metric name this logger writes (known once training has started)."""
        return list(dict.fromkeys(name for name, _, _ in self._step_entries + self._epoch_entries))

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.loggers:
            raise LearningRateLoggerError(
                "Cannot use `LearningRateLogger` callback with `Trainer` that has no logger (`logger=False`): it"
                " writes the learning rates through the Trainer's loggers. Pass one, e.g."
                " `Trainer(logger=CSVLogger('logs'))`, or `logger=True` for TensorBoard, or remove the callback."
            )
        self._tensors = {}
        self._watch(trainer, pl_module)
        names = self._compute_names(trainer)
        self.lrs = {name: [] for name in names}
        self.last_momentum_values = {f"{name}-momentum": None for name in names}
        self.last_weight_decay_values = {f"{name}-weight_decay": None for name in names}
        if self.log_momentum and trainer.is_global_zero:
            lacking = _without_momentum([optimizer for optimizer, _, _ in self._groups])
            if lacking:
                warnings.warn(
                    "You have set log_momentum=True, but some optimizers do not have momentum. This will log a value"
                    f" 0 for the momentum of {', '.join(lacking)} (no `momentum` or `betas` in its defaults). Set"
                    " `LearningRateLogger(log_momentum=False)` if that is not what you want.",
                    LearningRateLoggerWarning,
                    stacklevel=2,
                )

    def _watch(self, trainer: Any, pl_module: Any) -> None:
        """Watch the lrs step by step (`callbacks._lr_watch`) unless a `SchedulerCadenceCheck` does."""
        self._unwatch()
        if not trainer.is_global_zero or any(isinstance(c, SchedulerCadenceCheck) for c in trainer.callbacks):
            return
        optimizers = [getattr(o, "optimizer", o) for o in trainer.optimizers]
        names = optimizer_names(trainer.lr_scheduler_configs, optimizers, getattr(pl_module, "optimizer_roles", None))
        watch = watch_for(trainer, pl_module, optimizers, [names.optimizer(i) for i in range(len(optimizers))],
                          not pl_module.automatic_optimization or getattr(pl_module, "training_cadence", None)
                          is not None, warn)
        self._watch_handles = [o.register_step_post_hook(PostHook(watch, i)) for i, o in enumerate(optimizers)
                               if hasattr(o, "register_step_post_hook")]

    def _unwatch(self) -> None:
        for handle in self._watch_handles:
            handle.remove()
        self._watch_handles = []

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._unwatch()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._unwatch()

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        # `trainer._logger_connector.should_update_logs` in the fit loop, as `LearningRateMonitor` checks it
        if self.logging_interval == "epoch":
            return
        every = trainer.log_every_n_steps
        if not every or ((trainer.fit_loop.epoch_loop._batches_that_stepped + 1) % every and not trainer.should_stop):
            return
        if self._changed(trainer):
            self._compute_names(trainer)
        if self._step_entries:
            self._log(trainer, self._step_entries)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if self.logging_interval == "step":
            return
        if self._changed(trainer):
            self._compute_names(trainer)
        if self._epoch_entries:
            self._log(trainer, self._epoch_entries)

    def _changed(self, trainer: Any) -> bool:
        """Whether the scheduler configs, the optimizers or their param groups differ from those named last."""
        configs, optimizers, known = trainer.lr_scheduler_configs, trainer.optimizers, self._configs
        if len(configs) != len(known) or len(optimizers) != len(self._optimizers):
            return True
        for config, old in zip(configs, known):
            if config is not old:
                return True
        for optimizer, old in zip(optimizers, self._optimizers):
            if optimizer is not old:
                return True
        for optimizer, groups, count in self._groups:
            if optimizer.param_groups is not groups or len(groups) != count:
                return True
        return False

    def _compute_names(self, trainer: Any) -> list[str]:
        """Name every param group, rebuild the entries read at each logging call, carry `lrs` over to new names."""
        configs, optimizers = trainer.lr_scheduler_configs, trainer.optimizers
        with_scheduler, without_scheduler = learning_rate_names(configs, optimizers)
        self._configs, self._optimizers = list(configs), list(optimizers)
        self._groups = []
        for optimizer in [optimizer for _, optimizer, _ in with_scheduler] + [o for o, _ in without_scheduler]:
            if all(optimizer is not known for known, _, _ in self._groups):
                self._groups.append((optimizer, optimizer.param_groups, len(optimizer.param_groups)))
        self._step_entries, self._epoch_entries = [], []
        for config, optimizer, names in with_scheduler:
            entries = self._entries(optimizer, names)
            if self.logging_interval == "step" or (self.logging_interval is None and config.interval == "step"):
                self._step_entries += entries
            if self.logging_interval == "epoch" or (self.logging_interval is None and config.interval == "epoch"):
                self._epoch_entries += entries
        for optimizer, names in without_scheduler:
            entries = self._entries(optimizer, names)
            self._step_entries += entries
            self._epoch_entries += entries
        all_names = [name for _, _, names in with_scheduler for name in names]
        all_names += [name for _, names in without_scheduler for name in names]
        for name in all_names:  # `LearningRateMonitor`'s renaming: 'lr-SGD' -> 'lr-SGD/pg1' keeps its history
            old = name.replace(_RENAMED_TOKEN, "")
            if _RENAMED_TOKEN in name and old in self.lrs:
                self.lrs[name] = self.lrs.pop(old)
            elif name not in self.lrs:
                self.lrs[name] = []
        return all_names

    def _entries(self, optimizer: Any, names: list[str]) -> list[_Entry]:
        entries: list[_Entry] = []
        momentum = _BETA1 if "betas" in getattr(optimizer, "defaults", {}) else _MOMENTUM
        hybrid = isinstance(optimizer, HybridOptimizer)  # its parts differ: Muon's momentum, AdamW's beta1
        lr = _APPLIED_LR if schedule_free.is_schedule_free(optimizer) else _LR
        for group, name in zip(optimizer.param_groups, names):
            entries.append((name, group, lr))
            if self.log_momentum:
                entries.append((f"{name}-momentum", group, (_BETA1 if "betas" in group else _MOMENTUM) if hybrid
                                else momentum))
            if self.log_weight_decay:
                entries.append((f"{name}-weight_decay", group, _WEIGHT_DECAY))
        return entries

    def _log(self, trainer: Any, entries: list[_Entry]) -> None:
        metrics: dict[str, Any] = {}
        lrs, momenta, decays = self.lrs, self.last_momentum_values, self.last_weight_decay_values
        for name, group, what in entries:
            if what == _LR:
                value = group["lr"]
                lrs[name].append(value)
            elif what == _APPLIED_LR:
                value = schedule_free.applied_lr(group)
                lrs[name].append(value)
            elif what == _WEIGHT_DECAY:
                value = decays[name] = group.get("weight_decay", 0)
            else:
                value = momenta[name] = group["betas"][0] if what == _BETA1 else group.get("momentum", 0)
            metrics[name] = value
        step = trainer.fit_loop.epoch_loop._batches_that_stepped
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)
        # for EarlyStopping / ModelCheckpoint; a new tensor only for a new value (they keep views of the old one)
        # (the dict behind `trainer.callback_metrics`: the property first recomputes every metric logged this epoch)
        callback_metrics = getattr(trainer._logger_connector, "_callback_metrics", None)
        if callback_metrics is None:  # pragma: no cover - a Lightning without it
            callback_metrics = trainer.callback_metrics
        tensors = self._tensors
        for name, value in metrics.items():
            known = tensors.get(name)
            if known is None or known[0] is not value:
                tensor = value.detach().clone() if isinstance(value, torch.Tensor) else torch.tensor(value)
                known = tensors[name] = (value, tensor)
            callback_metrics[name] = known[1]
