"""`SchedulerCadenceCheck`: count every real ``scheduler.step()`` and check it against the scheduler's cadence.

What each scheduler should have done by now, per training mode:

==================  ===============================================================================================
mode                expected ``scheduler.step()`` calls
==================  ===============================================================================================
automatic           Lightning 2.x's rule: 'step' after an optimizer step on batch ``b`` when ``(b + 1) % f == 0``
                    (never on accumulating batches); 'epoch' at the end of every ``f``-th epoch (ReduceLROnPlateau
                    too).
manual              the declared cadence (Lightning ignores it, the check takes it as the module's intent): 'step'
                    once every ``f`` steps of the scheduler's own optimizer, counted over the run or per epoch;
                    'epoch' once at the end of every ``f``-th epoch.
alternating mixin   ``_cadence.alternating_scheduler_steps``: 'step' after every ``f``-th step of its own
                    optimizer, 'epoch' at the end of every ``f``-th epoch; and each optimizer's step count follows
                    its 'frequency' in the cycle.
==================  ===============================================================================================

Counting reads ints the schedulers keep (``_step_count``, ``last_epoch``) and the optimizers' step counts (one
``register_step_post_hook`` per optimizer, removed when training ends); nothing in torch or Lightning is wrapped.
A batch is checked once it is over, at the next batch start and at the epoch end, because the module's own
``on_train_batch_end`` runs after the callbacks'.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import warnings
from collections.abc import Sequence
from typing import Any, Callable, Optional

from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from lightning_optim_recipes import cadence as _cadence
from lightning_optim_recipes._lightning import callback_bases
from lightning_optim_recipes.errors import CadenceError, RecipeError, RecipeWarning
from lightning_optim_recipes.validation import SchedulerSpec, unit_mismatch

__all__ = ["CadenceReport", "OptimizerCadence", "SchedulerCadence", "SchedulerCadenceCheck"]

_MODES = ("raise", "warn")
CSV_NAME = "cadence_report.csv"


# ------------------------------------------------------------------------------------------------------ report


@dataclasses.dataclass(frozen=True)
class SchedulerCadence:
    """One scheduler's row of the report: its cadence, the steps it should have taken and those it took."""

    name: str
    optimizer_index: int
    interval: str
    frequency: int
    expected: int
    expected_max: int
    actual: Optional[int]
    final_lr: tuple[float, ...]

    @property
    def ok(self) -> bool:
        """Whether the actual count is within the expected range (True when it could not be counted)."""
        return self.actual is None or self.expected <= self.actual <= self.expected_max


@dataclasses.dataclass(frozen=True)
class OptimizerCadence:
    """One optimizer's row of the report: its alternation frequency (if any) and its step counts."""

    name: str
    index: int
    frequency: Optional[int]
    expected: Optional[int]
    actual: Optional[int]

    @property
    def ok(self) -> bool:
        """Whether the actual count is the expected one (True when nothing was expected)."""
        return self.expected is None or self.actual is None or self.expected == self.actual


@dataclasses.dataclass(frozen=True)
class CadenceReport:
    """What `SchedulerCadenceCheck` saw over a fit, as data (`rows`) and as a printable `table`.

    Example:
        >>> report = CadenceReport(
        ...     (SchedulerCadence("lr-SGD", 0, "step", 1, 12, 12, 12, (0.05,)),),
        ...     (OptimizerCadence("SGD", 0, None, 12, 12),))
        >>> print(report.table())
        scheduler  optimizer  interval  frequency  expected  actual  final lr
        lr-SGD     0          step      1          12        12      0.05
        optimizer  index  frequency  expected  actual
        SGD        0      -          12        12
    """

    schedulers: tuple[SchedulerCadence, ...] = ()
    optimizers: tuple[OptimizerCadence, ...] = ()

    def rows(self) -> list[dict[str, Any]]:
        """One dict per scheduler and per optimizer (the CSV's rows)."""
        rows = []
        for s in self.schedulers:
            rows.append(dict(kind="scheduler", name=s.name, optimizer=s.optimizer_index, interval=s.interval,
                             frequency=s.frequency, expected=s.expected, expected_max=s.expected_max,
                             actual=s.actual, final_lr=" ".join(f"{lr:.6g}" for lr in s.final_lr)))
        for o in self.optimizers:
            rows.append(dict(kind="optimizer", name=o.name, optimizer=o.index, interval="", frequency=o.frequency,
                             expected=o.expected, expected_max=o.expected, actual=o.actual, final_lr=""))
        return rows

    def table(self) -> str:
        """A short plain-text table: one line per scheduler, then one per optimizer."""
        sched = [["scheduler", "optimizer", "interval", "frequency", "expected", "actual", "final lr"]]
        for s in self.schedulers:
            expected = str(s.expected) if s.expected == s.expected_max else f"{s.expected}..{s.expected_max}"
            sched.append([s.name, str(s.optimizer_index), s.interval, str(s.frequency), expected,
                          _text(s.actual), ", ".join(f"{lr:.4g}" for lr in s.final_lr)])
        opt = [["optimizer", "index", "frequency", "expected", "actual"]]
        for o in self.optimizers:
            opt.append([o.name, str(o.index), _text(o.frequency), _text(o.expected), _text(o.actual)])
        return "\n".join(_format(sched) + _format(opt))

    def write_csv(self, path: str) -> None:
        """Write `rows` to the CSV file `path`."""
        fields = ["kind", "name", "optimizer", "interval", "frequency", "expected", "expected_max", "actual",
                  "final_lr"]
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(self.rows())


def _text(value: Optional[int]) -> str:
    return "-" if value is None else str(value)


def _format(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


# --------------------------------------------------------------------------------------------------- counting


def step_counter(scheduler: Any) -> Optional[Callable[[], int]]:
    """A zero-argument reader of how many times ``scheduler.step()`` has been called (None if it keeps no count).

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        >>> sched = torch.optim.lr_scheduler.StepLR(opt, 2)
        >>> count = step_counter(sched)
        >>> before = count(); opt.step(); sched.step(); sched.step(); count() - before
        2
    """
    if getattr(type(scheduler), "step", None) is LRScheduler.step and isinstance(getattr(scheduler, "_step_count", None), int):
        return lambda: scheduler._step_count
    if isinstance(getattr(scheduler, "last_epoch", None), int):  # ReduceLROnPlateau, SequentialLR, custom steps
        return lambda: scheduler.last_epoch
    inner = getattr(scheduler, "_schedulers", None)  # ChainedScheduler steps all of its schedulers
    if inner:
        return step_counter(inner[0])
    return None


class _StepCounter:
    """An optimizer step post-hook that counts steps."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self.count += 1


@dataclasses.dataclass
class _Tracked:
    spec: SchedulerSpec
    name: str
    read: Optional[Callable[[], int]]
    base: int = 0
    # automatic 'step': Lightning's count so far; 'epoch': counts over epochs that ended fully / at all
    lightning_steps: int = 0
    full_epochs: int = 0
    ended_epochs: int = 0
    # manual 'step': run-wide optimizer steps at fit start; per-epoch floor/ceil sums over finished epochs
    floor_sum: int = 0
    ceil_sum: int = 0
    reported: bool = False

    def actual(self) -> Optional[int]:
        return None if self.read is None else self.read() - self.base

    def automatic_count(self) -> int:
        """Lightning's count so far under automatic optimization (-1: only a range is known, check in full)."""
        if self.spec.reduce_on_plateau and not self.spec.strict:
            return -1
        return self.lightning_steps if self.spec.interval == "step" else self.full_epochs


# ----------------------------------------------------------------------------------------------------- callback


class SchedulerCadenceCheck(*callback_bases()):  # type: ignore[misc]
    """Check, batch by batch, that every scheduler steps exactly as its cadence says; report the counts at the end.

    On a mismatch it raises `CadenceError` (``mode="raise"``) or warns (``mode="warn"``, once per scheduler) as soon
    as it is seen, naming the scheduler, the expected and actual counts and the likely cause. Before training it
    warns (`RecipeWarning`) about an 'epoch' scheduler whose schedule is written in steps, and about a 'step'
    scheduler with ``frequency > 1`` under gradient accumulation (Lightning counts that frequency in batches).
    At the end of fit it prints `report` (a `CadenceReport`) and writes it as ``cadence_report.csv`` in the
    logger's ``log_dir`` when there is one.

    Args:
        mode: ``"raise"`` or ``"warn"``.
        print_report: print the table at the end of fit (on rank 0).

    Example:
        >>> import pytorch_lightning as pl
        >>> check = SchedulerCadenceCheck(mode="warn")
        >>> trainer = pl.Trainer(callbacks=[check], logger=False, enable_progress_bar=False)
        >>> SchedulerCadenceCheck(mode="ignore")
        Traceback (most recent call last):
        ...
        lightning_optim_recipes.errors.RecipeError: `mode` must be 'raise' or 'warn', got 'ignore'.
    """

    def __init__(self, mode: str = "raise", print_report: bool = True) -> None:
        if mode not in _MODES:
            raise RecipeError(f"`mode` must be 'raise' or 'warn', got {mode!r}.")
        self.mode = mode
        self.print_report = print_report
        self.report: Optional[CadenceReport] = None
        self._tracked: list[_Tracked] = []
        self._optimizers: list[Any] = []
        self._counters: list[Optional[_StepCounter]] = []
        self._handles: list[Any] = []
        self._epoch_start_counts: list[int] = []
        self._training_mode = "automatic"
        self._frequencies: Optional[tuple[int, ...]] = None
        self._stepping_batches = 0
        self._step_tracked: list[_Tracked] = []
        self._epoch_tracked: list[_Tracked] = []
        self._checked: list[_Tracked] = []
        self._accumulates = False
        self._mixin: Any = None
        self._mixin_base_steps: list[int] = []
        # alternating mixin: the cycle's run-wide position, per-optimizer accumulation, simulated windows and steps
        self._position = 0
        self._run_wide = False
        self._accumulate: tuple[int, ...] = ()
        self._windows: list[int] = []
        self._simulated_steps: list[int] = []
        self._active_batches: list[int] = []
        # the run's counts so far, from a checkpoint (`load_state_dict`), applied when the resumed fit starts
        self._restored: Optional[dict[str, Any]] = None
        self._resumed_epoch: Optional[int] = None
        self._epoch = 0
        self._epoch_ended = False

    def table(self) -> str:
        """The last fit's report as a table ('' before the end of a fit)."""
        return self.report.table() if self.report is not None else ""

    # -------------------------------------------------------------------------------------------------- hooks

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self.report = None
        self._remove_hooks()
        if getattr(pl_module, "_alternates_optimizers", False):
            self._training_mode = "alternating"
        else:
            self._training_mode = "automatic" if pl_module.automatic_optimization else "manual"
        self._mixin = pl_module if self._training_mode == "alternating" else None
        self._optimizers = [getattr(o, "optimizer", o) for o in trainer.optimizers]
        self._counters = []
        for optimizer in self._optimizers:
            counter = _StepCounter() if hasattr(optimizer, "register_step_post_hook") else None
            if counter is not None:
                self._handles.append(optimizer.register_step_post_hook(counter))
            self._counters.append(counter)
        self._epoch_start_counts = [0] * len(self._optimizers)
        self._mixin_base_steps = list(self._mixin_step_counts() or [0] * len(self._optimizers))
        self._stepping_batches = 0
        specs = self._specs(trainer, pl_module)
        self._frequencies = getattr(pl_module, "alternation_frequencies", None) if self._mixin is not None else None
        self._setup_alternation(pl_module)
        names = _scheduler_names(specs)
        self._tracked = []
        for spec, name in zip(specs, names):
            read = step_counter(spec.scheduler)
            self._tracked.append(_Tracked(spec, name, read, base=read() if read is not None else 0))
        self._step_tracked = [t for t in self._tracked if t.spec.interval == "step" and t.read is not None]
        self._epoch_tracked = [t for t in self._tracked if t.spec.interval == "epoch" and t.read is not None]
        self._checked = self._step_tracked + self._epoch_tracked
        self._accumulates = getattr(trainer, "accumulate_grad_batches", 1) != 1
        self._warn_before_training(trainer, pl_module, specs)
        restored, self._restored = self._restored, None
        if restored is not None:
            self._restore(restored)
        self._check_cycle(trainer)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._begin_epoch(trainer)

    def _begin_epoch(self, trainer: Any) -> None:
        resumed = self._resumed_epoch == trainer.current_epoch  # resumed during this epoch: keep its start counts
        if self._resumed_epoch is not None and not resumed and not self._epoch_ended:
            # saved on the last batch of an epoch, before its end (whose schedulers had stepped): Lightning resumes
            # at the next epoch without that epoch's end hooks, so count it as ended here
            self._end_epoch(self._resumed_epoch, full=True)
        self._resumed_epoch = None
        self._epoch = trainer.current_epoch
        self._epoch_ended = False
        if not resumed:
            self._epoch_start_counts = self._optimizer_counts()

    # -------------------------------------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict[str, Any]:
        """The run's counts so far, so that a fit resumed from this checkpoint checks and reports the whole run."""
        if not self._optimizers:
            return {}
        return {
            "scheduler_steps": [t.actual() for t in self._tracked],
            "trackers": [dict(lightning_steps=t.lightning_steps, full_epochs=t.full_epochs,
                              ended_epochs=t.ended_epochs, floor_sum=t.floor_sum, ceil_sum=t.ceil_sum,
                              reported=t.reported) for t in self._tracked],
            "optimizer_steps": self._optimizer_counts(),
            "epoch": self._epoch,
            "epoch_ended": self._epoch_ended,
            "epoch_start_counts": list(self._epoch_start_counts),
            "stepping_batches": self._stepping_batches,
            "mixin_base_steps": list(self._mixin_base_steps),
            "simulated_steps": list(self._simulated_steps),
            "active_batches": list(self._active_batches),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = dict(state_dict) or None

    def _restore(self, saved: dict[str, Any]) -> None:
        """Continue the counts of the interrupted fit (its schedulers and optimizers are restored already)."""
        if len(saved["trackers"]) != len(self._tracked) or len(saved["optimizer_steps"]) != len(self._optimizers):
            return  # a different setup: check the resumed fit on its own
        for tracked, steps, counts in zip(self._tracked, saved["scheduler_steps"], saved["trackers"]):
            if tracked.read is not None and steps is not None:
                tracked.base = tracked.read() - steps
            for key, value in counts.items():
                setattr(tracked, key, value)
        for counter, steps in zip(self._counters, saved["optimizer_steps"]):
            if counter is not None:
                counter.count = steps
        self._stepping_batches = saved["stepping_batches"]
        self._mixin_base_steps = list(saved["mixin_base_steps"])
        if self._mixin is not None:
            self._simulated_steps = list(saved["simulated_steps"])
            self._active_batches = list(saved["active_batches"])
        # a checkpoint saved during an epoch resumes that epoch: keep the optimizer counts at its start
        self._epoch_start_counts = list(saved["epoch_start_counts"])
        self._resumed_epoch = saved["epoch"]
        self._epoch_ended = saved["epoch_ended"]

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self._resumed_epoch is not None:  # resumed from the last batch of an epoch: no on_train_epoch_start
            self._begin_epoch(trainer)
        if self._training_mode == "automatic":  # fast path: Lightning's counts are kept up to date batch by batch
            for tracked in self._checked:
                if tracked.read() - tracked.base != tracked.automatic_count() and not tracked.reported:
                    break
            else:
                return
        epoch = trainer.current_epoch
        self._check(trainer, f"after batch {batch_idx - 1} of epoch {epoch}" if batch_idx
                    else f"at the start of epoch {epoch}")

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._mixin is not None:
            self._simulate_alternation(trainer, batch_idx)
            return
        if self._training_mode != "automatic" or (self._accumulates and not _lightning_steps_now(trainer)):
            return
        self._stepping_batches += 1
        for tracked in self._step_tracked:
            if (batch_idx + 1) % tracked.spec.frequency == 0:
                tracked.lightning_steps += 1

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        epoch = trainer.current_epoch
        full = _epoch_ran_fully(trainer)
        ends = [t for t in self._epoch_tracked if (epoch + 1) % t.spec.frequency == 0]
        # the module's own on_train_epoch_end (and Lightning's plateau step) run after this hook: allow both
        self._check(trainer, f"at the end of epoch {epoch}", epoch_ending=(ends, full))
        self._end_epoch(epoch, full)

    def _end_epoch(self, epoch: int, full: bool) -> None:
        for tracked in self._epoch_tracked:
            if (epoch + 1) % tracked.spec.frequency == 0:
                tracked.ended_epochs += 1
                tracked.full_epochs += full
        counts = self._optimizer_counts()
        for tracked in self._step_tracked:
            steps = counts[tracked.spec.optimizer_index] - self._epoch_start_counts[tracked.spec.optimizer_index]
            tracked.floor_sum += steps // tracked.spec.frequency
            tracked.ceil_sum += -(-steps // tracked.spec.frequency)
        self._epoch_start_counts = counts
        self._epoch_ended = True

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        try:
            self._check(trainer, "at the end of training", final=True)
            self.report = self._build_report()
        finally:
            self._remove_hooks()
        if trainer.is_global_zero:
            if self.print_report:
                print(self.report.table())
            log_dir = trainer.loggers[0].log_dir if trainer.loggers else None
            if log_dir:
                os.makedirs(log_dir, exist_ok=True)
                self.report.write_csv(os.path.join(log_dir, CSV_NAME))

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._remove_hooks()

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._remove_hooks()

    # ------------------------------------------------------------------------------------------------ checking

    def _expected(self, tracked: _Tracked, counts: list[int]) -> tuple[int, int]:
        """The range of step counts `tracked` may have by now."""
        spec = tracked.spec
        automatic = self._training_mode == "automatic"
        if spec.interval == "epoch":
            low, high = tracked.full_epochs, tracked.full_epochs if automatic else tracked.ended_epochs
        elif automatic:
            low = high = tracked.lightning_steps
        elif self._training_mode == "alternating":
            index, f = spec.optimizer_index, spec.frequency
            base = self._mixin_base_steps[index]
            low = high = (_cadence.alternating_scheduler_steps("step", f, base + counts[index], 0)
                          - _cadence.alternating_scheduler_steps("step", f, base, 0))
        else:
            # manual: every f-th step of its optimizer, counted over the run or per epoch (Lightning's documented
            # `(batch_idx + 1) % f == 0`), stepped right after or right before that optimizer step
            f, steps = spec.frequency, counts[spec.optimizer_index]
            current = steps - self._epoch_start_counts[spec.optimizer_index]
            low = min(steps // f, tracked.floor_sum + current // f)
            high = max(-(-steps // f), tracked.ceil_sum + -(-current // f))
        if spec.reduce_on_plateau and not spec.strict:  # Lightning skips it while its metric is missing
            low = 0
        return low, high

    def _check(self, trainer: Any, where: str, final: bool = False, epoch_ending: Optional[tuple[list[_Tracked], bool]] = None) -> None:
        counts = self._optimizer_counts()
        self._check_optimizers(trainer, where, counts, final)
        for tracked in self._checked:
            if tracked.reported:
                continue
            low, high = self._expected(tracked, counts)
            if epoch_ending is not None and any(tracked is t for t in epoch_ending[0]):
                high += 1
            actual = tracked.actual()
            if low <= actual <= high:  # type: ignore[operator]
                continue
            tracked.reported = True
            self._fail(self._message(tracked, where, low, high, actual, counts))  # type: ignore[arg-type]

    def _check_optimizers(self, trainer: Any, where: str, counts: list[int], final: bool = False) -> None:
        """Under the mixin: no optimizer steps more than its turns allow, and one with schedulers gets turns."""
        if self._mixin is None:
            return
        for index, (actual, expected) in enumerate(zip(counts, self._simulated_steps)):
            if actual > expected:
                self._fail(
                    f"Optimizer {index} ({type(self._optimizers[index]).__name__}) has stepped {actual} time(s) {where},"
                    f" but its turns in the alternation (frequencies {self._frequencies}, accumulate_grad_batches"
                    f" {self._accumulate[index]}) allow {expected}. Likely cause: it is also stepped by hand"
                    " (`opt.step()` in a step method): the mixin steps it; return its loss instead."
                )
                self._simulated_steps[index] = actual  # report each excess once
            if final and self._run_wide and self._active_batches[index] == 0:
                warnings.warn(
                    f"Optimizer {index} ({type(self._optimizers[index]).__name__}) never stepped: training ended"
                    f" before its turn in the run-wide cycle (frequencies {self._frequencies}). Train longer.",
                    RecipeWarning, stacklevel=2,
                )

    def _fail_never_active(self, index: int, what: str) -> None:
        schedulers = [t for t in self._tracked if t.spec.optimizer_index == index and not t.reported]
        for tracked in schedulers:
            tracked.reported = True
        names = ", ".join(repr(t.name) for t in schedulers)
        subject = f"Scheduler(s) {names} of optimizer {index}" if schedulers else f"Optimizer {index}"
        cycle = sum(self._frequencies or ())
        self._fail(
            f"{subject} will never step: optimizer {index} ({type(self._optimizers[index]).__name__}) {what}."
            f" Likely cause: with frequencies {self._frequencies} the cycle of {cycle} batches"
            + " restarts every epoch (alternation_cycle='epoch', as in Lightning 1.9) and an epoch is shorter than"
            " the batches before its turn. Set `alternation_cycle = 'run'` (a run-wide cycle: the paper's exact"
            " n_critic:1 ratio), or use more batches per epoch."
        )

    def _setup_alternation(self, pl_module: Any) -> None:
        count = len(self._optimizers)
        self._position = int(getattr(pl_module, "alternation_position", 0)) if self._mixin is not None else 0
        self._run_wide = getattr(pl_module, "alternation_cycle", "epoch") == "run"
        accumulate = getattr(pl_module, "accumulate_grad_batches", 1) if self._mixin is not None else 1
        self._accumulate = tuple(accumulate) if isinstance(accumulate, (list, tuple)) else (int(accumulate),) * count
        windows = getattr(pl_module, "accumulation_windows", ()) if self._mixin is not None else ()
        self._windows = list(windows) if len(windows) == count else [0] * count
        self._simulated_steps = [0] * count
        self._active_batches = [0] * count

    def _check_cycle(self, trainer: Any) -> None:
        """Before training: an optimizer that the epoch-restarting cycle never selects never steps."""
        if self._mixin is None or not self._frequencies or self._run_wide:
            return
        batches = trainer.num_training_batches
        if not isinstance(batches, int) or batches <= 0:
            return
        for index in _cadence.never_active(self._frequencies, batches):
            self._fail_never_active(index, f"is never active in an epoch of {batches} batches")

    def _simulate_alternation(self, trainer: Any, batch_idx: int) -> None:
        """The mixin's documented cadence: which optimizer ran on this batch, and the steps that allows."""
        if self._frequencies is None:
            active: Sequence[int] = range(len(self._optimizers))
        else:
            position = self._position if self._run_wide else batch_idx
            active = (_cadence.active_optimizer(self._frequencies, position),)
        self._position += 1
        for index in active:
            self._active_batches[index] += 1
            self._windows[index] += 1
            if self._windows[index] >= self._accumulate[index]:
                self._windows[index] = 0
                self._simulated_steps[index] += 1
        if _is_last_batch(trainer):  # a partial window still steps at the end of the epoch
            for index, window in enumerate(self._windows):
                if window:
                    self._windows[index] = 0
                    self._simulated_steps[index] += 1

    def _fail(self, message: str) -> None:
        if self.mode == "raise":
            raise CadenceError(message)
        warnings.warn(message, RecipeWarning, stacklevel=2)

    def _message(self, tracked: _Tracked, where: str, low: int, high: int, actual: int, counts: list[int]) -> str:
        spec = tracked.spec
        expected = str(low) if low == high else f"{low} to {high}"
        head = (
            f"Scheduler {tracked.name!r} ({type(spec.scheduler).__name__} of optimizer {spec.optimizer_index},"
            f" interval={spec.interval!r}, frequency={spec.frequency}) has stepped {actual} time(s) {where}, but its"
            f" cadence expects {expected}"
        )
        if spec.interval == "step" and self._training_mode != "automatic":
            head += f" ({counts[spec.optimizer_index]} step(s) of its optimizer so far)"
        return f"{head}. Likely cause: {self._cause(spec, actual, low, high, counts)}"

    def _cause(self, spec: SchedulerSpec, actual: int, low: int, high: int, counts: list[int]) -> str:
        more = actual > high
        mode = self._training_mode
        if mode == "automatic":
            if more:
                return (
                    "it is also stepped by hand (e.g. `self.lr_schedulers().step()` in `training_step` or a hook)"
                    " while Lightning already steps it under automatic optimization: remove the extra `.step()`."
                )
            return (
                "Lightning's call did not reach `scheduler.step()`: an overridden `lr_scheduler_step` that skips it,"
                " or the same scheduler object returned twice."
            )
        if mode == "manual" and actual == 0:
            when = "right after `opt.step()` in `training_step`" if spec.interval == "step" else "in `on_train_epoch_end`"
            return (
                "under manual optimization (`automatic_optimization = False`) Lightning never steps schedulers: call"
                f" `self.lr_schedulers().step()` {when}."
            )
        if mode == "alternating" and spec.interval == "step":
            if more:
                return (
                    "the mixin steps it right after each step of its own optimizer; it is also stepped by hand"
                    " (remove the extra `.step()`), or it steps on batches where its optimizer did not."
                )
            return "the mixin's call did not reach `scheduler.step()` (an overridden `lr_scheduler_step`?)."
        if spec.interval == "step":
            if more:
                return (
                    "it is stepped on batches where its optimizer did not step (e.g. on every batch while the"
                    " gradients accumulate over several): call `sch.step()` right after `opt.step()`, under the same"
                    " condition."
                )
            return (
                f"it is stepped less often than its optimizer: call `sch.step()` after every"
                f" {'' if spec.frequency == 1 else _ordinal(spec.frequency) + ' '}`opt.step()`."
            )
        if more:
            return (
                "it is stepped during the epoch (e.g. in `training_step`) although it declares interval='epoch':"
                " step it once in `on_train_epoch_end`, or declare {'scheduler': ..., 'interval': 'step'} in"
                " `configure_optimizers` if it is written in optimizer steps (under manual optimization Lightning"
                " ignores 'interval'; this check takes it as your intent)."
            )
        return (
            "it is not stepped at the end of every"
            f" {'' if spec.frequency == 1 else _ordinal(spec.frequency) + ' '}epoch: call `self.lr_schedulers().step()` in"
            " `on_train_epoch_end`."
        )

    # ------------------------------------------------------------------------------------------------ helpers

    def _optimizer_counts(self) -> list[int]:
        return [c.count if c is not None else 0 for c in self._counters]

    def _mixin_step_counts(self) -> Optional[Sequence[int]]:
        counts = getattr(self._mixin, "optimizer_step_counts", None) if self._mixin is not None else None
        return list(counts) if counts is not None else None

    def _specs(self, trainer: Any, pl_module: Any) -> list[SchedulerSpec]:
        setup = getattr(pl_module, "optimizer_setup", None) if self._training_mode == "alternating" else None
        if setup is not None and getattr(setup, "schedulers", None) is not None:
            return list(setup.schedulers)
        specs = []
        for config in trainer.lr_scheduler_configs:
            optimizer = config.scheduler.optimizer
            index = next((i for i, o in enumerate(self._optimizers) if o is optimizer), 0)
            specs.append(SchedulerSpec(
                scheduler=config.scheduler, optimizer_index=index, interval=config.interval,
                frequency=config.frequency, name=config.name, monitor=config.monitor, strict=config.strict,
                reduce_on_plateau=config.reduce_on_plateau or isinstance(config.scheduler, ReduceLROnPlateau),
            ))
        return specs

    def _warn_before_training(self, trainer: Any, pl_module: Any, specs: list[SchedulerSpec]) -> None:
        from lightning_optim_recipes.mixins.recipe_mixin import OptimRecipeMixin

        if not isinstance(pl_module, OptimRecipeMixin):  # the mixin's validator has already warned
            for spec in specs:
                message = unit_mismatch(spec, trainer.max_epochs)
                if message:
                    warnings.warn(message, RecipeWarning, stacklevel=2)
        accumulate = getattr(trainer, "accumulate_grad_batches", 1)
        if self._training_mode != "automatic" or accumulate <= 1:
            return
        for spec, tracked in zip(specs, self._tracked):
            if spec.interval == "step" and spec.frequency > 1:
                warnings.warn(_accumulation_message(tracked.name, spec.frequency, accumulate, trainer),
                              RecipeWarning, stacklevel=2)

    def _build_report(self) -> CadenceReport:
        counts = self._optimizer_counts()
        rows = []
        for tracked in self._tracked:
            low, high = self._expected(tracked, counts) if tracked.read is not None else (0, 0)
            optimizer = self._optimizers[tracked.spec.optimizer_index]
            rows.append(SchedulerCadence(
                tracked.name, tracked.spec.optimizer_index, tracked.spec.interval, tracked.spec.frequency, low, high,
                tracked.actual(), tuple(float(g["lr"]) for g in optimizer.param_groups),
            ))
        optimizers = []
        for index, optimizer in enumerate(self._optimizers):
            frequency = self._frequencies[index] if self._frequencies else None
            expected = None
            if self._training_mode == "automatic":
                expected = self._stepping_batches
            elif self._mixin is not None:
                expected = self._simulated_steps[index]
            actual = self._counters[index].count if self._counters[index] is not None else None
            optimizers.append(OptimizerCadence(type(optimizer).__name__, index, frequency, expected, actual))
        return CadenceReport(tuple(rows), tuple(optimizers))

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def _scheduler_names(specs: Sequence[SchedulerSpec]) -> list[str]:
    """The scheduler's ``name``, else its class name; repeated names get ``-1``, ``-2``."""
    names, seen = [], {}
    for spec in specs:
        name = spec.name or type(spec.scheduler).__name__
        count = seen.get(name, 0)
        seen[name] = count + 1
        names.append(f"{name}-{count}" if count else name)
    return names


def _lightning_steps_now(trainer: Any) -> bool:
    """Whether Lightning's automatic optimization steps the optimizer on the batch in progress (its own rule)."""
    epoch_loop = trainer.fit_loop.epoch_loop
    should_accumulate = getattr(epoch_loop, "_should_accumulate", None)
    if should_accumulate is not None:
        return not should_accumulate()
    ready = epoch_loop.batch_progress.current.ready  # pragma: no cover - older/newer loops
    return ready % trainer.accumulate_grad_batches == 0 or ready == trainer.num_training_batches  # pragma: no cover


def _is_last_batch(trainer: Any) -> bool:
    progress = trainer.fit_loop.epoch_loop.batch_progress
    return bool(progress.is_last_batch) or progress.current.ready == trainer.num_training_batches


def _epoch_ran_fully(trainer: Any) -> bool:
    """Whether the epoch that is ending ran all its batches (Lightning steps 'epoch' schedulers only then)."""
    epoch_loop = trainer.fit_loop.epoch_loop
    reached = getattr(epoch_loop, "_num_ready_batches_reached", None)
    return bool(reached()) if reached is not None else True  # pragma: no cover - fallback


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _accumulation_message(name: str, frequency: int, accumulate: int, trainer: Any) -> str:
    batches = trainer.num_training_batches
    epochs = trainer.max_epochs
    text = (
        f"Scheduler {name!r} has interval='step' and frequency={frequency} with accumulate_grad_batches={accumulate}:"
        f" Lightning 2.x counts that frequency in dataloader batches within each epoch and checks it only on the"
        f" batches where the optimizer steps, so it does not step every {_ordinal(frequency)} optimizer step."
    )
    if isinstance(batches, int) and batches > 0:
        per_epoch, intended = _cadence.frequency_under_accumulation(frequency, accumulate, batches, 1)
        if isinstance(epochs, int) and epochs > 0:
            lightning, intended = _cadence.frequency_under_accumulation(frequency, accumulate, batches, epochs)
            text += (
                f" With {batches} batches per epoch and max_epochs={epochs} it steps {lightning} times where every"
                f" {_ordinal(frequency)} optimizer step would be {intended}."
            )
        else:
            text += f" With {batches} batches per epoch it steps {per_epoch} time(s) per epoch."
        scaled_ok = batches % accumulate == 0 and (batches // accumulate) % frequency == 0
    else:
        scaled_ok = False
    text += (
        " To step every k optimizer steps, keep frequency=1 and write the schedule in units of k optimizer steps"
        " (e.g. `StepLR(step_size=k * n)`, or the warmup/total steps of `warmup_cosine` in optimizer steps)"
    )
    if scaled_ok:
        text += f", or set frequency={frequency * accumulate} (= frequency x accumulate_grad_batches; exact here)."
    else:
        text += (
            f"; frequency={frequency * accumulate} (= frequency x accumulate_grad_batches) is only exact when each"
            " epoch's optimizer steps are a multiple of the frequency."
        )
    return text
