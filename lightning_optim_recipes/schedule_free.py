"""Schedule-free optimizers (Defazio et al. 2024, "The Road Less Scheduled"; the `schedulefree` package), in plain
torch: which optimizers are schedule-free, their train and eval modes, the lr they apply during their built-in warm-up,
BatchNorm statistics recomputed at the evaluation weights, and the checks before training.

A schedule-free optimizer keeps three sequences: the parameters hold the point gradients are taken at (``y``) in train
mode and the average that evaluation should use (``x``) in eval mode; ``optimizer.train()`` and ``optimizer.eval()``
move them from one to the other. The callback that switches them at Lightning's boundaries (`ScheduleFreeModes`) calls
`switch` and `restore`; `LearningRateLogger` and the preview's replay read `applied_lr`; the recipe engine resolves
`OPTIMIZERS` by name; the resume machinery keeps `GROUP_STATE_KEYS` as the optimizer's state, not as settings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Optional

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from lightning_optim_recipes.errors import RecipeError, warn

__all__ = ["EXTRA", "GROUP_STATE_KEYS", "HANDLES_MODES", "OPTIMIZERS", "applied_lr", "batch_norms", "class_has_modes",
           "count_step", "forward_inputs", "handler", "has_modes", "in_train_mode", "is_schedule_free",
           "moves", "recompute_batch_norm", "restore", "switch", "warmup_factor", "warmup_ends", "warn_batch_norm",
           "warn_lr_finder", "warn_schedulers", "warn_unhandled"]

#: The `schedulefree` package's optimizer classes (its ``__init__`` at 1.4.1), which a recipe may name without a
#: dotted path: ``optimizer: AdamWScheduleFree``.
OPTIMIZERS = ("AdamWScheduleFree", "AdamWScheduleFreeClosure", "AdamWScheduleFreePaper", "AdamWScheduleFreeReference",
              "RAdamScheduleFree", "RAdamScheduleFreeClosure", "SGDScheduleFree", "SGDScheduleFreeClosure",
              "SGDScheduleFreeReference")

#: How to install what a schedule-free recipe needs.
EXTRA = "pip install lightning_optim_recipes[schedulefree]"

#: What a schedule-free optimizer keeps in each param group as its running state, not as a setting: the steps taken
#: (``k``), the mode, the sum of the averaging weights, the largest lr so far and the lr of the last step.
GROUP_STATE_KEYS = frozenset({"k", "train_mode", "weight_sum", "lr_max", "scheduled_lr"})

#: The attribute (True) of a callback that switches the modes at every boundary; the checks before training look for it.
HANDLES_MODES = "handles_schedule_free_modes"


def _raw(optimizer: Any) -> Any:
    return getattr(optimizer, "_optimizer", optimizer)  # a LightningOptimizer's


def _groups(optimizer: Any) -> list[dict[str, Any]]:
    groups = getattr(_raw(optimizer), "param_groups", None)
    return list(groups) if isinstance(groups, (list, tuple)) else []


def has_modes(optimizer: Any) -> bool:
    """Whether `optimizer` has train and eval modes to switch (every schedule-free optimizer but the ``Closure``
    variants, which evaluate at the average between steps).

    Example:
        >>> import schedulefree, torch
        >>> p = [torch.nn.Parameter(torch.zeros(2))]
        >>> has_modes(schedulefree.AdamWScheduleFree(p)), has_modes(schedulefree.AdamWScheduleFreeClosure(p))
        (True, False)
        >>> has_modes(torch.optim.AdamW(p))
        False
    """
    raw = _raw(optimizer)
    if not (callable(getattr(raw, "train", None)) and callable(getattr(raw, "eval", None))):
        return False
    return isinstance(getattr(raw, "train_mode", None), bool) or any("train_mode" in g for g in _groups(raw))


def class_has_modes(cls: Any) -> bool:
    """Whether instances of the optimizer class `cls` have train and eval modes (before one is built: a recipe's)."""
    return isinstance(cls, type) and callable(getattr(cls, "train", None)) and callable(getattr(cls, "eval", None))


def is_schedule_free(optimizer: Any) -> bool:
    """Whether `optimizer` is schedule-free: it has modes, or its param groups keep the step count ``'k'`` and the sum
    of the averaging weights ``'weight_sum'``, as every `schedulefree` optimizer does."""
    groups = _groups(optimizer)
    return has_modes(optimizer) or (bool(groups) and all("k" in g and "weight_sum" in g for g in groups))


def in_train_mode(optimizer: Any) -> bool:
    """Whether `optimizer` is in train mode (its parameters hold the training sequence); what its ``step`` checks."""
    raw = _raw(optimizer)
    flag = getattr(raw, "train_mode", None)
    if isinstance(flag, bool):  # `ScheduleFreeWrapper`
        return flag
    groups = _groups(raw)
    return bool(groups and groups[0].get("train_mode", False))


def _stepped(optimizer: Any) -> bool:
    """Whether it holds state: before its first step a switch changes no parameter."""
    return any(bool(s) for s in getattr(_raw(optimizer), "state", {}).values())


def moves(optimizers: Iterable[Any], train: bool) -> bool:
    """Whether switching `optimizers` to train (or eval) mode changes any parameter."""
    return any(has_modes(o) and in_train_mode(o) != train and _stepped(o) for o in optimizers)


def switch(optimizers: Sequence[Any], train: bool) -> tuple[Optional[bool], ...]:
    """Put every optimizer of `optimizers` that has modes in train (`train`) or eval mode; return the mode each had
    (None: no modes), for `restore`.

    Example:
        >>> import schedulefree, torch
        >>> p = torch.nn.Parameter(torch.ones(1))
        >>> opt = schedulefree.SGDScheduleFree([p], lr=0.5)
        >>> switch([opt], train=True)
        (False,)
        >>> for _ in range(2):
        ...     p.grad = torch.ones(1); opt.step()
        >>> round(p.item(), 4), opt.state[p]["z"].item()  # y, where gradients are taken; z, the SGD iterate
        (0.225, 0.0)
        >>> before = switch([opt], train=False)  # the parameters now hold x, the average of the z's
        >>> round(p.item(), 4), before
        (0.25, (True,))
        >>> restore([opt], before); round(p.item(), 4)  # y again
        0.225
    """
    before = tuple(in_train_mode(o) if has_modes(o) else None for o in optimizers)
    for optimizer, mode in zip(optimizers, before):
        if mode is not None and mode != train:
            raw = _raw(optimizer)
            raw.train() if train else raw.eval()
    return before


def restore(optimizers: Sequence[Any], modes: Sequence[Optional[bool]]) -> None:
    """Put each optimizer back in the mode `switch` returned for it."""
    for optimizer, mode in zip(optimizers, modes):
        if mode is not None and has_modes(optimizer) and in_train_mode(optimizer) != mode:
            raw = _raw(optimizer)
            raw.train() if mode else raw.eval()


# ------------------------------------------------------------------------------------------- the lr it applies


def warmup_factor(group: dict[str, Any], k: Optional[int] = None) -> float:
    """The multiplier of the group's ``'lr'`` at its step `k` (default: its next step, ``group['k']``): its built-in
    linear warm-up, ``(k + 1) / warmup_steps`` for ``k < warmup_steps`` then 1 (step k at (k + 1)/W of the peak, the
    library's own convention); under ``RAdamScheduleFree`` (which has no warm-up setting), its rectification, 0 while
    its ``silent_sgd_phase`` lasts. 1 for any other group.

    Example:
        >>> [warmup_factor({"lr": 1.0, "k": k, "warmup_steps": 4}) for k in range(6)]
        [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    """
    step = int(group.get("k", 0) if k is None else k)
    if "silent_sgd_phase" in group and "betas" in group:  # RAdamScheduleFree's rectification
        beta2 = group["betas"][1]
        beta2_t = beta2 ** (step + 1)
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * (step + 1) * beta2_t / (1 - beta2_t)
        if rho_t > 4.0:
            return math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        return float(not group["silent_sgd_phase"])
    warmup = group.get("warmup_steps") or 0
    if "k" in group and isinstance(warmup, int) and step < warmup:
        return (step + 1) / warmup
    return 1.0


def applied_lr(group: dict[str, Any]) -> float:
    """The lr the group's next optimizer step applies: ``group['lr']`` times `warmup_factor` (what schedulefree writes
    to ``'scheduled_lr'`` once that step is taken). Any other optimizer's group: its ``'lr'``.

    Example:
        >>> applied_lr({"lr": 0.01, "k": 1, "warmup_steps": 4, "weight_sum": 0.0})
        0.005
    """
    lr = group["lr"]
    return lr * warmup_factor(group) if "k" in group and "weight_sum" in group else lr


def warmup_ends(optimizer: Any) -> bool:
    """Whether the optimizer's next step is the last of its built-in warm-up (the first at the full lr)."""
    groups = _groups(optimizer)
    warmup = groups[0].get("warmup_steps") if groups and "weight_sum" in groups[0] else None
    return isinstance(warmup, int) and warmup > 0 and groups[0].get("k") == warmup - 1


def count_step(optimizer: Any) -> None:
    """Count one step in the optimizer's own step counter without stepping it (the preview's replay, where no
    parameter changes), so that `applied_lr` follows the built-in warm-up."""
    for group in _groups(optimizer):
        if "k" in group and "weight_sum" in group:
            group["k"] += 1


# ---------------------------------------------------------------------------------------------------- BatchNorm


def batch_norms(module: nn.Module) -> list[str]:
    """The names of the BatchNorm layers of `module` that keep running statistics."""
    return [name for name, m in module.named_modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


def forward_inputs(module: nn.Module, batch: Any) -> Any:
    """The default forward of the BatchNorm recomputation: ``module(batch)`` for a tensor, ``module(batch[0])`` for an
    ``(inputs, targets)`` pair."""
    if isinstance(batch, torch.Tensor):
        return module(batch)
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], torch.Tensor):
        return module(batch[0])
    raise RecipeError(
        f"The BatchNorm recomputation forwards training batches through the module, but a {type(batch).__name__}"
        " batch has no tensor of inputs first: pass how to forward one, e.g."
        " `ScheduleFreeModes(bn_recompute_batches=50, bn_forward=lambda module, batch: module(batch['image']))`."
    )


def recompute_batch_norm(module: nn.Module, batches: Iterable[Any],
                         forward: Callable[[nn.Module, Any], Any] = forward_inputs) -> int:
    """Forward `batches` through `module` in train mode without gradients, so that its BatchNorm running statistics
    are those of the weights it holds now, as the schedule-free authors recommend before evaluating (their README's
    Caveats). Every submodule's train/eval flag is restored after, and the random number generators too (dropout in
    those forwards leaves training's randomness as it was). Returns the batches forwarded.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).eval()
        >>> recompute_batch_norm(net, [torch.ones(4, 2)] * 3), net.training, int(net[1].num_batches_tracked)
        (3, False, 3)
    """
    flags = [(m, m.training) for m in module.modules()]
    devices = sorted({p.device.index or 0 for p in module.parameters() if p.device.type == "cuda"})
    count = 0
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            module.train()
            for batch in batches:
                forward(module, batch)
                count += 1
    finally:
        for m, training in flags:
            m.training = training
    return count


# ------------------------------------------------------------------------------------------------------- checks


def handler(callbacks: Optional[Iterable[Any]]) -> Any:
    """The callback among `callbacks` that switches the modes (``HANDLES_MODES``), or None."""
    return next((c for c in callbacks or () if getattr(c, HANDLES_MODES, False) is True), None)


def _name(optimizer: Any, index: int) -> str:
    return f"{type(_raw(optimizer)).__name__} (optimizer {index})"


def warn_schedulers(optimizers: Sequence[Any], schedulers: Iterable[tuple[Any, int, Optional[str]]],
                    at: Any = None) -> None:
    """Warn for every scheduler, ``(scheduler, optimizer index, name)``, that steps a schedule-free optimizer."""
    for scheduler, index, name in schedulers:
        if index >= len(optimizers) or not is_schedule_free(optimizers[index]):
            continue
        optimizer = _raw(optimizers[index])
        label = f" {name!r}" if name else ""
        warn(
            f"The {type(scheduler).__name__} scheduler{label} steps the lr of a schedule-free optimizer,"
            f" {_name(optimizer, index)}: its schedule is built in (a constant lr after a linear warm-up over its"
            " `warmup_steps`, and an average of the iterates weighted by the lr), so a scheduler on top changes the"
            f" lr it averages with. Drop the scheduler and give the optimizer its warm-up: `{type(optimizer).__name__}"
            "(..., warmup_steps=...)` (in a recipe, 'warmup_fraction' or optimizer_kwargs {'warmup_steps': ...}"
            " instead of 'scheduler'). If you mean to schedule it anyway (schedulefree allows it), silence this with"
            " `warnings.filterwarnings('ignore', '.*steps the lr of a schedule-free optimizer')`.",
            at=at,
        )


def warn_unhandled(optimizers: Sequence[Any], module: Optional[nn.Module], at: Any = None) -> None:
    """Warn when an optimizer with modes trains in a run where nothing switches them."""
    found = [_name(o, i) for i, o in enumerate(optimizers) if has_modes(o)]
    if not found:
        return
    norms = batch_norms(module) if module is not None else []
    advice = "ScheduleFreeModes(bn_recompute_batches=50)" if norms else "ScheduleFreeModes()"
    warn(
        f"{', '.join(found)} {'is a schedule-free optimizer' if len(found) == 1 else 'are schedule-free optimizers'},"
        " and nothing in this run switches its train and eval modes: Lightning calls neither `optimizer.train()` nor"
        " `optimizer.eval()`. The parameters hold the training sequence in train mode and the evaluation weights in"
        " eval mode, so without the switches the first step fails (\"Optimizer was not in train mode\"), or, with"
        " `optimizer.train()` alone, checkpoints, validation and the module after fit use the training sequence,"
        f" not the evaluation weights. Add `{advice}` to the Trainer's callbacks"
        f"{' (the module has BatchNorm)' if norms else ''}: it switches the modes at every boundary. If the module"
        " switches them itself, before every evaluation and checkpoint and back, silence this with"
        " `warnings.filterwarnings('ignore', '.*nothing in this run switches its train and eval modes')`.",
        at=at,
    )


def warn_batch_norm(optimizers: Sequence[Any], module: nn.Module, bn_recompute_batches: int, at: Any = None) -> None:
    """Warn when a module with BatchNorm trains with an optimizer with modes and no recomputation of its statistics."""
    found = [_name(o, i) for i, o in enumerate(optimizers) if has_modes(o)]
    norms = batch_norms(module)
    if not found or not norms or bn_recompute_batches > 0:
        return
    shown = ", ".join(norms[:3]) + (f" and {len(norms) - 3} more" if len(norms) > 3 else "")
    warn(
        f"The module's BatchNorm layers ({shown}) keep running statistics accumulated at the training sequence of"
        f" the schedule-free {', '.join(found)}, while validation, checkpoints and the module after fit use its"
        " evaluation weights. Recompute them as the schedule-free authors recommend, a few training batches"
        " forwarded at the evaluation weights without gradients before each evaluation:"
        " `ScheduleFreeModes(bn_recompute_batches=50)` (`bn_recompute_batches = 50` on OptimRecipeMixin). If the"
        " statistics do not matter to you, silence this with"
        " `warnings.filterwarnings('ignore', \".*The module's BatchNorm layers\")`.",
        at=at,
    )


def warn_lr_finder(optimizers: Sequence[Any], at: Any = None) -> None:
    """Warn when Lightning's learning-rate finder sweeps a schedule-free optimizer that warms up: the finder records
    each group's ``'lr'``, but the first ``warmup_steps`` steps apply a fraction of it."""
    warming = [(i, g["warmup_steps"]) for i, o in enumerate(optimizers) if is_schedule_free(o)
               for g in _groups(o)[:1] if isinstance(g.get("warmup_steps"), int) and g["warmup_steps"] > 0]
    for index, steps in warming:
        warn(
            f"The learning-rate finder sweeps the lr of {_name(optimizers[index], index)}, whose built-in warm-up"
            f" applies (k + 1) / {steps} of the lr at its step k < {steps} (warmup_steps={steps}): the finder's first"
            f" {steps} losses come from smaller lrs than the ones it records, which skews its suggestion. Find the lr"
            " with warmup_steps=0 (in a recipe, without 'warmup_fraction'), then train with the warm-up; or silence"
            " this with `warnings.filterwarnings('ignore', '.*The learning-rate finder sweeps the lr of')`.",
            at=at,
        )
