"""Tiny modules and random data for examples and tests, as Lightning's ``demos.boring_classes``: the README's and the
docs' snippets subclass them and only write ``configure_optimizers`` (or a recipe). `TinyGPT` is a 2-block GPT with
nanoGPT's parameter names (an ``nn.Module``, its ``lm_head`` tied to the token embedding), for Muon's examples.

Example:
    >>> import pytorch_lightning as pl
    >>> import torch
    >>> class Model(TinyModel):
    ...     def configure_optimizers(self):
    ...         return torch.optim.SGD(self.parameters(), lr=0.1)
    >>> trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
    ...                      enable_model_summary=False)
    >>> trainer.fit(Model(), random_data(batches=4))
    >>> trainer.global_step
    4
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_optim_recipes._lightning import lightning_module_base
from lightning_optim_recipes.catalogue._examples import TinyGPT

__all__ = ["TinyGAN", "TinyGPT", "TinyModel", "random_data"]

FEATURES = 8


def random_data(batches: int = 8, batch_size: int = 8, features: int = FEATURES, seed: int = 0) -> DataLoader:
    """`batches` batches of random ``(x, y)`` regression pairs (``y`` has one feature)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batches * batch_size, features, generator=g)
    y = torch.randn(batches * batch_size, 1, generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


class TinyModel(lightning_module_base()):  # type: ignore[misc]
    """An encoder (Linear + LayerNorm) and a decoder (Linear) regressing ``y`` from ``x``; define
    ``configure_optimizers`` (or use a recipe) in a subclass."""

    def __init__(self, features: int = FEATURES, hidden: int = 16) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(features, hidden), nn.LayerNorm(hidden))
        self.decoder = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.relu(self.encoder(x)))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss


class TinyGAN(lightning_module_base()):  # type: ignore[misc]
    """A critic and a generator with a WGAN loss each (``critic_step``, ``generator_step``): add
    `AlternatingOptimizersMixin` and the optimizers (``configure_optimizers`` or a recipe) in a subclass."""

    def __init__(self, features: int = FEATURES, noise: int = 4) -> None:
        super().__init__()
        self.noise = noise
        self.generator = nn.Sequential(nn.Linear(noise, 16), nn.ReLU(), nn.Linear(16, features))
        self.critic = nn.Sequential(nn.Linear(features, 16), nn.ReLU(), nn.Linear(16, 1))

    def _fake(self, real: torch.Tensor) -> torch.Tensor:
        return self.generator(torch.randn(real.shape[0], self.noise, device=real.device))

    def critic_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        real = batch[0]
        return self.critic(self._fake(real).detach()).mean() - self.critic(real).mean()

    def generator_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return -self.critic(self._fake(batch[0])).mean()
