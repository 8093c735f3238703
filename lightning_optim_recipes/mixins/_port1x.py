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

What each hook reaches and the arguments it takes are resolved when the optimizers are configured (`resolve_hooks`),
not on every call of every batch.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
import warnings
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Optional

from lightning_optim_recipes.errors import RecipeError, RecipeWarning

__all__: list[str] = []

#: Names a 1.x override may give the optimizer index.
IDX_NAMES = ("optimizer_idx", "opt_idx", "optimizer_index", "optimizer_i", "opt_i")

#: hook -> (the arguments 1.x passed by position, the keywords it passed, how many positional arguments 2.x passes)
HOOKS: dict[str, tuple[tuple[str, ...], tuple[str, ...], int]] = {
    "training_step": (("batch", "batch_idx", "optimizer_idx"), (), 2),
    "optimizer_step": (
        ("epoch", "batch_idx", "optimizer", "optimizer_idx", "optimizer_closure"),
        ("on_tpu", "using_native_amp", "using_lbfgs"),
        4,
    ),
    "backward": (("loss", "optimizer", "optimizer_idx"), (), 1),
    "optimizer_zero_grad": (("epoch", "batch_idx", "optimizer", "optimizer_idx"), (), 3),
    "on_before_optimizer_step": (("optimizer", "optimizer_idx"), (), 1),
    "toggle_optimizer": (("optimizer", "optimizer_idx"), (), 1),
    "untoggle_optimizer": (("optimizer_idx",), (), 1),
    "lr_scheduler_step": (("scheduler", "optimizer_idx", "metric"), (), 2),
    "configure_gradient_clipping": (
        ("optimizer", "optimizer_idx"),
        ("gradient_clip_val", "gradient_clip_algorithm"),
        1,
    ),
}

#: The 2.x argument order of each hook (positional, then keywords).
HOOKS_2X: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "training_step": (("batch", "batch_idx"), ()),
    "optimizer_step": (("epoch", "batch_idx", "optimizer", "optimizer_closure"), ()),
    "backward": (("loss",), ()),
    "optimizer_zero_grad": (("epoch", "batch_idx", "optimizer"), ()),
    "on_before_optimizer_step": (("optimizer",), ()),
    "toggle_optimizer": (("optimizer",), ()),
    "untoggle_optimizer": (("optimizer",), ()),
    "lr_scheduler_step": (("scheduler", "metric"), ()),
    "configure_gradient_clipping": (("optimizer",), ("gradient_clip_val", "gradient_clip_algorithm")),
}

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

_LIGHTNING_PACKAGES = ("pytorch_lightning", "lightning", "lightning_fabric")
#: Where a module's 1.x ``training_epoch_end`` is kept (Lightning 2 refuses a module that defines it).
EPOCH_END_1X = "_training_epoch_end_1x"


def is_lightning_class(klass: type) -> bool:
    """Whether `klass` is one of Lightning's own classes (`LightningModule` and its bases)."""
    return klass.__module__.partition(".")[0] in _LIGHTNING_PACKAGES


def _is_library_class(klass: type) -> bool:
    return klass.__module__.startswith("lightning_optim_recipes.")


def user_hook(cls: type, name: str) -> Optional[Callable[..., Any]]:
    """The module's own `name` hook: the first definition in the MRO that is neither the library's nor Lightning's
    (the user's function, unwrapped), or None when the module keeps Lightning's default."""
    for klass in cls.__mro__:
        function = klass.__dict__.get(name)
        if function is None or _is_library_class(klass):
            continue
        if is_lightning_class(klass) or klass is object:
            return None
        return getattr(function, "__wrapped_1x__", function)
    return None


def next_hook(cls: type, name: str, after: type) -> Callable[..., Any]:
    """The `name` hook of the first class after `after` and the library's mixins in `cls`'s MRO (what ``super()``
    from the mixin reaches)."""
    mro = cls.__mro__
    for klass in mro[mro.index(after) + 1 :]:
        if _is_library_class(klass):
            continue
        function = klass.__dict__.get(name)
        if function is not None:
            return getattr(function, "__wrapped_1x__", function)
    raise AttributeError(name)  # pragma: no cover - LightningModule defines every hook


def _parameters(function: Callable[..., Any], bound: bool = False) -> list[inspect.Parameter]:
    """The parameters of a hook as Lightning calls it: without the first one of a method's function (`bound`), nor
    ``self`` of a plain function of a class."""
    parameters = list(inspect.signature(function).parameters.values())
    if parameters and (bound or (inspect.isfunction(function) and parameters[0].name == "self")):
        return parameters[1:]
    return parameters


def _cacheable(function: Callable[..., Any]) -> tuple[Callable[..., Any], bool]:
    """What `call_plan` caches on: a bound method's function (with ``bound=True``: a new bound method is made at each
    attribute access, and it holds its module); any other callable as it is."""
    if inspect.ismethod(function):
        return function.__func__, True
    return function, False


def _is_1x(parameters: list[inspect.Parameter], name: str) -> bool:
    if any(p.name in IDX_NAMES for p in parameters):
        return True
    if name == "untoggle_optimizer":
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if name in ("training_step", "optimizer_step") and any(p.kind == p.VAR_POSITIONAL for p in parameters):
        return True  # `def optimizer_step(self, *args, **kwargs)`: 1.x passed the index
    return len(positional) > HOOKS[name][2] + (2 if name == "configure_gradient_clipping" else 0)


def _plan(function: Callable[..., Any], name: str, bound: bool) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    parameters = _parameters(function, bound)
    legacy = _is_1x(parameters, name)
    positional_names, keyword_names = HOOKS[name][:2] if legacy else HOOKS_2X[name]
    if name == "configure_gradient_clipping" and not legacy:
        positional_names = ("optimizer",)
    accepts_kwargs = any(p.kind == p.VAR_KEYWORD for p in parameters)
    named = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    keywords = tuple(key for key in keyword_names if accepts_kwargs or key in named)
    return positional_names, keywords, legacy


#: The plans of hook functions, by function: weak keys, so that a hook set on an instance (a closure holding its module)
#: does not keep the module alive; a bound method is keyed by its class's function (see `_cacheable`).
_PLANS: weakref.WeakKeyDictionary[Any, dict[tuple[str, bool], tuple[tuple[str, ...], tuple[str, ...], bool]]] = (
    weakref.WeakKeyDictionary())


def call_plan(function: Callable[..., Any], name: str) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """Which values `function` (a class's function, a bound method or another callable) gets by position and by
    keyword (1.x names), and whether it is the 1.x form of hook `name` (see the module docstring)."""
    key, bound = _cacheable(function)
    try:
        plans = _PLANS.get(key)
        if plans is None:
            plans = _PLANS[key] = {}
    except TypeError:  # neither hashable nor weakly referable
        return _plan(key, name, bound)
    plan = plans.get((name, bound))
    if plan is None:
        plan = plans[(name, bound)] = _plan(key, name, bound)
    return plan


def takes_1x(function: Callable[..., Any], name: str) -> bool:
    """Whether `function` (a class's function, a bound method or another callable) is the 1.x form of hook `name`
    (see the module docstring)."""
    return call_plan(function, name)[2]


def arguments(function: Callable[..., Any], name: str, values: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """The arguments to call `function` (hook `name`, 1.x or 2.x form) with, from `values` keyed by 1.x names."""
    positional_names, keywords, _ = call_plan(function, name)
    return [values.get(key) for key in positional_names], {key: values.get(key) for key in keywords}


def hook(module: Any, name: str) -> Callable[..., Any]:
    """What Lightning would call for hook `name`: an instance attribute (e.g. a ``Mock``), else the bound method."""
    return getattr(module, name)


def overridden(module: Any, name: str) -> bool:
    """Whether the module has its own `name` hook: in its class hierarchy (not Lightning's or the library's) or set on
    the instance."""
    return name in module.__dict__ or user_hook(type(module), name) is not None


#: Where `resolve_hooks` keeps its answer: in the module's ``__dict__``.
RESOLVED_KEY = "_port1x_resolved_hooks"

#: How `call` calls one hook: the function, called with the module first (None: the module's bound attribute), and
#: the values it takes by position and by keyword (1.x names).
_Call = tuple[Optional[Callable[..., Any]], tuple[str, ...], tuple[str, ...]]


class ResolvedHooks:
    """What `call` and the mixin's own hooks (`forward_super`) would otherwise look up on every call, resolved when
    the optimizers are configured (each fit, each preview): per hook, the function that runs and its arguments.

    Valid for one class (`cls`) and one mixin (`after`); a hook set on the instance (a ``Mock``) is looked up on every
    call. Not copied with the module: a pickled or deep-copied module looks its hooks up until its next fit."""

    def __init__(self, cls: type, after: type, calls: dict[str, _Call],
                 forwards: dict[str, tuple[Callable[..., Any], bool]]) -> None:
        self.cls, self.after = cls, after
        self.calls = calls  # hook -> how `call` calls it
        self.forwards = forwards  # hook -> (what the mixin's own hook forwards to, whether it takes 1.x's arguments)

    def __reduce__(self) -> tuple[Any, ...]:
        return _unresolved, ()


#: The mixins' own hooks made by `forward_super`, by (mixin, hook).
_FORWARDERS: dict[tuple[type, str], Callable[..., Any]] = {}


def _unresolved() -> None:
    return None


def resolve_hooks(module: Any, mixin: type) -> None:
    """Resolve, for `call` and for `mixin`'s own hooks (`forward_super`), which function each of the module's 1.x
    hooks (`HOOKS`) reaches and the arguments it takes; kept in the module's ``__dict__`` (`RESOLVED_KEY`)."""
    cls = type(module)
    calls: dict[str, _Call] = {}
    forwards: dict[str, tuple[Callable[..., Any], bool]] = {}
    for name in HOOKS:
        try:
            target = next_hook(cls, name, mixin)
            positional, keywords, legacy = call_plan(target, name)
            definer = next(klass for klass in cls.__mro__ if name in klass.__dict__)
            if definer.__dict__[name] is _FORWARDERS.get((mixin, name)):  # the module keeps the mixin's own hook
                calls[name] = (target, positional, keywords)
            else:
                own_positional, own_keywords, _ = call_plan(getattr(module, name), name)
                calls[name] = (None, own_positional, own_keywords)
            forwards[name] = (target, legacy)
        except (AttributeError, StopIteration, TypeError, ValueError):  # left to the look-up on every call
            calls.pop(name, None)
    module.__dict__[RESOLVED_KEY] = ResolvedHooks(cls, mixin, calls, forwards)


def call(module: Any, name: str, values: Mapping[str, Any]) -> Any:
    """Call the module's `name` hook as Lightning 1.9 called it (1.x form) or as 2.x does (2.x form).

    With the module's hooks resolved (`resolve_hooks`), a hook it keeps from the mixin is called where the mixin's
    would forward it, with all of `values`: a 1.x hook of a base class listed after the mixin gets its index."""
    resolved = module.__dict__.get(RESOLVED_KEY)
    if resolved is not None and resolved.cls is type(module) and name not in module.__dict__:
        entry = resolved.calls.get(name)
        if entry is not None:
            function, positional, keywords = entry
            args = [values.get(key) for key in positional]
            if function is None:  # the module's own hook
                function = getattr(module, name)
            else:  # the mixin's own hook: straight to the class it forwards to
                args.insert(0, module)
            if keywords:
                return function(*args, **{key: values.get(key) for key in keywords})
            return function(*args)
    function = hook(module, name)
    args, kwargs = arguments(function, name, values)
    return function(*args, **kwargs)


def parse(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The values of a hook call made with either form (``super().hook(...)`` from a ported module), keyed by 1.x
    names."""
    legacy_names, legacy_keywords, modern_count = HOOKS[name]
    modern_names = HOOKS_2X[name][0]
    idx_given = any(k in kwargs for k in IDX_NAMES)
    if name == "untoggle_optimizer":
        legacy = (bool(args) and isinstance(args[0], int)) or idx_given
    elif name == "configure_gradient_clipping":  # (optimizer, idx, val, algorithm) or (optimizer, val, algorithm)
        legacy = idx_given or (len(args) >= 2 and isinstance(args[1], int) and not isinstance(args[1], bool)
                               and "gradient_clip_val" not in kwargs and len(args) != 3) or len(args) == 4
    else:
        legacy = len(args) > modern_count or idx_given or any(k in kwargs for k in legacy_keywords)
    order = legacy_names if legacy else modern_names
    if name == "configure_gradient_clipping":
        order = legacy_names + ("gradient_clip_val", "gradient_clip_algorithm") if legacy else (
            "optimizer", "gradient_clip_val", "gradient_clip_algorithm")
    values = dict(zip(order, args))
    for key, value in kwargs.items():
        values["optimizer_idx" if key in IDX_NAMES else key] = value
    return values


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
            if function is None or _is_library_class(klass) or is_lightning_class(klass):
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


def forward_super(name: str, mixin: type) -> Callable[..., Any]:
    """The mixin's own `name` hook: reached by ``super().<name>(...)`` from the module (either form of arguments),
    it calls the next class's hook with the form that hook takes."""
    count = len(HOOKS_2X[name][0])
    # 2.x's arguments, all by position: `parse` would pass them on as they are (not configure_gradient_clipping's)
    plain = name != "configure_gradient_clipping" and count == HOOKS[name][2]

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        resolved = self.__dict__.get(RESOLVED_KEY)
        forwards = resolved.forwards if resolved is not None and resolved.cls is type(self) \
            and resolved.after is mixin else {}
        if name in forwards:
            function, legacy = forwards[name]
            if plain and not legacy and not kwargs and len(args) == count and not (
                name == "untoggle_optimizer" and isinstance(args[0], int)
            ):
                return function(self, *args)  # a 2.x call of a 2.x hook
        else:
            function = next_hook(type(self), name, mixin)
        values = parse(name, args, kwargs)
        if "optimizer" not in values and values.get("optimizer_idx") is not None:  # 1.x's untoggle_optimizer(idx)
            values["optimizer"] = self.trainer.optimizers[values["optimizer_idx"]]
        call_args, call_kwargs = arguments(function, name, values)
        return function(self, *call_args, **call_kwargs)

    forward.__name__ = forward.__qualname__ = name
    _FORWARDERS[(mixin, name)] = forward
    forward.__doc__ = f"Forwards ``super().{name}(...)`` (1.x or 2.x arguments) to the next class's hook."
    return forward


