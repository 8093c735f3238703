"""What a recipe can say beyond one optimizer and a scheduler: several optimizers bound to submodules with their
alternation, lr scaled by the global batch, warm-ups in epochs or fractions, clipping, values for the user's loss,
Lightning's lr finder, and dotted paths that must name what their key expects."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch
from helpers import TinyRegressor, loader, pl, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_optim_recipes import (
    AlternatingOptimizersMixin,
    OptimRecipeMixin,
    RecipeError,
    configure_from_recipe,
    get_recipe,
    preview_schedule,
)

pytestmark = pytest.mark.trainer


class WGAN(AlternatingOptimizersMixin, pl.LightningModule):
    """Optimizers from the `wgan-gp` recipe: `critic_step` and `generator_step` bound by name to `self.critic` and
    `self.generator`; the penalty weight read from the recipe's values."""

    optim_recipe = get_recipe("wgan-gp")

    def __init__(self) -> None:
        super().__init__()
        self.generator, self.critic = nn.Linear(2, 2), nn.Linear(2, 1)  # generator registered first, on purpose
        self.turns: list[str] = []

    def critic_step(self, batch, batch_idx):
        (real,) = batch
        self.turns.append("C")
        fake = self.generator(torch.randn_like(real)).detach()
        return self.critic(fake).mean() - self.critic(real).mean() + 0.0 * self.recipe_values["gradient_penalty"]

    def generator_step(self, batch, batch_idx):
        (real,) = batch
        self.turns.append("G")
        return -self.critic(self.generator(torch.randn_like(real))).mean()


def test_a_gan_recipe_binds_each_optimizer_to_its_step_and_submodule(tmp_path):
    model = WGAN()
    fit = trainer(tmp_path, max_epochs=2)
    fit.fit(model, DataLoader(TensorDataset(torch.randn(7 * 4, 2)), batch_size=4))  # 7 batches: 14 over the run
    assert model.turns == list("CCCCCGCCCCCGCC")  # 5:1, the cycle running on across the epoch (alternation_cycle)
    critic, generator = fit.optimizers
    assert {id(p) for g in critic.param_groups for p in g["params"]} == {id(p) for p in model.critic.parameters()}
    assert [(o.defaults["lr"], o.defaults["betas"]) for o in (critic, generator)] == [(1e-4, (0.0, 0.9))] * 2
    assert model.optimizer_roles == ("critic", "generator") and model.optimizer_step_counts == (12, 2)
    assert model.recipe_values == {"gradient_penalty": 10.0}


def test_a_gan_recipe_needs_the_step_methods_it_names(tmp_path):
    class NoSteps(AlternatingOptimizersMixin, pl.LightningModule):
        optim_recipe = get_recipe("wgan-gp")

        def __init__(self) -> None:
            super().__init__()
            self.generator, self.critic = nn.Linear(2, 2), nn.Linear(2, 1)

        def critic_step(self, batch, batch_idx):
            return self.critic(batch[0]).mean()

    with pytest.raises(RecipeError, match=r"^NoSteps's recipe has the optimizers 'critic', 'generator', but it has no"
                       r" `generator_step`: define `def generator_step\(self, batch, batch_idx\)`"):
        trainer(tmp_path, max_epochs=1).fit(NoSteps(), DataLoader(TensorDataset(torch.randn(4, 2)), batch_size=2))


def test_a_gan_recipe_previews_its_alternation():
    model = WGAN()
    preview = preview_schedule(get_recipe("wgan-gp"), module=model, max_epochs=1, steps_per_epoch=6)
    # each optimizer's groups carry its role, so its lrs are logged by role
    assert [(r["step"], r["optimizer"], r["name"], r["role"]) for r in preview if r["group"].endswith("/decay")] == [
        (0, 0, "lr-Adam/critic/decay", "critic"), (1, 0, "lr-Adam/critic/decay", "critic"),
        (2, 0, "lr-Adam/critic/decay", "critic"), (3, 0, "lr-Adam/critic/decay", "critic"),
        (4, 0, "lr-Adam/critic/decay", "critic"), (5, 1, "lr-Adam-1/generator/decay", "generator"),
    ]


# ---------------------------------------------------------------------------------------- lr and the batch


class Scaled(OptimRecipeMixin, TinyRegressor):
    optim_recipe = {"optimizer": "SGD", "lr": 0.1, "lr_scaling": {"base_batch_size": 256},
                    "overrides": {"decoder": {"lr": 0.01}}}


def test_lr_scaled_by_the_global_batch_from_the_trainer(tmp_path, caplog):
    model = Scaled()
    with caplog.at_level(logging.INFO, logger="lightning_optim_recipes"):
        trainer(tmp_path, max_epochs=1, accumulate_grad_batches=2).fit(model, loader(4, batch_size=32))
    # global batch 32 x 1 device x 2 accumulated = 64: lr 0.1 x 64 / 256, the decoder's own lr by the same ratio
    # (groups: decay, no_decay, decoder, decoder/no_decay)
    assert [lrs for _, _, lrs in model.lr_log][0] == (0.025, 0.025, 0.0025, 0.0025)
    assert "the recipe: lr = 0.1 x 64 / 256 = 0.025 (global batch 64, 32 per device x 1 device x 2 accumulated)" \
        in caplog.text


def test_lr_scaled_by_a_given_batch_size():
    config = configure_from_recipe(nn.Linear(2, 2), {"lr": 0.1, "lr_scaling": {"base_batch_size": 256},
                                                     "batch_size": 1024})
    assert config["optimizer"].defaults["lr"] == pytest.approx(0.4)


class WarmupInEpochs(OptimRecipeMixin, TinyRegressor):
    optim_recipe = {"optimizer": "SGD", "lr": 1.0,
                    "scheduler": {"type": "warmup_linear", "warmup_epochs": 1}}


def test_a_warmup_in_epochs_reads_the_epoch_length_from_the_trainer(tmp_path):
    model = WarmupInEpochs()
    trainer(tmp_path, max_epochs=3, accumulate_grad_batches=2).fit(model, loader(4))
    # 2 optimizer steps per epoch, 6 in all: warm-up over the first 2, then linear to 0 at the last
    assert [lrs[0] for _, b, lrs in model.lr_log if b % 2 == 1] == [0.5, 1.0, 0.75, 0.5, 0.25, 0.0]


class Clipped(OptimRecipeMixin, TinyRegressor):
    optim_recipe = {"optimizer": "SGD", "lr": 1.0, "gradient_clip_val": 1e-3}

    def on_after_backward(self):
        self.before = [p.detach().clone() for p in self.parameters()]


def test_the_recipe_clips_when_the_trainer_does_not(tmp_path):
    model = Clipped()
    trainer(tmp_path, max_epochs=1).fit(model, loader(1))
    moved = torch.cat([(a - b).flatten() for a, b in zip(model.before, model.parameters())])
    assert moved.norm().item() == pytest.approx(1e-3, rel=1e-4)  # SGD(lr=1) moves by the clipped gradient


# --------------------------------------------------------------------------------------------- lr finder


class Findable(OptimRecipeMixin, TinyRegressor):
    optim_recipe = {"optimizer": "SGD", "lr": 1e-3, "overrides": {"decoder": {"lr": 1e-4}}}


def test_lightnings_lr_finder_sets_the_recipes_lr_and_keeps_the_ratios(tmp_path):
    model = Findable()
    fit = trainer(tmp_path, max_epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        finder = pl.tuner.Tuner(fit).lr_find(model, train_dataloaders=loader(40), num_training=30, min_lr=1e-4, early_stop_threshold=None,
                                             max_lr=1e-1)
    found = finder.suggestion()
    assert found is not None and found != 1e-3
    assert model.lr == found and model.resolve_optim_recipe()["lr"] == found
    assert model.resolve_optim_recipe()["overrides"]["decoder"]["lr"] == pytest.approx(found / 10)
    model.lr_log.clear()
    trainer(tmp_path, max_epochs=1).fit(model, loader(1))
    assert model.lr_log[0][2] == pytest.approx((found, found, found / 10, found / 10))


def test_a_module_without_a_recipe_keeps_a_plain_lr():
    class Plain(OptimRecipeMixin, TinyRegressor):
        def __init__(self):
            super().__init__()
            self.lr = 0.5

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.lr)

    assert Plain().lr == 0.5 and not hasattr(TinyRegressor(), "lr")


# ------------------------------------------------------------------------------------- data, not code


@pytest.mark.parametrize("path", ["subprocess.Popen", "builtins.print", "os.system", "torch.nn.Linear"])
def test_a_dotted_optimizer_must_be_an_optimizer_class(path):
    with pytest.raises(RecipeError, match=rf"^The recipe's 'optimizer' '{path}' is a .*, not a `torch\.optim\.Optimizer`"
                       r" subclass: use an optimizer class there"):
        configure_from_recipe(nn.Linear(2, 2), {"optimizer": path, "lr": 0.1})


@pytest.mark.parametrize("path", ["shutil.rmtree", "builtins.exec", "torch.optim.SGD"])
def test_a_dotted_scheduler_must_be_a_scheduler_class(path):
    with pytest.raises(RecipeError, match=rf"^The recipe's scheduler type '{path}' is a .*, not an `LRScheduler`"):
        configure_from_recipe(nn.Linear(2, 2), {"lr": 0.1, "scheduler": {"type": path}})


@pytest.mark.parametrize("path", ["os.system", "torch.optim.SGD"])
def test_a_dotted_module_type_must_be_a_module_class(path):
    with pytest.raises(RecipeError, match=rf"^The recipe's 'no_decay' module type '{path}' is a .*, not an `nn\.Module`"):
        configure_from_recipe(nn.Linear(2, 2), {"lr": 0.1, "no_decay": {"module_types": [path]}})


def test_dotted_paths_that_name_the_right_kind_of_class_work():
    config = configure_from_recipe(nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)), {
        "optimizer": "torch.optim.AdamW", "lr": 0.1, "no_decay": {"module_types": ["torch.nn.Linear"]},
        "scheduler": {"type": "torch.optim.lr_scheduler.StepLR", "step_size": 2}})
    assert type(config["optimizer"]).__name__ == "AdamW" and [g["name"] for g in config["optimizer"].param_groups] == [
        "no_decay"]
