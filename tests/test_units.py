"""Lengths in units (`lightning_optim_recipes.units`): ``"10ep"``, ``"500st"``, ``"2000ba"``, ``"5%"`` in every factory,
in a recipe dict and in a YAML file, each resolved against a real Trainer (gradient accumulation,
``limit_train_batches``, ``max_steps``) to the step count written out here; the errors that say what to give."""

from __future__ import annotations

import logging
import math
import warnings

import pytest
import torch
from helpers import EXAMPLES, TinyRegressor, loader, run_cli, trainer
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lightning_optim_recipes import (
    OptimRecipeMixin,
    RecipeError,
    cosine,
    multistep,
    preview_schedule,
    warmup_cosine,
    warmup_linear,
    warmup_multistep,
    warmup_stable_decay,
)
from lightning_optim_recipes import cadence
from lightning_optim_recipes.units import RunSize, parse, resolve

# -------------------------------------------------------------------------------------------- without a Trainer


@pytest.mark.parametrize(("value", "error"), [
    ("10 epochs", r"^`warmup='10 epochs'` has an unknown unit 'epochs'\. Did you mean '10ep'\? Write '10ep' \(epochs\),"
                  r" '500st' \(optimizer steps\), '2000ba' \(batches\) or '5%' \(of the run\)\.$"),
    ("300 steps", r"^`warmup='300 steps'` has an unknown unit 'steps'\. Did you mean '300st'\?"),
    ("2.5st", r"^`warmup='2\.5st'`: optimizer steps are whole, write '2st' or '3st'\.$"),
    ("ten", r"^`warmup='ten'` is not a length: write '10ep' \(epochs\), '500st'"),
    ("-5%", r"^`warmup='-5%'` is not a length"),
])
def test_a_length_that_cannot_be_read(value, error):
    with pytest.raises(RecipeError, match=error):
        parse(value, "warmup")


def test_each_unit_against_the_runs_sizes():
    # 20 batches per epoch accumulating 3: 7 optimizer steps per epoch (the last window of 2 batches steps too)
    run = RunSize(total_steps=70, batches=20, accumulate=3, max_epochs=10)
    assert [resolve(v, "x", run) for v in ("2ep", "0.5ep", "70st", "20ba", "26ba", "10%", "2.5%", 12)] == [
        14, 4, 70, 7, 9, 7, 2, 12]
    # an 'epoch' scheduler counts epochs: whole ones, or the steps and batches of whole epochs
    assert [resolve(v, "x", run, unit="epochs") for v in ("3ep", "21st", "40ba", "50%")] == [3, 3, 2, 5]
    assert resolve("6ep", "x", run, unit="epochs", frequency=2) == 3


@settings(max_examples=150, deadline=None)
@given(batches=st.integers(1, 12), accumulate=st.integers(1, 5), trained=st.integers(0, 60))
def test_batches_are_the_optimizer_steps_the_loop_takes_over_them(batches, accumulate, trained):
    """`'Nba'` agrees with the library's one model of Lightning's loop: the optimizer steps over the first N
    batches (accumulation windows, and the short last window of every epoch)."""
    loop = cadence.Loop("automatic", 1, (), accumulate=(accumulate,))
    counter = cadence.Counter(1, 0)
    state = cadence.LoopState.fresh(1)
    for t in range(trained):
        cadence.run_batch(loop, state, t % batches, t % batches == batches - 1, counter)
    run = RunSize(batches=batches, accumulate=accumulate)
    assert resolve(f"{trained}ba", "x", run) == counter.optimizer_steps[0]
    assert resolve("3ep", "x", run) == 3 * math.ceil(batches / accumulate)


@pytest.mark.parametrize(("make", "error"), [
    (lambda o: warmup_stable_decay(o, warmup="5%", decay="100st", decay_start="900st"),
     r"^`warmup='5%'` is a share of the run, but `warmup_stable_decay` does not know the run's length: pass"
     r" `trainer=self\.trainer` inside `configure_optimizers` \(its `estimated_stepping_batches`\), or `total_steps=`,"
     r" or give warmup in optimizer steps \('500st'\) or epochs \('2ep'\)\.$"),
    (lambda o: warmup_stable_decay(o, warmup=10, decay="2ep", total_steps=1000),
     r"^`decay='2ep'` counts epochs, but `warmup_stable_decay` does not know the epoch's length: pass"
     r" `trainer=self\.trainer` inside `configure_optimizers`, or give it in optimizer steps \('500st'\)\.$"),
    (lambda o: multistep(o, milestones=["300ba"], interval="step"),
     r"^`milestones='300ba'` counts batches, which become optimizer steps through gradient accumulation: pass"
     r" `trainer=self\.trainer` inside `configure_optimizers`, or give milestones in optimizer steps \('500st'\)\.$"),
    (lambda o: warmup_stable_decay(o, warmup=10, decay="100st"),
     r"^`warmup_stable_decay` decays at the end of the run, whose length it needs: pass `trainer=self\.trainer`"),
    (lambda o: warmup_stable_decay(o, warmup=60, decay="50%", total_steps=100),
     r"^`warmup_stable_decay`'s 60-step warm-up and 50-step decay \(decay '50%'\) do not fit the run's 100 optimizer"
     r" steps: give a shorter warm-up or decay, or train longer\.$"),
    (lambda o: warmup_stable_decay(o, warmup=10, decay=5, decay_start="5st"),
     r"^`decay_start` must be a position of at least 10 optimizer steps \(an int, or '10ep', '500st', '2000ba', '5%',"
     r" or 'now'\), got '5st' = 5 steps\.$"),
    (lambda o: warmup_stable_decay(o, warmup=0, decay=5, decay_shape="exp", total_steps=10),
     r"^`decay_shape` must be one of \['linear', 'cosine', '1-sqrt'\], got 'exp'"),
    (lambda o: cosine(o, t_max="2.5ep", trainer=RunSize(batches=10)),
     r"^`t_max='2\.5ep'`: `cosine` steps once per epoch, so it counts whole epochs; write '2ep', or use"
     r" interval='step' for a length within an epoch\.$"),
])
def test_lengths_that_the_run_cannot_resolve_say_what_to_give(make, error):
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(RecipeError, match=error):
        make(optimizer)


class _Sizes:
    """What an epoch scheduler reads (a Trainer's sizes): 10 batches an epoch, 100 optimizer steps in all."""

    num_training_batches, accumulate_grad_batches, max_epochs, estimated_stepping_batches = 10, 1, 10, 100


def test_an_epoch_scheduler_refuses_a_length_that_is_not_whole_epochs():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(RecipeError, match=r"^`t_max='25st'` is 2\.5 epochs of this run \(10 optimizer steps per"
                                          r" epoch\), but `cosine` steps once per epoch: give whole epochs \('2ep'\),"
                                          r" or use interval='step'\.$"):
        cosine(optimizer, t_max="25st", trainer=_Sizes())
    assert cosine(optimizer, t_max="30st", trainer=_Sizes())["scheduler"].T_max == 3


# ------------------------------------------------------------------------------------------ with a real Trainer


class Factories(TinyRegressor):
    """Builds every factory with lengths in units on the real Trainer and keeps what each resolved to; trains with
    `warmup_stable_decay`."""

    def configure_optimizers(self):
        t = self.trainer

        def opt() -> torch.optim.Optimizer:
            return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)

        built = {
            "warmup_cosine": warmup_cosine(opt(), warmup_steps="9ba", total_steps="2ep", trainer=t),
            "warmup_linear": warmup_linear(opt(), warmup_steps="50%", trainer=t),
            "cosine epoch": cosine(opt(), t_max="3ep", trainer=t),
            "cosine step": cosine(opt(), t_max="100%", interval="step", trainer=t),
            "multistep step": multistep(opt(), milestones=["1ep", "8st"], interval="step", trainer=t),
            "multistep epoch": multistep(opt(), milestones=["1ep", "14ba"], trainer=t),
            "warmup_multistep": warmup_multistep(opt(), milestones=["6st", 2], warmup_steps="2ba", trainer=t),
            "wsd at 9ba": warmup_stable_decay(opt(), warmup=2, decay="1st", decay_start="9ba", trainer=t),
        }
        self.lengths = {name: config["scheduler"].lengths for name, config in built.items()}
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        return {"optimizer": optimizer,
                "lr_scheduler": warmup_stable_decay(optimizer, warmup="1ep", decay="25%", trainer=t)}

    def training_step(self, batch, batch_idx):
        self.steps = getattr(self, "steps", {})
        self.steps[self.trainer.global_step] = self.trainer.optimizers[0].param_groups[0]["lr"]
        return super().training_step(batch, batch_idx)


@pytest.mark.trainer
def test_every_factory_resolves_its_units_against_the_trainer(tmp_path):
    # 10 batches, limited to 7 an epoch, accumulating 2: optimizer steps after batches 1, 3, 5 and 6 (the epoch's
    # last), 4 an epoch, 12 in 3 epochs
    model = Factories()
    trainer(tmp_path, max_epochs=3, limit_train_batches=7, accumulate_grad_batches=2).fit(model, loader(10))
    assert model.lengths == {
        "warmup_cosine": {"warmup_steps": ("9ba", 5), "total_steps": ("2ep", 8)},  # 9 batches: 4 + 1 steps
        "warmup_linear": {"warmup_steps": ("50%", 6)},
        "cosine epoch": {"t_max": ("3ep", 3)},
        "cosine step": {"t_max": ("100%", 12)},
        "multistep step": {"milestones": ("['1ep', '8st']", [4, 8])},
        "multistep epoch": {"milestones": ("['1ep', '14ba']", [1, 2])},  # 14 batches: 2 epochs of 7
        "warmup_multistep": {"warmup_steps": ("2ba", 1), "milestones": ("['6st', 2]", [6, 8])},
        "wsd at 9ba": {"decay": ("1st", 1), "decay_start": ("9ba", 5)},
    }
    # the trained schedule: a 1-epoch (4-step) warm-up, the peak, a linear decay over 25% of 12 steps to 0
    assert [model.steps[s] for s in range(12)] == pytest.approx(
        [0.025, 0.05, 0.075, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1 * 2 / 3, 0.1 / 3, 0.0], rel=1e-12, abs=1e-15)


class FromRecipe(OptimRecipeMixin, TinyRegressor):
    optim_recipe = {"optimizer": "SGD", "lr": 0.1, "scheduler": {"type": "wsd", "warmup": "6ba", "decay": "50%"}}

    def training_step(self, batch, batch_idx):
        self.steps = getattr(self, "steps", {})
        self.steps[self.trainer.global_step] = self.trainer.optimizers[0].param_groups[0]["lr"]
        return super().training_step(batch, batch_idx)


@pytest.mark.trainer
def test_a_recipe_dict_resolves_its_units_with_max_steps(tmp_path, caplog):
    # 5 batches an epoch (of 10), accumulating 3: 2 optimizer steps an epoch; max_steps=8 ends the run
    model = FromRecipe()
    with caplog.at_level(logging.INFO, logger="lightning_optim_recipes"):
        trainer(tmp_path, max_epochs=10, max_steps=8, limit_train_batches=5, accumulate_grad_batches=3).fit(
            model, loader(10))
    assert model.optimizer_setup.schedulers[0].scheduler.lengths == {"warmup": ("6ba", 2), "decay": ("50%", 4)}
    assert "wsd: warmup '6ba' = 2 optimizer steps, decay '50%' = 4 optimizer steps" in caplog.text
    assert [model.steps[s] for s in range(8)] == pytest.approx([0.05, 0.1, 0.1, 0.1, 0.075, 0.05, 0.025, 0.0],
                                                               rel=1e-12, abs=1e-15)


def test_the_preview_shows_the_lengths_resolved():
    recipe = {"optimizer": "SGD", "lr": 0.1, "scheduler": {"type": "wsd", "warmup": "1ep", "decay": "30ba"}}
    preview = preview_schedule(recipe, max_epochs=4, steps_per_epoch=20, accumulate_grad_batches=2)
    assert preview.lengths == [
        {"scheduler": 0, "name": None, "length": "warmup", "written": "1ep", "resolved": 10, "unit": "optimizer steps"},
        {"scheduler": 0, "name": None, "length": "decay", "written": "30ba", "resolved": 15,
         "unit": "optimizer steps"}]
    assert preview.markers == [{"step": 9, "optimizer": 0, "label": "warmup end"},
                               {"step": 25, "optimizer": 0, "label": "decay start"}]


@pytest.mark.trainer
def test_units_from_yaml_and_the_command_line(tmp_path):
    """examples/wsd.yaml: 4 batches an epoch, accumulating 2 (2 optimizer steps an epoch), 5 epochs: 10 steps."""
    with warnings.catch_warnings():
        cli = run_cli(tmp_path, "--config", str(EXAMPLES / "wsd.yaml"))
    assert cli.model.hparams["optim_recipe"]["scheduler"] == {"type": "wsd", "warmup": "1ep", "decay": "20%",
                                                              "decay_shape": "1-sqrt"}
    scheduler = cli.model.optimizer_setup.schedulers[0].scheduler
    assert scheduler.lengths == {"warmup": ("1ep", 2), "decay": ("20%", 2)}
    # the lr of each optimizer step, read at the first of its two batches: warm-up 0.5, 1; peak; 1 - sqrt(1/2), 0
    per_step = [lrs["decay"] for _, batch, lrs in cli.model.lr_log if batch % 2 == 0]
    assert per_step == pytest.approx([0.005, 0.01] + [0.01] * 6 + [0.002928932188134524, 0.0], rel=1e-12, abs=1e-15)
    # 6 batches: one epoch (2 steps) and 2 batches (1 step)
    changed = run_cli(tmp_path / "changed", "--config", str(EXAMPLES / "wsd.yaml"),
                      "--model.optim_recipe.scheduler", "{type: wsd, warmup: 1ep, decay: 6ba}")
    assert changed.model.optimizer_setup.schedulers[0].scheduler.lengths["decay"] == ("6ba", 3)
    assert changed.model.hparams["optim_recipe"]["scheduler"]["decay"] == "6ba"
