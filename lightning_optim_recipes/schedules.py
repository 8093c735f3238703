"""Schedules as small pure functions: scheduler step -> lr multiplier.

Each function returns a picklable callable that plugs straight into `torch.optim.lr_scheduler.LambdaLR` and can be
evaluated without an optimizer (for previews). ``join`` composes them, as optax's ``join_schedules`` does.

Example:
    >>> from lightning_optim_recipes.schedules import linear, cosine_decay, join
    >>> warmup_then_cosine = join([linear(0.25, 1.0, 3), cosine_decay(4, final=0.0)], boundaries=[3])
    >>> [round(warmup_then_cosine(k), 3) for k in range(8)]
    [0.25, 0.625, 1.0, 1.0, 0.75, 0.25, 0.0, 0.0]
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Optional, Union

from lightning_optim_recipes.errors import RecipeError

__all__ = [
    "DECAY_SHAPES",
    "Schedule",
    "anneal",
    "constant",
    "cosine_decay",
    "join",
    "linear",
    "piecewise_constant",
    "schedule_length",
    "warmup_cosine_schedule",
    "warmup_schedule",
    "warmup_stable_decay_schedule",
]

#: A schedule maps a scheduler step (0, 1, 2, ...) to a multiplier of the base learning rate.
Schedule = Callable[[int], float]


def constant(value: float = 1.0) -> Schedule:
    """The multiplier `value` at every step.

    Example:
        >>> constant(0.5)(10)
        0.5
    """
    return functools.partial(_constant, value=float(value))


def _constant(step: int, *, value: float) -> float:
    return value


def linear(start: float, end: float, steps: int) -> Schedule:
    """From `start` at step 0 to `end` at step ``steps - 1``, then `end`.

    Example:
        >>> [linear(0.0, 1.0, 3)(k) for k in range(4)]
        [0.0, 0.5, 1.0, 1.0]
    """
    _check_positive_int("steps", steps)
    return functools.partial(_linear, start=float(start), end=float(end), steps=steps)


def _linear(step: int, *, start: float, end: float, steps: int) -> float:
    if steps == 1:
        return end
    progress = min(max(step, 0) / (steps - 1), 1.0)
    return start + (end - start) * progress


def cosine_decay(steps: int, final: float = 0.0) -> Schedule:
    """Half a cosine from 1 at step 0 down to `final` at step ``steps - 1``, then `final`.

    Example:
        >>> [round(cosine_decay(3, final=0.1)(k), 3) for k in range(4)]
        [1.0, 0.55, 0.1, 0.1]
    """
    _check_positive_int("steps", steps)
    return functools.partial(_cosine_decay, steps=steps, final=float(final))


def _cosine_decay(step: int, *, steps: int, final: float) -> float:
    if steps == 1:
        return final
    progress = min(max(step, 0) / (steps - 1), 1.0)
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def join(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Run ``schedules[i]`` from ``boundaries[i - 1]`` on, each restarted at its own step 0.

    Example:
        >>> s = join([constant(0.1), constant(1.0)], boundaries=[2])
        >>> [s(k) for k in range(4)]
        [0.1, 0.1, 1.0, 1.0]
    """
    if len(schedules) != len(boundaries) + 1:
        raise RecipeError(
            f"`join` needs one boundary fewer than schedules, got {len(schedules)} schedules"
            f" and {len(boundaries)} boundaries. Pass {max(len(schedules) - 1, 0)} boundaries."
        )
    if list(boundaries) != sorted(boundaries) or any(b < 0 for b in boundaries):
        raise RecipeError(f"`join` boundaries must be non-negative and increasing, got {list(boundaries)}.")
    return functools.partial(_join, schedules=tuple(schedules), boundaries=tuple(boundaries))


def _join(step: int, *, schedules: tuple[Schedule, ...], boundaries: tuple[int, ...]) -> float:
    start = 0
    for schedule, boundary in zip(schedules, boundaries):
        if step < boundary:
            return schedule(step - start)
        start = boundary
    return schedules[-1](step - start)


def warmup_cosine_schedule(warmup_steps: int, total_steps: int, final: float = 0.0) -> Schedule:
    """Linear warmup reaching 1 at step ``warmup_steps - 1``, then a cosine to `final` at step ``total_steps - 1``.

    Step k of warmup has multiplier ``(k + 1) / warmup_steps``, so no step is wasted at lr 0, and the last of the
    `total_steps` optimizer steps runs at exactly `final`.

    Example:
        >>> [round(warmup_cosine_schedule(2, 5, final=0.0)(k), 3) for k in range(5)]
        [0.5, 1.0, 0.75, 0.25, 0.0]
    """
    return warmup_schedule(warmup_steps, total_steps, decay="cosine", final=final)


def warmup_schedule(
    warmup_steps: int,
    total_steps: int,
    decay: str = "cosine",
    final: float = 0.0,
    start: Union[float, str, None] = None,
    decay_steps: Optional[int] = None,
) -> Schedule:
    """Linear warm-up to 1, then a `decay` (``"cosine"``, ``"linear"`` or ``"none"``) to `final` at the last step.

    The warm-up's step k runs at ``(k + 1) / warmup_steps`` (no step at lr 0), or, with `start`, from `start` at
    step 0 to 1 at step ``warmup_steps - 1`` (Goyal et al.'s warm-up starts at the unscaled lr), or, with
    ``start="zero"``, at ``k / warmup_steps``, the peak at step ``warmup_steps`` (Hugging Face's
    ``get_linear_schedule_with_warmup``, MAE's and BERT's reference code: the first step runs at lr 0). The last of
    the `total_steps` steps runs at exactly `final`.

    Args:
        warmup_steps: steps of the linear warm-up (0: none; the decay starts at step 0).
        total_steps: steps of the run the schedule is written for.
        decay: the shape after the warm-up.
        final: the multiplier the decay ends at.
        start: the warm-up's multiplier at step 0 (default ``1 / warmup_steps``), or ``"zero"`` (see above).
        decay_steps: the decay reaches `final` at step ``decay_steps - 1`` instead of the last step, and the
            schedule holds `final` from there to the end of the run (GPT-3's cosine over 260B of its 300B tokens).
            `schedule_length` still counts `total_steps`: the hold is part of the schedule. Default: `total_steps`.

    Example:
        >>> [round(warmup_schedule(2, 5, decay="linear")(k), 3) for k in range(5)]
        [0.5, 1.0, 0.667, 0.333, 0.0]
        >>> [round(warmup_schedule(3, 5, decay="none", start=0.25)(k), 3) for k in range(5)]
        [0.25, 0.625, 1.0, 1.0, 1.0]
        >>> [round(warmup_schedule(2, 5, decay="linear", start="zero")(k), 3) for k in range(5)]
        [0.0, 0.5, 1.0, 0.5, 0.0]
        >>> held = warmup_schedule(1, 6, decay="linear", final=0.1, decay_steps=3)
        >>> [round(held(k), 3) for k in range(6)], schedule_length(held)
        ([1.0, 0.55, 0.1, 0.1, 0.1, 0.1], 6)
    """
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
        raise RecipeError(f"`warmup_steps` must be a non-negative int, got {warmup_steps!r}.")
    _check_positive_int("total_steps", total_steps)
    decays = {"cosine": cosine_decay, "linear": lambda steps, final: linear(1.0, final, steps),
              "none": lambda steps, final: constant(1.0)}
    if decay not in decays:
        raise RecipeError(f"`decay` must be one of {sorted(decays)}, got {decay!r}.")
    if isinstance(start, str) and start != "zero":
        raise RecipeError(f"`start` must be a number in [0, 1] or 'zero', got {start!r}.")
    zero = start == "zero" and warmup_steps > 0
    peak = warmup_steps if zero else max(warmup_steps, 1) - 1  # the step that runs at the full lr
    if total_steps <= peak + 1 and decay != "none":
        raise RecipeError(
            f"`total_steps` ({total_steps}) must exceed `warmup_steps` ({warmup_steps}) to leave room for the decay."
            " Lower `warmup_steps` or train for more steps."
        )
    end = total_steps
    if decay_steps is not None:
        if decay == "none":
            raise RecipeError("`decay_steps` says where a decay ends, but decay='none' has none: remove `decay_steps`"
                              " or use decay='cosine' or 'linear'.")
        _check_positive_int("decay_steps", decay_steps)
        if not peak + 1 < decay_steps <= total_steps:
            raise RecipeError(
                f"`decay_steps` must be more than {peak + 1} and at most `total_steps` ({total_steps}), got"
                f" {decay_steps!r}: the decay runs after the {warmup_steps}-step warm-up and ends within the run."
                " Move its end, or lower `warmup_steps`."
            )
        end = decay_steps
    after = decays[decay](end - peak, final)
    if end < total_steps:  # `final` held to the end of the run, which the schedule is written for
        after = functools.partial(_hold, schedule=after, steps=total_steps - peak)
    if warmup_steps == 0:
        return after
    if zero:
        ramp = linear(0.0, 1.0, warmup_steps + 1)
    else:
        ramp = linear(float(start), 1.0, warmup_steps) if start is not None else \
            linear(1.0 / warmup_steps, 1.0, warmup_steps)
    return join([ramp, after], [peak])


def _hold(step: int, *, schedule: Schedule, steps: int) -> float:
    """`schedule`, which has ended and holds its last value, written for `steps` steps (see `schedule_length`)."""
    return schedule(step)


#: The shapes of `anneal`: its multiplier at the fraction ``x`` of the way through, from 1 at 0 to 0 at 1.
DECAY_SHAPES = ("linear", "cosine", "1-sqrt")


def anneal(steps: int, final: float = 0.0, shape: str = "linear") -> Schedule:
    """A decay over `steps` steps from the multiplier 1 before it to `final` at its last step, then `final`.

    Its step i runs at ``final + (1 - final) * f((i + 1) / steps)``, ``f(x)`` being ``1 - x`` (``"linear"``),
    ``(1 + cos(pi x)) / 2`` (``"cosine"``) or ``1 - sqrt(x)`` (``"1-sqrt"``, Hägele et al. 2024, Eq. (1-sqrt)): every
    step is below the lr before the decay, as every warm-up step is below the peak, and the last is at `final`.

    Example:
        >>> [round(anneal(4, shape="1-sqrt")(k), 3) for k in range(5)]
        [0.5, 0.293, 0.134, 0.0, 0.0]
    """
    _check_positive_int("steps", steps)
    if shape not in DECAY_SHAPES:
        raise RecipeError(f"`decay_shape` must be one of {list(DECAY_SHAPES)}, got {shape!r}.")
    return functools.partial(_anneal, steps=steps, final=float(final), shape=shape)


def _anneal(step: int, *, steps: int, final: float, shape: str) -> float:
    x = min(max(step + 1, 0) / steps, 1.0)
    left = 1.0 - x if shape == "linear" else (1.0 - math.sqrt(x) if shape == "1-sqrt"
                                               else 0.5 * (1.0 + math.cos(math.pi * x)))
    return final + (1.0 - final) * left


def warmup_stable_decay_schedule(
    warmup_steps: int,
    decay_start: Optional[int],
    decay_steps: int,
    shape: str = "linear",
    final: float = 0.0,
    start: Union[float, str, None] = None,
) -> Schedule:
    """Warm-up, stable, decay (WSD): a linear warm-up to 1 over `warmup_steps`, 1 up to `decay_start`, then
    `anneal` over `decay_steps` to `final` (the decay's last step, ``decay_start + decay_steps - 1``, at `final`).

    The warm-up's step k runs at ``(k + 1) / warmup_steps`` (or from `start` at step 0, as in `warmup_schedule`;
    ``start="zero"``: at ``k / warmup_steps``, the peak one step after the warm-up).
    ``decay_start=None``: no decay yet (the stable phase runs on): a cooldown that starts where training resumes
    is placed later (`lightning_optim_recipes.wsd`).

    Example:
        >>> s = warmup_stable_decay_schedule(2, 4, 2, shape="linear", final=0.1)
        >>> [round(s(k), 3) for k in range(7)], schedule_length(s)
        ([0.5, 1.0, 1.0, 1.0, 0.55, 0.1, 0.1], 6)
    """
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
        raise RecipeError(f"`warmup_steps` must be a non-negative int, got {warmup_steps!r}.")
    anneal(decay_steps, final, shape)  # checks the decay
    if decay_start is not None and (isinstance(decay_start, bool) or not isinstance(decay_start, int)
                                    or decay_start < warmup_steps):
        raise RecipeError(f"The decay must start after the {warmup_steps}-step warm-up, at step {warmup_steps} or"
                          f" later, got `decay_start={decay_start!r}`: use a shorter warm-up, or start the decay"
                          " later.")
    if start == "zero":  # step k at k / W: the ramp spans W steps from 0
        ramp_from, span = 0.0, warmup_steps
    else:
        ramp_from = float(start) if start is not None else (1.0 / warmup_steps if warmup_steps else 1.0)
        span = warmup_steps - 1
    return functools.partial(_warmup_stable_decay, warmup_steps, ramp_from, span, decay_start, decay_steps,
                             float(final), shape)


def _warmup_stable_decay(warmup: int, ramp_from: float, span: int, decay_start: Optional[int], decay_steps: int,
                         final: float, shape: str, step: int) -> float:
    """One function rather than a `join` of three, its settings bound by position (a third of the cost of keyword
    binding): a scheduler calls it once per param group at every step (`benchmarks/wsd_overhead.py`)."""
    if step < warmup:
        return ramp_from + (1.0 - ramp_from) * min(max(step, 0) / span, 1.0) if span > 0 else 1.0
    if decay_start is None or step < decay_start:
        return 1.0
    x = min((step - decay_start + 1) / decay_steps, 1.0)  # as `_anneal`, inlined
    left = 1.0 - x if shape == "linear" else (1.0 - math.sqrt(x) if shape == "1-sqrt"
                                               else 0.5 * (1.0 + math.cos(math.pi * x)))
    return final + (1.0 - final) * left


def piecewise_constant(boundaries: Sequence[int], factors: Sequence[float]) -> Schedule:
    """``factors[i]`` from ``boundaries[i - 1]`` on (``factors[0]`` before the first boundary): a MultiStepLR in
    steps, for `join`.

    Example:
        >>> s = piecewise_constant([2, 4], [1.0, 0.1, 0.01])
        >>> [s(k) for k in range(5)]
        [1.0, 1.0, 0.1, 0.1, 0.01]
    """
    if len(factors) != len(boundaries) + 1:
        raise RecipeError(f"`piecewise_constant` needs one factor more than boundaries, got {len(factors)} factors and"
                          f" {len(boundaries)} boundaries: give the factor before the first boundary too.")
    return join([constant(f) for f in factors], boundaries)


def schedule_length(schedule: object) -> Optional[int]:
    """The steps after which a schedule of this module is done (it ends with the run), or None: it runs on (a
    constant, a rising `linear` warm-up) or it is not one of this module's. A `warmup_schedule` with `decay_steps`
    is done after its `total_steps`: it holds its final value deliberately.

    Example:
        >>> schedule_length(warmup_cosine_schedule(10, 100)), schedule_length(linear(0.1, 1.0, 10))
        (100, None)
    """
    if not isinstance(schedule, functools.partial):
        return None
    keywords = schedule.keywords
    if schedule.func is _cosine_decay or schedule.func is _hold or schedule.func is _anneal:
        return int(keywords["steps"])
    if schedule.func is _linear:
        return int(keywords["steps"]) if keywords["end"] < keywords["start"] else None
    if schedule.func is _warmup_stable_decay:
        start, steps = schedule.args[3], schedule.args[4]
        return None if start is None else int(start) + int(steps)
    if schedule.func is _join:
        last = schedule_length(keywords["schedules"][-1])
        return None if last is None else int(keywords["boundaries"][-1]) + last
    return None


def _check_positive_int(key: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RecipeError(f"`{key}` must be a positive int, got {value!r}.")
