"""`OptimRecipeMixin` on a real Trainer: a user's `configure_optimizers` validated before training, or one built
from a declarative recipe (class attribute or hparams)."""

from __future__ import annotations

from typing import Any, Optional

import pytest
import torch
from helpers import TinyRegressor, loader, pl, trainer
from torch import nn, optim

from lightning_optim_recipes import OptimRecipeMixin, RecipeError, RecipeWarning, multistep

pytestmark = pytest.mark.trainer


def _names(fit) -> list[str]:
    return [g.get("name") for g in fit.optimizers[0].param_groups]


def test_seed_broken_example_raises_recipe_error_and_nothing_trains(tmp_path):
    class Seed(OptimRecipeMixin, TinyRegressor):
        def configure_optimizers(self):
            enc, dec = self.encoder, self.decoder
            return optim.Adam([{'encoder_params': enc.parameters()}, {'decoder_params': dec.parameters()}])

    model = Seed()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(RecipeError, match=r"^Param group 0 has no 'params' key \(its keys: 'encoder_params'\)\."
                       r" torch\.optim reads a group's tensors from 'params'") as info:
        trainer(tmp_path, max_epochs=1).fit(model, loader(2))
    assert isinstance(info.value.__cause__ or info.value.__context__, KeyError)  # torch's own error, explained
    assert model.lr_log == []
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize(
    ("value", "error_msg"),
    [
        (lambda m: {"optimizer": (o := optim.SGD(m.parameters(), lr=0.1)), "lr_schedular": multistep(o, [1])},
         r"^Unknown key 'lr_schedular' in the optimizer dict returned by `configure_optimizers`: did you mean 'lr_scheduler'\?"),
        (lambda m: [optim.SGD(m.encoder.parameters(), lr=0.1), optim.SGD(m.decoder.parameters(), lr=0.1)],
         r"^`configure_optimizers` returned 2 optimizers, but Lightning 2\.x trains several optimizers only under manual"
         r" optimization\. Add `AlternatingOptimizersMixin`"),
        (lambda m: ([o := optim.SGD(m.parameters(), lr=0.1)], [{"scheduler": torch.optim.lr_scheduler.StepLR(o, 1), "interval": "batch"}]),
         r"^'interval' of the StepLR dict must be 'step' or 'epoch', got 'batch'\."),
    ],
    ids=["unknown-key", "two-optimizers", "interval"],
)
def test_mistakes_stop_fit_before_the_first_step(tmp_path, value, error_msg):
    class Mistaken(OptimRecipeMixin, TinyRegressor):
        def configure_optimizers(self):
            return value(self)

    model = Mistaken()
    with pytest.raises(RecipeError, match=error_msg):
        trainer(tmp_path, max_epochs=1).fit(model, loader(2))
    assert model.lr_log == []


def test_a_valid_configure_optimizers_trains_unchanged(tmp_path):
    class Valid(OptimRecipeMixin, TinyRegressor):
        def configure_optimizers(self):
            optimizer = optim.SGD(self.parameters(), lr=0.1)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": multistep(optimizer, [1])["scheduler"], "interval": "step"}}

    model = Valid()
    fit = trainer(tmp_path, max_epochs=1)
    fit.fit(model, loader(3))
    assert [lrs for _, _, lrs in model.lr_log] == [(0.1,), pytest.approx((0.01,)), pytest.approx((0.01,))]
    assert [c.interval for c in fit.lr_scheduler_configs] == ["step"]


def test_epoch_schedule_longer_than_training_warns_before_training(tmp_path):
    class LongCosine(OptimRecipeMixin, TinyRegressor):
        def configure_optimizers(self):
            optimizer = optim.SGD(self.parameters(), lr=0.1)
            return [optimizer], [torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=1000)]

    model = LongCosine()
    with pytest.warns(RecipeWarning, match=r"^The CosineAnnealingLR scheduler is written for 1000 scheduler steps"
                      r" \(T_max=1000\), but this run steps it 2 times \(interval='epoch': once at the end of each epoch,"
                      r" over 2 epochs\): training ends 0\.2% of the way through its schedule \(its lr ends at 0\.099999"
                      r" of 0\.1, not at eta_min=0\)\. Set it to the run's length: 2 \(`self\.trainer\.max_epochs`\), e\.g\."
                      r" CosineAnnealingLR\(\.\.\., T_max=2\)\. If that is deliberate, silence this with"
                      r" `warnings\.filterwarnings\('ignore', '\.\*scheduler is written for'\)`\.$") as record:
        trainer(tmp_path, max_epochs=2).fit(model, loader(1))
    warning = next(w for w in record if w.category is RecipeWarning)
    assert (warning.filename, warning.lineno) == (__file__, LongCosine.configure_optimizers.__wrapped__.__code__.co_firstlineno)


RECIPE = {
    "optimizer": "AdamW",
    "lr": 1e-2,
    "weight_decay": 1e-6,
    "overrides": {"decoder": {"lr": 1e-3}},
    "scheduler": {"type": "multistep", "milestones": [1], "gamma": 0.5},
}


class FromClassRecipe(OptimRecipeMixin, TinyRegressor):
    optim_recipe = RECIPE


class FromHparams(OptimRecipeMixin, TinyRegressor):
    optim_recipe = {"optimizer": "SGD", "lr": 99.0}  # the hparams' recipe takes precedence

    def __init__(self, optim_recipe: Optional[dict[str, Any]] = None) -> None:
        super().__init__()
        self.save_hyperparameters()


@pytest.mark.parametrize("make", [FromClassRecipe, lambda: FromHparams(optim_recipe=RECIPE)], ids=["class", "hparams"])
def test_declarative_recipe_trains(tmp_path, make):
    model = make()
    fit = trainer(tmp_path, max_epochs=2)
    fit.fit(model, loader(2))
    assert type(fit.optimizers[0]) is torch.optim.AdamW
    assert [(g["name"], g["weight_decay"]) for g in fit.optimizers[0].param_groups] == [
        ("decay", 1e-6), ("no_decay", 0.0), ("decoder", 1e-6), ("decoder/no_decay", 0.0),
    ]
    assert [(type(c.scheduler).__name__, c.interval) for c in fit.lr_scheduler_configs] == [("MultiStepLR", "epoch")]
    full, half = (1e-2, 1e-2, 1e-3, 1e-3), (5e-3, 5e-3, 5e-4, 5e-4)
    assert [(e, b, lrs) for e, b, lrs in model.lr_log] == [
        (0, 0, full), (0, 1, full), (1, 0, pytest.approx(half)), (1, 1, pytest.approx(half)),
    ]


def test_hparams_recipe_with_a_warmup_reads_the_trainer(tmp_path):
    recipe = {"optimizer": "SGD", "lr": 1.0, "scheduler": {"type": "warmup_cosine", "warmup_steps": 2, "min_lr": 0.0}}
    model = FromHparams(optim_recipe=recipe)
    assert model.hparams["optim_recipe"] == recipe
    fit = trainer(tmp_path, max_epochs=1)
    fit.fit(model, loader(5))
    assert [lrs[0] for _, _, lrs in model.lr_log] == pytest.approx([0.5, 1.0, 0.75, 0.25, 0.0], abs=1e-12)


def test_neither_recipe_nor_configure_optimizers(tmp_path):
    class Bare(OptimRecipeMixin, TinyRegressor):
        pass

    model = Bare()
    with pytest.raises(RecipeError, match=r"^Bare has no `configure_optimizers` and no recipe: define `configure_optimizers`,"
                       r" set the class attribute `optim_recipe = \{'optimizer': 'AdamW', 'lr': 1e-3\}`, or pass"
                       r" `optim_recipe` to `__init__` and call `self\.save_hyperparameters\(\)`\.$"):
        trainer(tmp_path, max_epochs=1).fit(model, loader(1))
    assert model.lr_log == []


def test_super_configure_optimizers_chains_keep_working(tmp_path):
    """A subclass that calls `super().configure_optimizers()` gets the raw value to extend; the outermost call is checked."""

    class Base(OptimRecipeMixin, TinyRegressor):
        def configure_optimizers(self):
            return optim.SGD(self.parameters(), lr=0.1)

    class WithScheduler(Base):
        def configure_optimizers(self):
            optimizer = super().configure_optimizers()
            assert isinstance(optimizer, optim.SGD)  # the parent's raw value, not a normalized one
            return {"optimizer": optimizer, "lr_scheduler": multistep(optimizer, milestones=[1], gamma=0.1)}

    class FromRecipeAndExtended(OptimRecipeMixin, TinyRegressor):
        optim_recipe = {"optimizer": "SGD", "lr": 0.2}

        def configure_optimizers(self):
            config = super().configure_optimizers()  # the recipe's {'optimizer': ...}
            config["lr_scheduler"] = multistep(config["optimizer"], milestones=[1], gamma=0.5)
            return config

    for make, expected in ((WithScheduler, [(0.1,), (0.1,), (0.01,), (0.01,)]),
                           (FromRecipeAndExtended, [(0.2, 0.2), (0.2, 0.2), (0.1, 0.1), (0.1, 0.1)])):
        model = make()
        fit = trainer(tmp_path, max_epochs=2)
        fit.fit(model, loader(2))
        assert [lrs for _, _, lrs in model.lr_log] == [pytest.approx(e) for e in expected]
        assert [type(c.scheduler).__name__ for c in fit.lr_scheduler_configs] == ["MultiStepLR"]

    class BrokenChild(Base):
        def configure_optimizers(self):
            optimizer = super().configure_optimizers()
            return {"optimizer": optimizer, "lr_schedular": multistep(optimizer, milestones=[1])}

    with pytest.raises(RecipeError, match=r"^Unknown key 'lr_schedular'"):
        trainer(tmp_path, max_epochs=1).fit(BrokenChild(), loader(1))


def test_manual_optimization_with_two_optimizers(tmp_path):
    class Manual(OptimRecipeMixin, pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.automatic_optimization = False
            self.a, self.b = nn.Linear(4, 1), nn.Linear(4, 1)
            self.steps = []

        def configure_optimizers(self):
            oa, ob = optim.SGD(self.a.parameters(), lr=0.1), optim.SGD(self.b.parameters(), lr=0.2)
            return [oa, ob], [{"scheduler": torch.optim.lr_scheduler.StepLR(ob, 1), "interval": "step"}]

        def training_step(self, batch, batch_idx):
            x, y = batch
            oa, ob = self.optimizers()
            self.steps.append((oa.param_groups[0]["lr"], ob.param_groups[0]["lr"]))
            for opt, net in ((oa, self.a), (ob, self.b)):
                opt.zero_grad()
                self.manual_backward(nn.functional.mse_loss(net(x), y))
                opt.step()

    model = Manual()
    fit = trainer(tmp_path, max_epochs=1)
    fit.fit(model, loader(2))
    assert len(fit.optimizers) == 2 and [c.interval for c in fit.lr_scheduler_configs] == ["step"]
    assert model.steps == [(0.1, 0.2), (0.1, 0.2)]  # under manual optimization the user steps schedulers


def test_mixin_first_in_the_bases_of_an_existing_module(tmp_path):
    """`class M(OptimRecipeMixin, Existing)`: Existing's own configure_optimizers is kept (not the recipe's) and checked."""

    class Existing(TinyRegressor):
        def configure_optimizers(self):
            return optim.SGD(self.parameters(), lr=0.3)

    class Checked(OptimRecipeMixin, Existing):
        pass

    model = Checked()
    trainer(tmp_path, max_epochs=1).fit(model, loader(2))
    assert [lrs for _, _, lrs in model.lr_log] == [(0.3,), (0.3,)]

    class ExistingBroken(TinyRegressor):
        def configure_optimizers(self):
            return optim.Adam([{'encoder_params': self.encoder.parameters()}, {'decoder_params': self.decoder.parameters()}])

    class CheckedBroken(OptimRecipeMixin, ExistingBroken):
        pass

    broken = CheckedBroken()
    with pytest.raises(RecipeError, match=r"^Param group 0 has no 'params' key"):
        trainer(tmp_path, max_epochs=1).fit(broken, loader(2))
    assert broken.lr_log == []
