"""`ScheduleFreeModes`: a schedule-free optimizer in train mode for training and in eval mode wherever the weights
are evaluated or kept, at every boundary Lightning has, for any module.

The parameters of a schedule-free optimizer hold the training sequence in train mode and the evaluation weights in
eval mode (`lightning_optim_recipes.schedule_free`), and Lightning switches neither. This callback does:

==================================================  ===========================  =================================
boundary                                            mode                         where
==================================================  ===========================  =================================
training batches                                    train                        ``on_fit_start``, ``on_train_start``
validation (in fit and ``validate``), ``test``,     eval, then the mode before   ``on_<stage>_start``, ``_end``
``predict``
every checkpoint saved while fitting                eval, then the mode before   ``Trainer.save_checkpoint``
the end of fit (also on an exception)               eval: the module keeps its   ``on_train_end``, ``teardown``,
                                                    evaluation weights           ``on_exception``
==================================================  ===========================  =================================

Checkpoints therefore hold the evaluation weights and the optimizer in eval mode, and a resumed fit continues
exactly (its ``on_train_start`` switches back, as the uninterrupted run does after each save). The learning-rate
finder saves a checkpoint in its own ``on_fit_start``, before this callback's: that save starts train mode.
It lives beside ``callbacks/`` and ``mixins/`` (both use it): `OptimRecipeMixin` adds it for a schedule-free recipe.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Optional

from lightning_optim_recipes import fit_checks, schedule_free
from lightning_optim_recipes._lightning import callback_bases
from lightning_optim_recipes.errors import RecipeError, warn

__all__ = ["ScheduleFreeModes"]

_OWNER = "_schedule_free_modes"  # on the Trainer's `save_checkpoint` wrapper: the callback that installed it


class ScheduleFreeModes(*callback_bases()):  # type: ignore[misc]
    """Switch schedule-free optimizers (``schedulefree.AdamWScheduleFree``, ...) between train and eval mode at every
    boundary: train mode for training batches; eval mode for validation (in ``fit`` and ``validate``), ``test``,
    ``predict`` and every checkpoint saved while fitting, then back to the mode before; eval mode when fit ends, so
    that the module keeps its evaluation weights. Optimizers without modes are left alone.

    Before training it warns (`RecipeWarning`) about a scheduler attached to a schedule-free optimizer (its schedule
    is built in: give it ``warmup_steps``) and about BatchNorm layers without ``bn_recompute_batches``.

    Args:
        bn_recompute_batches: BatchNorm running statistics are accumulated at the training sequence; with ``N > 0``,
            whenever the weights are switched to the evaluation weights (and the optimizers have stepped since the
            last time), the first ``N`` batches of the training loader are forwarded at the evaluation weights in
            train mode without gradients, as the schedule-free authors recommend (their README: 50 batches).
        bn_forward: how to forward one training batch: ``bn_forward(module, batch)``; default ``module(batch)``, or
            ``module(batch[0])`` for an ``(inputs, targets)`` batch.

    Example:
        >>> import pytorch_lightning as pl, schedulefree, torch
        >>> class Model(pl.LightningModule):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.layer = torch.nn.Linear(2, 1)
        ...     def training_step(self, batch, batch_idx):
        ...         return self.layer(batch).pow(2).mean()
        ...     def configure_optimizers(self):
        ...         return schedulefree.AdamWScheduleFree(self.parameters(), lr=0.01, warmup_steps=2)
        >>> model = Model()
        >>> trainer = pl.Trainer(max_epochs=1, callbacks=[ScheduleFreeModes()], logger=False, enable_progress_bar=False,
        ...                      enable_checkpointing=False, enable_model_summary=False)
        >>> trainer.fit(model, torch.utils.data.DataLoader(torch.randn(8, 2), batch_size=2))
        >>> trainer.optimizers[0].param_groups[0]["train_mode"]  # fit ended: the evaluation weights
        False
    """

    #: What the checks before training look for (`schedule_free.HANDLES_MODES`).
    handles_schedule_free_modes = True

    # Lightning calls every callback's hook on every batch unless it is not callable: the base class's empty hooks
    # would cost each batch a dispatch (with its profiler context). The modes change only at the boundaries.
    on_train_batch_start = on_train_batch_end = on_before_backward = on_after_backward = None
    on_before_optimizer_step = on_before_zero_grad = None
    on_validation_batch_start = on_validation_batch_end = on_test_batch_start = on_test_batch_end = None
    on_predict_batch_start = on_predict_batch_end = None

    def __init__(self, bn_recompute_batches: int = 0,
                 bn_forward: Optional[Callable[[Any, Any], Any]] = None) -> None:
        if isinstance(bn_recompute_batches, bool) or not isinstance(bn_recompute_batches, int) or \
                bn_recompute_batches < 0:
            raise RecipeError(
                "`bn_recompute_batches` must be a non-negative int (training batches forwarded at the evaluation"
                f" weights before each evaluation; 0: none), got {bn_recompute_batches!r}."
            )
        if bn_forward is not None and not callable(bn_forward):
            raise RecipeError(f"`bn_forward` must be a function `(module, batch) -> output`, got {bn_forward!r}.")
        self.bn_recompute_batches = bn_recompute_batches
        self.bn_forward = bn_forward
        self._before: dict[str, tuple[Optional[bool], ...]] = {}  # stage -> the modes before its evaluation
        self._recomputed_at: Optional[tuple[Any, ...]] = None  # the optimizers' step counts at the last recomputation
        self._started = False  # this fit's optimizers have been put in train mode

    # ----------------------------------------------------------------------------------------------------- fit

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage == "fit":
            self._started, self._recomputed_at = False, None
            self._wrap_save(trainer)

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._start(trainer)
        if trainer.is_global_zero:
            self._check(trainer, pl_module)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        schedule_free.switch(trainer.optimizers, train=True)  # after a resume: the checkpoint held eval mode

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._to_eval(trainer, pl_module)

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage == "fit":
            schedule_free.switch(trainer.optimizers, train=False)  # a fit that ended without `on_train_end`
            self._unwrap_save(trainer)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        schedule_free.switch(trainer.optimizers, train=False)
        self._unwrap_save(trainer)

    # ---------------------------------------------------------------------------------------------- evaluation

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        self._before["validate"] = self._to_eval(trainer, pl_module)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        schedule_free.restore(trainer.optimizers, self._before.pop("validate", ()))

    def on_test_start(self, trainer: Any, pl_module: Any) -> None:
        self._before["test"] = self._to_eval(trainer, pl_module)

    def on_test_end(self, trainer: Any, pl_module: Any) -> None:
        schedule_free.restore(trainer.optimizers, self._before.pop("test", ()))

    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
        self._before["predict"] = self._to_eval(trainer, pl_module)

    def on_predict_end(self, trainer: Any, pl_module: Any) -> None:
        schedule_free.restore(trainer.optimizers, self._before.pop("predict", ()))

    # ------------------------------------------------------------------------------------------------- helpers

    def _start(self, trainer: Any) -> None:
        """Train mode for this fit's optimizers (before any step a switch moves no parameter); a word on the
        learning-rate finder, if it is about to sweep one that warms up."""
        if self._started:
            return
        self._started = True
        schedule_free.switch(trainer.optimizers, train=True)
        finder = any(k.__name__ == "LearningRateFinder" for c in trainer.callbacks for k in type(c).__mro__)
        if finder and trainer.is_global_zero:
            schedule_free.warn_lr_finder(trainer.optimizers, at=fit_checks.user_line(trainer.lightning_module))

    def _to_eval(self, trainer: Any, pl_module: Any) -> tuple[Optional[bool], ...]:
        """Eval mode, the BatchNorm statistics recomputed when the weights moved; the modes before."""
        optimizers = list(trainer.optimizers)
        moved = schedule_free.moves(optimizers, train=False)
        before = schedule_free.switch(optimizers, train=False)
        if moved:
            self._recompute(trainer, pl_module, optimizers)
        return before

    def _recompute(self, trainer: Any, pl_module: Any, optimizers: list[Any]) -> None:
        if not self.bn_recompute_batches or not schedule_free.batch_norms(pl_module):
            return
        at = tuple(g.get("k") for o in optimizers for g in getattr(o, "param_groups", ()))
        if at == self._recomputed_at:
            return  # the same evaluation weights as last time (a checkpoint right after validation)
        loaders = trainer.train_dataloader
        if loaders is None:
            warn("ScheduleFreeModes cannot recompute the BatchNorm statistics here: this stage has no training"
                 " loader. They stay those of the last recomputation in fit.", at=fit_checks.user_line(pl_module))
            return
        batches = (trainer.strategy.batch_to_device(b) for b in itertools.islice(_batches(loaders),
                                                                                  self.bn_recompute_batches))
        with trainer.precision_plugin.train_step_context():
            schedule_free.recompute_batch_norm(pl_module, batches, self.bn_forward or schedule_free.forward_inputs)
        self._recomputed_at = at

    def _check(self, trainer: Any, pl_module: Any) -> None:
        optimizers = list(trainer.optimizers)
        if not any(schedule_free.is_schedule_free(o) for o in optimizers):
            return
        at = fit_checks.user_line(pl_module)
        index = {id(getattr(o, "_optimizer", o)): i for i, o in enumerate(optimizers)}
        schedulers = [(c.scheduler, index.get(id(getattr(c.scheduler, "optimizer", None)), len(optimizers)), c.name)
                      for c in trainer.lr_scheduler_configs]
        schedule_free.warn_schedulers(optimizers, schedulers, at=at)
        schedule_free.warn_batch_norm(optimizers, pl_module, self.bn_recompute_batches, at=at)

    def _wrap_save(self, trainer: Any) -> None:
        """Every checkpoint of this fit (`ModelCheckpoint`, the learning-rate finder's, ``trainer.save_checkpoint``)
        saved in eval mode; the modes before restored once it is written (or handed to an async writer, which copies
        it first)."""
        if getattr(trainer.__dict__.get("save_checkpoint"), _OWNER, None) is self:
            return
        original = trainer.save_checkpoint

        @functools.wraps(original)
        def save_checkpoint(*args: Any, **kwargs: Any) -> Any:
            self._start(trainer)
            before = self._to_eval(trainer, trainer.lightning_module)
            try:
                return original(*args, **kwargs)
            finally:
                schedule_free.restore(trainer.optimizers, before)

        setattr(save_checkpoint, _OWNER, self)
        trainer.save_checkpoint = save_checkpoint

    def _unwrap_save(self, trainer: Any) -> None:
        if getattr(trainer.__dict__.get("save_checkpoint"), _OWNER, None) is self:
            del trainer.__dict__["save_checkpoint"]


def _batches(loaders: Any) -> Iterator[Any]:
    """Batches of the training loader(s): one loader's, or one batch of each of several (a dict or a list)."""
    if isinstance(loaders, Mapping):
        keys = list(loaders)
        for values in zip(*(iter(loaders[k]) for k in keys)):
            yield dict(zip(keys, values))
    elif isinstance(loaders, (list, tuple)):
        for values in zip(*(iter(loader) for loader in loaders)):
            yield list(values)
    else:
        yield from loaders
