"""`check_param_groups`: param groups written by hand (or an optimizer's), checked; and the warning about trainable
parameters that no optimizer holds."""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from typing import Any, Optional, Union

import torch
from torch import nn

from lightning_optim_recipes._checks import count
from lightning_optim_recipes.errors import RecipeError, caller_line, warn
from lightning_optim_recipes.sharding import full

__all__ = ["check_optimizer_groups", "check_param_groups", "warn_untrained", "watch_lr_scale", "watch_untrained"]

log = logging.getLogger("lightning_optim_recipes")
#: Names that say a submodule is a copy of another, updated without an optimizer.
_COPY_NAMES = re.compile(r"(target|ema|momentum|teacher|averag|shadow|polyak|(^|[._])k_|_k($|\.)|key_encoder)",
                         re.IGNORECASE)

ParamGroup = dict[str, Any]


def check_param_groups(
    groups_or_optimizer: Union[torch.optim.Optimizer, Sequence[Any]],
    module: Optional[nn.Module] = None,
) -> list[ParamGroup]:
    """Check param groups written by hand (or an optimizer's), naming the mistake and the fix.

    Raises `RecipeError` for a group without the ``'params'`` key (``{'encoder_params': ...}``), a non-tensor in
    ``'params'``, and a parameter in two groups. Warns (`RecipeWarning`) about an empty group, and (once per call)
    about groups that carry timm's ``'lr_scale'`` key (from ``timm.optim.param_groups_layer_decay``): only timm's schedulers
    apply it, so under torch's and Lightning's schedulers every layer trains at the same lr. With `module`, warns
    about trainable parameters that are in no group. A generator passed as ``'params'`` is turned into a list in
    place, so the groups can still be handed to an optimizer afterwards.

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
    return _check(groups_or_optimizer, module, lr_scale_now=True)


def _check(groups_or_optimizer: Any, module: Optional[nn.Module], lr_scale_now: bool) -> list[ParamGroup]:
    optimizer_name = None
    if isinstance(groups_or_optimizer, torch.optim.Optimizer):
        groups: Sequence[Any] = groups_or_optimizer.param_groups
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
        if not params:  # torch accepts it (a decay/no-decay split can leave one side empty): a warning at most
            warn(
                f"{where} {index}{_group_label(group)} is empty: its 'params' hold no tensor, so it trains nothing."
                " If that is not deliberate, give it parameters (a frozen module's `parameters()` still counts; a"
                " generator already spent does not); otherwise silence this with"
                " `warnings.filterwarnings('ignore', '.*is empty: its .params. hold no tensor', RecipeWarning)`."
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
    if lr_scale_now:
        scaled = _scaled(groups)
        if scaled:
            warn(_lr_scale_message(where, scaled, ""))
    if module is not None:
        warn_untrained(module, owner, "param group", "a group")
    return list(groups)


def _scaled(groups: Sequence[Any]) -> list[int]:
    return [i for i, group in enumerate(groups) if isinstance(group, Mapping) and "lr_scale" in group]


def _lr_scale_message(where: str, scaled: list[int], seen: str) -> str:
    return (
        f"{where}{'s' if len(scaled) > 1 else ''} {_indices(scaled)} carr{'y' if len(scaled) > 1 else 'ies'}"
        f" timm's 'lr_scale' key, which only timm's schedulers apply{seen}: torch optimizers and every torch or"
        " Lightning scheduler ignore it, so each layer trains at the same lr. Build the groups with"
        " `param_groups(model, weight_decay=..., lr=..., layer_decay=...)`, whose own 'lr' carries each layer's"
        " scale, or step this optimizer with a timm scheduler; if you do, silence this warning with"
        " `warnings.filterwarnings('ignore', \".*'lr_scale'\", RecipeWarning)`."
    )


def _indices(indices: list[int], limit: int = 5) -> str:
    shown = [str(i) for i in indices[:limit]]
    if len(indices) > limit:
        return f"{', '.join(shown)} and {len(indices) - limit} more"
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


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


def warn_untrained(module: nn.Module, covered: Container[int], container: str, fix: str) -> None:
    """Warn (`RecipeWarning`) about trainable parameters of `module` whose ids are not in `covered`; a submodule that
    copies a trained one (a target network, an EMA or momentum copy: the same architecture, parameter for parameter,
    as a submodule whose parameters are all trained, and either the same values, as a fresh copy has, or a name that
    says so: ``target_net``, ``ema``, ``momentum_encoder``, ``teacher``, ``encoder_k``) is not trained by an optimizer
    on purpose."""
    missing = _untrained(module, covered)
    if missing:
        warn(_untrained_message(module, list(missing.values()), container, fix))


def _untrained(module: nn.Module, covered: Container[int]) -> dict[int, str]:
    """The trainable parameters of `module` (id: name) not in `covered`, copies of trained submodules left out."""
    missing = {id(p): name for name, p in module.named_parameters() if p.requires_grad and id(p) not in covered}
    if missing:
        for key in _copies(module, covered, missing):
            missing.pop(key, None)
    return missing


def _untrained_message(module: nn.Module, names: list[str], container: str, fix: str, seen: str = "") -> str:
    shown = ", ".join(repr(n) for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return (
        f"{count(len(names), 'trainable parameter')} of {type(module).__name__}"
        f" {'is' if len(names) == 1 else 'are'} in no {container} and will not be trained: {shown}{seen}. Add"
        f" {'it' if len(names) == 1 else 'them'} to {fix}, or set `requires_grad=False` if that is deliberate."
    )


def _copies(module: nn.Module, covered: Container[int], missing: Mapping[int, str]) -> set[int]:
    """The ids of the untrained parameters that belong to a submodule copying a trained one (see `warn_untrained`)."""
    def signature(sub: nn.Module) -> tuple[tuple[str, tuple[int, ...]], ...]:
        return tuple((name, tuple(p.shape)) for name, p in sub.named_parameters())

    def same_values(a: nn.Module, b: nn.Module) -> bool:
        with torch.no_grad():
            return all(torch.equal(full(x), full(y)) for x, y in zip(a.parameters(), b.parameters()))

    trained: dict[tuple[type, int], list[nn.Module]] = {}
    untrained: list[tuple[str, nn.Module]] = []
    for path, sub in module.named_modules():
        params = list(sub.parameters())
        if not params or sub is module:
            continue
        if all(id(p) in covered for p in params):
            trained.setdefault((type(sub), len(params)), []).append(sub)
        elif all(id(p) in missing for p in params):
            untrained.append((path, sub))
    found: set[int] = set()
    for path, sub in untrained:
        if any(id(p) in found for p in sub.parameters()):
            continue  # inside a copy already found
        named = bool(_COPY_NAMES.search(path))
        candidates = trained.get((type(sub), len(list(sub.parameters()))), [])
        if any(signature(other) == signature(sub) and (named or same_values(other, sub)) for other in candidates):
            found.update(id(p) for p in sub.parameters())
    if found:
        log.debug("Parameters of %s copy a trained submodule (a target network, an EMA or momentum copy): not"
                  " reported as untrained.", type(module).__name__)
    return found


def _param_names(module: Optional[nn.Module]) -> dict[int, str]:
    if module is None:
        return {}
    return {id(p): name for name, p in module.named_parameters()}


def _group_label(group: Mapping[str, Any]) -> str:
    return f" ({group['name']!r})" if "name" in group else ""


def _describe(names: Mapping[int, str], param: torch.Tensor) -> str:
    name = names.get(id(param))
    return repr(name) if name is not None else f"of shape {tuple(param.shape)}"



# ------------------------------------------------------------------------- judged when training shows it
#
# Two warnings about what `configure_optimizers` returns depend on what the module does with it, which only training
# shows: a trainable parameter in no optimizer is a mistake only if a loss reaches it (a backbone kept frozen under
# ``torch.no_grad()`` never gets a gradient), and timm's ``'lr_scale'`` is lost only if nothing applies it (a timm
# scheduler does, and so does a module that sets each group's lr from it, as MAE's ``adjust_learning_rate``). The
# entry points judge both at the first moment it shows, through torch's own hooks, which cost nothing once judged.

_WATCHED: "weakref.WeakKeyDictionary[Any, list[Any]]" = weakref.WeakKeyDictionary()


def check_optimizer_groups(optimizer: torch.optim.Optimizer, at: Any = None) -> None:
    """`check_param_groups` on an optimizer that is about to train, its ``'lr_scale'`` left to `watch_lr_scale`."""
    _check(optimizer, None, lr_scale_now=False)
    watch_lr_scale(optimizer, at)


def watch_untrained(module: nn.Module, optimizers: Sequence[torch.optim.Optimizer], at: Any = None) -> None:
    """Warn about trainable parameters of `module` in none of `optimizers` (as `warn_untrained`, copies of trained
    submodules left out) when one of them first receives a gradient, unless an optimizer holds it by then (a callback
    such as ``BackboneFinetuning`` adds groups during training). One that never gets a gradient trains nothing and is
    not reported. The warning points at `at` (the module's ``configure_optimizers``), else the caller's line."""
    for handle in _WATCHED.pop(module, ()):
        handle.remove()
    covered = {id(p) for optimizer in optimizers for group in optimizer.param_groups for p in group["params"]}
    missing = _untrained(module, covered)
    if not missing:
        return
    at = at if at is not None else caller_line()
    params = {id(p): p for p in module.parameters() if id(p) in missing}
    holders = [weakref.ref(optimizer) for optimizer in optimizers]
    handles = {key: param.register_post_accumulate_grad_hook(lambda p: received(p)) for key, param in params.items()}
    _WATCHED[module] = list(handles.values())  # removed from outside a hook: torch iterates them while it runs one
    quiet: set[int] = set()  # hooks that stay, doing nothing, until the module is checked again

    def received(param: torch.Tensor) -> None:
        key = id(param)
        if key in quiet:
            return
        now = {id(p) for ref in holders if (optimizer := ref()) is not None
               for group in optimizer.param_groups for p in group["params"]}
        for other in [other for other in handles if other != key and (other in now or key not in now)]:
            handles.pop(other).remove()  # another tensor's hook: safe to remove
        quiet.add(key)
        if key not in now:  # a gradient for a parameter no optimizer holds: judged, once
            quiet.update(missing)
            names = [name for other, name in missing.items() if other not in now]
            warn(_untrained_message(module, names, "optimizer", "a param group",
                                    f" (a backward pass gave {missing[key]!r} a gradient)"), at=at)


def watch_lr_scale(optimizer: torch.optim.Optimizer, at: Any = None) -> None:
    """Warn about `optimizer`'s param groups that carry timm's ``'lr_scale'`` at its first step where the scale
    shows: the first at which groups of different scales train at lrs above 0. If every group then trains at the
    same multiple of its lr, nothing applied the scales (torch's and Lightning's schedulers ignore the key); if the
    lrs follow the scales (a timm scheduler, or lrs set by hand from ``'lr_scale'``) nothing is said."""
    for handle in _WATCHED.pop(optimizer, ()):
        handle.remove()
    scaled = _scaled(optimizer.param_groups)
    scales = [float(group.get("lr_scale", 1.0)) for group in optimizer.param_groups]
    if not scaled or len(set(scales)) == 1:
        return  # one scale for every group: the shape of the lrs cannot show it, and nothing differs between layers
    bases = [_number(group.get("initial_lr", group.get("lr"))) for group in optimizer.param_groups]
    at = at if at is not None else caller_line()
    steps = [0]

    def before_step(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if steps[0] < 0:
            return  # judged (torch runs this hook while it iterates them, so it stays until checked again)
        steps[0] += 1
        shown = [(_number(group.get("lr")) / base, scale) for group, base, scale in zip(opt.param_groups, bases, scales)
                 if base > 0 and _number(group.get("lr")) > 0]
        if len({scale for _, scale in shown}) < 2:
            return  # not yet: groups of different scales must train above lr 0
        step, steps[0] = steps[0], -1
        multiples = [multiple for multiple, _ in shown]
        if max(multiples) - min(multiples) <= 1e-6 * max(multiples):
            seen = f" (at its optimizer step {step}, every group trains at the same multiple of its lr)"
            warn(_lr_scale_message(f"{type(opt).__name__} param group", scaled, seen), at=at)

    _WATCHED[optimizer] = [optimizer.register_step_pre_hook(before_step)]


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
