"""Which parameters get no weight decay: `NoDecayRule` and the default rule `DEFAULT_NO_DECAY`.

No two popular libraries agree on this rule. Ours exempts, in this order of reasons:

===================  ====================================================================================
reason               what it matches
===================  ====================================================================================
``"model"``          names listed by the model's (or a submodule's) own ``no_weight_decay()`` (timm's
                     convention: ``pos_embed``, ``cls_token``); glob patterns allowed
``"name"``           the rule's own ``names`` (glob patterns on the full parameter name or its last part)
``"position/token"`` a parameter registered directly (not an ``nn.Embedding``'s weight) under one of the
                     rule's ``positions`` names (`POSITION_TOKEN_NAMES`): absolute position embeddings
                     (``pos_embed``, ``absolute_pos_embed``, ``position_embeddings``), class, distillation,
                     mask and register tokens (``cls_token``, ``dist_token``, ``distillation_token``,
                     ``mask_token``, ``reg_token``) and relative position bias tables
                     (``relative_position_bias_table``, ``rel_pos_bias_table``, ``attention_biases``)
``"bias"``           a parameter registered under the name ``bias``, or a name ending in ``_bias`` or
                     starting with ``bias_`` (DeBERTa's ``q_bias``/``v_bias``, ``nn.MultiheadAttention``'s
                     ``in_proj_bias``, ``bias_k``, ``bias_v``); not any name that contains "bias"
``"module"``         every parameter of a module of one of ``module_types`` (all normalization layers by
                     default: BatchNorm*, LayerNorm, GroupNorm, InstanceNorm*, RMSNorm, LocalResponseNorm
                     and their subclasses), or of a class whose name ends with one of theirs (a norm layer
                     that does not subclass torch's: DeBERTa's ``DebertaLayerNorm``, T5's ``T5LayerNorm``,
                     LLaMA's ``LlamaRMSNorm``, apex's ``FusedLayerNorm``)
``"ndim<2"``         every parameter with fewer than 2 dimensions (custom RMSNorm weights, layer-scale gammas)
``"predicate"``      anything the rule's ``predicate(name, param, module)`` returns True for
===================  ====================================================================================

The ``"position/token"`` names are those the vision-transformer families use where the papers' own training code
exempts them (ViT and DeiT: position embeddings and class/distillation tokens; Swin and BEiT: relative position
bias tables), so a model that declares nothing (Hugging Face's ViT, DeiT, BEiT, Swin) is treated as its authors
trained it. Token embeddings stay decayed: BERT's ``embeddings.position_embeddings`` is an ``nn.Embedding`` whose
parameter is ``embeddings.position_embeddings.weight``. Decomposed relative positions (``rel_pos_h``,
``rel_pos_w`` of SAM, ViTDet and MViTv2) stay decayed, as in ViTDet's and MViTv2's own configurations.
``DEFAULT_NO_DECAY.extend(module_types=(nn.Embedding,))`` exempts embeddings too.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Optional, cast

import torch
from torch import nn

__all__ = ["DEFAULT_NO_DECAY", "NORM_LAYERS", "POSITION_TOKEN_NAMES", "NoDecayRule"]

#: Normalization layer types whose parameters are never decayed by the default rule (subclasses included).
NORM_LAYERS: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm1d/2d/3d, SyncBatchNorm, InstanceNorm1d/2d/3d, Lazy variants
    nn.LayerNorm,
    nn.GroupNorm,
    nn.RMSNorm,
    nn.LocalResponseNorm,
    nn.CrossMapLRN2d,
)

#: Absolute position embeddings registered directly (timm's ViT/DeiT/BEiT, Swin v1, Hugging Face's ViT/DeiT/Swin).
ABSOLUTE_POSITION_NAMES = ("pos_embed", "absolute_pos_embed", "position_embeddings")
#: Class, distillation, mask and register tokens (timm; Hugging Face calls DeiT's ``distillation_token``).
TOKEN_NAMES = ("cls_token", "dist_token", "distillation_token", "mask_token", "reg_token")
#: Relative position bias tables (Swin, BEiT; LeViT and EfficientFormer call theirs ``attention_biases``).
RELATIVE_POSITION_NAMES = ("relative_position_bias_table", "rel_pos_bias_table", "attention_biases")
#: The names the default rule exempts as ``"position/token"`` when a module registers them directly.
POSITION_TOKEN_NAMES: tuple[str, ...] = ABSOLUTE_POSITION_NAMES + TOKEN_NAMES + RELATIVE_POSITION_NAMES

Predicate = Callable[[str, torch.Tensor, nn.Module], bool]

_GLOB_CHARS = frozenset("*?[")


@dataclasses.dataclass(frozen=True)
class NoDecayRule:
    """A rule that says which parameters get no weight decay, and why.

    Args:
        names: glob patterns matched against a parameter's full name (``"encoder.pos_embed"``) and its last part
            (``"pos_embed"``). `param_groups` warns (`RecipeWarning`) about a pattern that matches no parameter.
        module_types: module classes whose parameters are all exempt (subclasses included, and classes whose name
            ends with one of their names or of torch's subclasses': ``DebertaLayerNorm`` for ``nn.LayerNorm``).
        bias: exempt parameters registered under the name ``bias``, ``<x>_bias`` or ``bias_<x>``.
        one_dim: exempt parameters with fewer than 2 dimensions.
        use_model_hook: exempt the names returned by a ``no_weight_decay()`` method of the model or a submodule.
        predicate: an extra ``predicate(name, param, module) -> bool``; True exempts the parameter.
        positions: names of position embeddings, tokens and relative position bias tables that are exempt when a
            module registers them directly (not as an ``nn.Embedding``'s weight); ``()`` decays them.

    Example:
        >>> from torch import nn
        >>> from lightning_optim_recipes import DEFAULT_NO_DECAY, NoDecayRule
        >>> rule = DEFAULT_NO_DECAY.extend(module_types=(nn.Embedding,), names=("cls_token",))
        >>> emb = nn.Embedding(10, 4)
        >>> rule.reason("emb.weight", emb.weight, emb)
        'module'
        >>> embeddings = nn.Module()  # Hugging Face's ViTEmbeddings registers its position embeddings directly
        >>> embeddings.position_embeddings = nn.Parameter(torch.zeros(1, 5, 4))
        >>> DEFAULT_NO_DECAY.reason("embeddings.position_embeddings", embeddings.position_embeddings, embeddings)
        'position/token'
        >>> NoDecayRule(bias=False, one_dim=False, module_types=()).reason("fc.bias", nn.Linear(2, 2).bias, nn.Linear(2, 2))
    """

    names: tuple[str, ...] = ()
    module_types: tuple[type[nn.Module], ...] = NORM_LAYERS
    bias: bool = True
    one_dim: bool = True
    use_model_hook: bool = True
    predicate: Optional[Predicate] = None
    positions: tuple[str, ...] = POSITION_TOKEN_NAMES

    def __post_init__(self) -> None:
        from lightning_optim_recipes.errors import RecipeError

        for field in ("names", "positions", "module_types"):  # any iterable (a list from a config) becomes a tuple
            value = getattr(self, field)
            if not isinstance(value, (str, tuple)) and isinstance(value, Iterable):
                object.__setattr__(self, field, tuple(value))
        for field, what in (("names", "glob patterns"), ("positions", "parameter names")):
            value = getattr(self, field)
            if not isinstance(value, tuple) or not all(isinstance(n, str) for n in value):
                raise RecipeError(f"`NoDecayRule({field}=...)` takes a tuple of {what}, got {value!r}.")
        if not isinstance(self.module_types, tuple) or not all(
            isinstance(t, type) and issubclass(t, nn.Module) for t in self.module_types
        ):
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
        if self.use_model_hook and model_names and _compiled(frozenset(model_names)).matches(name, leaf):
            return "model"
        if self.names and _compiled(self.names).matches(name, leaf):
            return "name"
        if leaf in self.positions and not isinstance(module, nn.Embedding):
            return "position/token"
        if self.bias and is_bias_name(leaf):
            return "bias"
        if self.module_types and is_module_type(cast(Any, type(module)), self.module_types):
            return "module"
        if self.one_dim and param.ndim < 2:
            return "ndim<2"
        if self.predicate is not None and self.predicate(name, param, module):
            return "predicate"
        return None


class _Patterns:
    """Patterns matched as `NoDecayRule` does: equal to the full name or its last part, or a glob on the full name."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.literals = frozenset(patterns)
        self.globs = tuple(p for p in self.literals if _GLOB_CHARS.intersection(p))
        self.regex = re.compile("|".join(fnmatch.translate(p) for p in self.globs)) if self.globs else None

    def matches(self, name: str, leaf: str) -> bool:
        return name in self.literals or leaf in self.literals or (self.regex is not None and bool(self.regex.match(name)))


@functools.lru_cache(maxsize=64)
def _compiled(patterns: Iterable[str]) -> _Patterns:
    return _Patterns(patterns)


def is_bias_name(leaf: str) -> bool:
    """Whether a parameter registered as `leaf` is a bias: ``bias``, ``q_bias``, ``in_proj_bias``, ``bias_k``.

    Example:
        >>> [is_bias_name(n) for n in ("bias", "q_bias", "bias_k", "biased_weight", "relative_position_bias_table")]
        [True, True, True, False, False]
    """
    return leaf == "bias" or leaf.endswith("_bias") or leaf.startswith("bias_")


@functools.lru_cache(maxsize=64)
def _type_names(types: tuple[Any, ...]) -> tuple[str, ...]:
    """The class names a module's class may end with to count as one of `types`: theirs, and those of torch's own
    subclasses (``BatchNorm2d`` for torch's ``_NormBase``)."""
    names: set[str] = set()
    for cls in types:
        stack: list[type] = [cls]
        while stack:
            current = stack.pop()
            if not current.__name__.startswith("_"):
                names.add(current.__name__)
            subclasses: list[type] = current.__subclasses__()
            stack.extend(sub for sub in subclasses if sub.__module__.startswith("torch."))
    return tuple(sorted(names))


@functools.lru_cache(maxsize=1024)
def is_module_type(cls: Any, types: tuple[Any, ...]) -> bool:
    """Whether modules of class `cls` count as one of `types`: a subclass, or a class (or a base) whose name ends with
    the name of one of them (a norm layer that does not subclass torch's, such as DeBERTa's ``DebertaLayerNorm``).

    Example:
        >>> class DebertaLayerNorm(nn.Module): ...
        >>> is_module_type(DebertaLayerNorm, NORM_LAYERS), is_module_type(nn.Linear, NORM_LAYERS)
        (True, False)
    """
    if not types:
        return False
    if issubclass(cls, types):
        return True
    names = _type_names(types)
    return any(klass.__name__.endswith(names) for klass in cls.__mro__ if klass.__module__ != "torch.nn.modules.module")


def _hook_lookup(cls: type) -> bool:
    """Whether `getattr(module, "no_weight_decay")` must be asked for every instance of `cls` (the class defines it,
    or overrides attribute lookup); otherwise only instance attributes and submodules of that name can hold one."""
    return (
        hasattr(cls, "no_weight_decay")
        or getattr(cls, "__getattr__", None) is not nn.Module.__getattr__
        or cls.__getattribute__ is not object.__getattribute__
    )


def no_weight_decay_hook(module: nn.Module) -> Optional[Callable[[], Iterable[str]]]:
    """``module.no_weight_decay`` when it is callable, found without an AttributeError for modules without one."""
    if (
        not _hook_lookup(type(module))
        and "no_weight_decay" not in module.__dict__
        and "no_weight_decay" not in module._modules
    ):
        return None
    hook = getattr(module, "no_weight_decay", None)
    return hook if callable(hook) else None


def model_no_weight_decay(model: nn.Module) -> frozenset[str]:
    """Full parameter names (or patterns) returned by ``no_weight_decay()`` of `model` and its submodules."""
    found: set[str] = set()
    for prefix, module in model.named_modules():
        hook = no_weight_decay_hook(module)
        if hook is not None:
            found.update(f"{prefix}.{n}" if prefix else n for n in hook())
    return frozenset(found)


class Exemptions:
    """`NoDecayRule` compiled for one walk over a model (used by `param_groups`; same decisions as `reason`).

    Per module, `plan` gives what most parameters need: whether the whole module is exempt and the set of exempt
    parameter names (``bias``, position/token names, literal ``no_weight_decay()`` names). Parameters need their
    full name only for glob patterns, the rule's own ``names`` (whose matches are recorded, to warn about patterns
    that match nothing) and the predicate. ``no_weight_decay()`` names are added as the walk meets their modules,
    which the walk does before any parameter they can name.
    """

    def __init__(self, rule: NoDecayRule) -> None:
        self.rule = rule
        self.one_dim = rule.one_dim
        self.predicate = rule.predicate
        self.use_model_hook = rule.use_model_hook
        self.names = _Patterns(rule.names) if rule.names else None
        self.matched: set[str] = set()
        self.types: dict[type, tuple[bool, bool, bool]] = {}
        self._model_leaves: set[str] = set()
        self.model_by_owner: dict[str, set[str]] = {}
        self._model_globs: list[str] = []
        self._model_regex: Optional[re.Pattern[str]] = None
        self.leaves_plain: frozenset[str] = frozenset()
        self.leaves_embedding: frozenset[str] = frozenset()
        self._rebuild_leaves()

    def _rebuild_leaves(self) -> None:
        base = ({"bias"} if self.rule.bias else set()) | self._model_leaves
        self.leaves_embedding = frozenset(base)
        self.leaves_plain = frozenset(base.union(self.rule.positions))

    @property
    def needs_names(self) -> bool:
        """Whether every parameter's full name must be built (glob patterns or the rule's own names)."""
        return self.names is not None or self._model_regex is not None

    def add_hook(self, path: str, module: nn.Module) -> None:
        """Add the names of `module`'s ``no_weight_decay()`` hook (when it has one) found at `path`."""
        hook = no_weight_decay_hook(module)
        if hook is None:
            return
        prefix = f"{path}." if path else ""
        for raw in hook():
            pattern = f"{prefix}{raw}"
            if _GLOB_CHARS.intersection(pattern):
                self._model_globs.append(pattern)
                self._model_regex = re.compile("|".join(fnmatch.translate(p) for p in self._model_globs))
            owner, _, leaf = pattern.rpartition(".")
            if owner:
                self.model_by_owner.setdefault(owner, set()).add(leaf)  # equal to the full name
            else:
                self._model_leaves.add(pattern)  # equal to the last part of any name
        self._rebuild_leaves()

    def type_info(self, cls: type) -> tuple[bool, bool, bool]:
        """(ask every instance for a ``no_weight_decay`` hook, every parameter is exempt, is an embedding) of `cls`."""
        info = self.types.get(cls)
        if info is None:
            types = self.rule.module_types
            info = self.types[cls] = (
                _hook_lookup(cls),
                is_module_type(cls, types),
                issubclass(cls, nn.Embedding),
            )
        return info

    def plan(self, module: nn.Module, path: str) -> tuple[bool, frozenset[str]]:
        """(every parameter of `module` is exempt, the exempt parameter names of `module` at `path`)."""
        info = self.type_info(type(module))
        leaves = self.leaves_embedding if info[2] else self.leaves_plain
        if self.model_by_owner:
            extra = self.model_by_owner.get(path)
            if extra:
                leaves = leaves | extra
        return info[1], self.with_biases(leaves, module._parameters)

    def with_biases(self, leaves: frozenset[str], params: Mapping[str, object]) -> frozenset[str]:
        """`leaves` and the names of `params` that are biases by `is_bias_name` beyond plain ``bias`` (a module's
        few names, checked once per module)."""
        if not self.rule.bias:
            return leaves
        extra = [leaf for leaf in params if leaf != "bias" and is_bias_name(leaf)]
        return leaves | frozenset(extra) if extra else leaves

    def named(self, name: str, leaf: str) -> bool:
        """Whether the full name is exempt by a glob of the model's hooks or by the rule's names (recorded)."""
        hit = False
        names = self.names
        if names is not None:
            if name in names.literals:
                self.matched.add(name)
                hit = True
            if leaf in names.literals:
                self.matched.add(leaf)
                hit = True
            if names.regex is not None and names.regex.match(name):
                self.matched.update(p for p in names.globs if fnmatch.fnmatchcase(name, p))
                hit = True
        if not hit and self._model_regex is not None:
            hit = bool(self._model_regex.match(name))
        return hit

    def exempt(self, module: nn.Module, path: str, leaf: str, param: torch.Tensor) -> bool:
        """The full decision for one name of a parameter (what `param_groups` inlines for speed)."""
        name = f"{path}.{leaf}" if path else leaf
        hit = self.named(name, leaf) if self.needs_names else False
        whole, leaves = self.plan(module, path)
        if hit or whole or leaf in leaves or (self.one_dim and param.ndim < 2):
            return True
        return self.predicate is not None and bool(self.predicate(name, param, module))

    def unmatched(self) -> list[str]:
        """The rule's own name patterns that matched no name seen so far, in the rule's order."""
        return [p for p in dict.fromkeys(self.rule.names) if p not in self.matched]


#: The default rule: biases, normalization layers, parameters with fewer than 2 dims, position embeddings, tokens and
#: relative position bias tables registered directly, and ``no_weight_decay()``.
DEFAULT_NO_DECAY = NoDecayRule()
