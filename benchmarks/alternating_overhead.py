"""Overhead of `AlternatingOptimizersMixin` against the same work written by hand under manual optimization.

Part 1: a small WGAN (n_critic = 5 on the run-wide cycle, a 'step' scheduler on the critic) trained with the mixin
and with a hand-written ``training_step`` (``toggle_optimizer``, ``zero_grad``, ``manual_backward``, ``step``,
scheduler), in interleaved repeats in one process; the time is the training loop only (``on_train_start`` to
``on_train_end``). Goal: ratio <= 1.02.

Part 2: restricting a backward pass to the active optimizer's parameters by toggling ``requires_grad`` (what the
mixin and Lightning's ``toggle_optimizer`` do) against ``loss.backward(inputs=active_params)``, in plain torch.

Times are CPU time of this process (``time.process_time``, one torch thread), steadier than wall time on a busy
machine. Run: ``python benchmarks/alternating_overhead.py [--repeats 7] [--batches 300]``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_optim_recipes.mixins.alternating import AlternatingOptimizersMixin

warnings.filterwarnings("ignore")

# Print only the results: Lightning's info lines ("GPU available: ...", the litlogger tip, "`Trainer.fit` stopped: ...")
# go through its rank-zero loggers, which sit under these names (`pytorch_lightning` or the `lightning` package).
for _logger in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric"):
    logging.getLogger(_logger).setLevel(logging.WARNING)

N_CRITIC = 5
WIDTH = 64


def _networks() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    generator = nn.Sequential(nn.Linear(2, WIDTH), nn.ReLU(), nn.Linear(WIDTH, WIDTH), nn.ReLU(), nn.Linear(WIDTH, 2))
    critic = nn.Sequential(nn.Linear(2, WIDTH), nn.ReLU(), nn.Linear(WIDTH, WIDTH), nn.ReLU(), nn.Linear(WIDTH, 1))
    return generator, critic


class _Base(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.generator, self.critic = _networks()

    def critic_step(self, batch, batch_idx):
        (real,) = batch
        fake = self.generator(torch.randn_like(real))
        return self.critic(fake).mean() - self.critic(real).mean()

    def generator_step(self, batch, batch_idx):
        (real,) = batch
        return -self.critic(self.generator(torch.randn_like(real))).mean()

    def configure_optimizers(self):
        critic = torch.optim.Adam(self.critic.parameters(), lr=1e-4)
        generator = torch.optim.Adam(self.generator.parameters(), lr=1e-4)
        scheduler = torch.optim.lr_scheduler.StepLR(critic, step_size=100, gamma=0.9)
        return [critic, generator], [{"scheduler": scheduler, "interval": "step"}]


class WithMixin(AlternatingOptimizersMixin, _Base):
    alternation = {"critic_step": N_CRITIC, "generator_step": 1}
    alternation_cycle = "run"


class ByHand(_Base):
    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.position = 0

    def training_step(self, batch, batch_idx):
        critic_opt, generator_opt = self.optimizers()
        critic_turn = self.position % (N_CRITIC + 1) < N_CRITIC
        self.position += 1
        optimizer = critic_opt if critic_turn else generator_opt
        self.toggle_optimizer(optimizer)
        loss = self.critic_step(batch, batch_idx) if critic_turn else self.generator_step(batch, batch_idx)
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        self.untoggle_optimizer(optimizer)
        if critic_turn:
            self.lr_schedulers().step()
        return {"loss": loss.detach()}


class _Timer(pl.Callback):
    def on_train_start(self, trainer, pl_module):
        self.start = time.process_time()

    def on_train_end(self, trainer, pl_module):
        self.seconds = time.process_time() - self.start


def _train_seconds(module_class: type, batches: int) -> float:
    data = DataLoader(TensorDataset(torch.randn(batches * 64, 2)), batch_size=64)
    timer = _Timer()
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[timer])
    trainer.fit(module_class(), data)
    return timer.seconds


def mixin_overhead(repeats: int, batches: int) -> None:
    _train_seconds(WithMixin, 20), _train_seconds(ByHand, 20)  # warm-up
    mixin, by_hand = [], []
    for repeat in range(repeats):
        order = (WithMixin, ByHand) if repeat % 2 == 0 else (ByHand, WithMixin)
        for module_class in order:
            (mixin if module_class is WithMixin else by_hand).append(_train_seconds(module_class, batches))
    ratios = [a / b for a, b in zip(mixin, by_hand)]
    per_batch = 1e6 / batches
    print(f"Part 1: WGAN n_critic={N_CRITIC}, {batches} batches, {repeats} interleaved repeats")
    print(f"  mixin   : median {statistics.median(mixin) * per_batch:8.1f} us/batch")
    print(f"  by hand : median {statistics.median(by_hand) * per_batch:8.1f} us/batch")
    print(f"  ratio mixin/by-hand: median of paired ratios {statistics.median(ratios):.3f} (min {min(ratios):.3f},"
          f" max {max(ratios):.3f}); ratio of the fastest runs {min(mixin) / min(by_hand):.3f}; goal <= 1.02")


def backward_restriction(repeats: int, steps: int) -> None:
    generator, critic = _networks()
    generator_params, critic_params = list(generator.parameters()), list(critic.parameters())
    real = torch.randn(64, 2)

    def loss_of(critic_turn: bool) -> torch.Tensor:
        fake = generator(torch.randn_like(real))
        if critic_turn:
            return critic(fake).mean() - critic(real).mean()
        return -critic(fake).mean()

    def toggling() -> None:
        for step in range(steps):
            critic_turn = step % (N_CRITIC + 1) < N_CRITIC
            active, frozen = (critic_params, generator_params) if critic_turn else (generator_params, critic_params)
            for p in frozen:
                p.requires_grad_(False)
            for p in active:
                p.grad = None
            loss_of(critic_turn).backward()
            for p in frozen:
                p.requires_grad_(True)

    def restricted() -> None:
        for step in range(steps):
            critic_turn = step % (N_CRITIC + 1) < N_CRITIC
            active = critic_params if critic_turn else generator_params
            for p in active:
                p.grad = None
            loss_of(critic_turn).backward(inputs=active)

    toggling(), restricted()  # warm-up
    times: dict[str, list[float]] = {"toggle requires_grad": [], "backward(inputs=...)": []}
    for repeat in range(repeats):
        for name, fn in sorted(times.items(), reverse=repeat % 2 == 1):
            start = time.process_time()
            {"toggle requires_grad": toggling, "backward(inputs=...)": restricted}[name]()
            times[name].append(time.process_time() - start)
    print(f"Part 2: forward + backward restricted to the active optimizer's parameters, {steps} steps x {repeats}")
    for name, values in times.items():
        print(f"  {name:22s}: median {statistics.median(values) / steps * 1e6:8.1f} us/step")
    ratio = statistics.median(times["backward(inputs=...)"]) / statistics.median(times["toggle requires_grad"])
    fastest = min(times["backward(inputs=...)"]) / min(times["toggle requires_grad"])
    print(f"  ratio inputs=/toggle: medians {ratio:.3f}, fastest runs {fastest:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batches", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)
    mixin_overhead(args.repeats, args.batches)
    backward_restriction(args.repeats, args.batches)


if __name__ == "__main__":
    main()
