"""A small module to preview from the command line (no training, no data):

    python -m lightning_optim_recipes preview examples/preview_example.py:Classifier \
        --epochs 6 --steps-per-epoch 50 --init-args '{"lr": 0.003, "milestones": [4]}' --out lr.png

    python -m lightning_optim_recipes preview examples/preview_example.py:WARMUP_RECIPE --epochs 3 --steps-per-epoch 40
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn

from lightning_optim_recipes import multistep, param_groups

#: A declarative recipe: AdamW with weight decay, 20 warmup steps, then cosine to 1e-5 at the last step.
WARMUP_RECIPE = {
    "optimizer": "AdamW",
    "lr": 1e-3,
    "weight_decay": 0.05,
    "scheduler": {"type": "warmup_cosine", "warmup_steps": 20, "min_lr": 1e-5},
}


class Classifier(pl.LightningModule):
    """An encoder and a head with their own learning rates, weight decay where it belongs, and MultiStepLR."""

    def __init__(self, lr: float = 1e-3, milestones: tuple[int, ...] = (3,), gamma: float = 0.5) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.encoder = nn.Sequential(nn.Linear(8, 16), nn.LayerNorm(16), nn.ReLU())
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        groups = param_groups(self, weight_decay=0.01, overrides={"encoder": {"lr": self.hparams.lr / 10}})
        optimizer = torch.optim.AdamW(groups, lr=self.hparams.lr)
        scheduler = multistep(optimizer, milestones=list(self.hparams.milestones), gamma=self.hparams.gamma)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
