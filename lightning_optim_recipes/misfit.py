"""Schedules whose declared length does not fit the run: the messages, in the scheduler's own steps.

`schedule_misfit` compares a scheduler's `Horizon` (its declared length, milestones and warm-up end, see
`lightning_optim_recipes.horizons`) with how many times the run will step it (`fit_checks.Run`) and writes the
warning: both numbers, the likely cause (a unit that does not match the interval, accumulation, devices,
``limit_train_batches``, ``max_steps``) and the fix. `schedule_overrun` writes the error for a scheduler that raises
when stepped past its end (torch's ``OneCycleLR``) and that the run steps past it: training would stop there.
"""

from __future__ import annotations

import math
from typing import Optional

from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, SequentialLR

from lightning_optim_recipes.horizons import Horizon, declared_epoch, horizon_of
from lightning_optim_recipes.runs import Run
from lightning_optim_recipes.validation import SchedulerSpec

__all__ = ["schedule_misfit", "schedule_overrun"]


def schedule_overrun(spec: SchedulerSpec, index: int, run: Run) -> Optional[str]:
    """The error for a scheduler that raises when stepped past its end (`Horizon.hard`) and that `run` steps past it
    (training would stop there), or None."""
    horizon = horizon_of(spec.scheduler)
    steps = run.scheduler_steps[index]
    if not horizon.hard or horizon.end is None or steps is None or steps <= horizon.end:
        return None
    name = type(spec.scheduler).__name__
    head = (f"The {name}{f' {spec.name!r}' if spec.name else ''} scheduler is written for {horizon.end} scheduler"
            f" steps ({horizon.end_what}), but this run steps it {steps} times ({_cadence_text(spec, run, steps)}):"
            f" stepped past its end, torch's {name} raises \"Tried to step {horizon.end + 1} times. The specified"
            f" number of total steps is {horizon.end}\", so training would stop at its step {horizon.end + 1}.")
    advice = _unit_advice(spec, horizon, run, index) or _length_advice(spec, horizon, run, steps, index)
    return f"{head} {advice}"


def schedule_misfit(spec: SchedulerSpec, index: int, run: Run) -> Optional[str]:
    """The message for a scheduler whose schedule does not fit `run`, or None."""
    horizon = horizon_of(spec.scheduler)
    steps, per_epoch = run.scheduler_steps[index], run.per_epoch[index]
    if steps is None or per_epoch is None or (horizon.end is None and not horizon.reach):
        return None
    name = f"The {type(spec.scheduler).__name__}{f' {spec.name!r}' if spec.name else ''}"
    cadence_text = _cadence_text(spec, run, steps)
    unit = _unit_advice(spec, horizon, run, index)
    if horizon.end is not None:
        tolerance = max(per_epoch, 1.0)
        if abs(horizon.end - steps) > tolerance:
            reached = min(steps, horizon.end) / horizon.end if horizon.end else 1.0
            head = (f"{name} scheduler is written for {horizon.end} scheduler steps ({horizon.end_what}), but this run"
                    f" steps it {steps} times ({cadence_text})")
            if steps < horizon.end:
                head += f": training ends {reached:.1%} of the way through its schedule{_lr_at_end(spec, steps)}."
            else:
                head += f": its schedule ends after {horizon.end} steps and the rest of the run trains past it."
            advice = unit or _length_advice(spec, horizon, run, steps, index)
            return f"{head} {advice}{_silence('scheduler is written for')}"
    for point, what in horizon.reach:
        if point > steps:
            head = (f"{name} scheduler never reaches {what}: this run steps it {steps} times ({cadence_text}).")
            return f"{head} {unit or _reach_advice(spec, steps, point)}{_silence('scheduler never reaches')}"
    return None


def _cadence_text(spec: SchedulerSpec, run: Run, steps: int) -> str:
    if spec.interval == "epoch":
        every = "each epoch" if spec.frequency == 1 else f"every {spec.frequency} epochs"
        return f"interval='epoch': once at the end of {every}, over {_epochs(run)}"
    every = "each optimizer step" if spec.frequency == 1 else f"every {spec.frequency} optimizer steps"
    return f"interval='step': after {every}, over {_epochs(run)}"


def _lr_at_end(spec: SchedulerSpec, steps: int) -> str:
    """`, where its lr is 0.99 of the optimizer's` for schedules whose multiplier has a closed form."""
    scheduler = spec.scheduler
    if isinstance(scheduler, CosineAnnealingLR) and scheduler.base_lrs and scheduler.base_lrs[0]:
        base, low = scheduler.base_lrs[0], scheduler.eta_min
        lr = low + (base - low) * (1 + math.cos(math.pi * steps / scheduler.T_max)) / 2
        return f" (its lr ends at {lr:.6g} of {base:.6g}, not at eta_min={low:g})"
    if isinstance(scheduler, LambdaLR) and scheduler.lr_lambdas and callable(scheduler.lr_lambdas[0]):
        try:
            factor = float(scheduler.lr_lambdas[0](max(steps - 1, 0)))
        except Exception:  # noqa: BLE001 - a user's lambda: no number then
            return ""
        if abs(factor - 1.0) < 5e-4:
            return " (its last step still runs at the peak lr)"
        return f" (its last step runs at {factor:.3g} of the peak lr)"
    return ""


def _epochs(run: Run) -> str:
    if run.epochs < run.max_epochs:
        return f"{run.epochs:g} epochs before max_steps={run.max_steps} ends training"
    return f"{run.max_epochs} epoch{'s' if run.max_epochs != 1 else ''}"


def _unit_advice(spec: SchedulerSpec, horizon: Horizon, run: Run, index: int) -> Optional[str]:
    """'epoch' where 'step' was meant (or the reverse), when the numbers say so."""
    optimizer_steps = run.optimizer_steps_per_epoch[spec.optimizer_index] if run.optimizer_steps_per_epoch else 0
    run_in_steps = optimizer_steps * run.epochs
    target = horizon.end if horizon.end is not None else max(p for p, _ in horizon.reach)
    if spec.interval == "epoch" and (horizon.in_steps or (
            run_in_steps and abs(target - run_in_steps) <= max(optimizer_steps, 1) and target > run.max_epochs + 1)):
        return (
            "Its numbers are in optimizer steps, but it has interval='epoch', so it steps once per epoch. Did you mean"
            " interval='step'? (`scheduled(scheduler, interval='step')`, or 'interval': 'step' in its dict)."
        )
    if spec.interval == "epoch" and horizon.end is None and run.max_epochs + 1 < target <= run_in_steps:
        return (
            f"It steps once per epoch (interval='epoch'), {run.max_epochs} times here, and {target} lies beyond the"
            f" run's epochs but within its {int(run_in_steps)} optimizer steps: if its numbers count optimizer"
            " steps, step it after every optimizer step: 'interval': 'step' in its dict (or"
            " `scheduled(scheduler, interval='step')`)."
        )
    steps = run.scheduler_steps[index]
    if spec.interval == "step" and not horizon.in_steps and abs(target - run.max_epochs) <= 1 and \
            steps is not None and steps > run.max_epochs + 1:
        return (
            f"Its numbers look like epochs ({target} of {run.max_epochs}), but it has interval='step'. Did you mean"
            " interval='epoch'?"
        )
    return None


def _length_advice(spec: SchedulerSpec, horizon: Horizon, run: Run, steps: int, index: int) -> str:
    sequence = _sequence_advice(spec, steps)
    if sequence:
        return sequence
    end = horizon.end or 0
    causes = []
    per_epoch = run.per_epoch[index] or 1.0
    if spec.interval == "step":
        if run.accumulate > 1 and abs(end - steps * run.accumulate) <= max(per_epoch, 1) * run.accumulate:
            causes.append(f"the length ignores accumulate_grad_batches={run.accumulate} (the optimizer steps once"
                          f" every {run.accumulate} batches)")
        if run.devices > 1 and abs(end - steps * run.devices) <= steps * 0.05 + run.devices:
            causes.append(f"the length ignores the {run.devices} devices (each sees 1/{run.devices} of the batches)")
        if run.limit_train_batches not in (1, 1.0) and end > steps:
            causes.append(f"limit_train_batches={run.limit_train_batches} trains {run.batches} batches per epoch, not"
                          " the whole loader")
        if run.epochs < run.max_epochs:
            causes.append(f"max_steps={run.max_steps} ends training before max_epochs={run.max_epochs}")
        full = (run.batches or 0) // run.accumulate
        if run.accumulate > 1 and (run.batches or 0) % run.accumulate and end == full * run.max_epochs and end < steps:
            causes.append(f"the length counts only the full accumulation windows of an epoch ({run.batches} //"
                          f" {run.accumulate} = {full}), but the optimizer also steps on each epoch's last, partial"
                          f" window: {full + 1} steps per epoch")
        if horizon.in_steps and end == run.max_epochs and end < steps:
            causes.append(f"{horizon.end_what.split()[-1]} is the run's max_epochs, but the schedule counts optimizer"
                          " steps")
        elif horizon.in_steps and run.batches and end == run.batches and end < steps:
            causes.append(f"{horizon.end_what.split()[-1]} is one epoch's batches, but the schedule spans the run")
    cause = f" Likely cause: {'; '.join(causes)}." if causes else ""
    fix = ("Compute it from the run: `trainer.estimated_stepping_batches` (optimizer steps; it counts accumulation,"
           " devices, limit_train_batches and max_steps)" if spec.interval == "step" else
           f"Set it to the run's length: {int(run.epochs) // spec.frequency} (`self.trainer.max_epochs`)")
    return f"{cause.strip()} {fix}, e.g. {_example(spec.scheduler, steps, horizon)}.".strip()


def _sequence_advice(spec: SchedulerSpec, steps: int) -> str:
    """A SequentialLR: its last scheduler runs after its last milestone, so it must be sized for what is left of the
    run (a cosine with ``T_max = max_epochs`` after a warm-up of 2 epochs ends 2 epochs late)."""
    scheduler = spec.scheduler
    if not isinstance(scheduler, SequentialLR) or not scheduler._milestones:
        return ""
    milestone, last = scheduler._milestones[-1], scheduler._schedulers[-1]
    inner = horizon_of(last)
    left = steps - milestone
    if inner.end is None or left <= 0:
        return ""
    run = "self.trainer.max_epochs" if spec.interval == "epoch" else "self.trainer.estimated_stepping_batches"
    cause = (f"Likely cause: its last scheduler, a {type(last).__name__}, is sized for the whole run"
             f" ({inner.end_what}), but it starts at milestone {milestone}. " if inner.end == steps else "")
    return (f"{cause}Size its last scheduler for what follows milestone {milestone}: {left} (`{run} - {milestone}`),"
            f" e.g. {_example(last, left, inner)}.")


def _example(scheduler: object, steps: int, horizon: Horizon) -> str:
    kind = type(scheduler).__name__
    if horizon.declared and "=" in horizon.end_what:  # the name the schedule declares its length under
        return f"{horizon.end_what.split()[-1].partition('=')[0]}={steps}"
    key = {"CosineAnnealingLR": "T_max", "OneCycleLR": "total_steps", "PolynomialLR": "total_iters",
           "LinearLR": "total_iters"}.get(kind)
    if key is not None:
        return f"{kind}(..., {key}={steps})"
    if getattr(scheduler, "total_steps", None) is not None:
        return "`warmup_cosine(opt, warmup_steps=..., trainer=self.trainer)`"
    return f"a schedule of {steps} steps"


def _reach_advice(spec: SchedulerSpec, steps: int, point: int) -> str:
    unit = "epochs" if spec.interval == "epoch" else "scheduler steps"
    return f"Train longer, or move it within the run ({point} {unit} asked, {steps} in the run)."


def epoch_misfit(spec: SchedulerSpec, index: int, run: Run) -> Optional[str]:
    """A 'step' schedule that declares how many of its steps make an epoch (``steps_per_epoch``), when the run steps
    it a different number of times per epoch: its epochs go by too fast or too slow."""
    declared = declared_epoch(spec.scheduler) if spec.interval == "step" else None
    actual = run.per_epoch[index] if index < len(run.per_epoch) else None
    if declared is None or not actual:
        return None
    name, value = declared
    if abs(value - actual) <= max(1.0, 0.1 * actual):
        return None
    ratio = actual / value if actual > value else value / actual
    pace = "fast" if actual > value else "slowly"
    cause = ""
    if run.accumulate > 1 and value == run.batches:
        cause = (f" Likely cause: {name}={value} is the epoch's batches, but with accumulate_grad_batches="
                 f"{run.accumulate} the optimizer steps {actual:g} times per epoch.")
    return (
        f"The {type(spec.scheduler).__name__} scheduler counts {name}={value} of its steps as an epoch, but this run"
        f" steps it {actual:g} times per epoch (interval='step': after each optimizer step): its epochs go by"
        f" {ratio:.3g} times too {pace}.{cause} Compute it from the run: the optimizer steps of an epoch are"
        " `math.ceil(self.trainer.num_training_batches / self.trainer.accumulate_grad_batches)`, e.g."
        f" {name}={int(round(actual))}." + _silence("counts .* of its steps as an epoch")
    )


def _silence(words: str) -> str:
    return f" If that is deliberate, silence this with `warnings.filterwarnings('ignore', '.*{words}')`."

