"""What `AlternatingOptimizersMixin` resolves once per fit (the `Plan`: the loop model, the step functions, clipping,
the hooks to call) and what a run carries across checkpoints (the `State`: the loop's position and open accumulation
windows with their gradients). One batch is run by `_turns`; the mixin's callback is `_callback`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

import torch

from lightning_optim_recipes import cadence, hooks
from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.sharding import fsdp2_modules
from lightning_optim_recipes.mixins import _port1x
from lightning_optim_recipes.mixins._binding import (
    alternation_turns,
    bind,
    check_positional_binding,
    recipe_of,
    role_of,
)
from lightning_optim_recipes.validation import OptimizerSetup, SchedulerSpec

CYCLES = ("epoch", "run")
CLIP_ALGORITHMS = ("norm", "value")


# ----------------------------------------------------------------------------------------------------- plan


@dataclasses.dataclass
class Plan:
    """Everything the per-batch loop needs, resolved once when the optimizers are configured."""

    loop: cadence.Loop
    step_names: Optional[tuple[str, ...]]  # per optimizer (explicit form), else None
    roles: Optional[tuple[str, ...]]  # per optimizer: the trained submodule (bound form) or the step's stem
    pass_optimizer_idx: bool
    clip: tuple[Optional[float], ...]
    clip_algorithm: str
    schedulers: tuple[SchedulerSpec, ...]
    index_of: dict[int, int]
    backward_1x: bool
    clip_hook: bool  # the module overrides configure_gradient_clipping: call it before every step
    step_end: bool  # the module defines 1.x's training_step_end: call it on each step's output
    epoch_end: Optional[Callable[..., Any]]  # 1.x's training_epoch_end: called with the epoch's outputs
    sharded: tuple[torch.nn.Module, ...] = ()  # FSDP2 modules, resharded after each turn (`sharding.reshard`)

    @property
    def own_optimizer_step(self) -> bool:
        """The module overrides ``optimizer_step``: it is called when a window closes (the cadence's
        ``custom_step``)."""
        return self.loop.custom_step


@dataclasses.dataclass
class State:
    """What a resumed run needs: the cadence state and the open accumulation windows' gradients."""

    loop: cadence.LoopState
    pending_grads: Optional[dict[int, list[Optional[torch.Tensor]]]] = None
    pending_plateau: list[int] = dataclasses.field(default_factory=list)
    epoch_outputs: list[Any] = dataclasses.field(default_factory=list)  # for a 1.x training_epoch_end


def per_optimizer(value: Any, count: int, name: str, check: Callable[[Any], bool], what: str) -> tuple[Any, ...]:
    values = tuple(value) if isinstance(value, (list, tuple)) else (value,) * count
    if len(values) != count:
        raise RecipeError(
            f"`{name}` has {len(values)} values for {count} optimizers: give one value, or one per optimizer."
        )
    for item in values:
        if not check(item):
            raise RecipeError(f"`{name}` must be {what}, got {item!r}.")
    return values


def check_options(module: Any) -> None:
    """The checks that need no optimizer: options and the form of the step functions."""
    if cycle_of(module) not in CYCLES:
        raise RecipeError(f"`alternation_cycle` must be 'epoch' or 'run', got {module.alternation_cycle!r}.")
    if module.gradient_clip_algorithm not in CLIP_ALGORITHMS:
        raise RecipeError(
            f"`gradient_clip_algorithm` must be 'norm' or 'value', got {module.gradient_clip_algorithm!r}."
        )
    alternation_turns(module)
    step = hooks.user_hook(type(module), "training_step")
    if module.__dict__.get("_set_manual_optimization") and step is not None and hooks.takes_1x(step, "training_step"):
        raise RecipeError(
            f"{type(module).__name__} sets `self.automatic_optimization = False` and steps its optimizers itself"
            " (a Lightning 1.3/1.4 manual-optimization module), so AlternatingOptimizersMixin would step them a"
            " second time. Remove the mixin: on Lightning 2 drop `optimizer_idx` from `training_step` and take the"
            " optimizers with `opt1, opt2 = self.optimizers()`. Or keep the mixin and remove"
            " `self.automatic_optimization = False` and your own `opt.step()`/`zero_grad()`/`manual_backward` calls."
        )


def make_plan(module: Any, setup: OptimizerSetup) -> Plan:
    check_options(module)
    count = len(setup.optimizers)
    if count == 0:
        raise RecipeError(f"{type(module).__name__} uses AlternatingOptimizersMixin but returned no optimizer.")
    spec = alternation_turns(module)
    names: Optional[tuple[str, ...]] = None
    roles: Optional[tuple[str, ...]] = None
    order: Optional[tuple[int, ...]] = None
    frequencies = setup.frequencies
    pass_optimizer_idx = False
    if spec is not None:
        turns, alternates = spec
        if len(turns) != count:
            raise RecipeError(
                f"`alternation` names {len(turns)} step methods ({', '.join(t.step for t in turns)}) but"
                f" `configure_optimizers` returned {count} optimizers: name one method per optimizer"
                + (", each with the submodule it trains." if turns[0].trains else ", in the same order.")
            )
        if turns[0].trains is not None:
            order = bind(module, turns, setup)
        else:
            order = tuple(range(count))
            check_positional_binding(module, turns, setup)
        by_optimizer = {index: turn for index, turn in zip(order, turns)}
        names = tuple(by_optimizer[i].step for i in range(count))
        roles = tuple(role_of(by_optimizer[i]) for i in range(count))
        given = [t.batches for t in turns]
        if alternates and all(b is not None for b in given):
            mine = tuple(int(by_optimizer[i].batches or 1) for i in range(count))
            if setup.frequencies is not None and mine != setup.frequencies:
                raise RecipeError(
                    f"`alternation` gives frequencies {tuple(given)} but the optimizer dicts give"
                    f" {tuple(setup.frequencies[i] for i in order)}: give them in one place only."
                )
            frequencies = mine
        elif alternates and any(b is not None for b in given):
            raise RecipeError("`alternation` gives 'batches' for some steps only: give it for every step, or none.")
        elif alternates and setup.frequencies is None:
            frequencies = (1,) * count  # {'critic_step': {'trains': 'critic'}, ...}: one batch each
        elif not alternates:
            frequencies = setup.frequencies
    else:
        user_step = hooks.user_hook(type(module), "training_step")
        pass_optimizer_idx = user_step is not None and hooks.takes_1x(user_step, "training_step")
        if user_step is None or (not pass_optimizer_idx and count > 1):
            raise RecipeError(
                f"{type(module).__name__} has {count} optimizers but no step per optimizer"
                + (" (`training_step` is missing the `optimizer_idx` argument)" if user_step is not None else "")
                + ": define a 1.x `training_step(self, batch, batch_idx, optimizer_idx)` returning that optimizer's"
                ' loss, or name one method per optimizer: `alternation = {"critic_step": 5, "generator_step": 1}`.'
            )
    accumulate = per_optimizer(
        module.__dict__.get("_trainer_accumulate_grad_batches", module.accumulate_grad_batches), count,
        "accumulate_grad_batches",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "a positive int",
    )
    clip = per_optimizer(
        module.__dict__.get("_trainer_gradient_clip_val", module.gradient_clip_val) if _clip_set(module)
        else _recipe_clip(module, count), count, "gradient_clip_val",
        lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0),
        "None or a non-negative number",
    )
    index_of = {}
    for index, optimizer in enumerate(setup.optimizers):
        index_of[id(optimizer)] = index
        index_of[id(getattr(optimizer, "_optimizer", optimizer))] = index
    own_step = hooks.overridden(module, "optimizer_step")
    loop = cadence.Loop(
        "alternating",
        count,
        schedulers=tuple(
            cadence.Timing(s.optimizer_index, s.interval, s.frequency, s.reduce_on_plateau) for s in setup.schedulers
        ),
        accumulate=tuple(accumulate),
        frequencies=frequencies,
        run_wide=cycle_of(module) == "run",
        order=order if frequencies is not None else None,
        custom_step=own_step,
    )
    return Plan(
        loop=loop,
        step_names=names,
        roles=roles,
        pass_optimizer_idx=pass_optimizer_idx,
        clip=tuple(None if not v else float(v) for v in clip),
        clip_algorithm=module.__dict__.get("_trainer_gradient_clip_algorithm", module.gradient_clip_algorithm),
        schedulers=setup.schedulers,
        index_of=index_of,
        backward_1x=hooks.takes_1x(hooks.hook(module, "backward"), "backward"),
        clip_hook=hooks.overridden(module, "configure_gradient_clipping"),
        step_end=hooks.overridden(module, "training_step_end"),
        epoch_end=getattr(type(module), _port1x.EPOCH_END_1X, None),
        sharded=fsdp2_modules(module) if len(setup.optimizers) > 1 else (),
    )


def cycle_of(module: Any) -> str:
    """``alternation_cycle``: the module's own when it sets one, else its recipe's, else ``"epoch"``."""
    if "alternation_cycle" in module.__dict__ or any(
        "alternation_cycle" in klass.__dict__ for klass in type(module).__mro__
        if not klass.__module__.startswith("lightning_optim_recipes.")
    ):
        return module.alternation_cycle
    recipe = recipe_of(module)
    return str(recipe.get("alternation_cycle", module.alternation_cycle)) if recipe else module.alternation_cycle


def _clip_set(module: Any) -> bool:
    return "_trainer_gradient_clip_val" in module.__dict__ or module.gradient_clip_val is not None


def _recipe_clip(module: Any, count: int) -> Any:
    """Per optimizer, the recipe's ``gradient_clip_val`` (its own, or the recipe's top-level one)."""
    recipe = recipe_of(module)
    if recipe is None:
        return None
    top = recipe.get("gradient_clip_val")
    if "optimizers" not in recipe:
        return top
    return [sub.get("gradient_clip_val", top) for sub in recipe["optimizers"].values()][:count] or None


# ---------------------------------------------------------------------------------------------------- turns


# ----------------------------------------------------------------------------------------- checkpoint state


def state_dict(module: Any) -> dict[str, Any]:
    state: Optional[State] = module.__dict__.get("_alternation_state")
    if state is None:
        return {}
    grads: dict[int, list[Optional[torch.Tensor]]] = {}
    setup = module.optimizer_setup
    if setup is not None:
        for index, window in enumerate(state.loop.windows):
            if window:
                grads[index] = [
                    None if p.grad is None else p.grad.detach().cpu().clone()
                    for group in setup.optimizers[index].param_groups
                    for p in group["params"]
                ]
    loop = state.loop
    return {"position": loop.position, "counts": list(loop.steps), "windows": list(loop.windows), "grads": grads,
            "pending_plateau": list(state.pending_plateau)}


def load_state_dict(module: Any, saved: Mapping[str, Any]) -> None:
    if not saved:
        return
    module.__dict__["_alternation_state"] = State(
        cadence.LoopState(int(saved["position"]), list(saved["windows"]), list(saved["counts"])),
        pending_grads=dict(saved.get("grads") or {}),
        pending_plateau=list(saved.get("pending_plateau", [])),
    )


def restore_grads(optimizers: Sequence[Any], state: State) -> None:
    pending, state.pending_grads = state.pending_grads or {}, None
    for index, grads in pending.items():
        params = [p for group in optimizers[index].param_groups for p in group["params"]]
        for param, grad in zip(params, grads):
            param.grad = None if grad is None else grad.to(device=param.device, dtype=param.dtype)


# ------------------------------------------------------------------------------------------------ callback


