"""Lengths in units: ``"10ep"`` (epochs), ``"500st"`` (optimizer steps), ``"2000ba"`` (batches), ``"5%"`` (of the
run), resolved against the run's sizes into optimizer steps (or, for a scheduler stepped per epoch, epochs).

Every factory that takes a length (a warm-up, a decay, a milestone, ``t_max``, a cooldown) resolves it here with
`resolve`; a plain int keeps the meaning each factory gives it. The run's sizes (`RunSize`) are read from the
Trainer as Lightning defines them: ``num_training_batches`` (per device, after ``limit_train_batches``),
``accumulate_grad_batches`` and ``estimated_stepping_batches`` (which counts ``max_steps``). ``"2000ba"`` is the
optimizer steps taken over the first 2000 batches (accumulation and the short last window of every epoch counted);
``"10ep"`` is 10 epochs of optimizer steps; ``"5%"`` is 5% of the run's optimizer steps, rounded. A unit the run
cannot resolve (a ``%`` with no known run length) is a `RecipeError` that says what to give.

The resolved values stay on the scheduler (`record`: its ``lengths`` attribute, ``{name: (as written, resolved)}``,
plain data that checkpoints keep) so that previews and messages show them (`describe`).

Example:
    >>> run = RunSize(total_steps=100, batches=20, accumulate=2, max_epochs=10)
    >>> [resolve(v, "warmup", run) for v in ("1ep", "500st", "30ba", "5%", 7)]
    [10, 500, 15, 5, 7]
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Mapping
from typing import Any, Optional, Union

from lightning_optim_recipes.errors import RecipeError

__all__ = ["UNITS", "Length", "RunSize", "describe", "lengths_of", "parse", "record", "resolve", "resolve_each",
           "shown", "table", "written"]

#: The units a length may be written in, and what each counts.
UNITS = {"ep": "epochs", "st": "optimizer steps", "ba": "batches", "%": "percent of the run's optimizer steps"}

_PATTERN = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z%]+)\s*$")
_WORDS = {"epoch": "ep", "epochs": "ep", "e": "ep", "step": "st", "steps": "st", "s": "st", "batch": "ba",
          "batches": "ba", "b": "ba", "it": "ba", "iter": "ba", "iters": "ba", "pct": "%", "percent": "%"}
_EXAMPLES = "'10ep' (epochs), '500st' (optimizer steps), '2000ba' (batches) or '5%' (of the run)"

#: What a length may be: a plain int (the factory's own unit) or a string with a unit.
LengthLike = Union[int, str]


@dataclasses.dataclass(frozen=True)
class Length:
    """A length written with a unit: `amount` of `unit` (one of `UNITS`)."""

    amount: float
    unit: str

    def __str__(self) -> str:
        return f"{self.amount:g}{self.unit}"


def parse(value: Any, name: str) -> Optional[Length]:
    """The `Length` `value` writes, or None for a plain number (its meaning is the factory's).

    Example:
        >>> parse("10ep", "warmup"), parse(" 2.5 % ", "decay"), parse(300, "warmup")
        (Length(amount=10.0, unit='ep'), Length(amount=2.5, unit='%'), None)
    """
    if not isinstance(value, str):
        return None
    match = _PATTERN.match(value.lower())
    if match is None:
        raise RecipeError(f"`{name}={value!r}` is not a length: write {_EXAMPLES}.")
    amount, unit = float(match.group(1)), match.group(2)
    if unit not in UNITS:
        close = _WORDS.get(unit) or next(iter(difflib.get_close_matches(unit, list(UNITS), n=1, cutoff=0.5)), None)
        hint = f" Did you mean '{match.group(1)}{close}'?" if close else ""
        raise RecipeError(f"`{name}={value!r}` has an unknown unit {unit!r}.{hint} Write {_EXAMPLES}.")
    if unit in ("st", "ba") and amount != int(amount):
        raise RecipeError(f"`{name}={value!r}`: {UNITS[unit]} are whole, write '{int(amount)}{unit}' or"
                          f" '{int(amount) + 1}{unit}'.")
    return Length(amount, unit)


@dataclasses.dataclass(frozen=True)
class RunSize:
    """The sizes of a run that lengths are resolved against (None: not known).

    Attributes:
        total_steps: the run's optimizer steps (``trainer.estimated_stepping_batches``).
        batches: training batches per epoch, per device (``trainer.num_training_batches``).
        accumulate: ``accumulate_grad_batches``.
        max_epochs: ``trainer.max_epochs``.
    """

    total_steps: Optional[int] = None
    batches: Optional[int] = None
    accumulate: int = 1
    max_epochs: Optional[int] = None

    @property
    def steps_per_epoch(self) -> Optional[int]:
        """Optimizer steps per epoch: the last short window of an epoch steps too, as in Lightning."""
        if self.batches is not None:
            return math.ceil(self.batches / self.accumulate)
        if self.total_steps is not None and self.max_epochs:
            return max(self.total_steps // self.max_epochs, 1)
        return None

    @classmethod
    def of(cls, trainer: Any, *, total_steps: Optional[int] = None,
           steps_per_epoch: Optional[int] = None) -> RunSize:
        """The sizes `trainer` gives (a real Trainer inside ``configure_optimizers``, or a stand-in); `total_steps`
        and `steps_per_epoch`, when given, win over it."""
        accumulate = int(getattr(trainer, "accumulate_grad_batches", 1) or 1) if trainer is not None else 1
        total = total_steps
        if total is None and trainer is not None:
            try:
                estimated = trainer.estimated_stepping_batches
            except Exception:  # noqa: BLE001 - no loader yet: the run's length is unknown
                estimated = None
            if isinstance(estimated, (int, float)) and math.isfinite(estimated) and estimated >= 1:
                total = int(estimated)
        batches = getattr(trainer, "num_training_batches", None) if trainer is not None else None
        if batches == float("inf") and getattr(trainer, "train_dataloader", 0) is None and hasattr(trainer, "fit_loop"):
            try:  # a run sized by max_steps alone: Lightning's estimate skips the loader, which epochs need
                trainer.fit_loop.setup_data()
                batches = trainer.num_training_batches
            except Exception:  # noqa: BLE001 - no loader yet: the epoch's length is unknown
                pass
        batches = batches if isinstance(batches, int) and not isinstance(batches, bool) and batches > 0 else None
        if steps_per_epoch is not None:
            batches, accumulate = steps_per_epoch, 1
        epochs = getattr(trainer, "max_epochs", None) if trainer is not None else None
        epochs = epochs if isinstance(epochs, int) and epochs > 0 else None
        return cls(total, batches, accumulate, epochs)


def resolve(value: Any, name: str, run: Union[RunSize, Any], unit: str = "steps", what: str = "the schedule",
            frequency: int = 1) -> Any:
    """`value` in the scheduler's own unit: optimizer steps (`unit` ``"steps"``) or epochs (``"epochs"``), divided by
    `frequency`; a plain number is returned as given (the factory checks it).

    Args:
        value: a plain number, or a string with a unit (see `parse`).
        name: the argument, as messages name it.
        run: a `RunSize`, or a Trainer (read only when a unit needs it).
        unit: ``"steps"`` or ``"epochs"``: what the scheduler counts.
        what: the factory, as messages name it.
        frequency: the scheduler steps every `frequency` of its units.

    Example:
        >>> resolve("3ep", "t_max", RunSize(batches=50), unit="epochs"), resolve("100st", "t_max", None)
        (3, 100)
    """
    length = parse(value, name)
    if length is None:
        return value
    size = run if isinstance(run, RunSize) else RunSize.of(run)
    steps = _in_steps(length, value, name, size, what) if unit == "steps" else _in_epochs(length, value, name, size,
                                                                                       what)
    if frequency != 1:
        if steps % frequency:
            raise RecipeError(f"`{name}={value!r}` is {steps} {unit}, which a scheduler stepped every {frequency}"
                              f" {unit} cannot count: give a multiple of {frequency}.")
        steps //= frequency
    return steps


def _in_steps(length: Length, value: Any, name: str, run: RunSize, what: str) -> int:
    if length.unit == "st":
        return int(length.amount)
    if length.unit == "%":
        if run.total_steps is None:
            raise RecipeError(
                f"`{name}={value!r}` is a share of the run, but {what} does not know the run's length: pass"
                " `trainer=self.trainer` inside `configure_optimizers` (its `estimated_stepping_batches`), or"
                f" `total_steps=`, or give {name} in optimizer steps ('500st') or epochs ('2ep')."
            )
        return int(round(length.amount / 100 * run.total_steps))
    if length.unit == "ep":
        per_epoch = run.steps_per_epoch
        if per_epoch is None:
            raise RecipeError(
                f"`{name}={value!r}` counts epochs, but {what} does not know the epoch's length: pass"
                " `trainer=self.trainer` inside `configure_optimizers`, or give it in optimizer steps ('500st')."
            )
        return int(round(length.amount * per_epoch))
    batches = int(length.amount)  # "ba": the optimizer steps taken over the first `batches` batches
    if run.batches is None:
        if run.accumulate == 1 and run.total_steps is None:
            raise RecipeError(
                f"`{name}={value!r}` counts batches, which become optimizer steps through gradient accumulation:"
                f" pass `trainer=self.trainer` inside `configure_optimizers`, or give {name} in optimizer steps"
                " ('500st')."
            )
        return batches // run.accumulate
    epochs, rest = divmod(batches, run.batches)
    return epochs * math.ceil(run.batches / run.accumulate) + rest // run.accumulate


def _in_epochs(length: Length, value: Any, name: str, run: RunSize, what: str) -> int:
    if length.unit == "ep":
        if length.amount != int(length.amount):
            raise RecipeError(f"`{name}={value!r}`: {what} steps once per epoch, so it counts whole epochs; write"
                              f" '{int(length.amount)}ep', or use interval='step' for a length within an epoch.")
        return int(length.amount)
    if length.unit == "%":
        per_epoch = run.steps_per_epoch
        epochs: Optional[float] = run.max_epochs
        if run.total_steps is not None and per_epoch:
            epochs = run.total_steps / per_epoch
        if epochs is None:
            raise RecipeError(
                f"`{name}={value!r}` is a share of the run, but {what} does not know the run's length: pass"
                f" `trainer=self.trainer` inside `configure_optimizers`, or give {name} in epochs ('10ep')."
            )
        return int(round(length.amount / 100 * epochs))
    per = run.batches if length.unit == "ba" else run.steps_per_epoch
    if per is None:
        raise RecipeError(f"`{name}={value!r}` is in {UNITS[length.unit]}, but {what} steps once per epoch and"
                          " does not know the epoch's length: pass `trainer=self.trainer`, or give it in epochs"
                          " ('10ep').")
    if int(length.amount) % per:
        raise RecipeError(
            f"`{name}={value!r}` is {length.amount / per:g} epochs of this run ({per} {UNITS[length.unit]} per"
            f" epoch), but {what} steps once per epoch: give whole epochs ('{max(round(length.amount / per), 1)}ep'),"
            " or use interval='step'."
        )
    return int(length.amount) // per


def resolve_each(values: Any, name: str, trainer: Any, unit: str = "steps", what: str = "the schedule",
                 frequency: int = 1) -> list[Any]:
    """Each of `values` (milestones) resolved as `resolve` does; the Trainer is read once, and only when one of them
    has a unit."""
    run = RunSize.of(trainer) if any(isinstance(v, str) for v in values) else RunSize()
    return [resolve(v, name, run, unit, what, frequency) for v in values]


def written(values: Any) -> Any:
    """Lengths as written, for `record`: a list of them as one string when one has a unit (else unchanged)."""
    if isinstance(values, (list, tuple)) and any(isinstance(v, str) for v in values):
        return "[" + ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values) + "]"
    return values


def shown(given: Any, resolved: Any) -> str:
    """`` (= 12)`` after a length written in units, for a message about its resolved value; empty otherwise."""
    return f" (= {resolved})" if isinstance(written(given), str) else ""


# ----------------------------------------------------------------------------------- on the scheduler


def record(scheduler: Any, lengths: Mapping[str, tuple[Any, Any]]) -> None:
    """Keep on `scheduler` (its ``lengths`` attribute) each length as written and as resolved, for the ones written
    with a unit: ``{'warmup': ('5%', 12)}``. Plain data, which a checkpoint keeps."""
    kept = {name: (str(written), resolved) for name, (written, resolved) in lengths.items()
            if isinstance(written, str)}
    if kept:
        scheduler.lengths = kept


def lengths_of(scheduler: Any) -> dict[str, tuple[str, Any]]:
    """The lengths `scheduler` was given with a unit, ``{name: (as written, resolved)}`` (see `record`)."""
    found = getattr(scheduler, "lengths", None)
    return dict(found) if isinstance(found, Mapping) else {}


def table(schedulers: Any) -> list[dict[str, Any]]:
    """One row per length written in units, of each scheduler (a `SchedulerSpec` or anything with ``scheduler``,
    ``interval`` and ``name``): ``{'scheduler', 'name', 'length', 'written', 'resolved', 'unit'}`` (what
    `preview_schedule` keeps as ``lengths``)."""
    rows = []
    for index, spec in enumerate(schedulers):
        unit = "epochs" if getattr(spec, "interval", "step") == "epoch" else "optimizer steps"
        for length, (as_written, resolved) in lengths_of(spec.scheduler).items():
            rows.append({"scheduler": index, "name": getattr(spec, "name", None), "length": length,
                         "written": as_written, "resolved": resolved, "unit": unit})
    return rows


def describe(scheduler: Any, interval: str = "step") -> str:
    """The lengths `scheduler` was given with a unit, resolved, for a message: ``"warmup '5%' = 12 optimizer
    steps, decay '20%' = 48 optimizer steps"`` (empty when it has none).

    Example:
        >>> class Scheduler: lengths = {"t_max": ("10ep", 10)}
        >>> describe(Scheduler(), interval="epoch")
        "t_max '10ep' = 10 epochs"
    """
    unit = "epochs" if interval == "epoch" else "optimizer steps"
    parts = []
    for name, (written, resolved) in lengths_of(scheduler).items():
        if written == resolved:  # not resolved yet (a cooldown's "now", until the resume places it)
            parts.append(f"{name} {written!r}")
            continue
        shown = ", ".join(str(r) for r in resolved) if isinstance(resolved, (list, tuple)) else str(resolved)
        parts.append(f"{name} {written!r} = {'step ' if name == 'decay_start' else ''}{shown}"
                     f"{'' if name == 'decay_start' else ' ' + unit}")
    return ", ".join(parts)
