"""`muon_split`: which parameters Muon trains and which AdamW trains, decided per parameter and reported.

Muon (Jordan et al. 2024) orthogonalizes the update of a 2-D weight matrix; it is meant for the weights of hidden
layers. Everything else goes to AdamW beside it. The rule, in this order of reasons:

====================  =========  ============================================================================
group                 optimizer  parameters
====================  =========  ============================================================================
``override``          either     whatever `overrides` maps to ``"muon"`` or ``"adamw"`` (module-path patterns,
                                 as in `param_groups`; the most specific wins)
``embedding``         AdamW      an ``nn.Embedding``'s (or ``EmbeddingBag``'s) weight, anything tied to one (a
                                 tied output head included: one parameter, counted once), and position
                                 embeddings and tokens registered directly (`POSITION_TOKEN_NAMES`, and any
                                 name of a position embedding: ``pos_emb``, ``position_embedding``, ...)
``head``              AdamW      the layer producing the logits, looked for outside the repeated blocks
                                 (``blocks.N``): a module named ``lm_head``, ``head``, ``classifier`` or
                                 ``output``, else one tied to an embedding, else a Linear with as many outputs as
                                 the largest embedding has rows (the vocabulary), else the last module registered
                                 with a 2-D weight; or the modules named by ``head=``. When that is a guess, a
                                 `RecipeWarning` says what it took
``scalar``            AdamW      norm layers' parameters, biases, and every 0-D or 1-D parameter
``tensor``            AdamW      parameters of more than 2 dimensions: conv kernels (``conv_view=True`` gives
                                 them to Muon, on their 2-D view ``(out, in x kernel)``) and stacked weights
                                 (experts: torch's Muon orthogonalizes 2-D matrices only)
``hidden``            Muon       every other 2-D parameter: the weights of hidden layers
====================  =========  ============================================================================

Within each optimizer, weight decay follows the no-decay rule (`DEFAULT_NO_DECAY`): a group ``kind`` holds the
decayed parameters of that kind, ``kind/no_decay`` the exempt ones.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Optional, Union

from torch import nn

from lightning_optim_recipes.errors import RecipeError, warn
from lightning_optim_recipes.no_decay import (
    DEFAULT_NO_DECAY,
    NORM_LAYERS,
    POSITION_TOKEN_NAMES,
    NoDecayRule,
    model_no_weight_decay,
)
from lightning_optim_recipes.sharding import check_fsdp1, class_name

__all__ = ["HEAD_NAMES", "MuonSplit", "SplitRow", "decide_split", "muon_split"]

#: The module names taken for the output head (the layer producing the logits) when ``head="auto"``, outside the
#: repeated blocks (``blocks.0.output``, a block's own projection, is not the head).
HEAD_NAMES: tuple[str, ...] = ("lm_head", "head", "classifier", "output")
#: A parameter registered directly under a name like these is a position embedding (``pos_emb``, ``pos_embedding``,
#: ``position_embedding``, CLIP's ``positional_embedding``, ``absolute_pos_embed``), beside `POSITION_TOKEN_NAMES`.
POSITION_NAME = re.compile(r"(?:^|_)pos(?:ition(?:al)?)?_?emb", re.IGNORECASE)

_SIDES = ("muon", "adamw")
_EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag)
ParamGroup = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class SplitRow:
    """One parameter of a split: its first name, shape, optimizer, group and why.

    Attributes:
        name: its first name in registration order (a tied parameter's other names are in `also`).
        shape: its shape.
        optimizer: ``"Muon"`` or ``"AdamW"`` (the optimizer beside Muon, whatever its class).
        group: the param group it lands in (``"hidden"``, ``"embedding/no_decay"``, ...).
        why: the reason, in words.
        decay: whether it is decayed.
        also: its other names (tied parameters).
    """

    name: str
    shape: tuple[int, ...]
    optimizer: str
    group: str
    why: str
    decay: bool
    also: tuple[str, ...] = ()
    param: Any = dataclasses.field(default=None, repr=False, compare=False)


@dataclasses.dataclass(frozen=True)
class MuonSplit:
    """What `muon_split` decided: one `SplitRow` per parameter, in registration order.

    ``muon_groups(weight_decay)`` and ``adamw_groups(weight_decay)`` are the param groups of each side (plain
    torch dicts with ``'params'``, ``'weight_decay'`` and ``'name'``); ``table()`` is the report.
    """

    rows: tuple[SplitRow, ...]
    #: Why the output head was a guess (`muon_split` warns with it), or None when the split is sure of it.
    doubt: Optional[str] = None

    def side(self, optimizer: str) -> tuple[SplitRow, ...]:
        """The rows of one side: ``"Muon"`` or ``"AdamW"``."""
        return tuple(row for row in self.rows if row.optimizer == optimizer)

    @property
    def muon_params(self) -> list[Any]:
        """The parameters Muon trains, in registration order."""
        return [row.param for row in self.side("Muon")]

    @property
    def adamw_params(self) -> list[Any]:
        """The parameters AdamW trains, in registration order."""
        return [row.param for row in self.side("AdamW")]

    def muon_groups(self, weight_decay: float) -> list[ParamGroup]:
        """Muon's param groups: ``'hidden'`` (and ``'hidden/no_decay'`` when the no-decay rule exempts any)."""
        return _groups(self.side("Muon"), weight_decay)

    def adamw_groups(self, weight_decay: float) -> list[ParamGroup]:
        """AdamW's param groups, one per group name, in order of first appearance."""
        return _groups(self.side("AdamW"), weight_decay)

    def table(self) -> str:
        """The report: parameter, shape, optimizer, group and why, one line per parameter."""
        lines = [("parameter", "shape", "optimizer", "group", "why")]
        lines += [(row.name, "x".join(map(str, row.shape)) or "()", row.optimizer, row.group, row.why)
                  for row in self.rows]
        widths = [max(len(line[c]) for line in lines) for c in range(5)]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)

    def __str__(self) -> str:
        return self.table()


def muon_split(
    module: nn.Module,
    *,
    no_decay: Optional[NoDecayRule] = DEFAULT_NO_DECAY,
    overrides: Optional[Mapping[str, str]] = None,
    head: Union[str, Sequence[str], None] = "auto",
    conv_view: bool = False,
    include_frozen: bool = False,
) -> MuonSplit:
    """Decide, per parameter, whether Muon or AdamW trains it, and why (see this module for the rule).

    Args:
        module: the model.
        no_decay: the no-decay rule applied within each side (`DEFAULT_NO_DECAY`; None decays everything).
        overrides: module-path patterns (``"blocks.*.attn"``, a parameter's full name) mapped to ``"muon"`` or
            ``"adamw"``; the most specific pattern wins. Moving a parameter to Muon that torch's Muon refuses
            (not 2-D) or that is not a hidden layer's (an embedding, a tied weight, the head) is a `RecipeError`.
        head: ``"auto"`` (outside the repeated blocks: a module named as in `HEAD_NAMES`, else a weight tied to an
            embedding, else a Linear with as many outputs as the largest embedding has rows, else the last module
            registered with a 2-D weight; a `RecipeWarning` says when that was a guess), module paths of the output
            head, or None (no head).
        conv_view: give conv kernels (parameters of a ``Conv1d/2d/3d``) to Muon on their 2-D view ``(out, in x
            kernel)``, as Jordan et al.'s Muon does for conv filters.
        include_frozen: also split parameters with ``requires_grad=False``.

    Example:
        >>> model = nn.Module()
        >>> model.embed, model.block, model.norm = nn.Embedding(10, 4), nn.Linear(4, 4), nn.LayerNorm(4)
        >>> model.lm_head = nn.Linear(4, 10, bias=False)
        >>> model.lm_head.weight = model.embed.weight  # tied
        >>> split = muon_split(model)
        >>> print(split.table())
        parameter     shape  optimizer  group            why
        embed.weight  10x4   AdamW      embedding        embedding (Embedding), tied to the head lm_head.weight
        block.weight  4x4    Muon       hidden           2-D weight of a hidden layer
        block.bias    4      AdamW      scalar/no_decay  bias
        norm.weight   4      AdamW      scalar/no_decay  norm layer (LayerNorm)
        norm.bias     4      AdamW      scalar/no_decay  norm layer (LayerNorm)
        >>> [(g["name"], len(g["params"]), g["weight_decay"]) for g in split.adamw_groups(weight_decay=0.1)]
        [('embedding', 1, 0.1), ('scalar/no_decay', 3, 0.0)]
    """
    split = decide_split(module, no_decay=no_decay, overrides=overrides, head=head, conv_view=conv_view,
                         include_frozen=include_frozen)
    if split.doubt is not None:
        warn(split.doubt)
    return split


def decide_split(
    module: nn.Module,
    *,
    no_decay: Optional[NoDecayRule] = DEFAULT_NO_DECAY,
    overrides: Optional[Mapping[str, str]] = None,
    head: Union[str, Sequence[str], None] = "auto",
    conv_view: bool = False,
    include_frozen: bool = False,
) -> MuonSplit:
    """`muon_split` without its warning: a head it had to guess is only said in the split's ``doubt``."""
    if not isinstance(module, nn.Module):
        raise RecipeError(f"`muon_split` takes an `nn.Module`, got {type(module).__name__}.")
    check_fsdp1(module, "`muon_split`", needs_shapes=True)  # Muon needs each matrix's shape
    if no_decay is not None and not isinstance(no_decay, NoDecayRule):
        raise RecipeError(f"`no_decay` must be a `NoDecayRule` or None, got {no_decay!r}.")
    patterns = _check_overrides(overrides)
    names = _names(module)
    heads, doubt = _heads(module, head, names)
    hooks = model_no_weight_decay(module) if no_decay is not None and no_decay.use_model_hook else frozenset()
    used: set[str] = set()
    rows = []
    for entries in names.values():
        param = entries[0][2]
        if not (include_frozen or param.requires_grad):
            continue
        kind, why = _kind(entries, heads, conv_view)
        side = "muon" if kind == "hidden" else "adamw"
        chosen = _override(patterns, entries)
        if chosen is not None:
            pattern, wanted = chosen
            used.add(pattern)
            if wanted == "muon" and side != "muon":
                _refuse(pattern, entries, kind, why, conv_view)
            if wanted != side:
                side, why = wanted, f"override {pattern!r} (else: {why})"
        exempt = no_decay is not None and any(
            no_decay.reason(name, param, owner, hooks) is not None for name, owner, _ in entries)
        group = kind if not exempt else f"{kind}/no_decay"
        rows.append(SplitRow(entries[0][0], tuple(param.shape), "Muon" if side == "muon" else "AdamW", group, why,
                             not exempt, tuple(name for name, _, _ in entries[1:]), param))
    unused = [p for p in patterns if p not in used]
    if unused:
        examples = ", ".join(repr(n) for n in list(names_of(module))[:4])
        raise RecipeError(
            f"`overrides` pattern {unused[0]!r} matches no trainable parameter of {type(module).__name__}. Patterns"
            f" match module paths or parameter names such as {examples}; fix or remove it."
        )
    return MuonSplit(tuple(rows), doubt)


def names_of(module: nn.Module) -> Iterable[str]:
    """Every parameter name of `module`, tied parameters under each of their names."""
    return (name for name, _ in module.named_parameters(remove_duplicate=False))


# ------------------------------------------------------------------------------------------------------ the rule


def _names(module: nn.Module) -> dict[int, list[tuple[str, nn.Module, nn.Parameter]]]:
    """Per parameter (by id, in registration order): every (name, owning module, parameter)."""
    found: dict[int, list[tuple[str, nn.Module, nn.Parameter]]] = {}
    for path, owner in module.named_modules(remove_duplicate=False):
        for leaf, param in owner._parameters.items():
            if param is not None:
                found.setdefault(id(param), []).append((f"{path}.{leaf}" if path else leaf, owner, param))
    return found


def _heads(module: nn.Module, head: Any, names: Mapping[int, list[tuple[str, nn.Module, nn.Parameter]]]
           ) -> tuple[dict[int, str], Optional[str]]:
    """The head modules (by id) and how each was found; and why the choice is a guess (None when it is not)."""
    if head is None:
        return {}, None
    if head != "auto":
        paths = [head] if isinstance(head, str) else list(head)
        found = {}
        for path in paths:
            try:
                found[id(module.get_submodule(path))] = f"head (head={path!r})"
            except AttributeError:
                children = ", ".join(repr(n) for n, _ in module.named_children()) or "none"
                raise RecipeError(
                    f"`head` names {path!r}, but {type(module).__name__} has no such submodule (its children:"
                    f" {children}). Give the path of the layer that produces the logits, e.g. head='lm_head'."
                ) from None
        return found, None
    with_weight = [(path, m) for path, m in module.named_modules() if path and not isinstance(m, _EMBEDDINGS)
                   and isinstance(m._parameters.get("weight"), nn.Parameter) and m._parameters["weight"].ndim == 2]
    outside = [(path, m) for path, m in with_weight if not _in_block(path)]
    named = {id(m): f"head (named {path.rpartition('.')[2]!r})" for path, m in outside
             if path.rpartition(".")[2] in HEAD_NAMES}
    if named:
        return named, None
    for entries in names.values():  # a weight tied to an embedding and used by another module: the tied head
        owners = [owner for _, owner, _ in entries]
        if len(entries) > 1 and any(isinstance(o, _EMBEDDINGS) for o in owners):
            return {id(o): "head (tied to an embedding)" for o in owners if not isinstance(o, _EMBEDDINGS)}, None
    embeddings = [(path, m) for path, m in module.named_modules() if isinstance(m, _EMBEDDINGS)]
    if embeddings:  # the logits over the vocabulary: as many outputs as the largest embedding (the tokens') has rows
        vocab_path, vocab = max(embeddings, key=lambda pm: pm[1].num_embeddings)
        sized = [(path, m) for path, m in outside
                 if isinstance(m, nn.Linear) and m.out_features == vocab.num_embeddings]
        if sized:
            path, chosen = sized[-1]
            why = f"head ({vocab.num_embeddings} outputs, the rows of embedding {vocab_path!r})"
            doubt = None
            if len(sized) > 1 and chosen is not outside[-1][1]:  # several fit, and the last registered is another
                others = _quoted([p for p, _ in sized[:-1]])
                doubt = _doubt(module, path, f"{others} also {'has' if len(sized) == 2 else 'have'}"
                               f" {vocab.num_embeddings} outputs, the rows of embedding {vocab_path!r}, and"
                               f" {outside[-1][0]!r} is registered last; it took {path!r}, the last of those sized"
                               f" as the vocabulary, and trains {others} with Muon", [p for p, _ in sized[:-1]])
            return {id(chosen): why}, doubt
    last = outside or with_weight
    if not last:
        return {}, None
    path, chosen = last[-1]
    lookalikes = [p for p, _ in with_weight if _in_block(p) and p.rpartition(".")[2] in HEAD_NAMES and p != path]
    doubt = None
    if lookalikes:  # named like a head, but one per block: the blocks' own layers, or the head nested in a block?
        one = len(lookalikes) == 1
        doubt = _doubt(module, path, f"{_quoted(lookalikes)} {'is' if one else 'are'} named like a head but inside"
                       f" repeated blocks, so {'it trains' if one else 'they train'} with Muon as hidden"
                       f" {'layer' if one else 'layers'}, and no layer is tied to an embedding or sized as its"
                       f" vocabulary; it took {path!r}, the last layer registered, as the head", lookalikes)
    return {id(chosen): f"head (the last layer registered, {path!r}: name another with head=)"}, doubt


def _in_block(path: str) -> bool:
    """Whether the module at `path` is inside one of repeated blocks: an index before its own name
    (``blocks.0.output``, ``transformer.h.1.mlp.c_fc``; not ``4`` of a Sequential)."""
    return any(part.isdigit() for part in path.split(".")[:-1])


def _quoted(paths: Sequence[str]) -> str:
    shown = [repr(p) for p in paths[:4]] + ([f"{len(paths) - 4} more"] if len(paths) > 4 else [])
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def _doubt(module: nn.Module, chosen: str, reason: str, others: Sequence[str]) -> str:
    """The warning of a head `muon_split` had to guess: what it took, why it is unsure, and how to say otherwise."""
    pattern = ".".join("*" if part.isdigit() else part for part in others[0].split("."))
    return (
        f"`muon_split` cannot tell the output head of {type(module).__name__} for sure: {reason}. If another layer"
        f" produces the logits, name it: head={others[-1]!r} (the head trains with AdamW, beside Muon); to train"
        f" {pattern!r} with AdamW as well, add overrides={{{pattern!r}: 'adamw'}}. Naming the head (head={chosen!r}"
        " if it is right) silences this, as does `warnings.filterwarnings('ignore', '.*cannot tell the output"
        " head')`."
    )


def _kind(entries: list[tuple[str, nn.Module, nn.Parameter]], heads: Mapping[int, str], conv_view: bool
          ) -> tuple[str, str]:
    """(group kind, why) of one parameter, from all its names."""
    param = entries[0][2]
    owners = [(name, owner) for name, owner, _ in entries]
    embedding = [owner for _, owner in owners if isinstance(owner, _EMBEDDINGS)]
    head = [(name, heads[id(owner)]) for name, owner in owners if id(owner) in heads]
    if embedding:
        why = f"embedding ({class_name(embedding[0])})"
        tied = [name for name, owner in owners if not isinstance(owner, _EMBEDDINGS)]
        if tied:
            why += f", tied to {'the head ' if head else ''}{', '.join(tied)}"
        return "embedding", why
    for name, owner in owners:
        leaf = name.rpartition(".")[2]
        if leaf in POSITION_TOKEN_NAMES:
            return "embedding", f"position embedding or token ({leaf!r})"
        if POSITION_NAME.search(leaf):
            return "embedding", f"position embedding (named {leaf!r})"
    if head:
        return "head", head[0][1]
    for _, owner in owners:
        if isinstance(owner, NORM_LAYERS):
            return "scalar", f"norm layer ({class_name(owner)})"
    if any(name.rpartition(".")[2] == "bias" for name, _ in owners):
        return "scalar", "bias"
    if param.ndim < 2:
        return "scalar", f"{param.ndim}-D"
    if param.ndim > 2:
        conv = any(isinstance(owner, nn.modules.conv._ConvNd) for _, owner in owners)
        if conv and conv_view:
            out = param.shape[0]
            return "hidden", f"conv kernel, Muon on its 2-D view {out}x{math.prod(param.shape[1:])} (conv_view)"
        if conv:
            return "tensor", "ndim>2: conv kernel (conv_view=True runs Muon on its 2-D view)"
        return "tensor", "ndim>2: stacked weights (torch's Muon orthogonalizes 2-D matrices only)"
    return "hidden", "2-D weight of a hidden layer"


def _refuse(pattern: str, entries: list[tuple[str, nn.Module, nn.Parameter]], kind: str, why: str,
            conv_view: bool) -> None:
    """The `RecipeError` of an override that puts in Muon a parameter it cannot or should not train."""
    name, _, param = entries[0]
    shape = tuple(param.shape)
    if param.ndim != 2 and kind != "hidden":
        conv = "tensor" == kind and "conv kernel" in why
        fix = (", or pass conv_view=True to run Muon on the kernel's 2-D view" if conv and not conv_view else "")
        raise RecipeError(
            f"`overrides` pattern {pattern!r} puts {name!r} (shape {shape}) in Muon, but torch.optim.Muon takes only"
            f" 2-D parameters (it would raise `ValueError: Muon only supports 2D parameters whereas we found a"
            f" parameter with size: torch.Size({list(shape)})`). Map {pattern!r} to 'adamw' or remove it from"
            f" `overrides`{fix}."
        )
    fix = (" If another layer produces the logits, name it with head='...'." if kind == "head" else "")
    raise RecipeError(
        f"`overrides` pattern {pattern!r} puts {name!r} (shape {shape}) in Muon, but it is not a hidden layer's"
        f" weight: {why}. Muon is for the 2-D weights of hidden layers; embeddings, the output head and anything"
        f" tied to them train with AdamW (Jordan et al. 2024; Liu et al. 2025). Map {pattern!r} to 'adamw' or"
        f" remove it from `overrides`.{fix}"
    )


# -------------------------------------------------------------------------------------------------- overrides


def _check_overrides(overrides: Optional[Mapping[str, str]]) -> dict[str, tuple[str, list[str]]]:
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise RecipeError(f"`overrides` must map module-path patterns to 'muon' or 'adamw', e.g. {{'blocks.0.attn':"
                          f" 'adamw'}}, got {type(overrides).__name__}.")
    checked = {}
    for pattern, side in overrides.items():
        if not isinstance(pattern, str) or not pattern:
            raise RecipeError(f"`overrides` keys must be module-path patterns such as 'blocks.*.attn', got {pattern!r}.")
        if not isinstance(side, str) or side.lower() not in _SIDES:
            raise RecipeError(f"`overrides[{pattern!r}]` must be 'muon' or 'adamw', got {side!r}.")
        checked[pattern] = (side.lower(), pattern.split("."))
    return checked


def _override(patterns: Mapping[str, tuple[str, list[str]]], entries: list[tuple[str, nn.Module, nn.Parameter]]
              ) -> Optional[tuple[str, str]]:
    """The most specific pattern matching any name of the parameter, and its side."""
    best: Optional[tuple[int, str]] = None
    for pattern, (_, segments) in patterns.items():
        for name, _, _ in entries:
            parts = name.split(".")
            if len(segments) <= len(parts) and all(fnmatch.fnmatchcase(p, s) for p, s in zip(parts, segments)):
                if best is not None and best[0] == len(segments) and best[1] != pattern \
                        and patterns[best[1]][0] != patterns[pattern][0]:
                    raise RecipeError(
                        f"`overrides` patterns {best[1]!r} and {pattern!r} both match {name!r} equally specifically"
                        " and disagree. Make one of them more specific or remove one."
                    )
                if best is None or len(segments) > best[0]:
                    best = (len(segments), pattern)
    return None if best is None else (best[1], patterns[best[1]][0])


def _groups(rows: Sequence[SplitRow], weight_decay: float) -> list[ParamGroup]:
    groups: dict[str, ParamGroup] = {}
    for row in rows:
        group = groups.get(row.group)
        if group is None:
            group = groups[row.group] = {"params": [], "weight_decay": weight_decay if row.decay else 0.0,
                                         "name": row.group}
        group["params"].append(row.param)
    return list(groups.values())
