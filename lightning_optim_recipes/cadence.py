"""The one model of the training loop's cadence: which optimizer runs on which batch, when each scheduler steps.

Pure functions over a `Loop` (what was configured) and a `LoopState` (where the run stands). Three parts of the
library derive from it, so they can never disagree: `AlternatingOptimizersMixin` runs it with real effects (training
steps, optimizer and scheduler steps), `preview_schedule` runs it with effects that only record learning rates, and
`SchedulerCadenceCheck` runs it with effects that only count, to know what each scheduler should have done.

==========================  ===========================================================================================
What                        Rule
==========================  ===========================================================================================
active optimizers           ``automatic``: optimizer 0 on every batch. ``alternating`` with frequencies ``f``: exactly
                            one, block ``p % sum(f)`` of the cycle, ``p`` the within-epoch ``batch_idx`` (Lightning
                            1.9) or the run-wide batch count (``run_wide``); without frequencies, every optimizer.
accumulation ``A``          An optimizer steps when ``A`` of its own active batches have accumulated, and on the
                            epoch's last batch whatever its window holds. Under ``automatic`` this is Lightning's
                            ``(batch_idx + 1) % A == 0`` or last batch.
'step' scheduler, freq f    ``automatic``: after an optimizer step on batch ``b`` with ``(b + 1) % f == 0`` (Lightning
                            2.x counts dataloader batches). ``alternating``: after every ``f``-th step of its own
                            optimizer, counted over the run.
'epoch' scheduler, freq f   At the end of epoch ``e`` when ``(e + 1) % f == 0`` (both modes).
==========================  ===========================================================================================

Example:
    >>> loop = Loop("alternating", optimizers=2, frequencies=(2, 1),
    ...             schedulers=(Timing(optimizer=1, interval="step", frequency=1),))
    >>> state, log = LoopState.fresh(2), Recorder()
    >>> for batch_idx in range(6):
    ...     run_batch(loop, state, batch_idx, last_batch=batch_idx == 5, effects=log)
    >>> log.events
    ['opt0', 'opt0', 'opt1', 'sched0', 'opt0', 'opt0', 'opt1', 'sched0']
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import itertools
from collections.abc import Sequence
from typing import Any, Optional, Protocol

__all__ = [
    "Effects",
    "Loop",
    "LoopState",
    "Recorder",
    "Timing",
    "active_optimizer",
    "active_optimizers",
    "automatic_stepping_batches",
    "epoch_schedulers_due",
    "frequency_under_accumulation",
    "never_active",
    "run_batch",
    "run_epoch_end",
    "step_schedulers_due",
]

MODES = ("automatic", "alternating")


@dataclasses.dataclass(frozen=True)
class Timing:
    """When one scheduler steps: after steps of optimizer `optimizer` ('step') or at epoch ends ('epoch')."""

    optimizer: int
    interval: str = "epoch"
    frequency: int = 1
    plateau: bool = False


@dataclasses.dataclass(frozen=True)
class Loop:
    """What the training loop was configured with.

    Attributes:
        mode: ``"automatic"`` (Lightning 2.x, one optimizer) or ``"alternating"`` (`AlternatingOptimizersMixin`).
        optimizers: how many optimizers.
        schedulers: one `Timing` per scheduler.
        accumulate: gradient accumulation, one value per optimizer (a single value applies to all).
        frequencies: the alternation's consecutive batches per optimizer, or None (every optimizer every batch).
        run_wide: the alternation cycle runs on across epochs instead of restarting at each.
        order: the optimizers in the cycle's order (default: their own order).
        custom_step: the module's own ``optimizer_step`` decides how often an optimizer steps in its turn; the
            model then counts the turns that close a window (what schedulers follow).
    """

    mode: str
    optimizers: int
    schedulers: tuple[Timing, ...] = ()
    accumulate: tuple[int, ...] = (1,)
    frequencies: Optional[tuple[int, ...]] = None
    run_wide: bool = False
    order: Optional[tuple[int, ...]] = None
    custom_step: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if len(self.accumulate) == 1 and self.optimizers > 1:
            object.__setattr__(self, "accumulate", self.accumulate * self.optimizers)

    def accumulation(self, index: int) -> int:
        """The accumulation of optimizer `index`."""
        return self.accumulate[index]

    # Facts derived from the fields once (a training loop asks for them on every batch). Cached on the instance:
    # the fields are frozen, so they never go stale.

    @functools.cached_property
    def _every_optimizer(self) -> tuple[int, ...]:
        return tuple(range(self.optimizers))

    @functools.cached_property
    def _cycle(self) -> tuple[tuple[int, ...], tuple[int, ...], int]:
        """The alternation cycle: the end of each block (cumulative frequencies, in the cycle's order), the optimizer
        of each block, and the cycle's length."""
        members = self.order if self.order is not None else tuple(range(len(self.frequencies or ())))
        in_order = [(self.frequencies or ())[i] for i in members]
        return tuple(itertools.accumulate(in_order)), tuple(members), sum(in_order)

    @functools.cached_property
    def _step_schedulers(self) -> dict[int, tuple[tuple[int, int], ...]]:
        """Per optimizer, its 'step' schedulers as (position in `schedulers`, frequency)."""
        by_optimizer: dict[int, list[tuple[int, int]]] = {}
        for k, timing in enumerate(self.schedulers):
            if timing.interval == "step":
                by_optimizer.setdefault(timing.optimizer, []).append((k, timing.frequency))
        return {index: tuple(due) for index, due in by_optimizer.items()}


@dataclasses.dataclass
class LoopState:
    """Where a run stands: batches trained over the run, open accumulation windows, steps per optimizer."""

    position: int
    windows: list[int]
    steps: list[int]

    @classmethod
    def fresh(cls, optimizers: int) -> LoopState:
        """The state before the first batch."""
        return cls(0, [0] * optimizers, [0] * optimizers)


class Effects(Protocol):
    """What running the loop does. The mixin trains; the preview records learning rates; the check counts."""

    def train(self, index: int, batch_idx: int, window: int, closes: bool) -> bool:
        """Optimizer `index`'s turn on this batch: its forward and backward (`window`: backward passes already in
        its accumulation window; `closes`: the window closes with this batch). False when it was skipped."""

    def step(self, index: int, batch_idx: int, in_turn: bool) -> None:
        """Step optimizer `index` (`in_turn`: right after its turn; else a partial window at the epoch's end)."""

    def step_scheduler(self, index: int) -> None:
        """Step scheduler `index` (a position in `Loop.schedulers`)."""


class Recorder:
    """Effects that only write down what happens: ``'opt0'`` for a step of optimizer 0, ``'sched1'`` for scheduler 1."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def train(self, index: int, batch_idx: int, window: int, closes: bool) -> bool:
        return True

    def step(self, index: int, batch_idx: int, in_turn: bool) -> None:
        self.events.append(f"opt{index}")

    def step_scheduler(self, index: int) -> None:
        self.events.append(f"sched{index}")


class Counter:
    """Effects that count what the loop does: steps per optimizer and per scheduler, and the batches each optimizer
    trained on; given `stepped` (one scheduler or None per scheduler), they also step those schedulers.

    Example:
        >>> counter = Counter(optimizers=1, schedulers=1)
        >>> run_epoch_end(Loop("automatic", 1, (Timing(0, "epoch", 1),)), epoch=0, effects=counter)
        >>> counter.scheduler_steps
        [1]
    """

    __slots__ = ("optimizer_steps", "scheduler_steps", "active_batches", "stepped")

    def __init__(self, optimizers: int, schedulers: int, stepped: Optional[Sequence[Any]] = None) -> None:
        self.optimizer_steps = [0] * optimizers
        self.scheduler_steps = [0] * schedulers
        self.active_batches = [0] * optimizers
        self.stepped = stepped

    def train(self, index: int, batch_idx: int, window: int, closes: bool) -> bool:
        self.active_batches[index] += 1
        return True

    def step(self, index: int, batch_idx: int, in_turn: bool) -> None:
        self.optimizer_steps[index] += 1

    def step_scheduler(self, index: int) -> None:
        self.scheduler_steps[index] += 1
        if self.stepped is not None and self.stepped[index] is not None:
            self.stepped[index].step()


# --------------------------------------------------------------------------------------------- pure rules


def active_optimizer(frequencies: Sequence[int], position: int) -> int:
    """The index of the optimizer that runs at cycle `position`.

    Example:
        >>> [active_optimizer((2, 1), p) for p in range(7)]
        [0, 0, 1, 0, 0, 1, 0]
    """
    position %= sum(frequencies)
    for index, frequency in enumerate(frequencies):
        if position < frequency:
            return index
        position -= frequency
    raise AssertionError("unreachable")  # pragma: no cover


def active_optimizers(loop: Loop, position: int, batch_idx: int) -> tuple[int, ...]:
    """The optimizers that train on this batch (`position`: batches over the run before it).

    Example:
        >>> active_optimizers(Loop("alternating", 2, frequencies=(5, 1)), position=11, batch_idx=5)
        (1,)
        >>> active_optimizers(Loop("alternating", 2, frequencies=(5, 1), run_wide=True), position=12, batch_idx=5)
        (0,)
    """
    if loop.mode == "automatic":
        return (0,)
    if loop.frequencies is None:
        return loop._every_optimizer
    ends, members, length = loop._cycle  # `active_optimizer` over the frequencies in the cycle's order
    position = (position if loop.run_wide else batch_idx) % length
    return (members[bisect.bisect_right(ends, position)],)


def step_schedulers_due(loop: Loop, optimizer: int, steps: int, batch_idx: int) -> list[int]:
    """The 'step' schedulers to step right after optimizer `optimizer`'s `steps`-th step, taken on `batch_idx`.

    Example:
        >>> loop = Loop("automatic", 1, schedulers=(Timing(0, "step", 2),))
        >>> step_schedulers_due(loop, 0, steps=3, batch_idx=5), step_schedulers_due(loop, 0, steps=3, batch_idx=4)
        ([0], [])
    """
    count = batch_idx + 1 if loop.mode == "automatic" else steps
    return [k for k, frequency in loop._step_schedulers.get(optimizer, ()) if count % frequency == 0]


def epoch_schedulers_due(loop: Loop, epoch: int, plateau: Optional[bool] = None) -> list[int]:
    """The 'epoch' schedulers to step at the end of `epoch` (only plateau ones, or only others, when given).

    Example:
        >>> loop = Loop("automatic", 1, schedulers=(Timing(0, "epoch", 2), Timing(0, "epoch", 1, plateau=True)))
        >>> epoch_schedulers_due(loop, 1), epoch_schedulers_due(loop, 0, plateau=False)
        ([0, 1], [])
    """
    return [
        k
        for k, timing in enumerate(loop.schedulers)
        if timing.interval == "epoch" and (epoch + 1) % timing.frequency == 0
        and (plateau is None or timing.plateau == plateau)
    ]


# ------------------------------------------------------------------------------------------------- the loop


def run_batch(loop: Loop, state: LoopState, batch_idx: int, last_batch: bool, effects: Effects) -> None:
    """One training batch: the active optimizers' turns, their steps and 'step' schedulers, in the loop's order.

    On the epoch's last batch every open window steps. 'epoch' schedulers are left to `run_epoch_end`.
    """
    active = active_optimizers(loop, state.position, batch_idx)
    state.position += 1
    for index in active:
        window = state.windows[index]
        closes = last_batch or window + 1 >= loop.accumulate[index]
        if not effects.train(index, batch_idx, window, closes):
            continue
        state.windows[index] = window + 1
        if closes:
            _close_window(loop, state, index, batch_idx, effects, in_turn=True)
    if last_batch:
        for index, window in enumerate(state.windows):
            if window:
                _close_window(loop, state, index, batch_idx, effects, in_turn=False)


def _close_window(loop: Loop, state: LoopState, index: int, batch_idx: int, effects: Effects, in_turn: bool) -> None:
    effects.step(index, batch_idx, in_turn)
    state.windows[index] = 0
    state.steps[index] += 1
    for k in step_schedulers_due(loop, index, state.steps[index], batch_idx):
        effects.step_scheduler(k)


def run_epoch_end(loop: Loop, epoch: int, effects: Effects, plateau: Optional[bool] = None) -> None:
    """The end of `epoch`: its 'epoch' schedulers (only plateau ones, or only others, when given)."""
    for k in epoch_schedulers_due(loop, epoch, plateau):
        effects.step_scheduler(k)


# ------------------------------------------------------------------------------------------- derived facts


def never_active(frequencies: Sequence[int], batches: int) -> list[int]:
    """The optimizers that no batch of an epoch of `batches` batches selects when the cycle restarts every epoch.

    Example:
        >>> never_active((5, 1), batches=5)  # n_critic = 5 on 5-batch epochs: the generator never runs
        [1]
    """
    seen = {active_optimizer(frequencies, position) for position in range(min(batches, sum(frequencies)))}
    return [index for index in range(len(frequencies)) if index not in seen]


def automatic_stepping_batches(batches: int, accumulate: int) -> list[int]:
    """The ``batch_idx`` of the batches of an epoch on which Lightning's automatic optimization steps the optimizer.

    Example:
        >>> automatic_stepping_batches(7, 2)
        [1, 3, 5, 6]
    """
    return [b for b in range(batches) if (b + 1) % accumulate == 0 or b == batches - 1]


def frequency_under_accumulation(frequency: int, accumulate: int, batches: int, epochs: int) -> tuple[int, int]:
    """A 'step' scheduler's steps under automatic optimization: (what Lightning 2.x does, every `frequency`-th step).

    Lightning counts `frequency` in dataloader batches within the epoch and checks it only on batches where the
    optimizer steps; a user usually means every `frequency`-th optimizer step, counted over the run.

    Example:
        >>> frequency_under_accumulation(3, 2, batches=7, epochs=3)  # 4 optimizer steps per epoch
        (3, 4)
    """
    stepping = automatic_stepping_batches(batches, accumulate)
    lightning = sum(1 for b in stepping if (b + 1) % frequency == 0)
    return epochs * lightning, epochs * len(stepping) // frequency
