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
manual              The module steps its schedulers where it likes, and Lightning ignores 'interval' and 'frequency'
                    (real modules write 'interval': 'epoch' and step per batch): each scheduler must step at all,
                    by the end of the first epoch in which its optimizer stepped. Whether its length fits how often
                    it steps is the lr watch's to judge, from the lrs it gives.
==================  ===============================================================================================
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import warnings
from collections.abc import Sequence
from typing import Any, Callable, Optional

from torch.optim.lr_scheduler import LRScheduler

from lightning_optim_recipes import cadence
from lightning_optim_recipes.resume.state import moved_by
from lightning_optim_recipes.validation import SchedulerSpec

log = logging.getLogger("lightning_optim_recipes")


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
        if not _step_moves_last_epoch(scheduler):
            log.debug("%s.step() leaves `last_epoch` as it is (it steps other schedulers, or counts in its own"
                      " way): its steps are not counted.", type(scheduler).__name__)
            return None
        return lambda: scheduler.last_epoch
    inner = getattr(scheduler, "_schedulers", None)  # ChainedScheduler steps all of its schedulers
    if inner:
        return step_counter(inner[0])
    return None


def _step_moves_last_epoch(scheduler: Any) -> bool:
    """Whether a scheduler class's own ``step()`` moves ``last_epoch``: torch's do; a user's class may not (a wrapper
    whose ``step`` steps the schedulers it holds), and then ``last_epoch`` counts nothing. Tried once on a copy."""
    if type(scheduler).__module__.startswith("torch."):
        return True
    try:
        probe = copy.deepcopy(scheduler)
        before = probe.last_epoch
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probe.step()
        return bool(probe.last_epoch != before)
    except Exception:  # noqa: BLE001 - a step that needs arguments, a copy that fails: read it as before
        return True


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
    ended_epochs: int = 0  # manual mode: the epochs ended since it tracks (its first interval has passed after one)
    sized: bool = False  # manual mode: its length has been held against its pace of the first epoch

    def actual(self) -> Optional[int]:
        return None if self.read is None else self.read() - self.base


_SAVED = ("ended_epochs", "reported")


class Ledger:
    """The counts of one fit (continued across resumes) and the expected range of every scheduler's count."""

    def __init__(self, mode: str, loop: Optional[cadence.Loop], tracked: list[Tracked], optimizers: int) -> None:
        self.mode, self.loop, self.tracked = mode, loop, tracked
        self.expected = Expected(optimizers, len(tracked))
        self.state = cadence.LoopState.fresh(optimizers)
        self.real: list[int] = [0] * optimizers  # optimizer steps over the run (post-hook counters add to it)
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
            tracked.ended_epochs += 1

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
        else:  # manual: the module steps it where it likes (Lightning ignores 'interval'): it must step at all
            low, high = 0, 1 << 62
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
                if key in _SAVED:  # (a checkpoint of an earlier version may hold more)
                    setattr(tracked, key, value)
        self.real = list(saved["optimizer_steps"])
        model = saved["model"]
        self.state = cadence.LoopState(model["position"], list(model["windows"]), list(model["steps"]))
        self.expected.optimizer_steps = list(model["expected_optimizer"])
        self.expected.scheduler_steps = [steps + shift for steps, shift in zip(model["expected_scheduler"], moved)]
        self.expected.active_batches = list(model["active_batches"])
        return True
