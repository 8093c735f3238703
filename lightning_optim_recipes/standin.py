"""A stand-in Trainer that knows only the sizes of a run, and a module or recipe configured on it for a preview.

`preview_schedule` (and the resumed preview) run ``configure_optimizers`` on a deep copy of the module with a
`StandInTrainer` attached, whose ``estimated_stepping_batches``, ``max_epochs``, ``current_epoch`` and
``global_step`` follow the given sizes, as a real Trainer's would (and whose ``datamodule.train_dataloader()`` has the
run's batches per epoch).
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from torch import nn

from lightning_optim_recipes import cadence, fit_checks, hooks
from lightning_optim_recipes._lightning import _installed_namespaces
from lightning_optim_recipes.errors import RecipeError, caller_line
from lightning_optim_recipes.recipe import configure_from_recipe, resolve_recipe
from lightning_optim_recipes.validation import OptimizerSetup, legacy_error, validate_optimizers

__all__ = ["StandInDataModule", "StandInLoader", "StandInTrainer", "attach", "configure", "run_hook"]


class StandInLoader:
    """The training DataLoader's sizes: its ``batch_size`` (per device) and ``len()`` (batches per epoch)."""

    def __init__(self, batch_size: Optional[int], batches: int) -> None:
        self.batch_size = batch_size
        self._batches = batches

    def __len__(self) -> int:
        return self._batches


class StandInDataModule:
    """``trainer.datamodule`` as ``configure_optimizers`` reads it to size a schedule
    (``len(self.trainer.datamodule.train_dataloader())``): a ``train_dataloader()`` of the run's batches per epoch."""

    def __init__(self, loader: StandInLoader) -> None:
        self._loader = loader

    def train_dataloader(self) -> StandInLoader:
        return self._loader

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(
            f"`preview_schedule` runs `configure_optimizers` with a stand-in datamodule that has no {name!r}: it knows"
            " `train_dataloader()`, whose len() is the preview's steps_per_epoch. Read the run's sizes from it or from"
            " the Trainer (`self.trainer.estimated_stepping_batches`)."
        )


class StandInFitLoop:
    """``trainer.fit_loop`` as ``configure_optimizers`` uses it to size a schedule (SysCV/vis4d calls
    ``self.trainer.fit_loop.setup_data()`` before ``len(self.trainer.train_dataloader)``): its data is the stand-in
    loader already; the rest is a real Trainer's fit loop."""

    def __init__(self, trainer: "StandInTrainer") -> None:
        self._trainer = trainer

    def setup_data(self) -> None:
        """The stand-in's loader is set up already."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._trainer.__getattr__("fit_loop"), name)


class StandInTrainer:
    """The sizes of a run, where ``configure_optimizers`` reads them from ``self.trainer`` (with `batch_size`, a
    ``train_dataloader`` of that per-device batch size, where the recipe engine reads the global batch)."""

    #: How to give the global batch a recipe's ``lr_scaling`` asks for (the recipe engine's error says it).
    global_batch_fix: Optional[str] = (
        "pass `preview_schedule(..., batch_size=)` (the per-device batch; --batch-size on the command line): the"
        " preview's stand-in Trainer has no DataLoader")

    def __init__(self, max_epochs: int, steps_per_epoch: int, accumulate_grad_batches: int,
                 batch_size: Optional[int] = None, namespace: Any = None) -> None:
        self._namespace = namespace  # the Lightning package whose Trainer answers for everything else
        self.train_dataloader = StandInLoader(batch_size, steps_per_epoch)
        self.fit_loop = StandInFitLoop(self)
        self.datamodule = StandInDataModule(StandInLoader(batch_size, steps_per_epoch))
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
        self.model: Any = None
        self.callbacks: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        """What a real Trainer of the same options has before fit (``limit_train_batches``, ``strategy``,
        ``check_val_every_n_epoch``, ``datamodule``, ``log_every_n_steps``, ...); built on first use."""
        if name.startswith("_"):
            raise AttributeError(name)
        real = self.__dict__.get("_real")
        if real is None:
            real = self.__dict__["_real"] = _real_trainer(self.__dict__.get("_namespace"),
                                                          self.__dict__.get("max_epochs", 1),
                                                          self.__dict__.get("accumulate_grad_batches", 1))
        if real is not None and hasattr(real, name):
            return getattr(real, name)
        raise AttributeError(
            f"`preview_schedule` runs `configure_optimizers` with a stand-in Trainer that has no {name!r}: it knows"
            " max_epochs, max_steps, num_training_batches, accumulate_grad_batches, estimated_stepping_batches,"
            " current_epoch, global_step, world_size, datamodule.train_dataloader() and, with `batch_size=`,"
            " train_dataloader (its batch_size and len()), and what a Trainer has before fit. Read the run's sizes from those in `configure_optimizers`."
        )


def _real_trainer(namespace: Any, max_epochs: int, accumulate_grad_batches: int) -> Any:
    """A real Trainer of the run's options, built quietly (None without Lightning)."""
    package = namespace if namespace is not None else next(iter(_installed_namespaces()), None)
    if package is None:  # pragma: no cover - Lightning is a dependency
        return None
    quiet = [logging.getLogger(name) for name in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric",
                                                  "lightning_fabric")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return package.Trainer(max_epochs=max_epochs, accumulate_grad_batches=accumulate_grad_batches,
                                   accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                                   enable_progress_bar=False, enable_model_summary=False)
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)


def configure(source: Any, module: Optional[nn.Module], trainer: StandInTrainer,
              callbacks: Sequence[Any] = ()) -> tuple[Any, OptimizerSetup]:
    """A deep copy of the model with the stand-in Trainer attached, and its validated optimizer setup.

    A LightningModule is set up as ``Trainer.fit`` sets it up before ``configure_optimizers``: copies of
    `callbacks` and the module's own ``configure_callbacks()`` (kept as ``trainer.callbacks``, for the preview to
    run their epoch hooks) get ``setup``, then the module's ``configure_model`` and ``setup('fit')``."""
    if isinstance(source, Mapping):
        if module is None:
            if source.get("overrides"):
                raise RecipeError(
                    "The recipe has 'overrides', which name modules of a model: pass the model,"
                    " `preview_schedule(recipe, module=model, ...)`."
                )
            model: Any = nn.Linear(1, 1)
        else:
            model = module_copy(module)
        attach(model, trainer)
        recipe = resolve_recipe(source)
        value = configure_from_recipe(model, recipe, trainer=trainer)
        if "optimizers" not in recipe:
            setup = validate_optimizers(value, module=model)
            fit_checks.check_before_training(setup, trainer, at=caller_line())
            return model, setup
        # several optimizers, alternated as `AlternatingOptimizersMixin` alternates them
        setup = validate_optimizers(value)
        timings = tuple(cadence.Timing(s.optimizer_index, s.interval, s.frequency, s.reduce_on_plateau)
                        for s in setup.schedulers)
        loop = cadence.Loop("alternating", len(setup.optimizers), timings, accumulate=(trainer.accumulate_grad_batches,),
                            frequencies=setup.frequencies, run_wide=recipe.get("alternation_cycle") == "run")
        model.__dict__["_preview_cadence"] = loop
        model.__dict__["_preview_roles"] = tuple(recipe["optimizers"])
        fit_checks.check_before_training(setup, trainer, loop=loop, at=caller_line())
        return model, setup
    if module is not None:
        raise RecipeError("`module=` is only for a recipe dict: a LightningModule brings its own parameters.")
    if not isinstance(source, nn.Module) or not callable(getattr(source, "configure_optimizers", None)):
        raise RecipeError(
            "`preview_schedule` takes a LightningModule (with `configure_optimizers`) or a recipe dict such as"
            f" {{'optimizer': 'AdamW', 'lr': 1e-3}}, got {type(source).__name__}."
        )
    legacy = legacy_error(source)
    if legacy is not None:  # Trainer.fit refuses it (the checking callbacks say so first): so does its preview
        raise legacy
    model = module_copy(source)
    attach(model, trainer)
    trainer.model = model
    trainer.callbacks = [copy.deepcopy(c) for c in callbacks] + _own_callbacks(model)
    for callback in trainer.callbacks:
        run_hook(callback, "setup", trainer, model, "fit")
    for name, arguments in (("configure_model", ()), ("setup", ("fit",))):
        if hooks.overridden(model, name):
            try:
                getattr(model, name)(*arguments)
            except Exception as err:
                raise RecipeError(
                    f"`preview_schedule` calls {type(model).__name__}.{name}({', '.join(map(repr, arguments))}) on a"
                    f" copy of the module before `configure_optimizers`, as Trainer.fit does, and it raised"
                    f" {type(err).__name__}: {err}. Make it work without the run's data (the stand-in Trainer knows"
                    " the run's sizes), or preview a recipe dict." + _mesh_advice(model, name)
                ) from err
    model.__dict__.pop("optimizer_setup", None)
    try:
        value = model.configure_optimizers()
    except RecipeError:
        raise
    except Exception as err:
        if isinstance(err, AttributeError) and str(err).startswith("`preview_schedule` runs"):
            raise RecipeError(str(err)) from err  # what the stand-in lacks, said by the stand-in
        raise RecipeError(
            f"`preview_schedule` calls {type(model).__name__}.configure_optimizers() on a copy of the module, with a"
            f" stand-in Trainer that knows the run's sizes, and it raised {type(err).__name__}: {err}. Read the run's"
            " sizes from what it has (`self.trainer.estimated_stepping_batches`, `max_epochs`, `num_training_batches`,"
            " `len(self.trainer.train_dataloader)`), or preview a recipe dict."
        ) from err
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


def attach(model: Any, trainer: StandInTrainer) -> None:
    try:
        model.trainer = trainer  # LightningModule's setter also attaches child LightningModules
    except AttributeError:  # pragma: no cover - a module with a read-only `trainer`
        model._trainer = trainer



def _own_callbacks(model: Any) -> list[Any]:
    """The callbacks the module's own ``configure_callbacks`` returns (the library's own are left out: the preview
    replays what they do)."""
    own = hooks.user_hook(type(model), "configure_callbacks")
    if own is None:
        return []
    made = own(model)
    made = [made] if made is not None and not isinstance(made, Sequence) else list(made or [])
    return [c for c in made if not type(c).__module__.startswith("lightning_optim_recipes.")]


def module_copy(module: nn.Module) -> Any:
    """A deep copy of `module` whose tensors keep their Python attributes: torch's ``Parameter.__deepcopy__`` drops
    them, and modules build their param groups from them (state-spaces/s4's ``p._optim``)."""
    copied = copy.deepcopy(module)
    for (_, original), (_, twin) in zip(_tensors(module), _tensors(copied)):
        if original.__dict__ and not twin.__dict__:
            twin.__dict__.update(original.__dict__)
    return copied


def _tensors(module: nn.Module) -> Any:
    yield from module.named_parameters(remove_duplicate=False)
    yield from module.named_buffers(remove_duplicate=False)


def run_hook(callback: Any, name: str, *arguments: Any) -> None:
    """Call a callback's hook as the preview runs it, turning a failure into a `RecipeError` that says so."""
    hook = getattr(callback, name, None)
    if not callable(hook):
        return
    try:
        hook(*arguments)
    except Exception as err:
        raise RecipeError(
            f"`preview_schedule` ran {type(callback).__name__}.{name} on a copy of it, as Trainer.fit would, and it"
            f" raised {type(err).__name__}: {err}. Preview without that callback (the preview then leaves out what it"
            " does to the optimizers)."
        ) from err


def _mesh_advice(model: Any, hook: str) -> str:
    """For a ``configure_model`` that shards with the strategy's device mesh (`ModelParallelStrategy`), which a
    preview has not: how to preview it."""
    if hook != "configure_model" or getattr(model, "device_mesh", "") is not None:
        return ""
    try:
        source = inspect.getsource(type(model).configure_model)
    except (OSError, TypeError):
        return ""
    if "device_mesh" not in source:
        return ""
    return (" It shards the model with `self.device_mesh`, which only a sharding strategy's Trainer has: begin it"
            " with `if self.device_mesh is None: return`, and the preview builds the optimizers on the unsharded"
            " module, whose param groups are the sharded module's, by name and shape.")
