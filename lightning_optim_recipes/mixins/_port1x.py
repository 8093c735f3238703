"""Porting Lightning 1.x multi-optimizer modules unchanged: every 1.x hook that took ``optimizer_idx``.

Lightning 2.0 removed several optimizers under automatic optimization, and with them the ``optimizer_idx`` argument
of nine hooks. `AlternatingOptimizersMixin` runs a module under manual optimization and calls each of the module's
own overrides where Lightning 1.9 called it, with the arguments 1.9 passed. This module holds all of that magic:

+-------------------------------------------+-------------------------------------------------------------------------+
| 1.x hook                                  | What the mixin does with a module's override                            |
+===========================================+=========================================================================+
| ``training_step(batch, batch_idx,         | Called once per active optimizer, with its index                        |
| optimizer_idx)``                          | (``super().training_step(batch, batch_idx)`` reaches the base class's   |
|                                           | step).                                                                  |
+-------------------------------------------+-------------------------------------------------------------------------+
| ``optimizer_step(epoch, batch_idx,        | Called on the optimizer's turn when its accumulation window closes,     |
| optimizer, optimizer_idx, closure, ...)`` | with a closure that runs the step function, zero_grad (first batch of   |
|                                           | the window) and backward, and returns the loss;                         |
|                                           | ``optimizer.step(closure=...)`` steps. On other batches of the window   |
|                                           | the closure runs alone. An override that never runs the closure is an   |
|                                           | error.                                                                  |
+-------------------------------------------+-------------------------------------------------------------------------+
| ``backward(loss, optimizer,               | Called by ``manual_backward`` with the optimizer and its index.         |
| optimizer_idx)``                          |                                                                         |
+-------------------------------------------+-------------------------------------------------------------------------+
| ``optimizer_zero_grad(epoch, batch_idx,   | Called where 1.9 zeroed gradients: the first batch of each accumulation |
| optimizer, idx)``                         | window, after ``on_before_zero_grad``.                                  |
+-------------------------------------------+-------------------------------------------------------------------------+
| ``on_before_optimizer_step(optimizer,     | Called by Lightning before each optimizer step, with the optimizer's    |
| optimizer_idx)``                          | index added.                                                            |
+-------------------------------------------+-------------------------------------------------------------------------+
| ``toggle_optimizer(optimizer,             | Called around each optimizer's turn (only its parameters require grad;  |
| optimizer_idx)``,                         | a parameter shared by several optimizers requires grad in the turn of   |
| ``untoggle_optimizer(idx)``               | each).                                                                  |
+-------------------------------------------+-------------------------------------------------------------------------+
| ``lr_scheduler_step(scheduler,            | Called for each scheduler step, with the index of the scheduler's       |
| optimizer_idx, metric)``                  | optimizer.                                                              |
+-------------------------------------------+-------------------------------------------------------------------------+
| ``configure_gradient_clipping(optimizer,  | Called before every optimizer step (as 1.9 did), with the mixin's clip  |
| optimizer_idx, val, algorithm)``          | value for that optimizer (None when unset) and its algorithm.           |
+-------------------------------------------+-------------------------------------------------------------------------+

A hook is taken for its 1.x form when it has a parameter named ``optimizer_idx`` (or ``opt_idx``) or more positional
parameters than its 2.x form; 1.x called the leading arguments by position, so their names do not matter. The 2.x
forms of the same hooks keep their 2.x meaning. ``super().<hook>(...)`` with 1.x arguments from a class that lists
the mixin in its bases reaches the next class's hook with the arguments it takes. Hooks Lightning 2 stopped calling
(``on_epoch_end``, ``on_batch_start``, ``on_batch_end``, ...) get a warning at fit start that names their 2.x
replacement.

How each form is recognized and called is the hook model of `lightning_optim_recipes.hooks`, which the trajectory
replay shares; this module holds what only the port does: the checks at class creation and fit start, and the
wrapped ``on_before_optimizer_step``.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
import warnings
from collections.abc import Callable
from typing import Any

from lightning_optim_recipes.errors import RecipeError, RecipeWarning
from lightning_optim_recipes.hooks import (
    HOOKS,
    HOOKS_2X,
    IDX_NAMES,
    is_library_class,
    is_lightning_class,
    takes_1x,
    user_hook,
)

__all__: list[str] = []


#: Hooks Lightning 2.0 stopped calling without a word, and where their code belongs now.
REMOVED_HOOKS = {
    "on_epoch_start": "`on_train_epoch_start` (and `on_validation_epoch_start`, ...)",
    "on_epoch_end": "`on_train_epoch_end` (and `on_validation_epoch_end`, ...)",
    "on_batch_start": "`on_train_batch_start(self, batch, batch_idx)`",
    "on_batch_end": "`on_train_batch_end(self, outputs, batch, batch_idx)`",
    "on_pretrain_routine_start": "`on_fit_start`",
    "on_pretrain_routine_end": "`on_fit_start`",
    "on_post_move_to_device": "`setup` (or tie weights in `__init__`)",
}

#: Where a module's 1.x ``training_epoch_end`` is kept (Lightning 2 refuses a module that defines it).
EPOCH_END_1X = "_training_epoch_end_1x"


# ------------------------------------------------------------------------------------ class-creation checks


def super_calls_with_1x_arguments(function: Callable[..., Any], name: str) -> bool:
    """Whether `function` calls ``super().<name>(...)`` with more positional arguments than 2.x takes, or with an
    optimizer index keyword (read from its source; False when the source is not available)."""
    code = getattr(function, "__code__", None)
    if code is None or "__class__" not in code.co_freevars or name not in code.co_names:
        return False
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):  # pragma: no cover - no source (REPL, compiled)
        return False
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == name
            and isinstance(node.func.value, ast.Call)
            and getattr(node.func.value.func, "id", None) == "super"
        ):
            if len(node.args) > HOOKS[name][2] or any(k.arg in IDX_NAMES for k in node.keywords):
                return True
    return False


def check_super_calls(cls: type, mixin: type) -> None:
    """Refuse, before training, a 1.x hook in a base class listed after the mixin whose ``super()`` call with 1.x
    arguments would reach Lightning 2's hook (which takes no optimizer index) instead of the mixin."""
    mro = cls.__mro__
    below = mro[mro.index(mixin) + 1 :]
    for name in HOOKS:
        for position, klass in enumerate(below):
            function = klass.__dict__.get(name)
            if function is None or is_library_class(klass) or is_lightning_class(klass):
                continue
            nxt = next((k for k in below[position + 1 :] if name in k.__dict__), None)
            if nxt is not None and is_lightning_class(nxt) and super_calls_with_1x_arguments(function, name):
                raise RecipeError(
                    f"`{klass.__name__}.{name}` calls `super().{name}(...)` with Lightning 1.x arguments, which would"
                    f" reach Lightning 2's `LightningModule.{name}` (it takes no optimizer index) because"
                    f" `{klass.__name__}` comes after AlternatingOptimizersMixin in `{cls.__name__}`'s bases. Add the"
                    f" mixin to `{klass.__name__}`'s own bases (`class {klass.__name__}(AlternatingOptimizersMixin,"
                    f" ...)`), or call `super().{name}` with the 2.x arguments"
                    f" ({', '.join(HOOKS_2X[name][0])})."
                )
            break


def warn_removed_hooks(module: Any) -> None:
    """Warn once per hook that Lightning 2 no longer calls and that the module still defines."""
    cls = type(module)
    for name, replacement in REMOVED_HOOKS.items():
        if user_hook(cls, name) is None:
            continue
        warnings.warn(
            f"{cls.__name__} defines `{name}`, a Lightning 1.x hook that Lightning 2 never calls: its code does not"
            f" run. Move it to {replacement}.",
            RecipeWarning,
            stacklevel=2,
        )


# ------------------------------------------------------------------------------------------ wrapped hooks


def wrap_on_before_optimizer_step(
    function: Callable[..., Any], index_of: Callable[[Any, Any], int], after: Callable[[Any, Any], None]
) -> Callable[..., Any]:
    """Lightning 2 calls ``on_before_optimizer_step(optimizer)``: add the index a 1.x override takes, and run `after`
    (the mixin's gradient clipping) once the outermost call returns, as 1.9 and 2.x clip after this hook."""
    legacy = takes_1x(function, "on_before_optimizer_step")

    @functools.wraps(function)
    def on_before_optimizer_step(self: Any, optimizer: Any, *args: Any, **kwargs: Any) -> Any:
        outer = not self.__dict__.get("_in_before_optimizer_step")
        self.__dict__["_in_before_optimizer_step"] = True
        try:
            if args or kwargs or not legacy:  # a 2.x hook, or a `super()` call that already passes the index
                result = function(self, optimizer, *args, **kwargs)
            else:
                result = function(self, optimizer, index_of(self, optimizer))
        finally:
            if outer:
                self.__dict__["_in_before_optimizer_step"] = False
        if outer:
            after(self, optimizer)
        return result

    on_before_optimizer_step.__wrapped_1x__ = function  # type: ignore[attr-defined]
    on_before_optimizer_step.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
         inspect.Parameter("optimizer", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    )
    return on_before_optimizer_step


