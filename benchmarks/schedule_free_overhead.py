"""The cost of `ScheduleFreeModes` against the same mode switches written by hand in the module.

A tiny MLP trains with `schedulefree.AdamWScheduleFree` on CPU, validating and saving a checkpoint after every epoch,
under three set-ups interleaved and repeated in one process (drift affects all alike; their order rotates from one
round to the next):

- "by hand": the module's own hooks call ``optimizer.eval()`` at ``on_validation_start`` (the epoch's checkpoint
  follows the validation, in eval mode) and ``on_train_end``, ``optimizer.train()`` at ``on_train_start`` and
  ``on_train_epoch_start``: what users paste into every module, right only for this one loop;
- "ScheduleFreeModes": the same module without those hooks, the callback on the Trainer;
- "OptimRecipeMixin": the same optimizer from a recipe, the mixin adding the callback (and running its checks).

Each run's step time is the median of its per-batch times (batch start to next batch start, training batches only)
on the main thread's CPU clock (`time.thread_time`, robust to other processes on a shared machine; ``--clock wall``
for wall time), and its fit time the CPU time of the whole ``fit`` (validation and checkpoints included). Ratios are
medians over the repeats, against "by hand". Goal: 1.00 per step (the callback has no per-batch hook) and at most
1.01 per fit.

    python benchmarks/schedule_free_overhead.py [--steps 400] [--epochs 4] [--repeats 7] [--clock cpu|wall]
"""

from __future__ import annotations

import argparse
import importlib
import logging
import statistics
import tempfile
import time
import warnings

import schedulefree
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_optim_recipes import OptimRecipeMixin, ScheduleFreeModes

warnings.filterwarnings("ignore")
for _logger in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric"):
    logging.getLogger(_logger).setLevel(logging.WARNING)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="training batches per epoch")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--clock", default="cpu", choices=["cpu", "wall"])
    parser.add_argument("--lightning", default="pytorch_lightning", choices=["pytorch_lightning", "lightning"])
    args = parser.parse_args()
    pl = importlib.import_module("lightning.pytorch" if args.lightning == "lightning" else "pytorch_lightning")
    torch.set_num_threads(1)
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter

    class Base(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1))

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.mse_loss(self.net(x), y)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", nn.functional.mse_loss(self.net(x), y))

    class MLP(Base):
        def configure_optimizers(self):
            return schedulefree.AdamWScheduleFree(self.parameters(), lr=1e-3, warmup_steps=50)

    class ByHand(MLP):
        """The hooks a user writes: every boundary, the checkpoint by switching before ModelCheckpoint saves."""

        def _mode(self, train: bool) -> None:
            optimizer = self.trainer.optimizers[0]
            optimizer.train() if train else optimizer.eval()

        def on_train_start(self):
            self._mode(True)

        def on_validation_start(self):
            self._mode(False)

        def on_train_epoch_start(self):
            self._mode(True)  # after the last epoch's validation and checkpoint (saved in eval mode)

        def on_train_end(self):
            self._mode(False)

    class Recipe(OptimRecipeMixin, Base):
        optim_recipe = {"optimizer": "AdamWScheduleFree", "lr": 1e-3, "no_decay": "none",
                        "optimizer_kwargs": {"warmup_steps": 50}}

    class StepTimer(pl.Callback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self.in_epoch: list[bool] = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            self.times.append(clock())
            self.in_epoch.append(batch_idx > 0)

        def step_time(self) -> float:
            return statistics.median(b - a for a, b, same in zip(self.times, self.times[1:], self.in_epoch[1:])
                                     if same)

    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(args.steps * 8, 16, generator=g), torch.randn(args.steps * 8, 1, generator=g))
    val = TensorDataset(torch.randn(64, 16, generator=g), torch.randn(64, 1, generator=g))
    setups = {  # name: (module, callbacks)
        "by hand": (ByHand, lambda: []),
        "ScheduleFreeModes": (MLP, lambda: [ScheduleFreeModes()]),
        "OptimRecipeMixin": (Recipe, lambda: []),
    }
    steps: dict[str, list[float]] = {name: [] for name in setups}
    fits: dict[str, list[float]] = {name: [] for name in setups}
    names = list(setups)
    for repeat in range(args.repeats + 1):  # the first round warms up and is dropped
        for name in names[repeat % 3:] + names[:repeat % 3]:  # each set-up takes each place in the round in turn
            module, callbacks = setups[name]
            timer = StepTimer()
            with tempfile.TemporaryDirectory() as root:
                trainer = pl.Trainer(
                    accelerator="cpu", devices=1, max_epochs=args.epochs, logger=False, default_root_dir=root,
                    callbacks=[timer, *callbacks(), pl.callbacks.ModelCheckpoint(dirpath=root, save_top_k=-1)],
                    enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                )
                model = module()
                start = clock()
                trainer.fit(model, DataLoader(data, batch_size=8), DataLoader(val, batch_size=64))
                elapsed = clock() - start
            assert trainer.optimizers[0].param_groups[0]["train_mode"] is False
            if repeat:
                steps[name].append(timer.step_time())
                fits[name].append(elapsed)
    print(f"Schedule-free mode switching: {args.epochs} epochs x {args.steps} steps, validation and a checkpoint"
          f" per epoch, {args.repeats} repeats ({args.clock} clock)")
    print(f"{'set-up':20} {'step (us)':>10} {'vs by hand':>11} {'fit (s)':>9} {'vs by hand':>11}")
    for name in setups:
        step, fit = statistics.median(steps[name]), statistics.median(fits[name])
        ratios = [s / b for s, b in zip(steps[name], steps["by hand"])]
        fit_ratios = [f / b for f, b in zip(fits[name], fits["by hand"])]
        print(f"{name:20} {step * 1e6:10.1f} {statistics.median(ratios):10.3f}x {fit:9.3f}"
              f" {statistics.median(fit_ratios):10.3f}x")


if __name__ == "__main__":
    main()
