"""The messages of `SchedulerCadenceCheck`: what went wrong, the likely cause and the fix."""

from __future__ import annotations

from typing import Any, Optional

from lightning_optim_recipes import cadence
from lightning_optim_recipes._checks import count
from lightning_optim_recipes.callbacks._cadence_ledger import Ledger, Tracked
from lightning_optim_recipes.naming import OptimizerNames


def is_last_batch(trainer: Any) -> bool:
    progress = trainer.fit_loop.epoch_loop.batch_progress
    return bool(progress.is_last_batch) or progress.current.ready == trainer.num_training_batches


def epoch_ran_fully(trainer: Any) -> bool:
    """Whether the epoch that is ending ran all its batches (Lightning steps 'epoch' schedulers only then)."""
    epoch_loop = trainer.fit_loop.epoch_loop
    reached = getattr(epoch_loop, "_num_ready_batches_reached", None)
    return bool(reached()) if reached is not None else True  # pragma: no cover - fallback


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _optimizer(index: int, names: Optional[OptimizerNames]) -> str:
    return f"optimizer {index} ({names.optimizer(index)})" if names is not None else f"optimizer {index}"


def _head(tracked: Tracked, names: Optional[OptimizerNames], cadence_given: bool = True) -> str:
    """``Scheduler 'lr-SGD' (StepLR of optimizer 0 (lr-SGD), interval='epoch', frequency=1)``; without the cadence
    when it says nothing (a manual module's scheduler returned without one)."""
    spec = tracked.spec
    what = f"{type(spec.scheduler).__name__} of {_optimizer(spec.optimizer_index, names)}"
    if cadence_given or spec.declared:
        what += f", interval={spec.interval!r}, frequency={spec.frequency}"
    return f"Scheduler {tracked.name!r} ({what})"


def mismatch(tracked: Tracked, mode: str, where: str, low: int, high: int, actual: int, counts: list[int],
             names: Optional[OptimizerNames]) -> str:
    spec = tracked.spec
    expected = str(low) if low == high else f"{low} to {high}"
    head = f"{_head(tracked, names)} has stepped {count(actual, 'time')} {where}, but its cadence expects {expected}"
    if spec.interval == "step" and mode != "automatic":
        head += f" ({count(counts[spec.optimizer_index], 'step')} of its optimizer so far)"
    return f"{head}. Likely cause: {_cause(tracked, mode, actual, high)}"


def _cause(tracked: Tracked, mode: str, actual: int, high: int) -> str:
    spec = tracked.spec
    more = actual > high
    every = "" if spec.frequency == 1 else ordinal(spec.frequency) + " "
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
        return f"it is stepped less often than its optimizer: call `sch.step()` after every {every}`opt.step()`."
    if more:
        return (
            "it is stepped during the epoch (e.g. in `training_step`) although it declares interval='epoch':"
            " step it once in `on_train_epoch_end`, or declare {'scheduler': ..., 'interval': 'step'} in"
            " `configure_optimizers` if it is written in optimizer steps (under manual optimization Lightning"
            " ignores 'interval'; this check takes it as your intent)."
        )
    return (
        f"it is not stepped at the end of every {every}epoch in which its optimizer steps: call"
        " `self.lr_schedulers().step()` in `on_train_epoch_end`."
    )


def never_stepped(tracked: Tracked, names: Optional[OptimizerNames], where: str, steps: int) -> str:
    return (
        f"{_head(tracked, names, cadence_given=False)} has not stepped {where}, although its optimizer has stepped {count(steps, 'time')}:"
        " its lr has not moved since training began. Likely cause: under manual optimization"
        " (`automatic_optimization = False`) Lightning never steps schedulers: call `sch.step()` where your"
        " schedule needs it (after `opt.step()`, or in `on_train_epoch_end`)."
    )


def manual_length(tracked: Tracked, names: Optional[OptimizerNames], horizon: Any, per_epoch: int, epochs: float,
                  planned: int) -> str:
    end = horizon.end
    outcome = (f"training ends {planned / end:.0%} of the way through its schedule" if planned < end else
               f"its schedule ends after {end} steps and the rest of the run trains past it")
    return (
        f"{_head(tracked, names, cadence_given=False)} is written for {end} scheduler steps ({horizon.end_what}), but"
        f" the module steps it {count(per_epoch, 'time')} per epoch (epoch 0), about {planned} times over the run's"
        f" {epochs:g} epochs: {outcome}. Under manual optimization the module steps it itself (Lightning ignores"
        " 'interval'): step it where its length counts (after each `opt.step()` for a length in optimizer steps, in"
        f" `on_train_epoch_end` for one in epochs), or size it for how often it steps: {planned}. If that is"
        " deliberate, silence this with `warnings.filterwarnings('ignore', '.*the module steps it')`."
    )


def manual_sizing(tracked: Tracked, names: Optional[OptimizerNames], horizon: Any, planned: int, per_batch: float,
                  batches: float, max_steps: int, rate: float) -> str:
    return (
        f"{_head(tracked, names, cadence_given=False)} is written for {horizon.end} scheduler steps ({horizon.end_what}), but this run will"
        f" step it about {planned} times: under manual optimization `trainer.global_step` counts every optimizer's"
        f" step, {per_batch:g} per batch here, so max_steps={max_steps} ends training after {int(batches)} batches,"
        f" and the module steps this scheduler {rate:g} time{'' if rate == 1 else 's'} per batch. Its schedule stops"
        f" {planned / horizon.end:.0%} of the way through. Size it with the steps it will take: {planned}"
        f" (`self.trainer.max_steps // {per_batch:g}` when every optimizer steps on every batch)."
    )


def optimizer_stepped_by_hand(index: int, actual: int, allowed: int, ledger: Ledger, where: str,
                              names: Optional[OptimizerNames]) -> str:
    loop = ledger.loop
    assert loop is not None
    return (
        f"{_optimizer(index, names).capitalize()} has stepped {count(actual, 'time')} {where}, but its turns in the"
        f" alternation (frequencies {loop.frequencies}, accumulate_grad_batches {loop.accumulate[index]}) allow"
        f" {allowed}. Likely cause: it is also stepped by hand (`opt.step()` in a step method): the mixin steps it;"
        " return its loss instead."
    )


def never_turned(index: int, ledger: Ledger, names: Optional[OptimizerNames]) -> str:
    loop = ledger.loop
    assert loop is not None
    return (
        f"{_optimizer(index, names).capitalize()} never stepped: training ended before its turn in the run-wide cycle"
        f" (frequencies {loop.frequencies}). Train longer."
    )


def never_active(index: int, ledger: Ledger, batches: int, names: Optional[OptimizerNames]) -> str:
    loop = ledger.loop
    assert loop is not None
    schedulers = [t for t in ledger.tracked if t.spec.optimizer_index == index and not t.reported]
    for tracked in schedulers:
        tracked.reported = True
    listed = ", ".join(repr(t.name) for t in schedulers)
    subject = (f"Scheduler{'s' if len(schedulers) > 1 else ''} {listed} of optimizer {index}" if schedulers
               else f"Optimizer {index}")
    cycle = sum(loop.frequencies or ())
    return (
        f"{subject} will never step: {_optimizer(index, names)} is never active in an epoch of {batches} batches."
        f" Likely cause: with frequencies {loop.frequencies} the cycle of {cycle} batches restarts every epoch"
        " (alternation_cycle='epoch', as in Lightning 1.9) and an epoch is shorter than the batches before its turn."
        " Set `alternation_cycle = 'run'` (a run-wide cycle: the paper's exact n_critic:1 ratio), or use more"
        " batches per epoch."
    )


def accumulation(name: str, frequency: int, accumulate: int, trainer: Any) -> str:
    batches = trainer.num_training_batches
    epochs = trainer.max_epochs
    text = (
        f"Scheduler {name!r} has interval='step' and frequency={frequency} with accumulate_grad_batches={accumulate}:"
        f" Lightning 2.x counts that frequency in dataloader batches within each epoch and checks it only on the"
        f" batches where the optimizer steps, so it does not step every {ordinal(frequency)} optimizer step."
    )
    if isinstance(batches, int) and batches > 0:
        per_epoch, intended = cadence.frequency_under_accumulation(frequency, accumulate, batches, 1)
        if isinstance(epochs, int) and epochs > 0:
            lightning, intended = cadence.frequency_under_accumulation(frequency, accumulate, batches, epochs)
            text += (
                f" With {batches} batches per epoch and max_epochs={epochs} it steps {lightning} times where every"
                f" {ordinal(frequency)} optimizer step would be {intended}."
            )
        else:
            text += f" With {batches} batches per epoch it steps {count(per_epoch, 'time')} per epoch."
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
    return text + (" If stepping it in batches is deliberate, silence this with"
                   " `warnings.filterwarnings('ignore', '.*has interval=.step. and frequency=.* with accumulate')`.")
