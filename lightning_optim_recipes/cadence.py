"""The cadence rules, as pure functions shared by the alternating mixin, the cadence check and the preview.

Alternation: with optimizer frequencies ``(f0, f1, ...)``, position ``p`` of the cycle (the within-epoch ``batch_idx``
by default, as Lightning 1.9 did, or a run-wide counter) selects the optimizer whose block ``p % sum(f)`` falls in.
Schedulers under the alternating mixin: a 'step' scheduler with frequency ``f`` steps right after every ``f``-th step
of its own optimizer (counted over the run); an 'epoch' scheduler steps at the end of every ``f``-th epoch.
Under automatic optimization Lightning 2.x steps a 'step' scheduler after an optimizer step on batch ``batch_idx``
when ``(batch_idx + 1) % f == 0`` (dataloader batches, within the epoch).
"""

from __future__ import annotations

from collections.abc import Sequence


def active_optimizer(frequencies: Sequence[int], position: int) -> int:
    """The index of the optimizer that runs at cycle `position`.

    Example:
        >>> [active_optimizer((2, 1), p) for p in range(7)]
        [0, 0, 1, 0, 0, 1, 0]
    """
    position %= sum(frequencies)
    for index, frequency in enumerate(frequencies):
        if position < frequency:
            return index
        position -= frequency
    raise AssertionError("unreachable")  # pragma: no cover


def alternating_scheduler_steps(interval: str, frequency: int, optimizer_steps: int, epochs_completed: int) -> int:
    """How many times a scheduler under the alternating mixin has stepped, by its cadence.

    Example:
        >>> alternating_scheduler_steps("step", 2, optimizer_steps=7, epochs_completed=1)
        3
        >>> alternating_scheduler_steps("epoch", 2, optimizer_steps=7, epochs_completed=5)
        2
    """
    return (optimizer_steps if interval == "step" else epochs_completed) // frequency


def automatic_step_scheduler_steps(frequency: int, stepped_batch_indices: Sequence[int]) -> int:
    """How many times Lightning 2.x steps a 'step' scheduler, given the ``batch_idx`` of each optimizer step.

    Example:
        >>> automatic_step_scheduler_steps(3, [1, 3, 5, 6])  # accumulate_grad_batches=2 on 7 batches
        1
    """
    return sum(1 for batch_idx in stepped_batch_indices if (batch_idx + 1) % frequency == 0)


def automatic_stepping_batches(batches: int, accumulate: int) -> list[int]:
    """The ``batch_idx`` of the batches of an epoch on which Lightning's automatic optimization steps the optimizer.

    It steps every `accumulate` dataloader batches and on the last batch of the epoch.

    Example:
        >>> automatic_stepping_batches(7, 2)
        [1, 3, 5, 6]
    """
    return [b for b in range(batches) if (b + 1) % accumulate == 0 or b == batches - 1]


def frequency_under_accumulation(frequency: int, accumulate: int, batches: int, epochs: int) -> tuple[int, int]:
    """A 'step' scheduler's steps under automatic optimization: (what Lightning 2.x does, every `frequency`-th step).

    Lightning counts `frequency` in dataloader batches within the epoch and checks it only on batches where the
    optimizer steps; a user usually means every `frequency`-th optimizer step, counted over the run.

    Example:
        >>> frequency_under_accumulation(3, 2, batches=7, epochs=3)  # 4 optimizer steps per epoch
        (3, 4)
    """
    stepping = automatic_stepping_batches(batches, accumulate)
    return epochs * automatic_step_scheduler_steps(frequency, stepping), epochs * len(stepping) // frequency



def never_active(frequencies: Sequence[int], batches: int) -> list[int]:
    """The optimizers that no batch of an epoch of `batches` batches selects when the cycle restarts every epoch.

    Example:
        >>> never_active((5, 1), batches=5)  # n_critic = 5 on 5-batch epochs: the generator never runs
        [1]
    """
    seen = {active_optimizer(frequencies, position) for position in range(min(batches, sum(frequencies)))}
    return [index for index in range(len(frequencies)) if index not in seen]
