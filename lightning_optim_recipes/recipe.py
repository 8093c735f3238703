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
    layer_rule: timm             # optional: timm's layer ids (norms on the model with the last block)
    scheduler: {type: warmup_cosine, warmup_epochs: 5, min_lr: 1.0e-5}   # interval/frequency/monitor/name as in
                                                                         # `scheduled`; `warmup_start: unscaled`
                                                                         # starts the warm-up at the lr before
                                                                         # lr_scaling (Goyal et al.)
    warmup_fraction: 0.02        # instead of a scheduler, for an optimizer with a built-in warm-up (schedule-free,
                                 #   `optimizer: AdamWScheduleFree`): its `warmup_steps`, as a share of the run
    gradient_clip_val: 1.0       # applied by the mixins when the Trainer sets none
    values: {gradient_penalty: 10.0}     # numbers for the user's own loss (`OptimRecipeMixin.recipe_values`)

Muon beside AdamW in one optimizer (`HybridOptimizer`): the top-level keys are Muon's, which trains the hidden
layers' 2-D weights; ``hybrid`` is the optimizer of everything else (embeddings, head, norms, biases), split by
`muon_split`::

    optimizer: Muon
    lr: 0.02
    weight_decay: 0.01
    optimizer_kwargs: {momentum: 0.95, nesterov: true, adjust_lr_fn: original}
    scheduler: {type: warmup_cosine, warmup_fraction: 0.05}   # one scheduler over both parts
    hybrid:
      optimizer: AdamW           # default AdamW
      lr: 3.0e-4
      weight_decay: 0.01
      optimizer_kwargs: {betas: [0.9, 0.95]}
      groups: {embedding: {lr: 0.6}}   # a group of the split: embedding, head, scalar, tensor, hidden
      overrides: {blocks.0.attn: adamw}  # module paths to 'muon' or 'adamw'
      head: auto                 # or the output layer's path, e.g. lm_head
      conv_view: false           # true: conv kernels to Muon on their 2-D view

An ``lr`` given beside ``recipe:`` (or to ``get_recipe``) on a catalogue recipe with ``hybrid`` changes both parts'
lrs, the recipe's ratio between them kept (`apply_changes`).

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
from collections.abc import Mapping
from typing import Any, Optional, TypedDict, Union

import torch
from torch import nn

from lightning_optim_recipes._checks import check_keys
from lightning_optim_recipes.catalogue import recipe_of
from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.hybrid import hybrid_optimizer
from lightning_optim_recipes.muon_checks import lr_advice
from lightning_optim_recipes.no_decay import NoDecayRule
from lightning_optim_recipes.param_groups import param_groups
from lightning_optim_recipes.recipe_parts import (
    SCHEDULER_FACTORIES,
    builtin_warmup,
    global_batch_size,
    no_decay_rule,
    optimizer_class,
    say,
    scaled_lr,
    scheduler_config,
)

__all__ = ["SCHEDULER_FACTORIES", "Recipe", "configure_from_recipe", "global_batch_size", "resolve_recipe"]

#: The keys of one optimizer's recipe (at the top level, or under ``optimizers``).
OPTIMIZER_KEYS = ("optimizer", "lr", "lr_scaling", "weight_decay", "optimizer_kwargs", "no_decay", "overrides",
                  "layer_decay", "layer_rule", "scheduler", "warmup_fraction", "gradient_clip_val",
                  "gradient_clip_algorithm", "hybrid")
#: The keys of ``hybrid``: the optimizer beside Muon, and how `muon_split` splits the parameters.
HYBRID_KEYS = ("optimizer", "lr", "weight_decay", "optimizer_kwargs", "groups", "overrides", "head", "conv_view")
RECIPE_KEYS = ("recipe",) + OPTIMIZER_KEYS + ("batch_size", "values", "optimizers", "alternation",
                                              "alternation_cycle")
SUB_KEYS = OPTIMIZER_KEYS + ("modules",)


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
    layer_rule: str
    scheduler: Optional[dict[str, Any]]
    warmup_fraction: float
    gradient_clip_val: float
    gradient_clip_algorithm: str
    values: dict[str, Any]
    optimizers: dict[str, dict[str, Any]]
    alternation: Union[dict[str, int], list[str]]
    alternation_cycle: str
    hybrid: dict[str, Any]


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
        resolved = apply_changes(base, {k: v for k, v in recipe.items() if k != "recipe"})
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


def apply_changes(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`merge` of a catalogue recipe and the changes given to it; an ``'lr'`` changed on a recipe of Muon beside AdamW
    (``'hybrid'``) changes the lrs of its ``'hybrid'`` part (its ``'lr'`` and its groups') in proportion, the
    recipe's ratio between the parts kept, except those the changes give themselves.

    Example:
        >>> base = {"optimizer": "Muon", "lr": 0.05, "hybrid": {"lr": 0.008, "groups": {"embedding": {"lr": 0.6}}}}
        >>> apply_changes(base, {"lr": 0.1})["hybrid"]
        {'lr': 0.016, 'groups': {'embedding': {'lr': 1.2}}}
    """
    merged = merge(base, changes)
    lr, old, hybrid, given = changes.get("lr"), base.get("lr"), merged.get("hybrid"), changes.get("hybrid")
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (lr, old))
    if not (numbers and old and isinstance(hybrid, dict) and isinstance(base.get("hybrid"), Mapping)):
        return merged
    given = given if isinstance(given, Mapping) else {}
    given_groups = given.get("groups")
    given_groups = given_groups if isinstance(given_groups, Mapping) else {}
    ratio = lr / old

    def scaled(value: Any) -> Any:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(f"{value * ratio:.12g}") if number else value

    if "lr" in hybrid and "lr" not in given:
        hybrid["lr"] = scaled(hybrid["lr"])
    groups = hybrid.get("groups")
    for kind, options in (groups.items() if isinstance(groups, dict) else ()):
        if isinstance(options, dict) and "lr" in options and "lr" not in (given_groups.get(kind) or {}):
            options["lr"] = scaled(options["lr"])
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
    optimizer_cls = optimizer_class(spec.get("optimizer", "AdamW"))
    kwargs = dict(spec.get("optimizer_kwargs") or {})
    misplaced = [key for key in ("lr", "weight_decay") if key in kwargs]
    if misplaced:  # param groups set both, so the optimizer's default would be silently ignored
        key = misplaced[0]
        raise RecipeError(
            f"{label.capitalize()} has {key!r} in its optimizer_kwargs, where every param group's own {key!r}"
            f" overrides it: write it beside 'optimizer' instead, {{{key!r}: {kwargs[key]!r}}}, and remove it from"
            " optimizer_kwargs."
        )
    if spec.get("warmup_fraction") is not None:  # a schedule-free optimizer's built-in warm-up, sized by the run
        kwargs["warmup_steps"] = builtin_warmup(optimizer_cls, spec["warmup_fraction"], kwargs, trainer, label)
    betas = kwargs.get("betas")
    if isinstance(betas, (list, tuple)):  # YAML has no tuples, and writes 0.0 as 0: torch wants a pair of floats
        kwargs["betas"] = tuple(float(b) if isinstance(b, int) and not isinstance(b, bool) else b for b in betas)
    lr = scaled_lr(spec, recipe, trainer, label)
    if spec.get("hybrid") is not None:
        optimizer = _build_hybrid(module, spec, optimizer_cls, kwargs, lr, label, role)
        scheduler = None
        if spec.get("scheduler") is not None:
            scheduler = scheduler_config(optimizer, _warmup_start(spec["scheduler"], spec["lr"], lr, label), trainer)
        return optimizer, scheduler
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
        no_decay=no_decay_rule(spec.get("no_decay", "default")),
        overrides=overrides,
        layer_decay=layer_decay,
        layer_rule=spec.get("layer_rule", "beit"),
    )
    # decay and no_decay stay two groups even at weight_decay 0: the layout does not depend on the value, so a run
    # resumed with weight decay added keeps its optimizer state
    if role is not None:  # several optimizers: their groups carry the role (lr-Adam/critic, lr-AdamW/encoder/decay)
        for group in groups:
            group["name"] = f"{role}/{group['name']}" if "name" in group else role
    try:
        optimizer = optimizer_cls(groups, lr=lr, **kwargs)
    except (TypeError, ValueError) as err:  # an argument it does not take; a value it refuses
        if issubclass(optimizer_cls, torch.optim.Muon) and "only supports 2D parameters" in str(err):
            refused = [n for n, p in module.named_parameters() if p.requires_grad and p.ndim != 2]
            shown = ", ".join(repr(n) for n in refused[:3]) + (f" and {len(refused) - 3} more" if len(refused) > 3
                                                               else "")
            raise RecipeError(
                f"{label.capitalize()} names Muon without 'hybrid': torch.optim.Muon takes only 2-D parameters and"
                f" refuses {shown}; the embeddings, the output head, norms and biases need another optimizer beside"
                " it. Add"
                " 'hybrid', the optimizer of everything but the hidden layers' 2-D weights (split by `muon_split`),"
                f" e.g. {{'optimizer': 'Muon', 'lr': {spec['lr']!r}, 'hybrid': {{'optimizer': 'AdamW', 'lr': 3e-4}}}}."
            ) from err
        fix = (f"Remove or rename the arguments {optimizer_cls.__name__} does not take." if isinstance(err, TypeError)
               else f"Change that value in {label}.")
        raise RecipeError(f"The recipe's optimizer_kwargs do not fit {optimizer_cls.__name__}: {err}. {fix}") from err
    scheduler = None
    if spec.get("scheduler") is not None:
        scheduler = scheduler_config(optimizer, _warmup_start(spec["scheduler"], spec["lr"], lr, label), trainer)
    return optimizer, scheduler


def _build_hybrid(module: nn.Module, spec: Mapping[str, Any], optimizer_cls: type, kwargs: dict[str, Any], lr: float,
                  label: str, role: Optional[str]) -> torch.optim.Optimizer:
    """Muon (the spec's own optimizer) over the hidden layers' matrices, ``hybrid``'s optimizer over the rest."""
    other = spec["hybrid"]
    if not isinstance(other, Mapping):
        raise RecipeError(f"{label.capitalize()}'s 'hybrid' must be a dict of the optimizer beside Muon, e.g."
                          f" {{'optimizer': 'AdamW', 'lr': 3e-4}}, got {other!r}.")
    check_keys(other, HYBRID_KEYS, f"{label}'s 'hybrid'")
    if "lr" not in other:
        raise RecipeError(f"{label.capitalize()}'s 'hybrid' has no 'lr': add the learning rate of the optimizer"
                          " beside Muon, e.g. {'hybrid': {'optimizer': 'AdamW', 'lr': 3e-4}}.")
    for key in ("overrides", "layer_decay"):
        if spec.get(key) is not None:
            fix = ("'hybrid': {'groups': {'embedding': {'lr': ...}}} for a group's options, or 'hybrid':"
                   " {'overrides': {'blocks.0.attn': 'adamw'}} to move parameters between the two")
            raise RecipeError(f"{label.capitalize()} has {key!r} beside 'hybrid', which splits the parameters by"
                              f" `muon_split` instead: remove {key!r}; use {fix}.")
    other_kwargs = dict(other.get("optimizer_kwargs") or {})
    misplaced = [key for key in ("lr", "weight_decay") if key in other_kwargs]
    if misplaced:
        raise RecipeError(f"{label.capitalize()}'s 'hybrid' has {misplaced[0]!r} in its optimizer_kwargs: write it"
                          f" beside 'optimizer' in 'hybrid', {{{misplaced[0]!r}: {other_kwargs[misplaced[0]]!r}}}.")
    betas = other_kwargs.get("betas")
    if isinstance(betas, (list, tuple)):
        other_kwargs["betas"] = tuple(float(b) if isinstance(b, int) and not isinstance(b, bool) else b for b in betas)
    ratio = lr / spec["lr"] if spec["lr"] else 1.0  # lr_scaling scales both parts alike
    groups = other.get("groups")
    if ratio != 1.0 and isinstance(groups, Mapping):
        groups = {k: ({**v, "lr": v["lr"] * ratio} if isinstance(v, Mapping) and "lr" in v else v)
                  for k, v in groups.items()}
    with lr_advice("recipe"):  # the lr warnings write their fixes as the recipe's keys
        optimizer = hybrid_optimizer(
            module,
            muon={"optimizer": optimizer_cls, "lr": lr, "weight_decay": spec.get("weight_decay", 0.0), **kwargs},
            adamw={"optimizer": optimizer_class(other.get("optimizer", "AdamW")), "lr": other["lr"] * ratio,
                   "weight_decay": other.get("weight_decay", 0.0), "groups": groups, **other_kwargs},
            no_decay=no_decay_rule(spec.get("no_decay", "default")),
            overrides=other.get("overrides"),
            head=other.get("head", "auto"),
            conv_view=bool(other.get("conv_view", False)),
        )
    if role is not None:
        for group in optimizer.param_groups:
            group["name"] = f"{role}/{group['name']}"
    return optimizer


def _warmup_start(scheduler: Any, unscaled: float, lr: float, label: str) -> Any:
    """The scheduler's spec with ``'warmup_start': 'unscaled'`` replaced by the multiplier that starts the warm-up at
    the lr before ``lr_scaling``: `unscaled` / `lr` (base batch / global batch; 1.0 without ``lr_scaling``), as Goyal
    et al. warm up from η to kη. A global batch at or under the base batch (k <= 1) has nothing to warm up to: the
    warm-up then runs at the scaled lr (multiplier 1.0)."""
    if not isinstance(scheduler, Mapping) or "warmup_start" not in scheduler:
        return scheduler
    start = scheduler["warmup_start"]
    if start == "zero":
        return scheduler
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
            f" 'lr_scaling'), 'zero' (step k at k / warm-up steps, the first at lr 0, as Hugging Face, BERT and MAE)"
            f" or a number in [0, 1] (the warm-up's multiplier of the peak lr at its first step), got {start!r}."
        )
    return scheduler


# -------------------------------------------------------------------------------------------------- lr scaling


# ----------------------------------------------------------------------------------------------- named parts


