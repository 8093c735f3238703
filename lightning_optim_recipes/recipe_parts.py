"""The named parts of a recipe, for the engine (`lightning_optim_recipes.recipe`): the optimizer and scheduler classes
by name or dotted path (checked to be what their key expects before anything is called), the no-decay rule, the lr
scaled by the global batch, and `say`, the engine's messages to the user."""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from lightning_optim_recipes import schedule_free, units
from lightning_optim_recipes._checks import check_keys, count
from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.no_decay import DEFAULT_NO_DECAY, POSITION_TOKEN_NAMES, NoDecayRule
from lightning_optim_recipes.schedulers import (
    cosine,
    exponential,
    multistep,
    scheduled,
    warmup_cosine,
    warmup_linear,
    warmup_multistep,
)
from lightning_optim_recipes.wsd import cooldown, warmup_stable_decay

__all__ = ["CADENCE_KEYS", "SCHEDULER_FACTORIES", "builtin_warmup", "global_batch_size", "no_decay_rule",
           "optimizer_class", "say", "scaled_lr", "scheduler_config"]


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
    "wsd": warmup_stable_decay,
    "cooldown": cooldown,
}


log = logging.getLogger("lightning_optim_recipes")


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


def scaled_lr(spec: Mapping[str, Any], recipe: Mapping[str, Any], trainer: Any, label: str) -> float:
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
    return f"{batch // (world * accumulate)} per device x {count(world, 'device')} x {accumulate} accumulated"


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


def optimizer_class(spec: Any) -> type:
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
    if spec in schedule_free.OPTIMIZERS:
        return _schedule_free_class(spec)
    choices = sorted(
        name
        for name, obj in vars(torch.optim).items()
        if inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer) and obj is not torch.optim.Optimizer
    )
    if spec not in choices:
        known = choices + list(schedule_free.OPTIMIZERS)
        close = [c for c in known if c.lower() == spec.lower()]
        close = close or difflib.get_close_matches(spec, known, n=1, cutoff=0.5)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        raise RecipeError(f"Unknown optimizer {spec!r}. {hint}Expected one of {choices}, a schedule-free optimizer of"
                          f" the `schedulefree` package ({', '.join(schedule_free.OPTIMIZERS)}) or a dotted path.")
    return getattr(torch.optim, spec)


def _schedule_free_class(name: str) -> type:
    """``schedulefree.<name>``, or a `RecipeError` that names the extra to install."""
    try:
        module = importlib.import_module("schedulefree")
    except ImportError as err:
        raise RecipeError(
            f"The recipe's optimizer {name!r} is a schedule-free optimizer of the `schedulefree` package, which is not"
            f" installed: {schedule_free.EXTRA} (or `pip install schedulefree`)."
        ) from err
    return getattr(module, name)  # type: ignore[no-any-return]


def builtin_warmup(optimizer_cls: type, fraction: Any, kwargs: Mapping[str, Any], trainer: Any, label: str) -> int:
    """The ``warmup_steps`` of an optimizer with a built-in warm-up (schedule-free) for the recipe's
    ``'warmup_fraction'``: that share of the run's optimizer steps (``trainer.estimated_stepping_batches``)."""
    name = optimizer_cls.__name__
    if "warmup_steps" not in inspect.signature(optimizer_cls).parameters:
        raise RecipeError(
            f"{label.capitalize()} has 'warmup_fraction', the share of the run an optimizer's built-in warm-up spans,"
            f" but {name} has no `warmup_steps`: use a scheduler's warm-up instead, e.g. 'scheduler': {{'type':"
            " 'warmup_cosine', 'warmup_fraction': 0.05}."
        )
    if "warmup_steps" in kwargs:
        raise RecipeError(f"{label.capitalize()} gives {name}'s warm-up twice, as 'warmup_fraction' and as"
                          " optimizer_kwargs' 'warmup_steps': remove one of them.")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction < 1:
        raise RecipeError(f"{label.capitalize()}'s 'warmup_fraction' must be in [0, 1) (a share of the run), got"
                          f" {fraction!r}.")
    total = getattr(trainer, "estimated_stepping_batches", None) if trainer is not None else None
    if not isinstance(total, (int, float)) or isinstance(total, bool) or total == float("inf") or total < 1:
        raise RecipeError(
            f"{label.capitalize()}'s 'warmup_fraction' is a share of the run, whose length the Trainer gives"
            f" (`estimated_stepping_batches`, here {total!r}): build it inside `configure_optimizers` of a run with"
            " `max_epochs` or `max_steps`, or give the warm-up in steps, optimizer_kwargs {'warmup_steps': 500}."
        )
    steps = int(round(fraction * int(total)))
    say(f"{label}: {name}'s built-in warm-up over {steps} of the run's {int(total)} optimizer steps"
        f" (warmup_fraction {fraction:g})")
    return steps


def _kind(obj: Any) -> str:
    if isinstance(obj, type):
        return f"class ({obj.__module__}.{obj.__qualname__})"
    return type(obj).__name__


_RULE_FLAGS = ("bias", "one_dim", "use_model_hook")


def no_decay_rule(spec: Any) -> Optional[NoDecayRule]:
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


def scheduler_config(optimizer: torch.optim.Optimizer, spec: Any, trainer: Any) -> Any:
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise RecipeError(
            "The recipe's 'scheduler' must be a dict with a 'type', e.g. {'type': 'multistep', 'milestones': [30]},"
            f" got {spec!r}."
        )
    kind, options = spec["type"], {k: v for k, v in spec.items() if k != "type"}
    if kind in SCHEDULER_FACTORIES:
        factory = SCHEDULER_FACTORIES[kind]
        parameters = tuple(inspect.signature(factory).parameters)[1:]
        if "trainer" in parameters:  # the run's length, and lengths in units
            options.setdefault("trainer", trainer)
        check_keys(options, parameters, f"the {kind!r} scheduler")
        config = factory(optimizer, **options)
        scheduler = config["scheduler"]
        if kind == "warmup_multistep" and "of_epochs" in spec:
            say(f"{kind}: milestones {list(spec['milestones'])} of {spec['of_epochs']} epochs scaled to this run:"
                f" optimizer steps {scheduler.milestone_steps}")
        resolved = units.describe(scheduler, config.get("interval", "step"))
        if resolved:
            say(f"{kind}: {resolved}")
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
        extra = f" ({schedule_free.EXTRA})" if module_name.partition(".")[0] == "schedulefree" else ""
        raise RecipeError(
            f"Cannot import the {what} {path!r}: {err}. Fix the dotted path (`package.module.Name`) or install the"
            f" package that provides it{extra}."
        ) from err

