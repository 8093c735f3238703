"""What a resume reads and writes outside its machinery: the choice (``resume=``), the record of each optimizer's class
and its schedulers' cadence in checkpoints, how far a scheduler was moved, and the report's types.

Callbacks read this module (`SchedulerCadenceCheck` takes the moved steps as the run's counts so far); the machinery
that compares and places (`resume.reconcile`) writes it.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import weakref
from typing import Any, Optional

from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.validation import OptimizerSetup

__all__ = ["CHOICES", "RECORD_KEY", "ResumeDifference", "ResumeReport", "check_choice", "moved_by", "record", "request"]


#: The values of ``resume``: Lightning's behaviour, or the new recipe from where training stands.
CHOICES = ("checkpoint", "recipe")


#: The key the library adds to every optimizer's ``state_dict``: its class and its schedulers' cadence.
RECORD_KEY = "lightning_optim_recipes"


_REQUEST = "_resume_requested"  # a callback's `resume=`, kept on the module until its optimizers are built


_RECORD_HOOKS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


_MOVED: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


@dataclasses.dataclass(frozen=True)
class ResumeDifference:
    """One row of the table: a setting whose checkpoint value differs from the new recipe's, and the value training
    uses."""

    what: str
    checkpoint: str
    recipe: str
    used: str


@dataclasses.dataclass(frozen=True)
class ResumeReport:
    """What a resume compared and did (`on_configured` and `reconcile` return it; the mixins keep it as
    ``resume_report``).

    Attributes:
        choice: ``"checkpoint"`` or ``"recipe"``.
        source: the checkpoint, as named in messages.
        global_step, epoch: where training stands.
        differences: one `ResumeDifference` per setting that differs.
        positions: per scheduler of the recipe, the step count it resumes at.
        dropped_state: under ``"recipe"``, the optimizers whose state (moments) was dropped.
        notes: explanations printed under the table.
    """

    choice: str
    source: str
    global_step: int
    epoch: int
    differences: tuple[ResumeDifference, ...]
    positions: tuple[int, ...]
    dropped_state: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()

    def rows(self) -> list[tuple[str, str, str, str]]:
        """The differences as ``(what, checkpoint, new recipe, training uses)`` tuples."""
        return [(d.what, d.checkpoint, d.recipe, d.used) for d in self.differences]

    def table(self) -> str:
        """The differences as an aligned table with a header line (columns separated by ``" | "``)."""
        rows = [("what", "checkpoint", "new recipe", "training uses"), *self.rows()]
        widths = [max(len(row[c]) for row in rows) for c in range(4)]
        return "\n".join(" | ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def check_choice(value: Any, where: str = "`resume`") -> str:
    """Raise `RecipeError` unless `value` is one of `CHOICES`; return it.

    Example:
        >>> check_choice("recipe")
        'recipe'
        >>> check_choice("new")
        Traceback (most recent call last):
        ...
        lightning_optim_recipes.errors.RecipeError: `resume` must be 'checkpoint' or 'recipe', got 'new'. ...
    """
    if value not in CHOICES:
        raise RecipeError(
            f"{where} must be 'checkpoint' or 'recipe', got {value!r}. 'checkpoint' resumes as Lightning does (the"
            " checkpoint's optimizer and scheduler settings win); 'recipe' keeps the weights, training progress and"
            " moments and trains with the new recipe from where training stands."
        )
    return str(value)


def request(module: Any, choice: Optional[str], by: str) -> None:
    """A callback's ``resume=`` for `module` (None: the callback leaves it to the module), used when the module's
    optimizers are built in this fit."""
    if choice is None:
        return
    previous = module.__dict__.get(_REQUEST)
    if previous is not None and previous[0] != choice:
        raise RecipeError(
            f"{previous[1]}(resume={previous[0]!r}) and {by}(resume={choice!r}) disagree: set `resume` on one"
            " callback only."
        )
    module.__dict__[_REQUEST] = (choice, by)


def _set_on_module(module: Any) -> bool:
    """Whether the module (not just a mixin's default) sets ``resume``."""
    if "resume" in module.__dict__:
        return True
    return any("resume" in klass.__dict__ for klass in type(module).__mro__
               if not klass.__module__.startswith("lightning_optim_recipes"))


def choose(module: Any, own: Optional[str], requested: Optional[tuple[str, str]]) -> str:
    if own is not None:
        check_choice(own, f"`{type(module).__name__}.resume`")
    if requested is None:
        return own or "checkpoint"
    choice, by = requested
    if own is not None and own != choice and _set_on_module(module):
        raise RecipeError(
            f"{type(module).__name__}.resume = {own!r} and {by}(resume={choice!r}) disagree: set it in one place."
        )
    return choice


def record(setup: OptimizerSetup) -> None:
    """Make every optimizer's ``state_dict()`` say its class and its schedulers' class and cadence (under
    `RECORD_KEY`; ``torch`` ignores the entry when it loads), so that a later resume can compare them."""
    for optimizer, info in zip(setup.optimizers, record_info(setup)):
        raw = getattr(optimizer, "_optimizer", optimizer)
        if not hasattr(raw, "register_state_dict_post_hook"):
            continue
        previous = _RECORD_HOOKS.pop(raw, None)
        if previous is not None:
            previous.remove()
        _RECORD_HOOKS[raw] = raw.register_state_dict_post_hook(functools.partial(_add_record, info=info))


def record_info(setup: OptimizerSetup) -> list[dict[str, Any]]:
    """What `record` writes for each optimizer of `setup`: its class and its schedulers' class and cadence."""
    return [{"class": qualname(type(getattr(optimizer, "_optimizer", optimizer))), "schedulers": [
        [k, qualname(type(s.scheduler)), s.interval, s.frequency]
        for k, s in enumerate(setup.schedulers) if s.optimizer_index == index]}
        for index, optimizer in enumerate(setup.optimizers)]


def _add_record(optimizer: Any, state_dict: dict[str, Any], *, info: dict[str, Any]) -> None:
    state_dict[RECORD_KEY] = copy.deepcopy(info)


def qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def moved_by(scheduler: Any) -> int:
    """How many steps ``resume="recipe"`` moved `scheduler` away from its checkpoint count in this fit (0: none), for
    `SchedulerCadenceCheck`'s counts."""
    return _MOVED.get(scheduler, 0)



def take_request(module: Any) -> Optional[tuple[str, str]]:
    """The callback's `request` for `module` (its choice and the callback's name), removed from the module."""
    return module.__dict__.pop(_REQUEST, None)


def set_moved(scheduler: Any, steps: int) -> None:
    """Record that ``resume="recipe"`` moved `scheduler` `steps` away from its checkpoint count (see `moved_by`)."""
    _MOVED[scheduler] = steps
