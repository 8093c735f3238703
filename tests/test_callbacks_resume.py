"""Resume with both callbacks attached: stop training with an exception at a seeded random step, resume with
`ckpt_path=` from the last checkpoint (saved every few steps) and compare with an uninterrupted run.

After the resume point the lr of every param group at every optimizer step, the alternation choices and the
`LearningRateLogger` records must be the uninterrupted run's, `SchedulerCadenceCheck` must not raise, and its report
at the end (expected and actual counts over the whole run, final lrs) must be identical: the check keeps its counts
in the checkpoint.
"""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import pytest
import torch
from helpers import Recorder, StopAt, TinyRegressor, loader, pl, trainer
from torch import nn
from torch.optim.lr_scheduler import ExponentialLR, StepLR

from lightning_optim_recipes import RecipeWarning
from lightning_optim_recipes.mixins.alternating import AlternatingOptimizersMixin
from lightning_optim_recipes.callbacks.cadence_check import SchedulerCadenceCheck
from lightning_optim_recipes.callbacks.lr_logger import LearningRateLogger

pytestmark = [
    pytest.mark.trainer,
    pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty"),
    pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended"),
]


def run(directory: Path, model, batches: int, epochs: int, every: int, stop=None, ckpt_path=None):
    """Fit with both callbacks and a checkpoint every `every` steps; raise at step `stop` when given."""
    check = SchedulerCadenceCheck(print_report=False)
    recorder = Recorder()
    callbacks = [LearningRateLogger(logging_interval="step"), check,
                 pl.callbacks.ModelCheckpoint(dirpath=directory, every_n_train_steps=every, save_top_k=-1,
                                              save_last=True)]
    if stop is not None:
        callbacks.append(StopAt(stop))
    fit = trainer(directory, max_epochs=epochs, enable_checkpointing=True, logger=recorder, log_every_n_steps=1,
                  callbacks=callbacks)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)  # no false alarm, before or after resuming
        if stop is None:
            fit.fit(model, loader(batches), ckpt_path=ckpt_path)
        else:
            with pytest.raises(RuntimeError, match=f"stopped at step {stop}"):
                fit.fit(model, loader(batches))
    return check, recorder.records


def compare(reference, resumed, resume_point: int, total: int):
    """`reference`, `resumed`: (model, check, records) of the uninterrupted and the resumed run."""
    (full, full_check, full_records), (model, check, records) = reference, resumed
    assert sorted(model.steps) == list(range(resume_point, total))
    for step, seen in model.steps.items():
        assert seen == full.steps[step], f"step {step} after resuming at {resume_point}"
    assert [r for r in records if r[0] >= resume_point] == [r for r in full_records if r[0] >= resume_point]
    assert [r[0] for r in records] == list(range(resume_point, total))  # logged before every batch from there on
    assert check.report == full_check.report


# ------------------------------------------------------------------------------------- alternating, 5:1 dicts


class Gan(AlternatingOptimizersMixin, pl.LightningModule):
    """1.x-style frequency dicts, critic 5 : generator 1; the generator has two param groups and a 'step'
    scheduler, the critic an 'epoch' scheduler (the mixin steps it on an epoch's last batch, before a checkpoint
    saved there). Records, per optimizer step (global step):
    (epoch, batch, which optimizer, the lr of every group of both optimizers)."""

    def __init__(self, cycle: str) -> None:
        super().__init__()
        self.alternation_cycle = cycle
        self.critic = nn.Linear(4, 1)
        self.generator = nn.Linear(4, 4)
        self.steps: dict[int, tuple] = {}

    def training_step(self, batch, batch_idx, optimizer_idx):
        x, _ = batch
        if optimizer_idx == 0:
            return self.critic(self.generator(x.flip(1))).mean() - self.critic(x).mean()
        return -self.critic(self.generator(x.flip(1))).mean()

    def on_before_optimizer_step(self, optimizer):
        which = "C" if optimizer.param_groups[0]["params"][0] is self.critic.weight else "G"
        lrs = tuple(tuple(g["lr"] for g in opt.param_groups) for opt in self.trainer.optimizers)
        loop = self.trainer.fit_loop.epoch_loop
        self.steps[self.trainer.global_step] = (self.current_epoch, loop.batch_idx, which, lrs)

    def configure_optimizers(self):
        critic = torch.optim.SGD(self.critic.parameters(), lr=0.1)
        generator = torch.optim.Adam([{"params": [self.generator.weight], "lr": 0.02},
                                      {"params": [self.generator.bias], "lr": 0.01}])
        return (
            {"optimizer": critic, "frequency": 5,
             "lr_scheduler": {"scheduler": StepLR(critic, 1, 0.9), "interval": "epoch"}},
            {"optimizer": generator, "frequency": 1,
             "lr_scheduler": {"scheduler": ExponentialLR(generator, 0.5), "interval": "step"}},
        )


GAN_BATCHES, GAN_EPOCHS, GAN_EVERY = 8, 3, 4
GAN_TOTAL = GAN_BATCHES * GAN_EPOCHS  # one optimizer step per batch
#: a seeded random stop per cycle, and step 9: resumes from the checkpoint on the last batch of epoch 0 (step 8)
GAN_STOPS = {cycle: sorted({random.Random(cycle).randrange(GAN_EVERY + 1, GAN_TOTAL), 9}) for cycle in ("run", "epoch")}


@pytest.fixture(scope="module")
def gan_reference(tmp_path_factory):
    runs = {}
    for cycle in GAN_STOPS:
        model = Gan(cycle)
        check, records = run(tmp_path_factory.mktemp(cycle), model, GAN_BATCHES, GAN_EPOCHS, GAN_EVERY)
        runs[cycle] = (model, check, records)
    return runs


def test_gan_reference_runs_written_out(gan_reference):
    """The comparison is not vacuous: the choices, both schedulers and the counts, written out."""
    # 'run': the generator at run-wide positions 5, 11, 17, 23; 'epoch': at batch 5 of every 8-batch epoch
    for cycle, generator_steps in (("run", [5, 11, 17, 23]), ("epoch", [5, 13, 21])):
        model, check, _ = gan_reference[cycle]
        choices = [model.steps[s][2] for s in range(GAN_TOTAL)]
        assert [s for s, c in enumerate(choices) if c == "G"] == generator_steps
        critic_steps = GAN_TOTAL - len(generator_steps)
        g = len(generator_steps)
        report = [(s.name, s.expected, s.expected_max, s.actual, s.final_lr) for s in check.report.schedulers]
        assert report == [
            ("lr-SGD", GAN_EPOCHS, GAN_EPOCHS, GAN_EPOCHS, (pytest.approx(0.1 * 0.9**GAN_EPOCHS),)),
            ("lr-Adam", g, g, g, (pytest.approx(0.02 * 0.5**g), pytest.approx(0.01 * 0.5**g))),
        ]
        assert [(o.frequency, o.expected, o.actual) for o in check.report.optimizers] == [
            (5, critic_steps, critic_steps), (1, g, g)]
        # the generator's lrs at its last step: halved after each of its earlier steps
        assert model.steps[generator_steps[-1]][3][1] == pytest.approx((0.02 * 0.5 ** (g - 1), 0.01 * 0.5 ** (g - 1)))


@pytest.mark.parametrize("cycle", list(GAN_STOPS))
def test_alternating_resume_with_both_callbacks(cycle, gan_reference, tmp_path):
    for stop in GAN_STOPS[cycle]:
        directory = tmp_path / f"stop{stop}"
        interrupted = Gan(cycle)
        run(directory, interrupted, GAN_BATCHES, GAN_EPOCHS, GAN_EVERY, stop=stop)
        assert max(interrupted.steps) == stop - 1
        model = Gan(cycle)
        check, records = run(directory, model, GAN_BATCHES, GAN_EPOCHS, GAN_EVERY,
                             ckpt_path=str(directory / "last.ckpt"))
        resume_point = stop - stop % GAN_EVERY
        compare(gan_reference[cycle], (model, check, records), resume_point, GAN_TOTAL)
        assert model.optimizer_step_counts == gan_reference[cycle][0].optimizer_step_counts


# ------------------------------------------------------------------------ single optimizer, automatic, 'step'


class Single(TinyRegressor):
    """SGD with an ExponentialLR 'step' scheduler (every `frequency` batches); records per global step."""

    def __init__(self, frequency: int) -> None:
        super().__init__()
        self.frequency = frequency
        self.steps: dict[int, tuple] = {}

    def training_step(self, batch, batch_idx):
        lrs = tuple(g["lr"] for g in self.trainer.optimizers[0].param_groups)
        self.steps[self.trainer.global_step] = (self.current_epoch, batch_idx, lrs)
        return super().training_step(batch, batch_idx)

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        return [opt], [{"scheduler": ExponentialLR(opt, 0.8), "interval": "step", "frequency": self.frequency}]


BATCHES, EPOCHS, EVERY = 5, 4, 3
TOTAL = BATCHES * EPOCHS


@pytest.mark.parametrize("frequency", [1, 2])
def test_automatic_step_scheduler_resume_with_cadence_check(frequency, tmp_path):
    reference = Single(frequency)
    full_check, full_records = run(tmp_path / "full", reference, BATCHES, EPOCHS, EVERY)
    # Lightning's rule: after the batches b with (b + 1) % frequency == 0, within each 5-batch epoch
    expected = EPOCHS * sum(1 for b in range(BATCHES) if (b + 1) % frequency == 0)
    assert [(s.expected, s.expected_max, s.actual) for s in full_check.report.schedulers] == [(expected,) * 3]
    assert [(o.expected, o.actual) for o in full_check.report.optimizers] == [(TOTAL, TOTAL)]
    # a seeded random stop, and step 16: resumes from the checkpoint on the last batch of epoch 2 (step 15)
    for stop in sorted({random.Random(f"single-{frequency}").randrange(EVERY + 1, TOTAL), 16}):
        directory = tmp_path / f"stop{stop}"
        run(directory, Single(frequency), BATCHES, EPOCHS, EVERY, stop=stop)
        model = Single(frequency)
        check, records = run(directory, model, BATCHES, EPOCHS, EVERY, ckpt_path=str(directory / "last.ckpt"))
        compare((reference, full_check, full_records), (model, check, records), stop - stop % EVERY, TOTAL)
