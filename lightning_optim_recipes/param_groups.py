"""Correct param groups: `param_groups` builds them, `check_param_groups` checks hand-written ones."""

from __future__ import annotations

import math
import warnings
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any, Optional, Union

import torch
from torch import nn

from lightning_optim_recipes.errors import RecipeError, RecipeWarning
from lightning_optim_recipes.no_decay import DEFAULT_NO_DECAY, NoDecayRule, model_no_weight_decay

__all__ = ["check_param_groups", "param_groups"]

ParamGroup = dict[str, Any]


def param_groups(
    module: nn.Module,
    *,
    weight_decay: float,
    lr: Optional[float] = None,
    no_decay: Optional[NoDecayRule] = DEFAULT_NO_DECAY,
    overrides: Optional[Mapping[str, Mapping[str, Any]]] = None,
    include_frozen: bool = False,
) -> list[ParamGroup]:
    """Split `module`'s parameters into param groups that `torch.optim` accepts, with weight decay where it belongs.

    Every trainable parameter lands in exactly one group (tied parameters once, under their first name, with no
    decay if any of their names is exempt); frozen ones are left out unless `include_frozen`; no group is empty;
    groups come in module registration order. Each
    group has ``'params'``, ``'weight_decay'`` (0.0 for no-decay parameters), a ``'name'`` that Lightning's
    learning-rate monitors use, and ``'lr'`` when given.

    Args:
        module: the model.
        weight_decay: the decay of decayed parameters.
        lr: a learning rate for every group (default: the optimizer's).
        no_decay: which parameters get no decay (`DEFAULT_NO_DECAY`); ``None`` decays every parameter.
        overrides: module-name prefixes or glob patterns (``"encoder"``, ``"decoder.*"``) mapped to group options
            (``lr``, ``weight_decay``, ``betas``, ...). A glob's ``*`` stays within one dotted name
            (``"blocks.*.attn"``). The most specific pattern (the longest module path it matches) wins; a tie, or a
            pattern that matches no parameter, is a `RecipeError`.
        include_frozen: also group parameters with ``requires_grad=False``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2))
        >>> groups = param_groups(model, weight_decay=0.05, overrides={"2": {"lr": 1e-4}})
        >>> [(g["name"], len(g["params"]), g["weight_decay"], g.get("lr")) for g in groups]
        [('decay', 1, 0.05, None), ('no_decay', 3, 0.0, None), ('2', 1, 0.05, 0.0001), ('2/no_decay', 1, 0.0, 0.0001)]
        >>> optimizer = torch.optim.AdamW(groups, lr=1e-3)
    """
    if not isinstance(module, nn.Module):
        raise RecipeError(f"`param_groups` takes an `nn.Module`, got {type(module).__name__}.")
    _check_number("weight_decay", weight_decay)
    if lr is not None:
        _check_number("lr", lr)
    if no_decay is not None and not isinstance(no_decay, NoDecayRule):
        raise RecipeError(
            f"`no_decay` must be a `NoDecayRule` (e.g. `DEFAULT_NO_DECAY.extend(names=...)`) or None, got {no_decay!r}."
        )
    overrides = _check_overrides(overrides)
    model_names = model_no_weight_decay(module) if no_decay is not None and no_decay.use_model_hook else frozenset()

    # every (name, owning module) of each parameter: a tied parameter is exempt if any of its names is
    aliases: dict[int, list[tuple[str, nn.Module]]] = {}
    for module_name, owner in module.named_modules(remove_duplicate=False):
        for leaf, param in owner.named_parameters(recurse=False):
            aliases.setdefault(id(param), []).append((f"{module_name}.{leaf}" if module_name else leaf, owner))

    groups: dict[tuple[Optional[str], bool], ParamGroup] = {}
    used_patterns: set[str] = set()
    seen: set[int] = set()
    for module_name, owner in module.named_modules():
        path = module_name.split(".") if module_name else []
        for leaf, param in owner.named_parameters(recurse=False):
            if id(param) in seen or not (param.requires_grad or include_frozen):
                continue
            seen.add(id(param))
            pattern = _most_specific(overrides, path + [leaf]) if overrides else None
            decayed = no_decay is None or all(
                no_decay.reason(alias, param, alias_owner, model_names) is None
                for alias, alias_owner in aliases[id(param)]
            )
            group = groups.get((pattern, decayed))
            if group is None:
                group = groups[(pattern, decayed)] = _new_group(pattern, decayed, weight_decay, lr, overrides)
            group["params"].append(param)
            if pattern is not None:
                used_patterns.add(pattern)

    unused = [p for p in overrides if p not in used_patterns]
    if unused:
        raise RecipeError(
            f"`overrides` pattern {unused[0]!r} matches no trainable parameter of {type(module).__name__}."
            f" Patterns match module paths such as {_example_paths(module)}; fix or remove it."
        )
    return list(groups.values())


def _new_group(
    pattern: Optional[str], decayed: bool, weight_decay: float, lr: Optional[float], overrides: Mapping[str, Any]
) -> ParamGroup:
    group: ParamGroup = {"params": []}
    if lr is not None:
        group["lr"] = lr
    if pattern is not None:
        group.update(overrides[pattern])
    group.setdefault("weight_decay", weight_decay)
    if not decayed:
        group["weight_decay"] = 0.0
    base = "decay" if pattern is None else pattern
    group["name"] = base if decayed else ("no_decay" if pattern is None else f"{pattern}/no_decay")
    return group


def _most_specific(overrides: Mapping[str, Any], parts: list[str]) -> Optional[str]:
    """The pattern matching the longest prefix of the dotted path `parts`; a tie at that length is an error."""
    for depth in range(len(parts), 0, -1):
        prefix = ".".join(parts[:depth])
        hits = [p for p in overrides if p == prefix or _glob_matches(parts[:depth], p)]
        if len(hits) > 1:
            raise RecipeError(
                f"`overrides` patterns {hits[0]!r} and {hits[1]!r} both match {prefix!r} equally specifically."
                " Make one of them more specific or merge them."
            )
        if hits:
            return hits[0]
    return None


def _glob_matches(parts: list[str], pattern: str) -> bool:
    """Whether the glob `pattern` matches the dotted path `parts`, segment by segment (a `*` stays within one name)."""
    segments = pattern.split(".")
    return len(segments) == len(parts) and all(fnmatchcase(part, seg) for part, seg in zip(parts, segments))


def _check_overrides(overrides: Optional[Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise RecipeError(
            f"`overrides` must map module-name patterns to group options, e.g. {{'encoder': {{'lr': 1e-4}}}},"
            f" got {type(overrides).__name__}."
        )
    checked = {}
    for pattern, options in overrides.items():
        if not isinstance(pattern, str) or not pattern:
            raise RecipeError(f"`overrides` keys must be module-name patterns such as 'encoder', got {pattern!r}.")
        if not isinstance(options, Mapping):
            raise RecipeError(
                f"`overrides[{pattern!r}]` must be a dict of group options such as {{'lr': 1e-4}}, got {options!r}."
            )
        if "params" in options or "name" in options:
            key = "params" if "params" in options else "name"
            raise RecipeError(f"`overrides[{pattern!r}]` sets {key!r}, which `param_groups` fills in itself; remove it.")
        for key in ("lr", "weight_decay"):
            if key in options:
                _check_number(f"overrides[{pattern!r}][{key!r}]", options[key])
        checked[pattern] = dict(options)
    return checked


def _example_paths(module: nn.Module, limit: int = 4) -> str:
    names = [name for name, _ in module.named_modules() if name][:limit]
    return ", ".join(repr(n) for n in names) or "(the module has no submodules)"


def _check_number(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise RecipeError(f"`{key}` must be a finite non-negative number, got {value!r}.")


def check_param_groups(
    groups_or_optimizer: Union[torch.optim.Optimizer, Sequence[Any]],
    module: Optional[nn.Module] = None,
) -> list[ParamGroup]:
    """Check param groups written by hand (or an optimizer's), naming the mistake and the fix.

    Raises `RecipeError` for a group without the ``'params'`` key (``{'encoder_params': ...}``), a non-tensor in
    ``'params'``, an empty group, and a parameter in two groups. With `module`, warns (`RecipeWarning`) about
    trainable parameters that are in no group. A generator passed as ``'params'`` is turned into a list in place,
    so the groups can still be handed to an optimizer afterwards.

    Returns:
        The groups (an optimizer's ``param_groups``, or the list given).

    Example:
        >>> import torch
        >>> enc, dec = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
        >>> check_param_groups([{"encoder_params": enc.parameters()}])
        Traceback (most recent call last):
        ...
        lightning_optim_recipes.errors.RecipeError: Param group 0 has no 'params' key (its keys: 'encoder_params'). torch.optim reads a group's tensors from 'params': write {'params': ..., <options>}, e.g. [{'params': encoder.parameters()}, {'params': decoder.parameters(), 'lr': 1e-4}].
    """
    optimizer_name = None
    if isinstance(groups_or_optimizer, torch.optim.Optimizer):
        groups = groups_or_optimizer.param_groups
        optimizer_name = type(groups_or_optimizer).__name__
    elif isinstance(groups_or_optimizer, (list, tuple)):
        groups = groups_or_optimizer
    else:
        raise RecipeError(
            "`check_param_groups` takes an optimizer or a list of param-group dicts,"
            f" got {type(groups_or_optimizer).__name__}."
        )
    where = f"{optimizer_name} param group" if optimizer_name else "Param group"
    names = _param_names(module)
    owner: dict[int, int] = {}
    for index, group in enumerate(groups):
        if isinstance(group, (torch.Tensor, nn.Module)) or not isinstance(group, Mapping):
            if isinstance(group, torch.Tensor) and index == 0:
                break  # a plain list of tensors: torch's single-group form
            raise RecipeError(
                f"{where} {index} must be a dict such as {{'params': [...], 'lr': 1e-3}}, got {type(group).__name__}."
            )
        if "params" not in group:
            keys = ", ".join(repr(k) for k in group) or "none"
            raise RecipeError(
                f"{where} {index} has no 'params' key (its keys: {keys}). torch.optim reads a group's tensors from"
                " 'params': write {'params': ..., <options>}, e.g."
                " [{'params': encoder.parameters()}, {'params': decoder.parameters(), 'lr': 1e-4}]."
            )
        params = _materialize(group)
        if not params:
            raise RecipeError(
                f"{where} {index}{_group_label(group)} is empty: its 'params' hold no tensor. Remove the group or"
                " give it parameters (a frozen module's `parameters()` still counts; a spent generator does not)."
            )
        for param in params:
            if not isinstance(param, torch.Tensor):
                raise RecipeError(
                    f"{where} {index}{_group_label(group)} holds a {type(param).__name__} in 'params': only tensors"
                    " can be optimized. Pass `module.parameters()`, not the module or its name."
                )
            if id(param) in owner:
                raise RecipeError(
                    f"Parameter {_describe(names, param)} is in param groups {owner[id(param)]} and"
                    f" {index}. Every parameter must be in exactly one group: remove it from one of them"
                    " (`param_groups(...)` builds disjoint groups)."
                )
            owner[id(param)] = index
    if groups and isinstance(groups[0], torch.Tensor):
        for param in groups:
            if not isinstance(param, torch.Tensor):
                raise RecipeError(f"Param list holds a {type(param).__name__}: only tensors can be optimized.")
            owner[id(param)] = 0
    if module is not None:
        warn_untrained(module, owner, "param group", "a group")
    return list(groups)


def _materialize(group: Mapping[str, Any]) -> list[Any]:
    params = group["params"]
    if isinstance(params, torch.Tensor):
        return [params]
    if isinstance(params, (list, tuple)):
        return list(params)
    if isinstance(params, (set, frozenset)):
        raise RecipeError(
            "A param group's 'params' is a set: its order changes between runs and torch.optim refuses it. Use a list."
        )
    if isinstance(params, (Iterator, Iterable)) and not isinstance(params, (str, bytes, Mapping)):
        materialized = list(params)
        if isinstance(group, dict):
            group["params"] = materialized  # as torch.optim does itself, so a generator is not spent by checking
        return materialized
    return [params]


def warn_untrained(module: nn.Module, covered: Container[int], container: str, fix: str, stacklevel: int = 3) -> None:
    """Warn (`RecipeWarning`) about trainable parameters of `module` whose ids are not in `covered`."""
    missing = [name for name, p in module.named_parameters() if p.requires_grad and id(p) not in covered]
    if missing:
        shown = ", ".join(repr(n) for n in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        warnings.warn(
            f"{len(missing)} trainable parameter(s) of {type(module).__name__} are in no {container} and will not be"
            f" trained: {shown}. Add them to {fix}, or set `requires_grad=False` if that is deliberate.",
            RecipeWarning,
            stacklevel=stacklevel,
        )


def _param_names(module: Optional[nn.Module]) -> dict[int, str]:
    if module is None:
        return {}
    return {id(p): name for name, p in module.named_parameters()}


def _group_label(group: Mapping[str, Any]) -> str:
    return f" ({group['name']!r})" if "name" in group else ""


def _describe(names: Mapping[int, str], param: torch.Tensor) -> str:
    name = names.get(id(param))
    return repr(name) if name is not None else f"of shape {tuple(param.shape)}"
