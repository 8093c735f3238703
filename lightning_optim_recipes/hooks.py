"""The model of Lightning's hooks in their 1.x and 2.x forms: which arguments each form takes, which function a
module's hook reaches, and how to call it as Lightning 1.9 or 2.x calls it.

Lightning 2.0 removed the ``optimizer_idx`` argument of nine hooks (`HOOKS`). A module's override is taken for its
1.x form when it has a parameter named ``optimizer_idx`` (or ``opt_idx``, ...) or more positional parameters than
its 2.x form; 1.x called the leading arguments by position, so their names do not matter. `call` calls an override
with the form it takes. `AlternatingOptimizersMixin` runs ported 1.x modules with it (see `mixins._port1x`), and the
trajectory replay calls a module's ``lr_scheduler_step`` and ``optimizer_step`` overrides with it.

What each hook reaches and the arguments it takes are resolved once per fit (`resolve_hooks`), not on every call of
every batch.
"""

from __future__ import annotations

import ast
import inspect
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Optional

from lightning_optim_recipes.by_hand import is_scheduler_step, source_tree

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


_LIGHTNING_PACKAGES = ("pytorch_lightning", "lightning", "lightning_fabric")


def is_lightning_class(klass: type) -> bool:
    """Whether `klass` is one of Lightning's own classes (`LightningModule` and its bases)."""
    return klass.__module__.partition(".")[0] in _LIGHTNING_PACKAGES


def is_library_class(klass: type) -> bool:
    return klass.__module__.startswith("lightning_optim_recipes.")


def user_hook(cls: type, name: str) -> Optional[Callable[..., Any]]:
    """The module's own `name` hook: the first definition in the MRO that is neither the library's nor Lightning's
    (the user's function, unwrapped), or None when the module keeps Lightning's default."""
    for klass in cls.__mro__:
        function = klass.__dict__.get(name)
        if function is None or is_library_class(klass):
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
        if is_library_class(klass):
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


def arguments(function: Callable[..., Any], name: str, values: Mapping[str, Any],
              lightning_2: bool = False) -> tuple[list[Any], dict[str, Any]]:
    """The arguments to call `function` (hook `name`, 1.x or 2.x form) with, from `values` keyed by 1.x names. With
    `lightning_2` (the caller stands for Lightning 2, not the 1.x port), a hook that forwards ``*args`` gets 2.x's."""
    if lightning_2 and _forwards(function, name):
        positional, keyword_names = HOOKS_2X[name]
        return [values.get(key) for key in positional], {key: values.get(key) for key in keyword_names}
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
    args, kwargs = arguments(function, name, values, lightning_2=not getattr(module, "_alternates_optimizers", False))
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



# ------------------------------------------------------------------------------------- schedulers by hand

#: The methods a module may step its schedulers in (Lightning's hooks a user overrides).
_STEPPING_METHODS = ("training_step", "on_train_batch_end", "on_train_batch_start", "on_train_epoch_end",
                     "on_train_epoch_start", "on_before_optimizer_step", "optimizer_step", "on_validation_epoch_end",
                     "on_validation_end", "on_train_end")


def steps_schedulers_by_hand(cls: type) -> Optional[str]:
    """The name of the first of the module's own hooks that steps a scheduler by hand (``self.lr_schedulers()``, or a
    ``.step(...)`` call on something named like a scheduler: ``sch.step()``, ``self.scheduler.step()``), from its
    source; None when none does (or the source cannot be read)."""
    for name in _STEPPING_METHODS:
        function = user_hook(cls, name)
        if function is not None and _steps_a_scheduler(function):
            return name
    return None


def _steps_a_scheduler(function: Callable[..., Any]) -> bool:
    tree = source_tree(function)  # no source (REPL, compiled): assume it does not
    return tree is not None and any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and (node.func.attr == "lr_schedulers" or is_scheduler_step(node)) for node in ast.walk(tree))


# ----------------------------------------------------------------------------------------- replayable hooks

#: Functions a replayable hook may call: pure builtins and `math`.
_PURE_CALLS = frozenset({"min", "max", "float", "int", "abs", "round", "len", "range", "enumerate", "zip", "isinstance",
                         "getattr", "hasattr", "bool", "sum", "any", "all", "pow", "divmod", "list", "tuple"})


def replayable(function: Callable[..., Any]) -> bool:
    """Whether a module's ``lr_scheduler_step`` or ``optimizer_step`` override can be replayed before training
    without touching anything the run uses: read from its source, it only steps and sets what it is given (the
    scheduler, the optimizer and its param groups, the closure), reads the module's attributes, and calls nothing
    else but pure builtins, ``math`` and the same hook of its base class. Anything more (``self.log``, an EMA
    update, a list it appends to) makes it not replayable: its lr curve is then checked during training."""
    tree = source_tree(function)
    definition = tree.body[0] if isinstance(tree, ast.Module) and tree.body else None
    if not isinstance(definition, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    arguments = definition.args
    names = [a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs]
    given = set(names[1:]) | {a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None}
    return _Pure(given, definition.name).check(definition)


class _Pure(ast.NodeVisitor):
    """Walks a hook's body; `ok` turns False at the first thing it may not do (see `replayable`)."""

    def __init__(self, given: set[str], hook: str) -> None:
        self.given, self.hook, self.ok = set(given), hook, True
        self.local: set[str] = set()

    def check(self, definition: ast.AST) -> bool:
        for statement in definition.body:  # type: ignore[attr-defined]
            self.visit(statement)
        return self.ok

    def _root(self, node: ast.AST) -> Optional[str]:
        while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
            node = node.func if isinstance(node, ast.Call) else node.value
        return node.id if isinstance(node, ast.Name) else None

    def visit_Assign(self, node: ast.Assign) -> None:  # noqa: N802
        self._targets(node.targets, node.value)
        self.visit(node.value)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:  # noqa: N802
        self._targets([node.target], node.value)
        self.visit(node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:  # noqa: N802
        self._targets([node.target], node.value)
        if node.value is not None:
            self.visit(node.value)

    def _targets(self, targets: list[ast.expr], value: Optional[ast.expr]) -> None:
        for target in targets:
            if isinstance(target, ast.Name):
                self.local.add(target.id)
                if value is not None and self._root(value) in self.given:
                    self.given.add(target.id)  # `groups = optimizer.param_groups`: what it is given
            elif isinstance(target, (ast.Tuple, ast.List)):
                self._targets(list(target.elts), value)
            elif self._root(target) not in self.given:
                self.ok = False  # `self.x = ...`, `other[...] = ...`

    def visit_For(self, node: ast.For) -> None:  # noqa: N802
        if self._root(node.iter) in self.given and isinstance(node.target, ast.Name):
            self.given.add(node.target.id)  # `for group in optimizer.param_groups`
        self._targets([node.target], None)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:  # noqa: N802
        func = node.func
        root = self._root(func)
        if isinstance(func, ast.Name) and func.id in _PURE_CALLS:
            pass
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "math":
            pass
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call) and \
                getattr(func.value.func, "id", None) == "super" and func.attr == self.hook:
            pass
        elif root in self.given or (isinstance(func, ast.Name) and func.id in self.given):
            pass
        else:
            self.ok = False
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:  # noqa: N802
        self.ok = False

    visit_Nonlocal = visit_Global  # type: ignore[assignment]  # noqa: N815
    visit_Delete = visit_Global  # type: ignore[assignment]  # noqa: N815
    visit_Import = visit_Global  # type: ignore[assignment]  # noqa: N815
    visit_ImportFrom = visit_Global  # type: ignore[assignment]  # noqa: N815


#: The hooks Lightning never calls under manual optimization (``automatic_optimization = False``): ``training_step``
#: steps, zeroes and clips, and steps the schedulers, itself.
AUTOMATIC_ONLY = ("optimizer_step", "optimizer_zero_grad", "lr_scheduler_step", "configure_gradient_clipping")


def uncalled_hooks(cls: type, automatic: bool) -> list[str]:
    """The module's own hooks that Lightning never calls in its optimization mode: under manual optimization, its
    overrides of `AUTOMATIC_ONLY` (their code never runs)."""
    return [] if automatic else [name for name in AUTOMATIC_ONLY if user_hook(cls, name) is not None]


def _forwards(function: Callable[..., Any], name: str) -> bool:
    """Whether `function` takes 1.x's arguments only by ``*args`` (``def optimizer_step(self, *args, **kwargs)``): it
    forwards whatever it is given, so Lightning 2 calls it as well as 1.x did."""
    parameters = _parameters(*_cacheable(function))
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return (any(p.kind == p.VAR_POSITIONAL for p in parameters) and not any(p.name in IDX_NAMES for p in parameters)
            and len(positional) <= HOOKS[name][2])


def legacy_hooks(cls: type, automatic: bool = True) -> list[str]:
    """The module's own hooks in their Lightning 1.x form (with ``optimizer_idx``), and 1.x's
    ``training_epoch_end``, which Lightning 2 refuses or calls with the wrong arguments; not a hook that forwards
    ``*args`` (Lightning 2 calls it as well), nor, under manual optimization (not `automatic`), the hooks Lightning
    never calls then (`uncalled_hooks`)."""
    uncalled = uncalled_hooks(cls, automatic)
    found = [name for name in HOOKS if name not in uncalled and (function := user_hook(cls, name)) is not None
             and takes_1x(function, name) and not _forwards(function, name)]
    if user_hook(cls, "training_epoch_end") is not None:
        found.append("training_epoch_end")
    return found

