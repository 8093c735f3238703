"""Train with LightningCLI, taking the optimizer recipe from a YAML config or the command line.

The only glue a module needs: accept ``optim_recipe`` in ``__init__`` and call ``self.save_hyperparameters()``;
`OptimRecipeMixin` reads ``hparams['optim_recipe']`` and builds ``configure_optimizers`` from it.

Run it::

    python examples/train_cli.py fit --config examples/recipe.yaml
    python examples/train_cli.py fit --config examples/recipe.yaml --model.optim_recipe.lr 0.01
    python examples/train_cli.py fit --model.optim_recipe '{optimizer: SGD, lr: 0.1}' --trainer.max_epochs 2
    python examples/train_cli.py fit --optimizer SGD --optimizer.lr 0.1 --lr_scheduler StepLR \
        --lr_scheduler.step_size 1   # the CLI's own options still work; they replace the recipe
"""

from __future__ import annotations

from typing import Any, Optional

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LightningCLI
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_optim_recipes import OptimRecipeMixin


class RecipeRegressor(OptimRecipeMixin, pl.LightningModule):
    """An MLP with a LayerNorm whose optimizers come from ``optim_recipe`` (a dict, e.g. from YAML)."""

    def __init__(self, hidden: int = 8, optim_recipe: Optional[dict[str, Any]] = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.encoder = nn.Sequential(nn.Linear(4, hidden), nn.LayerNorm(hidden))
        self.decoder = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.relu(self.encoder(x)))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(self(x), y)


class RandomRegressionData(pl.LightningDataModule):
    """`batches` batches of random (x, y) regression data."""

    def __init__(self, batches: int = 4, batch_size: int = 4, seed: int = 0) -> None:
        super().__init__()
        self.batches, self.batch_size, self.seed = batches, batch_size, seed

    def train_dataloader(self) -> DataLoader:
        g = torch.Generator().manual_seed(self.seed)
        n = self.batches * self.batch_size
        data = TensorDataset(torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g))
        return DataLoader(data, batch_size=self.batch_size)


def main(args: Optional[list[str]] = None) -> LightningCLI:
    """Run the CLI (`args` as on the command line; None reads ``sys.argv``). The resolved config is saved in the run's
    directory (``trainer.default_root_dir`` in the YAML) and overwritten by the next run, so runs can follow each
    other."""
    return LightningCLI(RecipeRegressor, RandomRegressionData, args=args, save_config_kwargs={"overwrite": True})


if __name__ == "__main__":
    main()
