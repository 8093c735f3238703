"""Placing schedulers where training stands: `place_scheduler`, and the position of every scheduler of a resumed
recipe (its checkpoint count, or what the loop model says it would have stepped)."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any, Optional

from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from lightning_optim_recipes import cadence
from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.resume.checkpoint import Restored, steps_taken
from lightning_optim_recipes.validation import OptimizerSetup
from lightning_optim_recipes.wsd import start_decay

__all__ = ["STEP_BEFORE_OPTIMIZER", "place_all", "place_scheduler", "positions_of"]


STEP_BEFORE_OPTIMIZER = r"Detected call of `lr_scheduler\.step\(\)` before `optimizer\.step\(\)`"


def place_scheduler(scheduler: Any, step: int) -> None:
    """Put a scheduler that has not stepped yet at `step`: its lr (and every later one) is then what it gives at that
    step, as if it had stepped `step` times since the start of training.

    A ``LambdaLR`` jumps there (its lr is a function of its counter); any other scheduler is stepped `step` times
    without optimizer steps (about 3 µs a step), which is exactly what training computes with it. The optimizer's
    ``lr`` (and, for ``OneCycleLR``, its momentum) follow, as they do in training. ``ReduceLROnPlateau`` follows a
    metric, not steps: it cannot be placed. A cooldown that starts where training resumes
    (``warmup_stable_decay(decay_start="now")``, `cooldown`) starts its decay at `step`.

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        >>> scheduler = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4], gamma=0.5)
        >>> place_scheduler(scheduler, 3)
        >>> scheduler.last_epoch, opt.param_groups[0]["lr"]
        (3, 0.5)
    """
    if isinstance(scheduler, ReduceLROnPlateau):
        raise RecipeError("A ReduceLROnPlateau follows a metric, not steps: it cannot be placed at a step.")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise RecipeError(f"`step` must be a non-negative int, got {step!r}.")
    taken = steps_taken(getattr(scheduler, "__dict__", {}))
    if taken not in (None, 0):
        raise RecipeError(
            f"place_scheduler needs a {type(scheduler).__name__} that has not stepped yet, this one is at step"
            f" {taken}: build a new one."
        )
    start_decay(scheduler, step)  # a cooldown from where training resumes (decay_start="now") starts at `step`
    if step == 0:
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", STEP_BEFORE_OPTIMIZER)
        try:
            if isinstance(scheduler, LambdaLR) and type(scheduler).get_lr is LambdaLR.get_lr:
                scheduler.last_epoch = step - 1
                scheduler.step()  # base_lr * lambda(step), as the step-th step computes it
                scheduler._step_count = step + 1
            else:
                for _ in range(step):
                    scheduler.step()
        except (ValueError, ZeroDivisionError) as err:
            raise RecipeError(
                f"The {type(scheduler).__name__} cannot be placed at step {step}, where training stands: {err} Make"
                " the new schedule at least as long as the steps already trained."
            ) from err


def _replay(loop: cadence.Loop, batches: int, per_epoch: int, effects: cadence.Counter) -> None:
    """Run the cadence model over the first `batches` batches of a run (epoch schedulers on each epoch's last batch,
    where Lightning 2.x and the alternating mixin step them; plateau schedulers are not replayed)."""
    state = cadence.LoopState.fresh(loop.optimizers)
    for t in range(batches):
        epoch, batch_idx = divmod(t, per_epoch)
        last = batch_idx == per_epoch - 1
        cadence.run_batch(loop, state, batch_idx, last, effects)
        if last:
            cadence.run_epoch_end(loop, epoch, effects, plateau=False)


def positions_of(setup: OptimizerSetup, restored: Restored, loop: Optional[cadence.Loop],
               per_epoch: Optional[int]) -> tuple[list[int], Optional[list[int]], list[str]]:
    """Per scheduler of the recipe, the step count it resumes at; the cadence model's counts (None: unknown or not
    needed: every scheduler keeps its checkpoint count and none shares its optimizer); notes."""
    kept: list[Optional[int]] = []
    for k, spec in enumerate(setup.schedulers):
        taken = steps_taken(restored.schedulers[k]) if k < len(restored.schedulers) else None
        saved = restored.cadence_of(k)
        same = saved is None or (saved.interval, saved.frequency, saved.optimizer) == (
            spec.interval, spec.frequency, spec.optimizer_index)
        kept.append(taken if taken is not None and (same or spec.reduce_on_plateau) else None)
    shared = Counter(s.optimizer_index for s in setup.schedulers if not s.reduce_on_plateau)
    counts: Optional[list[int]] = None
    if (None in kept or any(n > 1 for n in shared.values())) and loop is not None and per_epoch and \
            restored.batches is not None and len(loop.schedulers) == len(setup.schedulers):
        effects = cadence.Counter(loop.optimizers, len(setup.schedulers))  # about 1.5 µs a batch
        _replay(loop, restored.batches, per_epoch, effects)
        if sum(effects.optimizer_steps) == restored.global_step:  # the model agrees with what training did
            counts = effects.scheduler_steps
    positions: list[int] = []
    notes: list[str] = []
    for k, position in enumerate(kept):
        taken = steps_taken(restored.schedulers[k]) if k < len(restored.schedulers) else None
        if position is not None:
            positions.append(position)
        elif counts is not None:
            positions.append(counts[k])
        else:
            positions.append(taken or 0)
            notes.append(
                f"Scheduler {k}'s position cannot be derived from the training loop (manual optimization, or a"
                f" loop the cadence model does not know): it resumes at {taken or 0}"
                + (", its count in the checkpoint." if taken is not None else ".")
            )
    return positions, counts, notes


def place_all(setup: OptimizerSetup, positions: Sequence[int], counts: Optional[Sequence[int]],
               loop: Optional[cadence.Loop], per_epoch: Optional[int], batches: Optional[int],
               saved: Sequence[Any] = ()) -> None:
    """Place every scheduler of `setup` (plateau ones excepted) at its position: in the order training steps them
    when several share an optimizer and the cadence model knows that order, else one after the other. `saved`: the
    checkpoint's scheduler states, where a cooldown already under way says where it started."""
    stepped = [None if s.reduce_on_plateau else s.scheduler for s in setup.schedulers]
    for k, scheduler in enumerate(stepped):  # a cooldown from where training resumes starts at its position
        if scheduler is not None:
            start_decay(scheduler, positions[k], saved[k] if k < len(saved) else None)
    per_optimizer = Counter(s.optimizer_index for s in setup.schedulers if not s.reduce_on_plateau)
    interleave = (any(n > 1 for n in per_optimizer.values()) and counts is not None and loop is not None
                  and per_epoch is not None and batches is not None
                  and all(positions[k] == counts[k] for k, s in enumerate(stepped) if s is not None))
    if interleave:
        assert loop is not None and per_epoch is not None and batches is not None
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", STEP_BEFORE_OPTIMIZER)
            _replay(loop, batches, per_epoch, cadence.Counter(loop.optimizers, len(stepped), stepped))
        return
    for k, scheduler in enumerate(stepped):
        if scheduler is not None:
            place_scheduler(scheduler, positions[k])

