"""`AlternatingOptimizersMixin`: several optimizers, and WGAN-style ``n_critic`` alternation, on Lightning 2.x.

Lightning 2.0 dropped several optimizers under automatic optimization and the optimizer dicts' ``'frequency'``.
The mixin brings both back on top of manual optimization. Its cadence is the library's one model of the training
loop (`lightning_optim_recipes.cadence`), which the preview and the cadence check share:

+------------------------+--------------------------------------------------------------------------------------------+
| What                   | Rule                                                                                       |
+========================+============================================================================================+
| Active optimizer       | Exactly one per batch: block ``p % sum(f)`` of the cycle, ``p`` = within-epoch             |
| (frequencies ``f``)    | ``batch_idx`` (``alternation_cycle = "epoch"``, Lightning 1.9, restarts every epoch) or    |
|                        | the run-wide batch count (``alternation_cycle = "run"``: an exact n_critic:1 ratio).       |
+------------------------+--------------------------------------------------------------------------------------------+
| No frequencies         | Every optimizer on every batch, in list order, each with its own forward pass.             |
+------------------------+--------------------------------------------------------------------------------------------+
| One optimizer's turn   | Its step function runs with only its parameters requiring grad (``toggle_optimizer``; a    |
|                        | parameter shared by several optimizers requires grad in each one's turn); zero_grad on the |
|                        | first batch of its window; backward; step. Its gradient is exactly that of its own         |
|                        | loss(es).                                                                                  |
+------------------------+--------------------------------------------------------------------------------------------+
| Accumulation ``A``     | Per optimizer: it steps once every ``A`` of its *own* active batches, on the sum of their  |
|                        | gradients scaled by ``1/A``; a partial window steps on the epoch's last batch.             |
+------------------------+--------------------------------------------------------------------------------------------+
| Clipping               | On the optimizer's gradients right before its step (after AMP unscaling).                  |
+------------------------+--------------------------------------------------------------------------------------------+
| 'step' scheduler,      | Right after every ``f``-th step of its own optimizer (counted over the run);               |
| frequency f            | ``ReduceLROnPlateau`` after the validation that runs on that batch, as Lightning does.     |
+------------------------+--------------------------------------------------------------------------------------------+
| 'epoch' scheduler,     | At the end of every ``f``-th epoch (on the last batch; ``ReduceLROnPlateau`` in            |
| frequency f            | ``on_train_epoch_end``, after validation, reading ``trainer.callback_metrics``).           |
+------------------------+--------------------------------------------------------------------------------------------+
| A module's             | Called on the optimizer's turn when its window closes, with 1.x's closure (see `_port1x`); |
| ``optimizer_step``     | it decides how often to step. Schedulers follow the turns that close a window (once each,  |
|                        | however many steps the override takes); clipping runs before each of its steps;            |
|                        | accumulation decides which turns call it.                                                  |
+------------------------+--------------------------------------------------------------------------------------------+
| ``global_step``        | Counts optimizer steps, as in Lightning.                                                   |
+------------------------+--------------------------------------------------------------------------------------------+
| Checkpoints            | The run-wide position, per-optimizer step counts and open accumulation windows (their      |
|                        | gradients included) are saved by a callback the mixin attaches itself.                     |
+------------------------+--------------------------------------------------------------------------------------------+
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Optional, Union

from lightning_optim_recipes import cadence, hooks
from lightning_optim_recipes.before_training import configured
from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.mixins import _alternation, _callback, _port1x, _turns
from lightning_optim_recipes.mixins.recipe_mixin import OptimRecipeMixin
from lightning_optim_recipes.validation import OptimizerSetup

__all__ = ["AlternatingOptimizersMixin"]

STATE_KEY = _callback.STATE_KEY


class AlternatingOptimizersMixin(OptimRecipeMixin):
    """Train several optimizers, alternating them WGAN-style, on Lightning 2.x: ``class GAN(AlternatingOptimizersMixin,
    LightningModule)``.

    ``configure_optimizers`` may return any multi-optimizer form of Lightning 1.x: ``(gen_opt, dis_opt)``,
    ``[gen_opt, dis_opt], [schedulers or scheduler dicts]``, or ``({'optimizer': dis_opt, 'frequency': 5,
    'lr_scheduler': ...}, {'optimizer': gen_opt, 'frequency': 1})``. The loss of each optimizer comes from either

    * a 1.x ``training_step(self, batch, batch_idx, optimizer_idx)`` returning the loss of optimizer
      ``optimizer_idx`` (a port from 1.x needs no other change: the other 1.x hooks that took ``optimizer_idx``,
      ``optimizer_step`` included, are called as 1.9 called them; returning None skips that optimizer's step), or
    * the explicit form, one method ``(batch, batch_idx) -> loss`` per optimizer, bound to the optimizer that holds
      the submodule it trains: ``alternation = {"critic_step": {"trains": "critic", "batches": 5},
      "generator_step": {"trains": "generator", "batches": 1}}``. The short form ``{"critic_step": 5,
      "generator_step": 1}`` binds by position (the i-th method to the i-th optimizer; an evidently swapped order is
      an error). A list of names runs every method on every batch. Set it as a class attribute or in ``__init__``.

    The module runs under manual optimization. ``Trainer(accumulate_grad_batches=..., gradient_clip_val=...,
    gradient_clip_algorithm=...)`` apply to every optimizer, as in Lightning 1.x; the module's options of the same
    names set them per optimizer (one value, or one per optimizer). ``alternation_cycle = "run"``
    makes the cycle run on across epochs (Gulrajani et al.'s Algorithm 1); the default ``"epoch"`` restarts it at
    every epoch as Lightning 1.9 did. Options are class attributes or instance attributes set in ``__init__``.
    See the module docstring for the full table of rules. Under ``strategy="ddp"`` the mixin turns on DDP's
    ``find_unused_parameters`` unless it was set (each backward feeds one optimizer's parameters only).

    For callbacks: ``optimizer_setup`` (the validated `OptimizerSetup`), ``alternation_frequencies``,
    ``optimizer_roles``, ``optimizer_step_counts`` (per optimizer, over the run), ``accumulation_windows`` and
    ``alternation_position`` (batches trained over the run).

    Example:
        >>> import pytorch_lightning as pl
        >>> import torch
        >>> from torch import nn
        >>> class WGAN(AlternatingOptimizersMixin, pl.LightningModule):
        ...     alternation = {"critic_step": {"trains": "critic", "batches": 5},    # n_critic = 5
        ...                    "generator_step": {"trains": "generator", "batches": 1}}
        ...     alternation_cycle = "run"
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.critic, self.generator = nn.Linear(2, 1), nn.Linear(2, 2)
        ...     def critic_step(self, batch, batch_idx):
        ...         fake = self.generator(torch.randn_like(batch))
        ...         return self.critic(fake).mean() - self.critic(batch).mean()
        ...     def generator_step(self, batch, batch_idx):
        ...         return -self.critic(self.generator(torch.randn_like(batch))).mean()
        ...     def configure_optimizers(self):  # any order: each step is bound to what it trains
        ...         return (torch.optim.Adam(self.generator.parameters(), lr=1e-4),
        ...                 torch.optim.Adam(self.critic.parameters(), lr=1e-4))
        >>> gan = WGAN()
        >>> trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        ...                      enable_model_summary=False)
        >>> trainer.fit(gan, torch.utils.data.DataLoader(torch.randn(36, 2), batch_size=3))  # 12 batches
        >>> gan.optimizer_roles, gan.optimizer_step_counts, trainer.global_step
        (('generator', 'critic'), (2, 10), 12)
    """

    #: Tells `validate_optimizers` that several optimizers and optimizer frequencies are handled here.
    _alternates_optimizers: ClassVar[bool] = True
    #: Explicit form: ``{method: batches}``, ``{method: {"trains": submodule, "batches": n}}``, or a list of methods.
    alternation: Optional[Union[Mapping[str, Any], Sequence[Any]]] = None
    #: ``"epoch"``: the cycle position is the within-epoch ``batch_idx`` (Lightning 1.9); ``"run"``: run-wide.
    alternation_cycle: str = "epoch"
    #: Per-optimizer gradient accumulation over its own active batches (one value, or one per optimizer).
    accumulate_grad_batches: Union[int, Sequence[int]] = 1
    #: Gradient clipping before each optimizer step (None: none); one value, or one per optimizer.
    gradient_clip_val: Optional[Union[float, Sequence[Optional[float]]]] = None
    #: ``"norm"`` or ``"value"``.
    gradient_clip_algorithm: str = "norm"
    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, wrap, marker in _WRAPPED_HOOKS:
            own = cls.__dict__.get(name)
            if own is None:  # `class Ported(AlternatingOptimizersMixin, Old1xModule)`: adopt the base's hook
                own = _shadowed_by_mixins(cls, name)
            if isinstance(own, types.FunctionType) and not getattr(own, marker, False):
                wrapped = wrap(own)
                if wrapped is not own:
                    setattr(cls, name, wrapped)
        epoch_end = hooks.user_hook(cls, "training_epoch_end")
        if callable(epoch_end):  # 1.x's hook, which Lightning 2 refuses: the mixin calls it (see `_port1x`)
            setattr(cls, _port1x.EPOCH_END_1X, epoch_end)
            cls.training_epoch_end = None  # type: ignore[attr-defined]

    # ------------------------------------------------------------------------------------------- Lightning hooks

    @property
    def automatic_optimization(self) -> bool:
        """Always False: the mixin steps the optimizers itself (manual optimization)."""
        return False

    @automatic_optimization.setter
    def automatic_optimization(self, value: bool) -> None:
        if value:
            raise RecipeError(
                f"{type(self).__name__} uses AlternatingOptimizersMixin, which runs under manual optimization:"
                " remove `self.automatic_optimization = True`."
            )
        self.__dict__["_set_manual_optimization"] = True  # a 1.3/1.4 manual module: checked at fit start

    def training_step(self, batch: Any, batch_idx: int = 0, *args: Any, **kwargs: Any) -> Any:
        """Run the optimizers whose turn it is on this batch (the explicit ``alternation`` form); reached by
        ``super().training_step(...)`` from a ported step, call the base class's step."""
        if self.__dict__.get("_in_alternation"):
            return _SUPER_TRAINING_STEP(self, batch, batch_idx, *args, **kwargs)
        return _turns.run_batch(self, batch, batch_idx, None)

    def configure_callbacks(self) -> Any:
        """The mixin's own callback (checkpoint state, clipping, plateau schedulers); checks the Trainer's options."""
        return []

    def finish_optimizer_setup(self, setup: OptimizerSetup) -> Any:
        """Keep the validated setup and plan the alternation; hand Lightning its manual-optimization form."""
        self.optimizer_setup = setup
        trainer = getattr(self, "_trainer", None)
        adopted = any(f"_trainer_{k}" in self.__dict__ for k in ("accumulate_grad_batches", "gradient_clip_val"))
        if trainer is not None and not adopted:  # `preview_schedule`'s stand-in Trainer (a fit adopts them earlier)
            _callback.adopt_trainer_options(trainer, self)
        hooks.resolve_hooks(self, AlternatingOptimizersMixin)  # once, not on every call of every batch
        plan = self.__dict__["_alternation_plan"] = _alternation.make_plan(self, setup)
        state = self.__dict__.get("_alternation_state")
        if state is None or len(state.loop.steps) != len(setup.optimizers):
            self.__dict__["_alternation_state"] = _alternation.State(cadence.LoopState.fresh(len(setup.optimizers)))
        self.resume_report = configured(self, setup, trainer, loop=plan.loop, own_resume=self.resume)
        return setup.lightning_value(manual=True)

    # ---------------------------------------------------------------------------------------- for callbacks

    @property
    def alternation_frequencies(self) -> Optional[tuple[int, ...]]:
        """The optimizers' frequencies in use (from ``alternation`` or ``'frequency'``), or None: all on every batch."""
        plan = self.__dict__.get("_alternation_plan")
        return plan.loop.frequencies if plan is not None else None

    @property
    def training_cadence(self) -> Optional[cadence.Loop]:
        """This module's training loop as the library's cadence model (`lightning_optim_recipes.cadence.Loop`): what
        `preview_schedule` and `SchedulerCadenceCheck` replay. None until ``configure_optimizers`` has run."""
        plan = self.__dict__.get("_alternation_plan")
        return plan.loop if plan is not None else None

    @property
    def optimizer_roles(self) -> Optional[tuple[str, ...]]:
        """Per optimizer, what its step trains (``"critic"``, ``"generator"``) in the explicit form, else None."""
        plan = self.__dict__.get("_alternation_plan")
        return plan.roles if plan is not None else None

    @property
    def optimizer_step_counts(self) -> tuple[int, ...]:
        """How many turns of each optimizer ended with its step, over the run (restored from checkpoints); with a
        module's own ``optimizer_step``, how many times it was called to step."""
        state = self.__dict__.get("_alternation_state")
        return tuple(state.loop.steps) if state is not None else ()

    @property
    def accumulation_windows(self) -> tuple[int, ...]:
        """How many backward passes each optimizer has accumulated since its last step."""
        state = self.__dict__.get("_alternation_state")
        return tuple(state.loop.windows) if state is not None else ()

    @property
    def alternation_position(self) -> int:
        """How many batches have been trained over the run (the position of the ``"run"`` cycle)."""
        state = self.__dict__.get("_alternation_state")
        return state.loop.position if state is not None else 0


# 1.x hooks reached by `super().<hook>(...)` from a ported module: forwarded with the arguments the next class takes
_SUPER_TRAINING_STEP = hooks.forward_super("training_step", AlternatingOptimizersMixin)
for _name in ("optimizer_step", "backward", "optimizer_zero_grad", "toggle_optimizer", "untoggle_optimizer",
              "lr_scheduler_step", "configure_gradient_clipping"):
    setattr(AlternatingOptimizersMixin, _name, hooks.forward_super(_name, AlternatingOptimizersMixin))



def _shadowed_by_mixins(cls: type, name: str) -> Optional[Callable[..., Any]]:
    """A user base's hook that the mixins would hide: ``Old1xModule.training_step`` in
    ``class Ported(AlternatingOptimizersMixin, Old1xModule)`` (None when the first definer is not a mixin)."""
    definers = [klass for klass in cls.__mro__ if name in klass.__dict__]
    if not definers or not definers[0].__module__.startswith("lightning_optim_recipes."):
        return None
    for klass in definers:
        if klass.__module__.startswith("lightning_optim_recipes."):
            continue
        if hooks.is_lightning_class(klass):
            return None
        return klass.__dict__[name]
    return None


# ------------------------------------------------------------------------------------------ wrapped hooks


def _signature_template(self: Any, batch: Any, batch_idx: int) -> Any:  # the signature Lightning sees
    raise NotImplementedError  # pragma: no cover


_TRAINING_STEP_SIGNATURE = inspect.signature(_signature_template)


def _dispatching_training_step(user_step: Callable[..., Any]) -> Callable[..., Any]:
    """Replace a subclass's ``training_step`` by the mixin's dispatch, with the ``(batch, batch_idx)`` signature
    Lightning 2 accepts; the user's function is called once per active optimizer."""

    def training_step(self: Any, batch: Any, batch_idx: int = 0, *args: Any, **kwargs: Any) -> Any:
        if self.__dict__.get("_in_alternation") or args or kwargs:  # our own call, or a `super().training_step(...)`
            return user_step(self, batch, batch_idx, *args, **kwargs)
        return _turns.run_batch(self, batch, batch_idx, user_step)

    training_step.__name__ = user_step.__name__
    training_step.__qualname__ = user_step.__qualname__
    training_step.__doc__ = user_step.__doc__
    training_step.__module__ = user_step.__module__
    training_step.__signature__ = _TRAINING_STEP_SIGNATURE  # type: ignore[attr-defined]
    training_step.__wrapped_1x__ = user_step  # type: ignore[attr-defined]
    training_step._alternation_dispatch = True  # type: ignore[attr-defined]
    return training_step


def _index_of(module: Any, optimizer: Any) -> int:
    plan = module.__dict__.get("_alternation_plan")
    index = plan.index_of.get(id(optimizer)) if plan is not None else None
    return 0 if index is None else index


def _adapted_on_before_optimizer_step(function: Callable[..., Any]) -> Callable[..., Any]:
    """The module's ``on_before_optimizer_step`` (1.x or 2.x form), followed by the mixin's clipping."""
    wrapped = _port1x.wrap_on_before_optimizer_step(function, _index_of, _callback.clip)
    wrapped._alternation_adapted = True  # type: ignore[attr-defined]
    return wrapped


def _with_alternation_callback(configure_callbacks: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap ``configure_callbacks``: check the options and the Trainer, reset the run state, add the mixin's callback.

    Lightning calls it before it checks the Trainer's options and before it restores callbacks from a checkpoint.
    """

    @functools.wraps(configure_callbacks)
    def wrapper(self: Any) -> Any:
        callbacks = configure_callbacks(self)
        if callbacks is None:
            callbacks = []
        elif not isinstance(callbacks, Sequence):
            callbacks = [callbacks]
        ours = self.__dict__.get("_alternation_callback")
        if ours is None:
            ours = self.__dict__["_alternation_callback"] = _callback.callback_class()(self)
        trainer = getattr(self, "_trainer", None)
        if trainer is not None and trainer.state.fn == "fit":
            _alternation.check_options(self)
            _port1x.check_super_calls(type(self), AlternatingOptimizersMixin)
            _callback.adopt_trainer_options(trainer, self)
            _let_ddp_skip_other_optimizers_parameters(trainer.strategy)
            _port1x.warn_removed_hooks(self)
            self.__dict__["_alternation_state"] = None  # a new fit starts afresh unless a checkpoint restores it
        return [c for c in callbacks if c is not ours] + [ours]

    wrapper._with_alternation = True  # type: ignore[attr-defined]
    return wrapper


_WRAPPED_HOOKS = (
    ("training_step", _dispatching_training_step, "_alternation_dispatch"),
    ("configure_callbacks", _with_alternation_callback, "_with_alternation"),
    ("on_before_optimizer_step", _adapted_on_before_optimizer_step, "_alternation_adapted"),
)

AlternatingOptimizersMixin.configure_callbacks = _with_alternation_callback(  # type: ignore[method-assign,assignment]
    AlternatingOptimizersMixin.configure_callbacks
)
AlternatingOptimizersMixin.training_step._alternation_dispatch = True  # type: ignore[attr-defined]
# Lightning reads the step's signature on every batch (`is_param_in_hook_signature`): give it the one it needs, ready
AlternatingOptimizersMixin.training_step.__signature__ = _TRAINING_STEP_SIGNATURE  # type: ignore[attr-defined]
AlternatingOptimizersMixin.on_before_optimizer_step = _adapted_on_before_optimizer_step(  # type: ignore[attr-defined]
    hooks.forward_super("on_before_optimizer_step", AlternatingOptimizersMixin))


def _let_ddp_skip_other_optimizers_parameters(strategy: Any) -> None:
    """Under DDP, turn on ``find_unused_parameters`` unless the user set it: each backward feeds one optimizer's
    parameters only (the others are toggled off), which DDP's default refuses after the first step."""
    kwargs = getattr(strategy, "_ddp_kwargs", None)
    if isinstance(kwargs, dict) and "find_unused_parameters" not in kwargs:
        kwargs["find_unused_parameters"] = True
