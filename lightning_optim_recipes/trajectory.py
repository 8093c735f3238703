"""The learning rate a run will actually get: the lr of every param group at every optimizer step, replayed before
training.

`Replay` runs the loop model (`lightning_optim_recipes.cadence`) without training: at each optimizer step it reads
every param group's lr, and it steps the schedulers as training will (a module's own ``lr_scheduler_step`` and
``optimizer_step`` included). Optimizers never step: no parameter changes. `simulate` replays a whole run with
`Recording` effects, which write a `ScheduleRecord` per group and step for `preview_schedule`; the fit checks replay
the same way on copies of the schedulers (`lightning_optim_recipes.curves`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Optional, TypedDict

from torch.optim.lr_scheduler import MultiStepLR

from lightning_optim_recipes import cadence, hooks, schedule_free
from lightning_optim_recipes.by_hand import writes_lr
from lightning_optim_recipes._lightning import is_lightning_module
from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.naming import optimizer_names
from lightning_optim_recipes.validation import OptimizerSetup, SchedulerSpec

__all__ = ["Recording", "Replay", "SchedulePreview", "ScheduleRecord", "SchedulerConfig", "StepProbe", "loop_of",
           "simulate", "swapped"]


class ScheduleRecord(TypedDict):
    """The lr one param group uses at one optimizer step.

    Attributes:
        step: the optimizer step, counted over the run from 0 (``trainer.global_step`` when it runs).
        epoch: the epoch it runs in.
        batch_idx: the dataloader batch it runs on, within the epoch.
        optimizer: the index of the optimizer in ``configure_optimizers``' order.
        group: the param group's ``'name'``, or ``'pgN'`` for the N-th group without one.
        lr: the learning rate of that group for that step.
        name: the name `LearningRateLogger` (and Lightning's `LearningRateMonitor`) logs that group's lr under,
            e.g. ``'lr-AdamW/decay'`` or ``'lr-Adam-1'``.
        role: under `AlternatingOptimizersMixin`, what the optimizer's step trains (``'critic'``), else None.
    """

    step: int
    epoch: int
    batch_idx: int
    optimizer: int
    group: str
    lr: float
    name: str
    role: Optional[str]


class SchedulePreview(list):  # type: ignore[type-arg]
    """What `preview_schedule` returns: a plain list of `ScheduleRecord` dicts, plus what a plot annotates.

    Attributes:
        max_epochs: the epochs previewed.
        steps_per_epoch: the training batches per epoch previewed.
        accumulate_grad_batches: the ``Trainer(accumulate_grad_batches=...)`` previewed.
        markers: ``{'step', 'optimizer', 'label'}`` dicts, one per MultiStepLR milestone reached and per warmup end
            (schedulers with a ``warmup_steps`` attribute, as `warmup_cosine` makes) and decay start
            (`warmup_stable_decay`): the first optimizer step that runs at the new lr.
        resume_report: for a resumed run (``resume_from=``), what the resume compared (a `ResumeReport`), else None.
        lengths: every length given in units (``'5%'``, ``'2ep'``), as written and resolved for this run
            (`lightning_optim_recipes.units.table`).
    """

    max_epochs: int
    steps_per_epoch: int
    accumulate_grad_batches: int
    markers: list[dict[str, Any]]
    resume_report: Any = None
    lengths: Sequence[dict[str, Any]] = ()


class StepProbe:
    """What a module's own ``optimizer_step`` receives in a replay instead of the optimizer: the same param groups
    (the override reads and sets their lrs), and a ``step(closure)`` that runs the closure (which trains nothing)
    and tells the replay which lrs the step uses."""

    def __init__(self, optimizer: Any, on_step: Callable[[], None]) -> None:
        self.optimizer, self._on_step = optimizer, on_step
        self.param_groups, self.defaults = optimizer.param_groups, getattr(optimizer, "defaults", {})
        self.state = getattr(optimizer, "state", {})

    def step(self, closure: Optional[Callable[[], Any]] = None, **kwargs: Any) -> None:
        if closure is not None:
            closure()
        self._on_step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Nothing to zero: the replay trains nothing."""


def _no_training() -> None:
    """The closure a replayed ``optimizer_step`` gets: training is not replayed."""
    return None


class Replay:
    """`cadence.Effects` that replay a run without training: at each optimizer step `observe(index, batch_idx)`
    reads the lrs it uses, and the schedulers step as training steps them (the module's ``lr_scheduler_step``
    included). With `run_optimizer_step`, a module's own ``optimizer_step`` (which may set lrs by hand) is called
    with a `StepProbe`, as Lightning calls it; optimizers never really step.

    `trainer` is a stand-in whose ``global_step`` and ``current_epoch`` the replay advances (the module's hooks
    read them)."""

    def __init__(self, model: Any, setup: OptimizerSetup, trainer: Any, run_optimizer_step: bool = False) -> None:
        self.model, self.setup, self.trainer = model, setup, trainer
        self.epoch = 0
        lightning = model is not None and is_lightning_module(model)
        self._lr_hook = lightning and callable(getattr(model, "lr_scheduler_step", None))
        self._step_hook = (run_optimizer_step and lightning and getattr(model, "automatic_optimization", True)
                           and hooks.overridden(model, "optimizer_step"))

    def observe(self, index: int, batch_idx: int) -> None:
        """Read the lrs optimizer `index` steps with (at ``trainer.global_step``)."""

    def train(self, index: int, batch_idx: int, window: int, closes: bool) -> bool:
        return True

    def step(self, index: int, batch_idx: int, in_turn: bool) -> None:
        """Observe the lrs optimizer `index` steps with (through the module's ``optimizer_step``), then count the
        step in ``global_step``, as Lightning counts it once ``optimizer_step`` has returned."""
        if self._step_hook:
            optimizer = self.setup.optimizers[index]
            probe = StepProbe(getattr(optimizer, "_optimizer", optimizer), lambda: self.observe(index, batch_idx))
            hooks.call(self.model, "optimizer_step", {"epoch": self.epoch, "batch_idx": batch_idx,
                                                      "optimizer": probe, "optimizer_idx": index,
                                                      "optimizer_closure": _no_training})
        else:
            self.observe(index, batch_idx)
        self.trainer.global_step += 1

    def step_scheduler(self, index: int) -> None:
        spec = self.setup.schedulers[index]
        if spec.reduce_on_plateau:
            return
        if self._lr_hook:
            hooks.call(self.model, "lr_scheduler_step",
                       {"scheduler": spec.scheduler, "optimizer_idx": spec.optimizer_index, "metric": None})
        else:
            spec.scheduler.step()


class Recording(Replay):
    """The preview's `Replay`: at each optimizer step, one `ScheduleRecord` per param group, and the markers (a
    milestone reached, the end of a warm-up)."""

    def __init__(self, model: Any, setup: OptimizerSetup, trainer: Any, preview: SchedulePreview) -> None:
        super().__init__(model, setup, trainer, run_optimizer_step=True)
        self.preview = preview
        roles = model.__dict__.get("_preview_roles") or getattr(model, "optimizer_roles", None)
        self.names = optimizer_names(setup.schedulers, setup.optimizers, roles)
        self._marked: set[tuple[int, str]] = set()
        self.hand: ByHand = ByHand(model, [])

    def observe(self, index: int, batch_idx: int) -> None:
        """Record the lrs optimizer `index` steps with (after the hooks that set them before a step)."""
        step = self.trainer.global_step
        optimizer = self.setup.optimizers[index]
        self.hand.before_step(self.trainer, getattr(optimizer, "_optimizer", optimizer), index)
        groups = optimizer.param_groups
        if len(groups) != len(self.names.groups[index]):  # a group added during training (`BackboneFinetuning`)
            self.names = optimizer_names(self.setup.schedulers, self.setup.optimizers, self.names.roles)
        names = self.names.groups[index]
        role = self.names.roles[index]
        for g, group in enumerate(groups):
            name = group.get("name")
            record: ScheduleRecord = {
                "step": step,
                "epoch": self.epoch,
                "batch_idx": batch_idx,
                "optimizer": index,
                "group": name if isinstance(name, str) else f"pg{g}",
                "lr": schedule_free.applied_lr(group),  # a schedule-free optimizer's built-in warm-up included
                "name": names[g] if g < len(names) else f"pg{g}",
                "role": role,
            }
            self.preview.append(record)
        self._mark(index, step)
        # a schedule-free optimizer's built-in warm-up (keyed apart from the schedulers' indices)
        if schedule_free.warmup_ends(optimizer) and (-1 - index, "warmup end") not in self._marked:
            self._marked.add((-1 - index, "warmup end"))
            self.preview.markers.append({"step": step, "optimizer": index, "label": "warmup end"})
        schedule_free.count_step(optimizer)  # its own step counter, which its warm-up reads

    def _mark(self, index: int, step: int) -> None:
        for k, spec in enumerate(self.setup.schedulers):
            scheduler = spec.scheduler
            count = getattr(scheduler, "last_epoch", None)
            if spec.optimizer_index != index or not isinstance(count, int):
                continue
            labels = []
            if isinstance(scheduler, MultiStepLR) and count in scheduler.milestones:
                labels.append(f"milestone {count} ({spec.interval})")
            warmup = getattr(scheduler, "warmup_steps", None)
            if isinstance(warmup, int) and warmup > 0 and count == getattr(scheduler, "peak_step", warmup - 1):
                labels.append("warmup end")
            requested = getattr(scheduler, "warmup_requested", None)
            if warmup == 0 and isinstance(requested, float) and requested > 0 and count == 0:
                labels.append(f"no warm-up ({requested:.3g} steps rounded to 0)")
            decay_start = getattr(scheduler, "decay_start", None)  # warmup_stable_decay
            if isinstance(decay_start, int) and not isinstance(decay_start, bool) and count == decay_start:
                labels.append("decay start")
            for label in labels:
                if (k, label) not in self._marked:
                    self._marked.add((k, label))
                    self.preview.markers.append({"step": step, "optimizer": index, "label": label})


def loop_of(model: Any, setup: OptimizerSetup, trainer: Any) -> cadence.Loop:
    """The cadence of the run: the module's own (`AlternatingOptimizersMixin.training_cadence`), or Lightning's
    automatic optimization."""
    own = model.__dict__.get("_preview_cadence") or getattr(model, "training_cadence", None)
    if isinstance(own, cadence.Loop):
        return own
    timings = tuple(cadence.Timing(s.optimizer_index, s.interval, s.frequency, s.reduce_on_plateau)
                    for s in setup.schedulers)
    return cadence.Loop("automatic", 1, timings, accumulate=(trainer.accumulate_grad_batches,))


@dataclasses.dataclass
class SchedulerConfig:
    """A scheduler as Lightning keeps it in ``trainer.lr_scheduler_configs`` (the fields of its ``LRSchedulerConfig``),
    for the callbacks a preview runs: they read these, and some swap in their own (`StochasticWeightAveraging`)."""

    scheduler: Any
    name: Optional[str] = None
    interval: str = "epoch"
    frequency: int = 1
    reduce_on_plateau: bool = False
    monitor: Optional[str] = None
    strict: bool = True

    @classmethod
    def of(cls, spec: SchedulerSpec) -> SchedulerConfig:
        return cls(spec.scheduler, spec.name, spec.interval, spec.frequency, spec.reduce_on_plateau, spec.monitor,
                   spec.strict)


def swapped(configs: Sequence[Any], setup: OptimizerSetup) -> Optional[OptimizerSetup]:
    """`setup` with the schedulers of Lightning-style `configs` when a callback has changed them (added, replaced or
    re-timed one), else None."""
    if [(c.scheduler, c.interval, c.frequency) for c in configs] == [
            (s.scheduler, s.interval, s.frequency) for s in setup.schedulers]:
        return None
    optimizers = [getattr(o, "_optimizer", o) for o in setup.optimizers]
    specs = []
    for config in configs:
        optimizer = getattr(config.scheduler, "optimizer", None)
        index = next((i for i, o in enumerate(optimizers) if o is optimizer or setup.optimizers[i] is optimizer), 0)
        specs.append(SchedulerSpec(config.scheduler, index, config.interval, config.frequency,
                                   getattr(config, "name", None), getattr(config, "monitor", None),
                                   getattr(config, "strict", True), getattr(config, "reduce_on_plateau", False)))
    return dataclasses.replace(setup, schedulers=tuple(specs))


def simulate(model: Any, setup: OptimizerSetup, trainer: Any, preview: SchedulePreview,
             run_hook: Optional[Callable[..., None]] = None) -> None:
    """Run the cadence model over the whole run with recording effects; `run_hook(callback, name, *arguments)` runs
    the fit and epoch hooks of ``trainer.callbacks`` (those that change optimizers, such as `BackboneFinetuning`, or
    swap the schedulers in ``trainer.lr_scheduler_configs``, such as `StochasticWeightAveraging`: the replay then
    steps the schedulers they leave there)."""
    loop = loop_of(model, setup, trainer)
    effects = Recording(model, setup, trainer, preview)
    state = cadence.LoopState.fresh(loop.optimizers)
    batches = trainer.num_training_batches
    callbacks = list(getattr(trainer, "__dict__", {}).get("callbacks") or ()) if run_hook is not None else []
    hand = effects.hand = ByHand(model, callbacks)
    trainer.optimizers = [getattr(o, "_optimizer", o) for o in setup.optimizers]
    trainer.lr_scheduler_configs = [SchedulerConfig.of(spec) for spec in setup.schedulers]

    def follow(hook: str) -> cadence.Loop:
        """The loop after the callbacks' `hook`: with the schedulers they have swapped in, if any."""
        changed = swapped(trainer.lr_scheduler_configs, effects.setup) if callbacks else None
        if changed is None:
            return loop
        if loop.mode != "automatic":
            raise RecipeError(
                f"`preview_schedule` ran the callbacks' `{hook}`, and one of them changed the schedulers"
                " (`trainer.lr_scheduler_configs`) of a module that alternates its optimizers: the preview cannot"
                " follow that. Preview without that callback (the preview then leaves out what it does)."
            )
        effects.setup = changed
        return loop_of(model, changed, trainer)

    for name in ("on_fit_start", "on_train_start"):
        for callback in callbacks:
            run_hook(callback, name, trainer, model)  # type: ignore[misc]
        loop = follow(name)
    for epoch in range(trainer.max_epochs):
        trainer.current_epoch = effects.epoch = epoch
        for callback in callbacks:
            run_hook(callback, "on_train_epoch_start", trainer, model)  # type: ignore[misc]
        loop = follow("on_train_epoch_start")
        for batch_idx in range(batches):
            hand.batch(trainer, "on_train_batch_start", batch_idx)
            cadence.run_batch(loop, state, batch_idx, batch_idx == batches - 1, effects)
            hand.batch(trainer, "on_train_batch_end", batch_idx)
        for callback in callbacks:
            run_hook(callback, "on_train_epoch_end", trainer, model)  # type: ignore[misc]
        loop = follow("on_train_epoch_end")
        cadence.run_epoch_end(loop, epoch, effects)
    trainer.current_epoch = trainer.max_epochs



#: The hooks a preview can run without the run's data (a batch is None, outputs None), and those it cannot.
RUNNABLE = ("on_train_batch_start", "on_train_batch_end", "on_before_optimizer_step")
NOT_RUNNABLE = ("training_step", "on_before_backward", "on_after_backward", "backward", "on_before_zero_grad",
                "optimizer_zero_grad", "configure_gradient_clipping")


class ByHand:
    """The hooks of the module and of the callbacks that set lrs by hand (`lightning_optim_recipes.by_hand`), run
    where training runs them; a hook that sets them where the preview cannot run it (``training_step``) is a
    `RecipeError`, for a preview that leaves it out would show another schedule than the fit."""

    def __init__(self, model: Any, callbacks: Sequence[Any]) -> None:
        self.model = model if model is not None and is_lightning_module(model) else None
        owners = ([self.model] if self.model is not None else []) + list(callbacks)
        self.hooks: dict[str, list[tuple[Any, int]]] = {name: [] for name in RUNNABLE}
        for owner in owners:
            for name in NOT_RUNNABLE:
                line = writes_lr(owner, name) if _own(owner, name) else None
                if line is not None:
                    raise RecipeError(
                        f"`preview_schedule` cannot show the lrs {_who(owner, self.model)} sets: its `{name}` sets"
                        f" them by hand (line {line}), and a preview cannot run `{name}` without the run's data. Set"
                        " them in `on_train_batch_start` or `optimizer_step`, which the preview runs, or watch them"
                        " during training: `LearningRateLogger` warns when an lr reaches 0, or its floor early."
                    )
            for name in RUNNABLE:
                line = writes_lr(owner, name) if _own(owner, name) else None
                if line is not None:
                    self.hooks[name].append((owner, line))

    def batch(self, trainer: Any, name: str, batch_idx: int) -> None:
        for owner, line in self.hooks[name]:
            arguments = (None, batch_idx) if name == "on_train_batch_start" else (None, None, batch_idx)
            self._run(owner, name, line, arguments, trainer)

    def before_step(self, trainer: Any, optimizer: Any, index: int) -> None:
        for owner, line in self.hooks["on_before_optimizer_step"]:
            if owner is self.model:
                self._call(owner, line, lambda: hooks.call(owner, "on_before_optimizer_step",
                                                           {"optimizer": optimizer, "optimizer_idx": index}),
                           "on_before_optimizer_step")
            else:
                self._run(owner, "on_before_optimizer_step", line, (optimizer,), trainer)

    def _run(self, owner: Any, name: str, line: int, arguments: tuple[Any, ...], trainer: Any) -> None:
        hook = getattr(owner, name)
        if owner is self.model:
            self._call(owner, line, lambda: hook(*arguments), name)
        else:
            self._call(owner, line, lambda: hook(trainer, self.model, *arguments), name)

    def _call(self, owner: Any, line: int, call: Callable[[], Any], name: str) -> None:
        try:
            call()
        except Exception as err:
            raise RecipeError(
                f"`preview_schedule` runs {type(owner).__name__}.{name}, which sets lrs by hand (line {line}), as"
                f" training runs it but without the run's data (its batch is None), and it raised"
                f" {type(err).__name__}: {err}. Make it work without the batch, or set the lrs in `optimizer_step`"
                f"{'' if owner is self.model else '; or preview without that callback'}."
            ) from err


def _own(owner: Any, name: str) -> bool:
    """Whether `owner` (a module or a callback) has its own `name` hook, not Lightning's or the library's."""
    return hooks.overridden(owner, name) if is_lightning_module(owner) else (
        name in getattr(owner, "__dict__", {}) or hooks.user_hook(type(owner), name) is not None)


def _who(owner: Any, model: Any) -> str:
    return type(owner).__name__ if owner is model else f"the callback {type(owner).__name__}"
