"""Step-time overhead of `LearningRateLogger` + `SchedulerCadenceCheck`, and of Lightning's `LearningRateMonitor`.

A tiny MLP trains for a few thousand steps on CPU under six set-ups, interleaved and repeated in one process so that
drift affects all alike: no callback, two empty callbacks (Lightning's own cost of dispatching every hook to two
callbacks), our two callbacks, the module with `OptimRecipeMixin` and our two callbacks (the issue's "checks that
cost nothing": goal within 2% of the bare module), `LearningRateMonitor`, and our `LearningRateLogger` alone (a like-for-like comparison:
it logs the same metrics and keeps the same `lrs` and ``trainer.callback_metrics`` entries as `LearningRateMonitor`;
`--log-every 1` makes every step a logging call, the worst case for both). The time spent between two
marker callbacks placed around the callbacks under test gives their cost per step directly ("in hooks": the median
over steps of the time spent in them, minus the markers' own; it includes Lightning's dispatch of each hook to them,
compare it with "two empty Callbacks").
Each run's step time is the median of its per-batch times (batch start to next batch start), measured by default
with the main thread's CPU clock (`time.thread_time`, robust to other processes on a shared machine; `--clock wall`
for wall time); the ratios are medians over the repeats. Goal: ours / none <= 1.01 and ours / LearningRateMonitor
<= 1.

    python benchmarks/callbacks_overhead.py [--steps 1000] [--repeats 9] [--log-every 50] [--clock cpu|wall]
                                            [--lightning pytorch_lightning|lightning]
"""

from __future__ import annotations

import argparse
import importlib
import logging
import statistics
import time
import warnings

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_optim_recipes import LearningRateLogger, OptimRecipeMixin, SchedulerCadenceCheck

warnings.filterwarnings("ignore")

# Print only the results: Lightning's info lines ("GPU available: ...", the litlogger tip, "`Trainer.fit` stopped: ...")
# go through its rank-zero loggers, which sit under these names (`pytorch_lightning` or the `lightning` package).
for _logger in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric"):
    logging.getLogger(_logger).setLevel(logging.WARNING)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--clock", default="cpu", choices=["cpu", "wall"])
    parser.add_argument("--log-every", type=int, default=50, help="Trainer(log_every_n_steps=...)")
    parser.add_argument("--lightning", default="pytorch_lightning", choices=["pytorch_lightning", "lightning"])
    args = parser.parse_args()
    pl = importlib.import_module("lightning.pytorch" if args.lightning == "lightning" else "pytorch_lightning")
    torch.set_num_threads(1)

    class MLP(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1))

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.mse_loss(self.net(x), y)

        def configure_optimizers(self):
            opt = torch.optim.AdamW(self.parameters(), lr=1e-3)
            return [opt], [{"scheduler": torch.optim.lr_scheduler.ExponentialLR(opt, 0.9999), "interval": "step"},
                           torch.optim.lr_scheduler.StepLR(opt, 1, 0.9)]

    class RecipeMLP(OptimRecipeMixin, MLP):  # the same optimizers, validated by the mixin (and its fit checks)
        pass

    class NullLogger(pl.loggers.Logger):  # measures the callbacks, not a logger's I/O
        name, version = "null", 0

        def log_hyperparams(self, *args, **kwargs):
            pass

        def log_metrics(self, metrics, step=None):
            pass

    clock = time.thread_time if args.clock == "cpu" else time.perf_counter

    class StepTimer(pl.Callback):
        def __init__(self) -> None:
            self.times: list[float] = []

        def on_train_batch_start(self, *args) -> None:
            self.times.append(clock())

        def step_time(self) -> float:
            return statistics.median(b - a for a, b in zip(self.times, self.times[1:]))

    class HookMark(pl.Callback):
        """Placed before and after the callbacks under test: the time between the two marks is theirs."""

        def __init__(self, start: "HookMark | None" = None) -> None:
            self.start, self.mark, self.current, self.per_step = start, 0.0, 0.0, []

        def _hit(self) -> None:
            now = time.perf_counter()
            if self.start is None:
                self.mark = now
            else:
                self.current += now - self.start.mark

        def on_train_batch_start(self, *args) -> None:
            self._hit()

        def on_train_batch_end(self, *args) -> None:
            self._hit()
            if self.start is not None:
                self.per_step.append(self.current)
                self.current = 0.0

        def on_train_epoch_start(self, *args) -> None:
            self._hit()

        def on_train_epoch_end(self, *args) -> None:
            self._hit()

    g = torch.Generator().manual_seed(0)
    batches_per_epoch = 500
    data = TensorDataset(torch.randn(batches_per_epoch * 8, 16, generator=g), torch.randn(batches_per_epoch * 8, 1, generator=g))
    setups = {  # name: (module, callbacks)
        "none": (MLP, lambda: []),
        "two empty Callbacks": (MLP, lambda: [pl.Callback(), pl.Callback()]),
        "ours (logger + check)": (MLP, lambda: [LearningRateLogger(), SchedulerCadenceCheck(print_report=False)]),
        "mixin + logger + check": (RecipeMLP, lambda: [LearningRateLogger(),
                                                       SchedulerCadenceCheck(print_report=False)]),
        "LearningRateMonitor": (MLP, lambda: [pl.callbacks.LearningRateMonitor()]),
        "ours (logger only)": (MLP, lambda: [LearningRateLogger()]),
    }
    times: dict[str, list[float]] = {name: [] for name in setups}
    hooks: dict[str, list[float]] = {name: [] for name in setups}
    for repeat in range(args.repeats + 1):  # the first round warms up and is dropped
        for name, (module, callbacks) in setups.items():
            timer, before = StepTimer(), HookMark()
            after = HookMark(before)
            trainer = pl.Trainer(
                accelerator="cpu", devices=1, max_steps=args.steps, logger=NullLogger(),
                callbacks=[timer, before, *callbacks(), after],
                enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                log_every_n_steps=args.log_every,
            )
            trainer.fit(module(), DataLoader(data, batch_size=8))
            if repeat:
                times[name].append(timer.step_time())
                hooks[name].append(statistics.median(after.per_step))
    base = statistics.median(times["none"])
    monitor = statistics.median(times["LearningRateMonitor"])
    print(f"{args.lightning}, {args.steps} steps x {args.repeats} repeats, log_every_n_steps={args.log_every},"
          f" {args.clock} clock")
    print(f"{'set-up':24} {'median step (us)':>16} {'/ none':>8} {'/ LRMonitor':>12} {'in hooks (us/step)':>19}"
          f" {'1 + hooks/step':>15}")
    for name, values in times.items():
        step = statistics.median(values)
        ratios = sorted(v / b for v, b in zip(values, times["none"]))
        hook = statistics.median(hooks[name]) - statistics.median(hooks["none"])  # minus the marks' own cost
        print(f"{name:24} {step * 1e6:16.1f} {step / base:8.3f} {step / monitor:12.3f} {hook * 1e6:19.2f}"
              f" {1 + hook / base:15.4f}   (per-repeat step / none: {ratios[0]:.3f}..{ratios[-1]:.3f})")


if __name__ == "__main__":
    main()
