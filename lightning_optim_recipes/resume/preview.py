"""`preview_schedule` of a resumed run: the old run previewed up to its checkpoint, turned into the checkpoint dict
Lightning would save, the new module or recipe configured and reconciled with it, then previewed on from there."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any, NamedTuple, Optional

from lightning_optim_recipes import cadence, units
from lightning_optim_recipes.errors import RecipeError, caller_line
from lightning_optim_recipes.resume.checkpoint import load_saved, read_checkpoint
from lightning_optim_recipes.resume.extend import check_extend
from lightning_optim_recipes.resume.place import STEP_BEFORE_OPTIMIZER
from lightning_optim_recipes.resume.reconcile import reconcile
from lightning_optim_recipes.resume.state import check_choice, choose, record
from lightning_optim_recipes.standin import StandInTrainer, configure
from lightning_optim_recipes.trajectory import Recording, SchedulePreview, loop_of
from lightning_optim_recipes.wsd import check_decay_start

__all__ = ["ResumeFrom", "preview_resumed"]

#: The key of `AlternatingOptimizersMixin`'s state in a checkpoint's ``callbacks`` (its callback's ``state_key``,
#: ``mixins._callback.STATE_KEY``): where the alternation stands.
_ALTERNATION_KEY = "AlternatingOptimizersMixin"


class ResumeFrom(NamedTuple):
    """For `preview_schedule`: the run being resumed, previewed up to the checkpoint saved at `step`.

    Attributes:
        old: the module or recipe dict of the interrupted run.
        step: its ``global_step`` when the checkpoint was saved (optimizer steps; an epoch-end checkpoint of an
            epoch of ``n`` steps is at ``n * epochs``).
        max_epochs: the interrupted run's ``max_epochs`` (default: the new run's), for schedules that read the run's
            length (`warmup_cosine`, ``T_max=self.trainer.max_epochs``).
        module: the model an old recipe dict was built for (default: the preview's ``module``).
        extend_schedule: what a schedule that had ended at `step` does in a longer new run: ``"hold"`` or
            ``"stretch"`` (default: the new module's ``extend_schedule``; see `lightning_optim_recipes.resume.extend`).

    Example:
        >>> from lightning_optim_recipes import preview_schedule
        >>> old = {"optimizer": "SGD", "lr": 0.1, "scheduler": {"type": "multistep", "milestones": [2], "gamma": 0.5}}
        >>> new = {"optimizer": "SGD", "lr": 0.1, "scheduler": {"type": "multistep", "milestones": [3], "gamma": 0.5}}
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")  # the table of what the resume changes
        ...     records = preview_schedule(new, max_epochs=5, steps_per_epoch=1, resume="recipe",
        ...                                resume_from=ResumeFrom(old, step=2, max_epochs=2))
        >>> [(r["step"], r["lr"]) for r in records if r["group"] == "decay"]  # old schedule, then the new one
        [(0, 0.1), (1, 0.1), (2, 0.1), (3, 0.05), (4, 0.05)]
        >>> print(records.resume_report.table())
        what                                  | checkpoint | new recipe | training uses
        optimizer 0, group 'decay': lr        | 0.05       | 0.1        | 0.1
        optimizer 0, group 'no_decay': lr     | 0.05       | 0.1        | 0.1
        scheduler 0 (MultiStepLR): milestones | [2]        | [3]        | [3]
    """

    old: Any
    step: int
    max_epochs: Optional[int] = None
    module: Any = None
    extend_schedule: Optional[str] = None


def preview_resumed(new: Any, resume_from: Any, choice: Optional[str], *, max_epochs: int, steps_per_epoch: int,
                    accumulate_grad_batches: int, module: Any, batch_size: Optional[int] = None) -> Any:
    """`preview_schedule` of a resumed run: `resume_from`'s old run up to its step, `new` after it (see
    `ResumeFrom`), or `new` from a checkpoint on disk (`resume_from` its path: a ``.ckpt`` file or a sharded
    strategy's directory of shards, `load_saved`). Returns a `SchedulePreview` with ``resume_report`` set."""
    if isinstance(resume_from, (str, os.PathLike)):
        return _preview_from_disk(new, resume_from, choice, max_epochs=max_epochs, steps_per_epoch=steps_per_epoch,
                                  accumulate_grad_batches=accumulate_grad_batches, module=module,
                                  batch_size=batch_size)
    point = resume_from if isinstance(resume_from, ResumeFrom) else ResumeFrom(*resume_from)
    if isinstance(point.step, bool) or not isinstance(point.step, int) or point.step < 0:
        raise RecipeError(f"`resume_from`'s step must be a non-negative int (a global_step), got {point.step!r}.")
    old_epochs = point.max_epochs if point.max_epochs is not None else max_epochs
    per_epoch, accumulate = steps_per_epoch, accumulate_grad_batches
    result = SchedulePreview()
    result.max_epochs, result.steps_per_epoch, result.accumulate_grad_batches = max_epochs, per_epoch, accumulate
    result.markers = []

    old_trainer = StandInTrainer(old_epochs, per_epoch, accumulate, batch_size)
    old_module = (point.module if point.module is not None else module) if isinstance(point.old, Mapping) else None
    old_model, old_setup = configure(point.old, old_module, old_trainer)
    check_decay_start(old_setup.schedulers, old_trainer)  # the old run is previewed from its start: it resumes nothing
    record(old_setup)
    loop = loop_of(old_model, old_setup, old_trainer)
    state = cadence.LoopState.fresh(loop.optimizers)
    recording = Recording(old_model, old_setup, old_trainer, result)
    trained = 0
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", STEP_BEFORE_OPTIMIZER)
        while old_trainer.global_step < point.step:
            epoch, batch_idx = divmod(trained, per_epoch)
            if epoch >= old_epochs:
                raise RecipeError(f"The run being resumed ends at step {old_trainer.global_step}, before the"
                                  f" checkpoint's step {point.step}: check `ResumeFrom`'s step and max_epochs.")
            old_trainer.current_epoch = recording.epoch = epoch
            cadence.run_batch(loop, state, batch_idx, batch_idx == per_epoch - 1, recording)
            if batch_idx == per_epoch - 1:
                cadence.run_epoch_end(loop, epoch, recording)
            trained += 1
    if old_trainer.global_step != point.step:
        raise RecipeError(f"No batch of the run being resumed ends at step {point.step} (one ends at"
                          f" {old_trainer.global_step}): give the global_step a checkpoint was saved at.")
    epoch = (trained - 1) // per_epoch if trained else 0  # `current_epoch` when the checkpoint was saved
    checkpoint: dict[str, Any] = {
        "optimizer_states": [getattr(o, "_optimizer", o).state_dict() for o in old_setup.optimizers],
        "lr_schedulers": [s.scheduler.state_dict() for s in old_setup.schedulers],
        "global_step": point.step, "epoch": epoch,
        "loops": {"fit_loop": {"epoch_loop.batch_progress": {"total": {"processed": trained}}}},
    }
    extend = point.extend_schedule
    return _preview_on(new, checkpoint, choice, result, loop, state, trained, module=module, batch_size=batch_size,
                       extend=extend, source=f"the checkpoint at step {point.step}")


def _preview_from_disk(new: Any, path: Any, choice: Optional[str], *, max_epochs: int, steps_per_epoch: int,
                       accumulate_grad_batches: int, module: Any, batch_size: Optional[int]) -> Any:
    """`new` previewed from the checkpoint saved at `path` on: the run before it is not previewed (its records start
    at the checkpoint's ``global_step``)."""
    checkpoint = load_saved(path)
    restored = read_checkpoint(checkpoint)
    if restored.batches is None:
        raise RecipeError(f"The checkpoint at {str(path)!r} does not say how many batches were trained (its"
                          " 'loops' entry): it cannot be resumed from where it stands.")
    result = SchedulePreview()
    result.max_epochs, result.steps_per_epoch = max_epochs, steps_per_epoch
    result.accumulate_grad_batches, result.markers = accumulate_grad_batches, []
    saved = (checkpoint.get("callbacks") or {}).get(_ALTERNATION_KEY) or {}
    optimizers = len(checkpoint.get("optimizer_states") or ()) or 1
    state = cadence.LoopState(int(saved.get("position", restored.batches)),
                              list(saved.get("windows", [0] * optimizers)),
                              list(saved.get("counts", [restored.global_step] * optimizers)))
    return _preview_on(new, checkpoint, choice, result, None, state, restored.batches, module=module,
                       batch_size=batch_size, extend=None, source=f"the checkpoint {os.path.basename(str(path))!r}")


def _preview_on(new: Any, checkpoint: dict[str, Any], choice: Optional[str], result: Any, loop: Any, state: Any,
                trained: int, *, module: Any, batch_size: Optional[int], extend: Optional[str], source: str) -> Any:
    """`new` configured, reconciled with `checkpoint` (Lightning's dict, not restored yet; `trained` batches into the
    run) and previewed from there to the end of the run, into `result`; `loop` and `state` the old run's loop model
    and where it stands (`state` kept when `new` alternates as the old run did)."""
    max_epochs, per_epoch, accumulate = result.max_epochs, result.steps_per_epoch, result.accumulate_grad_batches
    step = int(checkpoint.get("global_step", 0) or 0)
    new_trainer = StandInTrainer(max_epochs, per_epoch, accumulate, batch_size)  # loops are restored after configuring
    new_model, new_setup = configure(new, module if isinstance(new, Mapping) else None, new_trainer)
    own = getattr(new_model, "resume", None) if not isinstance(new, Mapping) else None
    chosen = check_choice(choice) if choice is not None else choose(new_model, own if isinstance(own, str) else None,
                                                                      None)
    new_loop = loop_of(new_model, new_setup, new_trainer)
    extend = extend if extend is not None else getattr(new_model, "extend_schedule", None)
    report = reconcile(new_setup, checkpoint, chosen, loop=new_loop, batches_per_epoch=per_epoch,
                       at=caller_line(), source=source,
                       extend=check_extend(extend), run_steps=new_trainer.estimated_stepping_batches)
    check_decay_start(new_setup.schedulers, new_trainer, at=caller_line())
    result.lengths = units.table(new_setup.schedulers)
    with warnings.catch_warnings():  # restore as Lightning does
        warnings.filterwarnings("ignore", STEP_BEFORE_OPTIMIZER)
        for optimizer, saved in zip(new_setup.optimizers, checkpoint["optimizer_states"]):
            # the lrs come from the groups; the moments (kept by "recipe" when they fit) move no lr
            getattr(optimizer, "_optimizer", optimizer).load_state_dict({**saved, "state": {}})
        for spec, saved in zip(new_setup.schedulers, checkpoint["lr_schedulers"]):
            spec.scheduler.load_state_dict(saved)
        if (loop.optimizers if loop is not None else len(state.steps)) != new_loop.optimizers:
            state = cadence.LoopState.fresh(new_loop.optimizers)  # the alternating mixin starts its cycle afresh
        result.markers.append({"step": step, "optimizer": 0, "label": f"resume ({chosen})"})
        new_trainer.global_step = step
        recording = Recording(new_model, new_setup, new_trainer, result)
        for t in range(trained, per_epoch * max_epochs):
            epoch, batch_idx = divmod(t, per_epoch)
            new_trainer.current_epoch = recording.epoch = epoch
            cadence.run_batch(new_loop, state, batch_idx, batch_idx == per_epoch - 1, recording)
            if batch_idx == per_epoch - 1:
                cadence.run_epoch_end(new_loop, epoch, recording)
    new_trainer.current_epoch = max_epochs
    result.resume_report = report
    return result

