"""`ConfigureOptimizersCheck`: the library's checks for any `LightningModule`, with no change to its class."""

from __future__ import annotations

from typing import Any, Optional

from lightning_optim_recipes import fit_checks, hooks
from lightning_optim_recipes.errors import warn
from lightning_optim_recipes._lightning import callback_bases
from lightning_optim_recipes.before_training import configured
from lightning_optim_recipes.resume.state import ResumeReport, check_choice, request
from lightning_optim_recipes.validation import (
    OptimizerSetup,
    call_explaining_torch_errors,
    legacy_error,
    validate_optimizers,
)

__all__ = ["ConfigureOptimizersCheck"]

_WRAPPED = "_configure_optimizers_check"
_UNCALLED = "_configure_optimizers_check_uncalled"


class ConfigureOptimizersCheck(*callback_bases()):  # type: ignore[misc]
    """Check what ``configure_optimizers`` returns, before the first training step, for any LightningModule.

    The module needs no mixin: the callback checks the return value with `validate_optimizers` when the Trainer
    calls ``configure_optimizers`` (automatic or manual optimization, either Lightning namespace) and raises what it
    raises, a `RecipeError` that names the mistake and the fix. Torch's bare ``KeyError: 'params'`` from a param
    group keyed ``'encoder_params'`` becomes the same clear error. It also runs the checks before training that the
    library's mixins run: schedules that do not fit the run (`RecipeWarning`), a ``ReduceLROnPlateau`` that
    monitors a validation metric on epochs without validation. `SchedulerCadenceCheck` performs the same checks.

    A module that uses `OptimRecipeMixin` or `AlternatingOptimizersMixin` is checked by the mixin itself; the
    callback then only reads its result. After the check, ``optimizer_setup`` holds the validated `OptimizerSetup`.

    When the fit resumes from a checkpoint (``ckpt_path=``), it warns with a table of the optimizer and scheduler
    settings that the checkpoint overrides (see `lightning_optim_recipes.resume`). ``resume="recipe"`` keeps the
    weights, the training progress and the optimizers' moments but trains with the new recipe, every scheduler placed
    where training stands; ``resume="checkpoint"`` is Lightning's behaviour; None (default) leaves it to the module's
    ``resume`` (the mixins' option), else ``"checkpoint"``. The comparison (a `ResumeReport`, None when not resuming)
    is kept as ``resume_report``.

    Example:
        >>> import pytorch_lightning as pl
        >>> import torch
        >>> class Model(pl.LightningModule):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.layer = torch.nn.Linear(2, 1)
        ...     def training_step(self, batch, batch_idx):
        ...         return self.layer(batch).sum()
        ...     def configure_optimizers(self):
        ...         opt = torch.optim.SGD(self.parameters(), lr=0.1)
        ...         return {"optimizer": opt, "lr_schedular": torch.optim.lr_scheduler.StepLR(opt, 1)}  # typo
        >>> trainer = pl.Trainer(max_epochs=1, callbacks=[ConfigureOptimizersCheck()], logger=False,
        ...                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
        >>> trainer.fit(Model(), torch.utils.data.DataLoader(torch.randn(4, 2)))
        Traceback (most recent call last):
        ...
        lightning_optim_recipes.errors.RecipeError: Unknown key 'lr_schedular' in the optimizer dict returned by `configure_optimizers`: did you mean 'lr_scheduler'? ...
    """

    def __init__(self, resume: Optional[str] = None) -> None:
        self.optimizer_setup: Optional[OptimizerSetup] = None
        self.resume = None if resume is None else check_choice(resume)
        self.resume_report: Optional[ResumeReport] = None

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage != "fit":
            return
        _refuse_1x(pl_module)
        if _UNCALLED not in pl_module.__dict__:  # once per fit, whichever checking callback comes first
            pl_module.__dict__[_UNCALLED] = True
            _warn_uncalled(pl_module)
        self.optimizer_setup, self.resume_report = None, None
        request(pl_module, self.resume, type(self).__name__)  # read when the optimizers are built
        if getattr(type(pl_module).configure_optimizers, "_validated_by_recipes", False):
            return  # the library's mixins validate (and run the checks) themselves
        if _WRAPPED in pl_module.__dict__:
            return  # another checking callback is already on it
        original = pl_module.configure_optimizers
        check = self

        def configure_optimizers() -> Any:
            value = call_explaining_torch_errors(original, pl_module)
            check.optimizer_setup = validate_optimizers(value, module=pl_module)
            check.before_training(trainer, pl_module, check.optimizer_setup)
            return value

        pl_module.__dict__[_WRAPPED] = original
        pl_module.configure_optimizers = configure_optimizers

    def before_training(self, trainer: Any, pl_module: Any, setup: OptimizerSetup) -> None:
        """The checks that run once ``configure_optimizers`` has been validated, before the first training step."""
        self.resume_report = configured(pl_module, setup, trainer, at=original_line(pl_module), owner=self)

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._unwrap(pl_module)
        if self.optimizer_setup is None:
            self.optimizer_setup = getattr(pl_module, "optimizer_setup", None)
        if self.resume_report is None:
            self.resume_report = getattr(pl_module, "resume_report", None)  # a mixin's

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._unwrap(pl_module)
        if isinstance(exception, NotImplementedError) and "has been removed in v2.0.0" in str(exception):
            _refuse_1x(pl_module, exception)  # Lightning refuses `training_epoch_end` before any callback hook

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._unwrap(pl_module)

    @staticmethod
    def _unwrap(pl_module: Any) -> None:  # noqa: D102
        pl_module.__dict__.pop(_UNCALLED, None)
        if pl_module.__dict__.pop(_WRAPPED, None) is not None:
            pl_module.__dict__.pop("configure_optimizers", None)


def original_line(pl_module: Any) -> Any:
    """The module's own ``configure_optimizers`` (the callback wraps it on the instance while it checks)."""
    return pl_module.__dict__.get(_WRAPPED) or fit_checks.user_line(pl_module)


def _refuse_1x(pl_module: Any, cause: Optional[BaseException] = None) -> None:
    """A Lightning 1.x module without `AlternatingOptimizersMixin`: the library's error, before Lightning's own (a
    `TypeError` deep in its loop for a 1.x ``training_step``, or its refusal of ``training_epoch_end``)."""
    error = legacy_error(pl_module)
    if error is not None:
        raise error from cause


def _warn_uncalled(pl_module: Any) -> None:
    """A manual-optimization module's own ``optimizer_step`` (or ``optimizer_zero_grad``, ``lr_scheduler_step``,
    ``configure_gradient_clipping``): Lightning never calls it, so its code is skipped in silence. Say so."""
    if getattr(pl_module, "_alternates_optimizers", False):
        return  # the alternating mixin calls them itself
    found = hooks.uncalled_hooks(type(pl_module), getattr(pl_module, "automatic_optimization", True))
    if not found:
        return
    shown = ", ".join(f"`{name}`" for name in found)
    one = len(found) == 1
    warn(
        f"{type(pl_module).__name__} overrides {shown}, but under manual optimization (`self.automatic_optimization ="
        f" False`) Lightning never calls {'it' if one else 'them'}: {'its' if one else 'their'} code never runs."
        " Do that work in `training_step` (call `opt.step()` as many times as you need, `sch.step()` where the"
        f" schedule should move, `self.clip_gradients(...)` before a step), or remove the override"
        f"{'' if one else 's'}. If that is deliberate, silence this with `warnings.filterwarnings('ignore',"
        " '.*under manual optimization .* Lightning never calls')`.",
        at=hooks.user_hook(type(pl_module), found[0]),
    )
