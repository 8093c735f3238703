"""Code as users write it, type-checked by `make test` (mypy): the documented patterns must pass a type checker.

Not collected by pytest (no test functions); mypy reads it.
"""

from collections.abc import Mapping

import pytorch_lightning as pl
import torch

from lightning_optim_recipes import (
    AlternatingOptimizersMixin,
    OptimRecipeMixin,
    cooldown,
    cosine,
    get_recipe,
    multistep as multistep_factory,
    param_groups,
    scheduled,
    warmup_cosine,
    warmup_stable_decay,
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


class WarmupStableDecay(pl.LightningModule):
    """Lengths in units and plain ints, where a length is given."""

    extend_schedule = "hold"

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        opt = torch.optim.AdamW(self.parameters(), lr=1e-3)
        return {"optimizer": opt, "lr_scheduler": warmup_stable_decay(
            opt, warmup="1ep", decay="20%", decay_shape="1-sqrt", min_lr=1e-5, trainer=self.trainer)}


def lengths_in_units(opt: torch.optim.Optimizer, trainer: pl.Trainer) -> list[Mapping[str, object]]:
    return [cooldown(opt, steps="2000ba", trainer=trainer), cosine(opt, t_max="10ep", trainer=trainer),
            multistep_factory(opt, milestones=["30ep", 8000], interval="step", trainer=trainer),
            warmup_cosine(opt, warmup_steps="5%", total_steps=10_000),
            warmup_stable_decay(opt, warmup=300, decay="500st", decay_start="now")]


class Cooldown(OptimRecipeMixin, pl.LightningModule):
    optim_recipe = get_recipe("wsd", scheduler={"decay_start": "now", "decay": "2000st"})
    resume = "recipe"
