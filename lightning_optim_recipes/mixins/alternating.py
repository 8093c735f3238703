"""`AlternatingOptimizersMixin`: several optimizers, and WGAN-style ``n_critic`` alternation, on Lightning 2.x.

Lightning 2.0 dropped several optimizers under automatic optimization and the optimizer dicts' ``'frequency'``.
The mixin brings both back on top of manual optimization, with the cadence written down below and checked by tests.

=============================  ========================================================================================
What                           Rule
=============================  ========================================================================================
Active optimizer (frequencies  Exactly one per batch: block ``p % sum(f)`` of the cycle, ``p`` = within-epoch
``f``)                         ``batch_idx`` (``alternation_cycle = "epoch"``, Lightning 1.9, restarts every epoch) or
                               the run-wide batch count (``alternation_cycle = "run"``: an exact n_critic:1 ratio).
No frequencies                 Every optimizer on every batch, in list order, each with its own forward pass.
One optimizer's turn           Its step function runs with only its parameters requiring grad (``toggle_optimizer``);
                               zero_grad before the first backward of its window; backward; step. Its gradient is
                               exactly that of its own loss(es).
Accumulation ``A``             Per optimizer: it steps once every ``A`` of its *own* active batches, on the sum of
                               their gradients scaled by ``1/A``; a partial window steps on the epoch's last batch.
Clipping                       On the optimizer's gradients right before its step (after AMP unscaling).
'step' scheduler, frequency f  Right after every ``f``-th step of its own optimizer (counted over the run).
'epoch' scheduler, frequency f At the end of every ``f``-th epoch (on the last batch; ``ReduceLROnPlateau`` in
                               ``on_train_epoch_end``, after validation, reading ``trainer.callback_metrics``).
``global_step``                Counts optimizer steps, as in Lightning.
Checkpoints                    The run-wide position, per-optimizer step counts and open accumulation windows (their
                               gradients included) are saved by a callback the mixin attaches itself.
=============================  ========================================================================================
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Optional, Union

import torch

from lightning_optim_recipes.cadence import active_optimizer
from lightning_optim_recipes._lightning import callback_bases
from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.mixins.recipe_mixin import OptimRecipeMixin
from lightning_optim_recipes.validation import OptimizerSetup, SchedulerSpec

__all__ = ["AlternatingOptimizersMixin"]

_CYCLES = ("epoch", "run")
_CLIP_ALGORITHMS = ("norm", "value")
STATE_KEY = "AlternatingOptimizersMixin"


class AlternatingOptimizersMixin(OptimRecipeMixin):
    """Train several optimizers, alternating them WGAN-style, on Lightning 2.x: ``class GAN(AlternatingOptimizersMixin,
    LightningModule)``.

    ``configure_optimizers`` may return any multi-optimizer form of Lightning 1.x: ``(gen_opt, dis_opt)``,
    ``[gen_opt, dis_opt], [schedulers or scheduler dicts]``, or ``({'optimizer': dis_opt, 'frequency': 5,
    'lr_scheduler': ...}, {'optimizer': gen_opt, 'frequency': 1})``. The loss of each optimizer comes from either

    * a 1.x ``training_step(self, batch, batch_idx, optimizer_idx)`` returning the loss of optimizer
      ``optimizer_idx`` (a port from 1.x needs no other change; returning None skips that optimizer's step), or
    * the explicit form: ``alternation = {"critic_step": n_critic, "generator_step": 1}`` names one method
      ``(batch, batch_idx) -> loss`` per optimizer, in the order ``configure_optimizers`` returns them, with how
      many consecutive batches each runs (a list of names: every method on every batch). Set it as a class
      attribute or in ``__init__`` (``self.alternation = {...}``).

    The module runs under manual optimization; Lightning's ``Trainer(accumulate_grad_batches=...,
    gradient_clip_val=...)`` do not apply to it: set the mixin's options instead (one value, or one per optimizer):
    ``accumulate_grad_batches``, ``gradient_clip_val``, ``gradient_clip_algorithm``. ``alternation_cycle = "run"``
    makes the cycle run on across epochs (Gulrajani et al.'s Algorithm 1); the default ``"epoch"`` restarts it at
    every epoch as Lightning 1.9 did. Options are class attributes or instance attributes set in ``__init__``.
    See the module docstring for the full table of rules. Under ``strategy="ddp"`` the mixin turns on DDP's
    ``find_unused_parameters`` unless it was set (each backward feeds one optimizer's parameters only).

    For callbacks: ``optimizer_setup`` (the validated `OptimizerSetup`), ``alternation_frequencies``,
    ``optimizer_step_counts`` (per optimizer, over the run), ``accumulation_windows`` and
    ``alternation_position`` (batches trained over the run).

    Example:
        >>> import pytorch_lightning as pl
        >>> import torch
        >>> from torch import nn
        >>> class WGAN(AlternatingOptimizersMixin, pl.LightningModule):
        ...     alternation = {"critic_step": 5, "generator_step": 1}   # n_critic = 5
        ...     alternation_cycle = "run"
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.critic, self.generator = nn.Linear(2, 1), nn.Linear(2, 2)
        ...     def critic_step(self, batch, batch_idx):
        ...         fake = self.generator(torch.randn_like(batch))
        ...         return self.critic(fake).mean() - self.critic(batch).mean()
        ...     def generator_step(self, batch, batch_idx):
        ...         return -self.critic(self.generator(torch.randn_like(batch))).mean()
        ...     def configure_optimizers(self):
        ...         return (torch.optim.Adam(self.critic.parameters(), lr=1e-4),
        ...                 torch.optim.Adam(self.generator.parameters(), lr=1e-4))
        >>> gan = WGAN()
        >>> trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        ...                      enable_model_summary=False)
        >>> trainer.fit(gan, torch.utils.data.DataLoader(torch.randn(36, 2), batch_size=3))  # 12 batches
        >>> gan.optimizer_step_counts, trainer.global_step
        ((10, 2), 12)
    """

    #: Tells `validate_optimizers` that several optimizers and optimizer frequencies are handled here.
    _alternates_optimizers: ClassVar[bool] = True
    #: Explicit form: ``{method name: consecutive batches}`` (or a list of method names), one per optimizer.
    alternation: Optional[Union[Mapping[str, int], Sequence[str]]] = None
    #: ``"epoch"``: the cycle position is the within-epoch ``batch_idx`` (Lightning 1.9); ``"run"``: run-wide.
    alternation_cycle: str = "epoch"
    #: Per-optimizer gradient accumulation over its own active batches (one value, or one per optimizer).
    accumulate_grad_batches: Union[int, Sequence[int]] = 1
    #: Gradient clipping before each optimizer step (None: none); one value, or one per optimizer.
    gradient_clip_val: Optional[Union[float, Sequence[Optional[float]]]] = None
    #: ``"norm"`` or ``"value"``.
    gradient_clip_algorithm: str = "norm"
    #: The validated optimizers, schedulers and frequencies (set when the Trainer calls ``configure_optimizers``).
    optimizer_setup: Optional[OptimizerSetup] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, wrap, marker in _WRAPPED_HOOKS:
            own = cls.__dict__.get(name)
            if own is None:  # `class Ported(AlternatingOptimizersMixin, Old1xModule)`: adopt the base's hook
                own = _shadowed_by_mixins(cls, name)
            if isinstance(own, types.FunctionType):
                setattr(cls, name, own if getattr(own, marker, False) else wrap(own))

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

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        """Run the optimizers whose turn it is on this batch (the explicit ``alternation`` form)."""
        return _run_batch(self, batch, batch_idx, None)

    def configure_callbacks(self) -> Any:
        """The mixin's own callback (checkpoint state, clipping, plateau schedulers); checks the Trainer's options."""
        return []

    def finish_optimizer_setup(self, setup: OptimizerSetup) -> Any:
        """Keep the validated setup and plan the alternation; hand Lightning its manual-optimization form."""
        self.optimizer_setup = setup
        self.__dict__["_alternation_plan"] = _plan(self, setup)
        state = self.__dict__.get("_alternation_state")
        if state is None or len(state.counts) != len(setup.optimizers):
            self.__dict__["_alternation_state"] = _State.fresh(len(setup.optimizers))
        return setup.lightning_value(manual=True)

    # ---------------------------------------------------------------------------------------- for callbacks

    @property
    def alternation_frequencies(self) -> Optional[tuple[int, ...]]:
        """The optimizers' frequencies in use (from ``alternation`` or ``'frequency'``), or None: all on every batch."""
        plan = self.__dict__.get("_alternation_plan")
        return plan.frequencies if plan is not None else None

    @property
    def optimizer_step_counts(self) -> tuple[int, ...]:
        """How many times each optimizer has stepped over the run (restored from checkpoints)."""
        state = self.__dict__.get("_alternation_state")
        return tuple(state.counts) if state is not None else ()

    @property
    def accumulation_windows(self) -> tuple[int, ...]:
        """How many backward passes each optimizer has accumulated since its last step."""
        state = self.__dict__.get("_alternation_state")
        return tuple(state.windows) if state is not None else ()

    @property
    def alternation_position(self) -> int:
        """How many batches have been trained over the run (the position of the ``"run"`` cycle)."""
        state = self.__dict__.get("_alternation_state")
        return state.position if state is not None else 0


def _shadowed_by_mixins(cls: type, name: str) -> Optional[Callable[..., Any]]:
    """A user base's hook that the mixins would hide: ``Old1xModule.training_step`` in
    ``class Ported(AlternatingOptimizersMixin, Old1xModule)`` (None when the first definer is not a mixin)."""
    mixins = (AlternatingOptimizersMixin, OptimRecipeMixin)
    definers = [klass for klass in cls.__mro__ if name in klass.__dict__]
    if not definers or definers[0] not in mixins:
        return None
    for klass in definers:
        if klass in mixins:
            continue
        if klass.__module__.split(".")[0] in ("pytorch_lightning", "lightning"):
            return None
        return klass.__dict__[name]
    return None


# ----------------------------------------------------------------------------------------------------- planning


@dataclasses.dataclass
class _Plan:
    """Everything the per-batch loop needs, resolved once when the optimizers are configured."""

    frequencies: Optional[tuple[int, ...]]
    step_names: Optional[tuple[str, ...]]
    pass_optimizer_idx: bool
    accumulate: tuple[int, ...]
    clip: tuple[Optional[float], ...]
    clip_algorithm: str
    run_wide: bool
    step_schedulers: tuple[tuple[SchedulerSpec, ...], ...]
    epoch_schedulers: tuple[SchedulerSpec, ...]
    index_of: dict[int, int]


@dataclasses.dataclass
class _State:
    """What a resumed run needs: the run-wide position, step counts and open accumulation windows."""

    position: int
    counts: list[int]
    windows: list[int]
    pending_grads: Optional[dict[int, list[Optional[torch.Tensor]]]] = None

    @classmethod
    def fresh(cls, optimizers: int) -> "_State":
        return cls(0, [0] * optimizers, [0] * optimizers)


def _per_optimizer(value: Any, count: int, name: str, check: Callable[[Any], bool], what: str) -> tuple[Any, ...]:
    values = tuple(value) if isinstance(value, (list, tuple)) else (value,) * count
    if len(values) != count:
        raise RecipeError(
            f"`{name}` has {len(values)} values for {count} optimizers: give one value, or one per optimizer."
        )
    for item in values:
        if not check(item):
            raise RecipeError(f"`{name}` must be {what}, got {item!r}.")
    return values


def _alternation_spec(module: Any) -> tuple[Optional[tuple[str, ...]], Optional[tuple[int, ...]]]:
    """Method names and frequencies of the explicit ``alternation`` form (None, None when not used)."""
    alternation = module.alternation
    if alternation is None:
        return None, None
    if isinstance(alternation, Mapping):
        names, frequencies = tuple(alternation), tuple(alternation.values())
        for name, frequency in alternation.items():
            if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 1:
                raise RecipeError(
                    f"`alternation[{name!r}]` must be a positive int (consecutive batches of that step), got"
                    f" {frequency!r}."
                )
    elif isinstance(alternation, (list, tuple)) and not isinstance(alternation, str):
        names, frequencies = tuple(alternation), None
    else:
        raise RecipeError(
            "`alternation` must map step method names to consecutive batches, e.g."
            f' {{"critic_step": 5, "generator_step": 1}}, or list them; got {alternation!r}.'
        )
    if not names:
        raise RecipeError("`alternation` is empty: name one step method per optimizer.")
    for name in names:
        if not isinstance(name, str) or not callable(getattr(module, name, None)):
            raise RecipeError(
                f"`alternation` names {name!r}, but {type(module).__name__} has no such method: define"
                f" `def {name}(self, batch, batch_idx)` returning that optimizer's loss."
            )
    if _user_training_step(type(module)) is not None:
        raise RecipeError(
            f"{type(module).__name__} sets `alternation` and also defines `training_step`: use one of them (the"
            " methods named in `alternation`, or a 1.x `training_step(self, batch, batch_idx, optimizer_idx)`)."
        )
    return names, frequencies


def _check_options(module: Any) -> None:
    """The checks that need no optimizer: options and the form of the step functions."""
    if module.alternation_cycle not in _CYCLES:
        raise RecipeError(f"`alternation_cycle` must be 'epoch' or 'run', got {module.alternation_cycle!r}.")
    if module.gradient_clip_algorithm not in _CLIP_ALGORITHMS:
        raise RecipeError(
            f"`gradient_clip_algorithm` must be 'norm' or 'value', got {module.gradient_clip_algorithm!r}."
        )
    _alternation_spec(module)


def _plan(module: Any, setup: OptimizerSetup) -> _Plan:
    _check_options(module)
    count = len(setup.optimizers)
    if count == 0:
        raise RecipeError(f"{type(module).__name__} uses AlternatingOptimizersMixin but returned no optimizer.")
    names, frequencies = _alternation_spec(module)
    if names is not None and len(names) != count:
        raise RecipeError(
            f"`alternation` names {len(names)} step methods ({', '.join(names)}) but `configure_optimizers` returned"
            f" {count} optimizers: name one method per optimizer, in the same order."
        )
    if frequencies is not None and setup.frequencies is not None and frequencies != setup.frequencies:
        raise RecipeError(
            f"`alternation` gives frequencies {frequencies} but the optimizer dicts give {setup.frequencies}:"
            " give them in one place only."
        )
    pass_optimizer_idx = False
    if names is None:
        user_step = _user_training_step(type(module))
        pass_optimizer_idx = user_step is not None and _takes_optimizer_idx(user_step)
        if user_step is None or (not pass_optimizer_idx and count > 1):
            raise RecipeError(
                f"{type(module).__name__} has {count} optimizers but no step per optimizer: define a 1.x"
                " `training_step(self, batch, batch_idx, optimizer_idx)` returning that optimizer's loss, or name"
                ' one method per optimizer: `alternation = {"critic_step": 5, "generator_step": 1}`.'
            )
    accumulate = _per_optimizer(
        module.accumulate_grad_batches, count, "accumulate_grad_batches",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "a positive int",
    )
    clip = _per_optimizer(
        module.gradient_clip_val, count, "gradient_clip_val",
        lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0),
        "None or a non-negative number",
    )
    index_of = {}
    for index, optimizer in enumerate(setup.optimizers):
        index_of[id(optimizer)] = index
        index_of[id(getattr(optimizer, "_optimizer", optimizer))] = index
    return _Plan(
        frequencies=frequencies if frequencies is not None else setup.frequencies,
        step_names=names,
        pass_optimizer_idx=pass_optimizer_idx,
        accumulate=accumulate,
        clip=tuple(None if not v else float(v) for v in clip),
        clip_algorithm=module.gradient_clip_algorithm,
        run_wide=module.alternation_cycle == "run",
        step_schedulers=tuple(
            tuple(s for s in setup.schedulers_of(i) if s.interval == "step") for i in range(count)
        ),
        epoch_schedulers=tuple(s for s in setup.schedulers if s.interval == "epoch"),
        index_of=index_of,
    )


def _check_trainer(trainer: Any) -> None:
    """Refuse the Trainer options Lightning refuses under manual optimization, pointing to the mixin's own."""
    accumulate = getattr(trainer, "accumulate_grad_batches", 1)
    if accumulate != 1:
        raise RecipeError(
            f"`Trainer(accumulate_grad_batches={accumulate})` does not apply to a module with"
            " AlternatingOptimizersMixin (manual optimization): remove it from the Trainer and set it on the module,"
            f" `accumulate_grad_batches = {accumulate}` (a class attribute; one value, or one per optimizer)."
        )
    clip = getattr(trainer, "gradient_clip_val", None)
    if clip:
        algorithm = getattr(trainer, "gradient_clip_algorithm", None)
        algorithm = getattr(algorithm, "value", algorithm) or "norm"
        raise RecipeError(
            f"`Trainer(gradient_clip_val={clip})` does not apply to a module with AlternatingOptimizersMixin"
            " (manual optimization): remove it from the Trainer and set it on the module,"
            f" `gradient_clip_val = {clip}` and `gradient_clip_algorithm = {str(algorithm)!r}` (class attributes;"
            " one value, or one per optimizer)."
        )


def _let_ddp_skip_other_optimizers_parameters(strategy: Any) -> None:
    """Under DDP, turn on ``find_unused_parameters`` unless the user set it: each backward feeds one optimizer's
    parameters only (the others are toggled off), which DDP's default refuses after the first step."""
    kwargs = getattr(strategy, "_ddp_kwargs", None)
    if isinstance(kwargs, dict) and "find_unused_parameters" not in kwargs:
        kwargs["find_unused_parameters"] = True


# ------------------------------------------------------------------------------------------ step functions

_USER_STEP = "_alternation_user_training_step"


def _signature_template(self: Any, batch: Any, batch_idx: int) -> Any:  # the signature Lightning sees
    raise NotImplementedError  # pragma: no cover


_TRAINING_STEP_SIGNATURE = inspect.signature(_signature_template)


def _dispatching_training_step(user_step: Callable[..., Any]) -> Callable[..., Any]:
    """Replace a subclass's ``training_step`` by the mixin's dispatch, with the ``(batch, batch_idx)`` signature
    Lightning 2 accepts; the user's function is called once per active optimizer."""

    def training_step(self: Any, batch: Any, batch_idx: int = 0, *args: Any, **kwargs: Any) -> Any:
        if self.__dict__.get("_in_alternation") or args or kwargs:  # our own call, or a `super().training_step(...)`
            return user_step(self, batch, batch_idx, *args, **kwargs)
        return _run_batch(self, batch, batch_idx, user_step)

    training_step.__name__ = user_step.__name__
    training_step.__qualname__ = user_step.__qualname__
    training_step.__doc__ = user_step.__doc__
    training_step.__module__ = user_step.__module__
    training_step.__signature__ = _TRAINING_STEP_SIGNATURE  # type: ignore[attr-defined]
    setattr(training_step, _USER_STEP, user_step)
    training_step._alternation_dispatch = True  # type: ignore[attr-defined]
    return training_step


def _user_training_step(cls: type) -> Optional[Callable[..., Any]]:
    """The user's own ``training_step`` (the innermost one defined below the mixin), if any."""
    for klass in cls.__mro__:
        if klass is AlternatingOptimizersMixin:
            return None
        step = klass.__dict__.get("training_step")
        if step is not None:
            return getattr(step, _USER_STEP, step)
    return None


def _takes_optimizer_idx(step: Callable[..., Any]) -> bool:
    parameters = list(inspect.signature(step).parameters.values())
    if any(p.name == "optimizer_idx" for p in parameters):
        return True
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 4 or any(p.kind == p.VAR_POSITIONAL for p in parameters)


def _loss_of(output: Any, where: str) -> Optional[torch.Tensor]:
    if output is None or isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping) and "loss" in output:
        return output["loss"]
    raise RecipeError(
        f"{where} returned a {type(output).__name__}: return the loss tensor of that optimizer, a dict with a 'loss'"
        " key, or None to skip its step."
    )


# --------------------------------------------------------------------------------------------- the batch loop


def _run_batch(module: Any, batch: Any, batch_idx: int, user_step: Optional[Callable[..., Any]]) -> Any:
    plan: Optional[_Plan] = module.__dict__.get("_alternation_plan")
    if plan is None:
        raise RecipeError(
            f"{type(module).__name__}.configure_optimizers did not go through AlternatingOptimizersMixin: do not"
            " replace it after class creation."
        )
    state: _State = module.__dict__["_alternation_state"]
    optimizers = module.optimizers()
    if not isinstance(optimizers, list):
        optimizers = [optimizers]
    if state.pending_grads is not None:
        _restore_grads(optimizers, state)
    if plan.frequencies is None:
        active: Sequence[int] = range(len(optimizers))
    else:
        active = (active_optimizer(plan.frequencies, state.position if plan.run_wide else batch_idx),)
    state.position += 1
    module.__dict__["_in_alternation"] = True
    loss = None
    try:
        for index in active:
            loss = _train_one(module, plan, state, optimizers, index, batch, batch_idx, user_step) or loss
        if _is_last_batch(module.trainer):
            for index, window in enumerate(state.windows):
                if window:
                    _step_optimizer(module, plan, state, optimizers[index], index)
            _step_epoch_schedulers(module, plateau=False)
    finally:
        module.__dict__["_in_alternation"] = False
    return None if loss is None else {"loss": loss}


def _train_one(
    module: Any, plan: _Plan, state: _State, optimizers: list[Any], index: int, batch: Any, batch_idx: int,
    user_step: Optional[Callable[..., Any]],
) -> Optional[torch.Tensor]:
    optimizer = optimizers[index]
    toggle = len(optimizers) > 1
    if toggle:
        module.toggle_optimizer(optimizer)
    try:
        if plan.step_names is not None:
            where = f"`{plan.step_names[index]}`"
            output = getattr(module, plan.step_names[index])(batch, batch_idx)
        elif plan.pass_optimizer_idx:
            where = f"`training_step` for optimizer_idx={index}"
            output = user_step(module, batch, batch_idx, index)  # type: ignore[misc]
        else:
            where = "`training_step`"
            output = user_step(module, batch, batch_idx)  # type: ignore[misc]
        loss = _loss_of(output, where)
        if loss is None:
            return None
        accumulate = plan.accumulate[index]
        if state.windows[index] == 0:
            optimizer.zero_grad()
        module.manual_backward(loss / accumulate if accumulate > 1 else loss)
    finally:
        if toggle:
            module.untoggle_optimizer(optimizer)
    state.windows[index] += 1
    if state.windows[index] >= accumulate:
        _step_optimizer(module, plan, state, optimizer, index)
    return loss.detach()


def _step_optimizer(module: Any, plan: _Plan, state: _State, optimizer: Any, index: int) -> None:
    optimizer.step()  # clipping happens in the callback's `on_before_optimizer_step`, after AMP unscaling
    state.windows[index] = 0
    state.counts[index] += 1
    for spec in plan.step_schedulers[index]:
        if state.counts[index] % spec.frequency == 0:
            _step_scheduler(module, spec)


def _step_epoch_schedulers(module: Any, plateau: bool) -> None:
    plan: Optional[_Plan] = module.__dict__.get("_alternation_plan")
    if plan is None:
        return
    epoch = module.trainer.current_epoch
    for spec in plan.epoch_schedulers:
        if spec.reduce_on_plateau == plateau and (epoch + 1) % spec.frequency == 0:
            _step_scheduler(module, spec)


def _step_scheduler(module: Any, spec: SchedulerSpec) -> None:
    metric = None
    if spec.reduce_on_plateau:
        metrics = module.trainer.callback_metrics
        metric = metrics.get(spec.monitor)
        if metric is None:
            message = (
                f"ReduceLROnPlateau{f' {spec.name!r}' if spec.name else ''} monitors {spec.monitor!r}, which is not"
                f" logged (logged: {', '.join(repr(k) for k in metrics) or 'nothing'}). Log it with `self.log` in a"
                " step or in validation, or fix the 'monitor' key."
            )
            if spec.strict:
                raise RecipeError(message)
            warnings.warn(message + " Skipping this step (strict=False).", RuntimeWarning, stacklevel=2)
            return
    module.lr_scheduler_step(spec.scheduler, metric)


def _is_last_batch(trainer: Any) -> bool:
    progress = trainer.fit_loop.epoch_loop.batch_progress
    return bool(progress.is_last_batch) or progress.current.ready == trainer.num_training_batches


# ----------------------------------------------------------------------------------------- checkpoint state


def _state_dict(module: Any) -> dict[str, Any]:
    state: Optional[_State] = module.__dict__.get("_alternation_state")
    if state is None:
        return {}
    grads: dict[int, list[Optional[torch.Tensor]]] = {}
    setup = module.optimizer_setup
    if setup is not None:
        for index, window in enumerate(state.windows):
            if window:
                grads[index] = [
                    None if p.grad is None else p.grad.detach().cpu().clone()
                    for group in setup.optimizers[index].param_groups
                    for p in group["params"]
                ]
    return {"position": state.position, "counts": list(state.counts), "windows": list(state.windows), "grads": grads}


def _load_state_dict(module: Any, saved: Mapping[str, Any]) -> None:
    if not saved:
        return
    module.__dict__["_alternation_state"] = _State(
        position=int(saved["position"]),
        counts=list(saved["counts"]),
        windows=list(saved["windows"]),
        pending_grads=dict(saved.get("grads") or {}),
    )


def _restore_grads(optimizers: list[Any], state: _State) -> None:
    pending, state.pending_grads = state.pending_grads or {}, None
    for index, grads in pending.items():
        params = [p for group in optimizers[index].param_groups for p in group["params"]]
        for param, grad in zip(params, grads):
            param.grad = None if grad is None else grad.to(device=param.device, dtype=param.dtype)


# ------------------------------------------------------------------------------------------------ callback


@functools.cache
def _callback_class() -> type:
    def state_key(self: Any) -> str:
        return STATE_KEY

    def __init__(self: Any, module: Any) -> None:  # noqa: N807
        self._module = weakref.ref(module)

    def state_dict(self: Any) -> dict[str, Any]:
        module = self._module()
        return _state_dict(module) if module is not None else {}

    def load_state_dict(self: Any, state_dict: dict[str, Any]) -> None:
        module = self._module()
        if module is not None:
            _load_state_dict(module, state_dict)

    def on_before_optimizer_step(self: Any, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        plan: Optional[_Plan] = pl_module.__dict__.get("_alternation_plan")
        if plan is None:
            return
        index = plan.index_of.get(id(optimizer))
        if index is not None and plan.clip[index] is not None:
            pl_module.configure_gradient_clipping(
                optimizer, gradient_clip_val=plan.clip[index], gradient_clip_algorithm=plan.clip_algorithm
            )

    def on_train_epoch_end(self: Any, trainer: Any, pl_module: Any) -> None:
        _step_epoch_schedulers(pl_module, plateau=True)

    namespace = {
        "__doc__": "Saves the alternation state in checkpoints, clips gradients, steps plateau schedulers.",
        "__init__": __init__,
        "state_key": property(state_key),
        "state_dict": state_dict,
        "load_state_dict": load_state_dict,
        "on_before_optimizer_step": on_before_optimizer_step,
        "on_train_epoch_end": on_train_epoch_end,
        "__module__": __name__,
        "__qualname__": "AlternationCallback",
    }
    return type("AlternationCallback", callback_bases(), namespace)


def _alternation_callback(module: Any) -> Any:
    callback = module.__dict__.get("_alternation_callback")
    if callback is None:
        callback = _callback_class()(module)
        module.__dict__["_alternation_callback"] = callback
    return callback


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
        ours = _alternation_callback(self)
        trainer = getattr(self, "_trainer", None)
        if trainer is not None and trainer.state.fn == "fit":
            _check_options(self)
            _check_trainer(trainer)
            _let_ddp_skip_other_optimizers_parameters(trainer.strategy)
            self.__dict__["_alternation_state"] = None  # a new fit starts afresh unless a checkpoint restores it
        return [c for c in callbacks if c is not ours] + [ours]

    wrapper._with_alternation = True  # type: ignore[attr-defined]
    return wrapper


_WRAPPED_HOOKS = (
    ("training_step", _dispatching_training_step, "_alternation_dispatch"),
    ("configure_callbacks", _with_alternation_callback, "_with_alternation"),
)

AlternatingOptimizersMixin.configure_callbacks = _with_alternation_callback(  # type: ignore[method-assign]
    AlternatingOptimizersMixin.configure_callbacks
)
AlternatingOptimizersMixin.training_step._alternation_dispatch = True  # type: ignore[attr-defined]
