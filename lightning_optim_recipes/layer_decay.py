"""Layer-wise learning-rate decay for `param_groups(..., layer_decay=...)`: the layer of every parameter.

BEiT, MAE and ELECTRA fine-tune a pretrained transformer with each layer's learning rate decayed by its depth from
the top. Layer ids follow BEiT's and MAE's ``get_layer_id_for_vit``; with ``n`` blocks:

====================  =======================================================================================
layer id              parameters
====================  =======================================================================================
``0``                 the embeddings: every parameter of a module named ``patch_embed`` or ``embeddings`` (Hugging
                      Face's embeddings module, its LayerNorm included) or of an ``nn.Embedding``, and position
                      embeddings and tokens registered directly (``pos_embed``, ``cls_token``, ``dist_token``,
                      ``mask_token``, ``reg_token``, ``position_embeddings``, ...), outside the blocks
``i + 1``             everything in block ``i`` of the block container: a module named ``blocks``, ``layers``,
                      ``layer`` or ``h`` whose children are numbered (``blocks.i``, ``layers.i``,
                      ``encoder.layer.i``, ``transformer.h.i``); in nested containers (Swin's ``layers.i.blocks.j``)
                      the outermost one counts
``n + 1`` (the top)   everything else: the final norm, pooler and head, BEiT's shared relative position bias, and
                      modules before the blocks that are not embeddings (timm's ``norm_pre``), as in MAE
====================  =======================================================================================

With ``layer_rule="timm"``, the assignment of timm's ``param_groups_layer_decay`` for its ViTs (whose
``group_matcher`` is ``stem=r'^cls_token|reg_token|pos_embed|patch_embed'``, ``blocks=[(r'^blocks\\.(\\d+)', None),
(r'^norm', (99999,))]``, "final norm w/ last block"; huggingface/pytorch-image-models commit 0041cb7): a module
registered on the model itself whose name starts with ``norm`` (the final ``norm``, and CLIP-style ``norm_pre``,
which timm's ``^norm`` also matches) joins the last block, layer ``n``, instead of the top. For 12 blocks and
``layer_decay=0.75`` those norms then train at 0.75 of the head's lr, not at the head's.

A parameter of layer ``i`` trains at ``lr * layer_decay ** (n + 1 - i)``: the head at ``lr``, the last block at
``lr * layer_decay``, the embeddings at ``lr * layer_decay ** (n + 1)``. With ``layer_of(name) -> int`` the ids are
yours; the highest id that `layer_of` returns for any parameter of the model (frozen ones included) is the top.
(ELECTRA's own code puts the task head one layer higher, ``n + 2``, so its last block trains at
``lr * layer_decay ** 2``; ``layer_of`` reproduces that.)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, Optional

from torch import nn

from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.no_decay import ABSOLUTE_POSITION_NAMES, TOKEN_NAMES

__all__: list[str] = []  # the public entry point is `param_groups(..., layer_decay=..., layer_of=...)`

#: Names of the modules that hold numbered blocks.
BLOCK_CONTAINERS = ("blocks", "layers", "layer", "h")
#: Modules outside the blocks whose parameters are all embeddings (layer 0), besides every `nn.Embedding`.
EMBEDDING_MODULES = frozenset({"patch_embed", "embeddings"})
#: Parameters registered directly outside the blocks that are embeddings (layer 0).
EMBEDDING_PARAMETERS = frozenset(ABSOLUTE_POSITION_NAMES + TOKEN_NAMES)
#: How layers are assigned: BEiT's and MAE's ``get_layer_id_for_vit``, or timm's ``group_matcher`` (norms on the
#: model itself with the last block).
LAYER_RULES = ("beit", "timm")
#: Group keys that `param_groups` fills in when `layer_decay` is given.
LAYER_KEYS = ("layer_id", "layer_scale")

LayerOf = Callable[[str], int]


@dataclasses.dataclass
class LayerPlan:
    """How one `param_groups` call assigns layers: the decay, and either `layer_of` or the block container."""

    decay: float
    layer_of: Optional[LayerOf] = None
    blocks: Optional[nn.Module] = None
    top: int = 0  # n + 1 for the block container; with `layer_of`, the highest id seen
    rule: str = "beit"

    def scale(self, layer: int) -> float:
        """The lr multiplier of `layer`: ``decay ** (top - layer)``."""
        return self.decay ** (self.top - layer)


def plan_layers(
    module: nn.Module,
    layer_decay: Optional[float],
    layer_of: Optional[LayerOf],
    lr: Optional[float],
    overrides: Mapping[str, Mapping[str, Any]],
    rule: str = "beit",
) -> Optional[LayerPlan]:
    """Check the layer-decay arguments and find the block container (unless `layer_of` is given)."""
    if rule not in LAYER_RULES:
        raise RecipeError(
            f"`layer_rule` must be 'beit' (BEiT's and MAE's layer ids: the final norm trains with the head) or 'timm'"
            f" (timm's: norms registered on the model itself train with the last block), got {rule!r}."
        )
    if layer_decay is None:
        if rule != "beit":
            raise RecipeError(
                f"`layer_rule={rule!r}` says how `layer_decay` assigns layers: pass `layer_decay=` (e.g. 0.75) as"
                " well, or remove `layer_rule`."
            )
        if layer_of is not None:
            raise RecipeError(
                "`layer_of` is used only with `layer_decay`: pass `layer_decay=` (e.g. 0.75) as well, or remove"
                " `layer_of`."
            )
        return None
    if (
        isinstance(layer_decay, bool)
        or not isinstance(layer_decay, (int, float))
        or not 0 < layer_decay <= 1
        or math.isnan(layer_decay)
    ):
        raise RecipeError(
            "`layer_decay` must be a number in (0, 1], e.g. 0.75 (each layer below the top trains at the lr of the"
            f" layer above times `layer_decay`), got {layer_decay!r}."
        )
    if layer_of is not None and not callable(layer_of):
        raise RecipeError(
            "`layer_of` must be a function from a parameter name to its layer id (0 = embeddings, the highest id ="
            f" the head), got {layer_of!r}."
        )
    for pattern, options in overrides.items():
        for key in LAYER_KEYS:
            if key in options:
                raise RecipeError(
                    f"`overrides[{pattern!r}]` sets {key!r}, which `param_groups(layer_decay=...)` fills in itself;"
                    " remove it."
                )
    if lr is None and not any("lr" in options for options in overrides.values()):
        missing_lr("the groups have")
    if layer_of is not None:
        if rule != "beit":
            raise RecipeError("`layer_of` gives every parameter's layer itself: remove `layer_rule`, or `layer_of`.")
        return LayerPlan(float(layer_decay), layer_of=layer_of)
    _, blocks = find_blocks(module)
    return LayerPlan(float(layer_decay), blocks=blocks, top=len(_children(blocks)) + 1, rule=rule)


def missing_lr(subject: str) -> NoReturn:
    """Raise the error for groups without a base lr to scale (`subject`: "the groups have", "group 'x' has")."""
    raise RecipeError(
        f"`layer_decay` scales each group's own 'lr', but {subject} no 'lr' to scale: pass `lr=` to `param_groups`"
        " (the lr of the top layer; the optimizer's default lr is not scaled per group), or set 'lr' in every"
        " override."
    )


def find_blocks(module: nn.Module) -> tuple[str, nn.Module]:
    """The path and module of the model's only outermost block container (see `BLOCK_CONTAINERS`)."""
    found: list[tuple[str, nn.Module]] = []
    seen: set[int] = set()
    stack: list[tuple[str, nn.Module]] = [("", module)]
    while stack:
        path, current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        name = path.rpartition(".")[2]
        if name in BLOCK_CONTAINERS and _is_numbered(current):
            found.append((path, current))
            continue  # the outermost container counts; nested ones are inside its blocks
        prefix = f"{path}." if path else ""
        stack.extend((prefix + key, child) for key, child in reversed(_children(current)))
    if len(found) == 1:
        return found[0]
    containers = ", ".join(repr(n) for n in BLOCK_CONTAINERS[:-1]) + f" or {BLOCK_CONTAINERS[-1]!r}"
    if not found:
        raise RecipeError(
            f"`layer_decay` found no blocks in {type(module).__name__}: it looks for numbered blocks in a module named"
            f" {containers} (blocks.0, encoder.layer.0, transformer.h.0). Pass `layer_of=` a function from a"
            " parameter name to its layer id (0 = embeddings, the highest id = the head)."
        )
    raise RecipeError(
        f"`layer_decay` found several block containers in {type(module).__name__}:"
        f" {', '.join(repr(path) for path, _ in found)}. Pass `layer_of=` a function from a parameter name to its"
        " layer id to say which layer each parameter belongs to."
    )


def _children(module: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(key, child) for key, child in module._modules.items() if child is not None]


def _is_numbered(module: nn.Module) -> bool:
    keys = [key for key, _ in _children(module)]
    return bool(keys) and keys == [str(i) for i in range(len(keys))]


def module_layer(
    plan: LayerPlan, parent: Optional[tuple[int, bool, bool]], name: str, module: nn.Module, path: str = ""
) -> tuple[int, bool, bool]:
    """(layer id, inside the blocks, is the block container) of `module`, named `name` in its parent, at `path`.

    `parent` is the parent's triple (None for the model itself).
    """
    is_blocks = module is plan.blocks
    if parent is not None:
        layer, in_blocks, parent_is_blocks = parent
        if parent_is_blocks:
            return int(name) + 1, True, is_blocks
        if in_blocks:
            return layer, True, is_blocks
        if layer == 0:
            return 0, False, is_blocks
    if name in EMBEDDING_MODULES or isinstance(module, nn.Embedding):
        return 0, False, is_blocks
    if plan.rule == "timm" and parent is not None and name == path and name.startswith("norm"):
        return plan.top - 1, False, is_blocks  # timm's `^norm`: with the last block
    return plan.top, False, is_blocks


def call_layer_of(plan: LayerPlan, name: str) -> int:
    """`plan.layer_of(name)`, checked; a higher id than any so far becomes the plan's top."""
    layer = plan.layer_of(name)  # type: ignore[misc]
    if isinstance(layer, bool) or not isinstance(layer, int) or layer < 0:
        raise RecipeError(
            f"`layer_of({name!r})` returned {layer!r}: it must return a non-negative int layer id (0 = embeddings,"
            " the highest id = the head, which trains at the full lr)."
        )
    if layer > plan.top:
        plan.top = layer
    return layer
