"""What a schedule is written for: its declared length and the points it must reach, read from the scheduler object.

`horizon_of` knows torch's schedulers and the library's factories, and reads the length any other schedule declares:
the keywords of a ``LambdaLR``'s ``functools.partial`` (transformers' ``get_linear_schedule_with_warmup`` stores
``num_warmup_steps`` and ``num_training_steps`` there), the variables a ``LambdaLR`` closure captures
(``lambda s: min(1, s / warmup)``), and the attributes of a scheduler class (``max_epochs`` and ``warmup_epochs`` of
the ``LinearWarmupCosineAnnealingLR`` many projects ship, timm's ``t_initial`` and ``warmup_t``). Lengths are in the
scheduler's own steps. The fit checks compare them with how often the run will step it; nothing here runs a
scheduler.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from typing import Any, Optional

from torch.optim.lr_scheduler import (
    ConstantLR,
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    CyclicLR,
    LambdaLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    PolynomialLR,
    SequentialLR,
)

from lightning_optim_recipes.schedules import schedule_length

__all__ = ["END_NAMES", "EPOCH_NAMES", "WARMUP_NAMES", "Horizon", "declared_epoch", "declared_lengths", "horizon_of"]

#: Names under which a schedule declares its whole length (in its own steps), most specific first.
END_NAMES = ("num_training_steps", "total_steps", "training_steps", "max_steps", "num_steps", "total_iters",
             "max_iters", "max_iter", "t_total", "T_max", "t_initial", "max_epochs", "total_epochs", "num_epochs",
             "total")
#: Names under which a schedule declares the length of its warm-up.
WARMUP_NAMES = ("num_warmup_steps", "warmup_steps", "warmup_iters", "warmup_iter", "n_warmup_steps", "warmup_t",
                "warmup_epochs", "warmup")


@dataclasses.dataclass(frozen=True)
class Horizon:
    """What a schedule is written for, in scheduler steps: where it ends (`end`), and points it must reach.

    Attributes:
        end: the step at which the schedule is done (None: it runs on).
        end_what: how the schedule says it, for messages (``"T_max=100"``).
        reach: ``(step, what)`` points the run should reach: milestones, warm-up ends.
        in_steps: the schedule is written in optimizer steps whatever its interval (OneCycleLR, warm-ups).
        declared: the length was read from names the schedule declares (not from a class the library knows).
        hard: stepping it past `end` raises (torch's OneCycleLR: "Tried to step 7 times. The specified number of
            total steps is 6"), so a run that steps it more often stops there.
        cycles: it rises again after each decay by design (torch's CyclicLR and CosineAnnealingWarmRestarts): a rise
            after a fall is its next cycle, not a warm-up.
    """

    end: Optional[int] = None
    end_what: str = ""
    reach: tuple[tuple[int, str], ...] = ()
    in_steps: bool = False
    declared: bool = False
    hard: bool = False
    cycles: bool = False


def horizon_of(scheduler: Any) -> Horizon:
    """The `Horizon` of a scheduler: from its type when the library knows it, else from the lengths it declares.

    Example:
        >>> import functools, torch
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        >>> horizon_of(torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)).end
        100
        >>> horizon_of(torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[30, 60])).reach
        ((30, 'milestone 30'), (60, 'milestone 60'))
        >>> def linear(step, *, num_warmup_steps, num_training_steps):  # as transformers' lambdas take them
        ...     return min(1.0, step / max(1, num_warmup_steps))
        >>> lambda_lr = torch.optim.lr_scheduler.LambdaLR(
        ...     opt, functools.partial(linear, num_warmup_steps=10, num_training_steps=1000))
        >>> horizon = horizon_of(lambda_lr)
        >>> horizon.end, horizon.end_what, horizon.reach
        (1000, "its lr_lambda's num_training_steps=1000", ((10, 'the warm-up end (num_warmup_steps=10)'),))
    """
    if isinstance(scheduler, OneCycleLR):
        return Horizon(int(scheduler.total_steps), f"total_steps={scheduler.total_steps}", in_steps=True, hard=True)
    if isinstance(scheduler, CosineAnnealingLR):
        return Horizon(int(scheduler.T_max), f"T_max={scheduler.T_max}")
    if isinstance(scheduler, PolynomialLR):
        return Horizon(int(scheduler.total_iters), f"total_iters={scheduler.total_iters}")
    if isinstance(scheduler, LinearLR):
        if scheduler.end_factor < scheduler.start_factor:  # a decay: it should end with the run
            return Horizon(int(scheduler.total_iters), f"total_iters={scheduler.total_iters}")
        return Horizon(reach=((int(scheduler.total_iters), f"the warm-up end (total_iters={scheduler.total_iters})"),))
    if isinstance(scheduler, ConstantLR):
        return Horizon(reach=((int(scheduler.total_iters), f"the end of its constant phase (total_iters="
                                                            f"{scheduler.total_iters})"),))
    if isinstance(scheduler, MultiStepLR):
        return Horizon(reach=tuple((int(m), f"milestone {m}") for m in sorted(scheduler.milestones)))
    if isinstance(scheduler, SequentialLR):
        milestones = list(scheduler._milestones)
        last = horizon_of(scheduler._schedulers[-1])
        reach = tuple((int(m), f"milestone {m}") for m in milestones)
        end = milestones[-1] + last.end if last.end is not None and milestones else None
        return Horizon(end, f"its last milestone plus {last.end_what}" if end is not None else "", reach)
    warmup = getattr(scheduler, "warmup_steps", None)
    total = getattr(scheduler, "total_steps", None)
    if isinstance(total, int) and isinstance(scheduler, LambdaLR):  # `warmup_cosine`, `warmup_linear`
        reach = ((warmup, f"the warm-up end (warmup_steps={warmup})"),) if isinstance(warmup, int) and warmup else ()
        return Horizon(total, f"total_steps={total}", reach, in_steps=True)
    if isinstance(scheduler, LambdaLR) and len(scheduler.lr_lambdas) >= 1:
        length = schedule_length(scheduler.lr_lambdas[0])
        if length is not None:
            return Horizon(length, f"its schedule of {length} steps")
        return _declared(declared_lengths(scheduler.lr_lambdas[0]), "its lr_lambda's")
    if isinstance(scheduler, (CyclicLR, CosineAnnealingWarmRestarts)):
        return Horizon(cycles=True)
    if type(scheduler).__module__.startswith("torch."):
        return Horizon()  # torch's other schedulers run on (ExponentialLR, StepLR, ...)
    return _declared(declared_lengths(scheduler), "")


def _declared(lengths: dict[str, int], whose: str) -> Horizon:
    end = next(((name, lengths[name]) for name in END_NAMES if name in lengths), None)
    warmup = next(((name, lengths[name]) for name in WARMUP_NAMES if name in lengths), None)
    reach = ((warmup[1], f"the warm-up end ({warmup[0]}={warmup[1]})"),) if warmup and warmup[1] > 0 else ()
    if end is None:
        return Horizon(reach=reach, in_steps=_in_steps(warmup[0]), declared=True) if warmup and reach else Horizon()
    prefix = f"{whose} " if whose else ""
    return Horizon(end[1], f"{prefix}{end[0]}={end[1]}", reach, in_steps=_in_steps(end[0]), declared=True)


def _in_steps(name: str) -> bool:
    """Whether a declared length's name says it counts steps (``num_training_steps``, ``max_iters``), not epochs."""
    return any(unit in name.lower() for unit in ("step", "iter"))


def declared_lengths(obj: Any) -> dict[str, int]:
    """The lengths (positive ints) that `obj` declares under the names of `END_NAMES` and `WARMUP_NAMES`: a
    ``functools.partial``'s keywords, a closure's captured variables, or an object's attributes.

    Example:
        >>> def schedule(warmup, total):
        ...     return lambda step: min(1.0, step / warmup) * (1 - step / total)
        >>> declared_lengths(schedule(100, 1000))
        {'total': 1000, 'warmup': 100}
    """
    found: dict[str, int] = {}
    for name, value in _named_values(obj):
        if name in found or (name not in END_NAMES and name not in WARMUP_NAMES):
            continue
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            found[name] = value
    return found


#: Names under which a schedule declares how many of its steps make an epoch (asteroid's DPTNetScheduler).
EPOCH_NAMES = ("steps_per_epoch", "iters_per_epoch", "num_steps_per_epoch", "n_iter_per_epoch", "iter_per_epoch")


def declared_epoch(scheduler: Any) -> Optional[tuple[str, int]]:
    """The name and value under which `scheduler` (or its first ``lr_lambda``) declares how many of its steps make
    an epoch, None when it declares none.

    Example:
        >>> def schedule(steps_per_epoch):
        ...     return lambda step: 0.5 ** (step // steps_per_epoch)
        >>> declared_epoch(type("S", (), {"lr_lambdas": [schedule(250)]})())
        ('steps_per_epoch', 250)
    """
    lambdas = getattr(scheduler, "lr_lambdas", None)
    for obj in ([lambdas[0]] if lambdas else []) + [scheduler]:
        for name, value in _named_values(obj, EPOCH_NAMES):
            if name in EPOCH_NAMES and isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return name, value
    return None


def _named_values(obj: Any, names: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, functools.partial):
        yield from obj.keywords.items()
        yield from _named_values(obj.func, names)
        return
    code = getattr(obj, "__code__", None)
    cells = getattr(obj, "__closure__", None)
    if code is not None:
        if cells:
            for name, cell in zip(code.co_freevars, cells):
                try:
                    yield name, cell.cell_contents
                except ValueError:  # an empty cell
                    continue
        defaults = getattr(obj, "__kwdefaults__", None) or {}
        yield from defaults.items()
        bound = getattr(obj, "__self__", None)  # a bound method: its object's attributes
        if bound is not None:
            yield from _attributes(bound, names)
        return
    yield from _attributes(obj, names)


def _attributes(obj: Any, names: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    values = getattr(obj, "__dict__", None)
    if isinstance(values, dict):
        yield from ((name, values[name]) for name in names or END_NAMES + WARMUP_NAMES if name in values)

