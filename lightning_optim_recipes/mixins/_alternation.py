"""The machinery behind `AlternatingOptimizersMixin`: the plan resolved once per fit, the effects that run the
cadence model (`lightning_optim_recipes.cadence`) with real training, and the callback that saves its state."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

import torch

from lightning_optim_recipes import cadence, hooks
from lightning_optim_recipes._lightning import callback_bases
from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.mixins import _port1x
from lightning_optim_recipes.recipe import resolve_recipe, submodule_paths
from lightning_optim_recipes.validation import OptimizerSetup, SchedulerSpec

CYCLES = ("epoch", "run")
CLIP_ALGORITHMS = ("norm", "value")
STATE_KEY = "AlternatingOptimizersMixin"
#: Suffixes stripped from a step method's name to find the submodule it trains (``critic_step`` -> ``critic``).
_STEP_SUFFIXES = ("_training_step", "_step", "_loss")


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


@dataclasses.dataclass(frozen=True)
class Turn:
    """One entry of the explicit ``alternation`` form: a step method, its consecutive batches, what it trains."""

    step: str
    batches: Optional[int]
    trains: Optional[tuple[str, ...]]


def alternation_turns(module: Any) -> Optional[tuple[list[Turn], bool]]:
    """The explicit ``alternation`` form as turns, and whether it alternates (a mapping) or runs every step on every
    batch (a list); None when the module does not use it."""
    alternation = module.alternation
    if alternation is None:
        return _recipe_turns(module)
    if isinstance(alternation, Mapping):
        turns = [_turn(name, value) for name, value in alternation.items()]
        alternates = True
    elif isinstance(alternation, (list, tuple)):
        turns = [_turn(item, None) if isinstance(item, str) else _list_item(item) for item in alternation]
        alternates = False
    else:
        raise RecipeError(
            "`alternation` must map step method names to consecutive batches, e.g."
            f' {{"critic_step": 5, "generator_step": 1}}, or list them; got {alternation!r}.'
        )
    if not turns:
        raise RecipeError("`alternation` is empty: name one step method per optimizer.")
    for turn in turns:
        if not callable(getattr(module, turn.step, None)):
            raise RecipeError(
                f"`alternation` names {turn.step!r}, but {type(module).__name__} has no such method: define"
                f" `def {turn.step}(self, batch, batch_idx)` returning that optimizer's loss."
            )
    bound = [t.trains is not None for t in turns]
    if any(bound) and not all(bound):
        raise RecipeError(
            "`alternation` binds some steps with 'trains' and not others: give every step its 'trains' (the"
            ' submodule its optimizer holds), e.g. {"critic_step": {"trains": "critic", "batches": 5}, ...}.'
        )
    if hooks.user_hook(type(module), "training_step") is not None:
        raise RecipeError(
            f"{type(module).__name__} sets `alternation` and also defines `training_step`: use one of them (the"
            " methods named in `alternation`, or a 1.x `training_step(self, batch, batch_idx, optimizer_idx)`)."
        )
    return turns, alternates


def recipe_of(module: Any) -> Optional[dict[str, Any]]:
    """The resolved recipe the module's optimizers come from (None: its own ``configure_optimizers``)."""
    used = module.__dict__.get("_recipe_in_use")
    if used is not None:
        return used
    own = getattr(type(module).configure_optimizers, "__wrapped__", None)
    if own is None or not own.__module__.startswith("lightning_optim_recipes."):
        return None
    recipe = module.resolve_optim_recipe()
    return resolve_recipe(recipe) if recipe is not None else None


def _recipe_turns(module: Any) -> Optional[tuple[list[Turn], bool]]:
    """A several-optimizer recipe's optimizers bound to the module's step methods by name: ``critic`` trains with
    ``critic_step``, on the submodules its recipe names (None when the module has a 1.x ``training_step``)."""
    recipe = recipe_of(module)
    if recipe is None or "optimizers" not in recipe or hooks.user_hook(type(module), "training_step") is not None:
        return None
    roles = list(recipe["optimizers"])
    missing = [f"{role}_step" for role in roles if not callable(getattr(module, f"{role}_step", None))]
    if missing:
        raise RecipeError(
            f"{type(module).__name__}'s recipe has the optimizers {', '.join(repr(r) for r in roles)}, but it has no"
            f" {', '.join(f'`{m}`' for m in missing)}: define `def {missing[0]}(self, batch, batch_idx)` returning"
            " that optimizer's loss for each (or set `alternation` to name your step methods)."
        )
    turns = [Turn(f"{role}_step", None, submodule_paths(recipe, role)) for role in roles]
    return turns, isinstance(recipe.get("alternation"), Mapping)


def _turn(name: Any, value: Any) -> Turn:
    if not isinstance(name, str):
        raise RecipeError(f"`alternation` keys must be step method names such as 'critic_step', got {name!r}.")
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {"trains", "batches"})
        if unknown or "trains" not in value:
            raise RecipeError(
                f"`alternation[{name!r}]` must be a number of batches or a dict with 'trains' (the submodule its"
                f" optimizer holds) and optionally 'batches', e.g. {{'trains': 'critic', 'batches': 5}}; got {value!r}."
            )
        return Turn(name, _batches(name, value.get("batches")), _trains(name, value["trains"]))
    return Turn(name, _batches(name, value), None)


def _list_item(item: Any) -> Turn:
    if isinstance(item, Mapping) and set(item) <= {"step", "trains"} and "step" in item:
        trains = item.get("trains")
        return Turn(item["step"], None, None if trains is None else _trains(item["step"], trains))
    raise RecipeError(
        "Items of an `alternation` list must be step method names, or dicts {'step': 'critic_step', 'trains':"
        f" 'critic'}}; got {item!r}."
    )


def _batches(name: str, value: Any) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RecipeError(
            f"`alternation[{name!r}]` must be a positive int (consecutive batches of that step), got {value!r}."
        )
    return value


def _trains(name: str, value: Any) -> tuple[str, ...]:
    paths = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, (list, tuple)) else ()
    if not paths or not all(isinstance(p, str) and p for p in paths):
        raise RecipeError(
            f"`alternation[{name!r}]['trains']` must name the submodule(s) whose parameters that step's optimizer"
            f" holds, e.g. 'critic' or ['encoder', 'head'], got {value!r}."
        )
    return paths


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
            order = _bind(module, turns, setup)
        else:
            order = tuple(range(count))
            _check_positional_binding(module, turns, setup)
        by_optimizer = {index: turn for index, turn in zip(order, turns)}
        names = tuple(by_optimizer[i].step for i in range(count))
        roles = tuple(_role(by_optimizer[i]) for i in range(count))
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


def _role(turn: Turn) -> str:
    if turn.trains is not None:
        return "+".join(turn.trains)
    return _stem(turn.step) or turn.step


def _stem(step: str) -> Optional[str]:
    for suffix in _STEP_SUFFIXES:
        if step.endswith(suffix) and len(step) > len(suffix):
            return step[: -len(suffix)]
    if step.startswith("train_") and len(step) > 6:
        return step[6:]
    return None


def _trainable_ids(module: Any, path: str, step: str) -> set[int]:
    try:
        sub = module.get_submodule(path)
    except AttributeError:
        children = [name for name, _ in module.named_children()]
        raise RecipeError(
            f"`alternation[{step!r}]['trains']` names {path!r}, but {type(module).__name__} has no such submodule"
            f" (its submodules: {', '.join(repr(c) for c in children) or 'none'})."
        ) from None
    return {id(p) for p in sub.parameters() if p.requires_grad}


def _optimizer_ids(setup: OptimizerSetup) -> list[set[int]]:
    return [{id(p) for g in o.param_groups for p in g["params"]} for o in setup.optimizers]


def _describe(setup: OptimizerSetup, index: int) -> str:
    return f"optimizer {index} ({type(setup.optimizers[index]).__name__})"


def _bind(module: Any, turns: list[Turn], setup: OptimizerSetup) -> tuple[int, ...]:
    """The optimizer of each turn: the one that holds all trainable parameters of the submodules it trains."""
    held = _optimizer_ids(setup)
    order: list[int] = []
    for turn in turns:
        wanted: set[int] = set()
        for path in turn.trains or ():
            wanted |= _trainable_ids(module, path, turn.step)
        if not wanted:
            raise RecipeError(f"`alternation[{turn.step!r}]['trains']` names {turn.trains}, which hold no trainable"
                              " parameter: name the submodule that step trains.")
        holders = [i for i, ids in enumerate(held) if wanted <= ids]
        if len(holders) > 1:  # shared: the one that holds least besides
            holders.sort(key=lambda i: len(held[i] - wanted))
            if len(held[holders[0]] - wanted) == len(held[holders[1]] - wanted):
                raise RecipeError(
                    f"`alternation[{turn.step!r}]` trains {turn.trains}, whose parameters are all in both"
                    f" {_describe(setup, holders[0])} and {_describe(setup, holders[1])}: name a submodule that only"
                    " one optimizer holds."
                )
        if not holders:
            shares = ", ".join(
                f"{_describe(setup, i)} holds {len(wanted & ids)} of them" for i, ids in enumerate(held)
            )
            raise RecipeError(
                f"`alternation[{turn.step!r}]` trains {turn.trains}, but no optimizer holds all of its"
                f" {len(wanted)} trainable parameters ({shares}). Build that step's optimizer on"
                f" `self.{(turn.trains or ('?',))[0]}.parameters()`."
            )
        if holders[0] in order:
            other = turns[order.index(holders[0])].step
            raise RecipeError(
                f"`alternation` binds both {other!r} and {turn.step!r} to {_describe(setup, holders[0])}: each step"
                " needs its own optimizer."
            )
        order.append(holders[0])
    return tuple(order)


def _check_positional_binding(module: Any, turns: list[Turn], setup: OptimizerSetup) -> None:
    """Refuse a positional binding that is evidently swapped: a step named after a submodule (``critic_step`` and
    ``self.critic``) bound to an optimizer that holds none of its parameters while another holds them all."""
    held = _optimizer_ids(setup)
    for position, turn in enumerate(turns):
        stem = _stem(turn.step)
        sub = getattr(module, stem, None) if stem else None
        if not isinstance(sub, torch.nn.Module):
            continue
        wanted = {id(p) for p in sub.parameters() if p.requires_grad}
        if not wanted or wanted & held[position]:
            continue
        owner = next((i for i, ids in enumerate(held) if wanted <= ids), None)
        if owner is None:
            continue
        other = turns[owner].step if owner < len(turns) else "?"
        raise RecipeError(
            f"`alternation` binds {turn.step!r} to {_describe(setup, position)} by position, but that optimizer"
            f" holds none of `self.{stem}`'s parameters, while {_describe(setup, owner)} (bound to {other!r}) holds"
            f" them all: `configure_optimizers` returns the optimizers in another order than `alternation` names"
            f" the steps, so each network would step on the other's loss. Return them in the order of"
            f" `alternation`, or bind each step to what it trains: "
            + "{" + ", ".join(f'"{t.step}": {{"trains": "{_stem(t.step) or "..."}"}}' for t in turns) + "}."
        )


# ---------------------------------------------------------------------------------------------------- turns


@functools.lru_cache(maxsize=64)
def _step_takes_closure(cls: Any) -> bool:
    parameter = inspect.signature(cls.step).parameters.get("closure")
    return parameter is not None and parameter.default is inspect.Parameter.empty


def needs_closure(optimizer: Any) -> bool:
    """Whether `optimizer.step` requires a closure (LBFGS): it then runs the training step itself."""
    return bool(_step_takes_closure(type(optimizer)))  # type: ignore[arg-type]


def output_of(output: Any, where: str) -> Optional[dict[str, Any]]:
    """A step's output as a new dict with its 'loss' (None: skip the turn)."""
    if output is None:
        return None
    if isinstance(output, torch.Tensor):
        return {"loss": output}
    if isinstance(output, Mapping) and isinstance(output.get("loss"), torch.Tensor):
        return dict(output)
    raise RecipeError(
        f"{where} returned a {type(output).__name__}: return the loss tensor of that optimizer, a dict with a 'loss'"
        " key, or None to skip its step."
    )


class ClosureNotRun(RecipeError):
    """A module's `optimizer_step` override never ran the closure it was given."""


class Turns:
    """`cadence.Effects` for a real batch: each optimizer's turn trains it, as Lightning 1.9 did."""

    def __init__(self, module: Any, plan: Plan, optimizers: Sequence[Any], batch: Any,
                 user_step: Optional[Callable[..., Any]]) -> None:
        self.module, self.plan, self.optimizers, self.batch, self.user_step = module, plan, optimizers, batch, user_step
        self.raw = [getattr(o, "optimizer", o) for o in optimizers]
        self.loss: Optional[torch.Tensor] = None
        self.outputs: list[dict[str, Any]] = []

    def closure(self, index: int, batch_idx: int, window: int) -> Callable[[], Optional[torch.Tensor]]:
        """1.x's closure for optimizer `index`: its step function, zero_grad (on the first batch of its window) and
        backward of the loss divided by its accumulation; returns that divided loss, detached."""
        module, plan = self.module, self.plan
        accumulate = plan.loop.accumulate[index]
        result: dict[str, Any] = {"ran": False, "loss": None, "output": None}

        def optimizer_closure() -> Optional[torch.Tensor]:
            result["ran"] = True
            output = self._step_function(index, batch_idx)
            loss = output.get("loss") if output is not None else None
            if window == 0:
                self._zero_grad(index, batch_idx)
            if output is None or loss is None:
                result["loss"] = result["output"] = None
                return None
            scaled = loss / accumulate if accumulate > 1 else loss
            if plan.backward_1x:
                module.manual_backward(scaled, self.raw[index], index)
            else:
                module.manual_backward(scaled)
            output["loss"] = detached = scaled.detach()  # `output` is the closure's own dict (see `output_of`)
            result["loss"], result["output"] = loss.detach() if accumulate > 1 else detached, output
            return detached

        optimizer_closure.result = result  # type: ignore[attr-defined]
        return optimizer_closure

    def train(self, index: int, batch_idx: int, window: int, closes: bool) -> bool:
        module, plan = self.module, self.plan
        toggle = len(self.optimizers) > 1
        values = {"optimizer": self.raw[index], "optimizer_idx": index}
        if toggle:
            hooks.call(module, "toggle_optimizer", values)
        try:
            closure = self.closure(index, batch_idx, window)
            called = plan.own_optimizer_step and closes
            if called:
                self._call_optimizer_step(index, batch_idx, closure)
            elif closes and needs_closure(self.raw[index]):  # LBFGS re-evaluates the loss itself
                self.optimizers[index].step(closure=closure)
            else:
                closure()
                if closes and closure.result["loss"] is not None:  # type: ignore[attr-defined]
                    self.optimizers[index].step()  # within the turn, as 1.9 stepped: before untoggling
        finally:
            if toggle:
                hooks.call(module, "untoggle_optimizer", values)
        result = closure.result  # type: ignore[attr-defined]
        if result["output"] is not None:
            self.loss = result["loss"]
            self.outputs.append(result["output"])
        # a turn whose step returned None is skipped, unless the module's optimizer_step was called to close it
        return called or result["loss"] is not None

    def _call_optimizer_step(self, index: int, batch_idx: int, closure: Callable[[], Any]) -> None:
        module, optimizer = self.module, self.optimizers[index]
        trainer = module.trainer
        hooks.call(module, "optimizer_step", {
            "epoch": trainer.current_epoch, "batch_idx": batch_idx, "optimizer": optimizer, "optimizer_idx": index,
            "optimizer_closure": closure, "on_tpu": False,
            "using_native_amp": str(getattr(trainer, "precision", "")).startswith("16"),
            "using_lbfgs": isinstance(self.raw[index], torch.optim.LBFGS),
        })
        if not closure.result["ran"]:  # type: ignore[attr-defined]
            raise ClosureNotRun(
                f"{type(module).__name__}.optimizer_step did not run the closure of optimizer {index}: the closure"
                " hasn't been executed. HINT: did you call `optimizer_closure()` in your `optimizer_step` hook? It"
                " runs the training step and backward; step with `optimizer.step(closure=optimizer_closure)`, or"
                " call `optimizer_closure()` alone to train without stepping."
            )

    def _step_function(self, index: int, batch_idx: int) -> Optional[dict[str, Any]]:
        """The step function's output as a new dict with its 'loss' (None: skip the turn)."""
        plan, module = self.plan, self.module
        if plan.step_names is not None:
            output = getattr(module, plan.step_names[index])(self.batch, batch_idx)
        elif plan.pass_optimizer_idx:
            output = self.user_step(module, self.batch, batch_idx, index)  # type: ignore[misc]
        else:
            output = self.user_step(module, self.batch, batch_idx)  # type: ignore[misc]
        if plan.step_end:
            output = module.training_step_end(output)
        if isinstance(output, torch.Tensor):  # the usual case, in short
            return {"loss": output}
        return output_of(output, self._where(index))

    def _where(self, index: int) -> str:
        """The step function of optimizer `index`, for messages."""
        plan = self.plan
        if plan.step_names is not None:
            where = f"`{plan.step_names[index]}`"
        elif plan.pass_optimizer_idx:
            where = f"`training_step` for optimizer_idx={index}"
        else:
            where = "`training_step`"
        return where + (" (after `training_step_end`)" if plan.step_end else "")

    def _zero_grad(self, index: int, batch_idx: int) -> None:
        module, optimizer = self.module, self.raw[index]
        trainer = module.trainer
        for callback in trainer.callbacks:
            hook = callback.on_before_zero_grad
            if callable(hook):  # as Lightning calls callbacks' hooks (see `callback_class`)
                hook(trainer, module, optimizer)
        module.on_before_zero_grad(optimizer)
        hooks.call(module, "optimizer_zero_grad", {
            "epoch": trainer.current_epoch, "batch_idx": batch_idx, "optimizer": optimizer, "optimizer_idx": index,
        })

    def step(self, index: int, batch_idx: int, in_turn: bool) -> None:
        if not in_turn:  # a partial window whose optimizer's turn is over: it steps at the epoch's end
            self.optimizers[index].step()
        # in turn: `train` has stepped (or the module's own optimizer_step has stepped, or chosen not to)

    def step_scheduler(self, index: int) -> None:
        spec = self.plan.schedulers[index]
        if spec.reduce_on_plateau and spec.interval == "step":
            state: State = self.module.__dict__["_alternation_state"]
            state.pending_plateau.append(index)  # after the validation that may run on this batch, as Lightning
            return
        step_scheduler(self.module, spec)


def step_scheduler(module: Any, spec: SchedulerSpec) -> None:
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
    hooks.call(module, "lr_scheduler_step",
                 {"scheduler": spec.scheduler, "optimizer_idx": spec.optimizer_index, "metric": metric})


def step_epoch_schedulers(module: Any, plateau: bool) -> None:
    plan: Optional[Plan] = module.__dict__.get("_alternation_plan")
    if plan is None:
        return
    for k in cadence.epoch_schedulers_due(plan.loop, module.trainer.current_epoch, plateau):
        step_scheduler(module, plan.schedulers[k])


def step_pending_plateau(module: Any) -> None:
    plan: Optional[Plan] = module.__dict__.get("_alternation_plan")
    state: Optional[State] = module.__dict__.get("_alternation_state")
    if plan is None or state is None or not state.pending_plateau:
        return
    pending, state.pending_plateau = state.pending_plateau, []
    for k in pending:
        step_scheduler(module, plan.schedulers[k])


def is_last_batch(trainer: Any) -> bool:
    progress = trainer.fit_loop.epoch_loop.batch_progress
    return bool(progress.is_last_batch) or progress.current.ready == trainer.num_training_batches


def run_batch(module: Any, batch: Any, batch_idx: int, user_step: Optional[Callable[..., Any]]) -> Any:
    plan: Optional[Plan] = module.__dict__.get("_alternation_plan")
    if plan is None:
        raise RecipeError(
            f"{type(module).__name__}.configure_optimizers did not go through AlternatingOptimizersMixin: do not"
            " replace it after class creation."
        )
    state: State = module.__dict__["_alternation_state"]
    optimizers = module.optimizers()
    if not isinstance(optimizers, list):
        optimizers = [optimizers]
    if state.pending_grads is not None:
        restore_grads(optimizers, state)
    turns = Turns(module, plan, optimizers, batch, user_step)
    module.__dict__["_in_alternation"] = True
    try:
        last = is_last_batch(module.trainer)
        cadence.run_batch(plan.loop, state.loop, batch_idx, last, turns)
        if plan.epoch_end is not None:
            state.epoch_outputs.append(turns.outputs if len(optimizers) > 1 else next(iter(turns.outputs), None))
        if last:
            step_epoch_schedulers(module, plateau=False)
    finally:
        module.__dict__["_in_alternation"] = False
    return None if turns.loss is None else {"loss": turns.loss}


def run_epoch_end_1x(module: Any) -> None:
    """Call a 1.x ``training_epoch_end(outputs)`` with the epoch's outputs, laid out ``outputs[batch][optimizer]``."""
    plan: Optional[Plan] = module.__dict__.get("_alternation_plan")
    state: Optional[State] = module.__dict__.get("_alternation_state")
    if plan is None or plan.epoch_end is None or state is None:
        return
    outputs, state.epoch_outputs = state.epoch_outputs, []
    plan.epoch_end(module, outputs)


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


def clip(module: Any, optimizer: Any) -> None:
    """Clip the gradients of `optimizer` before its step (the module's options, or its own 1.x/2.x hook)."""
    plan: Optional[Plan] = module.__dict__.get("_alternation_plan")
    if plan is None:
        return
    index = plan.index_of.get(id(optimizer))
    if index is None:
        return
    value = plan.clip[index]
    if value is None and not plan.clip_hook:
        return
    hooks.call(module, "configure_gradient_clipping", {
        "optimizer": optimizer, "optimizer_idx": index, "gradient_clip_val": value,
        "gradient_clip_algorithm": plan.clip_algorithm if value is not None else None,
    })


def adopt_trainer_options(trainer: Any, module: Any) -> None:
    """Take ``Trainer(accumulate_grad_batches=..., gradient_clip_val=...)`` as the module's own options, as Lightning
    1.x applied them (Lightning 2 refuses them under manual optimization), and hide them from Lightning's check until
    `restore_trainer_options`."""
    for key, default in (("accumulate_grad_batches", 1), ("gradient_clip_val", None)):
        module.__dict__.pop(f"_trainer_{key}", None)
        value = getattr(trainer, key, default)
        if value == default or (key == "gradient_clip_val" and not value):
            continue
        own = getattr(module, key)
        if own not in (default, value):
            raise RecipeError(
                f"`Trainer({key}={value})` and the module's `{key} = {own!r}` disagree: set it in one place (on"
                f" the module for one value per optimizer)."
            )
        module.__dict__[f"_trainer_{key}"] = value
        setattr(trainer, key, default)
    algorithm = getattr(trainer, "gradient_clip_algorithm", None)
    if "_trainer_gradient_clip_val" in module.__dict__:
        module.__dict__["_trainer_gradient_clip_algorithm"] = str(getattr(algorithm, "value", algorithm) or "norm")


def restore_trainer_options(trainer: Any, module: Any, forget: bool = False) -> None:
    """Give the Trainer back the options `adopt_trainer_options` took (``estimated_stepping_batches`` reads them);
    `forget` them at the end of the fit."""
    for key in ("accumulate_grad_batches", "gradient_clip_val"):
        if f"_trainer_{key}" in module.__dict__:
            setattr(trainer, key, module.__dict__[f"_trainer_{key}"])
            if forget:
                del module.__dict__[f"_trainer_{key}"]


#: `Callback` hooks that run on every batch and that the mixin's callback does not use.
_PER_BATCH_HOOKS_NOT_USED = (
    "on_train_batch_end", "on_before_backward", "on_after_backward", "on_before_optimizer_step", "on_before_zero_grad",
    "on_validation_batch_start", "on_validation_batch_end",
)


@functools.cache
def callback_class() -> type:
    def state_key(self: Any) -> str:
        return STATE_KEY

    def __init__(self: Any, module: Any) -> None:  # noqa: N807
        self._module = weakref.ref(module)

    def _state_dict(self: Any) -> dict[str, Any]:
        module = self._module()
        return state_dict(module) if module is not None else {}

    def _load_state_dict(self: Any, saved: dict[str, Any]) -> None:
        module = self._module()
        if module is not None:
            load_state_dict(module, saved)

    def on_train_batch_start(self: Any, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        step_pending_plateau(pl_module)

    def setup(self: Any, trainer: Any, pl_module: Any, stage: str) -> None:
        restore_trainer_options(trainer, pl_module)

    def teardown(self: Any, trainer: Any, pl_module: Any, stage: str) -> None:
        restore_trainer_options(trainer, pl_module, forget=True)

    def on_train_epoch_end(self: Any, trainer: Any, pl_module: Any) -> None:
        run_epoch_end_1x(pl_module)
        step_pending_plateau(pl_module)
        step_epoch_schedulers(pl_module, plateau=True)

    namespace = {
        "__doc__": "Saves the alternation state in checkpoints, steps plateau schedulers, gives the Trainer its options back.",
        "__init__": __init__,
        "state_key": property(state_key),
        "state_dict": _state_dict,
        "load_state_dict": _load_state_dict,
        "on_train_batch_start": on_train_batch_start,
        "on_train_epoch_end": on_train_epoch_end,
        "setup": setup,
        "teardown": teardown,
        # Lightning calls every callback's hook on every batch, unless it is not callable: the base class's empty
        # hooks would cost the loop a dispatch each (its profiler's context included), per batch.
        **dict.fromkeys(_PER_BATCH_HOOKS_NOT_USED),
        "__module__": __name__,
        "__qualname__": "AlternationCallback",
    }
    return type("AlternationCallback", callback_bases(), namespace)
