"""Declarative recipes: a plain (YAML-friendly) dict that `configure_from_recipe` turns into optimizers and schedulers.

A recipe names the optimizer (a `torch.optim` class name such as ``"AdamW"``, a dotted path to an optimizer class,
or a class), its options, weight decay with a no-decay rule, per-module overrides, layer-wise decay, a scheduler
with its cadence, and what the run applies around it::

    recipe: deit                 # start from a catalogue recipe (`list_recipes()`); the keys below change it
    optimizer: AdamW
    lr: 5.0e-4
    lr_scaling: {base_batch_size: 512}   # lr x global batch / 512 (global batch read from the Trainer, or batch_size)
    weight_decay: 0.05
    optimizer_kwargs: {betas: [0.9, 0.95]}
    no_decay: default            # or none, or a dict added to the default rule:
                                 #   {names: [pos_embed], module_types: [Embedding]}; `replace: true` drops the
                                 #   default norm layers; `bias`/`one_dim`/`use_model_hook: false` turn those off;
                                 #   `positions: [pos_embed, cls_token]` exempts only those position/token names
                                 #   (`false`: none of them, `true`: `POSITION_TOKEN_NAMES`, the default)
    overrides: {encoder: {lr: 1.0e-4}}
    layer_decay: 0.65            # BEiT/MAE layer-wise lr decay (see `param_groups`)
    scheduler: {type: warmup_cosine, warmup_epochs: 5, min_lr: 1.0e-5}   # interval/frequency/monitor/name as in
                                                                         # `scheduled`; `warmup_start: unscaled`
                                                                         # starts the warm-up at the lr before
                                                                         # lr_scaling (Goyal et al.)
    gradient_clip_val: 1.0       # applied by the mixins when the Trainer sets none
    values: {gradient_penalty: 10.0}     # numbers for the user's own loss (`OptimRecipeMixin.recipe_values`)

Several optimizers (a GAN), each bound to the submodule named by its key (or by its ``modules``), alternated as
`AlternatingOptimizersMixin` does::

    optimizers:
      critic: {optimizer: Adam, lr: 1.0e-4, optimizer_kwargs: {betas: [0.0, 0.9]}}
      generator: {optimizer: Adam, lr: 1.0e-4, optimizer_kwargs: {betas: [0.0, 0.9]}}
    alternation: {critic: 5, generator: 1}     # consecutive batches of each (a list: every one on every batch)
    alternation_cycle: run

A recipe from a file is data, not code: whatever it names by a dotted path is checked to be what its key expects (an
optimizer class, a scheduler class, a module type) before anything is called.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import importlib
import inspect
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional, TypedDict, Union

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from lightning_optim_recipes._checks import check_keys
from lightning_optim_recipes.catalogue import recipe_of
from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.no_decay import DEFAULT_NO_DECAY, POSITION_TOKEN_NAMES, NoDecayRule
from lightning_optim_recipes.param_groups import param_groups
from lightning_optim_recipes.schedulers import (
    cosine,
    exponential,
    multistep,
    scheduled,
    warmup_cosine,
    warmup_linear,
    warmup_multistep,
)

__all__ = ["SCHEDULER_FACTORIES", "Recipe", "configure_from_recipe", "global_batch_size", "resolve_recipe"]

#: The keys of one optimizer's recipe (at the top level, or under ``optimizers``).
OPTIMIZER_KEYS = ("optimizer", "lr", "lr_scaling", "weight_decay", "optimizer_kwargs", "no_decay", "overrides",
                  "layer_decay", "scheduler", "gradient_clip_val", "gradient_clip_algorithm")
RECIPE_KEYS = ("recipe",) + OPTIMIZER_KEYS + ("batch_size", "values", "optimizers", "alternation",
                                              "alternation_cycle")
SUB_KEYS = OPTIMIZER_KEYS + ("modules",)
CADENCE_KEYS = ("interval", "frequency", "monitor", "name", "strict")
LR_SCALING_KEYS = ("base_batch_size",)

#: The library's scheduler factories by recipe name; any `torch.optim.lr_scheduler` class name works too.
SCHEDULER_FACTORIES: dict[str, Callable[..., Any]] = {
    "multistep": multistep,
    "exponential": exponential,
    "cosine": cosine,
    "warmup_cosine": warmup_cosine,
    "warmup_linear": warmup_linear,
    "warmup_multistep": warmup_multistep,
}
#: Factories that read the run's length from the Trainer.
_READS_TRAINER = ("warmup_cosine", "warmup_linear", "warmup_multistep")

log = logging.getLogger("lightning_optim_recipes")


class Recipe(TypedDict, total=False):
    """The keys of a recipe dict (all optional except `lr`, or a catalogue ``recipe``; see this module)."""

    recipe: str
    optimizer: Union[str, type]
    lr: float
    lr_scaling: dict[str, Any]
    batch_size: int
    weight_decay: float
    optimizer_kwargs: dict[str, Any]
    no_decay: Union[str, dict[str, Any], NoDecayRule, None]
    overrides: dict[str, dict[str, Any]]
    layer_decay: float
    scheduler: Optional[dict[str, Any]]
    gradient_clip_val: float
    gradient_clip_algorithm: str
    values: dict[str, Any]
    optimizers: dict[str, dict[str, Any]]
    alternation: Union[dict[str, int], list[str]]
    alternation_cycle: str


# ----------------------------------------------------------------------------------------------------- resolving


def resolve_recipe(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe as it will be built: a catalogue recipe (``{'recipe': 'deit', ...}``) merged with the keys given
    beside it (dicts merged key by key), its keys checked.

    Example:
        >>> resolve_recipe({"recipe": "wgan-gp", "alternation_cycle": "epoch"})["alternation_cycle"]
        'epoch'
    """
    if not isinstance(recipe, Mapping):
        raise RecipeError(f"A recipe must be a dict such as {{'optimizer': 'AdamW', 'lr': 1e-3}}, got {recipe!r}.")
    check_keys(recipe, RECIPE_KEYS, "the recipe")
    resolved: dict[str, Any] = dict(recipe)
    name = recipe.get("recipe")
    if name is not None:
        base = recipe_of(name)
        resolved = merge(base, {k: v for k, v in recipe.items() if k != "recipe"})
        resolved["recipe"] = name
    multi = "optimizers" in resolved
    if multi:
        misplaced = [k for k in OPTIMIZER_KEYS if k in resolved and k not in ("gradient_clip_val",
                                                                              "gradient_clip_algorithm")]
        if misplaced:
            raise RecipeError(
                f"The recipe has 'optimizers' and also {', '.join(repr(k) for k in misplaced)} at its top level: with"
                " several optimizers, give each its own under 'optimizers' (e.g. {'optimizers': {'critic':"
                " {'lr': 1e-4}}})."
            )
        optimizers = resolved["optimizers"]
        if not isinstance(optimizers, Mapping) or not optimizers:
            raise RecipeError(
                "The recipe's 'optimizers' must map submodule names to their recipes, e.g. {'critic': {'optimizer':"
                f" 'Adam', 'lr': 1e-4}}, 'generator': {{...}}}}, got {optimizers!r}."
            )
        for key, sub in optimizers.items():
            if not isinstance(sub, Mapping):
                raise RecipeError(f"The recipe's 'optimizers'[{key!r}] must be a dict of its optimizer's recipe, got"
                                  f" {sub!r}.")
            check_keys(sub, SUB_KEYS, f"the recipe's 'optimizers'[{key!r}]")
            if "lr" not in sub:
                raise RecipeError(f"The recipe's 'optimizers'[{key!r}] has no 'lr': add its learning rate.")
        _check_alternation(resolved)
    else:
        for key in ("alternation", "alternation_cycle"):
            if key in resolved:
                raise RecipeError(f"The recipe has {key!r} but one optimizer: {key!r} goes with 'optimizers'"
                                  " (several optimizers); remove it.")
        if "lr" not in resolved:
            raise RecipeError(
                "The recipe has no 'lr': add the learning rate, e.g. {'optimizer': 'AdamW', 'lr': 1e-3}."
            )
    return resolved


def merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `changes` applied: dicts merged key by key, anything else replaced.

    Example:
        >>> merge({"lr": 1.0, "scheduler": {"type": "cosine", "t_max": 3}}, {"scheduler": {"t_max": 5}})
        {'lr': 1.0, 'scheduler': {'type': 'cosine', 't_max': 5}}
    """
    merged = copy.deepcopy(dict(base))
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _check_alternation(recipe: Mapping[str, Any]) -> None:
    names = list(recipe["optimizers"])
    cycle = recipe.get("alternation_cycle", "epoch")
    if cycle not in ("epoch", "run"):
        raise RecipeError(f"The recipe's 'alternation_cycle' must be 'epoch' or 'run', got {cycle!r}.")
    alternation = recipe.get("alternation")
    if alternation is None:
        return
    given = list(alternation) if isinstance(alternation, (Mapping, list, tuple)) else None
    if given is None or sorted(map(str, given)) != sorted(names):
        raise RecipeError(
            f"The recipe's 'alternation' names {alternation!r}: give each optimizer of 'optimizers' ({', '.join(names)})"
            f" once, with its consecutive batches, e.g. {{{', '.join(f'{n!r}: 1' for n in names)}}}."
        )
    if isinstance(alternation, Mapping):
        for name, batches in alternation.items():
            if isinstance(batches, bool) or not isinstance(batches, int) or batches < 1:
                raise RecipeError(f"The recipe's 'alternation'[{name!r}] must be a positive int (consecutive"
                                  f" batches), got {batches!r}.")


# ------------------------------------------------------------------------------------------------------ building


def configure_from_recipe(module: nn.Module, recipe: Mapping[str, Any], trainer: Any = None) -> Any:
    """Build what ``configure_optimizers`` returns for `module` from a recipe dict.

    One optimizer: ``{'optimizer': ..., 'lr_scheduler': ...}``. Several (``optimizers``): one optimizer dict per
    optimizer, in the recipe's order, with its ``'frequency'`` from ``alternation`` (for
    `AlternatingOptimizersMixin`).

    Args:
        module: the model whose parameters are optimized.
        recipe: see `Recipe` and this module's docstring.
        trainer: for what the run decides (``estimated_stepping_batches``, the global batch size; default:
            ``module.trainer`` if attached).

    Example:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
        >>> recipe = {"optimizer": "AdamW", "lr": 1e-3, "weight_decay": 0.05,
        ...           "scheduler": {"type": "multistep", "milestones": [2], "gamma": 0.5}}
        >>> config = configure_from_recipe(model, recipe)
        >>> type(config["optimizer"]).__name__, [g["name"] for g in config["optimizer"].param_groups]
        ('AdamW', ['decay', 'no_decay'])
    """
    resolved = resolve_recipe(recipe)
    if trainer is None:
        trainer = getattr(module, "_trainer", None)
    label = f"recipe {resolved['recipe']!r}" if "recipe" in resolved else "the recipe"
    if "optimizers" not in resolved:
        optimizer, scheduler = _build(module, resolved, resolved, trainer, label)
        config: dict[str, Any] = {"optimizer": optimizer}
        if scheduler is not None:
            config["lr_scheduler"] = scheduler
        return config
    alternation = resolved.get("alternation")
    configs = []
    for name, sub in resolved["optimizers"].items():
        target = _submodule(module, name, sub.get("modules", [name]))
        optimizer, scheduler = _build(target, sub, resolved, trainer, f"{label}'s {name!r} optimizer", role=name)
        entry: dict[str, Any] = {"optimizer": optimizer}
        if scheduler is not None:
            entry["lr_scheduler"] = scheduler
        if isinstance(alternation, Mapping):
            entry["frequency"] = int(alternation[name])
        configs.append(entry)
    return tuple(configs)


def optimizer_roles(recipe: Mapping[str, Any]) -> Optional[tuple[str, ...]]:
    """The names of a several-optimizer recipe's optimizers (what each trains), in order; None for one optimizer."""
    resolved = resolve_recipe(recipe)
    return tuple(resolved["optimizers"]) if "optimizers" in resolved else None


def submodule_paths(recipe: Mapping[str, Any], role: str) -> tuple[str, ...]:
    """The submodules the optimizer `role` of a several-optimizer recipe holds."""
    sub = resolve_recipe(recipe)["optimizers"][role]
    modules = sub.get("modules", [role])
    return (modules,) if isinstance(modules, str) else tuple(modules)


def _submodule(module: nn.Module, name: str, paths: Any) -> nn.Module:
    paths = [paths] if isinstance(paths, str) else list(paths)
    found = []
    for path in paths:
        try:
            found.append(module.get_submodule(path))
        except AttributeError:
            children = ", ".join(repr(n) for n, _ in module.named_children()) or "none"
            raise RecipeError(
                f"The recipe's {name!r} optimizer trains the submodule {path!r}, but {type(module).__name__} has none"
                f" (its submodules: {children}). Rename the optimizer after the submodule, or set its 'modules',"
                f" e.g. {{'optimizers': {{{name!r}: {{'modules': ['discriminator']}}}}}}."
            ) from None
    if len(found) == 1:
        return found[0]
    return nn.ModuleDict({p.replace(".", "_"): m for p, m in zip(paths, found)})


def _build(module: nn.Module, spec: Mapping[str, Any], recipe: Mapping[str, Any], trainer: Any,
           label: str, role: Optional[str] = None) -> tuple[torch.optim.Optimizer, Any]:
    optimizer_cls = _optimizer_class(spec.get("optimizer", "AdamW"))
    kwargs = dict(spec.get("optimizer_kwargs") or {})
    misplaced = [key for key in ("lr", "weight_decay") if key in kwargs]
    if misplaced:  # param groups set both, so the optimizer's default would be silently ignored
        key = misplaced[0]
        raise RecipeError(
            f"{label.capitalize()} has {key!r} in its optimizer_kwargs, where every param group's own {key!r}"
            f" overrides it: write it beside 'optimizer' instead, {{{key!r}: {kwargs[key]!r}}}, and remove it from"
            " optimizer_kwargs."
        )
    betas = kwargs.get("betas")
    if isinstance(betas, (list, tuple)):  # YAML has no tuples, and writes 0.0 as 0: torch wants a pair of floats
        kwargs["betas"] = tuple(float(b) if isinstance(b, int) and not isinstance(b, bool) else b for b in betas)
    lr = _scaled_lr(spec, recipe, trainer, label)
    layer_decay = spec.get("layer_decay")
    overrides = spec.get("overrides")
    if "lr" in spec and lr != spec["lr"] and overrides:  # scale the overrides' own lrs the same way
        ratio = lr / spec["lr"]
        overrides = {k: ({**v, "lr": v["lr"] * ratio} if isinstance(v, Mapping) and "lr" in v else v)
                     for k, v in overrides.items()}
    groups = param_groups(
        module,
        weight_decay=spec.get("weight_decay", 0.0),
        lr=lr if layer_decay is not None else None,
        no_decay=_no_decay_rule(spec.get("no_decay", "default")),
        overrides=overrides,
        layer_decay=layer_decay,
    )
    # decay and no_decay stay two groups even at weight_decay 0: the layout does not depend on the value, so a run
    # resumed with weight decay added keeps its optimizer state
    if role is not None:  # several optimizers: their groups carry the role (lr-Adam/critic, lr-AdamW/encoder/decay)
        for group in groups:
            group["name"] = f"{role}/{group['name']}" if "name" in group else role
    try:
        optimizer = optimizer_cls(groups, lr=lr, **kwargs)
    except (TypeError, ValueError) as err:  # an argument it does not take; a value it refuses
        fix = (f"Remove or rename the arguments {optimizer_cls.__name__} does not take." if isinstance(err, TypeError)
               else f"Change that value in {label}.")
        raise RecipeError(f"The recipe's optimizer_kwargs do not fit {optimizer_cls.__name__}: {err}. {fix}") from err
    scheduler = None
    if spec.get("scheduler") is not None:
        scheduler = _scheduler(optimizer, _warmup_start(spec["scheduler"], spec["lr"], lr, label), trainer)
    return optimizer, scheduler


def _warmup_start(scheduler: Any, unscaled: float, lr: float, label: str) -> Any:
    """The scheduler's spec with ``'warmup_start': 'unscaled'`` replaced by the multiplier that starts the warm-up at
    the lr before ``lr_scaling``: `unscaled` / `lr` (base batch / global batch; 1.0 without ``lr_scaling``), as Goyal
    et al. warm up from η to kη. A global batch at or under the base batch (k <= 1) has nothing to warm up to: the
    warm-up then runs at the scaled lr (multiplier 1.0)."""
    if not isinstance(scheduler, Mapping) or "warmup_start" not in scheduler:
        return scheduler
    start = scheduler["warmup_start"]
    if start == "unscaled":
        ratio = min(unscaled / lr, 1.0) if lr > 0 else 1.0
        if ratio < 1.0:
            say(f"{label}: the warm-up starts at the lr before lr_scaling, {unscaled:g} ({ratio:.6g} of {lr:.6g})")
        elif lr != unscaled:
            say(f"{label}: the warm-up stays at the scaled lr {lr:.6g}: it is not above the lr before lr_scaling,"
                f" {unscaled:g} (the global batch is not above the base batch)")
        return {**scheduler, "warmup_start": ratio}
    if isinstance(start, bool) or not isinstance(start, (int, float)) or not 0 <= start <= 1:
        raise RecipeError(
            f"The recipe's scheduler 'warmup_start' must be 'unscaled' (start the warm-up at the lr before"
            f" 'lr_scaling') or a number in [0, 1] (the warm-up's multiplier of the peak lr at its first step), got"
            f" {start!r}."
        )
    return scheduler


# -------------------------------------------------------------------------------------------------- lr scaling


def global_batch_size(trainer: Any) -> Optional[int]:
    """The run's global batch size: the training loader's batch size x devices x gradient accumulation (None when
    it cannot be read: no Trainer, or a loader without a batch size)."""
    if trainer is None:
        return None
    try:
        trainer.estimated_stepping_batches  # noqa: B018 - sets up the training loader, as Lightning documents
    except Exception:  # noqa: BLE001
        return None
    loader = getattr(trainer, "train_dataloader", None)
    if isinstance(loader, Sequence) and len(loader) == 1:
        loader = loader[0]
    batch_size = getattr(loader, "batch_size", None)
    if batch_size is None:
        batch_size = getattr(getattr(loader, "batch_sampler", None), "batch_size", None)
    if not isinstance(batch_size, int) or batch_size < 1:
        return None
    world = int(getattr(trainer, "world_size", 1) or 1)
    accumulate = int(getattr(trainer, "accumulate_grad_batches", 1) or 1)
    return batch_size * world * accumulate


def _scaled_lr(spec: Mapping[str, Any], recipe: Mapping[str, Any], trainer: Any, label: str) -> float:
    lr = spec["lr"]
    scaling = spec.get("lr_scaling")
    if scaling is None:
        return lr
    if not isinstance(scaling, Mapping):
        raise RecipeError(f"The recipe's 'lr_scaling' must be a dict such as {{'base_batch_size': 256}}, got"
                          f" {scaling!r}.")
    check_keys(scaling, LR_SCALING_KEYS, "the recipe's 'lr_scaling'")
    base = scaling.get("base_batch_size")
    if isinstance(base, bool) or not isinstance(base, int) or base < 1:
        raise RecipeError(f"The recipe's 'lr_scaling' needs a positive int 'base_batch_size', got {base!r}.")
    given = recipe.get("batch_size")
    batch = given if given is not None else global_batch_size(trainer)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        fix = getattr(trainer, "global_batch_fix", None)  # what a stand-in Trainer (`preview_schedule`) asks for
        fix = fix if isinstance(fix, str) else "train with a Trainer and a DataLoader with a `batch_size`"
        raise RecipeError(
            f"{label.capitalize()} scales its lr by the global batch size (lr x batch / {base}), which the Trainer"
            " does not give here: set 'batch_size' in the recipe (the global batch: per-device batch x devices x"
            f" accumulation), or {fix}."
        )
    scaled = lr * batch / base
    source = "given as batch_size" if given is not None else _batch_source(trainer, batch)
    say(f"{label}: lr = {lr:g} x {batch} / {base} = {scaled:.6g} (global batch {batch}, {source})")
    return scaled


def _batch_source(trainer: Any, batch: int) -> str:
    world = int(getattr(trainer, "world_size", 1) or 1)
    accumulate = int(getattr(trainer, "accumulate_grad_batches", 1) or 1)
    return f"{batch // (world * accumulate)} per device x {world} device(s) x {accumulate} accumulated"


class _StderrHandler(logging.StreamHandler):
    """A `StreamHandler` on whatever ``sys.stderr`` is when it writes, not the one of its creation (pytest's capsys
    and contextlib.redirect_stderr replace it, then close theirs), as `logging.lastResort` does."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> Any:
        return sys.stderr


def say(message: str) -> None:
    """Tell the user what a recipe computed (on the library's logger, shown at INFO like Lightning's own, on the
    ``sys.stderr`` of the moment)."""
    if not log.handlers and not logging.getLogger().handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    log.info(message)


# ----------------------------------------------------------------------------------------------- named parts


def _optimizer_class(spec: Any) -> type:
    if isinstance(spec, type) and issubclass(spec, torch.optim.Optimizer):
        return spec
    if not isinstance(spec, str):
        raise RecipeError(f"The recipe's 'optimizer' must be a name such as 'AdamW' or a class, got {spec!r}.")
    if "." in spec:
        found = _import(spec, "optimizer")
        if not (isinstance(found, type) and issubclass(found, torch.optim.Optimizer)):
            raise RecipeError(
                f"The recipe's 'optimizer' {spec!r} is a {_kind(found)}, not a `torch.optim.Optimizer` subclass: use"
                " an optimizer class there (e.g. 'AdamW' or 'my_package.optim.Lion'); a recipe calls nothing else."
            )
        return found
    choices = sorted(
        name
        for name, obj in vars(torch.optim).items()
        if inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer) and obj is not torch.optim.Optimizer
    )
    if spec not in choices:
        close = [c for c in choices if c.lower() == spec.lower()]
        close = close or difflib.get_close_matches(spec, choices, n=1, cutoff=0.5)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        raise RecipeError(f"Unknown optimizer {spec!r}. {hint}Expected one of {choices} or a dotted path.")
    return getattr(torch.optim, spec)


def _kind(obj: Any) -> str:
    if isinstance(obj, type):
        return f"class ({obj.__module__}.{obj.__qualname__})"
    return type(obj).__name__


_RULE_FLAGS = ("bias", "one_dim", "use_model_hook")


def _no_decay_rule(spec: Any) -> Optional[NoDecayRule]:
    if isinstance(spec, NoDecayRule):
        return spec
    if spec in (None, "none", False):
        return None
    if spec in ("default", True):
        return DEFAULT_NO_DECAY
    if isinstance(spec, Mapping):
        check_keys(spec, ("names", "module_types", "replace", "positions") + _RULE_FLAGS, "the recipe's 'no_decay'")
        types = tuple(_module_type(t) for t in spec.get("module_types", ()))
        names = spec.get("names", ())
        names = (names,) if isinstance(names, str) else tuple(names)
        flags: dict[str, Any] = {key: spec[key] for key in _RULE_FLAGS if key in spec}
        for key, value in flags.items():
            if not isinstance(value, bool):
                raise RecipeError(f"The recipe's 'no_decay' {key!r} must be true or false, got {value!r}.")
        if "positions" in spec:
            flags["positions"] = _positions(spec["positions"])
        base = NoDecayRule(module_types=()) if spec.get("replace") else DEFAULT_NO_DECAY
        return dataclasses.replace(base.extend(names=names, module_types=types), **flags)
    raise RecipeError(
        f"The recipe's 'no_decay' must be 'default', 'none' or a dict such as {{'names': ['pos_embed']}}, got {spec!r}."
    )


def _positions(spec: Any) -> tuple[str, ...]:
    """`NoDecayRule.positions` for the recipe's ``no_decay: {positions: ...}``."""
    if spec is True:
        return POSITION_TOKEN_NAMES
    if spec is False:
        return ()
    names = [spec] if isinstance(spec, str) else spec
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise RecipeError(
            "The recipe's 'no_decay' 'positions' must be true (exempt every name of `POSITION_TOKEN_NAMES`, the"
            " default), false (decay them all) or a list of the parameter names to exempt such as ['pos_embed',"
            f" 'cls_token'], got {spec!r}."
        )
    return tuple(names)


def _module_type(spec: Any) -> type[nn.Module]:
    if isinstance(spec, type) and issubclass(spec, nn.Module):
        return spec
    if isinstance(spec, str) and "." not in spec and isinstance(getattr(nn, spec, None), type):
        return getattr(nn, spec)
    if isinstance(spec, str) and "." in spec:
        found = _import(spec, "module type")
        if not (isinstance(found, type) and issubclass(found, nn.Module)):
            raise RecipeError(
                f"The recipe's 'no_decay' module type {spec!r} is a {_kind(found)}, not an `nn.Module` subclass: use"
                " a module class there (e.g. 'Embedding' or 'my_package.layers.ScaleNorm')."
            )
        return found
    raise RecipeError(f"Unknown module type {spec!r} in 'no_decay': use a `torch.nn` name such as 'Embedding'.")


def _scheduler(optimizer: torch.optim.Optimizer, spec: Any, trainer: Any) -> Any:
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise RecipeError(
            "The recipe's 'scheduler' must be a dict with a 'type', e.g. {'type': 'multistep', 'milestones': [30]},"
            f" got {spec!r}."
        )
    kind, options = spec["type"], {k: v for k, v in spec.items() if k != "type"}
    if kind in SCHEDULER_FACTORIES:
        factory = SCHEDULER_FACTORIES[kind]
        if kind in _READS_TRAINER:
            options.setdefault("trainer", trainer)
        check_keys(options, tuple(inspect.signature(factory).parameters)[1:], f"the {kind!r} scheduler")
        config = factory(optimizer, **options)
        if kind == "warmup_multistep" and "of_epochs" in spec:
            scheduler = config["scheduler"]
            say(f"{kind}: milestones {list(spec['milestones'])} of {spec['of_epochs']} epochs scaled to this run:"
                f" optimizer steps {scheduler.milestone_steps}")
        return config
    cls = _scheduler_class(kind)
    cadence = {k: options.pop(k) for k in CADENCE_KEYS if k in options}
    try:
        scheduler = cls(optimizer, **options)
    except TypeError as err:
        raise RecipeError(
            f"The recipe's scheduler options do not fit {kind}: {err}. Remove or rename the options {kind} does not"
            " take (cadence keys are 'interval', 'frequency', 'monitor', 'name', 'strict')."
        ) from err
    return scheduled(scheduler, **cadence)


def _scheduler_class(kind: Any) -> Any:
    if isinstance(kind, str) and "." in kind:
        found = _import(kind, "scheduler")
        if not (isinstance(found, type) and issubclass(found, (LRScheduler, ReduceLROnPlateau))):
            raise RecipeError(
                f"The recipe's scheduler type {kind!r} is a {_kind(found)}, not an `LRScheduler` (or"
                f" `ReduceLROnPlateau`) subclass: use a scheduler class there, or one of {list(SCHEDULER_FACTORIES)}."
            )
        return found
    cls = getattr(torch.optim.lr_scheduler, kind, None) if isinstance(kind, str) else None
    if isinstance(cls, type) and issubclass(cls, (LRScheduler, ReduceLROnPlateau)):
        return cls
    choices = list(SCHEDULER_FACTORIES) + ["any torch.optim.lr_scheduler class, e.g. 'StepLR'"]
    known = list(SCHEDULER_FACTORIES) + [n for n, c in vars(torch.optim.lr_scheduler).items() if inspect.isclass(c)]
    close = [k for k in known if isinstance(kind, str) and k.lower() == kind.lower()] or (
        difflib.get_close_matches(kind, known, n=1, cutoff=0.6) if isinstance(kind, str) else []
    )
    hint = f"Did you mean {close[0]!r}? " if close else ""
    raise RecipeError(f"Unknown scheduler type {kind!r}. {hint}Expected one of {choices}.")


def _import(path: str, what: str) -> Any:
    module_name, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise RecipeError(
            f"Cannot import the {what} {path!r}: {err}. Fix the dotted path (`package.module.Name`) or install the"
            " package that provides it."
        ) from err
