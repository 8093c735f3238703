"""The callback `AlternatingOptimizersMixin` adds to every fit: it saves the alternation state in checkpoints, steps
plateau schedulers after validation and 1.x's ``training_epoch_end``, and gives the Trainer back the options the mixin
adopts (accumulation, clipping); and the clipping before each optimizer step."""

from __future__ import annotations

import functools
import weakref
from typing import Any, Optional

from lightning_optim_recipes import hooks
from lightning_optim_recipes._lightning import callback_bases
from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.mixins._alternation import Plan, load_state_dict, state_dict
from lightning_optim_recipes.mixins._turns import run_epoch_end_1x, step_epoch_schedulers, step_pending_plateau


STATE_KEY = "AlternatingOptimizersMixin"


def clip(module: Any, optimizer: Any) -> None:
    """Clip the gradients of `optimizer` before its step (the module's options, or its own 1.x/2.x hook)."""
    plan: Optional[Plan] = module.__dict__.get("_alternation_plan")
    if plan is None:
        return
    index = plan.index_of.get(id(optimizer))
    if index is None:
        return
    value = plan.clip[index]
    if value is None and not plan.clip_hook:
        return
    hooks.call(module, "configure_gradient_clipping", {
        "optimizer": optimizer, "optimizer_idx": index, "gradient_clip_val": value,
        "gradient_clip_algorithm": plan.clip_algorithm if value is not None else None,
    })


def adopt_trainer_options(trainer: Any, module: Any) -> None:
    """Take ``Trainer(accumulate_grad_batches=..., gradient_clip_val=...)`` as the module's own options, as Lightning
    1.x applied them (Lightning 2 refuses them under manual optimization), and hide them from Lightning's check until
    `restore_trainer_options`."""
    for key, default in (("accumulate_grad_batches", 1), ("gradient_clip_val", None)):
        module.__dict__.pop(f"_trainer_{key}", None)
        value = getattr(trainer, key, default)
        if value == default or (key == "gradient_clip_val" and not value):
            continue
        own = getattr(module, key)
        if own not in (default, value):
            raise RecipeError(
                f"`Trainer({key}={value})` and the module's `{key} = {own!r}` disagree: set it in one place (on"
                f" the module for one value per optimizer)."
            )
        module.__dict__[f"_trainer_{key}"] = value
        setattr(trainer, key, default)
    algorithm = getattr(trainer, "gradient_clip_algorithm", None)
    if "_trainer_gradient_clip_val" in module.__dict__:
        module.__dict__["_trainer_gradient_clip_algorithm"] = str(getattr(algorithm, "value", algorithm) or "norm")


def restore_trainer_options(trainer: Any, module: Any, forget: bool = False) -> None:
    """Give the Trainer back the options `adopt_trainer_options` took (``estimated_stepping_batches`` reads them);
    `forget` them at the end of the fit."""
    for key in ("accumulate_grad_batches", "gradient_clip_val"):
        if f"_trainer_{key}" in module.__dict__:
            setattr(trainer, key, module.__dict__[f"_trainer_{key}"])
            if forget:
                del module.__dict__[f"_trainer_{key}"]


#: `Callback` hooks that run on every batch and that the mixin's callback does not use.
_PER_BATCH_HOOKS_NOT_USED = (
    "on_train_batch_end", "on_before_backward", "on_after_backward", "on_before_optimizer_step", "on_before_zero_grad",
    "on_validation_batch_start", "on_validation_batch_end",
)


@functools.cache
def callback_class() -> type:
    def state_key(self: Any) -> str:
        return STATE_KEY

    def __init__(self: Any, module: Any) -> None:  # noqa: N807
        self._module = weakref.ref(module)

    def _state_dict(self: Any) -> dict[str, Any]:
        module = self._module()
        return state_dict(module) if module is not None else {}

    def _load_state_dict(self: Any, saved: dict[str, Any]) -> None:
        module = self._module()
        if module is not None:
            load_state_dict(module, saved)

    def on_train_batch_start(self: Any, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        step_pending_plateau(pl_module)

    def setup(self: Any, trainer: Any, pl_module: Any, stage: str) -> None:
        restore_trainer_options(trainer, pl_module)

    def teardown(self: Any, trainer: Any, pl_module: Any, stage: str) -> None:
        restore_trainer_options(trainer, pl_module, forget=True)

    def on_train_epoch_end(self: Any, trainer: Any, pl_module: Any) -> None:
        run_epoch_end_1x(pl_module)
        step_pending_plateau(pl_module)
        step_epoch_schedulers(pl_module, plateau=True)

    namespace = {
        "__doc__": "Saves the alternation state in checkpoints, steps plateau schedulers, gives the Trainer its options back.",
        "__init__": __init__,
        "state_key": property(state_key),
        "state_dict": _state_dict,
        "load_state_dict": _load_state_dict,
        "on_train_batch_start": on_train_batch_start,
        "on_train_epoch_end": on_train_epoch_end,
        "setup": setup,
        "teardown": teardown,
        # Lightning calls every callback's hook on every batch, unless it is not callable: the base class's empty
        # hooks would cost the loop a dispatch each (its profiler's context included), per batch.
        **dict.fromkeys(_PER_BATCH_HOOKS_NOT_USED),
        "__module__": __name__,
        "__qualname__": "AlternationCallback",
    }
    return type("AlternationCallback", callback_bases(), namespace)

