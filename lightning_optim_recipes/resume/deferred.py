"""Resume under the strategies that restore a checkpoint after ``configure_optimizers``: Lightning's
`ModelParallelStrategy` (FSDP2 and tensor parallelism: the checkpoint a directory of shards), `FSDPStrategy` and
DeepSpeed (their ``restore_checkpoint_after_setup``).

There Lightning's order in ``fit`` is: ``configure_optimizers`` (the entry points' `on_configured`: nothing is loaded
yet); ``on_fit_start``; the strategy's ``load_checkpoint``, which loads the weights *and each optimizer's state* (its
param groups' ``lr``, ``initial_lr``, ... included) into the live model and optimizers, and returns the rest (the
loops, the schedulers' states: ``meta.pt`` of a sharded checkpoint); the module's and the callbacks'
``on_load_checkpoint`` with that rest; then ``restore_training_state`` (the loops and ``scheduler.load_state_dict``;
the optimizers are not restored again). So the entry points `defer`: a small callback (`ResumeAfterSetup`, one per
Trainer, added for the fit) keeps what ``configure_optimizers`` built, and in ``on_load_checkpoint`` puts the
optimizers back to it, reads the checkpoint's optimizer states from them, and runs the same `reconcile` as the other
strategies: under ``"recipe"`` it loads the new settings with the kept moments into each optimizer and the placed
schedulers into the checkpoint's dict, which Lightning restores next; under ``"checkpoint"`` it loads back what the
checkpoint had. The same callback writes each optimizer's record (its class, its schedulers' cadence) into every
checkpoint's top level (`RECORDS_KEY`): torch's distributed state dicts keep only ``state`` and ``param_groups``.
"""

from __future__ import annotations

import copy
import functools
from typing import Any, NamedTuple, Optional

from lightning_optim_recipes import cadence, fit_checks
from lightning_optim_recipes._lightning import callback_bases
from lightning_optim_recipes.resume.checkpoint import RECORDS_KEY
from lightning_optim_recipes.resume.reconcile import on_configured as _on_configured_now
from lightning_optim_recipes.resume.reconcile import reconcile_restored
from lightning_optim_recipes.resume.state import RECORD_KEY, ResumeReport, choose, record, record_info, take_request
from lightning_optim_recipes.validation import OptimizerSetup
from lightning_optim_recipes.wsd import check_decay_start

__all__ = ["RECORDS_KEY", "on_configured", "restores_after_setup"]

def restores_after_setup(trainer: Any) -> bool:
    """Whether `trainer` fits under a strategy that loads a checkpoint only after ``configure_optimizers``."""
    strategy = getattr(trainer, "strategy", None)
    fn = getattr(getattr(trainer, "state", None), "fn", None)
    return bool(getattr(strategy, "restore_checkpoint_after_setup", False)) and str(getattr(fn, "value", fn)) == "fit"


def on_configured(module: Any, setup: OptimizerSetup, trainer: Any, *, own: Optional[str] = None,
                  loop: Optional[cadence.Loop] = None, at: Any = None, owner: Any = None) -> Optional[ResumeReport]:
    """`lightning_optim_recipes.resume.reconcile.on_configured` for every strategy: under one that restores after
    setup, the choice is made and the optimizers recorded now, and the reconciliation waits for the checkpoint (the
    report then lands on `owner`'s ``resume_report``, the module's by default). Returns the report, or None when
    the fit does not resume or waits."""
    if not restores_after_setup(trainer):
        return _on_configured_now(module, setup, trainer, own=own, loop=loop, at=at)
    choice = choose(module, own, take_request(module))
    record(setup)
    groups = [[{k: copy.deepcopy(v) for k, v in g.items() if k != "params"} for g in _raw(o).param_groups]
              for o in setup.optimizers]
    callback = _attached(trainer)
    callback._pending = _Pending(module, setup, choice, loop, at if at is not None else fit_checks.user_line(module),
                                 groups, owner if owner is not None else module)
    callback._records = record_info(setup)
    return None


class _Pending(NamedTuple):
    module: Any
    setup: OptimizerSetup
    choice: str
    loop: Optional[cadence.Loop]
    at: Any
    groups: list[list[dict[str, Any]]]  # each group's options as `configure_optimizers` built them
    owner: Any


def _raw(optimizer: Any) -> Any:
    return getattr(optimizer, "_optimizer", optimizer)


def settle(pending: _Pending, trainer: Any, checkpoint: dict[str, Any]) -> Optional[ResumeReport]:
    """Reconcile what `pending` built with the checkpoint the strategy has just loaded into its optimizers
    (`checkpoint`: the rest, edited in place under ``"recipe"``), and load into the optimizers what training uses."""
    optimizers = [_raw(o) for o in pending.setup.optimizers]
    loaded = [o.state_dict() for o in optimizers]  # the checkpoint's groups and moments, as the strategy loaded them
    records = checkpoint.get(RECORDS_KEY)
    for index, state in enumerate(loaded):
        state.pop(RECORD_KEY, None)  # this run's record, added by `record`: the checkpoint's is in `RECORDS_KEY`
        if isinstance(records, list) and index < len(records) and records[index] is not None:
            state[RECORD_KEY] = records[index]
    for optimizer, groups in zip(optimizers, pending.groups):  # back to what `configure_optimizers` built
        for group, values in zip(optimizer.param_groups, groups):
            group.update(copy.deepcopy(values))
    view = {**checkpoint, "optimizer_states": loaded}
    report = reconcile_restored(pending.module, pending.setup, trainer, view, pending.choice, loop=pending.loop,
                                at=pending.at)
    states = view["optimizer_states"] if pending.choice == "recipe" else loaded
    for optimizer, state in zip(optimizers, states):
        optimizer.load_state_dict(state)
    if pending.choice == "recipe":
        checkpoint["lr_schedulers"] = view["lr_schedulers"]
    warned = check_decay_start(pending.setup.schedulers, trainer, at=pending.at,
                               positions=report.positions if report is not None else None)
    pending.module.__dict__.setdefault(fit_checks.WARNED_KEY, {}).update(dict.fromkeys(warned, True))
    if report is not None and hasattr(pending.owner, "resume_report"):
        pending.owner.resume_report = report
    return report


# -------------------------------------------------------------------------------------------------- the callback

#: `Callback` hooks that run on every batch and that the callback does not use (not callable: Lightning skips them).
_PER_BATCH = ("on_train_batch_start", "on_train_batch_end", "on_before_backward", "on_after_backward",
              "on_before_optimizer_step", "on_before_zero_grad", "on_validation_batch_start",
              "on_validation_batch_end")


def _attached(trainer: Any) -> Any:
    """The Trainer's `ResumeAfterSetup` callback, added to ``trainer.callbacks`` the first time."""
    for callback in trainer.callbacks:
        if type(callback).__name__ == "ResumeAfterSetup" and type(callback).__module__ == __name__:
            return callback
    callback = _callback_class()()
    trainer.callbacks.append(callback)
    return callback


@functools.cache
def _callback_class() -> type:
    def __init__(self: Any) -> None:  # noqa: N807
        self._pending = None  # a `_Pending`, from `on_configured` until the checkpoint is loaded or training starts
        self._records = []  # each optimizer's record, written into every checkpoint

    def on_save_checkpoint(self: Any, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        if self._records:
            checkpoint[RECORDS_KEY] = copy.deepcopy(self._records)

    def on_load_checkpoint(self: Any, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and "lr_schedulers" in checkpoint:  # not a weights-only checkpoint
            settle(pending, trainer, checkpoint)

    def on_train_start(self: Any, trainer: Any, pl_module: Any) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:  # no checkpoint was loaded: a cooldown from where training resumes cannot start
            check_decay_start(pending.setup.schedulers, trainer, at=pending.at)

    namespace = {
        "__doc__": "Reconciles the recipe with a checkpoint that the strategy loads after `configure_optimizers`.",
        "__init__": __init__,
        "on_save_checkpoint": on_save_checkpoint,
        "on_load_checkpoint": on_load_checkpoint,
        "on_train_start": on_train_start,
        **dict.fromkeys(_PER_BATCH),
        "__module__": __name__,
        "__qualname__": "ResumeAfterSetup",
    }
    return type("ResumeAfterSetup", callback_bases(), namespace)
