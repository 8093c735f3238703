"""Correct param groups: `param_groups` builds them (`lightning_optim_recipes.param_checks` checks hand-written ones)."""

from __future__ import annotations

import difflib
import fnmatch
import math
import re
from collections.abc import Mapping
from typing import Any, NamedTuple, Optional

from torch import nn

from lightning_optim_recipes.errors import RecipeError, warn
from lightning_optim_recipes.layer_decay import (
    EMBEDDING_PARAMETERS,
    LayerOf,
    LayerPlan,
    call_layer_of,
    missing_lr,
    module_layer,
    plan_layers,
)
from lightning_optim_recipes.no_decay import DEFAULT_NO_DECAY, Exemptions, NoDecayRule
from lightning_optim_recipes.sharding import check_fsdp1

__all__ = ["param_groups"]

ParamGroup = dict[str, Any]


def param_groups(
    module: nn.Module,
    *,
    weight_decay: float,
    lr: Optional[float] = None,
    no_decay: Optional[NoDecayRule] = DEFAULT_NO_DECAY,
    overrides: Optional[Mapping[str, Mapping[str, Any]]] = None,
    include_frozen: bool = False,
    layer_decay: Optional[float] = None,
    layer_of: Optional[LayerOf] = None,
    layer_rule: str = "beit",
) -> list[ParamGroup]:
    """Split `module`'s parameters into param groups that `torch.optim` accepts, with weight decay where it belongs.

    Every trainable parameter lands in exactly one group (tied parameters once, under their first name, with no
    decay if any of their names is exempt); frozen ones are left out unless `include_frozen`; no group is empty;
    groups come in module registration order. Each
    group has ``'params'``, ``'weight_decay'`` (0.0 for no-decay parameters), a ``'name'`` that Lightning's
    learning-rate monitors use, and ``'lr'`` when given.

    With `layer_decay` (layer-wise learning-rate decay, as BEiT, MAE and ELECTRA fine-tune), each group's own
    ``'lr'`` is the base lr (an override's, else `lr`) times ``layer_decay ** (top - layer id)``, so torch's and
    Lightning's schedulers, which scale every group's own lr, keep the ratios. Groups are split by layer and named
    ``'layer_3'``, ``'layer_3/no_decay'``, ``'encoder/layer_3'``, ``'encoder/layer_3/no_decay'``, and carry
    ``'layer_id'`` and ``'layer_scale'`` (informative: nothing reads them). Layer ids are inferred as BEiT's and
    MAE's reference does (see `lightning_optim_recipes.layer_decay`): 0 for the embeddings, ``i + 1`` for block
    ``i`` (``blocks.i``, ``layers.i``, ``layer.i``, ``h.i``, ``encoder.layer.i``), the top for everything after.

    Args:
        module: the model.
        weight_decay: the decay of decayed parameters.
        lr: a learning rate for every group (default: the optimizer's); with `layer_decay`, the top layer's lr.
        no_decay: which parameters get no decay (`DEFAULT_NO_DECAY`); ``None`` decays every parameter.
        overrides: module-name prefixes or glob patterns (``"encoder"``, ``"decoder.*"``) mapped to group options
            (``lr``, ``weight_decay``, ``betas``, ...). A glob's ``*`` stays within one dotted name
            (``"blocks.*.attn"``). The most specific pattern (the longest module path it matches) wins; a tie, or a
            pattern that matches no parameter, is a `RecipeError`.
        include_frozen: also group parameters with ``requires_grad=False``.
        layer_decay: the lr ratio between a layer and the one above it (e.g. 0.75), in (0, 1].
        layer_of: ``layer_of(name) -> int``, the layer id of a parameter, for models whose blocks are not found
            (or to group differently); the highest id it returns for any parameter trains at the full lr.
        layer_rule: ``"beit"`` (BEiT's and MAE's layer ids: the final norm trains with the head) or ``"timm"``
            (timm's ``param_groups_layer_decay``: norms registered on the model itself, ``norm`` and ``norm_pre``,
            train with the last block); see `lightning_optim_recipes.layer_decay`.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2))
        >>> groups = param_groups(model, weight_decay=0.05, overrides={"2": {"lr": 1e-4}})
        >>> [(g["name"], len(g["params"]), g["weight_decay"], g.get("lr")) for g in groups]
        [('decay', 1, 0.05, None), ('no_decay', 3, 0.0, None), ('2', 1, 0.05, 0.0001), ('2/no_decay', 1, 0.0, 0.0001)]
        >>> optimizer = torch.optim.AdamW(groups, lr=1e-3)

        Layer-wise lr decay on a model with two blocks (layer 0: the embedding, 1 and 2: the blocks, 3: the head):

        >>> model = nn.Module()
        >>> model.embed, model.head = nn.Embedding(10, 4), nn.Linear(4, 2)
        >>> model.blocks = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])
        >>> groups = param_groups(model, weight_decay=0.05, lr=1.0, layer_decay=0.5)
        >>> [(g["name"], g["lr"]) for g in groups]  # in registration order: embed, head, blocks
        [('layer_0', 0.125), ('layer_3', 1.0), ('layer_3/no_decay', 1.0), ('layer_1', 0.25), ('layer_1/no_decay', 0.25), ('layer_2', 0.5), ('layer_2/no_decay', 0.5)]
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
    check_fsdp1(module, "`param_groups`", needs_shapes=no_decay is not None and no_decay.one_dim)
    overrides = _check_overrides(overrides)
    resolver = _Overrides(overrides) if overrides else None
    layers = plan_layers(module, layer_decay, layer_of, lr, overrides, layer_rule)

    walk = _walk(module, no_decay, resolver, layers, include_frozen, frozenset())
    if walk.flips:  # a tied parameter first met under a decayed name has an exempt one: decide it exempt from the start
        walk = _walk(module, no_decay, resolver, layers, include_frozen, frozenset(walk.flips))
    used = {pattern for (pattern, _), _ in walk.order}
    unused = [p for p in overrides if p not in used]
    if unused:
        raise RecipeError(
            f"`overrides` pattern {unused[0]!r} matches no trainable parameter of {type(module).__name__}."
            f" Patterns match module paths such as {_example_paths(module)}; fix or remove it."
        )
    groups = [
        _new_group(pattern, layer, exempt, walk.slots[(pattern, layer)][exempt], weight_decay, lr, overrides, layers)
        for (pattern, layer), exempt in walk.order
    ]
    if walk.exemptions is not None and walk.exemptions.unmatched():
        _warn_unmatched_names(module, walk.exemptions.unmatched())
    return groups


class _Walk(NamedTuple):
    """What one walk over the model found: the parameter lists by (pattern, layer) and decision, in order."""

    slots: dict[tuple[Any, Optional[int]], tuple[list[nn.Parameter], list[nn.Parameter]]]
    order: list[tuple[tuple[Optional[str], Optional[int]], bool]]
    flips: set[int]
    exemptions: Optional[Exemptions]


def _walk(
    module: nn.Module,
    rule: Optional[NoDecayRule],
    resolver: Optional[_Overrides],
    layers: Optional[LayerPlan],
    include_frozen: bool,
    forced: frozenset[int],
) -> _Walk:
    """Walk the module tree once, in registration order, and put each parameter in its slot.

    Everything that depends only on a module (its override, its layer, whether it is a normalization layer, the
    exempt names it may register) is decided once per module; a parameter usually costs a few set lookups.
    """
    exemptions = Exemptions(rule if rule is not None else _DECAY_ALL)
    hooks = rule is not None and exemptions.use_model_hook
    one_dim = exemptions.one_dim
    predicate = exemptions.predicate
    layer_of = layers.layer_of if layers is not None else None
    by_module_layer = layers is not None and layer_of is None
    type_infos = exemptions.types

    slots: dict[tuple[Any, Optional[int]], tuple[list[nn.Parameter], list[nn.Parameter]]] = {}
    order: list[tuple[tuple[Optional[str], Optional[int]], bool]] = []
    decided: dict[int, Optional[bool]] = {}  # id -> exempt; None: left out (frozen)
    flips: set[int] = set()
    visited: set[int] = set()
    # (module, its path, its name in the parent, the parent's override state, the parent's layer state)
    stack: list[tuple[nn.Module, str, str, Any, Any]] = [(module, "", "", None, None)]
    while stack:
        owner, path, own, parent_overrides, parent_layer = stack.pop()
        if id(owner) in visited:  # a module registered twice: its parameters' other names may be exempt
            for sub_path, sub in owner.named_modules(prefix=path, remove_duplicate=False):
                for leaf, param in sub._parameters.items():
                    if param is not None:
                        _alias(exemptions, decided, flips, sub, sub_path, leaf, param)
            continue
        visited.add(id(owner))
        info = type_infos.get(type(owner)) or exemptions.type_info(type(owner))
        if hooks and (info[0] or "no_weight_decay" in owner.__dict__ or "no_weight_decay" in owner._modules):
            exemptions.add_hook(path, owner)

        state = resolver.visit(parent_overrides, own, path) if resolver is not None else None
        layer_state = module_layer(layers, parent_layer, own, owner, path) if by_module_layer else None  # type: ignore

        params = owner._parameters
        if params:
            best = state[2] if state is not None else None
            layer = layer_state[0] if layer_state is not None else None
            whole = info[1]
            leaves = exemptions.leaves_embedding if info[2] else exemptions.leaves_plain
            if exemptions.model_by_owner and path in exemptions.model_by_owner:
                leaves = leaves | exemptions.model_by_owner[path]
            leaves = exemptions.with_biases(leaves, params)
            slot = slots.get((best, layer))
            if slot is None:
                slot = slots[(best, layer)] = ([], [])
            embed_leaves = layer_state is not None and not layer_state[1] and layer != 0
            if (
                exemptions.needs_names
                or predicate is not None
                or forced
                or layer_of is not None
                or embed_leaves
                or (state is not None and (state[3] or best.__class__ is _Tie))
            ):
                _place_each(
                    exemptions, owner, path, params, whole, leaves, state, layers, embed_leaves, include_frozen,
                    forced, slots, order, decided, flips, (best, layer),
                )
            else:  # the common case: the module decides the slot, the rule needs no names
                decay, no_decay = slot
                for leaf, param in params.items():
                    if param is None:
                        continue
                    pid = id(param)
                    if pid in decided:  # tied: registered again under this name
                        _alias(exemptions, decided, flips, owner, path, leaf, param)
                    elif not (include_frozen or param.requires_grad):
                        decided[pid] = None
                    elif whole or leaf in leaves or (one_dim and param.ndim < 2):
                        decided[pid] = True
                        if not no_decay:
                            order.append(((best, layer), True))
                        no_decay.append(param)
                    else:
                        decided[pid] = False
                        if not decay:
                            order.append(((best, layer), False))
                        decay.append(param)

        children = owner._modules
        if children:
            prefix = f"{path}." if path else ""
            for key, child in reversed(children.items()):
                if child is not None:
                    stack.append((child, prefix + key, key, state, layer_state))
    return _Walk(slots, order, flips, exemptions if rule is not None else None)


#: The rule of `no_decay=None`: every parameter decayed.
_DECAY_ALL = NoDecayRule(module_types=(), bias=False, one_dim=False, use_model_hook=False, positions=())


def _place_each(
    exemptions: Exemptions,
    owner: nn.Module,
    path: str,
    params: Mapping[str, Optional[nn.Parameter]],
    whole: bool,
    leaves: frozenset[str],
    state: Any,
    layers: Optional[LayerPlan],
    embed_leaves: bool,
    include_frozen: bool,
    forced: frozenset[int],
    slots: dict[tuple[Any, Optional[int]], tuple[list[nn.Parameter], list[nn.Parameter]]],
    order: list[tuple[tuple[Optional[str], Optional[int]], bool]],
    decided: dict[int, Optional[bool]],
    flips: set[int],
    module_key: tuple[Any, Optional[int]],
) -> None:
    """Place the parameters of one module that need more than the module's slot: full names (glob patterns, the
    rule's names, a predicate, `layer_of`), parameter-level override patterns, or position/token leaves (layer 0)."""
    prefix = f"{path}." if path else ""
    needs_names = exemptions.needs_names
    predicate = exemptions.predicate
    layer_of = layers.layer_of if layers is not None else None
    candidates = state[3] if state is not None else ()
    best, layer = module_key
    for leaf, param in params.items():
        if param is None:
            continue
        pid = id(param)
        if pid in decided:
            _alias(exemptions, decided, flips, owner, path, leaf, param)
            continue
        name = prefix + leaf
        param_layer = call_layer_of(layers, name) if layer_of is not None else layer  # type: ignore[arg-type]
        if not (include_frozen or param.requires_grad):
            if needs_names:
                exemptions.named(name, leaf)  # a name pattern that matches a frozen parameter is not a typo
            decided[pid] = None
            continue
        exempt = (
            (needs_names and exemptions.named(name, leaf))
            or whole
            or leaf in leaves
            or (exemptions.one_dim and param.ndim < 2)
            or (predicate is not None and bool(predicate(name, param, owner)))
            or pid in forced
        )
        decided[pid] = exempt
        pattern = _Overrides.leaf(candidates, name, leaf, best) if candidates else best
        if pattern.__class__ is _Tie:
            _raise_tie(pattern)
        if embed_leaves and leaf in EMBEDDING_PARAMETERS and not isinstance(owner, nn.Embedding):
            param_layer = 0
        target = slots.get((pattern, param_layer))
        if target is None:
            target = slots[(pattern, param_layer)] = ([], [])
        if not target[exempt]:
            order.append(((pattern, param_layer), exempt))
        target[exempt].append(param)


def _alias(
    exemptions: Exemptions,
    decided: dict[int, Optional[bool]],
    flips: set[int],
    owner: nn.Module,
    path: str,
    leaf: str,
    param: nn.Parameter,
) -> None:
    """Another name of a parameter already placed: if the parameter went to a decayed group but this name is exempt,
    the walk must be redone with it exempt (`flips`)."""
    first = decided[id(param)]
    if first is False:
        if exemptions.exempt(owner, path, leaf, param):
            flips.add(id(param))
    elif exemptions.needs_names:
        exemptions.named(f"{path}.{leaf}" if path else leaf, leaf)  # record which name patterns match


class _Tie(NamedTuple):
    """Two override patterns that match the same path equally specifically (an error once a parameter needs it)."""

    path: str
    first: str
    second: str


def _raise_tie(tie: _Tie) -> None:
    raise RecipeError(
        f"`overrides` patterns {tie.first!r} and {tie.second!r} both match {tie.path!r} equally specifically."
        " Make one of them more specific or merge them."
    )


class _Overrides:
    """The most specific override of each module, decided once per module from its parent's.

    A pattern of ``k`` dotted names matches only paths of ``k`` names, so each module keeps the patterns whose first
    names match its path (``live``), checking one name per pattern: those as long as its path match it (and beat its
    parent's pattern), those one name longer can match one of its parameters (and beat the module's own pattern).
    """

    def __init__(self, overrides: Mapping[str, Any]) -> None:
        self.patterns = [(pattern, [_segment(s) for s in pattern.split(".")]) for pattern in overrides]
        self.root = self._state(self.patterns, 0, None, "")

    @staticmethod
    def _state(live: list[tuple[str, list[Any]]], depth: int, best: Any, path: str) -> tuple[Any, ...]:
        """(live patterns, depth, best pattern or `_Tie`, parameter-level candidates) of a module at `path`."""
        if depth:
            hits = [p for p, segments in live if len(segments) == depth]
            if len(hits) > 1:
                best = _Tie(path, hits[0], hits[1])
            elif hits:
                best = hits[0]
        candidates = [(p, segments[-1]) for p, segments in live if len(segments) == depth + 1]
        return live, depth, best, candidates

    def visit(self, parent: Optional[tuple[Any, ...]], own: str, path: str) -> tuple[Any, ...]:
        """The state of the module named `own` at `path`, from its parent's (None for the model itself)."""
        if parent is None:
            return self.root
        live, depth, best, _ = parent
        if not live:  # no pattern can match below: the parent's pattern holds for the whole subtree
            return parent
        depth += 1
        live = [(p, segments) for p, segments in live if len(segments) >= depth and _match(segments[depth - 1], own)]
        return self._state(live, depth, best, path)

    @staticmethod
    def leaf(candidates: list[tuple[str, Any]], name: str, leaf: str, best: Any) -> Any:
        """The pattern of one parameter: a candidate that matches its name beats the module's `best`."""
        hits = [p for p, last in candidates if _match(last, leaf)]
        if len(hits) > 1:
            return _Tie(name, hits[0], hits[1])
        return hits[0] if hits else best


def _segment(segment: str) -> Any:
    """One dotted name of a pattern: the string itself, or (with glob characters) the string and its matcher."""
    if not _GLOB_CHARS.intersection(segment):
        return segment
    return segment, re.compile(fnmatch.translate(segment)).match


def _match(segment: Any, part: str) -> bool:
    """Whether one name of a path matches one name of a pattern (equal, or matched by its glob)."""
    if segment.__class__ is str:
        return part == segment
    return part == segment[0] or segment[1](part) is not None


_GLOB_CHARS = frozenset("*?[")


def _new_group(
    pattern: Optional[str],
    layer: Optional[int],
    exempt: bool,
    params: list[nn.Parameter],
    weight_decay: float,
    lr: Optional[float],
    overrides: Mapping[str, Any],
    layers: Optional[LayerPlan],
) -> ParamGroup:
    group: ParamGroup = {"params": params}
    if lr is not None:
        group["lr"] = lr
    if pattern is not None:
        group.update(overrides[pattern])
    group.setdefault("weight_decay", weight_decay)
    if exempt:
        group["weight_decay"] = 0.0
    parts = [pattern] if pattern is not None else []
    if layer is not None:
        parts.append(f"layer_{layer}")
    if not parts:
        group["name"] = "no_decay" if exempt else "decay"
    else:
        group["name"] = "/".join(parts + ["no_decay"] if exempt else parts)
    if layers is not None and layer is not None:
        if "lr" not in group:
            missing_lr(f"group {group['name']!r} has")
        scale = layers.scale(layer)
        group["lr"] = group["lr"] * scale
        group["layer_id"] = layer
        group["layer_scale"] = scale
    return group


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


def _warn_unmatched_names(module: nn.Module, patterns: list[str]) -> None:
    names = [name for name, _ in module.named_parameters(remove_duplicate=False)]
    candidates = list(dict.fromkeys(names + [name.rpartition(".")[2] for name in names]))
    close = list(dict.fromkeys(c for p in patterns for c in difflib.get_close_matches(p, candidates, n=3)))
    shown = ", ".join(repr(n) for n in (close or names)[:4])
    subject = f"pattern {patterns[0]!r} matches" if len(patterns) == 1 else (
        f"patterns {', '.join(repr(p) for p in patterns)} match"
    )
    _warn(
        f"`NoDecayRule(names=...)` {subject} no parameter of {type(module).__name__}, so it exempts nothing."
        f" {'Closest parameter names' if close else 'Parameter names look like'}: {shown}. Fix or remove it, or"
        " silence this warning with `warnings.filterwarnings('ignore', '.*NoDecayRule', RecipeWarning)`."
    )


def _warn(message: str) -> None:
    """Warn (`RecipeWarning`) at the first caller outside this package: the user's line, however deep the call."""
    warn(message)


