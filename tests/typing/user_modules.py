"""Code as users write it, type-checked by `make test` (mypy): the documented patterns must pass a type checker.

Not collected by pytest (no test functions); mypy reads it.
"""

from collections.abc import Mapping

import pytorch_lightning as pl
import torch

from lightning_optim_recipes import (
    AlternatingOptimizersMixin,
    OptimRecipeMixin,
    get_recipe,
    param_groups,
    scheduled,
    warmup_cosine,
)


class FromCatalogue(OptimRecipeMixin, pl.LightningModule):
    optim_recipe = get_recipe("bert-finetune", lr=3e-5)


class FromDict(OptimRecipeMixin, pl.LightningModule):
    optim_recipe = {"optimizer": "AdamW", "lr": 1e-3, "weight_decay": 0.01}


class Gan(AlternatingOptimizersMixin, pl.LightningModule):
    optim_recipe = get_recipe("wgan-gp", optimizers={"critic": {"lr": 1e-3}, "generator": {"lr": 1e-3}})


class ByHand(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(4, 2)

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        opt = torch.optim.AdamW(param_groups(self, weight_decay=0.05, lr=1e-3), lr=1e-3)
        return {"optimizer": opt, "lr_scheduler": warmup_cosine(opt, warmup_steps=10, trainer=self.trainer)}


def multistep(opt: torch.optim.Optimizer) -> Mapping[str, object]:
    return scheduled(torch.optim.lr_scheduler.MultiStepLR(opt, [2]), interval="epoch")
