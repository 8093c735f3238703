"""What sharded training does to parameters and modules, in one place: DTensor parameters (FSDP2's ``fully_shard``
and tensor parallelism, as Lightning's `ModelParallelStrategy` applies them in ``configure_model``) keep their names
and their global shapes, so param groups, the no-decay rule and Muon's split decide on them as on the unsharded
module; FSDP1 (`FullyShardedDataParallel`, Lightning's `FSDPStrategy`) flattens them, and this module says so before
anything is decided on them.

Nothing here imports `torch.distributed` until a sharded tensor or module is met: an unsharded run pays a
``getattr`` or two.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Optional

import torch
from torch import nn

from lightning_optim_recipes.errors import RecipeError

__all__ = ["FLAT_FIX", "check_fsdp1", "class_name", "fsdp1_flattened", "fsdp2_modules", "full", "is_dtensor",
           "reshard"]

#: The marker FSDP1 sets on every tensor it has flattened (its ``FlatParameter`` and, with ``use_orig_params=True``,
#: each original parameter, which it turns into a 1-D view of its rank's shard): `torch.distributed.fsdp`'s
#: ``_common_utils.FSDP_FLATTENED``.
_FSDP1_MARK = "_fsdp_flattened"

#: The fix every FSDP1 message names.
FLAT_FIX = (
    "Shard with FSDP2 instead: Lightning's `ModelParallelStrategy(data_parallel_size=..., tensor_parallel_size=1)`"
    " with `fully_shard(...)` in `configure_model`, whose DTensor parameters keep their names and shapes"
)


def is_dtensor(tensor: Any) -> bool:
    """Whether `tensor` is a `torch.distributed.tensor.DTensor` (a parameter sharded by FSDP2 or tensor parallelism).

    Example:
        >>> is_dtensor(torch.nn.Parameter(torch.zeros(2, 2)))
        False
    """
    return type(tensor).__name__ == "DTensor" and hasattr(tensor, "full_tensor")


def full(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor: a DTensor's shards gathered (a collective: every rank of its mesh must call it), any other
    tensor as it is.

    Example:
        >>> full(torch.ones(2)).tolist()
        [1.0, 1.0]
    """
    return tensor.full_tensor() if is_dtensor(tensor) else tensor  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------------------- FSDP2


def fsdp2_modules(module: nn.Module) -> tuple[nn.Module, ...]:
    """The modules of `module` (itself included) that FSDP2's ``fully_shard`` has sharded, in registration order.

    Example:
        >>> fsdp2_modules(torch.nn.Linear(2, 2))
        ()
    """
    found = []
    for sub in module.modules():
        if type(sub).__name__.startswith("FSDP") and callable(getattr(sub, "reshard", None)) and \
                callable(getattr(sub, "unshard", None)):
            found.append(sub)
    return tuple(found)


def class_name(module: nn.Module) -> str:
    """The name of `module`'s class as its author wrote it: FSDP2 gives each module it shards a class of its own
    (``FSDPLinear``, over ``Linear``).

    Example:
        >>> class_name(torch.nn.LayerNorm(2))
        'LayerNorm'
    """
    cls = type(module)
    index = getattr(cls, "_orig_cls_mro_index", None)  # FSDPModule's: where the original class is in the MRO
    if isinstance(index, int) and cls.__name__.startswith("FSDP") and index < len(cls.__mro__):
        return cls.__mro__[index].__name__
    return cls.__name__


def reshard(modules: Sequence[nn.Module]) -> None:
    """Free the gathered parameters of FSDP2 `modules` that still hold them and register their shards again.

    FSDP2 keeps the module that ran forward first (its root) gathered after forward until its backward, and copies
    ``requires_grad`` from the shards only when it gathers. A module whose output took no gradient (the generator
    in the critic's turn of a GAN) would keep its gathered parameters, frozen as that turn left them, into the next
    turn; resharding after each turn makes the next forward gather the stepped values with the turn's
    ``requires_grad``. A module already sharded costs a flag test."""
    for module in modules:
        module.reshard()  # type: ignore[operator]


# ------------------------------------------------------------------------------------------------------- FSDP1


def fsdp1_flattened(params: Iterable[Any]) -> Optional[str]:
    """How FSDP1 flattened the first flattened tensor of `params`: ``"flat"`` (its ``FlatParameter``, without
    ``use_orig_params=True``), ``"views"`` (an original parameter that ``use_orig_params=True`` turned into a 1-D view
    of its rank's shard), or None (nothing flattened)."""
    for param in params:
        if getattr(param, _FSDP1_MARK, False):
            return "flat" if getattr(param, "_is_flat_param", False) else "views"  # FlatParameter's own flag
    return None


def check_fsdp1(module: nn.Module, what: str, needs_shapes: bool) -> None:
    """Raise a `RecipeError` before `what` decides anything on parameters that FSDP1 flattened: its
    ``FlatParameter`` (without ``use_orig_params=True``) has lost the parameters' names, and with
    ``use_orig_params=True`` each parameter is a 1-D view of its rank's shard, so a rule that reads shapes
    (`needs_shapes`: the no-decay rule's ``ndim < 2``, Muon's 2-D matrices) would decide on the wrong ones.

    Example:
        >>> check_fsdp1(torch.nn.Linear(2, 2), "`param_groups`", needs_shapes=True)  # nothing flattened: no error
    """
    first = next(iter(module.parameters()), None)
    how = fsdp1_flattened((first,)) if first is not None else None
    if how is None:
        return
    if how == "flat":
        names = [name for name, p in module.named_parameters() if getattr(p, _FSDP1_MARK, False)][:2]
        raise RecipeError(
            f"{what} got the flat parameters of FSDP1 (`FullyShardedDataParallel` without `use_orig_params=True`):"
            f" {', '.join(repr(n) for n in names)} hold every parameter of the wrapped modules in one 1-D tensor, so"
            " no group can be formed by name, module type or shape (every weight would land in one group). Pass"
            " `FSDPStrategy(use_orig_params=True)` (Lightning's default; it keeps the names), or: " + FLAT_FIX + "."
        )
    if needs_shapes:
        raise RecipeError(
            f"{what} got parameters that FSDP1 (`FullyShardedDataParallel(use_orig_params=True)`) has flattened into"
            " 1-D views of each rank's shard: their names are right but their shapes are not (a Linear's weight"
            " looks 1-D), so a rule that reads shapes (the no-decay rule's `ndim < 2`, Muon's 2-D matrices) would"
            " decide on the wrong parameters. " + FLAT_FIX + "; or, for `param_groups`, decide by name and module"
            " type only: `no_decay=dataclasses.replace(DEFAULT_NO_DECAY, one_dim=False)`."
        )
