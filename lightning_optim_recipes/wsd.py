"""Warmup-stable-decay schedules that do not need the run's length up front, and cooldowns from any checkpoint.

`warmup_stable_decay` warms up, holds the peak, and decays only at the end (Hu et al. 2024, MiniCPM; Hägele et al.
2024), so one long run can be branched into cooldowns at several lengths from its stable-phase checkpoints:
``decay_start="now"`` (or `cooldown`) starts the decay at the step training resumes from. Such a schedule is built
with no decay yet and anchored where training stands: by the scheduler itself when Lightning loads the checkpoint's
scheduler state into it (`WarmupStableDecayLR.load_state_dict`: a plain ``Trainer.fit(ckpt_path=...)`` needs no
callback of the library), or by the resume machinery under ``resume="recipe"`` (`start_decay`, called by
`place_scheduler`). A cooldown already under way in the checkpoint (a branch resumed from its own checkpoint) keeps
the start saved there. A fit that does not resume is a `RecipeError` when the factory is given the Trainer
(``trainer=self.trainer``), and `check_decay_start` says it before training too, or that the run does not end where
the cooldown does. Every length may be written in units (`lightning_optim_recipes.units`).

The scheduler is a `WarmupStableDecayLR`, a ``LambdaLR`` over `warmup_stable_decay_schedule`, with its settings as
plain attributes (``warmup_steps``, ``decay_start``, ``decay_length``, ``decay_shape``, ``min_lr_ratio``,
``warmup_start``, ``total_steps``, ``lengths``) that checkpoints keep and resumes compare.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional, Union

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from lightning_optim_recipes import units
from lightning_optim_recipes._checks import count
from lightning_optim_recipes.errors import RecipeError, warn
from lightning_optim_recipes.run_lengths import check_warmup_start, final_multiplier
from lightning_optim_recipes.schedulers import SchedulerDict, scheduled
from lightning_optim_recipes.schedules import DECAY_SHAPES, schedule_length, warmup_stable_decay_schedule

__all__ = ["NOW", "WarmupStableDecayLR", "anchors_on_load", "check_decay_start", "cooldown", "cooldown_start",
           "decay_window", "start_decay", "warmup_stable_decay"]

#: ``decay_start="now"``: the decay starts at the step training resumes from.
NOW = "now"

#: The settings `_keep` puts on the scheduler: a cooldown keeps its own when a checkpoint's state is loaded into it.
_SETTINGS = ("warmup_steps", "decay_start", "decay_length", "decay_shape", "min_lr_ratio", "warmup_start",
             "peak_step", "total_steps", "lengths")


class WarmupStableDecayLR(LambdaLR):
    """The scheduler `warmup_stable_decay` and `cooldown` build: a ``LambdaLR`` over `warmup_stable_decay_schedule`,
    its settings as plain attributes.

    A cooldown (``decay_start="now"``) that no resume has anchored yet anchors itself when a checkpoint's state is
    loaded into it, as Lightning does when a fit resumes (after the optimizers' states, before the first training
    step): at the start saved in that state when the checkpoint's scheduler is a cooldown already under way (a
    branch resumed from its own checkpoint continues its cooldown), else at the step count loaded, where training
    resumes. It keeps its own settings (the checkpoint's are the run it branches from), takes the step count and
    base lrs from the checkpoint, as Lightning does, and sets its optimizer's lrs to the cooldown's at that step.
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        settings = vars(self)
        saved = _started(state_dict)
        if settings.get("decay_start") != NOW or not (saved is not None or state_dict.get("last_epoch", 0)):
            super().load_state_dict(state_dict)  # anchored already, or a fresh state: nothing to anchor
            return
        own = {key: settings[key] for key in _SETTINGS if key in settings}
        super().load_state_dict(state_dict)
        for key in _SETTINGS:
            settings.pop(key, None)
        settings.update(own)
        start_decay(self, self.last_epoch, state_dict)
        lrs: list[Any] = [float(base) * function(self.last_epoch) for base, function in zip(self.base_lrs,
                                                                                         self.lr_lambdas)]
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = lrs


def warmup_stable_decay(
    optimizer: Optimizer,
    *,
    warmup: units.LengthLike,
    decay: units.LengthLike,
    decay_shape: str = "linear",
    decay_start: Union[units.LengthLike, None] = None,
    min_lr: Optional[float] = None,
    min_lr_ratio: Optional[float] = None,
    warmup_start: Union[float, str, None] = None,
    total_steps: Optional[units.LengthLike] = None,
    trainer: Any = None,
    name: Optional[str] = None,
) -> SchedulerDict:
    """Warm up, hold the optimizer's lr, then decay to `min_lr` over `decay` optimizer steps (interval 'step').

    Every length is optimizer steps as an int, or in units: ``"10ep"``, ``"500st"``, ``"2000ba"``, ``"5%"`` (of
    the run), resolved against `trainer` (inside ``configure_optimizers``, ``trainer=self.trainer``). The warm-up's
    step k runs at ``(k + 1) / warmup`` of the peak (``warmup_start``: from that multiplier at step 0 instead, or
    ``"zero"``: at ``k / warmup``, the peak one step after it); the
    decay's step i at ``f((i + 1) / decay)`` of the way from the peak to `min_lr`, `f` given by `decay_shape`
    (``"linear"``, ``"cosine"``, ``"1-sqrt"``: see `lightning_optim_recipes.schedules.anneal`), its last step at
    exactly `min_lr`.

    Args:
        optimizer: the optimizer; its lr is the peak.
        warmup: the warm-up's length (0: none).
        decay: the decay's length.
        decay_shape: the decay's shape.
        decay_start: where the decay starts: None (default) at the end of the run, ``decay`` steps before its last
            (`total_steps`, default the Trainer's ``estimated_stepping_batches``); a position (``"80%"``,
            ``"8000st"``; the lr holds at `min_lr` after the decay); or ``"now"``, the step this fit resumes from (a
            cooldown branch from a stable-phase checkpoint: `cooldown`).
        min_lr: the lr the decay ends at, absolute (default 0; groups with their own lr keep their ratio to it).
        min_lr_ratio: the same as a fraction of the peak (instead of `min_lr`).
        warmup_start: the warm-up's multiplier of the peak at its first step, in [0, 1], or ``"zero"``.
        total_steps: the run's optimizer steps, when not read from `trainer`.
        trainer: the Trainer, for lengths in units and the run's length.
        name: the name learning-rate loggers use.

    Example:
        >>> import torch
        >>> opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        >>> sched = warmup_stable_decay(opt, warmup=2, decay="25%", total_steps=8)["scheduler"]
        >>> lrs = []
        >>> for _ in range(8):
        ...     lrs.append(round(opt.param_groups[0]["lr"], 3)); opt.step(); sched.step()
        >>> lrs, sched.lengths
        ([0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.0], {'decay': ('25%', 2)})
    """
    what = "warmup_stable_decay"
    check_warmup_start(warmup_start)
    if decay_shape not in DECAY_SHAPES:
        raise RecipeError(f"`decay_shape` must be one of {list(DECAY_SHAPES)}, got {decay_shape!r}: 'linear' (Hägele et"
                          " al.'s main comparison), '1-sqrt' (their best) or 'cosine'.")
    final = final_multiplier(optimizer, what, min_lr, min_lr_ratio)
    run = _lazy_run(trainer, total_steps, what)
    warm = _steps(warmup, "warmup", run, what, minimum=0)
    length = _steps(decay, "decay", run, what, minimum=1)
    total = run().total_steps if decay_start is None or trainer is not None or total_steps is not None else None
    if decay_start is None:
        if total is None:
            source = ("the Trainer's run has no end (set `max_steps` or `max_epochs`)" if trainer is not None else
                      "pass `trainer=self.trainer` inside `configure_optimizers` (its `estimated_stepping_batches`)")
            raise RecipeError(
                f"`{what}` decays at the end of the run, whose length it needs: {source}, or `total_steps=`, or say"
                " where the decay starts (`decay_start='80%'`, or 'now' for a cooldown from the checkpoint being"
                " resumed)."
            )
        start: Union[int, str] = total - length
        if total - length < warm:
            raise RecipeError(
                f"`{what}`'s {warm}-step warm-up and {length}-step decay{_written(warmup, decay)} do not fit the run's"
                f" {total} optimizer steps: give a shorter warm-up or decay, or train longer."
            )
    elif decay_start == NOW:
        start = NOW
        if _fits_from_scratch(trainer):
            raise RecipeError(_not_resumed(name))
    else:
        start = _steps(decay_start, "decay_start", run, what, minimum=warm)
    schedule = warmup_stable_decay_schedule(warm, None if start == NOW else int(start), length, decay_shape, final,
                                            warmup_start)
    scheduler = WarmupStableDecayLR(optimizer, schedule)
    _keep(scheduler, warm, start, length, decay_shape, final, warmup_start, total)
    units.record(scheduler, {"warmup": (warmup, warm), "decay": (decay, length),
                             "decay_start": (decay_start, start), "total_steps": (total_steps, total)})
    return scheduled(scheduler, interval="step", name=name)


def cooldown(
    optimizer: Optimizer,
    *,
    steps: units.LengthLike,
    decay_shape: str = "linear",
    min_lr: Optional[float] = None,
    min_lr_ratio: Optional[float] = None,
    trainer: Any = None,
    name: Optional[str] = None,
) -> SchedulerDict:
    """A cooldown from the checkpoint being resumed: the optimizer's lr until the step training resumes from, then a
    decay to `min_lr` over `steps` optimizer steps (``warmup_stable_decay(warmup=0, decay=steps,
    decay_start="now")``). Resume a stable-phase checkpoint with ``Trainer(max_steps=<checkpoint step> + steps)``;
    several branches can start from one run.

    The scheduler anchors the decay itself when Lightning restores its state from the checkpoint (a plain
    ``Trainer.fit(model, ckpt_path=...)`` works, with or without the library's mixins and callbacks; under
    ``resume = "recipe"`` the resume places it first). A branch resumed from its own checkpoint, once its cooldown
    has started, continues it: the start is saved in the scheduler's state. Built with ``trainer=self.trainer`` in a
    fit that resumes no checkpoint, it is a `RecipeError` (there is no step to cool down from).

    Example:
        >>> import torch
        >>> from lightning_optim_recipes.resume import place_scheduler
        >>> opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        >>> sched = cooldown(opt, steps=4, decay_shape="1-sqrt")["scheduler"]
        >>> place_scheduler(sched, 100)  # what resuming from a checkpoint at step 100 does
        >>> lrs = []
        >>> for _ in range(5):
        ...     lrs.append(round(opt.param_groups[0]["lr"], 3)); opt.step(); sched.step()
        >>> sched.decay_start, lrs
        (100, [0.5, 0.293, 0.134, 0.0, 0.0])
    """
    return warmup_stable_decay(optimizer, warmup=0, decay=steps, decay_shape=decay_shape, decay_start=NOW,
                               min_lr=min_lr, min_lr_ratio=min_lr_ratio, trainer=trainer, name=name)


# ------------------------------------------------------------------------------------ anchoring "now"


def start_decay(scheduler: Any, step: int, saved: Optional[Mapping[str, Any]] = None) -> bool:
    """Anchor a ``decay_start="now"`` scheduler's decay at `step` (where training resumes), or, when `saved` (the
    checkpoint's state of this scheduler) is a cooldown's already under way there, at the step it started at; False
    for any other scheduler. Called by `place_scheduler` before it places the scheduler, and by the scheduler when
    Lightning loads a checkpoint's state into it, so that the lr at every later step is the cooldown's."""
    if getattr(scheduler, "decay_start", None) != NOW or not isinstance(scheduler, LambdaLR):
        return False
    warm = int(getattr(scheduler, "warmup_steps", 0))
    settings = vars(scheduler)
    start = cooldown_start(saved, step)
    if start < warm:
        raise RecipeError(
            f"The cooldown (decay_start='now') would start at step {start}, where training resumes, inside its"
            f" {warm}-step warm-up: use a checkpoint from after the warm-up (or a shorter warm-up)."
        )
    schedule = warmup_stable_decay_schedule(warm, start, int(settings["decay_length"]), str(settings["decay_shape"]),
                                            float(settings["min_lr_ratio"]), settings["warmup_start"])
    scheduler.lr_lambdas = [schedule for _ in scheduler.lr_lambdas]
    settings["decay_start"] = start
    units.record(scheduler, {**units.lengths_of(scheduler), "decay_start": (NOW, start)})
    return True


def cooldown_start(saved: Optional[Mapping[str, Any]], step: int) -> int:
    """Where a cooldown from where training resumes, resumed at `step` from a checkpoint whose state of it is `saved`,
    starts: where the saved cooldown started, when it had (and not after `step`), else `step`."""
    started = _started(saved)
    return started if started is not None and started <= step else step


def _started(state: Optional[Mapping[str, Any]]) -> Optional[int]:
    """Where the cooldown whose saved state this is started (None: not a cooldown under way)."""
    if not isinstance(state, Mapping):
        return None
    lengths, start = state.get("lengths"), state.get("decay_start")
    written = lengths.get("decay_start") if isinstance(lengths, Mapping) else None
    if not isinstance(written, (tuple, list)) or not written or written[0] != NOW:
        return None
    return start if isinstance(start, int) and not isinstance(start, bool) else None


def anchors_on_load(scheduler: Any) -> bool:
    """Whether `scheduler` is a cooldown not anchored yet, which anchors itself and sets its optimizer's lrs when a
    checkpoint's state is loaded into it (`WarmupStableDecayLR.load_state_dict`)."""
    return isinstance(scheduler, WarmupStableDecayLR) and vars(scheduler).get("decay_start") == NOW


def decay_window(scheduler: Any) -> Optional[tuple[int, int]]:
    """The first and the last step of a `warmup_stable_decay` scheduler's decay, read from the schedule it runs
    (None: not one, or a ``decay_start="now"`` one that no resume has anchored)."""
    if getattr(scheduler, "decay_length", None) is None or not isinstance(scheduler, LambdaLR):
        return None
    end = schedule_length(scheduler.lr_lambdas[0])
    return None if end is None else (end - int(vars(scheduler)["decay_length"]), end - 1)


def check_decay_start(schedulers: Sequence[Any], trainer: Any, at: Any = None,
                      positions: Optional[Sequence[int]] = None) -> list[int]:
    """Before training: a ``decay_start="now"`` scheduler of a fit that does not resume is a `RecipeError`; one whose
    cooldown does not end where the run does gets a `RecipeWarning` with the `max_steps` that fits.

    Args:
        schedulers: the `SchedulerSpec`s of the validated setup (anchored by the resume, if any).
        trainer: the run's Trainer (or a preview's stand-in).
        at: where the warning points.
        positions: per scheduler, the step count it resumes at (the resume's `ResumeReport.positions`), if known.

    Returns:
        The optimizers warned about (the watch during training stays silent about them).
    """
    warned = []
    for k, spec in enumerate(schedulers):
        scheduler = spec.scheduler
        if units.lengths_of(scheduler).get("decay_start", ("",))[0] != NOW:
            continue  # not a cooldown from where training resumes
        window = decay_window(scheduler)
        if window is None:
            raise RecipeError(_not_resumed(spec.name))
        total = units.RunSize.of(trainer).total_steps
        first, last = window
        if total is None or total == last + 1:
            continue
        label = f"The warmup_stable_decay scheduler{f' {spec.name!r}' if spec.name else ''}"
        decay = _shown(scheduler, "decay", last + 1 - first)
        resumes = positions[k] if positions is not None and k < len(positions) else first
        where, end = ("where training resumes", "the checkpoint's step plus the cooldown") if resumes == first else (
            f"where it started before the checkpoint (training resumes at step {resumes})",
            "the cooldown's start plus its length")
        head = (f"{label} cools down from step {first}, {where}, over {decay} to step {last}, but this run ends"
                f" after step {total - 1}")
        if total < last + 1:
            ratio = scheduler.lr_lambdas[0](total - 1)
            message = (f"{head}: it stops {(total - first) / (last + 1 - first):.0%} of the way through the cooldown,"
                       f" at {ratio:.3g} of the peak lr, not at its floor.")
        else:
            message = (f"{head}: it trains {total - last - 1} more steps at the floor after the cooldown.")
        warn(f"{message} Set `Trainer(max_steps={last + 1})` ({end}), or a decay of {max(total - first, 1)} steps;"
             " if that is deliberate, silence this with `warnings.filterwarnings('ignore', '.*cools down from"
             " step')`.", at=at)
        warned.append(spec.optimizer_index)
    return warned


def _not_resumed(name: Optional[str]) -> str:
    label = f"The warmup_stable_decay scheduler{f' {name!r}' if name else ''}"
    return (f"{label} starts its decay where training resumes (decay_start='now'), but this run does not resume"
            " from a checkpoint: resume a stable-phase checkpoint (pass `ckpt_path=` to `trainer.fit`; in a preview,"
            " `resume_from=ResumeFrom(...)`), or give decay_start as a position ('80%', '8000st'), or remove it to"
            " decay at the end of the run.")


def _fits_from_scratch(trainer: Any) -> bool:
    """Whether `trainer` is a real Trainer fitting with no checkpoint to resume (Lightning has set ``ckpt_path``
    before ``configure_optimizers`` runs); False when that is not known: a preview's stand-in, a Trainer not fitting,
    a strategy that loads the checkpoint only after ``configure_optimizers`` (FSDP2's, DeepSpeed's)."""
    fn = getattr(getattr(trainer, "state", None), "fn", None)
    if str(getattr(fn, "value", fn)) != "fit" or not hasattr(trainer, "_checkpoint_connector"):
        return False
    if getattr(getattr(trainer, "strategy", None), "restore_checkpoint_after_setup", False):
        return False
    return getattr(trainer, "ckpt_path", None) is None


# ------------------------------------------------------------------------------------------------ parts


def _lazy_run(trainer: Any, total_steps: Any, what: str) -> Callable[[], units.RunSize]:
    """The run's sizes, read from the Trainer once, when a length needs them."""

    @functools.lru_cache(maxsize=1)
    def run() -> units.RunSize:
        total = None
        if total_steps is not None:
            total = units.resolve(total_steps, "total_steps", units.RunSize.of(trainer), what=f"`{what}`")
            if isinstance(total, bool) or not isinstance(total, int) or total < 1:
                raise RecipeError(f"`total_steps` must be a positive int or a length ('10ep'), got {total_steps!r}.")
        return units.RunSize.of(trainer, total_steps=total)

    return run


def _steps(value: Any, key: str, run: Callable[[], units.RunSize], what: str, minimum: int) -> int:
    resolved = units.resolve(value, key, run() if isinstance(value, str) else units.RunSize(), what=f"`{what}`")
    if isinstance(resolved, bool) or not isinstance(resolved, int) or resolved < minimum:
        kind, now = ("a position", ", or 'now'") if key == "decay_start" else ("a length", "")
        share = (f": a share of the run is written in percent, '{value * 100:g}%'" if isinstance(value, float)
                 and 0 < value < 1 else "")
        raise RecipeError(
            f"`{key}` must be {kind} of at least {count(minimum, 'optimizer step')} (an int, or '10ep', '500st',"
            f" '2000ba', '5%'{now}), got {value!r}" + (f" = {resolved} steps" if isinstance(value, str) else "")
            + share + "."
        )
    return resolved


def _keep(scheduler: WarmupStableDecayLR, warm: int, start: Union[int, str], length: int, shape: str, final: float,
          warmup_start: Union[float, str, None], total: Optional[int]) -> None:
    """The settings, as plain attributes: previews, the fit checks and resumes read them; `start_decay` rebuilds
    the schedule from them."""
    scheduler.warmup_steps = warm  # type: ignore[attr-defined]
    scheduler.decay_start = start  # type: ignore[attr-defined]
    scheduler.decay_length = length  # type: ignore[attr-defined]
    scheduler.decay_shape = shape  # type: ignore[attr-defined]
    scheduler.min_lr_ratio = final  # type: ignore[attr-defined]
    scheduler.warmup_start = warmup_start  # type: ignore[attr-defined]
    scheduler.peak_step = warm if warmup_start == "zero" and warm else max(warm - 1, 0)  # type: ignore[attr-defined]
    if total is not None:
        scheduler.total_steps = total  # type: ignore[attr-defined]


def _written(warmup: Any, decay: Any) -> str:
    shown = [f"{k} {v!r}" for k, v in (("warmup", warmup), ("decay", decay)) if isinstance(v, str)]
    return f" ({', '.join(shown)})" if shown else ""


def _shown(scheduler: Any, key: str, steps: int) -> str:
    written = units.lengths_of(scheduler).get(key)
    return f"{steps} steps ({written[0]!r})" if written else f"{steps} steps"
