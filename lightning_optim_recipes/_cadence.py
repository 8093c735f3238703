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
