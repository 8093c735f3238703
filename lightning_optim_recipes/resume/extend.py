"""Extending a finished run: a checkpoint whose schedule has ended (a cosine at its floor), resumed into a longer run.

Run on past its end, the old schedule does something nobody chose: torch's ``CosineAnnealingLR`` climbs back up (its
cosine is periodic), ``OneCycleLR`` raises after its last step, a ``LambdaLR`` holds its floor or, with a new length,
jumps. So the resume names the choice (`extended`):

* ``resume="recipe"`` **stretches** the new recipe's schedule over the longer run, placed where training stands:
  the lr goes from the floor to what the new schedule gives at that step, and decays again to the new end. The
  resume's table says so in a note (``extend_schedule="stretch"`` says it is meant, and drops the note).
* ``extend_schedule="hold"`` **holds** the lr where the finished schedule left it for the added steps (any
  ``LambdaLR``, as every schedule of this library is), under either ``resume`` choice.
* Under ``resume="checkpoint"`` without ``extend_schedule="hold"``, it is a `RecipeError` before training that names
  both, and the third way: resume a checkpoint from before the decay (a warmup-stable-decay run's stable phase) with a
  cooldown (`lightning_optim_recipes.wsd.cooldown`).

``extend_schedule`` is a module attribute (the mixins declare it; any module may set it), or
``ResumeFrom(..., extend_schedule=...)`` in a preview.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from torch.optim.lr_scheduler import LambdaLR

from lightning_optim_recipes.errors import RecipeError, warn
from lightning_optim_recipes.resume.checkpoint import Restored, short, steps_taken
from lightning_optim_recipes.schedules import constant
from lightning_optim_recipes.validation import OptimizerSetup

__all__ = ["EXTEND_CHOICES", "Finished", "check_extend", "extended", "finished_schedules", "schedule_end"]

#: The values of ``extend_schedule``.
EXTEND_CHOICES = ("stretch", "hold")


@dataclasses.dataclass(frozen=True)
class Finished:
    """A scheduler whose schedule had ended in the checkpoint, in a run that trains on."""

    index: int
    cls: str
    end: int
    end_what: str
    taken: int
    optimizer: int
    old_lrs: tuple[float, ...]

    @property
    def label(self) -> str:
        return f"scheduler {self.index} ({self.cls})"

    @property
    def sentence(self) -> str:
        """`label` at the start of a sentence."""
        return f"Scheduler {self.index} ({self.cls})"


def check_extend(value: Any, where: str = "`extend_schedule`") -> Optional[str]:
    """Raise `RecipeError` unless `value` is None or one of `EXTEND_CHOICES`; return it."""
    if value is not None and value not in EXTEND_CHOICES:
        raise RecipeError(
            f"{where} must be 'stretch' or 'hold' (or None), got {value!r}. 'stretch': the new schedule over the"
            " longer run, placed where training stands (with resume='recipe'); 'hold': the lr where the finished"
            " schedule left it, for the added steps."
        )
    return None if value is None else str(value)


def schedule_end(state: Mapping[str, Any]) -> Optional[tuple[int, str]]:
    """Where the schedule of a saved scheduler ends, in its own steps, and how it says so; None when it runs on.

    A `warmup_stable_decay` that decays before its run's end (``decay_start="25%"``) and holds its floor by design
    ends with its run (``total_steps``), not with its decay: resuming it within that length continues it.

    Example:
        >>> schedule_end({"T_max": 14, "eta_min": 0.0, "last_epoch": 14})
        (14, 'T_max=14')
        >>> schedule_end({"decay_start": 6, "decay_length": 2, "total_steps": 24})[0]
        24
    """
    start, length = state.get("decay_start"), state.get("decay_length")
    if isinstance(start, int) and isinstance(length, int) and _int(start) and _int(length):  # warmup_stable_decay
        total = state.get("total_steps")
        if isinstance(total, int) and _int(total) and total > start + length:  # a floor held to its run's end
            return total, (f"its decay ends after step {start + length - 1} and it holds its floor to the end of its"
                           f" run, step {total - 1}")
        return start + length, f"its decay ends after step {start + length - 1}"
    for key in ("total_steps", "T_max"):  # warmup_cosine and the like, OneCycleLR; CosineAnnealingLR
        if _int(state.get(key)):
            return int(state[key]), f"{key}={state[key]}"
    iters = state.get("total_iters")
    decays = "power" in state or (isinstance(state.get("end_factor"), (int, float))
                                  and state["end_factor"] < state.get("start_factor", 1.0))
    if isinstance(iters, int) and _int(iters) and decays:  # PolynomialLR, a decaying LinearLR
        return iters, f"total_iters={iters}"
    return None


def finished_schedules(setup: OptimizerSetup, restored: Restored, run_steps: Optional[int]) -> list[Finished]:
    """The schedulers of `setup` whose checkpoint schedule had ended, when the run trains past the checkpoint."""
    if run_steps is not None and run_steps <= restored.global_step:
        return []
    found = []
    for k, spec in enumerate(setup.schedulers):
        if spec.reduce_on_plateau or k >= len(restored.schedulers):
            continue
        state = restored.schedulers[k]
        end, taken = schedule_end(state), steps_taken(state)
        if end is None or taken is None or taken < end[0]:
            continue
        saved = restored.cadence_of(k)
        groups = (restored.optimizers[spec.optimizer_index].get("param_groups") or []
                  if spec.optimizer_index < len(restored.optimizers) else [])
        found.append(Finished(k, short(saved.cls) if saved else type(spec.scheduler).__name__, end[0], end[1], taken,
                              spec.optimizer_index, tuple(float(g["lr"]) for g in groups)))
    return found


def extended(setup: OptimizerSetup, restored: Restored, choice: str, extend: Optional[str],
             recipe_lrs: Optional[Sequence[Sequence[float]]], run_steps: Optional[int], source: str, at: Any = None,
             warned: Optional[dict[int, bool]] = None) -> list[str]:
    """Apply the choice for every finished schedule of `setup` (after the schedulers were placed, before the
    checkpoint dict is edited); return the notes for the resume's table. Raises the `RecipeError` that names the
    choice when none applies. A hold at lr 0 (a schedule that ended at 0) trains nothing: a `RecipeWarning` (at
    `at`) says so before training, and `warned` (the fit checks' record, ``fit_checks.WARNED_KEY``) gets its
    optimizer, so that the watch during training does not say it again."""
    ended = finished_schedules(setup, restored, run_steps)
    if not ended:
        return []
    if extend == "hold":
        notes = [_hold(setup, restored, choice, item) for item in ended]
        for item in ended:
            if item.old_lrs and not any(item.old_lrs):
                added = f"the {run_steps - restored.global_step} steps this run adds (steps {restored.global_step}" \
                    f" to {run_steps - 1})" if run_steps is not None else "every step this run adds"
                warn(f"{item.sentence}'s schedule had ended at lr 0 in the checkpoint ({item.end_what}): with"
                     f" extend_schedule='hold', {added} train at lr 0 and change no weight. To train on, stretch the"
                     " new schedule over the longer run (`resume = \"recipe\"` without extend_schedule='hold'), or"
                     " resume a checkpoint from before the decay with a cooldown (`cooldown(optimizer, steps=...)`). If"
                     " that is deliberate, silence this with `warnings.filterwarnings('ignore', '.*with"
                     " extend_schedule=.hold., ')`.", at=at)
                if warned is not None:
                    warned[item.optimizer] = True
        return notes
    if choice == "checkpoint":
        raise RecipeError(_choose_message(ended, recipe_lrs, run_steps, source))
    if extend == "stretch":
        return []
    return [f"{item.sentence}'s schedule had ended in the checkpoint ({item.end_what}; lr {_lrs(item.old_lrs)})"
            f": the new schedule, placed at step {item.taken}, takes it to {_lrs(_new(recipe_lrs, item))} and runs to"
            " the new end (stretched over the longer run). To keep the lr where it ended instead, set"
            " `extend_schedule = \"hold\"` on the module; `extend_schedule = \"stretch\"` drops this note."
            for item in ended]


def _hold(setup: OptimizerSetup, restored: Restored, choice: str, item: Finished) -> str:
    """The scheduler gives the checkpoint's lrs at every later step: a ``LambdaLR`` whose functions are constants."""
    spec = setup.schedulers[item.index]
    scheduler = spec.scheduler
    if not isinstance(scheduler, LambdaLR):
        raise RecipeError(
            f"extend_schedule='hold' keeps the lr where the finished schedule left it, which a {type(scheduler).__name__}"
            f" cannot do past its end ({item.end_what}): use one of this library's schedules (`warmup_cosine`,"
            " `warmup_stable_decay`: a LambdaLR), or resume='recipe' to stretch the new schedule over the longer run."
        )
    saved = restored.schedulers[item.index].get("base_lrs")
    bases = list(saved) if choice == "checkpoint" and isinstance(saved, list) else list(scheduler.base_lrs)
    old = list(item.old_lrs) or [g["lr"] for g in setup.optimizers[spec.optimizer_index].param_groups]
    scheduler.lr_lambdas = [constant(float(lr) / float(base) if base else 0.0) for lr, base in zip(old, bases)]
    if choice == "recipe":  # the lr from the resume step on, as the edited checkpoint will restore it
        for group, lr in zip(setup.optimizers[spec.optimizer_index].param_groups, old):
            group["lr"] = lr
        scheduler._last_lr = list(old)  # type: ignore[attr-defined]
    return (f"{item.sentence}'s schedule had ended in the checkpoint ({item.end_what}): extend_schedule='hold'"
            f" keeps its lr at {_lrs(old)} for the rest of the run.")


def _choose_message(ended: Sequence[Finished], recipe_lrs: Optional[Sequence[Sequence[float]]],
                    run_steps: Optional[int], source: str) -> str:
    item = ended[0]
    until = f" to step {run_steps}" if run_steps is not None else ""
    past = {"CosineAnnealingLR": "its cosine climbs back up to the peak (torch's cosine is periodic)",
            "OneCycleLR": "torch raises a ValueError at its next step"}.get(
        item.cls, "it runs past its end (the recipe's function on the checkpoint's counter, for a LambdaLR)")
    new = _lrs(_new(recipe_lrs, item))
    at_zero = bool(item.old_lrs) and not any(item.old_lrs)  # a hold there would train nothing: not offered
    hold = "" if at_zero else (f"- hold the lr at {_lrs(item.old_lrs)}, where the schedule ended: set"
                               " `extend_schedule = \"hold\"` on the module;\n")
    return (
        f"Resuming from {source} with resume='checkpoint': {item.label}'s schedule had ended there ({item.end_what},"
        f" and it had stepped {item.taken} times; lr {_lrs(item.old_lrs)}), and this run trains on{until}. As Lightning"
        f" resumes, {past}. Choose what the lr does over the added steps"
        + (" (holding it where the schedule ended would train them all at lr 0)" if at_zero else "") + ":\n"
        f"- stretch the new recipe's schedule over the longer run, placed where training stands (the lr goes to {new}"
        " there and decays again to the new end): set `resume = \"recipe\"` on the module (or"
        " `resume=\"recipe\"` on ConfigureOptimizersCheck/SchedulerCadenceCheck);\n"
        f"{hold}"
        "- or train on at a high lr and cool down again: resume a checkpoint from before the decay (a"
        " warmup_stable_decay run's stable phase) with a cooldown (`cooldown(optimizer, steps=...)`, or"
        " {'type': 'wsd', 'decay_start': 'now', ...} in a recipe)."
    )


def _new(recipe_lrs: Optional[Sequence[Sequence[float]]], item: Finished) -> tuple[float, ...]:
    return tuple(recipe_lrs[item.optimizer]) if recipe_lrs is not None and item.optimizer < len(recipe_lrs) else ()


def _lrs(lrs: Sequence[float]) -> str:
    if not lrs:
        return "?"
    return f"{lrs[0]:.6g}" if len(set(lrs)) == 1 else "(" + ", ".join(f"{lr:.6g}" for lr in lrs) + ")"


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
