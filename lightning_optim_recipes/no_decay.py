"""Which parameters get no weight decay: `NoDecayRule` and the default rule `DEFAULT_NO_DECAY`.

No two popular libraries agree on this rule. Ours exempts, in this order of reasons:

================  =======================================================================================
reason            what it matches
================  =======================================================================================
``"model"``       names listed by the model's (or a submodule's) own ``no_weight_decay()`` (timm's
                  convention: ``pos_embed``, ``cls_token``); glob patterns allowed
``"name"``        the rule's own ``names`` (glob patterns on the full parameter name or its last part)
``"bias"``        a parameter registered under the name ``bias`` (not any name containing "bias":
                  a 2-D ``rel_pos_bias_table`` is decayed)
``"module"``      every parameter of a module of one of ``module_types`` (all normalization layers by
                  default: BatchNorm*, LayerNorm, GroupNorm, InstanceNorm*, RMSNorm, LocalResponseNorm
                  and their subclasses)
``"ndim<2"``      every parameter with fewer than 2 dimensions (custom RMSNorm weights, layer-scale gammas)
``"predicate"``   anything the rule's ``predicate(name, param, module)`` returns True for
================  =======================================================================================

Embeddings are decayed by default; ``DEFAULT_NO_DECAY.extend(module_types=(nn.Embedding,))`` exempts them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase
from typing import Optional

import torch
from torch import nn

__all__ = ["DEFAULT_NO_DECAY", "NORM_LAYERS", "NoDecayRule"]

#: Normalization layer types whose parameters are never decayed by the default rule (subclasses included).
NORM_LAYERS: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm1d/2d/3d, SyncBatchNorm, InstanceNorm1d/2d/3d, Lazy variants
    nn.LayerNorm,
    nn.GroupNorm,
    nn.RMSNorm,
    nn.LocalResponseNorm,
    nn.CrossMapLRN2d,
)

Predicate = Callable[[str, torch.Tensor, nn.Module], bool]


@dataclasses.dataclass(frozen=True)
class NoDecayRule:
    """A rule that says which parameters get no weight decay, and why.

    Args:
        names: glob patterns matched against a parameter's full name (``"encoder.pos_embed"``) and its last part
            (``"pos_embed"``).
        module_types: module classes whose parameters are all exempt (subclasses included).
        bias: exempt parameters registered under the name ``bias``.
        one_dim: exempt parameters with fewer than 2 dimensions.
        use_model_hook: exempt the names returned by a ``no_weight_decay()`` method of the model or a submodule.
        predicate: an extra ``predicate(name, param, module) -> bool``; True exempts the parameter.

    Example:
        >>> from torch import nn
        >>> from lightning_optim_recipes import DEFAULT_NO_DECAY, NoDecayRule
        >>> rule = DEFAULT_NO_DECAY.extend(module_types=(nn.Embedding,), names=("cls_token",))
        >>> emb = nn.Embedding(10, 4)
        >>> rule.reason("emb.weight", emb.weight, emb)
        'module'
        >>> NoDecayRule(bias=False, one_dim=False, module_types=()).reason("fc.bias", nn.Linear(2, 2).bias, nn.Linear(2, 2))
    """

    names: tuple[str, ...] = ()
    module_types: tuple[type[nn.Module], ...] = NORM_LAYERS
    bias: bool = True
    one_dim: bool = True
    use_model_hook: bool = True
    predicate: Optional[Predicate] = None

    def __post_init__(self) -> None:
        from lightning_optim_recipes.errors import RecipeError

        if isinstance(self.names, str) or not all(isinstance(n, str) for n in self.names):
            raise RecipeError(f"`NoDecayRule(names=...)` takes a tuple of glob patterns, got {self.names!r}.")
        if not all(isinstance(t, type) and issubclass(t, nn.Module) for t in self.module_types):
            raise RecipeError(
                f"`NoDecayRule(module_types=...)` takes a tuple of `nn.Module` classes, got {self.module_types!r}."
            )
        if self.predicate is not None and not callable(self.predicate):
            raise RecipeError(
                f"`NoDecayRule(predicate=...)` takes a callable `(name, param, module) -> bool`, got {self.predicate!r}."
            )

    def extend(
        self,
        *,
        names: Iterable[str] = (),
        module_types: Iterable[type[nn.Module]] = (),
        predicate: Optional[Predicate] = None,
    ) -> NoDecayRule:
        """A copy of this rule that also exempts `names`, `module_types` and whatever `predicate` returns True for."""
        combined = self.predicate
        if predicate is not None and self.predicate is not None:
            first, second = self.predicate, predicate
            combined = lambda name, param, module: first(name, param, module) or second(name, param, module)  # noqa: E731
        elif predicate is not None:
            combined = predicate
        return dataclasses.replace(
            self,
            names=self.names + tuple(names),
            module_types=self.module_types + tuple(module_types),
            predicate=combined,
        )

    def reason(
        self, name: str, param: torch.Tensor, module: nn.Module, model_names: frozenset[str] = frozenset()
    ) -> Optional[str]:
        """Why the parameter `name` (owned by `module`) gets no weight decay, or None when it is decayed.

        `model_names` are the names collected from ``no_weight_decay()`` hooks (see `model_no_weight_decay`).
        """
        leaf = name.rpartition(".")[2]
        if self.use_model_hook and model_names and _matches(model_names, name, leaf):
            return "model"
        if self.names and _matches(self.names, name, leaf):
            return "name"
        if self.bias and leaf == "bias":
            return "bias"
        if self.module_types and isinstance(module, self.module_types):
            return "module"
        if self.one_dim and param.ndim < 2:
            return "ndim<2"
        if self.predicate is not None and self.predicate(name, param, module):
            return "predicate"
        return None


def _matches(patterns: Iterable[str], name: str, leaf: str) -> bool:
    return any(name == p or leaf == p or fnmatchcase(name, p) for p in patterns)


def model_no_weight_decay(model: nn.Module) -> frozenset[str]:
    """Full parameter names (or patterns) returned by ``no_weight_decay()`` of `model` and its submodules."""
    found: set[str] = set()
    for prefix, module in model.named_modules():
        hook = getattr(module, "no_weight_decay", None)
        if callable(hook):
            found.update(f"{prefix}.{n}" if prefix else n for n in hook())
    return frozenset(found)


#: The default rule: biases, normalization layers, parameters with fewer than 2 dims, and ``no_weight_decay()``.
DEFAULT_NO_DECAY = NoDecayRule()
