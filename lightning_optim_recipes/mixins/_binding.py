"""Which step method trains which optimizer, for `AlternatingOptimizersMixin`: the explicit ``alternation`` form
(``{"critic_step": {"trains": "critic", "batches": 5}}``), a several-optimizer recipe's roles, and the binding of each
step to the optimizer that holds what it trains (refusing a positional binding that is evidently swapped)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Optional

import torch

from lightning_optim_recipes import hooks
from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.recipe import resolve_recipe, submodule_paths
from lightning_optim_recipes.validation import OptimizerSetup


#: Suffixes stripped from a step method's name to find the submodule it trains (``critic_step`` -> ``critic``).
_STEP_SUFFIXES = ("_training_step", "_step", "_loss")


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


def role_of(turn: Turn) -> str:
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


def bind(module: Any, turns: list[Turn], setup: OptimizerSetup) -> tuple[int, ...]:
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


def check_positional_binding(module: Any, turns: list[Turn], setup: OptimizerSetup) -> None:
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

