"""`HybridOptimizer`: one `torch.optim.Optimizer` over several (Muon beside AdamW), and `hybrid_optimizer`, which
builds it from `muon_split`.

Lightning's automatic optimization steps one optimizer. A `HybridOptimizer` is one: its ``param_groups`` are its
parts' groups (the same dicts, so torch's schedulers, ``lr_find``, gradient clipping, AMP unscaling and the library's
factories see and change every part's lrs), ``step(closure)`` runs the closure once and steps every part,
``zero_grad`` zeroes every part, and ``state_dict()`` is torch's layout over all parts (parameters numbered across
the parts, in order), which ``load_state_dict`` splits back, so checkpoints resume bit for bit.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Any, Callable, Optional, Union

import torch
from torch import nn
from torch.optim import Optimizer

from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.muon_checks import ADAMW_SIZED, MUON_SIZED, check_hybrid_lrs, lr_advice
from lightning_optim_recipes.muon_split import MuonSplit, muon_split
from lightning_optim_recipes.no_decay import DEFAULT_NO_DECAY, NoDecayRule
from lightning_optim_recipes.sharded_muon import step_sharded
from lightning_optim_recipes.sharding import is_dtensor

__all__ = ["ADAMW_SIZED", "MUON_SIZED", "FlatMuon", "HybridOptimizer", "check_hybrid_lrs", "hybrid_optimizer"]

#: The groups `muon_split` makes, by kind (each with a ``/no_decay`` twin for exempt parameters).
GROUP_KINDS = ("hidden", "embedding", "head", "scalar", "tensor")


class HybridOptimizer(Optimizer):
    """One optimizer over several: Muon for the hidden layers' matrices beside AdamW for the rest, stepped as one.

    Args:
        parts: the optimizers, each over its own parameters (most often ``[Muon, AdamW]``, as `hybrid_optimizer`
            builds them).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 10))
        >>> muon = torch.optim.Muon([model[1].weight], lr=0.02, weight_decay=0.0)
        >>> adamw = torch.optim.AdamW([model[0].weight, model[1].bias, *model[2].parameters(), *model[3].parameters()],
        ...                           lr=3e-4)
        >>> optimizer = HybridOptimizer([muon, adamw])
        >>> optimizer.param_groups[0] is muon.param_groups[0], [g["lr"] for g in optimizer.param_groups]
        (True, [0.02, 0.0003])
        >>> scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)  # any torch scheduler
        >>> loss = model(torch.tensor([[1, 2]])).sum()
        >>> optimizer.step(lambda: loss.backward()); optimizer.zero_grad()
        >>> scheduler.step(); [g["lr"] for g in optimizer.param_groups]  # both parts, ratio kept
        [0.01, 0.00015]
    """

    #: The `MuonSplit` that `hybrid_optimizer` built it from; None for one built by hand (whose Muon part
    #: `validate_optimizers` checks against `muon_split`'s rule).
    split: Optional[MuonSplit] = None

    def __init__(self, parts: Sequence[Optimizer]) -> None:
        self._set_parts(parts)
        check_hybrid_lrs(self)

    def _set_parts(self, parts: Sequence[Optimizer]) -> None:
        parts = tuple(parts)
        if not parts or not all(isinstance(p, Optimizer) for p in parts):
            raise RecipeError(
                "`HybridOptimizer` takes a list of torch optimizers over disjoint parameters, e.g."
                f" [torch.optim.Muon(hidden, lr=0.02), torch.optim.AdamW(rest, lr=3e-4)], got {parts!r}."
            )
        _check_disjoint(parts)
        self.parts = parts
        # the first part's lr (Muon's): what a factory's absolute `min_lr` refers to; every group keeps its own lr
        self.defaults: dict[str, Any] = {"lr": parts[0].defaults.get("lr")}
        for hooks in ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks", "_optimizer_state_dict_pre_hooks",
                      "_optimizer_state_dict_post_hooks", "_optimizer_load_state_dict_pre_hooks",
                      "_optimizer_load_state_dict_post_hooks"):
            setattr(self, hooks, collections.OrderedDict())
        self._cache: Optional[tuple[tuple[Any, ...], tuple[int, ...], list[dict[str, Any]]]] = None

    # ------------------------------------------------------------------------------------- groups and state

    @property  # type: ignore[override]
    def param_groups(self) -> list[dict[str, Any]]:
        """Every part's param groups, in order: the parts' own dicts (the same list object until a part's change)."""
        lists = tuple(part.param_groups for part in self.parts)
        cache = self._cache
        if cache is None or any(a is not b for a, b in zip(lists, cache[0])) or any(
                len(a) != n for a, n in zip(lists, cache[1])):
            cache = self._cache = (lists, tuple(len(a) for a in lists), [g for groups in lists for g in groups])
        return cache[2]

    @param_groups.setter
    def param_groups(self, groups: list[dict[str, Any]]) -> None:
        counts = [len(part.param_groups) for part in self.parts]
        if len(groups) != sum(counts):
            raise ValueError(f"HybridOptimizer has {sum(counts)} param groups ({counts} per part), got {len(groups)}.")
        start = 0
        for part, count in zip(self.parts, counts):
            part.param_groups = list(groups[start:start + count])
            start += count

    @property  # type: ignore[override]
    def state(self) -> MutableMapping[Any, Any]:
        """The parts' states as one mapping (parameter -> its state), each entry read and written in its part."""
        return _HybridState(self)

    @state.setter
    def state(self, value: Mapping[Any, Any]) -> None:
        for part in self.parts:
            part.state = collections.defaultdict(dict)
        view = _HybridState(self)
        for param, entry in value.items():
            view[param] = entry

    def part_of(self, param: torch.Tensor) -> Optimizer:
        """The part that holds `param`."""
        for part in self.parts:
            if any(p is param for group in part.param_groups for p in group["params"]):
                return part
        raise KeyError(f"no part of this HybridOptimizer holds a parameter of shape {tuple(param.shape)}")

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        raise RecipeError(
            "A HybridOptimizer cannot tell which of its parts a new param group belongs to: add it to the part, e.g."
            " `optimizer.parts[1].add_param_group({...})` for AdamW (its `param_groups` follow)."
        )

    # ------------------------------------------------------------------------------------------- stepping

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:  # type: ignore[override]
        """Run `closure` once (forward and backward), then step every part. Step hooks registered on this optimizer
        (``register_step_pre_hook``/``register_step_post_hook``) run around it; each part runs its own and torch's
        global ones."""
        if self._optimizer_step_pre_hooks:
            args: tuple[Any, ...] = ()
            kwargs: dict[str, Any] = {"closure": closure}
            for hook in list(self._optimizer_step_pre_hooks.values()):
                result = hook(self, args, kwargs)
                if result is not None:
                    args, kwargs = result
            closure = args[0] if args else kwargs.get("closure")
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for part in self.parts:
            part.step()
        if self._optimizer_step_post_hooks:
            for hook in list(self._optimizer_step_post_hooks.values()):
                hook(self, (), {"closure": closure})
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts:
            part.zero_grad(set_to_none=set_to_none)

    # -------------------------------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict[str, Any]:
        """torch's layout over every part: ``'state'`` and ``'param_groups'`` with the parameters numbered across
        the parts in order, and ``'parts'``: each part's class and number of groups."""
        state: dict[int, Any] = {}
        groups: list[dict[str, Any]] = []
        offset = 0
        for part in self.parts:
            saved = part.state_dict()
            for group in saved["param_groups"]:
                groups.append({**group, "params": [i + offset for i in group["params"]]})
            state.update({i + offset: value for i, value in saved["state"].items()})
            offset += sum(len(group["params"]) for group in saved["param_groups"])
        parts = [{"class": f"{type(p).__module__}.{type(p).__qualname__}", "groups": len(p.param_groups)}
                 for p in self.parts]
        return {"state": state, "param_groups": groups, "parts": parts}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load what `state_dict` saved (or torch's layout with as many groups): each part its own groups."""
        groups = list(state_dict["param_groups"])
        counts = [len(part.param_groups) for part in self.parts]
        saved = state_dict.get("parts")
        if saved is not None and [p["groups"] for p in saved] != counts or len(groups) != sum(counts):
            raise ValueError(
                f"loaded state dict has {len(groups)} param groups"
                f"{' (' + str([p['groups'] for p in saved]) + ' per part)' if saved is not None else ''}, this"
                f" HybridOptimizer has {sum(counts)} ({counts} per part)"
            )
        state = state_dict.get("state", {})
        start = 0
        for part, count in zip(self.parts, counts):
            own = groups[start:start + count]
            ids = {i for group in own for i in group["params"]}
            part.load_state_dict({"state": {i: v for i, v in state.items() if i in ids}, "param_groups": own})
            start += count

    def __getstate__(self) -> dict[str, Any]:
        return {"parts": self.parts, "defaults": self.defaults, "split": self.split}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._set_parts(state["parts"])  # a copy (pickle, deepcopy): checked when it was made
        self.split = state.get("split")

    def __copy__(self) -> HybridOptimizer:
        """A copy over shallow copies of the parts: setting its groups or state leaves this one's untouched."""
        import copy

        clone = HybridOptimizer.__new__(HybridOptimizer)
        clone.__dict__.update(self.__dict__)
        clone.parts = tuple(copy.copy(part) for part in self.parts)
        clone._cache = None
        return clone

    def __repr__(self) -> str:
        inner = ", ".join(f"{type(p).__name__}: {len(p.param_groups)} group(s)" for p in self.parts)
        return f"HybridOptimizer({inner})"


class _HybridState(MutableMapping[Any, Any]):
    """The parts' ``state`` dicts as one mapping; a new entry goes to the part that holds the parameter."""

    def __init__(self, hybrid: HybridOptimizer) -> None:
        self.hybrid = hybrid

    def __getitem__(self, param: Any) -> Any:
        for part in self.hybrid.parts:
            if param in part.state:
                return part.state[param]
        return self.hybrid.part_of(param).state[param]  # a defaultdict: a new, empty state, as torch's

    def __setitem__(self, param: Any, value: Any) -> None:
        for part in self.hybrid.parts:
            if param in part.state:
                part.state[param] = value
                return
        self.hybrid.part_of(param).state[param] = value

    def __delitem__(self, param: Any) -> None:
        for part in self.hybrid.parts:
            if param in part.state:
                del part.state[param]
                return
        raise KeyError(param)

    def __iter__(self) -> Iterator[Any]:
        for part in self.hybrid.parts:
            yield from part.state

    def __len__(self) -> int:
        return sum(len(part.state) for part in self.hybrid.parts)

    def __contains__(self, param: object) -> bool:
        return any(param in part.state for part in self.hybrid.parts)


def _check_disjoint(parts: Sequence[Optimizer]) -> None:
    owner: dict[int, int] = {}
    for index, part in enumerate(parts):
        for group in part.param_groups:
            for param in group["params"]:
                first = owner.setdefault(id(param), index)
                if first != index:
                    raise RecipeError(
                        f"Parts {first} ({type(parts[first]).__name__}) and {index} ({type(part).__name__}) of the"
                        f" HybridOptimizer both hold a parameter of shape {tuple(param.shape)}: each step would update"
                        " it twice. Give every parameter to one part (`muon_split` does)."
                    )


# ---------------------------------------------------------------------------------------------- the factory


class FlatMuon(torch.optim.Muon):
    """torch's `Muon` on each parameter's 2-D view ``(first dim, the rest)``: a conv kernel ``(out, in, k, k)`` as
    ``(out, in x k x k)``, as Jordan et al.'s Muon treats conv filters. The update, the lr adjustment and the state
    are torch's (its ``step``); only the views are this class's. Parameters of 2 dims are taken as they are.
    A parameter sharded as a DTensor (FSDP2, tensor parallelism) has its update gathered whole for Newton-Schulz and
    keeps its shard (`lightning_optim_recipes.sharded_muon.step_sharded`): the unsharded step's numbers.

    Example:
        >>> conv = torch.nn.Conv2d(2, 4, 3)
        >>> optimizer = FlatMuon([conv.weight], lr=0.02)
        >>> conv(torch.randn(1, 2, 5, 5)).sum().backward(); optimizer.step()
        >>> tuple(optimizer.state[conv.weight]["momentum_buffer"].shape)
        (4, 18)
    """

    def __init__(self, params: Any, **options: Any) -> None:
        probe = torch.optim.Muon([torch.zeros(1, 1)], **options)  # torch's own checks and defaults
        Optimizer.__init__(self, params, dict(probe.defaults))
        for group in self.param_groups:
            for param in group["params"]:
                if param.ndim < 2:
                    raise ValueError(f"FlatMuon takes parameters of 2 or more dimensions, got one of size"
                                     f" {param.size()}: give it to AdamW.")

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:  # type: ignore[override]
        """torch's step for the parameters as they are or on their views; the sharded ones with their update
        gathered whole (`step_sharded`)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        super().step()
        for group in self.param_groups:
            step_sharded(self, group)
        return loss

    def _init_group(self, group: MutableMapping[str, Any], params_with_grad: list[torch.Tensor],
                    grads: list[torch.Tensor], muon_momentum_bufs: list[torch.Tensor]) -> bool:
        for param in group["params"]:
            if param.grad is None or is_dtensor(param):  # a sharded matrix: `step_sharded` steps it
                continue
            if torch.is_complex(param):
                raise RuntimeError("Muon does not support complex parameters")
            if param.grad.is_sparse:
                raise RuntimeError("Muon does not support sparse gradients")
            view = param.view(param.shape[0], -1)  # shares the parameter's storage: torch's update writes it
            grad = param.grad.reshape(view.shape)
            params_with_grad.append(view)
            grads.append(grad)
            state = self.state[param]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(grad, memory_format=torch.preserve_format)
            muon_momentum_bufs.append(state["momentum_buffer"])
        return False


def hybrid_optimizer(
    module: nn.Module,
    *,
    muon: Optional[Mapping[str, Any]] = None,
    adamw: Optional[Mapping[str, Any]] = None,
    no_decay: Optional[NoDecayRule] = DEFAULT_NO_DECAY,
    overrides: Optional[Mapping[str, str]] = None,
    head: Union[str, Sequence[str], None] = "auto",
    conv_view: bool = False,
    split: Optional[MuonSplit] = None,
) -> HybridOptimizer:
    """A `HybridOptimizer` of torch's `Muon` over the hidden layers' matrices and AdamW over the rest, split by
    `muon_split` (its `no_decay`, `overrides`, `head` and `conv_view`). Matrices sharded as DTensors (FSDP2's
    ``fully_shard``) get `FlatMuon`, which gathers each update whole for Newton-Schulz.

    Args:
        module: the model.
        muon: Muon's options (``lr``, ``weight_decay``, ``momentum``, ``nesterov``, ``adjust_lr_fn``, ...);
            ``optimizer`` picks another class; ``groups`` maps a group of the split (``hidden``) to its own options.
        adamw: the same for the other part (AdamW by default; ``{'optimizer': torch.optim.Adam}`` for Adam), its
            ``groups`` keyed ``embedding``, ``head``, ``scalar``, ``tensor``, ``hidden`` (each covers its
            ``/no_decay`` group too).
        split: a `MuonSplit` already made (the other split options are then not used).

    Example:
        >>> from lightning_optim_recipes.demos import TinyGPT
        >>> optimizer = hybrid_optimizer(TinyGPT(), muon={"lr": 0.02, "weight_decay": 0.01},
        ...                              adamw={"lr": 3e-4, "weight_decay": 0.01, "betas": (0.9, 0.95)})
        >>> optimizer
        HybridOptimizer(Muon: 1 group(s), AdamW: 2 group(s))
        >>> [(g["name"], g["lr"], g["weight_decay"]) for g in optimizer.param_groups]
        [('hidden', 0.02, 0.01), ('embedding', 0.0003, 0.01), ('scalar/no_decay', 0.0003, 0.0)]
    """
    if split is None:
        split = muon_split(module, no_decay=no_decay, overrides=overrides, head=head, conv_view=conv_view)
    flat = any(row.param.ndim > 2 or is_dtensor(row.param) for row in split.side("Muon"))
    parts = []
    for side, options, default in (("Muon", muon, FlatMuon if flat else torch.optim.Muon),
                                   ("AdamW", adamw, torch.optim.AdamW)):
        options = dict(options or {})
        cls = options.pop("optimizer", default)
        if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
            raise RecipeError(f"`{side.lower()}['optimizer']` must be a torch optimizer class, got {cls!r}.")
        if cls is torch.optim.Muon and flat:
            cls = FlatMuon
        per_group = options.pop("groups", None) or {}
        weight_decay = options.get("weight_decay", 0.1 if cls is torch.optim.Muon or cls is FlatMuon else 0.01)
        groups = split.muon_groups(weight_decay) if side == "Muon" else split.adamw_groups(weight_decay)
        _apply_groups(groups, per_group, side)
        if not groups:
            continue
        try:
            parts.append(cls(groups, **options))
        except (TypeError, ValueError) as err:
            raise RecipeError(f"The {side} part's options do not fit {cls.__name__}: {err}. Change them in"
                              f" `{side.lower()}=`.") from err
    with lr_advice("keywords"):
        optimizer = HybridOptimizer(parts)
    optimizer.split = split
    return optimizer


def _apply_groups(groups: list[dict[str, Any]], options: Mapping[str, Any], side: str) -> None:
    """Each group's own options: ``options[kind]`` for groups ``kind`` and ``kind/no_decay``."""
    for kind, values in options.items():
        if kind not in GROUP_KINDS:  # a known kind the model lacks (no biases: no 'scalar') is fine
            raise RecipeError(
                f"`{side.lower()}['groups']` names {kind!r}, which is not a group of the split: use one of"
                f" {', '.join(repr(k) for k in GROUP_KINDS)} (each covers its '/no_decay' group too)."
            )
        if not isinstance(values, Mapping) or "params" in values or "name" in values:
            raise RecipeError(f"`{side.lower()}['groups'][{kind!r}]` must be a dict of group options such as"
                              f" {{'lr': 0.6}}, got {values!r}.")
        for group in groups:
            if group["name"].partition("/")[0] == kind:
                exempt = group["weight_decay"] == 0.0 and group["name"].endswith("/no_decay")
                group.update(values)
                if exempt:
                    group["weight_decay"] = 0.0
