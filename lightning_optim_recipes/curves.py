"""The learning rate each optimizer will get over a whole run, before training, summed up for the fit checks.

The schedulers are replayed on copies (`shadow_setup`): each optimizer is replaced by a stand-in that holds copies of
its param groups and no parameters, and each scheduler is deep-copied onto it, so nothing the run will use moves.
Two ways give the same `Curve`:

* **step by step** (`replay_curves`): the loop model and the scheduler copies run as `preview_schedule` runs them
  (`trajectory.Replay`: the module's ``lr_scheduler_step`` included), every optimizer step observed. It is exact for
  any scheduler, and bounded in time (`TIME_BUDGET`): past it, the curve covers the steps replayed so far.
* **by formula**, for a long run whose optimizers have one scheduler each whose lr is a function of its step count
  (``LambdaLR``, and so transformers' schedules and the library's; torch's classes with a closed form; ``OneCycleLR``,
  ``CyclicLR``; a ``SequentialLR`` of those): the lr is evaluated at every scheduler step of a short run, else at a few thousand of them, dense
  at the start, and the edges the checks need (where the lr reaches 0, where it last changes) are found by bisection.
  A million optimizer steps with ten param groups take milliseconds.

A `Curve` says, per optimizer: the steps at which every param group trains at lr 0, the peak, whether the lr is still
rising at the end, and where it last changed (a decay that ends and holds).
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import functools
import logging
import time
import warnings
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Callable, Optional

import torch
from torch.optim.lr_scheduler import CyclicLR, LambdaLR, OneCycleLR, SequentialLR

from lightning_optim_recipes import cadence
from lightning_optim_recipes.trajectory import Replay
from lightning_optim_recipes.validation import OptimizerSetup, SchedulerSpec

__all__ = ["Curve", "TIME_BUDGET", "replay_curves", "shadow_setup"]

#: Seconds a step-by-step replay may take before it stops (the checks then judge the steps replayed).
TIME_BUDGET = 2.0
#: Scheduler steps evaluated one by one by formula; longer runs are sampled.
EXACT_LIMIT = 20_000
#: Samples of a long run: the first `DENSE_START` scheduler steps one by one, then this many spread evenly.
SAMPLES = 4_000
DENSE_START = 1_000
#: Consecutive changing steps before the last change that make a decay "continuous" (not a milestone).
CONTINUOUS = 5
#: An lr this small a share of its group's base lr is 0 (a recursive schedule that reaches 0 lands near it).
ZERO = 1e-12

log = logging.getLogger("lightning_optim_recipes")
_STEP_BEFORE_OPTIMIZER = r"Detected call of `lr_scheduler\.step\(\)` before `optimizer\.step\(\)`"


@dataclasses.dataclass
class Curve:
    """What one optimizer's lr does over the run, for the fit checks.

    Attributes:
        optimizer: its index.
        total: the optimizer steps of the run.
        checked: the steps replayed (``total`` unless the time budget stopped a step-by-step replay).
        zero_steps: steps strictly between the first and the last at which every param group whose lr is not 0 at
            the start (its base lr) trains at lr 0; `zero_first`, `zero_last`: the first and last of them.
        first, last, peak: the lr of the representative group (the first with a non-zero base lr) at step 0, at the
            last step checked, and its maximum; `peak_step`: where the maximum is first reached.
        rising_since: the step from which the lr has not fallen, when it has risen since and is highest at the end
            (a warm-up that has not ended), else None; `rising_from`: the lr there.
        last_change: the last step whose lr differs from the step before (0: never changes); `continuous`: whether
            the lr changed at each of the `CONTINUOUS` steps before it (a decay, not a milestone); `falling`: whether
            that last change lowered the lr.
        beyond: for a curve by formula, the lr the schedule reaches later (None: not evaluated).
    """

    optimizer: int
    total: int
    checked: int = 0
    zero_steps: int = 0
    zero_first: Optional[int] = None
    zero_last: Optional[int] = None
    first: float = 0.0
    last: float = 0.0
    peak: float = 0.0
    peak_step: int = 0
    rising_since: Optional[int] = None
    rising_from: float = 0.0
    last_change: int = 0
    continuous: bool = False
    falling: bool = False
    beyond: Optional[float] = None

    @property
    def complete(self) -> bool:
        """Whether the whole run was checked."""
        return self.checked >= self.total


# ----------------------------------------------------------------------------------------------------- copies


class _Shadow(torch.optim.Optimizer):
    """A stand-in for an optimizer: copies of its param groups (hyper-parameters only), no parameters, no state."""

    def __init__(self, optimizer: Any) -> None:  # noqa: D107 - Optimizer.__init__ wants parameters: not called
        self.defaults = dict(getattr(optimizer, "defaults", {}))
        self.param_groups = [{**{k: v for k, v in group.items() if k != "params"}, "params": []}
                             for group in optimizer.param_groups]
        self.state = defaultdict(dict)
        self._optimizer_step_pre_hooks: dict[int, Any] = {}
        self._optimizer_step_post_hooks: dict[int, Any] = {}

    _opt_called = True  # what torch's schedulers look for before they warn that the optimizer never stepped

    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        return None


_Shadow.step._wrapped_by_lr_sched = True  # type: ignore[attr-defined]  # as torch's schedulers mark it


def shadow_setup(setup: OptimizerSetup) -> Optional[OptimizerSetup]:
    """`setup` with every optimizer replaced by a `_Shadow` and every scheduler deep-copied onto it (None when a
    scheduler cannot be copied: it is then not checked)."""
    shadows: list[_Shadow] = []
    memo: dict[int, Any] = {}
    for optimizer in setup.optimizers:
        raw = getattr(optimizer, "_optimizer", optimizer)
        shadow = _Shadow(raw)
        shadows.append(shadow)
        memo[id(raw)] = memo[id(optimizer)] = shadow
        for group, copied in zip(raw.param_groups, shadow.param_groups):
            memo[id(group)] = copied
    specs = []
    for spec in setup.schedulers:
        try:
            scheduler = copy.deepcopy(spec.scheduler, dict(memo))
        except Exception as err:  # noqa: BLE001 - a user's scheduler that cannot be copied: not checked
            log.debug("The %s cannot be copied to replay it (%s): not checked before training.",
                      type(spec.scheduler).__name__, err)
            return None
        specs.append(dataclasses.replace(spec, scheduler=scheduler))
    return OptimizerSetup(tuple(shadows), tuple(specs), setup.frequencies)


# ------------------------------------------------------------------------------------------- step by step


class _Observer(Replay):
    """`Replay` effects that fold every observed step into each optimizer's `Curve`."""

    def __init__(self, model: Any, setup: OptimizerSetup, trainer: Any, curves: list[Curve],
                 run_optimizer_step: bool = False) -> None:
        super().__init__(model, setup, trainer, run_optimizer_step)
        self.curves = curves
        self.groups = [o.param_groups for o in setup.optimizers]
        self.active = [[g for g, group in enumerate(groups) if _base(group) > 0] for groups in self.groups]
        self.floors = [[_base(group) * ZERO for group in groups] for groups in self.groups]
        self.rep = [active[0] if active else 0 for active in self.active]
        self.seen = [0] * len(curves)
        self.previous: list[Optional[float]] = [None] * len(curves)
        self.gap = [0] * len(curves)  # steps between the last two changes
        self.chain = [0] * len(curves)  # changes in a row, each as far from the one before as the last two
        self.widest = [0] * len(curves)  # the widest gap between changes since the stretch without a fall began
        self.since = [0] * len(curves)  # the start of the current stretch without a fall
        self.since_lr = [0.0] * len(curves)

    def observe(self, index: int, batch_idx: int) -> None:
        curve, groups, s = self.curves[index], self.groups[index], self.seen[index]
        self.seen[index] = s + 1
        if s >= curve.total:
            return
        curve.checked = s + 1
        floors = self.floors[index]
        if 0 < s < curve.total - 1 and self.active[index] and all(groups[g]["lr"] <= floors[g]
                                                                  for g in self.active[index]):
            curve.zero_steps += 1
            curve.zero_first = s if curve.zero_first is None else curve.zero_first
            curve.zero_last = s
        lr = float(groups[self.rep[index]]["lr"]) if groups else 0.0
        previous = self.previous[index]
        if previous is None:
            curve.first = curve.peak = self.since_lr[index] = lr
        elif lr != previous:
            gap = s - curve.last_change
            curve.continuous = self.chain[index] >= CONTINUOUS
            self.chain[index] = self.chain[index] + 1 if gap == self.gap[index] else 1
            self.gap[index], curve.last_change, curve.falling = gap, s, lr < previous
            if lr < previous:
                self.since[index], self.since_lr[index], self.widest[index] = s, lr, 0
            else:
                self.widest[index] = max(self.widest[index], gap)
        if lr > curve.peak * (1 + ZERO):  # a peak that formulas and recursions reach a rounding apart
            curve.peak, curve.peak_step = lr, s
        curve.last = lr
        self.previous[index] = lr

    def finish(self) -> None:
        """Decide, for each complete curve, whether its lr is still rising at the end: highest at the end, risen
        since its last fall, and no longer at the end without a change than between the changes of its rise."""
        for index, curve in enumerate(self.curves):
            flat = curve.checked - 1 - curve.last_change
            if curve.complete and curve.last >= curve.peak and curve.last > self.since_lr[index] and \
                    curve.last_change > 0 and flat < self.widest[index]:
                curve.rising_since, curve.rising_from = self.since[index], self.since_lr[index]


def _base(group: dict[str, Any]) -> float:
    """A param group's lr before its scheduler (torch keeps it as ``initial_lr``)."""
    return float(group.get("initial_lr", group.get("lr", 0.0)) or 0.0)


def replay_curves(setup: OptimizerSetup, loop: cadence.Loop, batches: int, totals: Sequence[int], model: Any,
                  trainer: Any, by_formula: bool = True, run_optimizer_step: bool = False) -> Optional[list[Curve]]:
    """Each optimizer's `Curve` over a run of `batches` batches per epoch whose optimizers take `totals` steps, on
    copies of `setup`'s schedulers (`shadow_setup`); None when they cannot be copied.

    `trainer` is a stand-in whose ``global_step`` and ``current_epoch`` the replay advances (the module's hooks read
    them through `model`, a copy of the module or a view of it that uses that stand-in). With `by_formula`, a long
    run whose schedulers allow it is evaluated by formula (see the module docstring). With `run_optimizer_step`,
    the module's own ``optimizer_step`` runs at each step (it may set lrs by hand)."""
    shadow = shadow_setup(setup)
    if shadow is None:
        return None
    curves = [Curve(index, int(total)) for index, total in enumerate(totals)]
    if by_formula and loop.mode == "automatic" and _by_formula(shadow, loop, batches, curves, model):
        return curves
    observer = _Observer(model, shadow, trainer, curves, run_optimizer_step)
    state = cadence.LoopState.fresh(loop.optimizers)
    deadline = time.perf_counter() + TIME_BUDGET
    done = lambda: all(s >= c.total for s, c in zip(observer.seen, curves))  # noqa: E731
    t, epoch = 0, 0
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _STEP_BEFORE_OPTIMIZER)
        while not done():
            epoch, batch_idx = divmod(t, batches)
            trainer.current_epoch = observer.epoch = epoch
            last = batch_idx == batches - 1
            cadence.run_batch(loop, state, batch_idx, last, observer)
            if last:
                cadence.run_epoch_end(loop, epoch, observer)
            t += 1
            if t % 512 == 0 and time.perf_counter() > deadline:
                log.debug("The fit checks replayed %d of the run's batches within %.1f s; the rest is not checked.",
                          t, TIME_BUDGET)
                break
    observer.finish()
    return curves


# ---------------------------------------------------------------------------------------------- by formula


def _lr_function(scheduler: Any) -> Optional[Callable[[int], list[float]]]:
    """The lrs of `scheduler`'s param groups after `n` of its steps, as a function of `n` (None: the scheduler must be
    stepped)."""
    cls = type(scheduler)
    if isinstance(scheduler, LambdaLR) and cls.get_lr is LambdaLR.get_lr:
        lambdas, bases = scheduler.lr_lambdas, list(scheduler.base_lrs)

        def lambda_lrs(n: int) -> list[float]:
            values: dict[int, float] = {}
            out: list[float] = []
            for function, base in zip(lambdas, bases):
                value = values.get(id(function))
                if value is None:
                    value = values[id(function)] = float(function(n))
                out.append(float(base) * value)
            return out

        return lambda_lrs
    if cls is SequentialLR:  # child i from milestone i - 1 on, restarted there at its own count 0
        parts = [_lr_function(child) for child in scheduler._schedulers]
        milestones = list(scheduler._milestones)
        if any(part is None for part in parts):
            return None

        def sequential_lrs(n: int) -> list[float]:
            index = bisect.bisect_right(milestones, n)
            return parts[index](n - (milestones[index - 1] if index else 0))  # type: ignore[misc]

        return sequential_lrs
    closed = getattr(cls, "_get_closed_form_lr", None)
    if closed is not None and cls.__module__.startswith("torch.") or isinstance(scheduler, (OneCycleLR, CyclicLR)):
        method = scheduler._get_closed_form_lr if closed is not None else scheduler.get_lr

        def closed_lrs(n: int) -> list[float]:
            scheduler.last_epoch = n
            scheduler._get_lr_called_within_step = True  # get_lr outside step() warns otherwise
            return [float(v) for v in method()]

        return closed_lrs
    return None


def _by_formula(shadow: OptimizerSetup, loop: cadence.Loop, batches: int, curves: list[Curve], model: Any) -> bool:
    """Fill `curves` by formula when every optimizer has at most one scheduler with a function of its step count and
    the module steps them as Lightning does; False otherwise (nothing filled)."""
    if model is not None and _overrides_stepping(model):
        return False
    by_optimizer: dict[int, SchedulerSpec] = {}
    for spec in shadow.schedulers:
        if spec.reduce_on_plateau or spec.optimizer_index in by_optimizer:
            return False
        by_optimizer[spec.optimizer_index] = spec
    functions = {i: _lr_function(spec.scheduler) for i, spec in by_optimizer.items()}
    if any(f is None for f in functions.values()) or sum(c.total for c in curves) <= EXACT_LIMIT:
        return False  # a short run is replayed step by step: exactly what training computes
    counts = _Counts(loop, batches)
    for index, curve in enumerate(curves):
        groups = shadow.optimizers[index].param_groups
        function = functions.get(index)
        if function is None:  # no scheduler: a constant lr
            _fold_constant(curve, groups)
            continue
        k = shadow.schedulers.index(by_optimizer[index])
        _fold_function(curve, groups, function, functools.partial(counts.before, k),
                       functools.partial(counts.first_step, k, total=curve.total))
    return True


def _overrides_stepping(model: Any) -> bool:
    from lightning_optim_recipes import hooks  # noqa: PLC0415 - same layer, imported where used

    return hooks.overridden(model, "lr_scheduler_step") or hooks.overridden(model, "optimizer_step")


class _Counts:
    """Under automatic optimization, how many times scheduler `k` has stepped before optimizer step `s`, from one
    epoch of the loop model (every epoch steps alike)."""

    def __init__(self, loop: cadence.Loop, batches: int) -> None:
        self.loop = loop
        counter = _Within(len(loop.schedulers))
        state = cadence.LoopState.fresh(loop.optimizers)
        for batch_idx in range(batches):
            cadence.run_batch(loop, state, batch_idx, batch_idx == batches - 1, counter)
        self.per_epoch = max(len(counter.before), 1)  # optimizer steps per epoch
        self.in_epoch = counter.before  # per step of the epoch: each scheduler's steps before it in the epoch
        self.epoch_total = counter.counts  # each 'step' scheduler's steps in one epoch

    def before(self, k: int, s: int) -> int:
        epoch, j = divmod(s, self.per_epoch)
        timing = self.loop.schedulers[k]
        if timing.interval == "epoch":
            return epoch // timing.frequency
        return epoch * self.epoch_total[k] + (self.in_epoch[j][k] if j < len(self.in_epoch) else 0)

    def first_step(self, k: int, n: int, *, total: int) -> int:
        """The first optimizer step (< `total`) that runs after `n` steps of scheduler `k` (`total` if none)."""
        low, high = 0, total
        while low < high:
            middle = (low + high) // 2
            if self.before(k, middle) >= n:
                high = middle
            else:
                low = middle + 1
        return low


class _Within:
    """`cadence.Effects` that note, at each optimizer step of one epoch, each scheduler's steps before it."""

    def __init__(self, schedulers: int) -> None:
        self.counts = [0] * schedulers
        self.before: list[tuple[int, ...]] = []

    def train(self, index: int, batch_idx: int, window: int, closes: bool) -> bool:
        return True

    def step(self, index: int, batch_idx: int, in_turn: bool) -> None:
        self.before.append(tuple(self.counts))

    def step_scheduler(self, index: int) -> None:
        self.counts[index] += 1


def _fold_constant(curve: Curve, groups: Sequence[dict[str, Any]]) -> None:
    """An optimizer without a scheduler: its lrs stay as built."""
    active = [g for g, group in enumerate(groups) if _base(group) > 0]
    lr = float(groups[active[0] if active else 0]["lr"]) if groups else 0.0
    curve.checked, curve.first = curve.total, lr
    curve.last = curve.peak = lr


def _fold_function(curve: Curve, groups: Sequence[dict[str, Any]], function: Callable[[int], list[float]],
                   before: Callable[[int], int], first_step: Callable[[int], int]) -> None:
    """Fill `curve` from the lrs as a function of the scheduler's step count `n` (`before(s)`: its count at optimizer
    step `s`; `first_step(n)`: the first optimizer step at count `n`), evaluating only what the checks need."""
    total = curve.total
    end = before(total - 1)
    active = [g for g, group in enumerate(groups) if _base(group) > 0]
    floors = [_base(group) * ZERO for group in groups]
    rep = active[0] if active else 0
    cache: dict[int, list[float]] = {}

    def lrs(n: int) -> list[float]:
        value = cache.get(n)
        if value is None:
            value = cache[n] = function(n)
        return value

    def zero(n: int) -> bool:
        values = lrs(n)
        return bool(active) and all(values[g] <= floors[g] for g in active)

    def rep_lr(n: int) -> float:
        return lrs(n)[rep]

    points = _sample_points(end)
    # where every active group trains at lr 0: runs of zero counts, their edges found by bisection
    runs: list[tuple[int, int]] = []
    start: Optional[int] = 0 if zero(points[0]) else None
    for a, b in zip(points, points[1:]):
        if zero(a) == zero(b):
            continue
        edge = _bisect_first(a, b, lambda n: zero(n) != zero(a))
        if start is None:
            start = edge
        else:
            runs.append((start, edge - 1))
            start = None
    if start is not None:
        runs.append((start, end))
    for low, high in runs:
        first, stop = max(first_step(low), 1), min(first_step(high + 1), total - 1)
        if stop > first:
            curve.zero_steps += stop - first
            curve.zero_first = first if curve.zero_first is None else curve.zero_first
            curve.zero_last = stop - 1
    values = [(n, rep_lr(n)) for n in points]
    curve.checked, curve.first, curve.last = total, rep_lr(0), rep_lr(end)
    # the peak: the best sample, then every count between its neighbouring samples (a peak falls between samples)
    best = max(range(len(points)), key=lambda i: values[i][1])
    around = range(points[max(best - 1, 0)], points[min(best + 1, len(points) - 1)] + 1)
    curve.peak = max(max(rep_lr(n) for n in around), max(value for _, value in values))
    curve.peak_step = first_step(next(n for n in sorted(set(points) | set(around))
                                      if rep_lr(n) * (1 + ZERO) >= curve.peak))
    # the last change: the first count from which the lr stays at its final value
    final = curve.last
    changed = [n for n, value in values if value != final]
    if changed:
        after = next(n for n in points if n > changed[-1])
        settle = _bisect_first(changed[-1], after, lambda n: rep_lr(n) == final)
        curve.last_change = first_step(settle)
        curve.falling = final < rep_lr(settle - 1)
        curve.continuous = settle > CONTINUOUS and all(
            rep_lr(settle - k) != rep_lr(settle - k - 1) for k in range(1, CONTINUOUS + 1))
    if end > 0 and curve.last > rep_lr(end - 1) and curve.last >= curve.peak:  # still rising at the last count
        falls = [b for a, b in zip(points, points[1:]) if rep_lr(b) < rep_lr(a)]
        curve.rising_since = first_step(falls[-1]) if falls else 0
        curve.rising_from = rep_lr(falls[-1]) if falls else curve.first
        curve.beyond = _beyond(rep_lr, end)


def _sample_points(end: int) -> list[int]:
    """The scheduler counts evaluated for a run whose last optimizer step runs at count `end`: all of them when few,
    else the first `DENSE_START`, `SAMPLES` spread evenly, and the last few."""
    if end < max(EXACT_LIMIT, DENSE_START):
        return list(range(end + 1))
    spread = {DENSE_START + round(i * (end - DENSE_START) / SAMPLES) for i in range(SAMPLES + 1)}
    tail = {end - k for k in range(CONTINUOUS + 2)}
    return sorted(n for n in set(range(DENSE_START)) | spread | tail if 0 <= n <= end)


def _bisect_first(low: int, high: int, switched: Callable[[int], bool]) -> int:
    """The first count in (`low`, `high`] at which `switched` holds (it holds at `high`)."""
    while high - low > 1:
        middle = (low + high) // 2
        if switched(middle):
            high = middle
        else:
            low = middle
    return high


def _beyond(rep_lr: Callable[[int], float], end: int) -> float:
    """The highest lr the schedule reaches after count `end`, looking up to 2**12 times further."""
    best, n = rep_lr(end), max(end, 1)
    for _ in range(12):
        n *= 2
        value = rep_lr(n)
        if value <= best:
            break
        best = value
    return best
