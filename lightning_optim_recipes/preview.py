"""`preview_schedule` and `plot_schedule`: the lr of every param group at every optimizer step, before training.

The preview runs ``configure_optimizers`` on a deep copy of the module, with a stand-in Trainer that knows only the
sizes of the run, then replays the training loop's cadence without training: which optimizer steps on which batch
(gradient accumulation and alternation included) and when each scheduler steps. It never calls ``optimizer.step()``,
so no parameter changes, and it agrees with what a real ``Trainer.fit`` uses for the same sizes.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Optional, TypedDict

from torch import nn
from torch.optim.lr_scheduler import MultiStepLR

from lightning_optim_recipes import cadence, fit_checks
from lightning_optim_recipes._lightning import is_lightning_module
from lightning_optim_recipes.mixins import _port1x
from lightning_optim_recipes.errors import RecipeError, RecipeWarning
from lightning_optim_recipes.naming import optimizer_names
from lightning_optim_recipes.recipe import configure_from_recipe, resolve_recipe
from lightning_optim_recipes.validation import OptimizerSetup, SchedulerSpec, validate_optimizers

__all__ = ["SchedulePreview", "ScheduleRecord", "preview_schedule"]

_FRAME_EXTRA = "pip install lightning_optim_recipes[frame]"


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
            (schedulers with a ``warmup_steps`` attribute, as `warmup_cosine` makes): the first optimizer step that
            runs at the new lr.
        resume_report: for a resumed run (``resume_from=``), what the resume compared (a `ResumeReport`), else None.
    """

    max_epochs: int
    steps_per_epoch: int
    accumulate_grad_batches: int
    markers: list[dict[str, Any]]
    resume_report: Any = None


class _StandInLoader:
    """The training DataLoader's sizes: its ``batch_size`` (per device) and ``len()`` (batches per epoch)."""

    def __init__(self, batch_size: int, batches: int) -> None:
        self.batch_size = batch_size
        self._batches = batches

    def __len__(self) -> int:
        return self._batches


class _StandInTrainer:
    """The sizes of a run, where ``configure_optimizers`` reads them from ``self.trainer`` (with `batch_size`, a
    ``train_dataloader`` of that per-device batch size, where the recipe engine reads the global batch)."""

    #: How to give the global batch a recipe's ``lr_scaling`` asks for (the recipe engine's error says it).
    global_batch_fix: Optional[str] = (
        "pass `preview_schedule(..., batch_size=)` (the per-device batch; --batch-size on the command line): the"
        " preview's stand-in Trainer has no DataLoader")

    def __init__(self, max_epochs: int, steps_per_epoch: int, accumulate_grad_batches: int,
                 batch_size: Optional[int] = None) -> None:
        if batch_size is not None:
            self.train_dataloader = _StandInLoader(batch_size, steps_per_epoch)
        self.max_epochs = max_epochs
        self.max_steps = -1
        self.num_training_batches = steps_per_epoch
        self.accumulate_grad_batches = accumulate_grad_batches
        # Lightning's formula (`Trainer.estimated_stepping_batches`)
        self.estimated_stepping_batches = math.ceil(steps_per_epoch / accumulate_grad_batches) * max(max_epochs, 1)
        self.current_epoch = 0
        self.global_step = 0
        self.optimizers: list[Any] = []
        self.lr_scheduler_configs: list[Any] = []
        self.is_global_zero = True
        self.world_size = 1
        self.num_devices = 1
        self.num_nodes = 1
        self.global_rank = 0
        self.local_rank = 0
        self.node_rank = 0
        self.sanity_checking = False
        self.training = True

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"`preview_schedule` runs `configure_optimizers` with a stand-in Trainer that has no {name!r}: it knows"
            " max_epochs, max_steps, num_training_batches, accumulate_grad_batches, estimated_stepping_batches,"
            " current_epoch, global_step, world_size and, with `batch_size=`, train_dataloader (its batch_size and"
            " len()). Read the run's sizes from those in `configure_optimizers`."
        )


def preview_schedule(
    module_or_recipe: Any,
    *,
    max_epochs: int,
    steps_per_epoch: int,
    accumulate_grad_batches: int = 1,
    module: Optional[nn.Module] = None,
    as_frame: bool = False,
    resume_from: Any = None,
    resume: Optional[str] = None,
    batch_size: Optional[int] = None,
) -> Any:
    """The lr of every param group at every optimizer step of a run, without training.

    Runs ``configure_optimizers`` of a deep copy of `module_or_recipe` (a LightningModule, with or without the
    library's mixins) or builds the optimizer of a recipe dict (see `configure_from_recipe`) for `module` (default:
    a stand-in ``nn.Linear(1, 1)``, enough for a recipe without ``overrides``). ``self.trainer`` in
    ``configure_optimizers`` is a stand-in whose ``estimated_stepping_batches``, ``max_epochs``, ``current_epoch`` and
    ``global_step`` follow the given sizes, as a real Trainer's would. Then it replays the loop: under automatic
    optimization the optimizer steps every `accumulate_grad_batches` batches and on the last batch of each epoch;
    'step' schedulers step after an optimizer step on batch ``b`` when ``(b + 1) % frequency == 0``, 'epoch'
    schedulers at the end of every `frequency`-th epoch (Lightning 2.x). Modules with `AlternatingOptimizersMixin`
    follow its alternation, accumulation and scheduler rules (every active optimizer is assumed to step: a 1.x
    ``training_step`` that returns None to skip one is not foreseen). Optimizers never step: parameters stay untouched.

    `ReduceLROnPlateau` depends on metrics that only training produces: the preview keeps its lr constant and warns.
    A module under manual optimization without the alternating mixin steps its own optimizers, so it cannot be
    previewed (`RecipeError`).

    Args:
        module_or_recipe: a LightningModule, or a recipe dict.
        max_epochs: epochs of the run (``Trainer(max_epochs=...)``).
        steps_per_epoch: training batches per epoch (``len(train_dataloader)``, after ``limit_train_batches``).
        accumulate_grad_batches: ``Trainer(accumulate_grad_batches=...)``.
        module: the model a recipe dict is built for (only with a recipe).
        as_frame: return a pandas DataFrame (needs ``pip install lightning_optim_recipes[frame]``).
        resume_from: preview a run resumed from a checkpoint: ``ResumeFrom(old_module_or_recipe, step=...,
            max_epochs=...)`` (or a tuple of those): the old run up to that ``global_step``, then `module_or_recipe`
            restored from it as ``Trainer.fit(ckpt_path=...)`` restores it (see `lightning_optim_recipes.resume`).
        resume: with `resume_from`, ``"checkpoint"`` or ``"recipe"`` (default: the module's ``resume`` option, else
            ``"checkpoint"``).
        batch_size: the per-device batch size of the run (``DataLoader(batch_size=...)``), for a recipe that scales
            its lr by the global batch (``lr_scaling``): the stand-in Trainer's ``train_dataloader`` has it, so the
            global batch is ``batch_size x 1 device x accumulate_grad_batches``, as a one-device Trainer gives it.
            A recipe's own ``'batch_size'`` (the global batch) comes first. Default: none (such a recipe then needs
            its ``'batch_size'``).

    Returns:
        A `SchedulePreview`: a list of `ScheduleRecord` dicts, one per optimizer step and param group, in step order.

    Example:
        >>> recipe = {"optimizer": "SGD", "lr": 0.1, "scheduler": {"type": "multistep", "milestones": [2], "gamma": 0.5}}
        >>> records = preview_schedule(recipe, max_epochs=3, steps_per_epoch=2)
        >>> [(r["step"], r["epoch"], r["lr"]) for r in records if r["group"] == "decay"]
        [(0, 0, 0.1), (1, 0, 0.1), (2, 1, 0.1), (3, 1, 0.1), (4, 2, 0.05), (5, 2, 0.05)]
    """
    _check_size("max_epochs", max_epochs)
    _check_size("steps_per_epoch", steps_per_epoch)
    _check_size("accumulate_grad_batches", accumulate_grad_batches)
    if batch_size is not None:
        _check_size("batch_size", batch_size)
    if resume_from is not None:
        from lightning_optim_recipes.resume import preview_resumed  # it builds on this module

        resumed = preview_resumed(module_or_recipe, resume_from, resume, max_epochs=max_epochs,
                                  steps_per_epoch=steps_per_epoch, accumulate_grad_batches=accumulate_grad_batches,
                                  module=module, batch_size=batch_size)
        return _as_frame(resumed) if as_frame else resumed
    if resume is not None:
        raise RecipeError("`resume=` is for a resumed run: pass `resume_from=ResumeFrom(old, step=...)` too.")
    trainer = _StandInTrainer(max_epochs, steps_per_epoch, accumulate_grad_batches, batch_size)
    model, setup = _configure(module_or_recipe, module, trainer)
    for spec in setup.schedulers:
        if spec.reduce_on_plateau:
            warnings.warn(
                f"`preview_schedule` keeps the lr of the ReduceLROnPlateau scheduler{_named(spec)} constant: it"
                f" reacts to the logged metric {spec.monitor!r}, which only training produces.",
                RecipeWarning,
                stacklevel=2,
            )
    preview = SchedulePreview()
    preview.max_epochs, preview.steps_per_epoch = max_epochs, steps_per_epoch
    preview.accumulate_grad_batches = accumulate_grad_batches
    preview.markers = []
    if setup.optimizers:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", r"Detected call of `lr_scheduler\.step\(\)` before `optimizer\.step\(\)`")
            _simulate(model, setup, trainer, preview)
    return _as_frame(preview) if as_frame else preview


def _check_size(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RecipeError(f"`{name}` must be a positive int, got {value!r}.")


def _named(spec: SchedulerSpec) -> str:
    return f" {spec.name!r}" if spec.name else ""


def _configure(source: Any, module: Optional[nn.Module], trainer: _StandInTrainer) -> tuple[Any, OptimizerSetup]:
    """A deep copy of the model with the stand-in Trainer attached, and its validated optimizer setup."""
    if isinstance(source, Mapping):
        if module is None:
            if source.get("overrides"):
                raise RecipeError(
                    "The recipe has 'overrides', which name modules of a model: pass the model,"
                    " `preview_schedule(recipe, module=model, ...)`."
                )
            model: Any = nn.Linear(1, 1)
        else:
            model = copy.deepcopy(module)
        _attach(model, trainer)
        recipe = resolve_recipe(source)
        value = configure_from_recipe(model, recipe, trainer=trainer)
        if "optimizers" not in recipe:
            setup = validate_optimizers(value, module=model)
            fit_checks.check_before_training(setup, trainer, at=fit_checks.caller_line())
            return model, setup
        # several optimizers, alternated as `AlternatingOptimizersMixin` alternates them
        setup = validate_optimizers(value)
        timings = tuple(cadence.Timing(s.optimizer_index, s.interval, s.frequency, s.reduce_on_plateau)
                        for s in setup.schedulers)
        loop = cadence.Loop("alternating", len(setup.optimizers), timings, accumulate=(trainer.accumulate_grad_batches,),
                            frequencies=setup.frequencies, run_wide=recipe.get("alternation_cycle") == "run")
        model.__dict__["_preview_cadence"] = loop
        model.__dict__["_preview_roles"] = tuple(recipe["optimizers"])
        fit_checks.check_before_training(setup, trainer, loop=loop, at=fit_checks.caller_line())
        return model, setup
    if module is not None:
        raise RecipeError("`module=` is only for a recipe dict: a LightningModule brings its own parameters.")
    if not isinstance(source, nn.Module) or not callable(getattr(source, "configure_optimizers", None)):
        raise RecipeError(
            "`preview_schedule` takes a LightningModule (with `configure_optimizers`) or a recipe dict such as"
            f" {{'optimizer': 'AdamW', 'lr': 1e-3}}, got {type(source).__name__}."
        )
    model = copy.deepcopy(source)
    _attach(model, trainer)
    model.__dict__.pop("optimizer_setup", None)
    value = model.configure_optimizers()
    kept = getattr(model, "optimizer_setup", None)  # the library's mixins keep what they validated
    if isinstance(kept, OptimizerSetup):
        setup = kept
    else:  # a plain module: run the checks the mixins run
        setup = validate_optimizers(value, module=model)
        fit_checks.check_before_training(setup, trainer, model)
    if not getattr(model, "automatic_optimization", True) and getattr(model, "training_cadence", None) is None:
        raise RecipeError(
            f"{type(model).__name__} uses manual optimization, so its `training_step` decides when optimizers and"
            " schedulers step and `preview_schedule` cannot know. Preview it under automatic optimization, or with"
            " `AlternatingOptimizersMixin`, whose cadence is declared."
        )
    return model, setup


def _attach(model: Any, trainer: _StandInTrainer) -> None:
    try:
        model.trainer = trainer  # LightningModule's setter also attaches child LightningModules
    except AttributeError:  # pragma: no cover - a module with a read-only `trainer`
        model._trainer = trainer


class _Recording:
    """`cadence.Effects` that record the lr of every param group at every optimizer step and step the schedulers;
    optimizers never really step."""

    def __init__(self, model: Any, setup: OptimizerSetup, trainer: _StandInTrainer, preview: SchedulePreview) -> None:
        self.model, self.setup, self.trainer, self.preview = model, setup, trainer, preview
        roles = model.__dict__.get("_preview_roles") or getattr(model, "optimizer_roles", None)
        self.names = optimizer_names(setup.schedulers, setup.optimizers, roles)
        self.epoch = 0
        self._marked: set[tuple[int, str]] = set()

    def train(self, index: int, batch_idx: int, window: int, closes: bool) -> bool:
        return True

    def step(self, index: int, batch_idx: int, in_turn: bool) -> None:
        """Record the lrs optimizer `index` steps with, then count the step."""
        step = self.trainer.global_step
        for g, group in enumerate(self.setup.optimizers[index].param_groups):
            name = group.get("name")
            record: ScheduleRecord = {
                "step": step,
                "epoch": self.epoch,
                "batch_idx": batch_idx,
                "optimizer": index,
                "group": name if isinstance(name, str) else f"pg{g}",
                "lr": group["lr"],
                "name": self.names.groups[index][g] if g < len(self.names.groups[index]) else f"pg{g}",
                "role": self.names.roles[index],
            }
            self.preview.append(record)
        self._mark(index, step)
        self.trainer.global_step = step + 1

    def step_scheduler(self, index: int) -> None:
        spec = self.setup.schedulers[index]
        if spec.reduce_on_plateau:
            return
        if callable(getattr(self.model, "lr_scheduler_step", None)) and is_lightning_module(self.model):
            _port1x.call(self.model, "lr_scheduler_step",
                         {"scheduler": spec.scheduler, "optimizer_idx": spec.optimizer_index, "metric": None})
        else:
            spec.scheduler.step()

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
            if isinstance(warmup, int) and warmup > 0 and count == warmup - 1:
                labels.append("warmup end")
            for label in labels:
                if (k, label) not in self._marked:
                    self._marked.add((k, label))
                    self.preview.markers.append({"step": step, "optimizer": index, "label": label})


def _loop_of(model: Any, setup: OptimizerSetup, trainer: _StandInTrainer) -> cadence.Loop:
    """The cadence of the run: the module's own (`AlternatingOptimizersMixin.training_cadence`), or Lightning's
    automatic optimization."""
    own = model.__dict__.get("_preview_cadence") or getattr(model, "training_cadence", None)
    if isinstance(own, cadence.Loop):
        return own
    timings = tuple(cadence.Timing(s.optimizer_index, s.interval, s.frequency, s.reduce_on_plateau)
                    for s in setup.schedulers)
    return cadence.Loop("automatic", 1, timings, accumulate=(trainer.accumulate_grad_batches,))


def _simulate(model: Any, setup: OptimizerSetup, trainer: _StandInTrainer, preview: SchedulePreview) -> None:
    """Run the cadence model over the whole run with recording effects."""
    loop = _loop_of(model, setup, trainer)
    effects = _Recording(model, setup, trainer, preview)
    state = cadence.LoopState.fresh(loop.optimizers)
    batches = trainer.num_training_batches
    for epoch in range(trainer.max_epochs):
        trainer.current_epoch = effects.epoch = epoch
        for batch_idx in range(batches):
            cadence.run_batch(loop, state, batch_idx, batch_idx == batches - 1, effects)
        cadence.run_epoch_end(loop, epoch, effects)
    trainer.current_epoch = trainer.max_epochs


def _as_frame(records: Sequence[ScheduleRecord]) -> Any:
    try:
        import pandas as pd
    except ImportError as err:
        raise RecipeError(f"`as_frame=True` needs pandas: {_FRAME_EXTRA}") from err
    return pd.DataFrame(list(records), columns=list(ScheduleRecord.__annotations__))
