"""Which hooks of a module or a callback set learning rates by hand, read from their code.

A module may set its lrs itself (MAE's ``adjust_learning_rate`` before every batch, a warm-up in
``on_before_optimizer_step``, a decay in ``training_step``). `preview_schedule` runs the hooks it can run without the
run's data and refuses the ones it cannot; this module only answers which hooks write an lr: an assignment to a
param group's ``'lr'`` (``group['lr'] = ...``, ``group.update(lr=...)``), or a step of a scheduler
(``sch.step()``, timm's ``scheduler.step_update(n)``, SysCV/vis4d's ``scheduler.step_on_batch(n)``: a call of one
of those on something named like a scheduler), in the hook or in a function or method it calls (followed two calls
deep, through the hook's globals and the object's class). Code without source (a builtin,
a lambda typed at a prompt) writes nothing that can be seen.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from typing import Any, Callable, Optional

__all__ = ["is_scheduler_step", "source_tree", "writes_lr"]

#: How many calls deep a hook is followed.
DEPTH = 2
#: The methods that step a scheduler (torch's, timm's per-update one, SysCV/vis4d's per-batch one).
STEPS = frozenset({"step", "step_update", "step_on_batch"})


def writes_lr(owner: Any, name: str) -> Optional[int]:
    """The line of the first lr assignment in `owner`'s own `name` hook (or in what it calls), None when it writes
    none or has no source.

    Example:
        >>> class Warmup:
        ...     def on_train_batch_start(self, batch, batch_idx):
        ...         for group in self.optimizer.param_groups:
        ...             group["lr"] = 0.1 * min(1.0, batch_idx / 100)
        >>> writes_lr(Warmup(), "on_train_batch_start") is not None
        True
    """
    function = getattr(type(owner), name, None) if name not in getattr(owner, "__dict__", {}) else owner.__dict__[name]
    function = getattr(function, "__func__", function)
    if not callable(function):
        return None
    return _writes(function, type(owner), DEPTH, set())


def _writes(function: Callable[..., Any], cls: type, depth: int, seen: set[int]) -> Optional[int]:
    function = inspect.unwrap(getattr(function, "__wrapped_1x__", function))
    if id(function) in seen or not inspect.isfunction(function):
        return None
    seen.add(id(function))
    tree, first = _tree(function)
    if tree is None:
        return None
    calls: list[ast.Call] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(_is_lr_item(target) for target in targets):
                return first + node.lineno - 1
        elif isinstance(node, ast.Call):
            if _is_lr_update(node) or is_scheduler_step(node):
                return first + node.lineno - 1
            calls.append(node)
    if depth == 0:
        return None
    for call in calls:
        callee = _callee(call.func, function, cls)
        if callee is not None and _writes(callee, cls, depth - 1, seen) is not None:
            return first + call.lineno - 1
    return None


@functools.lru_cache(maxsize=512)
def _parsed(source: str) -> Optional[ast.AST]:
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def _tree(function: Callable[..., Any]) -> tuple[Optional[ast.AST], int]:
    try:
        lines, first = inspect.getsourcelines(function)
    except (OSError, TypeError):
        return None, 0
    return _parsed(textwrap.dedent("".join(lines))), first


def source_tree(function: Callable[..., Any]) -> Optional[ast.AST]:
    """The parsed source of `function` (parsed once), None when it has none (a builtin, code typed at a prompt)."""
    return _tree(getattr(function, "__func__", function))[0]


def _is_lr_item(target: ast.AST) -> bool:
    """``x['lr']`` as an assignment target (also inside a tuple)."""
    if isinstance(target, (ast.Tuple, ast.List)):
        return any(_is_lr_item(element) for element in target.elts)
    return isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant) and target.slice.value == "lr"


def _is_lr_update(call: ast.Call) -> bool:
    """``group.update(lr=...)`` or ``group.update({'lr': ...})``."""
    if not (isinstance(call.func, ast.Attribute) and call.func.attr == "update"):
        return False
    if any(keyword.arg == "lr" for keyword in call.keywords):
        return True
    return any(isinstance(arg, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "lr" for k in arg.keys)
               for arg in call.args)


def is_scheduler_step(call: ast.Call) -> bool:
    """A call that steps a scheduler: ``sch.step()``, ``self.lr_schedulers().step()``,
    ``self.scheduler.step_update(n)`` (one of `STEPS` on something named like a scheduler)."""
    return (isinstance(call.func, ast.Attribute) and call.func.attr in STEPS
            and "sch" in ast.unparse(call.func.value).lower())


def _callee(func: ast.AST, caller: Callable[..., Any], cls: type) -> Optional[Callable[..., Any]]:
    """What a call in `caller` calls, when the code says: ``self.method(...)``, ``name(...)``, ``module.name(...)``."""
    scope = getattr(caller, "__globals__", {})
    if isinstance(func, ast.Name):
        target = scope.get(func.id)
    elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        if func.value.id in ("self", "cls"):
            target = getattr(cls, func.attr, None)
        else:
            target = getattr(scope.get(func.value.id), func.attr, None)
    else:
        return None
    target = getattr(target, "__func__", target)
    return target if inspect.isfunction(target) else None
