"""The ``strategy="ddp"`` scenarios of the multi-rank run (`spawned.py`): 2 CPU processes (gloo), each scenario a
function of the output folder and the rank that returns what its rank saw (JSON). Their tests:
`test_recipe_ddp.py`, `test_callbacks_ddp.py`, `test_alternating_ddp.py`. The FSDP2 scenarios compare with some of
these (`spawned_fsdp2.py`): the modules are shared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from helpers import TinyRegressor, loader, pl
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_optim_recipes import OptimRecipeMixin, warmup_stable_decay
from lightning_optim_recipes.callbacks.cadence_check import SchedulerCadenceCheck
from lightning_optim_recipes.callbacks.lr_logger import LearningRateLogger
from lightning_optim_recipes.mixins.alternating import AlternatingOptimizersMixin


def ddp() -> Any:
    """Lightning's DDP strategy with a process-group timeout that fails a hung scenario in minutes."""
    from spawned import TIMEOUT

    return pl.strategies.DDPStrategy(timeout=TIMEOUT)


def quiet(root: Path, **options: Any) -> Any:
    """A 2-rank CPU Trainer writing under `root`, without progress bar or summary; `options` override."""
    settings: dict[str, Any] = dict(accelerator="cpu", devices=2, strategy=ddp(), max_epochs=2, logger=False,
                                    enable_checkpointing=False, enable_progress_bar=False,
                                    enable_model_summary=False, default_root_dir=str(root))
    settings.update(options)
    return pl.Trainer(**settings)


def weights(model: nn.Module) -> list[list[float]]:
    """Every parameter, whole (a DTensor's shards gathered), flattened."""
    return [(p.full_tensor() if hasattr(p, "full_tensor") else p).detach().flatten().tolist()
            for p in model.parameters()]


# ------------------------------------------------------------------------------------- test_recipe_ddp.py


class RecipeRegressor(OptimRecipeMixin, TinyRegressor):
    optim_recipe = {
        "optimizer": "AdamW", "lr": 0.1, "weight_decay": 0.01, "overrides": {"decoder": {"lr": 0.05}},
        "scheduler": {"type": "warmup_cosine", "warmup_steps": 3, "min_lr": 0.001},
    }


def recipe_units(root: Path, rank: int) -> dict[str, Any]:
    model = RecipeRegressor()
    trainer = quiet(root)
    trainer.fit(model, loader(8))  # 8 batches of 4, split by the DistributedSampler: 4 batches per rank and epoch
    groups = trainer.optimizers[0].param_groups
    # lengths in units, resolved against this rank's share of the run
    units = warmup_stable_decay(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1), warmup="1ep",
                                decay="25%", decay_start="6ba", trainer=trainer)["scheduler"].lengths
    return {"namespace": pl.__name__, "world_size": trainer.world_size,
            "backend": trainer.strategy._process_group_backend,
            "total_steps": trainer.lr_scheduler_configs[0].scheduler.total_steps,
            "names": [g["name"] for g in groups], "lr_log": model.lr_log, "units": units}


# ---------------------------------------------------------------------------------- test_callbacks_ddp.py


class Recipe(OptimRecipeMixin, TinyRegressor):
    optim_recipe = {"optimizer": "SGD", "lr": 0.1, "weight_decay": 0.01, "overrides": {"decoder": {"lr": 0.4}},
                    "scheduler": {"type": "exponential", "gamma": 0.5, "interval": "step"}}

    def __init__(self) -> None:
        torch.manual_seed(0)  # the same weights in every run: the FSDP2 run compares with this one
        super().__init__()

    def on_before_optimizer_step(self, optimizer):
        self.seen = getattr(self, "seen", [])
        self.seen.append([self.global_step, [g["lr"] for g in optimizer.param_groups]])


class Gan(AlternatingOptimizersMixin, pl.LightningModule):
    alternation_cycle = "run"

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.critic, self.generator = nn.Linear(4, 1), nn.Linear(4, 4)
        self.seen = []

    def training_step(self, batch, batch_idx, optimizer_idx):
        x, _ = batch
        if optimizer_idx == 0:
            return self.critic(self.generator(x.flip(1))).mean() - self.critic(x).mean()
        return -self.critic(self.generator(x.flip(1))).mean()

    def on_before_optimizer_step(self, optimizer):
        which = "C" if optimizer.param_groups[0]["params"][0] is self.critic.weight else "G"
        lrs = [[g["lr"] for g in o.param_groups] for o in self.trainer.optimizers]
        self.seen.append([self.global_step, self.trainer.fit_loop.epoch_loop.batch_idx, which, lrs])

    def configure_optimizers(self):
        critic = torch.optim.SGD(self.critic.parameters(), lr=0.1)
        generator = torch.optim.SGD(self.generator.parameters(), lr=0.2)
        return ({"optimizer": critic, "frequency": 2,
                 "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.ExponentialLR(critic, 0.5),
                                  "interval": "step"}},
                {"optimizer": generator, "frequency": 1})


class Hybrid(OptimRecipeMixin, TinyRegressor):  # Muon for encoder.0.weight, AdamW for the rest
    optim_recipe = {"optimizer": "Muon", "lr": 0.02, "weight_decay": 0.01,
                    "hybrid": {"optimizer": "AdamW", "lr": 0.001, "weight_decay": 0.01},
                    "scheduler": {"type": "exponential", "gamma": 0.5, "interval": "step"}}

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        for p in self.parameters():
            torch.nn.init.normal_(p, std=0.5)

    def on_before_optimizer_step(self, optimizer):
        self.seen = getattr(self, "seen", [])
        self.seen.append([self.global_step, [g["lr"] for g in optimizer.param_groups]])


def fit_with_callbacks(root: Path, rank: int, name: str, model: Any, strategy: Any = None) -> dict[str, Any]:
    """`model` on 8 batches of 4 (4 per rank and epoch) for 2 epochs with `LearningRateLogger` and
    `SchedulerCadenceCheck`; each rank's CSVLogger in its own directory, so that a write by rank 1 would show."""
    check = SchedulerCadenceCheck(print_report=False)
    logger = pl.loggers.CSVLogger(f"{root}/logs-{name}/rank{rank}", name="run")
    trainer = quiet(root, strategy=strategy or ddp(), logger=logger, log_every_n_steps=1,
                    callbacks=[LearningRateLogger(), check])
    trainer.fit(model, loader(8))
    return {"world_size": trainer.world_size, "backend": trainer.strategy._process_group_backend,
            "global_rank": trainer.global_rank, "seen": model.seen, "report": check.report.rows(),
            "counts": list(getattr(model, "optimizer_step_counts", [])), "weights": weights(model),
            "optimizers": [type(o).__name__ for o in trainer.optimizers],
            "parts": [type(p).__name__ for o in trainer.optimizers for p in getattr(o, "parts", ())]}


def callbacks_recipe(root: Path, rank: int) -> dict[str, Any]:
    return fit_with_callbacks(root, rank, "recipe", Recipe())


def callbacks_gan(root: Path, rank: int) -> dict[str, Any]:
    return fit_with_callbacks(root, rank, "gan", Gan())


def callbacks_hybrid(root: Path, rank: int) -> dict[str, Any]:
    return fit_with_callbacks(root, rank, "hybrid", Hybrid())


class ScheduleFree(OptimRecipeMixin, TinyRegressor):  # the mixin adds ScheduleFreeModes
    optim_recipe = {"optimizer": "AdamWScheduleFree", "lr": 0.05, "optimizer_kwargs": {"warmup_steps": 3}}

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y), sync_dist=True)

    def on_before_optimizer_step(self, optimizer):
        self.seen = getattr(self, "seen", [])
        self.seen.append([optimizer.param_groups[0]["train_mode"], optimizer.param_groups[0]["k"]])


def schedulefree(root: Path, rank: int) -> dict[str, Any]:
    torch.manual_seed(0)
    model = ScheduleFree()
    checkpoints = pl.callbacks.ModelCheckpoint(dirpath=f"{root}/ckpt-schedulefree", save_top_k=-1)
    trainer = quiet(root, callbacks=[checkpoints], enable_checkpointing=True, num_sanity_val_steps=0)
    trainer.fit(model, loader(8), loader(2))
    return {"seen": model.seen, "train_mode": trainer.optimizers[0].param_groups[0]["train_mode"],
            "weights": {n: p.tolist() for n, p in model.named_parameters()},
            "callbacks": [type(c).__name__ for c in trainer.callbacks]}


# -------------------------------------------------------------------------------- test_alternating_ddp.py


class DdpGan(AlternatingOptimizersMixin, pl.LightningModule):
    alternation = {"critic_step": 3, "generator_step": 1}
    alternation_cycle = "run"
    accumulate_grad_batches = (2, 1)

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.generator = nn.Linear(2, 2)
        self.critic = nn.Linear(2, 1)
        self.events: list[list] = []

    def critic_step(self, batch, batch_idx):
        (real,) = batch
        return self.critic(self.generator(real.flip(1))).mean() - self.critic(real).mean()

    def generator_step(self, batch, batch_idx):
        (real,) = batch
        return -self.critic(self.generator(real.flip(1))).mean()

    def on_before_optimizer_step(self, optimizer):
        name = "C" if optimizer.param_groups[0]["params"][0] is self.critic.weight else "G"
        lr = optimizer.param_groups[0]["lr"]
        self.events.append([self.current_epoch, self.trainer.fit_loop.epoch_loop.batch_idx, name, lr])

    def configure_optimizers(self):
        critic = torch.optim.SGD(self.critic.parameters(), lr=0.1)
        generator = torch.optim.SGD(self.generator.parameters(), lr=0.1)
        step = torch.optim.lr_scheduler.StepLR(critic, step_size=1, gamma=0.5)
        return [critic, generator], [{"scheduler": step, "interval": "step", "frequency": 4}]


def alternating_data(rank: int, devices: int) -> DataLoader:
    """26 batches of 4 samples in all: rank r gets samples r, r + 2, ..., so its batch k is half of batch k."""
    samples = torch.randn(13 * 4, 2, generator=torch.Generator().manual_seed(0))
    return DataLoader(TensorDataset(samples[rank::devices]), batch_size=4 // devices)


def train_alternating(root: Path, rank: int, devices: int = 2) -> dict[str, Any]:
    """`DdpGan` for 2 epochs: with 2 ranks (DDP), or in one process on the whole batches (`devices=1`)."""
    model = DdpGan()
    trainer = quiet(root, devices=devices, strategy=ddp() if devices > 1 else "auto", use_distributed_sampler=False)
    trainer.fit(model, alternating_data(rank, devices))
    return {"events": model.events, "counts": list(model.optimizer_step_counts), "global_step": trainer.global_step,
            "params": [p.detach().flatten().tolist() for p in model.parameters()]}


def alternating(root: Path, rank: int) -> dict[str, Any]:
    return train_alternating(root, rank)


SCENARIOS = {
    "recipe_units": recipe_units,
    "callbacks_recipe": callbacks_recipe,
    "callbacks_gan": callbacks_gan,
    "callbacks_hybrid": callbacks_hybrid,
    "schedulefree": schedulefree,
    "alternating": alternating,
}
