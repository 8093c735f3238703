"""Learning-rate curves that are almost surely mistakes, and the warning for each, with the numbers.

Reads the `Curve` of each optimizer (`lightning_optim_recipes.curves`: the lr the run will actually get, replayed
before training) and says, for the scheduler that drives it:

* **lr 0** on optimizer steps after the first (the last excepted: a decay may end there): every param group whose
  base lr is not 0 trains at lr 0, on more than a few steps (``LambdaLR(opt, lambda s: s / 10)`` stepped per epoch
  trains the whole first epoch at 0; a schedule sized for fewer steps than the run reaches 0 and stays there).
* **a rise that never ends**: the lr is highest at the last step and has risen without falling since the start of
  that stretch, changing until the end (a warm-up written in optimizer steps but stepped per epoch). A scheduler that
  cycles by design (``CyclicLR``, ``CosineAnnealingWarmRestarts``) rising again after a fall is in its next cycle.
* **a decay that ends early**: a continuous decay reaches its floor before three quarters of the run and the lr holds
  there to the end (the schedule was sized for a shorter run). A hold the library's factories make on purpose
  (``decay_fraction``), or a schedule that declares a length fitting the run, is not one.

Each message names the scheduler, its cadence and its optimizer's logged name, gives the steps, and says how to
silence it when it is deliberate.
"""

from __future__ import annotations

import math
from typing import Optional

from lightning_optim_recipes.curves import Curve
from lightning_optim_recipes.horizons import horizon_of
from lightning_optim_recipes.runs import Run
from lightning_optim_recipes.validation import SchedulerSpec

__all__ = ["shape_problem"]

#: A decay that ends and holds is reported when the hold starts before this share of the run.
HOLD_BEFORE = 0.75


def shape_problem(curve: Curve, spec: Optional[SchedulerSpec], run: Run, optimizer: str,
                  hand_advice: bool = True, fits: bool = False) -> Optional[str]:
    """The warning about `curve` (one optimizer's lr over the run; `spec`: its scheduler, None when several drive
    it), or None when its shape is plausible. `optimizer` is the optimizer's logged name. `hand_advice`: whether
    advice may suggest another interval (not when the module steps its schedulers by hand). `fits`: the schedule
    declares a length that fits the run, so a hold at its end is part of it."""
    total = curve.total
    if total < 2 or curve.checked < 2:
        return None
    head = _head(spec, optimizer)
    zero = _zero(curve, spec, run, head, hand_advice)
    if zero is not None:
        return zero
    if curve.rising_since is not None and curve.complete and not (
            curve.rising_since > 0 and spec is not None and horizon_of(spec.scheduler).cycles):  # its next cycle
        return _rising(curve, spec, run, head, hand_advice)
    return None if fits else _holding(curve, spec, head)


def _head(spec: Optional[SchedulerSpec], optimizer: str) -> str:
    if spec is None:
        return f"The schedulers of {optimizer}"
    name = type(spec.scheduler).__name__
    named = f" {spec.name!r}" if spec.name else ""
    every = "" if spec.frequency == 1 else f", frequency={spec.frequency}"
    return f"{article(name).capitalize()} {name}{named} (interval={spec.interval!r}{every}) of {optimizer}"


def article(word: str) -> str:
    """The article before a class name as it is read aloud: ``an ExponentialLR``, ``a LambdaLR``, ``an SGD`` (an
    acronym spelled out), ``a OneCycleLR``.

    Example:
        >>> [f"{article(w)} {w}" for w in ("ExponentialLR", "OneCycleLR", "LambdaLR", "SGD", "AdamW", "MultiStepLR")]
        ['an ExponentialLR', 'a OneCycleLR', 'a LambdaLR', 'an SGD', 'an AdamW', 'a MultiStepLR']
    """
    if word[:2].isupper() and word[:1] in "FHLMNRSX":  # spelled out: an SGD, an LBFGS
        return "an"
    if word.startswith(("One", "Uni", "Use", "Eu")):
        return "a"
    return "an" if word[:1].lower() in "aeio" else "a"


def _steps(count: int) -> str:
    return f"{count} optimizer step{'s' if count != 1 else ''}"


def _zero(curve: Curve, spec: Optional[SchedulerSpec], run: Run, head: str, hand_advice: bool) -> Optional[str]:
    total = curve.total
    if curve.zero_steps < max(2, math.ceil(0.005 * total)) or curve.zero_first is None or curve.zero_last is None:
        return None
    first, last = curve.zero_first, curve.zero_last
    to_end = last >= total - 2
    where = f"from step {first} to the end" if to_end else f"steps {first} to {last}"
    text = (f"{head} makes every param group train at lr 0 on {curve.zero_steps} of the run's {_steps(total)}"
            f" ({where}){_covers_epochs(curve, run, first, last)}: those steps change no weight.")
    if first <= 1 and spec is not None and spec.interval == "epoch":
        text += (" Its lr is 0 until it first steps, and it steps once per epoch (interval='epoch')."
                 + (" If its schedule counts optimizer steps, step it after every optimizer step: {'scheduler':"
                    " scheduler, 'interval': 'step'} (or `scheduled(scheduler, interval='step')`); if it counts"
                    " epochs, start it above 0." if hand_advice else " Start it above 0."))
    elif to_end:
        text += (f" It reaches 0 at step {first} and stays there: the schedule is shorter than the run. Size it"
                 f" with the run's {_steps(total)} (`self.trainer.estimated_stepping_batches` in"
                 " `configure_optimizers`, which counts accumulation, devices, limit_train_batches and max_steps).")
    return text + " If that is deliberate, silence this with `warnings.filterwarnings('ignore', '.*train at lr 0')`."


def _covers_epochs(curve: Curve, run: Run, first: int, last: int) -> str:
    per_epoch = run.optimizer_steps_per_epoch[curve.optimizer] if curve.optimizer < len(
        run.optimizer_steps_per_epoch) else 0
    if per_epoch <= 0 or first > 1:
        return ""
    epochs = (last + 1) // per_epoch
    if epochs >= 1 and (last + 1) % per_epoch == 0:
        return f", every step of the first {'epoch' if epochs == 1 else f'{epochs} epochs'}"
    return ""


def _rising(curve: Curve, spec: Optional[SchedulerSpec], run: Run, head: str, hand_advice: bool) -> str:
    since = curve.rising_since or 0
    later = ""
    if curve.beyond is not None and curve.beyond > curve.last:
        later = f", and it goes on rising after the run (to {curve.beyond:.6g})"
    text = (f"{head} is still rising when the run ends: its lr grows from {curve.rising_from:.6g} at step {since} to"
            f" {curve.last:.6g} at the last of the run's {_steps(curve.total)}{later}, so the warm-up never ends.")
    if spec is not None and spec.interval == "epoch":
        text += (" It steps once per epoch (interval='epoch'), " + (
            f"{run.max_epochs if run.max_epochs > 0 else math.ceil(run.epochs)} times in this run. If its warm-up"
            " counts optimizer steps, step it after every optimizer step: {'scheduler': scheduler, 'interval':"
            " 'step'} (or `scheduled(scheduler, interval='step')`)." if hand_advice else
            "while the module also steps it by hand: give its warm-up in the unit it is stepped in."))
    else:
        text += (f" Make the warm-up shorter than the run's {_steps(curve.total)}, or train longer.")
    return text + (" If that is deliberate, silence this with `warnings.filterwarnings('ignore', '.*still rising when"
                   " the run ends')`.")


def _holding(curve: Curve, spec: Optional[SchedulerSpec], head: str) -> Optional[str]:
    total = curve.total
    if not (curve.complete and curve.falling and curve.continuous and 0 < curve.last < curve.peak):
        return None
    if curve.last_change > HOLD_BEFORE * total or (total - 1 - curve.last_change) < 2:
        return None
    if spec is not None and getattr(spec.scheduler, "decay_steps", None) is not None:
        return None  # a hold on purpose (`warmup_cosine(decay_fraction=...)`)
    held = total - curve.last_change
    return (f"{head} ends its decay early: its lr falls to {curve.last:.6g} ({curve.last / curve.peak:.1%} of its peak"
            f" {curve.peak:.6g}) by step {curve.last_change} and holds there for the remaining {held} of the run's"
            f" {_steps(total)} ({held / total:.0%} of the run): the decay is sized for a shorter run. Size it with"
            f" the run's {_steps(total)} (`self.trainer.estimated_stepping_batches` in `configure_optimizers`). If"
            " the hold is deliberate, silence this with `warnings.filterwarnings('ignore', '.*ends its decay"
            " early')`.")
