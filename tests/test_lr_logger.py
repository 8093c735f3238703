"""`LearningRateLogger` against Lightning's `LearningRateMonitor` on the same runs: same names, steps and values,
same `lrs` / `last_momentum_values` / `last_weight_decay_values`, same lr entries in ``trainer.callback_metrics``.

The gaps the drop-in closed (param groups added during training, SWA's scheduler swap, callback metrics, warning and
errors) are in ``test_lr_logger_parity.py``."""

from __future__ import annotations

import pytest
import torch
from helpers import Recorder, TinyRegressor, loader, pl, trainer
from torch import nn
from torch.optim.lr_scheduler import ExponentialLR, StepLR

from lightning_optim_recipes import param_groups
from lightning_optim_recipes.mixins.alternating import AlternatingOptimizersMixin
from lightning_optim_recipes.callbacks.lr_logger import LearningRateLogger

pytestmark = pytest.mark.trainer


def fit(tmp_path, make_model, callback, batches=5, callbacks=(), **kwargs):
    """Fit `make_model()` with `callback` (after `callbacks`); the non-empty records and the Trainer."""
    torch.manual_seed(0)
    recorder = Recorder()
    options = dict(max_epochs=2, log_every_n_steps=2)
    options.update(kwargs)
    t = trainer(tmp_path, logger=recorder, callbacks=[*callbacks, callback], **options)
    t.fit(make_model(), loader(batches))
    return [(step, metrics) for step, metrics in recorder.records if metrics], t


def logged(tmp_path, make_model, callback, batches=5, **kwargs):
    return fit(tmp_path, make_model, callback, batches, **kwargs)[0]


def assert_same_as_monitor(tmp_path, make_model, make_callbacks=lambda: [], **options):
    """Run `LearningRateLogger(**options)` and `LearningRateMonitor(**options)` on the same seeded run: the records,
    the attributes the monitor keeps and the lr entries of ``trainer.callback_metrics`` must be the same."""
    fit_options = {k: options.pop(k) for k in ("batches", "max_epochs", "log_every_n_steps") if k in options}
    mine, theirs = LearningRateLogger(**options), pl.callbacks.LearningRateMonitor(**options)
    ours, our_trainer = fit(tmp_path / "ours", make_model, mine, callbacks=make_callbacks(), **fit_options)
    reference, their_trainer = fit(tmp_path / "theirs", make_model, theirs, callbacks=make_callbacks(), **fit_options)
    assert [(s, list(m)) for s, m in ours] == [(s, list(m)) for s, m in reference]
    for (_, m), (_, r) in zip(ours, reference):
        assert m == pytest.approx(r, rel=1e-6)  # the Recorder's float(): float32 precision through some loggers
    # the attributes: the same keys in the same order, the same Python floats
    assert mine.lrs == theirs.lrs and list(mine.lrs) == list(theirs.lrs)
    assert list(mine.last_momentum_values.items()) == list(theirs.last_momentum_values.items())
    assert list(mine.last_weight_decay_values.items()) == list(theirs.last_weight_decay_values.items())
    # every name ever logged is in callback_metrics with its last value (a renamed 'lr-SGD' too)
    names = set().union(*(m for _, m in reference))
    assert {n: float(v) for n, v in our_trainer.callback_metrics.items() if n in names} == {
        n: float(v) for n, v in their_trainer.callback_metrics.items() if n in names
    }
    assert names <= set(our_trainer.callback_metrics)
    return ours


class Grouped(TinyRegressor):
    """AdamW with named param groups, a step scheduler and an epoch scheduler."""

    def configure_optimizers(self):
        opt = torch.optim.AdamW(param_groups(self, weight_decay=0.01), lr=0.1)
        return [opt], [{"scheduler": ExponentialLR(opt, 0.9), "interval": "step"}]


class TwoSchedulers(TinyRegressor):
    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)
        return [opt], [{"scheduler": ExponentialLR(opt, 0.9), "interval": "step", "name": "warm"},
                       StepLR(opt, 1, 0.5)]


@pytest.mark.parametrize("interval", [None, "step", "epoch"])
@pytest.mark.parametrize("model", [Grouped, TwoSchedulers])
def test_same_as_learning_rate_monitor(tmp_path, model, interval):
    assert_same_as_monitor(tmp_path, model, logging_interval=interval, log_momentum=True, log_weight_decay=True)


def test_names_and_values_written_out(tmp_path):
    ours = logged(tmp_path, Grouped, LearningRateLogger(log_momentum=True))
    # log_every_n_steps=2: logged before batches whose step (_batches_that_stepped + 1) is even
    assert [step for step, _ in ours] == [1, 3, 5, 7, 9]
    names = ["lr-AdamW/decay", "lr-AdamW/decay-momentum", "lr-AdamW/no_decay", "lr-AdamW/no_decay-momentum"]
    assert sorted(ours[0][1]) == names
    assert ours[1][1]["lr-AdamW/decay"] == pytest.approx(0.1 * 0.9**3)
    assert ours[1][1]["lr-AdamW/no_decay-momentum"] == 0.9


class ManualThree(TinyRegressor):
    """Manual optimization, three optimizers (two Adams), a named scheduler on one: the others have none."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        for opt in self.optimizers():
            opt.zero_grad()
        self.manual_backward(loss)
        for opt in self.optimizers():
            opt.step()
        self.lr_schedulers().step()

    def configure_optimizers(self):
        sgd = torch.optim.SGD(self.encoder[0].parameters(), lr=0.1)
        adam = torch.optim.Adam(self.encoder[1].parameters(), lr=0.01)
        adam2 = torch.optim.Adam(self.decoder.parameters(), lr=0.02)
        return [sgd, adam, adam2], [{"scheduler": ExponentialLR(sgd, 0.5), "interval": "step", "name": "sgd-lr"}]


def test_manual_optimization_and_optimizers_without_scheduler(tmp_path):
    ours = assert_same_as_monitor(tmp_path, ManualThree)
    # epoch start: the optimizers without a scheduler; then every second step: the step scheduler's and those
    assert [(step, sorted(m)) for step, m in ours[:2]] == [(0, ["lr-Adam", "lr-Adam-1"]),
                                                           (1, ["lr-Adam", "lr-Adam-1", "sgd-lr"])]
    assert ours[1][1]["sgd-lr"] == pytest.approx(0.1 * 0.5)


class GAN(AlternatingOptimizersMixin, pl.LightningModule):
    alternation = {"critic_step": 2, "generator_step": 1}

    def __init__(self):
        super().__init__()
        self.critic, self.generator = nn.Linear(4, 1), nn.Linear(4, 4)

    def critic_step(self, batch, batch_idx):
        return self.critic(self.generator(batch[0])).mean() - self.critic(batch[0]).mean()

    def generator_step(self, batch, batch_idx):
        return -self.critic(self.generator(batch[0])).mean()

    def configure_optimizers(self):
        critic = torch.optim.Adam(self.critic.parameters(), lr=0.01)
        generator = torch.optim.Adam(self.generator.parameters(), lr=0.02)
        return [critic, generator], [{"scheduler": ExponentialLR(critic, 0.9), "interval": "step"}]


def test_alternating_mixin(tmp_path):
    ours = assert_same_as_monitor(tmp_path, GAN)
    assert sorted(set().union(*(m for _, m in ours))) == ["lr-Adam", "lr-Adam-1"]
