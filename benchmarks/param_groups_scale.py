"""`param_groups` against timm's `param_groups_weight_decay(model, 0.05)`, and linear in the number of tensors.

Measured in one process, on the same models:

* a BERT-shaped model (Hugging Face names: ``embeddings.word_embeddings``, ``encoder.layer.N.attention.self.query``,
  ``pooler``, ``classifier``; 12 layers), a ViT-shaped model (timm names: ``patch_embed``, ``cls_token``,
  ``pos_embed``, ``blocks.N.attn.qkv``, ``norm``, ``head``, and timm's ``no_weight_decay()``; 12 blocks), and deep
  stacks of tiny Linear(2, 2) + LayerNorm(2) blocks (``blocks.N``) with 10k, 30k and 100k parameter tensors;
* `param_groups(model, weight_decay=0.05)` (the default rule), with `overrides`, with `layer_decay`, and with both;
* timm's rule: `timm.optim.param_groups_weight_decay(model, 0.05)` when timm is installed, else the restatement
  below (timm is not a dependency, and installing it pulls torchvision);
* torch's own walk over the model (`named_modules` + `named_parameters(recurse=False)`), which any grouping must do:
  a larger heap makes every pointer chase a little slower (CPU caches), so the honest test of linearity is that the
  time per tensor relative to that walk (or to timm) does not grow from 10k to 100k tensors;
* `check_param_groups` plus `validate_optimizers` on the result (what `OptimRecipeMixin` runs before training).

Models are built on the meta device (no storage), so only the module tree and its Parameter objects exist. Times are
CPU times of this process, the best of several interleaved rounds, so other processes on the machine disturb them
less; the garbage collector is paused while timing, as `timeit` does. Printed: microseconds per parameter tensor
and the ratio to timm's rule (below 1: faster than timm).

Run: python benchmarks/param_groups_scale.py [--quick]
"""

from __future__ import annotations

import fnmatch
import gc
import logging
import sys
import time
import warnings
from collections.abc import Callable, Collection

import torch
from torch import nn

from lightning_optim_recipes import check_param_groups, param_groups, validate_optimizers

SIZES = (10_000, 30_000, 100_000)

# Print only the results: should Lightning log anything (its rank-zero info lines), keep it out of the table. Its
# loggers sit under these names (`pytorch_lightning` or the `lightning` package).
for _logger in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric"):
    logging.getLogger(_logger).setLevel(logging.WARNING)

try:  # timm's own function when it is installed (never a requirement of this project)
    from timm.optim import param_groups_weight_decay as timm_param_groups_weight_decay

    TIMM = "timm.optim.param_groups_weight_decay(model, 0.05)"
except ImportError:

    def timm_param_groups_weight_decay(
        model: nn.Module, weight_decay: float = 1e-5, no_weight_decay_list: Collection[str] = ()
    ) -> list[dict]:
        """timm's rule, restated (timm/optim/_param_groups.py, default arguments): trainable parameters with
        ndim <= 1, a name ending in '.bias' or a name matching `no_weight_decay_list` get no decay; timm also checks
        every name against its (empty) fallback list."""
        decay, no_decay = [], []
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            any(fnmatch.fnmatch(name, p) for p in ())  # timm's fallback-list check (empty by default)
            if param.ndim <= 1 or name.endswith(".bias") or any(fnmatch.fnmatch(name, p) for p in no_weight_decay_list):
                no_decay.append(param)
            else:
                decay.append(param)
        return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]

    TIMM = "timm's param_groups_weight_decay(model, 0.05), restated"


# ------------------------------------------------------------------------------------------------------ models


class BertShaped(nn.Module):
    """Hugging Face's BERT layout and names (a sequence classifier), 12 layers of 16 tensors."""

    def __init__(self, layers: int = 12, hidden: int = 8, vocab: int = 100) -> None:
        super().__init__()
        self.embeddings = nn.Module()
        self.embeddings.word_embeddings = nn.Embedding(vocab, hidden)
        self.embeddings.position_embeddings = nn.Embedding(16, hidden)
        self.embeddings.token_type_embeddings = nn.Embedding(2, hidden)
        self.embeddings.LayerNorm = nn.LayerNorm(hidden)
        self.embeddings.dropout = nn.Dropout(0.1)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(self._layer(hidden) for _ in range(layers))
        self.pooler = nn.Module()
        self.pooler.dense, self.pooler.activation = nn.Linear(hidden, hidden), nn.Tanh()
        self.dropout = nn.Dropout(0.1)
        self.classifier = nn.Linear(hidden, 2)

    @staticmethod
    def _layer(hidden: int) -> nn.Module:
        layer = nn.Module()
        layer.attention = nn.Module()
        layer.attention.self = nn.Module()
        for name in ("query", "key", "value"):
            layer.attention.self.add_module(name, nn.Linear(hidden, hidden))
        layer.attention.self.dropout = nn.Dropout(0.1)
        layer.attention.output = nn.Module()
        layer.attention.output.dense = nn.Linear(hidden, hidden)
        layer.attention.output.LayerNorm = nn.LayerNorm(hidden)
        layer.attention.output.dropout = nn.Dropout(0.1)
        layer.intermediate = nn.Module()
        layer.intermediate.dense, layer.intermediate.intermediate_act_fn = nn.Linear(hidden, 4 * hidden), nn.GELU()
        layer.output = nn.Module()
        layer.output.dense = nn.Linear(4 * hidden, hidden)
        layer.output.LayerNorm = nn.LayerNorm(hidden)
        layer.output.dropout = nn.Dropout(0.1)
        return layer


class ViTShaped(nn.Module):
    """timm's VisionTransformer layout and names, with its `no_weight_decay()`; 12 blocks of 12 tensors."""

    def __init__(self, depth: int = 12, dim: int = 8) -> None:
        super().__init__()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, dim, 4, 4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 17, dim))
        self.pos_drop = nn.Dropout(0.0)
        self.blocks = nn.Sequential(*(self._block(dim) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    @staticmethod
    def _block(dim: int) -> nn.Module:
        block = nn.Module()
        block.norm1 = nn.LayerNorm(dim)
        block.attn = nn.Module()
        block.attn.qkv, block.attn.attn_drop = nn.Linear(dim, 3 * dim), nn.Dropout(0.0)
        block.attn.proj, block.attn.proj_drop = nn.Linear(dim, dim), nn.Dropout(0.0)
        block.drop_path = nn.Identity()
        block.norm2 = nn.LayerNorm(dim)
        block.mlp = nn.Module()
        block.mlp.fc1, block.mlp.act, block.mlp.fc2 = nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)
        return block

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token", "dist_token"}


def stack(tensors: int) -> nn.Module:
    """`tensors // 4` blocks of Linear(2, 2) + LayerNorm(2) under `blocks`."""
    model = nn.Module()
    model.blocks = nn.Sequential(*(nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)) for _ in range(tensors // 4)))
    return model


OVERRIDES = {
    "BERT-shaped": {"encoder.layer.*.attention": {"lr": 1e-4}, "classifier": {"lr": 1e-3}},
    "ViT-shaped": {"blocks.*.attn": {"lr": 1e-4}, "head": {"lr": 1e-3}},
    "stack": {"blocks.0": {"lr": 1e-4}, "blocks.1*": {"lr": 1e-3}, "blocks.*.1": {"weight_decay": 0.0}},
}

# ------------------------------------------------------------------------------------------------------ timing


def torch_walk(model: nn.Module) -> set[int]:
    """The traversal every grouping needs: each module's own parameters, once each."""
    seen = set()
    for _, owner in model.named_modules():
        for _, param in owner.named_parameters(recurse=False):
            seen.add(id(param))
    return seen


def variants(model: nn.Module, overrides: dict) -> dict[str, Callable[[], object]]:
    return {
        "torch walk": lambda: torch_walk(model),
        "timm": lambda: timm_param_groups_weight_decay(model, 0.05),
        "param_groups": lambda: param_groups(model, weight_decay=0.05),
        "+ overrides": lambda: param_groups(model, weight_decay=0.05, lr=1e-3, overrides=overrides),
        "+ layer_decay": lambda: param_groups(model, weight_decay=0.05, lr=1e-3, layer_decay=0.75),
        "+ both": lambda: param_groups(model, weight_decay=0.05, lr=1e-3, overrides=overrides, layer_decay=0.75),
    }


def best_times(fns: dict[str, Callable[[], object]], rounds: int, loops: int) -> dict[str, float]:
    """Best CPU time per call of each function over `rounds` interleaved rounds of `loops` calls.

    As `timeit` does, the garbage collector is paused while timing (and run before each timing): a full collection
    re-scans every object of the process (1.6M for the 100k-tensor stack, about 0.7 s), and would land on whichever
    call happens to cross its threshold.
    """
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for key, fn in fns.items():
            gc.collect()
            gc.disable()
            try:
                start = time.process_time()
                for _ in range(loops):
                    fn()
                best[key] = min(best[key], (time.process_time() - start) / loops)
            finally:
                gc.enable()
    return best


def count(model: nn.Module) -> int:
    return sum(1 for _ in model.parameters())


def main(quick: bool = False) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    keys = list(variants(nn.Linear(1, 1), {}))
    print(f"CPU microseconds per parameter tensor (ratio to {TIMM})")
    print(f"{'model':>16} {'tensors':>8}" + "".join(f" {k:>17}" for k in keys))

    def row(label: str, model: nn.Module, overrides: dict, rounds: int, loops: int) -> None:
        n = count(model)
        times = best_times(variants(model, overrides), rounds, loops)
        results[label] = {key: seconds / n * 1e6 for key, seconds in times.items()}
        cells = "".join(
            f" {seconds / n * 1e6:>8.2f} ({seconds / times['timm']:>5.2f})" for seconds in times.values()
        )
        print(f"{label:>16} {n:>8}{cells}")

    with torch.device("meta"):
        bert, vit = BertShaped(), ViTShaped()
    row("BERT-shaped", bert, OVERRIDES["BERT-shaped"], rounds=3 if quick else 7, loops=50 if quick else 200)
    row("ViT-shaped", vit, OVERRIDES["ViT-shaped"], rounds=3 if quick else 7, loops=50 if quick else 200)
    sizes = SIZES[:2] if quick else SIZES
    for n in sizes:
        with torch.device("meta"):
            model = stack(n)
        row(f"stack {n // 1000}k", model, OVERRIDES["stack"], rounds=3, loops=1)
        groups = param_groups(model, weight_decay=0.05)
        optimizer = torch.optim.SGD(groups, lr=0.1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            both = {"check": lambda: (check_param_groups(groups, model), validate_optimizers(optimizer, model))}
            checked = best_times(both, rounds=3, loops=1)["check"]
        results[f"stack {n // 1000}k"]["check + validate"] = checked / n * 1e6

    first, last = f"stack {sizes[0] // 1000}k", f"stack {sizes[-1] // 1000}k"
    print(f"\ntime per tensor at {sizes[-1]:,} / at {sizes[0]:,} tensors (1.00 = flat), raw and relative to timm:")
    for key in keys[1:] + ["check + validate"]:
        growth = results[last][key] / results[first][key]
        relative = growth / (results[last]["timm"] / results[first]["timm"])
        print(f"  {key:>17}: {growth:.2f}x raw, {relative:.2f}x relative to timm")
    return results


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
