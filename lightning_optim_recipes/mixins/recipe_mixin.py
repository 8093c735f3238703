"""`OptimRecipeMixin`: a validated (or declarative) `configure_optimizers` for an existing LightningModule."""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any, ClassVar, Optional, Union


from lightning_optim_recipes import schedule_free
from lightning_optim_recipes.before_training import configured
from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.resume.state import ResumeReport
from lightning_optim_recipes.recipe import Recipe, configure_from_recipe, resolve_recipe
from lightning_optim_recipes.recipe_parts import optimizer_class
from lightning_optim_recipes.schedule_free_modes import ScheduleFreeModes
from lightning_optim_recipes.validation import OptimizerSetup, call_explaining_torch_errors, validate_optimizers

__all__ = ["OptimRecipeMixin"]


class OptimRecipeMixin:
    """Mix into a `LightningModule` (of either namespace) to validate its optimizers before training starts.

    (a) Whatever the module's own ``configure_optimizers`` returns is checked with `validate_optimizers` when the
    Trainer calls it, before the first training step; mistakes raise `RecipeError` (torch's bare
    ``KeyError: 'params'`` for ``{'encoder_params': ...}`` included) and nothing trains.
    The mixin can come first in the bases of an existing module (``class M(OptimRecipeMixin, Existing)``): the
    existing ``configure_optimizers`` is kept and validated.
    (b) A module that defines no ``configure_optimizers`` gets one from a declarative recipe (see
    `configure_from_recipe`): ``hparams['optim_recipe']`` (e.g. from a YAML config) or the class attribute
    ``optim_recipe``.

    Example:
        >>> import pytorch_lightning as pl
        >>> from torch import nn
        >>> class Classifier(OptimRecipeMixin, pl.LightningModule):
        ...     optim_recipe = {"optimizer": "AdamW", "lr": 1e-3, "weight_decay": 0.01,
        ...                     "scheduler": {"type": "multistep", "milestones": [10], "gamma": 0.5}}
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.net = nn.Linear(4, 2)
        >>> optimizers, schedulers = Classifier().configure_optimizers()
        >>> type(optimizers[0]).__name__, schedulers[0]["interval"]
        ('AdamW', 'epoch')
    """

    #: The default recipe; ``hparams['optim_recipe']`` takes precedence.
    optim_recipe: ClassVar[Union[Recipe, Mapping[str, Any], None]] = None  # get_recipe(...) or a dict
    #: The validated optimizers and schedulers (set when the Trainer calls ``configure_optimizers``).
    optimizer_setup: Optional[OptimizerSetup] = None
    #: On ``fit(..., ckpt_path=...)``: ``"checkpoint"`` (Lightning's behaviour: the checkpoint's optimizer and
    #: scheduler settings win) or ``"recipe"`` (keep the weights, progress and moments, train with this recipe, every
    #: scheduler placed where training stands). Either way changed settings are reported (see `resume.reconcile`).
    resume: str = "checkpoint"
    #: On a resume whose checkpoint schedule had ended (a cosine at its floor) into a longer run: None (``"recipe"``
    #: stretches the new schedule over the longer run; ``"checkpoint"`` is a `RecipeError` naming the choice),
    #: ``"hold"`` (the lr stays where the schedule ended) or ``"stretch"`` (see `resume.extend`).
    extend_schedule: Optional[str] = None
    #: What the last resume compared (a `ResumeReport`), or None when the fit did not resume.
    resume_report: Optional[ResumeReport] = None
    #: A schedule-free recipe (``optimizer: AdamWScheduleFree``) trains with `ScheduleFreeModes` added for it: the
    #: training batches it forwards to recompute BatchNorm statistics before each evaluation (0: none).
    bn_recompute_batches: int = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("configure_optimizers") or _shadowed_configure_optimizers(cls)
        if isinstance(own, types.FunctionType) and not getattr(own, "_validated_by_recipes", False):
            cls.configure_optimizers = _validated(own)  # type: ignore[method-assign,assignment]

    def configure_optimizers(self) -> Any:
        """Optimizers and schedulers from the module's recipe (``hparams['optim_recipe']`` or ``optim_recipe``)."""
        recipe = self.resolve_optim_recipe()
        if recipe is None:
            raise RecipeError(
                f"{type(self).__name__} has no `configure_optimizers` and no recipe: define `configure_optimizers`,"
                " set the class attribute `optim_recipe = {'optimizer': 'AdamW', 'lr': 1e-3}`, or pass"
                " `optim_recipe` to `__init__` and call `self.save_hyperparameters()`."
            )
        self.__dict__["_recipe_in_use"] = resolved = resolve_recipe(recipe)
        return configure_from_recipe(self, resolved)  # type: ignore[arg-type]

    def configure_callbacks(self) -> Any:
        """The module's own callbacks, and `ScheduleFreeModes` when the recipe's optimizer is schedule-free and the
        Trainer has none (one given to the Trainer, with its own options, is kept)."""
        own = getattr(super(), "configure_callbacks", None)
        callbacks = own() if callable(own) else []
        callbacks = list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks] if callbacks else []
        trainer = getattr(self, "_trainer", None)
        if schedule_free.handler([*getattr(trainer, "callbacks", ()), *callbacks]) is None and \
                _schedule_free_recipe(self.resolve_optim_recipe()):
            callbacks.append(ScheduleFreeModes(bn_recompute_batches=self.bn_recompute_batches))
        return callbacks

    def resolve_optim_recipe(self) -> Optional[Mapping[str, Any]]:
        """The recipe in use: ``hparams['optim_recipe']`` if set, else the ``optim_recipe`` attribute, with the lr
        a learning-rate finder set (`lr`)."""
        hparams = getattr(self, "hparams", None) or {}
        recipe = hparams.get("optim_recipe") if hasattr(hparams, "get") else None
        recipe = recipe if recipe is not None else self.optim_recipe
        found = self.__dict__.get("_found_lr")
        if recipe is None or found is None:
            return recipe
        return _with_lr(resolve_recipe(recipe), found)  # type: ignore[return-value]

    @property
    def recipe_values(self) -> dict[str, Any]:
        """The recipe's ``values``, numbers for the module's own loss (e.g. ``gradient_penalty`` of ``wgan-gp``).

        Example:
            >>> import pytorch_lightning as pl
            >>> class WGAN(OptimRecipeMixin, pl.LightningModule):
            ...     optim_recipe = {"recipe": "wgan-gp"}
            >>> WGAN().recipe_values
            {'gradient_penalty': 10.0}
        """
        recipe = self.resolve_optim_recipe()
        return dict(resolve_recipe(recipe).get("values") or {}) if recipe is not None else {}

    @property
    def lr(self) -> float:
        """The recipe's learning rate (of its top-level optimizer); setting it keeps the ratios of the other lrs
        (``overrides``, layer-wise decay). Lightning's learning-rate finder (``Tuner(trainer).lr_find(module)``)
        reads and sets it, so the lr it finds lands in the recipe. A module without a recipe keeps a plain ``lr``."""
        recipe = self.resolve_optim_recipe() if self.optim_recipe is not None or _hparams_recipe(self) else None
        if recipe is None:
            if "_plain_lr" in self.__dict__:
                return self.__dict__["_plain_lr"]
            raise AttributeError(f"{type(self).__name__} has no `lr` (and no recipe)")
        resolved = resolve_recipe(recipe)
        if "optimizers" in resolved:
            raise AttributeError(f"{type(self).__name__}'s recipe has several optimizers: it has no single `lr`")
        return float(resolved["lr"])

    @lr.setter
    def lr(self, value: float) -> None:
        if self.optim_recipe is None and not _hparams_recipe(self):
            self.__dict__["_plain_lr"] = value
            return
        self.__dict__["_found_lr"] = float(value)

    def configure_gradient_clipping(
        self, optimizer: Any, gradient_clip_val: Optional[float] = None, gradient_clip_algorithm: Optional[str] = None
    ) -> None:
        """Lightning's clipping; when the Trainer sets none, the recipe's ``gradient_clip_val`` (if any)."""
        recipe = self.__dict__.get("_recipe_in_use")
        if gradient_clip_val is None and recipe is not None and recipe.get("gradient_clip_val") is not None:
            gradient_clip_val = recipe["gradient_clip_val"]
            gradient_clip_algorithm = recipe.get("gradient_clip_algorithm", "norm")
        super().configure_gradient_clipping(  # type: ignore[misc]
            optimizer, gradient_clip_val=gradient_clip_val, gradient_clip_algorithm=gradient_clip_algorithm
        )

    def finish_optimizer_setup(self, setup: OptimizerSetup) -> Any:
        """Keep the validated setup and turn it into what the Trainer receives (mixins that build on this one
        override it)."""
        self.optimizer_setup = setup
        self.resume_report = configured(self, setup, getattr(self, "_trainer", None), own_resume=self.resume)
        return setup.lightning_value(manual=not getattr(self, "automatic_optimization", True))


def _schedule_free_recipe(recipe: Optional[Mapping[str, Any]]) -> bool:
    """Whether an optimizer of `recipe` has train and eval modes to switch (a schedule-free optimizer's class)."""
    if recipe is None:
        return False
    resolved = resolve_recipe(recipe)
    specs = list(resolved["optimizers"].values()) if "optimizers" in resolved else [resolved]
    return any(schedule_free.class_has_modes(optimizer_class(spec.get("optimizer", "AdamW"))) for spec in specs)


def _hparams_recipe(module: Any) -> bool:
    hparams = getattr(module, "hparams", None) or {}
    return hasattr(hparams, "get") and hparams.get("optim_recipe") is not None


def _with_lr(recipe: dict[str, Any], lr: float) -> dict[str, Any]:
    """`recipe` with its top-level lr set to `lr`, the overrides' own lrs scaled by the same ratio."""
    ratio = lr / recipe["lr"]
    recipe = dict(recipe, lr=lr)
    overrides = recipe.get("overrides")
    if overrides:
        recipe["overrides"] = {k: ({**v, "lr": v["lr"] * ratio} if isinstance(v, dict) and "lr" in v else v)
                               for k, v in overrides.items()}
    return recipe


def _shadowed_configure_optimizers(cls: type) -> Optional[Callable[[Any], Any]]:
    """A user's ``configure_optimizers`` in a base listed after the mixin (``class M(OptimRecipeMixin, Existing)``),
    which the mixin's recipe version would otherwise hide; None when the mixin's version is not in the way."""
    definers = [klass for klass in cls.__mro__[1:] if "configure_optimizers" in klass.__dict__]
    if len(definers) < 2 or definers[0] is not OptimRecipeMixin:
        return None
    base = definers[1]
    if base.__module__.partition(".")[0] in ("pytorch_lightning", "lightning", "lightning_fabric"):
        return None  # Lightning's own placeholder: the module defines none, so the recipe provides it
    return base.__dict__["configure_optimizers"]


def _validated(configure_optimizers: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap a `configure_optimizers` so that its outermost call returns a validated, normalized configuration."""

    @functools.wraps(configure_optimizers)
    def wrapper(self: Any) -> Any:
        if self.__dict__.get("_recipes_in_configure"):  # a `super().configure_optimizers()` call: pass it through
            return configure_optimizers(self)
        self.__dict__["_recipes_in_configure"] = True
        try:
            value = call_explaining_torch_errors(lambda: configure_optimizers(self), self)
        finally:
            self.__dict__["_recipes_in_configure"] = False
        return self.finish_optimizer_setup(validate_optimizers(value, module=self))

    wrapper._validated_by_recipes = True  # type: ignore[attr-defined]
    return wrapper


OptimRecipeMixin.configure_optimizers = _validated(  # type: ignore[method-assign,assignment]
    OptimRecipeMixin.configure_optimizers
)
