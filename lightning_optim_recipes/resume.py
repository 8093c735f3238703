"""Resume with a changed recipe: say what the checkpoint overrides, and let the new schedule continue where training
stands.

A user trains, stops, edits the learning rate or the schedule (most often to train longer) and resumes with
``Trainer.fit(..., ckpt_path=...)``. Lightning then restores each optimizer's ``state_dict`` (its param groups' ``lr``,
``initial_lr``, ``weight_decay``, ``betas`` ... included) and each scheduler's ``state_dict`` (``milestones``,
``T_max``, ``total_steps``, ``base_lrs`` ...) over what ``configure_optimizers`` has just built: most edits are
silently ignored, and a ``LambdaLR``'s edit is silently applied (its function is not saved, so the new function runs
on the old counter, with the old base lrs). This module compares what was built with what the checkpoint restores,
warns with a table of every difference, and with ``resume="recipe"`` makes the new recipe apply from where training
stands.

**When it runs.** Lightning's order in ``fit`` (default strategies, both namespaces) is: load the checkpoint file;
the module's and the callbacks' ``on_load_checkpoint``/``load_state_dict`` (the alternating mixin's state comes back
here); ``strategy.setup``, which calls ``configure_optimizers``; ``on_fit_start``; ``restore_training_state`` (loops,
then ``optimizer.load_state_dict`` and ``scheduler.load_state_dict`` from the checkpoint dict); ``on_train_start``.
So when ``configure_optimizers`` returns, both sides are known: the new optimizers and the loaded checkpoint dict
(``trainer._checkpoint_connector._loaded_checkpoint``, the dict the ``on_load_checkpoint`` hooks receive), and
nothing has been restored yet. The library's entry points all pass there: `OptimRecipeMixin` and
`AlternatingOptimizersMixin` (``finish_optimizer_setup``), and `ConfigureOptimizersCheck`/`SchedulerCadenceCheck`
(their wrapped ``configure_optimizers``). They call `on_configured`, which compares and, for ``"recipe"``, *edits the
checkpoint dict* before Lightning reads it: Lightning itself then restores exactly the moments and counters to keep
and the new recipe's hyper-parameters. Nothing is re-applied afterwards and no Lightning code is patched. Strategies
that restore checkpoints after their own setup (FSDP, DeepSpeed, ModelParallel) do not expose the dict at that point
and manage optimizer state themselves: there the check is off.

**What is compared** (one table row per difference; columns ``what | checkpoint | new recipe | training uses``):
the number of optimizers; per optimizer its class, its param-group layout (groups, parameters per group, their
shapes) and per group ``lr`` (the lr at the resume step: the checkpoint's, and the new schedule's at that step),
``initial_lr``, ``weight_decay``, ``betas``/``momentum``, ``eps`` and every other option (implementation switches
such as ``foreach`` are left out); per scheduler its class, its hyper-parameters (``milestones``, ``gamma``,
``T_max``, ``eta_min``, ``total_steps``, ``warmup_steps``, ... : its ``state_dict`` less the counters), its cadence
(``interval``, ``frequency``, optimizer) and the step it resumes at. A checkpoint does not say an optimizer's or a
scheduler's class, nor a scheduler's cadence: the entry points record them in every optimizer's ``state_dict`` (a
``"lightning_optim_recipes"`` entry that ``torch`` ignores when loading), so checkpoints written by a run that used
the library have them; for older ones those rows are left out. No difference: no warning.

**The two choices** (``resume`` on the mixins, a class attribute like their other options; ``resume=`` on the
checking callbacks for modules without a mixin):

* ``"checkpoint"`` (default): Lightning's behaviour, unchanged. The table says what training uses. A change that
  Lightning cannot load (another param-group layout: torch refuses it, or parameters of other shapes) is a
  `RecipeError` before training, naming ``resume="recipe"`` as the fix.
* ``"recipe"``: keep the weights, the loops (``global_step``, epoch, the alternation state) and each optimizer's
  state (its moments and step count), but train with the new recipe's hyper-parameters, every new scheduler placed
  at the position training has reached. A different param layout or optimizer class drops that optimizer's state
  (a `RecipeWarning` says so). A ``ReduceLROnPlateau`` follows metrics, not steps: it keeps its counters and its
  groups' lr from the checkpoint and takes its options from the recipe.

**Placing a scheduler** (`place_scheduler`): the new scheduler is stepped from its start to the position, without
optimizer steps; the lr at every later step is then the new schedule's at that step, as if it had been the schedule
from the start (for the recursive torch forms, bit for bit what training would have computed). A ``LambdaLR``
(`warmup_cosine`, `lightning_optim_recipes.schedules`) jumps there: its lr is a function of its counter. Stepping is
general (every ``torch.optim.lr_scheduler`` class that steps without a metric) and costs about 3 µs a step. The
*position* of scheduler ``k`` is the step count of the checkpoint's scheduler ``k`` (its ``last_epoch``: under the
alternating mixin it counts its own optimizer's turns) when its cadence is unchanged. When the cadence changed
(``'step'`` <-> ``'epoch'``, another frequency or optimizer), or the recipe has a scheduler the checkpoint lacks, the
position is what the cadence model (`lightning_optim_recipes.cadence`) says that scheduler would have stepped over
the batches trained so far: its steps in its own unit, the new schedule as if from the start. Several schedulers on
one optimizer are stepped in the order training steps them, by the same replay. `SchedulerCadenceCheck` takes the
new positions as the run's counts so far.

**Previews** (`preview_schedule(..., resume_from=ResumeFrom(old, step=..., max_epochs=...))`): the old module or
recipe is previewed up to ``step``, its state is turned into a checkpoint dict as Lightning would save it, the new
one is configured, passed through the same `reconcile`, restored as Lightning restores, and previewed on from there.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import functools
import math
import os
import warnings
import weakref
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Optional

import torch
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from lightning_optim_recipes import cadence, fit_checks
from lightning_optim_recipes.errors import RecipeError, RecipeWarning, warn
from lightning_optim_recipes.validation import OptimizerSetup, SchedulerSpec

__all__ = [
    "CHOICES",
    "ResumeDifference",
    "ResumeFrom",
    "ResumeReport",
    "check_choice",
    "on_configured",
    "place_scheduler",
    "reconcile",
]

#: The values of ``resume``: Lightning's behaviour, or the new recipe from where training stands.
CHOICES = ("checkpoint", "recipe")
#: The key the library adds to every optimizer's ``state_dict``: its class and its schedulers' cadence.
RECORD_KEY = "lightning_optim_recipes"

_DONE = "_lightning_optim_recipes_resume_done"  # marks a loaded checkpoint dict once it has been reconciled
_REQUEST = "_resume_requested"  # a callback's `resume=`, kept on the module until its optimizers are built
_MISSING = object()
#: Optimizer options that say how torch computes a step, not what it computes.
_IMPLEMENTATION = frozenset({"params", "foreach", "fused", "capturable", "differentiable"})
#: Scheduler state that is a position or derived from one, not a hyper-parameter.
_SCHEDULER_COUNTERS = frozenset({
    "last_epoch", "base_lrs", "verbose", "lr_lambdas", "optimizer", "T_cur", "T_i", "best", "num_bad_epochs",
    "cooldown_counter", "mode_worse",
})
#: ReduceLROnPlateau's counters, kept from the checkpoint under resume="recipe".
_PLATEAU_COUNTERS = ("best", "num_bad_epochs", "cooldown_counter", "last_epoch", "_last_lr")
_STEP_BEFORE_OPTIMIZER = r"Detected call of `lr_scheduler\.step\(\)` before `optimizer\.step\(\)`"

_RECORD_HOOKS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_MOVED: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


# --------------------------------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True)
class ResumeDifference:
    """One row of the table: a setting whose checkpoint value differs from the new recipe's, and the value training
    uses."""

    what: str
    checkpoint: str
    recipe: str
    used: str


@dataclasses.dataclass(frozen=True)
class ResumeReport:
    """What a resume compared and did (`on_configured` and `reconcile` return it; the mixins keep it as
    ``resume_report``).

    Attributes:
        choice: ``"checkpoint"`` or ``"recipe"``.
        source: the checkpoint, as named in messages.
        global_step, epoch: where training stands.
        differences: one `ResumeDifference` per setting that differs.
        positions: per scheduler of the recipe, the step count it resumes at.
        dropped_state: under ``"recipe"``, the optimizers whose state (moments) was dropped.
        notes: explanations printed under the table.
    """

    choice: str
    source: str
    global_step: int
    epoch: int
    differences: tuple[ResumeDifference, ...]
    positions: tuple[int, ...]
    dropped_state: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()

    def rows(self) -> list[tuple[str, str, str, str]]:
        """The differences as ``(what, checkpoint, new recipe, training uses)`` tuples."""
        return [(d.what, d.checkpoint, d.recipe, d.used) for d in self.differences]

    def table(self) -> str:
        """The differences as an aligned table with a header line (columns separated by ``" | "``)."""
        rows = [("what", "checkpoint", "new recipe", "training uses"), *self.rows()]
        widths = [max(len(row[c]) for row in rows) for c in range(4)]
        return "\n".join(" | ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


class ResumeFrom(NamedTuple):
    """For `preview_schedule`: the run being resumed, previewed up to the checkpoint saved at `step`.

    Attributes:
        old: the module or recipe dict of the interrupted run.
        step: its ``global_step`` when the checkpoint was saved (optimizer steps; an epoch-end checkpoint of an
            epoch of ``n`` steps is at ``n * epochs``).
        max_epochs: the interrupted run's ``max_epochs`` (default: the new run's), for schedules that read the run's
            length (`warmup_cosine`, ``T_max=self.trainer.max_epochs``).
        module: the model an old recipe dict was built for (default: the preview's ``module``).

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


# ----------------------------------------------------------------------------------------------- the choice


def check_choice(value: Any, where: str = "`resume`") -> str:
    """Raise `RecipeError` unless `value` is one of `CHOICES`; return it.

    Example:
        >>> check_choice("recipe")
        'recipe'
        >>> check_choice("new")
        Traceback (most recent call last):
        ...
        lightning_optim_recipes.errors.RecipeError: `resume` must be 'checkpoint' or 'recipe', got 'new'. ...
    """
    if value not in CHOICES:
        raise RecipeError(
            f"{where} must be 'checkpoint' or 'recipe', got {value!r}. 'checkpoint' resumes as Lightning does (the"
            " checkpoint's optimizer and scheduler settings win); 'recipe' keeps the weights, training progress and"
            " moments and trains with the new recipe from where training stands."
        )
    return str(value)


def request(module: Any, choice: Optional[str], by: str) -> None:
    """A callback's ``resume=`` for `module` (None: the callback leaves it to the module), used when the module's
    optimizers are built in this fit."""
    if choice is None:
        return
    previous = module.__dict__.get(_REQUEST)
    if previous is not None and previous[0] != choice:
        raise RecipeError(
            f"{previous[1]}(resume={previous[0]!r}) and {by}(resume={choice!r}) disagree: set `resume` on one"
            " callback only."
        )
    module.__dict__[_REQUEST] = (choice, by)


def _set_on_module(module: Any) -> bool:
    """Whether the module (not just a mixin's default) sets ``resume``."""
    if "resume" in module.__dict__:
        return True
    return any("resume" in klass.__dict__ for klass in type(module).__mro__
               if not klass.__module__.startswith("lightning_optim_recipes"))


def _choose(module: Any, own: Optional[str], requested: Optional[tuple[str, str]]) -> str:
    if own is not None:
        check_choice(own, f"`{type(module).__name__}.resume`")
    if requested is None:
        return own or "checkpoint"
    choice, by = requested
    if own is not None and own != choice and _set_on_module(module):
        raise RecipeError(
            f"{type(module).__name__}.resume = {own!r} and {by}(resume={choice!r}) disagree: set it in one place."
        )
    return choice


# --------------------------------------------------------------------------------------------- the entry


def on_configured(module: Any, setup: OptimizerSetup, trainer: Any, *, own: Optional[str] = None,
                  loop: Optional[cadence.Loop] = None, at: Any = None) -> Optional[ResumeReport]:
    """Called by the library's entry points right after ``configure_optimizers`` has been validated.

    Records the optimizers' classes and the schedulers' cadence in future checkpoints, and, when this fit resumes
    from a checkpoint that Lightning has loaded but not yet restored, runs `reconcile` with the choice of the module
    (`own`, its ``resume``) or of a checking callback. Returns its report, or None when not resuming.
    """
    choice = _choose(module, own, module.__dict__.pop(_REQUEST, None))
    record(setup)
    checkpoint = checkpoint_being_restored(trainer)
    if checkpoint is None or checkpoint.get(_DONE) or "optimizer_states" not in checkpoint:
        return None  # not resuming; already reconciled; or weights only (Lightning explains that one)
    checkpoint[_DONE] = True
    if loop is None and getattr(module, "automatic_optimization", True) and len(setup.optimizers) <= 1:
        accumulate = int(getattr(trainer, "accumulate_grad_batches", 1) or 1)
        loop = cadence.Loop("automatic", 1, _timings(setup), accumulate=(accumulate,))
    per_epoch = _batches_per_epoch(trainer) if setup.schedulers else None
    with warnings.catch_warnings():
        if not getattr(trainer, "is_global_zero", True):  # every rank reconciles its copy; rank 0 tells
            warnings.simplefilter("ignore", RecipeWarning)
        return reconcile(setup, checkpoint, choice, loop=loop, batches_per_epoch=per_epoch,
                         at=at if at is not None else fit_checks.user_line(module), source=_source(trainer))


def checkpoint_being_restored(trainer: Any) -> Optional[dict[str, Any]]:
    """The checkpoint dict a fit has loaded and not yet restored (the one the ``on_load_checkpoint`` hooks see), or
    None."""
    fn = getattr(getattr(trainer, "state", None), "fn", None)
    if str(getattr(fn, "value", fn)) != "fit":
        return None
    loaded = getattr(getattr(trainer, "_checkpoint_connector", None), "_loaded_checkpoint", None)
    return loaded if isinstance(loaded, dict) and loaded else None


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


# ---------------------------------------------------------------------------------------------- recording


def record(setup: OptimizerSetup) -> None:
    """Make every optimizer's ``state_dict()`` say its class and its schedulers' class and cadence (under
    `RECORD_KEY`; ``torch`` ignores the entry when it loads), so that a later resume can compare them."""
    for index, optimizer in enumerate(setup.optimizers):
        raw = getattr(optimizer, "_optimizer", optimizer)
        if not hasattr(raw, "register_state_dict_post_hook"):
            continue
        info = {"class": _qualname(type(raw)), "schedulers": [
            [k, _qualname(type(s.scheduler)), s.interval, s.frequency]
            for k, s in enumerate(setup.schedulers) if s.optimizer_index == index]}
        previous = _RECORD_HOOKS.pop(raw, None)
        if previous is not None:
            previous.remove()
        _RECORD_HOOKS[raw] = raw.register_state_dict_post_hook(functools.partial(_add_record, info=info))


def _add_record(optimizer: Any, state_dict: dict[str, Any], *, info: dict[str, Any]) -> None:
    state_dict[RECORD_KEY] = copy.deepcopy(info)


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _short(qualname: Optional[str]) -> str:
    return (qualname or "?").rpartition(".")[2]


@dataclasses.dataclass(frozen=True)
class _Cadence:
    cls: str
    interval: str
    frequency: int
    optimizer: int


@dataclasses.dataclass
class _Restored:
    """What the checkpoint will restore, read once."""

    optimizers: list[dict[str, Any]]
    schedulers: list[dict[str, Any]]
    global_step: int
    epoch: int
    batches: Optional[int]  # batches trained over the run

    def optimizer_class(self, index: int) -> Optional[str]:
        info = self.optimizers[index].get(RECORD_KEY) if index < len(self.optimizers) else None
        return info.get("class") if isinstance(info, Mapping) else None

    def cadence_of(self, k: int) -> Optional[_Cadence]:
        for index, state in enumerate(self.optimizers):
            info = state.get(RECORD_KEY)
            for entry in (info.get("schedulers") or []) if isinstance(info, Mapping) else []:
                if entry[0] == k:
                    return _Cadence(entry[1], entry[2], int(entry[3]), index)
        return None


def _read(checkpoint: Mapping[str, Any]) -> _Restored:
    try:
        batches: Optional[int] = int(checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["processed"])
    except (KeyError, TypeError, ValueError):
        batches = None
    return _Restored(list(checkpoint.get("optimizer_states") or []), list(checkpoint.get("lr_schedulers") or []),
                     int(checkpoint.get("global_step", 0) or 0), int(checkpoint.get("epoch", 0) or 0), batches)


def _steps_taken(state: Optional[Mapping[str, Any]]) -> Optional[int]:
    """How many times the scheduler whose ``state_dict`` this is had stepped."""
    if state is None:
        return None
    value = state.get("last_epoch")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    inner = state.get("_schedulers")  # ChainedScheduler
    if isinstance(inner, list) and inner and isinstance(inner[0], Mapping):
        return _steps_taken(inner[0])
    return None


# ------------------------------------------------------------------------------------------------ placing


def place_scheduler(scheduler: Any, step: int) -> None:
    """Put a scheduler that has not stepped yet at `step`: its lr (and every later one) is then what it gives at that
    step, as if it had stepped `step` times since the start of training.

    A ``LambdaLR`` jumps there (its lr is a function of its counter); any other scheduler is stepped `step` times
    without optimizer steps (about 3 µs a step), which is exactly what training computes with it. The optimizer's
    ``lr`` (and, for ``OneCycleLR``, its momentum) follow, as they do in training. ``ReduceLROnPlateau`` follows a
    metric, not steps: it cannot be placed.

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
    taken = _steps_taken(getattr(scheduler, "__dict__", {}))
    if taken not in (None, 0):
        raise RecipeError(
            f"place_scheduler needs a {type(scheduler).__name__} that has not stepped yet, this one is at step"
            f" {taken}: build a new one."
        )
    if step == 0:
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _STEP_BEFORE_OPTIMIZER)
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


def _positions(setup: OptimizerSetup, restored: _Restored, loop: Optional[cadence.Loop],
               per_epoch: Optional[int]) -> tuple[list[int], Optional[list[int]], list[str]]:
    """Per scheduler of the recipe, the step count it resumes at; the cadence model's counts (None: unknown or not
    needed: every scheduler keeps its checkpoint count and none shares its optimizer); notes."""
    kept: list[Optional[int]] = []
    for k, spec in enumerate(setup.schedulers):
        taken = _steps_taken(restored.schedulers[k]) if k < len(restored.schedulers) else None
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
        taken = _steps_taken(restored.schedulers[k]) if k < len(restored.schedulers) else None
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


def _place_all(setup: OptimizerSetup, positions: Sequence[int], counts: Optional[Sequence[int]],
               loop: Optional[cadence.Loop], per_epoch: Optional[int], batches: Optional[int]) -> None:
    """Place every scheduler of `setup` (plateau ones excepted) at its position: in the order training steps them
    when several share an optimizer and the cadence model knows that order, else one after the other."""
    stepped = [None if s.reduce_on_plateau else s.scheduler for s in setup.schedulers]
    per_optimizer = Counter(s.optimizer_index for s in setup.schedulers if not s.reduce_on_plateau)
    interleave = (any(n > 1 for n in per_optimizer.values()) and counts is not None and loop is not None
                  and per_epoch is not None and batches is not None
                  and all(positions[k] == counts[k] for k, s in enumerate(stepped) if s is not None))
    if interleave:
        assert loop is not None and per_epoch is not None and batches is not None
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", _STEP_BEFORE_OPTIMIZER)
            _replay(loop, batches, per_epoch, cadence.Counter(loop.optimizers, len(stepped), stepped))
        return
    for k, scheduler in enumerate(stepped):
        if scheduler is not None:
            place_scheduler(scheduler, positions[k])


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


def moved_by(scheduler: Any) -> int:
    """How many steps ``resume="recipe"`` moved `scheduler` away from its checkpoint count in this fit (0: none), for
    `SchedulerCadenceCheck`'s counts."""
    return _MOVED.get(scheduler, 0)


# ----------------------------------------------------------------------------------------------- reconcile


def reconcile(setup: OptimizerSetup, checkpoint: dict[str, Any], choice: str, *, loop: Optional[cadence.Loop] = None,
              batches_per_epoch: Optional[int] = None, at: Any = None,
              source: str = "the checkpoint") -> Optional[ResumeReport]:
    """Compare the freshly built `setup` with what `checkpoint` (a Lightning checkpoint dict, not restored yet) will
    restore; warn with the table of differences; for ``choice="recipe"``, place the schedulers and edit `checkpoint`
    so that restoring it keeps only the optimizers' state and the counters.

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

    Returns:
        The `ResumeReport` (also when nothing differs).

    Raises:
        RecipeError: under ``"checkpoint"``, for a change Lightning cannot restore (another param-group layout).

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
    restored = _read(checkpoint)
    positions, counts, notes = _positions(setup, restored, loop, batches_per_epoch)
    snapshot = _snapshot(setup) if choice == "checkpoint" else None
    try:
        _place_all(setup, positions, counts, loop, batches_per_epoch, restored.batches)
        recipe_lrs: Optional[list[list[float]]] = [[g["lr"] for g in o.param_groups] for o in setup.optimizers]
    except RecipeError as err:
        if snapshot is None:
            raise
        recipe_lrs = None
        notes.append(f"The new schedule's lr at the resume step is unknown: {err}")
    keep = [_state_fits(setup, restored, i) for i in range(min(len(setup.optimizers), len(restored.optimizers)))]
    if snapshot is not None:
        _restore(setup, snapshot)
    else:
        _keep_plateau(setup, restored, keep)
        _rewrite(setup, restored, checkpoint, keep)
        for k, spec in enumerate(setup.schedulers):
            taken = _steps_taken(restored.schedulers[k]) if k < len(restored.schedulers) else None
            if taken is not None and positions[k] != taken:
                _MOVED[spec.scheduler] = positions[k] - taken
    used = [[dict(g) for g in o.param_groups] for o in setup.optimizers] if choice == "recipe" else [
        _loaded_groups(o, restored.optimizers[i]) if i < len(restored.optimizers) else None
        for i, o in enumerate(setup.optimizers)]
    rows, fatal, more_notes = _compare(setup, restored, choice, recipe_lrs, used, positions, keep)
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
        warn(_dropped_message(source, index, keep[index][1], setup), at=at)
    if rows:
        warn(_table_message(report), at=at)
    return report


def _state_fits(setup: OptimizerSetup, restored: _Restored, index: int) -> tuple[bool, str]:
    """Whether optimizer `index`'s saved state can serve the new optimizer, and why not."""
    optimizer = getattr(setup.optimizers[index], "_optimizer", setup.optimizers[index])
    saved = restored.optimizers[index]
    old_class, new_class = restored.optimizer_class(index), _qualname(type(optimizer))
    if old_class is not None and old_class != new_class:
        return False, f"its class changed ({_short(old_class)} -> {_short(new_class)})"
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


def _keep_plateau(setup: OptimizerSetup, restored: _Restored, keep: Sequence[tuple[bool, str]]) -> None:
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


def _rewrite(setup: OptimizerSetup, restored: _Restored, checkpoint: dict[str, Any],
             keep: Sequence[tuple[bool, str]]) -> None:
    """Under "recipe": what Lightning will restore is the new optimizers' settings with the old state (when it fits)
    and the placed schedulers."""
    states = []
    for index, optimizer in enumerate(setup.optimizers):
        state = getattr(optimizer, "_optimizer", optimizer).state_dict()
        if index < len(keep) and keep[index][0]:
            state = {**state, "state": restored.optimizers[index].get("state", {})}
        states.append(state)
    checkpoint["optimizer_states"] = states
    checkpoint["lr_schedulers"] = [spec.scheduler.state_dict() for spec in setup.schedulers]


# --------------------------------------------------------------------------------------------- comparing


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(none)"
    if isinstance(value, Counter):
        return str(sorted(value.elements()))
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_show(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    return str(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, Counter) or isinstance(b, Counter):
        return Counter(a) == Counter(b)  # type: ignore[arg-type]
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - tensors and other values without a plain ==
        return a is b


def _group_label(group: Mapping[str, Any], index: int) -> str:
    name = group.get("name")
    return f"group {name!r}" if isinstance(name, str) else f"group {index}"


def _compare(setup: OptimizerSetup, restored: _Restored, choice: str, recipe_lrs: Optional[list[list[float]]],
             used_groups: Sequence[Optional[Sequence[Mapping[str, Any]]]], positions: Sequence[int],
             keep: Sequence[tuple[bool, str]]) -> tuple[list[ResumeDifference], list[str], list[str]]:
    rows: list[ResumeDifference] = []
    fatal: list[str] = []
    notes: list[str] = []
    recipe = choice == "recipe"

    def row(what: str, old: Any, new: Any, used: Any) -> None:
        rows.append(ResumeDifference(what, _show(old), _show(new), used if isinstance(used, str) else _show(used)))

    old_count, new_count = len(restored.optimizers), len(setup.optimizers)
    if old_count != new_count:
        row("optimizers", old_count, new_count, new_count if recipe else
            f"{new_count} ({min(old_count, new_count)} restored from the checkpoint)")
    for i in range(min(old_count, new_count)):
        optimizer = getattr(setup.optimizers[i], "_optimizer", setup.optimizers[i])
        saved = restored.optimizers[i]
        label = f"optimizer {i}"
        old_class, new_class = restored.optimizer_class(i), type(optimizer).__name__
        if old_class is not None and _short(old_class) != new_class:
            row(f"{label}: class", _short(old_class), new_class,
                f"{new_class} ({'state dropped' if not keep[i][0] else 'state kept'})" if recipe
                else f"{new_class} loaded with {_short(old_class)}'s param groups and state")
        old_groups, new_groups = saved.get("param_groups") or [], optimizer.param_groups
        if len(old_groups) != len(new_groups):
            row(f"{label}: param groups", len(old_groups), len(new_groups), len(new_groups) if recipe else "(error)")
            if not recipe:
                fatal.append(f"optimizer {i} has {len(new_groups)} param groups, the checkpoint's {len(old_groups)}")
            continue
        for g, (old, new) in enumerate(zip(old_groups, new_groups)):
            where = f"{label}, {_group_label(new, g)}"
            if len(old["params"]) != len(new["params"]):
                row(f"{where}: parameters", len(old["params"]), len(new["params"]),
                    len(new["params"]) if recipe else "(error)")
                if not recipe:
                    fatal.append(f"{where} holds {len(new['params'])} parameters, the checkpoint's"
                                 f" {len(old['params'])}")
            keys = ["lr", "initial_lr"] + [k for k in new if k not in ("lr", "initial_lr")] + [
                k for k in old if k not in new and k not in ("lr", "initial_lr")]
            for key in keys:
                if key in _IMPLEMENTATION or key == RECORD_KEY:
                    continue
                before = old.get(key, _MISSING)
                if key == "lr":
                    after: Any = recipe_lrs[i][g] if recipe_lrs is not None else "(unknown)"
                else:
                    after = new.get(key, _MISSING)
                loaded = used_groups[i]
                used: Any = loaded[g].get(key, _MISSING) if loaded is not None else before
                if before is _MISSING and after is _MISSING or _same(before, after):
                    continue
                row(f"{where}: {key}", before, after, used)
        if not recipe and keep[i][0] is False and "shape" in keep[i][1]:
            fatal.append(f"optimizer {i}: {keep[i][1]}")
            row(f"{label}: parameter shapes", "other", "other", "(error)")
        lacking = sorted(k for k in optimizer.defaults if k in new_groups[0] and k not in old_groups[0]
                         and k not in _IMPLEMENTATION) if old_groups and new_groups else []
        if not recipe and old_class is not None and _short(old_class) != new_class and lacking:
            fatal.append(f"optimizer {i} is a {new_class} and the checkpoint's {_short(old_class)} param groups lack"
                         f" {', '.join(repr(k) for k in lacking)}, which it reads")
    lambda_note = False
    old_count, new_count = len(restored.schedulers), len(setup.schedulers)
    for k in range(max(old_count, new_count)):
        spec: Optional[SchedulerSpec] = setup.schedulers[k] if k < new_count else None
        old_state = restored.schedulers[k] if k < old_count else None
        saved_cadence = restored.cadence_of(k)
        if spec is None:
            row(f"scheduler {k}", _short(saved_cadence.cls) if saved_cadence else "(a scheduler)", _MISSING,
                "(none)" if recipe else "(none: its state is not restored)")
            continue
        scheduler = spec.scheduler
        name = type(scheduler).__name__
        label = f"scheduler {k} ({name})"
        if old_state is None:
            row(label, _MISSING, name, f"{name} from step {positions[k]}" if recipe else f"{name} from step 0"
                " (the checkpoint has no state for it)")
            continue
        if saved_cadence is not None:
            if _short(saved_cadence.cls) != name:
                row(f"scheduler {k}: class", _short(saved_cadence.cls), name,
                    name if recipe else f"{name} loaded with {_short(saved_cadence.cls)}'s state")
            for key, before, after in (("interval", saved_cadence.interval, spec.interval),
                                       ("frequency", saved_cadence.frequency, spec.frequency),
                                       ("optimizer", saved_cadence.optimizer, spec.optimizer_index)):
                if before != after:
                    row(f"{label}: {key}", before, after, after)  # Lightning saves no cadence: the recipe's
        new_state = scheduler.state_dict()
        functional = isinstance(scheduler, LambdaLR)
        for key in list(new_state) + [key for key in old_state if key not in new_state]:
            if key in _SCHEDULER_COUNTERS or key.startswith("_"):
                continue
            before, after = old_state.get(key, _MISSING), new_state.get(key, _MISSING)
            if _same(before, after):
                continue
            if recipe or before is _MISSING:
                used = after
            elif functional:
                used, lambda_note = f"{_show(after)} (the function)", True
            else:
                used = before
            row(f"{label}: {key}", before, after, used)
        taken = _steps_taken(old_state)
        if taken is not None and taken != positions[k] and not spec.reduce_on_plateau:
            row(f"{label}: steps taken", taken, positions[k], positions[k] if recipe else taken)
    if lambda_note:
        notes.append("A LambdaLR (as `warmup_cosine` makes) saves no function: under resume='checkpoint' the recipe's"
                     " function runs on the checkpoint's step count and base lrs, while its attributes say the"
                     " checkpoint's values.")
    return rows, fatal, notes


def _table_message(report: ResumeReport) -> str:
    notes = "".join(f"\n{note}" for note in report.notes)
    silence = " Silence this with `warnings.filterwarnings('ignore', 'Resuming from')`."
    if report.choice == "recipe":
        return (
            f"Resuming from {report.source} with resume='recipe': training keeps the weights, the progress"
            f" (global_step={report.global_step}, epoch {report.epoch}) and the optimizers' state, and uses the new"
            f" recipe where it differs from the checkpoint ({len(report.differences)} settings); every scheduler"
            f" continues at the step training has reached.\n{report.table()}{notes}\n{silence.strip()}"
        )
    return (
        f"Resuming from {report.source} with resume='checkpoint' (Lightning's behaviour): the checkpoint's optimizer"
        f" and scheduler settings replace what `configure_optimizers` built, so {len(report.differences)} settings of"
        f" the recipe do not apply as written.\n{report.table()}{notes}\nTo train with the new recipe from where"
        " training stands (keeping the weights, global_step, epoch and the optimizers' moments), set `resume ="
        " \"recipe\"` on the module (OptimRecipeMixin, AlternatingOptimizersMixin) or pass `resume=\"recipe\"` to"
        " ConfigureOptimizersCheck/SchedulerCadenceCheck; to resume exactly as saved, undo the changes." + silence
    )


def _dropped_message(source: str, index: int, reason: str, setup: OptimizerSetup) -> str:
    name = type(getattr(setup.optimizers[index], "_optimizer", setup.optimizers[index])).__name__
    return (
        f"Resuming from {source} with resume='recipe': optimizer {index} ({name})'s state in the checkpoint (its"
        f" moments and step count) is dropped, because {reason}. It starts from a fresh state, as a new optimizer"
        " would; the weights, global_step and the schedules' positions are kept. To keep the state, keep the"
        " optimizer's class and param groups. Silence this with"
        " `warnings.filterwarnings('ignore', \"optimizer .* state in the checkpoint\")`."
    )


# ------------------------------------------------------------------------------------------------- preview


def preview_resumed(new: Any, resume_from: Any, choice: Optional[str], *, max_epochs: int, steps_per_epoch: int,
                    accumulate_grad_batches: int, module: Any, batch_size: Optional[int] = None) -> Any:
    """`preview_schedule` of a resumed run: `resume_from`'s old run up to its step, `new` after it (see
    `ResumeFrom`). Returns a `SchedulePreview` with ``resume_report`` set."""
    from lightning_optim_recipes import preview  # it imports the mixins, which import this module

    point = resume_from if isinstance(resume_from, ResumeFrom) else ResumeFrom(*resume_from)
    if isinstance(point.step, bool) or not isinstance(point.step, int) or point.step < 0:
        raise RecipeError(f"`resume_from`'s step must be a non-negative int (a global_step), got {point.step!r}.")
    old_epochs = point.max_epochs if point.max_epochs is not None else max_epochs
    per_epoch, accumulate = steps_per_epoch, accumulate_grad_batches
    result = preview.SchedulePreview()
    result.max_epochs, result.steps_per_epoch, result.accumulate_grad_batches = max_epochs, per_epoch, accumulate
    result.markers = []

    old_trainer = preview._StandInTrainer(old_epochs, per_epoch, accumulate, batch_size)
    old_module = (point.module if point.module is not None else module) if isinstance(point.old, Mapping) else None
    old_model, old_setup = preview._configure(point.old, old_module, old_trainer)
    record(old_setup)
    loop = preview._loop_of(old_model, old_setup, old_trainer)
    state = cadence.LoopState.fresh(loop.optimizers)
    recording = preview._Recording(old_model, old_setup, old_trainer, result)
    trained = 0
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _STEP_BEFORE_OPTIMIZER)
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

    new_trainer = preview._StandInTrainer(max_epochs, per_epoch, accumulate, batch_size)  # loops are restored after configuring
    new_model, new_setup = preview._configure(new, module if isinstance(new, Mapping) else None, new_trainer)
    own = getattr(new_model, "resume", None) if not isinstance(new, Mapping) else None
    chosen = check_choice(choice) if choice is not None else _choose(new_model, own if isinstance(own, str) else None,
                                                                      None)
    new_loop = preview._loop_of(new_model, new_setup, new_trainer)
    report = reconcile(new_setup, checkpoint, chosen, loop=new_loop, batches_per_epoch=per_epoch,
                       at=fit_checks.caller_line(), source=f"the checkpoint at step {point.step}")
    with warnings.catch_warnings():  # restore as Lightning does
        warnings.filterwarnings("ignore", _STEP_BEFORE_OPTIMIZER)
        for optimizer, saved in zip(new_setup.optimizers, checkpoint["optimizer_states"]):
            getattr(optimizer, "_optimizer", optimizer).load_state_dict(saved)
        for spec, saved in zip(new_setup.schedulers, checkpoint["lr_schedulers"]):
            spec.scheduler.load_state_dict(saved)
        if new_loop.optimizers != loop.optimizers:  # the alternating mixin starts its cycle afresh
            state = cadence.LoopState.fresh(new_loop.optimizers)
        result.markers.append({"step": point.step, "optimizer": 0, "label": f"resume ({chosen})"})
        new_trainer.global_step = point.step
        recording = preview._Recording(new_model, new_setup, new_trainer, result)
        for t in range(trained, per_epoch * max_epochs):
            epoch, batch_idx = divmod(t, per_epoch)
            new_trainer.current_epoch = recording.epoch = epoch
            cadence.run_batch(new_loop, state, batch_idx, batch_idx == per_epoch - 1, recording)
            if batch_idx == per_epoch - 1:
                cadence.run_epoch_end(new_loop, epoch, recording)
    new_trainer.current_epoch = max_epochs
    result.resume_report = report
    return result
