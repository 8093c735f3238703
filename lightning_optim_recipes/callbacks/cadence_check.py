"""`SchedulerCadenceCheck`: count every real ``scheduler.step()`` and check it against the scheduler's cadence.

Counting reads ints the schedulers keep (``_step_count``, ``last_epoch``) and the optimizers' step counts (one
``register_step_post_hook`` per optimizer, removed when training ends); nothing in torch or Lightning is wrapped.
What each scheduler should have done comes from the library's model of the training loop (see `_cadence_ledger`).
A batch is checked once it is over, at the next batch start and at the epoch end, because the module's own
``on_train_batch_end`` runs after the callbacks'.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Optional

from torch.optim.lr_scheduler import ReduceLROnPlateau

from lightning_optim_recipes import cadence
from lightning_optim_recipes.callbacks import _cadence_messages as messages
from lightning_optim_recipes.callbacks._cadence_ledger import Ledger, Tracked, step_counter
from lightning_optim_recipes.callbacks._lr_watch import PostHook, Watch, watch_for
from lightning_optim_recipes.callbacks._cadence_report import CadenceReport, OptimizerCadence, SchedulerCadence
from lightning_optim_recipes.callbacks.configure_check import ConfigureOptimizersCheck
from lightning_optim_recipes.errors import CadenceError, RecipeError, RecipeWarning, rank_zero, warn
from lightning_optim_recipes.horizons import horizon_of
from lightning_optim_recipes.naming import OptimizerNames, optimizer_names
from lightning_optim_recipes.validation import SchedulerSpec

__all__ = ["CadenceReport", "OptimizerCadence", "SchedulerCadence", "SchedulerCadenceCheck", "step_counter"]

_MODES = ("raise", "warn")
CSV_NAME = "cadence_report.csv"


class SchedulerCadenceCheck(ConfigureOptimizersCheck):
    """Check, batch by batch, that every scheduler steps exactly as its cadence says; report the counts at the end.

    On a mismatch it raises `CadenceError` (``mode="raise"``) or warns (``mode="warn"``, once per scheduler) as soon
    as it is seen, naming the scheduler, the expected and actual counts and the likely cause. Before training it runs
    `ConfigureOptimizersCheck`'s checks (any module, no mixin needed) and warns (`RecipeWarning`) about a 'step'
    scheduler with ``frequency > 1`` under gradient accumulation (Lightning counts that frequency in batches).
    At the end of fit it prints `report` (a `CadenceReport`, names as logged by `LearningRateLogger`) and writes it
    as ``cadence_report.csv`` in the logger's ``log_dir`` when there is one. Its counts survive a resume.

    Args:
        mode: ``"raise"`` or ``"warn"``.
        print_report: print the table at the end of fit (on rank 0).
        resume: on a fit resumed from a checkpoint, ``"checkpoint"`` (Lightning's behaviour) or ``"recipe"``
            (train with the new recipe from where training stands); see `ConfigureOptimizersCheck`.

    Example:
        >>> import pytorch_lightning as pl
        >>> check = SchedulerCadenceCheck(mode="warn")
        >>> trainer = pl.Trainer(callbacks=[check], logger=False, enable_progress_bar=False)
        >>> SchedulerCadenceCheck(mode="ignore")
        Traceback (most recent call last):
        ...
        lightning_optim_recipes.errors.RecipeError: `mode` must be 'raise' or 'warn', got 'ignore'.
    """

    def __init__(self, mode: str = "raise", print_report: bool = True, resume: Optional[str] = None) -> None:
        super().__init__(resume=resume)
        if mode not in _MODES:
            raise RecipeError(f"`mode` must be 'raise' or 'warn', got {mode!r}.")
        self.mode = mode
        self.print_report = print_report
        self.report: Optional[CadenceReport] = None
        self._ledger: Optional[Ledger] = None
        self._optimizers: list[Any] = []
        self._counters: list[Optional[PostHook]] = []
        self._handles: list[Any] = []
        self._names: Optional[OptimizerNames] = None
        self._restored: Optional[dict[str, Any]] = None  # from a checkpoint, applied when the resumed fit starts
        self._watch: Optional[Watch] = None  # the lr watch (rank 0)
        self._resumed_epoch: Optional[int] = None
        self._epoch = 0
        self._epoch_ended = False
        self._fast = False
        self._batches = 0
        self._sizing_pending = False  # manual optimization: checked once a batch has run
        self._first_batch = 0

    def table(self) -> str:
        """The last fit's report as a table ('' before the end of a fit)."""
        return self.report.table() if self.report is not None else ""

    # -------------------------------------------------------------------------------------------------- hooks

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self.report = None
        self._remove_hooks()
        loop = getattr(pl_module, "training_cadence", None)
        mode = "alternating" if isinstance(loop, cadence.Loop) else (
            "automatic" if pl_module.automatic_optimization else "manual")
        self._optimizers = [getattr(o, "optimizer", o) for o in trainer.optimizers]
        specs = _scheduler_specs(self, trainer, pl_module, mode)
        if mode == "automatic":
            loop = cadence.Loop("automatic", 1, _timings(specs), accumulate=(trainer.accumulate_grad_batches,))
        self._names = optimizer_names(specs, self._optimizers, getattr(pl_module, "optimizer_roles", None))
        tracked = []
        for spec, name in zip(specs, _scheduler_names(specs, self._names)):
            read = step_counter(spec.scheduler)
            tracked.append(Tracked(spec, name, read, base=read() if read is not None else 0))
        self._ledger = Ledger(mode, loop if mode != "manual" else None, tracked, len(self._optimizers))
        self._fast = mode == "automatic"
        self._sizing_pending = mode == "manual" and len(self._optimizers) > 1
        self._first_batch = trainer.fit_loop.epoch_loop.batch_progress.total.completed  # > 0 when resumed
        self._warn_accumulation(trainer, mode)
        restored, self._restored = self._restored, None
        loaded = restored is not None and self._ledger.load(restored["ledger"])
        if loaded:
            assert restored is not None
            self._resumed_epoch, self._epoch_ended = restored["epoch"], restored["epoch_ended"]
        watch = self._watch = watch_for(trainer, pl_module, self._optimizers, [self._names.optimizer(i) for i in range(
            len(self._optimizers))], mode == "manual", warn, before=self._ledger.real if loaded else None) \
            if trainer.is_global_zero else None
        self._counters = []
        for index, optimizer in enumerate(self._optimizers):
            counter = PostHook(watch, index) if hasattr(optimizer, "register_step_post_hook") else None
            if counter is not None:
                self._handles.append(optimizer.register_step_post_hook(counter))
            self._counters.append(counter)
        self._check_cycle(trainer)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._begin_epoch(trainer)

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self._resumed_epoch is not None:  # resumed from the last batch of an epoch: no on_train_epoch_start
            self._begin_epoch(trainer)
        if self._fast and not self._mismatch():  # automatic: Lightning keeps the counts up to date batch by batch
            return
        if self._sizing_pending and self._ledger is not None and self._ledger.mode == "manual":
            self._check_manual_sizing(trainer)
        self._check(trainer, (batch_idx, trainer.current_epoch))

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._ledger is not None:
            last = batch_idx + 1 == self._batches if self._batches else messages.is_last_batch(trainer)
            self._ledger.batch_end(batch_idx, last)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        epoch = trainer.current_epoch
        # the module's own on_train_epoch_end and Lightning's (or the mixin's) epoch steps run after this hook
        self._check(trainer, f"at the end of epoch {epoch}", epoch_ending=epoch)
        self._end_epoch(epoch, messages.epoch_ran_fully(trainer))

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        try:
            self._check(trainer, "at the end of training", final=True)
            self.report = _build_report(self)
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
        super().on_exception(trainer, pl_module, exception)
        self._remove_hooks()

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        super().teardown(trainer, pl_module, stage)
        self._remove_hooks()

    # -------------------------------------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict[str, Any]:
        """The run's counts so far, so that a fit resumed from this checkpoint checks and reports the whole run."""
        if self._ledger is None:
            return {}
        return {"ledger": self._ledger.state_dict(self._counts()), "epoch": self._epoch,
                "epoch_ended": self._epoch_ended}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = dict(state_dict) if state_dict and "ledger" in state_dict else None

    # ------------------------------------------------------------------------------------------------ epochs

    def _begin_epoch(self, trainer: Any) -> None:
        resumed = self._resumed_epoch == trainer.current_epoch  # resumed during this epoch: keep its start counts
        if self._resumed_epoch is not None and not resumed and not self._epoch_ended:
            # saved on the last batch of an epoch, before its end (whose schedulers had stepped): Lightning resumes
            # at the next epoch without that epoch's end hooks, so count it as ended here
            self._end_epoch(self._resumed_epoch, full=True)
        self._resumed_epoch = None
        self._epoch = trainer.current_epoch
        self._epoch_ended = False
        batches = trainer.num_training_batches
        self._batches = batches if isinstance(batches, int) and batches > 0 else 0  # 0: read the loop's flag
        if self._ledger is not None:
            self._ledger.set_epoch(self._epoch)

    def _end_epoch(self, epoch: int, full: bool) -> None:
        if self._ledger is not None:
            self._ledger.epoch_end(epoch, full, self._counts())
        self._epoch_ended = True

    # ------------------------------------------------------------------------------------------------ checking

    def _counts(self) -> list[int]:
        """Optimizer steps over the run (restored counts plus this fit's)."""
        ledger = self._ledger
        return [base + (c.count if c is not None else 0) for base, c in zip(ledger.real, self._counters)] if ledger \
            else []

    def _mismatch(self) -> bool:
        ledger = self._ledger
        assert ledger is not None
        steps = ledger.expected.scheduler_steps
        for k, tracked in enumerate(ledger.tracked):
            if tracked.read is not None and not tracked.reported and tracked.read() - tracked.base != steps[k]:
                return True
        return False

    def _check(self, trainer: Any, where: Any, final: bool = False, epoch_ending: Optional[int] = None) -> None:
        """Check every count; `where` is a text, or (batch_idx, epoch) of the batch starting (written on failure)."""
        ledger = self._ledger
        if ledger is None:
            return
        counts = self._counts()
        if not isinstance(where, str):
            batch_idx, epoch = where
            where = f"after batch {batch_idx - 1} of epoch {epoch}" if batch_idx else f"at the start of epoch {epoch}"
        self._check_optimizers(where, counts, final)
        for k, tracked in enumerate(ledger.tracked):
            if tracked.reported or tracked.read is None:
                continue
            low, high = ledger.expected_range(tracked, counts, k)
            spec = tracked.spec
            if epoch_ending is not None and spec.interval == "epoch" and (epoch_ending + 1) % spec.frequency == 0:
                high += 1  # stepped after this hook
            if ledger.mode == "alternating" and spec.reduce_on_plateau and spec.interval == "step" and not final:
                low = max(0, low - 1)  # the mixin steps it after the validation of its batch, at the next batch
            if ledger.mode == "manual":
                # the module steps it where it likes (Lightning ignores 'interval' under manual optimization): by the
                # end of the first epoch it must have stepped (the module's own on_train_epoch_end has run by the
                # next batch's start)
                passed = final or (epoch_ending is None and tracked.ended_epochs > 0)
                if passed and tracked.actual() == 0 and counts[spec.optimizer_index] > 0:
                    tracked.reported = True
                    self._fail(messages.never_stepped(tracked, self._names, where, counts[spec.optimizer_index]))
                elif passed and not final and not tracked.sized:
                    tracked.sized = True
                    self._check_manual_length(trainer, tracked, counts)
                continue
            actual = tracked.actual()
            if low <= actual <= high:  # type: ignore[operator]
                continue
            tracked.reported = True
            self._fail(messages.mismatch(tracked, ledger.mode, where, low, high, actual, counts,  # type: ignore[arg-type]
                                         self._names))

    def _check_optimizers(self, where: str, counts: list[int], final: bool) -> None:
        """Under the mixin: no optimizer steps more than its turns allow, and a run-wide cycle gives each a turn."""
        ledger = self._ledger
        assert ledger is not None
        if ledger.mode != "alternating":
            return
        for index, actual in enumerate(counts):
            allowed = ledger.optimizer_expected(index)
            if allowed is not None and actual > allowed:
                self._fail(messages.optimizer_stepped_by_hand(index, actual, allowed, ledger, where, self._names))
                ledger.expected.optimizer_steps[index] = actual  # report each excess once
            if final and ledger.loop is not None and ledger.loop.run_wide and ledger.expected.active_batches[index] == 0:
                if rank_zero():
                    warnings.warn(messages.never_turned(index, ledger, self._names), RecipeWarning, stacklevel=2)

    def _check_cycle(self, trainer: Any) -> None:
        """Before training: an optimizer that the epoch-restarting cycle never selects never steps."""
        ledger = self._ledger
        loop = ledger.loop if ledger is not None else None
        if loop is None or loop.mode != "alternating" or not loop.frequencies or loop.run_wide:
            return
        batches = trainer.num_training_batches
        if not isinstance(batches, int) or batches <= 0:
            return
        in_order = loop.order or tuple(range(loop.optimizers))
        frequencies = tuple(loop.frequencies[i] for i in in_order)
        for slot in cadence.never_active(frequencies, batches):
            index = in_order[slot]
            self._fail(messages.never_active(index, ledger, batches, self._names))  # type: ignore[arg-type]

    def _check_manual_length(self, trainer: Any, tracked: Tracked, counts: list[int]) -> None:
        """Manual optimization: once the first epoch has ended, the module's pace (its steps of this scheduler in
        that epoch) gives the steps over the run; a declared length that does not fit them warns, as the checks
        before training do for Lightning's cadence. A resumed fit (whose first epoch is not seen whole) is left."""
        if self._first_batch or tracked.ended_epochs != 1 or not tracked.actual():
            return
        horizon = horizon_of(tracked.spec.scheduler)
        per_epoch = tracked.actual()
        epochs = float(trainer.max_epochs) if trainer.max_epochs not in (None, -1) else float("inf")
        stepped = sum(counts)
        if trainer.max_steps and trainer.max_steps > 0 and stepped:
            epochs = min(epochs, trainer.max_steps / stepped)
        if horizon.end is None or epochs == float("inf") or per_epoch is None:
            return
        planned = int(round(per_epoch * epochs))
        if abs(horizon.end - planned) > max(per_epoch, 1):
            self._quiet_watch(tracked.spec.optimizer_index)
            warn(messages.manual_length(tracked, self._names, horizon, per_epoch, epochs, planned))

    def _quiet_watch(self, index: int) -> None:
        """One warning per optimizer: the lr watch stays silent about one a check has warned about."""
        if self._watch is not None and index < len(self._watch.tracks):
            self._watch.tracks[index].done = True

    def _check_manual_sizing(self, trainer: Any) -> None:
        """Manual optimization with several optimizers: ``trainer.global_step`` and ``max_steps`` count every
        optimizer's step, so a schedule sized with them (or ``estimated_stepping_batches``, which ``max_steps`` caps)
        and stepped once per batch ends early. Said once the first batch shows how many steps a batch takes."""
        seen = trainer.fit_loop.epoch_loop.batch_progress.total.completed - self._first_batch
        if seen < 1 or self._ledger is None or self._names is None:
            return
        self._sizing_pending = False
        counts, max_steps = self._counts(), trainer.max_steps
        per_batch = sum(counts) / seen
        if not (max_steps and max_steps > 0 and per_batch > 1):
            return
        epochs = trainer.max_epochs if trainer.max_epochs not in (None, -1) else None
        batches = max_steps / per_batch
        if epochs is not None and isinstance(trainer.num_training_batches, int) and \
                trainer.num_training_batches * epochs < batches:
            return  # the epochs end training first: max_steps does not size the run
        for tracked in self._ledger.tracked:
            actual = tracked.actual()
            horizon = horizon_of(tracked.spec.scheduler)
            if not actual or horizon.end is None or horizon.end != max_steps:
                continue
            planned = int(batches * actual / seen)
            if planned < 0.9 * horizon.end:
                tracked.sized = True  # said here; not again once the first epoch has ended
                self._quiet_watch(tracked.spec.optimizer_index)
                warn(messages.manual_sizing(tracked, self._names, horizon, planned, per_batch, batches, max_steps,
                                            actual / seen))

    def _fail(self, message: str) -> None:
        if self.mode == "raise":
            raise CadenceError(message)
        if rank_zero():
            warnings.warn(message, RecipeWarning, stacklevel=2)

    # ------------------------------------------------------------------------------------------------ helpers

    def _warn_accumulation(self, trainer: Any, mode: str) -> None:
        accumulate = getattr(trainer, "accumulate_grad_batches", 1)
        if mode != "automatic" or accumulate <= 1 or self._ledger is None:
            return
        for tracked in self._ledger.tracked:
            if tracked.spec.interval == "step" and tracked.spec.frequency > 1 and rank_zero():
                warnings.warn(messages.accumulation(tracked.name, tracked.spec.frequency, accumulate, trainer),
                              RecipeWarning, stacklevel=2)

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def _scheduler_specs(check: Any, trainer: Any, pl_module: Any, mode: str) -> list[SchedulerSpec]:
    """The validated specs when they describe the Trainer's schedulers, else specs read from the Trainer's configs."""
    setup = check.optimizer_setup or getattr(pl_module, "optimizer_setup", None)
    if setup is not None and len(setup.schedulers) == len(trainer.lr_scheduler_configs or setup.schedulers):
        return list(setup.schedulers)
    specs = []
    for config in trainer.lr_scheduler_configs:
        optimizer = config.scheduler.optimizer
        index = next((i for i, o in enumerate(check._optimizers) if o is optimizer), 0)
        specs.append(SchedulerSpec(
            scheduler=config.scheduler, optimizer_index=index, interval=config.interval,
            frequency=config.frequency, name=config.name, monitor=config.monitor, strict=config.strict,
            reduce_on_plateau=config.reduce_on_plateau or isinstance(config.scheduler, ReduceLROnPlateau),
            declared=mode != "manual",
        ))
    return specs


def _build_report(check: SchedulerCadenceCheck) -> CadenceReport:
    """The report of the run so far: each scheduler's and each optimizer's expected and actual steps."""
    ledger, names = check._ledger, check._names
    assert ledger is not None and names is not None
    counts = check._counts()
    rows = []
    for tracked in ledger.tracked:
        low, high = ledger.expected_range(tracked, counts) if tracked.read is not None else (0, 0)
        if ledger.mode == "manual":
            low, high = min(1, counts[tracked.spec.optimizer_index]), max(tracked.actual() or 0, 1)
        index = tracked.spec.optimizer_index
        rows.append(SchedulerCadence(
            tracked.name, index, tracked.spec.interval, tracked.spec.frequency, low, high, tracked.actual(),
            tuple(float(g["lr"]) for g in check._optimizers[index].param_groups),
            type(tracked.spec.scheduler).__name__, names.optimizer(index),
        ))
    frequencies = ledger.loop.frequencies if ledger.loop is not None else None
    optimizers = [
        OptimizerCadence(names.optimizer(i), i, frequencies[i] if frequencies else None,
                         ledger.optimizer_expected(i), counts[i] if check._counters[i] is not None else None,
                         type(o).__name__)
        for i, o in enumerate(check._optimizers)
    ]
    return CadenceReport(tuple(rows), tuple(optimizers))


def _timings(specs: list[SchedulerSpec]) -> tuple[cadence.Timing, ...]:
    return tuple(cadence.Timing(s.optimizer_index, s.interval, s.frequency, s.reduce_on_plateau) for s in specs)


def _scheduler_names(specs: list[SchedulerSpec], names: OptimizerNames) -> list[str]:
    """Each scheduler's row name: the name its lr is logged under (the scheduler's 'name', or its optimizer's)."""
    return list(names.schedulers) if len(names.schedulers) == len(specs) else [
        s.name or names.optimizers[s.optimizer_index] for s in specs]
