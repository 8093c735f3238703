"""Learning rates watched during training, however they are set (a scheduler, ``optimizer_step``, ``training_step``, a
callback): an lr that reaches 0, or a floor after a decay, early in the run and stays there.

`SchedulerCadenceCheck` feeds its optimizers' steps to a `Watch` (from the step post-hooks it already counts with);
`LearningRateLogger` does when it is the only one of the two. A `Watch` reads one float per optimizer step (the lr
of the optimizer's first param group whose lr was not 0 at the start), keeps a few ints, and warns once per
optimizer, at the step it sees the problem, with the step and the run's length. Steps are the run's: a resumed fit
counts on from the steps each optimizer took before the checkpoint (`SchedulerCadenceCheck`'s restored counts, the
alternating mixin's, else ``trainer.global_step`` for a single optimizer), and judges how early a problem is
against the whole run:

* **lr 0**: every param group at lr 0 for more than a few steps in a row (``max(2, 0.5%)`` of the run), before its
  last step;
* **held at a floor early**: after a decay that changed the lr at a steady rhythm (every step, or every epoch), the
  lr has not moved for 5% of the run while that decay ended before three quarters of it.

The checks before training already replay what a scheduler does; the watch covers what only training shows, and
stays silent about an optimizer the checks before training have warned about.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Callable, Optional

from lightning_optim_recipes import cadence
from lightning_optim_recipes.fit_checks import WARNED_KEY
from lightning_optim_recipes.runs import run_of
from lightning_optim_recipes.validation import OptimizerSetup

__all__: list[str] = []

#: Where the hold must have begun (a share of the run) to be reported, and how long it must have lasted.
HOLD_BEFORE, HOLD_FOR = 0.75, 0.05
#: Changes at a steady rhythm that make a decay (not a few milestones).
RHYTHM = 5


class _Track:
    """One optimizer's lr so far."""

    __slots__ = ("group", "active", "first", "steps", "previous", "peak", "last_change", "gap", "rhythm", "falling",
                 "zeros", "done", "total", "hold", "judged")

    def __init__(self, groups: Sequence[dict[str, Any]], first: int = 0) -> None:
        self.active = [g for g, group in enumerate(groups) if float(group.get("initial_lr", group["lr"]) or 0) > 0]
        self.group = self.active[0] if self.active else 0
        self.first = first  # the optimizer's steps over the run before this fit (a resumed fit's)
        self.steps, self.peak = first, 0.0  # steps over the run
        self.previous: Optional[float] = None
        self.last_change, self.gap, self.rhythm = first, 0, 0
        self.falling, self.zeros, self.done = False, 0, not self.active
        self.total: Optional[int] = None
        self.hold = 20  # steps without a change before a hold is judged (raised to 5% of the run once it is known)
        self.judged = -1  # the last change whose hold has been judged fine


class Watch:
    """Watch the lrs of `optimizers` (their logged `names`) step by step; `total(index)` gives the run's optimizer
    steps of optimizer `index` (None: unknown), `per_epoch(index)` its steps per epoch, `warn(message)` reports;
    `before[index]`: the optimizer's steps over the run before this fit (a resumed fit's), so that steps are
    numbered and judged as the run's."""

    def __init__(self, optimizers: Sequence[Any], names: Sequence[str], total: Callable[[int], Optional[int]],
                 per_epoch: Callable[[int], Optional[int]], warn: Callable[[str], None],
                 skip: Sequence[int] = (), before: Sequence[int] = ()) -> None:
        self.optimizers, self.names, self.total, self.per_epoch, self.warn = optimizers, names, total, per_epoch, warn
        self.tracks = [_Track(o.param_groups, before[i] if i < len(before) else 0) for i, o in enumerate(optimizers)]
        for index in skip:
            if index < len(self.tracks):
                self.tracks[index].done = True

    def observe(self, index: int) -> None:
        """Optimizer `index` has just stepped: read the lr it stepped with."""
        track = self.tracks[index]
        if track.done:
            return
        groups = self.optimizers[index].param_groups
        step = track.steps
        track.steps = step + 1
        lr = groups[track.group]["lr"] if track.group < len(groups) else 0.0
        if step and lr <= 0 and all(groups[g]["lr"] <= 0 for g in track.active if g < len(groups)):
            track.zeros += 1
        elif track.zeros:
            track.zeros = 0
        previous = track.previous
        if lr != previous:
            if previous is not None:
                gap = step - track.last_change
                track.rhythm = track.rhythm + 1 if gap == track.gap else 1
                track.gap, track.last_change, track.falling = gap, step, lr < previous
            if lr > track.peak:
                track.peak = lr
            track.previous = lr
        # judged only when something may be wrong: a run of lr 0, or a steady decay that has stopped a while
        if track.zeros >= 2 or (track.falling and track.rhythm >= RHYTHM and step - track.last_change >= track.hold
                                and track.last_change != track.judged):
            self._judge(index, track, step, lr)

    def _judge(self, index: int, track: _Track, step: int, lr: float) -> None:
        total = track.total
        if total is None:
            total = track.total = self.total(index)
        if not total or step >= total - 1:
            return
        name = self.names[index] if index < len(self.names) else f"optimizer {index}"
        if track.zeros >= max(2, math.ceil(0.005 * total)):
            track.done = True
            first = step - track.zeros + 1
            self.warn(
                f"Every param group of {name} has trained at lr 0 since optimizer step {first} ({track.zeros} steps"
                f" so far, of the run's {total}): those steps change no weight. Whatever sets its lr (a scheduler,"
                " `optimizer_step`, `training_step` or a callback) has brought it to 0 long before the run ends:"
                " size it with the run's optimizer steps (`self.trainer.estimated_stepping_batches`). If that is"
                " deliberate, silence this with `warnings.filterwarnings('ignore', '.*has trained at lr 0')`."
            )
            return
        held = step - track.last_change
        track.hold = max(20, math.ceil(HOLD_FOR * total))
        if track.zeros or held < track.hold:
            return
        per_epoch = self.per_epoch(index) or 1
        if not (0 < lr < track.peak and track.last_change < HOLD_BEFORE * total and track.gap <= per_epoch):
            track.judged = track.last_change  # a hold the run allows: judged again after the next change
            return
        track.done = True
        self.warn(
            f"The lr of {name} has held at {lr:.6g} ({lr / track.peak:.1%} of its peak {track.peak:.6g}) since"
            f" optimizer step {track.last_change} of the run's {total}, after decaying at a steady rhythm: the decay"
            f" is sized for a shorter run ({track.last_change / total:.0%} of this one), for example counted in"
            " batches while the run counts optimizer steps (accumulation), or in a length the run does not have."
            " Size it with the run's optimizer steps (`self.trainer.estimated_stepping_batches`). If the hold is"
            " deliberate, silence this with `warnings.filterwarnings('ignore', '.*has held at')`."
        )


class PostHook:
    """An optimizer step post-hook that counts the optimizer's steps and tells a `Watch` (if any) of each."""

    __slots__ = ("watch", "index", "count")

    def __init__(self, watch: Optional[Watch], index: int) -> None:
        self.watch, self.index, self.count = watch, index, 0

    def __call__(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self.count += 1
        if self.watch is not None:
            self.watch.observe(self.index)


def watch_for(trainer: Any, pl_module: Any, optimizers: Sequence[Any], names: Sequence[str], manual: bool,
              warn: Callable[[str], None], before: Optional[Sequence[int]] = None) -> Watch:
    """A `Watch` over `optimizers` for this fit: the run's length per optimizer from the loop model (under automatic
    optimization and the alternating mixin), or, under manual optimization, from each optimizer's steps per batch so
    far and the batches the run will train (``max_steps`` counts every optimizer's steps there). `before`: each
    optimizer's steps over the run before this fit, when the caller knows them (`SchedulerCadenceCheck`'s restored
    counts); else the alternating mixin's counts, or ``trainer.global_step`` for a single optimizer."""
    setup = getattr(pl_module, "optimizer_setup", None)
    loop = getattr(pl_module, "training_cadence", None)
    run = None
    if not manual or isinstance(loop, cadence.Loop):
        run = run_of(setup if isinstance(setup, OptimizerSetup) else OptimizerSetup(tuple(optimizers)), trainer,
                     loop if isinstance(loop, cadence.Loop) else None)
    first_batch = trainer.fit_loop.epoch_loop.total_batch_idx + 1  # batches trained before this fit

    def rate(index: int) -> Optional[float]:
        seen = trainer.fit_loop.epoch_loop.total_batch_idx + 1 - first_batch
        track = watch.tracks[index]
        return (track.steps - track.first) / seen if seen > 0 else None

    def total(index: int) -> Optional[int]:
        if run is not None:
            return run.optimizer_steps[index] if index < len(run.optimizer_steps) else None
        per_batch = rate(index)
        batches = trainer.num_training_batches
        if not per_batch or not isinstance(batches, int) or trainer.max_epochs in (None, -1) and trainer.max_steps < 0:
            return None
        planned = batches * trainer.max_epochs if trainer.max_epochs not in (None, -1) else math.inf
        everyone = sum(rate(i) or 0 for i in range(len(optimizers)))
        if trainer.max_steps > 0 and everyone:
            planned = min(planned, trainer.max_steps / everyone)  # global_step counts every optimizer's step
        return int(planned * per_batch) if math.isfinite(planned) else None

    def per_epoch(index: int) -> Optional[int]:
        if run is not None:
            return run.optimizer_steps_per_epoch[index] if index < len(run.optimizer_steps_per_epoch) else None
        per_batch, batches = rate(index), trainer.num_training_batches
        return int(per_batch * batches) if per_batch and isinstance(batches, int) else None

    watch = Watch(optimizers, names, total, per_epoch, warn, skip=tuple(pl_module.__dict__.get(WARNED_KEY, ())),
                  before=_steps_before(trainer, pl_module, len(optimizers), before))
    return watch


def _steps_before(trainer: Any, pl_module: Any, count: int, before: Optional[Sequence[int]]) -> list[int]:
    """Each optimizer's steps over the run before this fit (0 each when not known: several optimizers under manual
    optimization, where ``global_step`` counts them all, without a `SchedulerCadenceCheck`'s counts)."""
    if before is not None and len(before) == count:
        return [int(n) for n in before]
    counts = getattr(pl_module, "optimizer_step_counts", None)  # the alternating mixin's, restored
    if isinstance(counts, tuple) and len(counts) == count:
        return [int(n) for n in counts]
    return [int(trainer.global_step)] if count == 1 else [0] * count
