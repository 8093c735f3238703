"""`strategy="ddp"` with 2 CPU processes (gloo): `OptimRecipeMixin` gives every rank the same lrs, and lengths in
units resolve against each rank's share of the data.

The ranks train in the suite's one multi-rank run (tests/spawned.py, scenario ``recipe_units`` of
tests/spawned_ddp.py); each rank wrote what it saw as JSON, which the ``spawned`` fixture reads.
"""

from __future__ import annotations

import math

import pytest
from helpers import NAMESPACE, scenario

pytestmark = [pytest.mark.trainer, pytest.mark.slow]


def expected_lr(step: int, base: float, warmup: int = 3, total: int = 8, min_lr: float = 0.001) -> float:
    """warmup_cosine's closed form: (k + 1) / warmup during warmup, then a cosine to min_lr at the last step."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - (warmup - 1)) / (total - warmup)
    final = min_lr / 0.1
    return base * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress)))


def test_every_rank_sees_the_same_lrs(spawned):
    ranks = scenario(spawned, "recipe_units")
    for seen in ranks:
        assert seen["namespace"] == NAMESPACE and seen["world_size"] == 2 and seen["backend"] == "gloo"
        assert seen["total_steps"] == 8  # estimated_stepping_batches counts each rank's share of the data
        assert seen["names"] == ["decay", "no_decay", "decoder", "decoder/no_decay"]
        # each rank's epoch is 4 batches (4 optimizer steps), its run 8: '6ba' is one epoch and 2 batches
        assert seen["units"] == {"warmup": ["1ep", 4], "decay": ["25%", 2], "decay_start": ["6ba", 6]}
    assert ranks[0]["lr_log"] == ranks[1]["lr_log"]
    log = ranks[0]["lr_log"]
    assert [(epoch, batch) for epoch, batch, _ in log] == [(e, b) for e in range(2) for b in range(4)]
    for step, (_, _, lrs) in enumerate(log):
        base, decoder = expected_lr(step, 0.1), expected_lr(step, 0.05)
        assert lrs == pytest.approx([base, base, decoder, decoder], rel=1e-9), step
    assert log[-1][2][0] == pytest.approx(0.001)
