"""`validate_optimizers`: check any `configure_optimizers` return value and describe it in one normalized form; and
`legacy_error`, the error for a Lightning 1.x module (its hooks) that Lightning 2 would refuse."""

from __future__ import annotations

import dataclasses
import difflib
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

from lightning_optim_recipes import hooks
from lightning_optim_recipes._checks import check_keys, count
from lightning_optim_recipes.errors import RecipeError, caller_line, warn
from lightning_optim_recipes.muon_checks import muon_beside_others, muon_refusal, warn_muon_off_hidden
from lightning_optim_recipes.param_checks import check_optimizer_groups, check_param_groups, watch_untrained
from lightning_optim_recipes.schedulers import check_frequency, check_interval
from lightning_optim_recipes.sharded_muon import warn_torch_muon_on_shards

__all__ = ["OptimizerSetup", "SchedulerSpec", "call_explaining_torch_errors", "legacy_error", "validate_optimizers"]

OPTIMIZER_DICT_KEYS = ("optimizer", "lr_scheduler", "monitor", "frequency")
SCHEDULER_DICT_KEYS = ("scheduler", "name", "interval", "frequency", "reduce_on_plateau", "monitor", "strict")
_MANUAL_IGNORED_KEYS = ("monitor", "strict", "reduce_on_plateau")
#: Keys of a scheduler dict that are not keys of an optimizer dict (a misplaced one is named with its fix).
_SCHEDULER_ONLY_KEYS = ("interval", "name", "strict", "reduce_on_plateau")

_FORMS = (
    " * `Optimizer`\n"
    " * [`Optimizer`, ...]\n"
    " * ([`Optimizer`, ...], [`LRScheduler` or scheduler dict, ...])\n"
    ' * {"optimizer": `Optimizer`, "lr_scheduler": `LRScheduler` or scheduler dict, "monitor": "metric"}\n'
    ' * [{"optimizer": ..., "lr_scheduler": ..., "frequency": n}, ...]\n'
    " * None (train without an optimizer)"
)


@dataclasses.dataclass(frozen=True)
class SchedulerSpec:
    """One scheduler and its declared cadence, bound to the optimizer at `optimizer_index`."""

    scheduler: Any
    optimizer_index: int
    interval: str = "epoch"
    frequency: int = 1
    name: Optional[str] = None
    monitor: Optional[str] = None
    strict: bool = True
    reduce_on_plateau: bool = False
    #: Whether ``interval`` or ``frequency`` was written in a scheduler dict (under manual optimization only what was
    #: written is taken as intent; Lightning's defaults are not).
    declared: bool = dataclasses.field(default=False, compare=False)

    def lightning_dict(self, manual: bool = False) -> dict[str, Any]:
        """The scheduler dict Lightning 2.x accepts (without the keys it ignores under manual optimization)."""
        config: dict[str, Any] = {"scheduler": self.scheduler, "interval": self.interval, "frequency": self.frequency}
        if self.name is not None:
            config["name"] = self.name
        if not manual and self.reduce_on_plateau:
            config.update(monitor=self.monitor, strict=self.strict, reduce_on_plateau=True)
        return config


@dataclasses.dataclass(frozen=True)
class OptimizerSetup:
    """A `configure_optimizers` return value, normalized: what `validate_optimizers` returns.

    Attributes:
        optimizers: the optimizers, in the order returned.
        schedulers: one `SchedulerSpec` per scheduler, each bound to an optimizer index.
        frequencies: the optimizers' 1.x ``'frequency'`` values (alternation), or None when none was given.

    Example:
        >>> import torch
        >>> opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2, 2))], lr=1e-3)
        >>> sched = torch.optim.lr_scheduler.StepLR(opt, 10)
        >>> setup = validate_optimizers({"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}})
        >>> setup.schedulers[0].interval, setup.schedulers[0].optimizer_index
        ('step', 0)
    """

    optimizers: tuple[Any, ...] = ()
    schedulers: tuple[SchedulerSpec, ...] = ()
    frequencies: Optional[tuple[int, ...]] = None

    def schedulers_of(self, optimizer_index: int) -> tuple[SchedulerSpec, ...]:
        """The schedulers bound to the optimizer at `optimizer_index`."""
        return tuple(s for s in self.schedulers if s.optimizer_index == optimizer_index)

    def lightning_value(self, manual: bool = False) -> Any:
        """The same configuration in a form Lightning 2.x accepts (``'frequency'`` of optimizers dropped)."""
        if not self.optimizers:
            return None
        if not self.schedulers:
            return self.optimizers[0] if len(self.optimizers) == 1 else list(self.optimizers)
        return list(self.optimizers), [s.lightning_dict(manual) for s in self.schedulers]


def validate_optimizers(value: Any, module: Optional[torch.nn.Module] = None) -> OptimizerSetup:
    """Check a `configure_optimizers` return value, in any form Lightning 1.x or 2.x documents, before training.

    Raises `RecipeError` naming the mistake and the fix: an unknown key (with the closest valid one), an interval
    other than 'step'/'epoch', a scheduler bound to an optimizer that was not returned, `ReduceLROnPlateau` without
    a monitor, a frequency that is not a positive int or given to only some optimizers, param-group mistakes, and
    several optimizers (or frequencies) on a `module` that uses automatic optimization (Muon beside AdamW: one
    `HybridOptimizer`). Warns (`RecipeWarning`) about parameters in several optimizers, a Muon built by hand over an
    embedding or the output head (`muon_split`'s rule), and, when training shows them, about trainable parameters in
    no optimizer (once one gets a gradient) and timm's ``'lr_scale'`` that nothing applies (at the first step that
    shows it). Whether the schedules fit the run is checked where the run is known
    (`lightning_optim_recipes.fit_checks`).

    Args:
        value: what ``configure_optimizers`` returns.
        module: the LightningModule, to check parameter coverage and its optimization mode.

    Example:
        >>> import torch
        >>> opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2, 2))], lr=1e-3)
        >>> sched = torch.optim.lr_scheduler.StepLR(opt, 10)
        >>> validate_optimizers({"optimizer": opt, "lr_schedular": sched})
        Traceback (most recent call last):
        ...
        lightning_optim_recipes.errors.RecipeError: Unknown key 'lr_schedular' in the optimizer dict returned by `configure_optimizers`: did you mean 'lr_scheduler'? It holds a StepLR, but Lightning ignores unknown keys (1.x and 2.x alike, with only a warning), so that scheduler would never step. Rename 'lr_schedular' to 'lr_scheduler' to use it, or remove it to keep the old behaviour. Valid keys: 'optimizer', 'lr_scheduler', 'monitor', 'frequency'.
    """
    optimizers, entries, frequencies = _parse(value)
    at = (hooks.user_hook(type(module), "configure_optimizers") if module is not None else None) or caller_line()
    for index, optimizer in enumerate(optimizers):
        if isinstance(optimizer, torch.optim.Optimizer):
            check_optimizer_groups(optimizer, at)
    # under manual optimization the module steps a ReduceLROnPlateau itself, with the metric it chooses
    needs_monitor = module is None or getattr(module, "automatic_optimization", True) or getattr(
        module, "_alternates_optimizers", False)
    schedulers = tuple(
        _scheduler_spec(entry, optimizers, bound, monitor, needs_monitor) for entry, bound, monitor in entries
    )
    setup = OptimizerSetup(tuple(optimizers), schedulers, frequencies)
    _check_disjoint(setup, module, at)
    warn_torch_muon_on_shards(setup.optimizers)
    if module is not None:
        warn_muon_off_hidden(setup.optimizers, module, at)
        _check_mode(setup, module)
    return setup


# --------------------------------------------------------------------------------------------------- parsing


def _is_optimizer(obj: Any) -> bool:
    if isinstance(obj, torch.optim.Optimizer):
        return True
    return hasattr(obj, "param_groups") and callable(getattr(obj, "step", None)) and hasattr(obj, "zero_grad")


def _is_scheduler(obj: Any) -> bool:
    return not isinstance(obj, Mapping) and callable(getattr(obj, "step", None)) and hasattr(obj, "state_dict")


def _parse(value: Any) -> tuple[list[Any], list[tuple[Any, Optional[int], Optional[str]]], Optional[tuple[int, ...]]]:
    """Optimizers, scheduler entries as (entry, optimizer index it must be bound to, top-level monitor), frequencies."""
    if value is None:
        return [], [], None
    if _is_optimizer(value):
        return [value], [], None
    if isinstance(value, Mapping):
        optimizer, entries, frequency = _parse_optimizer_dict(value, 0, single=True)
        if frequency is not None:
            return [optimizer], entries, (frequency,)
        return [optimizer], entries, None
    if isinstance(value, (list, tuple)):
        if not value:
            raise RecipeError(
                "`configure_optimizers` returned an empty sequence. Return an optimizer, or None to train without one."
            )
        if _is_two_lists(value):
            optimizers, schedulers = value
            _check_optimizer_items(optimizers, "the first list of `([optimizers], [schedulers])`")
            if isinstance(schedulers, (list, tuple)):
                return list(optimizers), [(s, None, None) for s in schedulers], None
            return list(optimizers), [(schedulers, None, None)], None
        if all(isinstance(item, Mapping) for item in value):
            return _parse_dicts(value)
        if any(_is_optimizer(item) for item in value) or all(isinstance(item, (list, tuple)) for item in value):
            _check_optimizer_items(value, "the list of optimizers")
            return list(value), [], None
    raise RecipeError(
        f"`configure_optimizers` returned a {type(value).__name__} that is not a known configuration:"
        f" {_short(value)}. Return one of:\n{_FORMS}"
    )


def _is_two_lists(value: Sequence[Any]) -> bool:
    if len(value) != 2 or not isinstance(value[0], (list, tuple)) or not value[0]:
        return False
    first, second = value
    return all(_is_optimizer(o) for o in first) or (
        any(_is_optimizer(o) for o in first)
        and (isinstance(second, (list, tuple, Mapping)) or _is_scheduler(second))
    )


def _check_optimizer_items(items: Sequence[Any], where: str) -> None:
    for index, item in enumerate(items):
        if not _is_optimizer(item):
            hint = (
                " Build the scheduler list separately: ([optimizers], [schedulers])."
                if _is_scheduler(item)
                else " Remove it: that list holds only optimizers."
            )
            raise RecipeError(
                f"Item {index} of {where} is a {type(item).__name__}, not an optimizer: {_short(item)}.{hint}"
            )


def _parse_dicts(value: Sequence[Mapping[str, Any]]) -> tuple[list[Any], list[Any], Optional[tuple[int, ...]]]:
    optimizers, entries, frequencies = [], [], []
    for index, opt_dict in enumerate(value):
        optimizer, opt_entries, frequency = _parse_optimizer_dict(opt_dict, index, single=False)
        optimizers.append(optimizer)
        entries.extend(opt_entries)
        frequencies.append(frequency)
    given = [f is not None for f in frequencies]
    if any(given) and not all(given):
        missing = [i for i, g in enumerate(given) if not g]
        raise RecipeError(
            f"Optimizer dicts {missing} have no 'frequency' while others do: alternation needs a 'frequency' for"
            " every optimizer (e.g. 5 for the critic, 1 for the generator), or none at all."
        )
    return optimizers, entries, tuple(frequencies) if all(given) else None


def _parse_optimizer_dict(opt_dict: Mapping[str, Any], index: int, single: bool) -> tuple[Any, list[Any], Any]:
    where = "the optimizer dict" if single else f"optimizer dict {index}"
    for key, value in opt_dict.items():
        if key not in OPTIMIZER_DICT_KEYS and "lr_scheduler" not in opt_dict and _holds_scheduler(value):
            close = difflib.get_close_matches(str(key), OPTIMIZER_DICT_KEYS, n=1, cutoff=0.6)
            held = value.get("scheduler") if isinstance(value, Mapping) else value
            raise RecipeError(
                f"Unknown key {key!r} in {where} returned by `configure_optimizers`:"
                f"{' did you mean ' + repr(close[0]) + '?' if close else ''} It holds a {type(held).__name__}, but"
                " Lightning ignores unknown keys (1.x and 2.x alike, with only a warning), so that scheduler would"
                f" never step. Rename {key!r} to 'lr_scheduler' to use it, or remove it to keep the old behaviour."
                f" Valid keys: {', '.join(repr(k) for k in OPTIMIZER_DICT_KEYS)}."
            )
    misplaced = [key for key in _SCHEDULER_ONLY_KEYS if key in opt_dict and "lr_scheduler" in opt_dict]
    if misplaced:
        key = misplaced[0]
        raise RecipeError(
            f"{where[0].upper()}{where[1:]} returned by `configure_optimizers` has {key!r} at its top level, where"
            f" Lightning does not read it: {key!r} belongs to the scheduler. Move it into the 'lr_scheduler' dict:"
            f" {{'optimizer': optimizer, 'lr_scheduler': {{'scheduler': scheduler, {key!r}: {opt_dict[key]!r}}}}}."
        )
    check_keys(opt_dict, OPTIMIZER_DICT_KEYS, f"{where} returned by `configure_optimizers`")
    if "optimizer" not in opt_dict:
        raise RecipeError(
            f"{where[0].upper()}{where[1:]} has no 'optimizer' key (its keys: {_keys(opt_dict)}):"
            " write {'optimizer': optimizer, 'lr_scheduler': scheduler}."
        )
    optimizer = opt_dict["optimizer"]
    if not _is_optimizer(optimizer):
        raise RecipeError(f"'optimizer' of {where} must be a torch optimizer, got {type(optimizer).__name__}.")
    frequency = opt_dict.get("frequency")
    if frequency is not None:  # 'frequency': None means no frequency, as in Lightning 1.x
        check_frequency(frequency, f"'frequency' of {where}")
    monitor = opt_dict.get("monitor")
    entries = []
    if "lr_scheduler" in opt_dict:
        scheduler = opt_dict["lr_scheduler"]
        if isinstance(scheduler, (list, tuple)):
            raise RecipeError(
                f"'lr_scheduler' of {where} holds a {type(scheduler).__name__}: it takes one scheduler or scheduler"
                " dict. For several, return ([optimizers], [schedulers])."
            )
        entries.append((scheduler, index, monitor))
    elif monitor is not None:
        raise RecipeError(f"{where[0].upper()}{where[1:]} has a 'monitor' but no 'lr_scheduler' to use it: remove it.")
    return optimizer, entries, frequency


def _holds_scheduler(value: Any) -> bool:
    if isinstance(value, Mapping):
        return _is_scheduler(value.get("scheduler"))
    return _is_scheduler(value) and not _is_optimizer(value)


def _scheduler_spec(
    entry: Any, optimizers: Sequence[Any], bound: Optional[int], monitor: Optional[str], needs_monitor: bool = True
) -> SchedulerSpec:
    if isinstance(entry, Mapping):
        check_keys(entry, SCHEDULER_DICT_KEYS, "a scheduler dict")
        if "scheduler" not in entry:
            raise RecipeError(
                f"A scheduler dict has no 'scheduler' key (its keys: {_keys(entry)}):"
                " write {'scheduler': scheduler, 'interval': 'step'}."
            )
        config = dict(entry)
        scheduler = config.pop("scheduler")
        check_interval(config.get("interval", "epoch"), f"'interval' of the {type(scheduler).__name__} dict")
        check_frequency(config.get("frequency", 1), f"'frequency' of the {type(scheduler).__name__} dict")
        if "name" in config and config["name"] is not None and not isinstance(config["name"], str):
            raise RecipeError(f"'name' of the {type(scheduler).__name__} dict must be a string, got {config['name']!r}.")
        for key in ("strict", "reduce_on_plateau"):
            if key in config and not isinstance(config[key], bool):
                raise RecipeError(
                    f"'{key}' of the {type(scheduler).__name__} dict must be True or False, got {config[key]!r}."
                )
    else:
        scheduler, config = entry, {}
    if not _is_scheduler(scheduler):
        raise RecipeError(
            f"Expected an lr scheduler (e.g. `StepLR(optimizer, 10)`) or a scheduler dict, got"
            f" {type(scheduler).__name__}: {_short(scheduler)}."
        )
    index = _bound_index(scheduler, optimizers, bound)
    plateau = bool(config.get("reduce_on_plateau", isinstance(scheduler, ReduceLROnPlateau)))
    if not isinstance(entry, Mapping):
        config["monitor"] = monitor
    if config.get("monitor") is not None and not isinstance(config["monitor"], str):
        raise RecipeError(
            f"'monitor' of the {type(scheduler).__name__} must be the name of a metric you log, e.g. 'val_loss',"
            f" got {_short(config['monitor'])}."
        )
    if plateau and not config.get("monitor") and needs_monitor and monitor is not None:
        raise RecipeError(
            f"The ReduceLROnPlateau's scheduler dict has no 'monitor', and Lightning does not read the {monitor!r}"
            " beside it at the top of the optimizer dict when 'lr_scheduler' is a dict: move it into the"
            f" 'lr_scheduler' dict, {{'scheduler': scheduler, 'monitor': {monitor!r}}}."
        )
    if plateau and not config.get("monitor") and needs_monitor:
        raise RecipeError(
            "A `ReduceLROnPlateau` scheduler needs a monitor: add the logged metric it watches, e.g."
            ' {"scheduler": scheduler, "monitor": "val_loss"} (or "monitor" beside "lr_scheduler" for a bare one).'
        )
    return SchedulerSpec(
        scheduler=scheduler,
        optimizer_index=index,
        interval=config.get("interval", "epoch"),
        frequency=config.get("frequency", 1),
        name=config.get("name"),
        monitor=config.get("monitor") if plateau else None,
        strict=bool(config.get("strict", True)),
        reduce_on_plateau=plateau,
        declared=isinstance(entry, Mapping) and ("interval" in entry or "frequency" in entry),
    )


def _bound_index(scheduler: Any, optimizers: Sequence[Any], bound: Optional[int]) -> int:
    optimizer = getattr(scheduler, "optimizer", None)
    if optimizer is None:
        raise RecipeError(
            f"Scheduler {type(scheduler).__name__} has no `.optimizer`: build it on one of the returned optimizers."
        )
    inner = [getattr(o, "_optimizer", o) for o in optimizers]
    matches = [i for i, o in enumerate(inner) if o is optimizer or optimizers[i] is optimizer]
    if not matches:
        raise RecipeError(
            f"Scheduler {type(scheduler).__name__} is bound to a {type(optimizer).__name__} that"
            " `configure_optimizers` does not return. Build the scheduler on one of the returned optimizers"
            " (a scheduler made before re-creating the optimizer keeps the old one)."
        )
    if bound is not None and bound not in matches:
        raise RecipeError(
            f"The {type(scheduler).__name__} in optimizer dict {bound} is bound to optimizer {matches[0]}:"
            f" move it to optimizer dict {matches[0]}, or build it on that dict's optimizer."
        )
    return matches[0]


# ---------------------------------------------------------------------------------------------------- checks


def _check_disjoint(setup: OptimizerSetup, module: Optional[torch.nn.Module], at: Any) -> None:
    """Warn about parameters that several optimizers hold (Lightning allows it; each optimizer steps them in its turn)
    and, once one of them gets a gradient, about trainable parameters that no optimizer holds."""
    names = {id(p): n for n, p in module.named_parameters()} if module is not None else {}
    owner: dict[int, int] = {}
    shared: dict[int, list[int]] = {}
    for index, optimizer in enumerate(setup.optimizers):
        for group in optimizer.param_groups:
            for param in group["params"]:
                previous = owner.setdefault(id(param), index)
                if previous != index:
                    holders = shared.setdefault(id(param), [previous])
                    if index not in holders:
                        holders.append(index)
    if shared:
        described = [
            f"{names[key]!r}" if key in names else "a parameter" for key in list(shared)[:5]
        ] + ([f"and {len(shared) - 5} more"] if len(shared) > 5 else [])
        holders = sorted({i for indices in shared.values() for i in indices})
        warn(
            f"{count(len(shared), 'parameter')} {'is' if len(shared) == 1 else 'are'} in several optimizers"
            f" ({', '.join(described)}: optimizers {', '.join(str(i) for i in holders)}): each of them steps"
            f" {'it' if len(shared) == 1 else 'those parameters'}. That is fine for stage-wise"
            " training or a deliberately shared layer; otherwise give each optimizer its own parameters, e.g."
            " `self.generator.parameters()` and `self.discriminator.parameters()`. Silence this with"
            " `warnings.filterwarnings('ignore', '.*in several optimizers')`."
        )
    if module is not None and setup.optimizers:
        watch_untrained(module, setup.optimizers, at)


def _check_mode(setup: OptimizerSetup, module: torch.nn.Module) -> None:
    alternating = getattr(module, "_alternates_optimizers", False)
    automatic = getattr(module, "automatic_optimization", True)
    if alternating:
        return
    if setup.frequencies is not None and len(setup.optimizers) == 1 and setup.schedulers:
        raise RecipeError(
            f"The optimizer dict's 'frequency': {setup.frequencies[0]!r} is Lightning 1.x's optimizer frequency"
            " (alternating several optimizers), which Lightning 2.0 removed; with one optimizer it alternates with"
            " nothing. If it is the scheduler's frequency, move it into the 'lr_scheduler' dict: {'optimizer':"
            f" optimizer, 'lr_scheduler': {{'scheduler': scheduler, 'frequency': {setup.frequencies[0]!r}}}}};"
            " otherwise remove it."
        )
    if setup.frequencies is not None:
        raise RecipeError(
            "Optimizer 'frequency' (alternating optimizers, e.g. WGAN n_critic) was removed in Lightning 2.0, which"
            " ignores it. Add `AlternatingOptimizersMixin` to your module's bases:"
            " `class MyGAN(AlternatingOptimizersMixin, LightningModule)`."
        )
    beside = muon_beside_others(setup.optimizers) if automatic else None
    if beside is not None:
        raise beside
    if automatic and len(setup.optimizers) > 1:
        raise RecipeError(
            f"`configure_optimizers` returned {len(setup.optimizers)} optimizers, but Lightning 2.x trains several"
            " optimizers only under manual optimization. Add `AlternatingOptimizersMixin` to your module's bases"
            " to alternate them as Lightning 1.x did, or set `self.automatic_optimization = False` and step them"
            " yourself in `training_step`."
        )


# ------------------------------------------------------------------------------------------------- messages


def _keys(mapping: Mapping[str, Any]) -> str:
    return ", ".join(repr(k) for k in mapping) or "none"


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ------------------------------------------------------------------------------------- torch's own errors


def call_explaining_torch_errors(call: Callable[[], Any], module: Optional[torch.nn.Module] = None) -> Any:
    """Call `call` (a ``configure_optimizers``); if a torch optimizer's constructor fails on its param groups (the
    bare ``KeyError: 'params'`` of ``{'encoder_params': ...}``, or ``ValueError: Muon only supports 2D parameters``
    of ``torch.optim.Muon(self.parameters())``), raise the `RecipeError` that explains why, from torch's error."""
    try:
        return call()
    except (KeyError, ValueError, TypeError) as err:
        if isinstance(err, RecipeError):
            raise
        refused = muon_refusal(err, module)
        if refused is not None:
            raise refused from err
        groups = _param_groups_in_traceback(err.__traceback__)
        if groups is None:
            raise
        check_param_groups(groups, module)  # raises the precise RecipeError for the mistake torch tripped on
        raise


def _param_groups_in_traceback(tb: Optional[types.TracebackType]) -> Optional[list[Any]]:
    """The param groups an `Optimizer.__init__` in the traceback was building, if any."""
    found = None
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "__init__" and isinstance(frame.f_locals.get("self"), torch.optim.Optimizer):
            groups = frame.f_locals.get("param_groups")
            if isinstance(groups, list):
                found = groups
        tb = tb.tb_next
    return found


def legacy_error(module: Any) -> Optional[RecipeError]:
    """The error for a Lightning 1.x module without `AlternatingOptimizersMixin` (its `legacy_hooks`), which Lightning
    2 refuses or calls with the wrong arguments; None for any other module."""
    if getattr(module, "_alternates_optimizers", False):
        return None
    found = hooks.legacy_hooks(type(module), getattr(module, "automatic_optimization", True))
    if not found:
        return None
    cls = type(module).__name__
    shown = ", ".join(f"`{name}`" for name in found)
    one = len(found) == 1
    return RecipeError(
        f"{cls} is a Lightning 1.x module: {shown} {'takes' if one else 'take'} 1.x's arguments (`optimizer_idx`) or"
        f" {'is' if one else 'are'} gone in Lightning 2.0, which calls {'it' if one else 'them'} otherwise or refuses"
        f" {'it' if one else 'them'}. Add `AlternatingOptimizersMixin` to its bases to run it unchanged: `class"
        f" {cls}(AlternatingOptimizersMixin, {type(module).__mro__[1].__name__})` (from lightning_optim_recipes), or"
        " port each hook to its 2.x form."
    )
