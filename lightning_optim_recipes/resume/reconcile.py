"""The resume machinery: `on_configured` (the entry points' call once ``configure_optimizers`` is validated) and
`reconcile` (compare, warn, and under ``resume="recipe"`` place the schedulers and edit the checkpoint dict)."""

from __future__ import annotations

import collections
import copy
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import torch

from lightning_optim_recipes import cadence, fit_checks, schedule_free, units
from lightning_optim_recipes.errors import RecipeError, RecipeWarning, rank_zero, warn
from lightning_optim_recipes.recipe_parts import say
from lightning_optim_recipes.resume.checkpoint import Restored, checkpoint_being_restored, read_checkpoint, short, steps_taken
from lightning_optim_recipes.resume.compare import compare, dropped_message, table_message
from lightning_optim_recipes.resume.extend import check_extend, extended
from lightning_optim_recipes.resume.place import place_all, positions_of
from lightning_optim_recipes.resume.state import (
    ResumeReport,
    check_choice,
    choose,
    qualname,
    record,
    set_moved,
    take_request,
)
from lightning_optim_recipes.validation import OptimizerSetup

__all__ = ["on_configured", "reconcile", "reconcile_restored"]


_DONE = "_lightning_optim_recipes_resume_done"  # marks a loaded checkpoint dict once it has been reconciled


#: ReduceLROnPlateau's counters, kept from the checkpoint under resume="recipe".
_PLATEAU_COUNTERS = ("best", "num_bad_epochs", "cooldown_counter", "last_epoch", "_last_lr")


def on_configured(module: Any, setup: OptimizerSetup, trainer: Any, *, own: Optional[str] = None,
                  loop: Optional[cadence.Loop] = None, at: Any = None) -> Optional[ResumeReport]:
    """Called by the library's entry points right after ``configure_optimizers`` has been validated.

    Records the optimizers' classes and the schedulers' cadence in future checkpoints, and, when this fit resumes
    from a checkpoint that Lightning has loaded but not yet restored, runs `reconcile` with the choice of the module
    (`own`, its ``resume``) or of a checking callback. Returns its report, or None when not resuming.
    """
    choice = choose(module, own, take_request(module))
    record(setup)
    checkpoint = checkpoint_being_restored(trainer)
    if checkpoint is None or checkpoint.get(_DONE) or "optimizer_states" not in checkpoint:
        return None  # not resuming; already reconciled; or weights only (Lightning explains that one)
    checkpoint[_DONE] = True
    return reconcile_restored(module, setup, trainer, checkpoint, choice, loop=loop, at=at)


def reconcile_restored(module: Any, setup: OptimizerSetup, trainer: Any, checkpoint: dict[str, Any], choice: str, *,
                       loop: Optional[cadence.Loop] = None, at: Any = None) -> Optional[ResumeReport]:
    """`reconcile` `setup` (as `module`'s ``configure_optimizers`` built it) with `checkpoint` for `trainer`'s run:
    the loop model, the run's sizes and the schedules' extension read from them (`on_configured`, and
    `lightning_optim_recipes.resume.deferred` once a strategy has loaded the checkpoint after setup)."""
    if loop is None and getattr(module, "automatic_optimization", True) and len(setup.optimizers) <= 1:
        accumulate = int(getattr(trainer, "accumulate_grad_batches", 1) or 1)
        loop = cadence.Loop("automatic", 1, _timings(setup), accumulate=(accumulate,))
    per_epoch = _batches_per_epoch(trainer) if setup.schedulers else None
    extend = check_extend(getattr(module, "extend_schedule", None), f"`{type(module).__name__}.extend_schedule`")
    run_steps = units.RunSize.of(trainer).total_steps if setup.schedulers else None
    with warnings.catch_warnings():
        if not getattr(trainer, "is_global_zero", True):  # every rank reconciles its copy; rank 0 tells
            warnings.simplefilter("ignore", RecipeWarning)
        return reconcile(setup, checkpoint, choice, loop=loop, batches_per_epoch=per_epoch,
                         at=at if at is not None else fit_checks.user_line(module), source=_source(trainer),
                         extend=extend, run_steps=run_steps, warned=module.__dict__.setdefault(fit_checks.WARNED_KEY,
                                                                                                {}))


def _source(trainer: Any) -> str:
    path = getattr(trainer, "ckpt_path", None)
    return f"the checkpoint {os.path.basename(str(path))!r}" if path else "the checkpoint"


def _batches_per_epoch(trainer: Any) -> Optional[int]:
    batches = getattr(trainer, "num_training_batches", None)
    if batches == float("inf") and hasattr(trainer, "fit_loop"):
        try:  # Lightning sizes the epoch when the loader is set up, as for `estimated_stepping_batches`
            trainer.estimated_stepping_batches  # noqa: B018
        except Exception:  # noqa: BLE001 - no loader yet: positions then come from the checkpoint's counts
            return None
        batches = trainer.num_training_batches
    return batches if isinstance(batches, int) and batches > 0 else None


def _timings(setup: OptimizerSetup) -> tuple[cadence.Timing, ...]:
    return tuple(cadence.Timing(s.optimizer_index, s.interval, s.frequency, s.reduce_on_plateau)
                 for s in setup.schedulers)


def _snapshot(setup: OptimizerSetup) -> tuple[list[list[dict[str, Any]]], list[dict[str, Any]]]:
    groups = [[{k: v for k, v in g.items() if k != "params"} for g in o.param_groups] for o in setup.optimizers]
    return groups, [copy.deepcopy(s.scheduler.state_dict()) for s in setup.schedulers]


def _restore(setup: OptimizerSetup, snapshot: tuple[list[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
    groups, schedulers = snapshot
    for optimizer, saved in zip(setup.optimizers, groups):
        for group, values in zip(optimizer.param_groups, saved):
            group.update(values)
    for spec, state in zip(setup.schedulers, schedulers):
        spec.scheduler.load_state_dict(state)


def reconcile(setup: OptimizerSetup, checkpoint: dict[str, Any], choice: str, *, loop: Optional[cadence.Loop] = None,
              batches_per_epoch: Optional[int] = None, at: Any = None, source: str = "the checkpoint",
              extend: Optional[str] = None, run_steps: Optional[int] = None,
              warned: Optional[dict[int, bool]] = None) -> Optional[ResumeReport]:
    """Compare the freshly built `setup` with what `checkpoint` (a Lightning checkpoint dict, not restored yet) will
    restore; warn with the table of differences (for ``choice="recipe"``, chosen, log it at INFO on the library's
    logger); for ``choice="recipe"``, place the schedulers and edit `checkpoint` so that restoring it keeps only the
    optimizers' state and the counters.

    Args:
        setup: the validated optimizers and schedulers, as ``configure_optimizers`` built them (not stepped).
        checkpoint: the checkpoint dict (``optimizer_states``, ``lr_schedulers``, ``global_step``, ``epoch``,
            ``loops``); edited in place under ``"recipe"``.
        choice: ``"checkpoint"`` or ``"recipe"``.
        loop: the training loop's cadence (`lightning_optim_recipes.cadence.Loop`), to place schedulers whose cadence
            changed; None: they resume at their checkpoint counts.
        batches_per_epoch: training batches per epoch (for the same).
        at: where the warnings point (the module's ``configure_optimizers``).
        source: the checkpoint as messages name it.
        extend: ``extend_schedule``: what a schedule that had ended in the checkpoint does in a longer run
            (`lightning_optim_recipes.resume.extend`).
        run_steps: the optimizer steps of the run being resumed (None: unknown, it trains on).
        warned: the optimizers the checks before training warned about (``fit_checks.WARNED_KEY``), which a warning
            here adds to.

    Returns:
        The `ResumeReport` (also when nothing differs).

    Raises:
        RecipeError: under ``"checkpoint"``, for a change Lightning cannot restore (another param-group layout), or a
            schedule that had ended, in a longer run, without ``extend="hold"``.

    Example:
        >>> import torch
        >>> old = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
        >>> old_scheduler = torch.optim.lr_scheduler.MultiStepLR(old, milestones=[2], gamma=0.5)
        >>> for _ in range(3):
        ...     old.step(); old_scheduler.step()
        >>> checkpoint = {"optimizer_states": [old.state_dict()], "lr_schedulers": [old_scheduler.state_dict()],
        ...               "global_step": 3, "epoch": 3}
        >>> new = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
        >>> new_scheduler = torch.optim.lr_scheduler.MultiStepLR(new, milestones=[4], gamma=0.5)  # moved milestone
        >>> from lightning_optim_recipes.validation import SchedulerSpec
        >>> setup = OptimizerSetup((new,), (SchedulerSpec(new_scheduler, 0),))
        >>> with warnings.catch_warnings(record=True):
        ...     report = reconcile(setup, checkpoint, "recipe")
        >>> print(report.table())
        what                                  | checkpoint | new recipe | training uses
        optimizer 0, group 0: lr              | 0.05       | 0.1        | 0.1
        scheduler 0 (MultiStepLR): milestones | [2]        | [4]        | [4]
        >>> new.param_groups[0]["lr"], new_scheduler.last_epoch  # the new schedule, at step 3
        (0.1, 3)
    """
    check_choice(choice)
    restored = read_checkpoint(checkpoint)
    positions, counts, notes = positions_of(setup, restored, loop, batches_per_epoch)
    snapshot = _snapshot(setup) if choice == "checkpoint" else None
    try:
        place_all(setup, positions, counts, loop, batches_per_epoch, restored.batches, restored.schedulers)
        recipe_lrs: Optional[list[list[float]]] = [[g["lr"] for g in o.param_groups] for o in setup.optimizers]
    except RecipeError as err:
        if snapshot is None:
            raise
        recipe_lrs = None
        notes.append(f"The new schedule's lr at the resume step is unknown: {err}")
    notes.extend(extended(setup, restored, choice, extend, recipe_lrs, run_steps, source, at, warned))
    keep = [_state_fits(setup, restored, i) for i in range(min(len(setup.optimizers), len(restored.optimizers)))]
    if snapshot is not None:
        _restore(setup, snapshot)
    else:
        _keep_plateau(setup, restored, keep)
        _rewrite(setup, restored, checkpoint, keep)
        for k, spec in enumerate(setup.schedulers):
            taken = steps_taken(restored.schedulers[k]) if k < len(restored.schedulers) else None
            if taken is not None and positions[k] != taken:
                set_moved(spec.scheduler, positions[k] - taken)
    used = [[dict(g) for g in o.param_groups] for o in setup.optimizers] if choice == "recipe" else [
        _loaded_groups(o, restored.optimizers[i]) if i < len(restored.optimizers) else None
        for i, o in enumerate(setup.optimizers)]
    rows, fatal, more_notes = compare(setup, restored, choice, recipe_lrs, used, positions, keep)
    notes.extend(more_notes)
    dropped = tuple(i for i, (fits, _) in enumerate(keep) if not fits) if choice == "recipe" else ()
    report = ResumeReport(choice, source, restored.global_step, restored.epoch, tuple(rows), tuple(positions),
                          dropped, tuple(notes))
    if fatal:
        raise RecipeError(
            f"Cannot resume from {source} with resume='checkpoint': {'; '.join(fatal)}, so the checkpoint's"
            f" optimizer state cannot serve the new optimizer.\n{report.table()}\nSet `resume = \"recipe\"` on the"
            " module (or `resume=\"recipe\"` on ConfigureOptimizersCheck/SchedulerCadenceCheck) to keep the weights"
            " and the training progress with the new optimizer (its state starts afresh), or restore the old param"
            " groups and optimizer class."
        )
    for index in dropped:
        warn(dropped_message(source, index, keep[index][1], setup), at=at)
    if rows and choice == "recipe":  # chosen: said on the library's logger (and kept as the report)
        if rank_zero():
            say(table_message(report))
    elif rows:  # the checkpoint overrides what the module builds: a warning
        warn(table_message(report), at=at)
    return report


def _state_fits(setup: OptimizerSetup, restored: Restored, index: int) -> tuple[bool, str]:
    """Whether optimizer `index`'s saved state can serve the new optimizer, and why not."""
    optimizer = getattr(setup.optimizers[index], "_optimizer", setup.optimizers[index])
    saved = restored.optimizers[index]
    old_class, new_class = restored.optimizer_class(index), qualname(type(optimizer))
    if old_class is not None and old_class != new_class:
        return False, f"its class changed ({short(old_class)} -> {short(new_class)})"
    old_groups, new_groups = saved.get("param_groups") or [], optimizer.param_groups
    old_sizes, new_sizes = [len(g["params"]) for g in old_groups], [len(g["params"]) for g in new_groups]
    if old_sizes != new_sizes:
        return False, f"its param groups changed ({_sizes(old_sizes)} -> {_sizes(new_sizes)})"
    params = [p for g in new_groups for p in g["params"]]
    ids = [i for g in old_groups for i in g["params"]]
    for position, saved_id in enumerate(ids):
        for value in (saved.get("state") or {}).get(saved_id, {}).values():
            shape = getattr(value, "shape", None)
            if shape is not None and len(shape) > 0 and tuple(shape) != tuple(params[position].shape):
                return False, (f"its parameter {position} has another shape ({tuple(shape)} in the checkpoint,"
                               f" {tuple(params[position].shape)} now)")
    return True, ""


def _loaded_groups(optimizer: Any, saved: Mapping[str, Any]) -> Optional[list[dict[str, Any]]]:
    """The param groups `optimizer` has once torch has loaded `saved` into it (its class may fill or force options,
    as ``AdamW`` forces ``decoupled_weight_decay``), found on a shallow copy with stand-in parameters; None when
    torch cannot load it."""
    raw = getattr(optimizer, "_optimizer", optimizer)
    old_groups = saved.get("param_groups") or []
    if len(old_groups) != len(raw.param_groups):
        return None
    try:
        probe = copy.copy(raw)
        probe.param_groups = [{**group, "params": [torch.empty(0) for _ in old["params"]]}
                              for group, old in zip(raw.param_groups, old_groups)]
        probe.state = collections.defaultdict(dict)
        probe.load_state_dict({"state": {}, "param_groups": copy.deepcopy(old_groups)})
        return [dict(group) for group in probe.param_groups]
    except Exception:  # noqa: BLE001 - an optimizer torch cannot load this into: the checkpoint's values then
        return None


def _sizes(sizes: Sequence[int]) -> str:
    groups = "group" if len(sizes) == 1 else "groups"
    return f"{len(sizes)} {groups} of {', '.join(str(s) for s in sizes)} parameters"


def _keep_plateau(setup: OptimizerSetup, restored: Restored, keep: Sequence[tuple[bool, str]]) -> None:
    """A ReduceLROnPlateau under "recipe": the checkpoint's counters and lrs (metric history), the recipe's options."""
    for k, spec in enumerate(setup.schedulers):
        if not spec.reduce_on_plateau or k >= len(restored.schedulers):
            continue
        saved = restored.schedulers[k]
        state = spec.scheduler.state_dict()
        state.update({key: saved[key] for key in _PLATEAU_COUNTERS if key in saved})
        spec.scheduler.load_state_dict(state)
        index = spec.optimizer_index
        if index < len(keep) and index < len(restored.optimizers):
            old_groups = restored.optimizers[index].get("param_groups") or []
            for group, old in zip(setup.optimizers[index].param_groups, old_groups):
                group["lr"] = old["lr"]


def _rewrite(setup: OptimizerSetup, restored: Restored, checkpoint: dict[str, Any],
             keep: Sequence[tuple[bool, str]]) -> None:
    """Under "recipe": what Lightning will restore is the new optimizers' settings with the old state (when it fits)
    and the placed schedulers."""
    states = []
    for index, optimizer in enumerate(setup.optimizers):
        state = getattr(optimizer, "_optimizer", optimizer).state_dict()
        if index < len(keep) and keep[index][0]:
            state = {**state, "state": restored.optimizers[index].get("state", {})}
            if schedule_free.is_schedule_free(optimizer):  # its step count, averaging weights and mode are state too
                old_groups = restored.optimizers[index].get("param_groups") or []
                state["param_groups"] = [{**group, **{k: old[k] for k in schedule_free.GROUP_STATE_KEYS if k in old}}
                                         for group, old in zip(state["param_groups"], old_groups)]
        states.append(state)
    checkpoint["optimizer_states"] = states
    checkpoint["lr_schedulers"] = [spec.scheduler.state_dict() for spec in setup.schedulers]

