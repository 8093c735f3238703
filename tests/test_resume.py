"""Resume: stop training with an exception at a random (seeded) step, resume with `ckpt_path=` from the last
checkpoint (saved every 3 steps), and compare with an uninterrupted run: the lr of every param group at every
optimizer step after the resume point, and the schedulers' counters at the end, must be identical.

5 batches per epoch and checkpoints every 3 steps put some checkpoints mid-epoch (Lightning resumes the epoch at the
saved batch) and one on an epoch's last batch (step 15: saved before that epoch's 'epoch'-interval scheduler step).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from helpers import StopAt, TinyRegressor, loader, pl, trainer
from torch.optim.lr_scheduler import ExponentialLR

from lightning_optim_recipes import OptimRecipeMixin, multistep, param_groups, scheduled, warmup_cosine

pytestmark = [
    pytest.mark.trainer,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty"),  # resumed into the same one
    # mid-epoch resume replays the epoch's data from its first batch; the lrs depend only on the step counters
    pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended"),
]

BATCHES, EPOCHS, EVERY = 5, 4, 3
TOTAL = BATCHES * EPOCHS


def single_step(module):
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    return {"optimizer": optimizer, "lr_scheduler": scheduled(ExponentialLR(optimizer, 0.9), interval="step")}


def single_step_every_2(module):
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    return {"optimizer": optimizer, "lr_scheduler": scheduled(ExponentialLR(optimizer, 0.8), interval="step", frequency=2)}


def groups_multistep(module):
    groups = param_groups(module, weight_decay=1e-6, overrides={"decoder": {"lr": 0.01}})
    optimizer = torch.optim.AdamW(groups, lr=0.1)
    return [optimizer], [multistep(optimizer, milestones=[1, 3], gamma=0.5)]


def warmup_then_cosine(module):
    optimizer = torch.optim.AdamW(param_groups(module, weight_decay=0.01, overrides={"decoder": {"lr": 0.05}}), lr=0.1)
    return {"optimizer": optimizer,
            "lr_scheduler": warmup_cosine(optimizer, warmup_steps=4, min_lr=0.001, trainer=module.trainer)}


PATTERNS = {
    "single-optimizer-step-scheduler": single_step,
    "step-scheduler-frequency-2": single_step_every_2,
    "param-groups-multistep": groups_multistep,
    "warmup-cosine": warmup_then_cosine,
}
#: One seeded random stop per pattern; the epoch-interval pattern also stops at step 16, so it resumes from the
#: checkpoint on the last batch of epoch 2 (saved before that epoch's scheduler step).
STOPS = {name: [random.Random(name).randrange(EVERY + 1, TOTAL)] for name in PATTERNS}
STOPS["param-groups-multistep"].append(16)


class Recorder(OptimRecipeMixin, TinyRegressor):
    """Records {global step: (epoch, batch, lr of every param group)} for every optimizer step."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = pattern
        self.steps: dict[int, tuple[int, int, tuple[float, ...]]] = {}

    def training_step(self, batch, batch_idx):
        lrs = tuple(group["lr"] for group in self.trainer.optimizers[0].param_groups)
        self.steps[self.trainer.global_step] = (self.current_epoch, batch_idx, lrs)
        return super().training_step(batch, batch_idx)

    def configure_optimizers(self):
        return PATTERNS[self.pattern](self)


def fit(tmp_path: Path, pattern: str, stop: int | None = None, ckpt_path: str | None = None):
    torch.manual_seed(0)
    model = Recorder(pattern)
    callbacks = [pl.callbacks.ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=EVERY, save_top_k=-1, save_last=True)]
    if stop is not None:
        callbacks.append(StopAt(stop))
    run = trainer(tmp_path, max_epochs=EPOCHS, enable_checkpointing=True, callbacks=callbacks)
    if stop is None:
        run.fit(model, loader(BATCHES), ckpt_path=ckpt_path)
    else:
        with pytest.raises(RuntimeError, match=f"stopped at step {stop}"):
            run.fit(model, loader(BATCHES))
    return model, run


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    runs = {}
    for pattern in PATTERNS:
        model, run = fit(tmp_path_factory.mktemp(pattern), pattern)
        runs[pattern] = (model.steps, [c.scheduler.state_dict() for c in run.lr_scheduler_configs])
    return runs


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_resume_gives_the_same_lrs_as_an_uninterrupted_run(pattern, uninterrupted, tmp_path):
    reference, reference_schedulers = uninterrupted[pattern]
    assert sorted(reference) == list(range(TOTAL))
    for stop in STOPS[pattern]:
        directory = tmp_path / f"stop{stop}"
        interrupted, _ = fit(directory, pattern, stop=stop)
        assert max(interrupted.steps) == stop - 1  # the steps before the exception ran
        resumed, run = fit(directory, pattern, ckpt_path=str(directory / "last.ckpt"))
        resume_point = stop - stop % EVERY  # the last checkpoint: saved after step `resume_point`
        assert sorted(resumed.steps) == list(range(resume_point, TOTAL))
        for step, (epoch, batch, lrs) in resumed.steps.items():
            assert (epoch, batch, lrs) == reference[step], f"step {step} after resuming from a stop at {stop}"
        assert [c.scheduler.state_dict() for c in run.lr_scheduler_configs] == reference_schedulers


def test_the_schedules_change_the_lr_during_the_compared_steps(uninterrupted):
    """The comparison would be vacuous if the lrs were constant: every pattern changes them after step 3."""
    for pattern, (steps, _) in uninterrupted.items():
        assert len({steps[s][2] for s in range(EVERY, TOTAL)}) > 2, pattern
    warmup = uninterrupted["warmup-cosine"][0]
    # groups decay, no_decay, decoder, decoder/no_decay at step 2 of a 4-step warmup
    assert warmup[2][2] == pytest.approx((0.1 * 3 / 4, 0.1 * 3 / 4, 0.05 * 3 / 4, 0.05 * 3 / 4))
    assert warmup[TOTAL - 1][2][0] == pytest.approx(0.001)  # min_lr exactly at the last step
