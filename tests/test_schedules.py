"""The pure schedules (step -> multiplier) against their closed forms."""

from __future__ import annotations

import io
import math
import pickle

import pytest
import torch

from lightning_optim_recipes import RecipeError
from lightning_optim_recipes.schedules import constant, cosine_decay, join, linear, warmup_cosine_schedule


def test_constant():
    assert [constant()(k) for k in (0, 1, 1000)] == [1.0, 1.0, 1.0]
    assert constant(0.25)(7) == 0.25


def test_linear_closed_form():
    schedule = linear(0.1, 0.9, 5)
    expected = [0.1 + 0.8 * k / 4 for k in range(5)] + [0.9, 0.9]
    assert [schedule(k) for k in range(7)] == pytest.approx(expected, abs=1e-12)
    assert linear(0.3, 0.7, 1)(0) == 0.7  # one step: already at the end
    assert linear(1.0, 0.0, 3)(-2) == 1.0  # steps before 0 clamp to the start


def test_cosine_decay_closed_form():
    steps, final = 6, 0.2
    schedule = cosine_decay(steps, final=final)
    expected = [final + (1 - final) * 0.5 * (1 + math.cos(math.pi * k / (steps - 1))) for k in range(steps)]
    assert [schedule(k) for k in range(steps)] == pytest.approx(expected, abs=1e-12)
    assert schedule(0) == 1.0
    assert schedule(steps - 1) == pytest.approx(final, abs=1e-15)
    assert schedule(steps + 10) == pytest.approx(final, abs=1e-15)
    assert cosine_decay(1, final=0.3)(0) == 0.3


def test_join_restarts_each_schedule_at_its_boundary():
    schedule = join([linear(0.0, 1.0, 3), constant(0.5), cosine_decay(3, final=0.0)], boundaries=[2, 4])
    assert [schedule(k) for k in range(8)] == pytest.approx([0.0, 0.5, 0.5, 0.5, 1.0, 0.5, 0.0, 0.0], abs=1e-12)


@pytest.mark.parametrize(
    ("warmup", "total", "final"),
    [(0, 5, 0.0), (1, 4, 0.1), (3, 10, 0.0), (4, 5, 0.05), (2, 3, 0.5)],
)
def test_warmup_cosine_schedule_closed_form(warmup, total, final):
    schedule = warmup_cosine_schedule(warmup, total, final=final)
    peak = max(warmup, 1) - 1
    expected = []
    for k in range(total):
        if k < peak:
            expected.append((k + 1) / warmup)
        else:
            progress = (k - peak) / (total - 1 - peak)
            expected.append(final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress)))
    got = [schedule(k) for k in range(total)]
    assert got == pytest.approx(expected, abs=1e-12)
    assert got[peak] == 1.0  # the warmup ends at the full lr
    assert got[-1] == pytest.approx(final, abs=1e-15)  # ... and the last step runs at exactly `final`
    assert schedule(total + 3) == pytest.approx(final, abs=1e-15)


def test_warmup_cosine_schedule_written_out():
    assert [warmup_cosine_schedule(4, 7)(k) for k in range(7)] == pytest.approx(
        [0.25, 0.5, 0.75, 1.0, 0.75, 0.25, 0.0], abs=1e-12
    )


def test_schedules_plug_into_lambda_lr_and_pickle():
    schedule = warmup_cosine_schedule(2, 5, final=0.1)
    # the peak at step 1, then the cosine down to 0.1 over steps 1 to 4: 0.1 + 0.45 x (1 + cos(pi x (k - 1) / 3))
    written_out = [0.5, 1.0, 0.775, 0.325, 0.1]
    copy = pickle.loads(pickle.dumps(schedule))
    assert copy is not schedule and [copy(k) for k in range(7)] == pytest.approx(written_out + [0.1, 0.1], abs=1e-12)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    lrs = []
    for _ in range(5):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([1.0, 2.0, 1.55, 0.65, 0.2], abs=1e-12)  # 2.0 x the multipliers above
    buffer = io.BytesIO()
    torch.save(scheduler.state_dict(), buffer)  # LambdaLR saves a picklable schedule's state
    buffer.seek(0)
    state = torch.load(buffer)
    assert (state["last_epoch"], state["base_lrs"]) == (5, [2.0])
    assert state["_last_lr"] == pytest.approx([0.2], abs=1e-12)  # step 5, past the end: the final 0.1 x 2.0


@pytest.mark.parametrize(
    ("make", "error_msg"),
    [
        (lambda: linear(0.0, 1.0, 0), r"`steps` must be a positive int, got 0\."),
        (lambda: cosine_decay(2.5), r"`steps` must be a positive int, got 2\.5\."),
        (lambda: cosine_decay(True), r"`steps` must be a positive int, got True\."),
        (lambda: join([constant()], [3]), r"`join` needs one boundary fewer than schedules, got 1 schedules and 1"),
        (lambda: join([constant(), constant(), constant()], [4, 2]),
         r"`join` boundaries must be non-negative and increasing, got \[4, 2\]\."),
        (lambda: warmup_cosine_schedule(-1, 10), r"`warmup_steps` must be a non-negative int, got -1\."),
        (lambda: warmup_cosine_schedule(2, 0), r"`total_steps` must be a positive int, got 0\."),
        (lambda: warmup_cosine_schedule(5, 5),
         r"`total_steps` \(5\) must exceed `warmup_steps` \(5\) to leave room for the decay\. Lower `warmup_steps`"),
    ],
)
def test_schedule_errors(make, error_msg):
    with pytest.raises(RecipeError, match=error_msg):
        make()
