"""`preview_schedule`: the lr of every param group at every optimizer step, before training.

The preview runs ``configure_optimizers`` on a deep copy of the module, with a stand-in Trainer that knows only the
sizes of the run (`lightning_optim_recipes.standin`), then replays the training loop's cadence without training
(`lightning_optim_recipes.trajectory`): which optimizer steps on which batch (gradient accumulation and alternation
included) and when each scheduler steps. It never calls ``optimizer.step()``, so no parameter changes, and it agrees
with what a real ``Trainer.fit`` uses for the same sizes. A resumed run's preview is `resume.preview`'s.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Optional

from torch import nn

from lightning_optim_recipes import units
from lightning_optim_recipes.errors import RecipeError, RecipeWarning
from lightning_optim_recipes.resume.preview import preview_resumed
from lightning_optim_recipes._lightning import namespace_of
from lightning_optim_recipes.standin import StandInTrainer, configure, run_hook
from lightning_optim_recipes.trajectory import SchedulePreview, ScheduleRecord, simulate
from lightning_optim_recipes.validation import SchedulerSpec
from lightning_optim_recipes.wsd import check_decay_start

__all__ = ["SchedulePreview", "ScheduleRecord", "preview_schedule"]

_FRAME_EXTRA = "pip install lightning_optim_recipes[frame]"


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
    callbacks: Sequence[Any] = (),
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

    Lrs set by hand are replayed where training sets them: the module's ``optimizer_step`` and ``lr_scheduler_step``,
    and the hooks of the module and of `callbacks` that write a param group's ``'lr'`` before a batch, after it or
    before a step (``on_train_batch_start``, ``on_train_batch_end``, ``on_before_optimizer_step``, run with the batch
    None); one that sets them in ``training_step`` or around the backward pass, which need the data, is a
    `RecipeError` that names its line.

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
            restored from it as ``Trainer.fit(ckpt_path=...)`` restores it (see `lightning_optim_recipes.resume`);
            or the path of a saved checkpoint (a ``.ckpt`` file, or the directory of shards that FSDP2's
            `ModelParallelStrategy` saves): `module_or_recipe` from its ``global_step`` on.
        resume: with `resume_from`, ``"checkpoint"`` or ``"recipe"`` (default: the module's ``resume`` option, else
            ``"checkpoint"``).
        batch_size: the per-device batch size of the run (``DataLoader(batch_size=...)``), for a recipe that scales
            its lr by the global batch (``lr_scaling``): the stand-in Trainer's ``train_dataloader`` has it, so the
            global batch is ``batch_size x 1 device x accumulate_grad_batches``, as a one-device Trainer gives it.
            A recipe's own ``'batch_size'`` (the global batch) comes first. Default: none (such a recipe then needs
            its ``'batch_size'``).
        callbacks: the Trainer's callbacks that change the optimizers during training (`BackboneFinetuning`
            adds a param group and sets its lr; `StochasticWeightAveraging` swaps its own scheduler into
            ``trainer.lr_scheduler_configs``): copies of them run their ``setup``, fit and epoch hooks, as
            ``Trainer.fit`` runs them. The module's own ``configure_callbacks()`` always run. Callbacks given to the
            Trainer and not here are not in the preview.

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
        resumed = preview_resumed(module_or_recipe, resume_from, resume, max_epochs=max_epochs,
                                  steps_per_epoch=steps_per_epoch, accumulate_grad_batches=accumulate_grad_batches,
                                  module=module, batch_size=batch_size)
        return _as_frame(resumed) if as_frame else resumed
    if resume is not None:
        raise RecipeError("`resume=` is for a resumed run: pass `resume_from=ResumeFrom(old, step=...)` too.")
    trainer = StandInTrainer(max_epochs, steps_per_epoch, accumulate_grad_batches, batch_size,
                             namespace=namespace_of(module_or_recipe))
    model, setup = configure(module_or_recipe, module, trainer, callbacks)
    check_decay_start(setup.schedulers, trainer)  # a cooldown from where training resumes needs `resume_from`
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
    preview.lengths = units.table(setup.schedulers)
    if setup.optimizers:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", r"Detected call of `lr_scheduler\.step\(\)` before `optimizer\.step\(\)`")
            simulate(model, setup, trainer, preview, run_hook)
    return _as_frame(preview) if as_frame else preview


def _check_size(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RecipeError(f"`{name}` must be a positive int, got {value!r}.")


def _named(spec: SchedulerSpec) -> str:
    return f" {spec.name!r}" if spec.name else ""


def _as_frame(records: Sequence[ScheduleRecord]) -> Any:
    try:
        import pandas as pd
    except ImportError as err:
        raise RecipeError(f"`as_frame=True` needs pandas: {_FRAME_EXTRA}") from err
    return pd.DataFrame(list(records), columns=list(ScheduleRecord.__annotations__))
