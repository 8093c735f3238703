"""What `SchedulerCadenceCheck` counts: every scheduler's real steps, and what the cadence model says they should be.

The expectation comes from the library's one model of the training loop (`lightning_optim_recipes.cadence`), run in
lockstep with training by effects that only count. Per training mode:

==================  ===============================================================================================
mode                expected ``scheduler.step()`` calls
==================  ===============================================================================================
automatic           The model's ``automatic`` loop (Lightning 2.x's rule): 'step' after an optimizer step on batch
                    ``b`` when ``(b + 1) % f == 0``; 'epoch' at the end of every ``f``-th epoch that ran fully.
alternating         The module's own loop (``training_cadence`` of `AlternatingOptimizersMixin`): 'step' after every
                    ``f``-th step of its optimizer (a turn that closed its window), 'epoch' at the end of every
                    ``f``-th epoch; no optimizer steps more than its turns allow.
manual              What the module declared ('interval'/'frequency' written in the scheduler dict; Lightning ignores
                    them, so they are the module's intent): 'step' once every ``f`` steps of its own optimizer,
                    counted over the run or per epoch; 'epoch' once at the end of every ``f``-th epoch in which its
                    optimizer stepped. A scheduler without a declared cadence is only required to step at all.
==================  ===============================================================================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Callable, Optional

from torch.optim.lr_scheduler import LRScheduler

from lightning_optim_recipes import cadence
from lightning_optim_recipes.resume.state import moved_by
from lightning_optim_recipes.validation import SchedulerSpec


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


#: What the model says happens (`cadence.Counter`): steps per optimizer and per scheduler, batches per optimizer.
Expected = cadence.Counter


@dataclasses.dataclass
class Tracked:
    """One scheduler: its cadence, its logged name, how to read its step count, and the manual-mode sums."""

    spec: SchedulerSpec
    name: str
    read: Optional[Callable[[], int]]
    base: int = 0
    reported: bool = False
    # manual mode: per-epoch floor/ceil sums of its optimizer's steps / f; epochs ended (all, full, with its
    # optimizer stepping)
    floor_sum: int = 0
    ceil_sum: int = 0
    ended_epochs: int = 0
    full_epochs: int = 0
    active_epochs: int = 0

    def actual(self) -> Optional[int]:
        return None if self.read is None else self.read() - self.base


_SAVED = ("floor_sum", "ceil_sum", "ended_epochs", "full_epochs", "active_epochs", "reported")


class Ledger:
    """The counts of one fit (continued across resumes) and the expected range of every scheduler's count."""

    def __init__(self, mode: str, loop: Optional[cadence.Loop], tracked: list[Tracked], optimizers: int) -> None:
        self.mode, self.loop, self.tracked = mode, loop, tracked
        self.expected = Expected(optimizers, len(tracked))
        self.state = cadence.LoopState.fresh(optimizers)
        self.real: list[int] = [0] * optimizers  # optimizer steps over the run (post-hook counters add to it)
        self.epoch_start: list[int] = [0] * optimizers
        self.custom_step = bool(loop is not None and loop.custom_step)

    # ------------------------------------------------------------------------------------------ advancing

    def batch_end(self, batch_idx: int, last_batch: bool) -> None:
        """The batch is over: advance the model (automatic and alternating modes)."""
        if self.loop is not None:
            cadence.run_batch(self.loop, self.state, batch_idx, last_batch, self.expected)
            if last_batch and self.mode == "alternating":  # the mixin steps its epoch schedulers on the last batch
                cadence.run_epoch_end(self.loop, self._epoch, self.expected, plateau=False)

    def epoch_end(self, epoch: int, full: bool, counts: Sequence[int]) -> None:
        """Epoch `epoch` has ended (`full`: all its batches ran); `counts`: optimizer steps over the run now."""
        if self.loop is not None:
            if self.mode == "automatic" and full:
                cadence.run_epoch_end(self.loop, epoch, self.expected)
            elif self.mode == "alternating":
                cadence.run_epoch_end(self.loop, epoch, self.expected, plateau=True)
        for tracked in self.tracked:
            spec = tracked.spec
            if spec.interval == "epoch" and (epoch + 1) % spec.frequency == 0:
                tracked.ended_epochs += 1
                tracked.full_epochs += full
                tracked.active_epochs += counts[spec.optimizer_index] > self.epoch_start[spec.optimizer_index]
            elif spec.interval == "step":
                steps = counts[spec.optimizer_index] - self.epoch_start[spec.optimizer_index]
                tracked.floor_sum += steps // spec.frequency
                tracked.ceil_sum += -(-steps // spec.frequency)
        self.epoch_start = list(counts)

    _epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self._epoch = epoch

    # ------------------------------------------------------------------------------------------ expecting

    def expected_range(self, tracked: Tracked, counts: Sequence[int], k: Optional[int] = None) -> tuple[int, int]:
        """The range of step counts `tracked` (scheduler `k`) may have by now (`counts`: optimizer steps over the
        run)."""
        spec = tracked.spec
        if k is None:
            k = self.tracked.index(tracked)
        if self.mode == "automatic":
            low = high = self.expected.scheduler_steps[k]
        elif self.mode == "alternating":
            if spec.interval == "step":
                closed = self.expected.optimizer_steps if self.custom_step else counts
                low = high = closed[spec.optimizer_index] // spec.frequency
            else:
                low = high = self.expected.scheduler_steps[k]
        elif spec.interval == "epoch":
            low, high = (tracked.active_epochs, tracked.ended_epochs) if spec.declared else (0, tracked.ended_epochs)
        elif not spec.declared:
            low, high = 0, 1 << 62
        else:  # manual 'step': every f-th step of its optimizer, counted over the run or per epoch
            f, steps = spec.frequency, counts[spec.optimizer_index]
            current = steps - self.epoch_start[spec.optimizer_index]
            low = min(steps // f, tracked.floor_sum + current // f)
            high = max(-(-steps // f), tracked.ceil_sum + -(-current // f))
        if spec.reduce_on_plateau and not spec.strict:  # Lightning skips it while its metric is missing
            low = 0
        return low, high

    def optimizer_expected(self, index: int) -> Optional[int]:
        """What optimizer `index` should have stepped by now (None when the module decides)."""
        if self.mode == "manual" or self.custom_step:
            return None
        return self.expected.optimizer_steps[index]

    # ------------------------------------------------------------------------------------------ checkpoints

    def state_dict(self, counts: Sequence[int]) -> dict[str, Any]:
        return {
            "scheduler_steps": [t.actual() for t in self.tracked],
            "trackers": [{key: getattr(t, key) for key in _SAVED} for t in self.tracked],
            "optimizer_steps": list(counts),
            "epoch_start_counts": list(self.epoch_start),
            "model": {"position": self.state.position, "windows": list(self.state.windows),
                      "steps": list(self.state.steps), "expected_optimizer": list(self.expected.optimizer_steps),
                      "expected_scheduler": list(self.expected.scheduler_steps),
                      "active_batches": list(self.expected.active_batches)},
        }

    def load(self, saved: dict[str, Any]) -> bool:
        """Continue the counts of the interrupted fit; False when the setup differs (then check the fit alone)."""
        if len(saved["trackers"]) != len(self.tracked) or len(saved["optimizer_steps"]) != len(self.real):
            return False
        # resume="recipe" placed a scheduler whose cadence changed where the new cadence puts it: count from there
        moved = [moved_by(tracked.spec.scheduler) for tracked in self.tracked]
        for tracked, steps, values, shift in zip(self.tracked, saved["scheduler_steps"], saved["trackers"], moved):
            if tracked.read is not None and steps is not None:
                tracked.base = tracked.read() - steps - shift
            for key, value in values.items():
                setattr(tracked, key, value)
        self.real = list(saved["optimizer_steps"])
        self.epoch_start = list(saved["epoch_start_counts"])
        model = saved["model"]
        self.state = cadence.LoopState(model["position"], list(model["windows"]), list(model["steps"]))
        self.expected.optimizer_steps = list(model["expected_optimizer"])
        self.expected.scheduler_steps = [steps + shift for steps, shift in zip(model["expected_scheduler"], moved)]
        self.expected.active_batches = list(model["active_batches"])
        return True
