"""The main job (`make demo`): two short, real CPU trainings that exercise the recipes and show what they did.

1. A small classifier (torchmetrics accuracy) trained with `param_groups` + weight decay + MultiStepLR.
2. A WGAN-GP with n_critic=5 on a 2-D Gaussian mixture, alternating critic and generator on Lightning 2.x.

Both run with `LearningRateLogger` and `SchedulerCadenceCheck`. Outputs go to `demo_out/`: the lr plots, the GAN's
samples against the real mixture, the logged metrics as CSV, and the cadence tables.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassAccuracy

from lightning_optim_recipes import (
    AlternatingOptimizersMixin,
    LearningRateLogger,
    SchedulerCadenceCheck,
    multistep,
    param_groups,
    plot_schedule,
    preview_schedule,
)

OUT = Path("demo_out")
GAN_EPOCHS = 80
warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*GPU available but not used.*")


# ------------------------------------------------------------------------------------------------ 1. classifier


class Classifier(pl.LightningModule):
    """An MLP with LayerNorm on 4 Gaussian blobs; AdamW with decay only on weights, lr halved at epochs 4 and 7."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 64), nn.LayerNorm(64), nn.GELU(), nn.Linear(64, classes))
        self.accuracy = MulticlassAccuracy(num_classes=classes)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)
        loss = nn.functional.cross_entropy(logits, y)
        self.accuracy(logits, y)
        self.log_dict({"train_loss": loss, "train_acc": self.accuracy}, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(param_groups(self, weight_decay=0.01), lr=3e-3)
        return {"optimizer": optimizer, "lr_scheduler": multistep(optimizer, milestones=[4, 7], gamma=0.5)}


def blobs(n: int = 2048, classes: int = 4, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    angle = y.float() * 2 * math.pi / classes
    centers = torch.stack([angle.cos(), angle.sin()], dim=1) * 2.0
    return TensorDataset(centers + 0.6 * torch.randn(n, 2, generator=g), y)


# ---------------------------------------------------------------------------------------------------- 2. WGAN-GP


def gaussian_mixture(n: int = 4096, modes: int = 8, radius: float = 2.0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    k = torch.randint(0, modes, (n,), generator=g).float() * 2 * math.pi / modes
    return torch.stack([k.cos(), k.sin()], dim=1) * radius + 0.05 * torch.randn(n, 2, generator=g)


class WGANGP(AlternatingOptimizersMixin, pl.LightningModule):
    """WGAN-GP (Gulrajani et al. 2017, Algorithm 1): n_critic=5 critic steps per generator step, run-wide."""

    alternation_cycle = "run"

    def __init__(self, latent: int = 8, n_critic: int = 5, gp_weight: float = 0.1) -> None:
        super().__init__()
        self.latent, self.n_critic, self.gp_weight = latent, n_critic, gp_weight
        self.generator = nn.Sequential(nn.Linear(latent, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
        self.critic = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))

    def sample(self, n: int) -> torch.Tensor:
        return self.generator(torch.randn(n, self.latent, device=self.device))

    def training_step(self, batch, batch_idx, optimizer_idx):
        (real,) = batch
        if optimizer_idx == 0:  # critic
            fake = self.sample(len(real)).detach()
            eps = torch.rand(len(real), 1, device=self.device)
            mix = (eps * real + (1 - eps) * fake).requires_grad_(True)
            (grad,) = torch.autograd.grad(self.critic(mix).sum(), mix, create_graph=True)
            penalty = ((grad.norm(dim=1) - 1) ** 2).mean()
            loss = self.critic(fake).mean() - self.critic(real).mean() + self.gp_weight * penalty
            self.log("critic_loss", loss, prog_bar=True)
        else:  # generator
            loss = -self.critic(self.sample(len(real))).mean()
            self.log("generator_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        critic = torch.optim.Adam(self.critic.parameters(), lr=1e-3, betas=(0.5, 0.9))
        generator = torch.optim.Adam(self.generator.parameters(), lr=1e-3, betas=(0.5, 0.9))
        return (
            {"optimizer": critic, "frequency": self.n_critic},
            {"optimizer": generator, "frequency": 1, "lr_scheduler": {
                "scheduler": torch.optim.lr_scheduler.ExponentialLR(generator, 0.998), "interval": "step"}},
        )


# -------------------------------------------------------------------------------------------------------- main


def train(name: str, model: pl.LightningModule, data: DataLoader, epochs: int) -> SchedulerCadenceCheck:
    cadence = SchedulerCadenceCheck()
    logger = pl.loggers.CSVLogger(OUT, name=name, version="")
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=epochs,
        logger=logger,
        callbacks=[LearningRateLogger(), cadence],
        enable_checkpointing=False,
        enable_model_summary=False,
        log_every_n_steps=5,
    )
    print(f"\n=== {name}: {epochs} epochs of {len(data)} batches")
    started = time.perf_counter()
    trainer.fit(model, data)
    print(f"{name} trained in {time.perf_counter() - started:.1f} s; metrics: {Path(logger.log_dir) / 'metrics.csv'}")
    return cadence


def main() -> int:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)  # tiny models: one thread beats two

    classifier = Classifier()
    plot_schedule(preview_schedule(Classifier(), max_epochs=10, steps_per_epoch=32), path=OUT / "classifier_lr.png")
    train("classifier", classifier, DataLoader(blobs(), batch_size=64, shuffle=True), epochs=10)

    gan = WGANGP()
    real = gaussian_mixture()
    plot_schedule(preview_schedule(WGANGP(), max_epochs=GAN_EPOCHS, steps_per_epoch=32), path=OUT / "gan_lr.png")
    train("wgan_gp", gan, DataLoader(TensorDataset(real), batch_size=128, shuffle=True), epochs=GAN_EPOCHS)
    save_samples(gan, real, OUT / "gan_samples.png")

    print(f"\nWrote {', '.join(sorted(str(p) for p in OUT.rglob('*.png')))}")
    return 0


def save_samples(gan: WGANGP, real: torch.Tensor, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with torch.no_grad():
        fake = gan.sample(1024).cpu()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(real[:1024, 0], real[:1024, 1], s=4, alpha=0.5, label="real mixture")
    ax.scatter(fake[:, 0], fake[:, 1], s=4, alpha=0.5, label="generated")
    ax.set_title("WGAN-GP, n_critic=5")
    ax.legend(loc="upper right")
    ax.set_aspect("equal")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
