"""Resuming an `AlternatingOptimizersMixin` run from a checkpoint continues exactly where it was: the run-wide cycle,
the per-optimizer step counts, open accumulation windows (their gradients), schedulers and optimizer states."""

from __future__ import annotations

import pytest
import torch
from helpers import pl, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_optim_recipes.mixins.alternating import AlternatingOptimizersMixin

pytestmark = pytest.mark.trainer

BATCHES = 13


def _lambda(k: int) -> float:
    return 1.0 / (k + 1)


class Resumable(AlternatingOptimizersMixin, pl.LightningModule):
    """n_critic = 3 on the run-wide cycle, the critic accumulating 2 of its batches; SGD with momentum; a 'step'
    scheduler (every 2nd critic step) and an 'epoch' one. The loss depends on (epoch, batch_idx) only, so a resumed
    run sees the same numbers although the plain DataLoader restarts from its first batch."""

    alternation = {"dis_step": 3, "gen_step": 1}
    alternation_cycle = "run"
    accumulate_grad_batches = (2, 1)

    def __init__(self) -> None:
        super().__init__()
        self.d = nn.Parameter(torch.zeros(1))
        self.g = nn.Parameter(torch.zeros(1))
        self.events: list[tuple] = []

    def _loss(self, batch_idx: int) -> torch.Tensor:
        x = 1.0 + batch_idx + BATCHES * self.current_epoch
        return ((self.d + 2 * self.g) * x + self.d * self.g).sum()

    def dis_step(self, batch, batch_idx):
        return self._loss(batch_idx)

    def gen_step(self, batch, batch_idx):
        return self._loss(batch_idx)

    def on_before_optimizer_step(self, optimizer):
        param = optimizer.param_groups[0]["params"][0]
        name = "D" if param is self.d else "G"
        batch_idx = self.trainer.fit_loop.epoch_loop.batch_idx
        lr = optimizer.param_groups[0]["lr"]
        self.events.append((self.current_epoch, batch_idx, name, lr, float(param.grad), self.trainer.global_step))

    def on_save_checkpoint(self, checkpoint):  # overridden without calling super()
        checkpoint["my_key"] = "mine"

    def configure_optimizers(self):
        d = torch.optim.SGD([self.d], lr=0.01, momentum=0.9)
        g = torch.optim.SGD([self.g], lr=0.01, momentum=0.9)
        d_step = torch.optim.lr_scheduler.LambdaLR(d, _lambda)
        g_epoch = torch.optim.lr_scheduler.LambdaLR(g, _lambda)
        return [d, g], [{"scheduler": d_step, "interval": "step", "frequency": 2}, g_epoch]


class SaveAt(pl.Callback):
    """Save checkpoints at the end of given batches and epochs, as ModelCheckpoint would."""

    def __init__(self, directory, batches=(), epochs=()) -> None:
        self.directory, self.batches, self.epochs = directory, set(batches), set(epochs)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if (trainer.current_epoch, batch_idx) in self.batches:
            trainer.save_checkpoint(self.directory / f"batch-{trainer.current_epoch}-{batch_idx}.ckpt")

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch in self.epochs:
            trainer.save_checkpoint(self.directory / f"epoch-{trainer.current_epoch}.ckpt")


def _data() -> DataLoader:
    return DataLoader(TensorDataset(torch.zeros(BATCHES, 1)), batch_size=1)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("full")
    model = Resumable()
    save = SaveAt(directory, batches=[(1, 3), (0, BATCHES - 1)], epochs=[1])
    fit = trainer(directory, max_epochs=3, callbacks=[save])
    fit.fit(model, _data())
    return directory, model, fit


def test_checkpoint_holds_the_alternation_state(full_run):
    directory, _, _ = full_run
    checkpoint = torch.load(directory / "batch-1-3.ckpt", weights_only=False)
    assert checkpoint["my_key"] == "mine"  # the module's own on_save_checkpoint ran, without super()
    state = checkpoint["callbacks"]["AlternatingOptimizersMixin"]
    # run-wide positions 0..16 trained: critic active at p % 4 in {0, 1, 2} -> 13 batches = 6 steps + 1 open window
    assert state["position"] == 17 and state["counts"] == [6, 4] and state["windows"] == [1, 0]
    assert set(state["grads"]) == {0} and state["grads"][0][0].shape == (1,)


@pytest.mark.parametrize(
    ("checkpoint", "first"),
    [("batch-1-3.ckpt", (1, 4)), ("batch-0-12.ckpt", (1, 0)), ("epoch-1.ckpt", (2, 0))],  # first batch after it
    ids=["mid-epoch-open-window", "last-batch-end", "epoch-end"],
)
def test_resume_continues_exactly(tmp_path, full_run, checkpoint, first):
    directory, uninterrupted, full = full_run
    model = Resumable()
    fit = trainer(tmp_path, max_epochs=3)
    fit.fit(model, _data(), ckpt_path=str(directory / checkpoint))
    expected = [e for e in uninterrupted.events if (e[0], e[1]) >= first]
    assert 0 < len(model.events) < len(uninterrupted.events)
    assert model.events == expected  # same optimizer, lr, gradient and global_step at every step after resuming
    assert model.optimizer_step_counts == uninterrupted.optimizer_step_counts
    assert fit.global_step == full.global_step
    assert (model.d.item(), model.g.item()) == (uninterrupted.d.item(), uninterrupted.g.item())
    assert [s.last_epoch for s in model.lr_schedulers()] == [s.last_epoch for s in uninterrupted.lr_schedulers()]


def test_a_new_fit_starts_afresh(tmp_path):
    model = Resumable()
    trainer(tmp_path, max_epochs=1).fit(model, _data())
    first = model.optimizer_step_counts
    model.events.clear()
    trainer(tmp_path, max_epochs=1).fit(model, _data())
    assert model.optimizer_step_counts == first == (5, 3)  # 10 critic batches in windows of 2; 3 generator
