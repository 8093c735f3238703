"""Schedules that do not fit the run, caught before training with both numbers, the cause and the fix, by every entry
point: `ConfigureOptimizersCheck` on a plain module, `SchedulerCadenceCheck`, the mixins and `preview_schedule`."""

from __future__ import annotations

import warnings

import pytest
import torch
from helpers import TinyRegressor, loader, pl, trainer
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, OneCycleLR, ReduceLROnPlateau

from lightning_optim_recipes import (
    AlternatingOptimizersMixin,
    ConfigureOptimizersCheck,
    OptimRecipeMixin,
    RecipeError,
    RecipeWarning,
    SchedulerCadenceCheck,
    cosine,
    preview_schedule,
    scheduled,
    warmup_cosine,
)

pytestmark = pytest.mark.trainer


def fit(tmp_path, model, batches=4, callback=None, **options):
    options.setdefault("max_epochs", 3)
    fit = trainer(tmp_path, callbacks=[callback or ConfigureOptimizersCheck()], **options)
    fit.fit(model, loader(batches))
    return fit


def recipe_warnings(record):
    return [w for w in record if issubclass(w.category, RecipeWarning)]


class CosineOnEpoch(TinyRegressor):
    """`cosine(t_max=estimated_stepping_batches)` left on its default interval='epoch'."""

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        return {"optimizer": opt, "lr_scheduler": cosine(opt, t_max=self.trainer.estimated_stepping_batches)}


def test_cosine_over_the_run_in_steps_left_on_epoch(tmp_path):
    with pytest.warns(RecipeWarning) as record:
        fit(tmp_path, CosineOnEpoch())
    (warning,) = recipe_warnings(record)
    assert str(warning.message) == (
        "The CosineAnnealingLR scheduler is written for 12 scheduler steps (T_max=12), but this run steps it 3 times"
        " (interval='epoch': once at the end of each epoch, over 3 epochs): training ends 25.0% of the way through"
        " its schedule (its lr ends at 0.0853553 of 0.1, not at eta_min=0). Its numbers are in optimizer steps, but it"
        " has interval='epoch', so it steps once per epoch. Did you mean interval='step'? (`scheduled(scheduler,"
        " interval='step')`, or 'interval': 'step' in its dict). If that is deliberate, silence this with"
        " `warnings.filterwarnings('ignore', '.*scheduler is written for')`."
    )
    assert (warning.filename, warning.lineno) == (__file__, CosineOnEpoch.configure_optimizers.__code__.co_firstlineno)


class WarmupCosineByHand(TinyRegressor):
    """`warmup_cosine` whose total is `max_epochs * len(loader)`: it ignores accumulation and `max_steps`."""

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=1e-3)
        total = self.trainer.max_epochs * 8
        return {"optimizer": opt, "lr_scheduler": warmup_cosine(opt, warmup_steps=2, total_steps=total)}


def test_warmup_cosine_total_that_ignores_accumulation(tmp_path):
    with pytest.warns(RecipeWarning) as record:
        fit(tmp_path, WarmupCosineByHand(), batches=8, accumulate_grad_batches=4)
    (warning,) = recipe_warnings(record)
    assert str(warning.message) == (
        "The LambdaLR scheduler is written for 24 scheduler steps (total_steps=24), but this run steps it 6 times"
        " (interval='step': after each optimizer step, over 3 epochs): training ends 25.0% of the way through its"
        " schedule (its last step runs at 0.921 of the peak lr). Likely cause: the length ignores"
        " accumulate_grad_batches=4 (the optimizer steps once every 4 batches). Compute it from the run:"
        " `trainer.estimated_stepping_batches` (optimizer steps; it counts accumulation, devices,"
        " limit_train_batches and max_steps), e.g. `warmup_cosine(opt, warmup_steps=..., trainer=self.trainer)`. If"
        " that is deliberate, silence this with `warnings.filterwarnings('ignore', '.*scheduler is written for')`."
    )


def test_warmup_cosine_total_that_ignores_max_steps(tmp_path):
    with pytest.warns(RecipeWarning) as record:
        fit(tmp_path, WarmupCosineByHand(), batches=8, max_steps=10)
    (warning,) = recipe_warnings(record)
    assert "but this run steps it 10 times (interval='step': after each optimizer step, over 1.25 epochs before" \
           " max_steps=10 ends training)" in str(warning.message)
    assert "Likely cause: max_steps=10 ends training before max_epochs=3." in str(warning.message)


class Milestones(OptimRecipeMixin, TinyRegressor):
    optim_recipe = {"optimizer": "AdamW", "lr": 1e-3, "weight_decay": 0.05,
                    "scheduler": {"type": "multistep", "milestones": [30, 60], "gamma": 0.1}}


def test_a_milestone_the_run_never_reaches_points_at_the_recipe(tmp_path):
    with pytest.warns(RecipeWarning) as record:
        fit(tmp_path, Milestones())
    (warning,) = recipe_warnings(record)
    assert str(warning.message) == (
        "The MultiStepLR scheduler never reaches milestone 30: this run steps it 3 times (interval='epoch': once at"
        " the end of each epoch, over 3 epochs). Train longer, or move it within the run (30 epochs asked, 3 in the"
        " run). If that is deliberate, silence this with `warnings.filterwarnings('ignore', '.*scheduler never"
        " reaches')`."
    )
    line = next(i for i, text in enumerate(open(__file__).read().splitlines(), 1) if "optim_recipe = {" in text)
    assert (warning.filename, warning.lineno) == (__file__, line)


class WarmupOnEpoch(TinyRegressor):
    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=1e-3)
        config = warmup_cosine(opt, warmup_steps=4000, total_steps=100_000)
        return {"optimizer": opt, "lr_scheduler": {**config, "interval": "epoch"}}


def test_a_warmup_in_steps_left_on_epoch_gets_the_unit_advice(tmp_path):
    with pytest.warns(RecipeWarning) as record:
        fit(tmp_path, WarmupOnEpoch())
    (warning,) = recipe_warnings(record)
    assert str(warning.message).startswith(
        "The LambdaLR scheduler is written for 100000 scheduler steps (total_steps=100000), but this run steps it 3"
        " times (interval='epoch': once at the end of each epoch, over 3 epochs)")
    assert str(warning.message).endswith(
        "Its numbers are in optimizer steps, but it has interval='epoch', so it steps once per epoch. Did you mean"
        " interval='step'? (`scheduled(scheduler, interval='step')`, or 'interval': 'step' in its dict). If that is"
        " deliberate, silence this with `warnings.filterwarnings('ignore', '.*scheduler is written for')`.")


class Fits(TinyRegressor):
    """Three schedules whose lengths come from the run; `cosine_epochs` (default: the run's) changes the last one's."""

    def __init__(self, cosine_epochs=None) -> None:
        super().__init__()
        self.cosine_epochs = cosine_epochs

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        steps = self.trainer.estimated_stepping_batches
        return [opt], [
            warmup_cosine(opt, warmup_steps=2, trainer=self.trainer),
            scheduled(OneCycleLR(opt, max_lr=0.1, total_steps=steps), interval="step"),
            cosine(opt, t_max=self.cosine_epochs or self.trainer.max_epochs),
        ]


TOO_LONG = (
    "The CosineAnnealingLR scheduler is written for 10 scheduler steps (T_max=10), but this run steps it 3 times"
    " (interval='epoch': once at the end of each epoch, over 3 epochs): training ends 30.0% of the way through its"
    " schedule (its lr ends at 0.00317557 of 0.004, not at eta_min=0). Set it to the run's length: 3"
    " (`self.trainer.max_epochs`), e.g. CosineAnnealingLR(..., T_max=3). If that is deliberate, silence this with"
    " `warnings.filterwarnings('ignore', '.*scheduler is written for')`."
)


@pytest.mark.parametrize("callback", [ConfigureOptimizersCheck, SchedulerCadenceCheck])
def test_schedules_that_fit_the_run_get_no_warning(tmp_path, callback):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        fit(tmp_path / "fits", Fits(), accumulate_grad_batches=2, callback=callback(), limit_train_batches=3)
    # the check ran: the same module and run with the cosine written for 10 epochs of the 3 warns
    with pytest.warns(RecipeWarning) as record:
        fit(tmp_path / "too_long", Fits(cosine_epochs=10), accumulate_grad_batches=2, callback=callback(),
            limit_train_batches=3)
    assert [str(w.message) for w in recipe_warnings(record)] == [TOO_LONG]


class Gan(AlternatingOptimizersMixin, pl.LightningModule):
    alternation = {"critic_step": {"trains": "critic", "batches": 5},
                   "generator_step": {"trains": "generator", "batches": 1}}

    def __init__(self) -> None:
        super().__init__()
        self.critic, self.generator = nn.Linear(4, 1), nn.Linear(4, 4)

    def critic_step(self, batch, batch_idx):
        return self.critic(self.generator(batch[0])).mean() - self.critic(batch[0]).mean()

    def generator_step(self, batch, batch_idx):
        return -self.critic(self.generator(batch[0])).mean()

    def configure_optimizers(self):
        critic = torch.optim.Adam(self.critic.parameters(), lr=1e-4)
        generator = torch.optim.Adam(self.generator.parameters(), lr=1e-4)
        total = self.trainer.estimated_stepping_batches  # every batch: not the generator's own steps
        return [critic, generator], [scheduled(CosineAnnealingLR(generator, T_max=total), interval="step")]


def test_under_the_alternating_mixin_each_optimizer_counts_its_own_steps(tmp_path):
    with pytest.warns(RecipeWarning) as record:
        trainer(tmp_path, max_epochs=2).fit(Gan(), loader(12))
    (warning,) = recipe_warnings(record)
    assert str(warning.message).startswith(
        "The CosineAnnealingLR scheduler is written for 24 scheduler steps (T_max=24), but this run steps it 4 times"
        " (interval='step': after each optimizer step, over 2 epochs)")


class PlateauOnValidation(TinyRegressor):
    def validation_step(self, batch, batch_idx):
        self.log("val_loss", 1.0)

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        return {"optimizer": opt, "lr_scheduler": ReduceLROnPlateau(opt), "monitor": "val_loss"}


def test_plateau_on_a_validation_metric_with_validation_every_other_epoch(tmp_path):
    model = PlateauOnValidation()
    with pytest.raises(RecipeError, match=r"^The ReduceLROnPlateau monitors 'val_loss' at the end of every epoch, but"
                       r" `Trainer\(check_val_every_n_epoch=2\)` validates only every 2 epochs, so after epoch 0"
                       r" Lightning stops with \"val_loss \.\.\. is not available\"\. Fix one of: 'frequency': 2 in its"
                       r" scheduler dict .*, 'strict': False .*, or monitor a metric logged in `training_step`\.$"):
        t = trainer(tmp_path, max_epochs=2, check_val_every_n_epoch=2, callbacks=[ConfigureOptimizersCheck()])
        t.fit(model, loader(2), loader(1))
    assert model.lr_log == []


class PlateauEveryStep(TinyRegressor):
    """A ReduceLROnPlateau on a validation metric, stepped per optimizer step (Lightning-AI/pytorch-lightning issue
    #1156): Lightning fails at its first step before any validation has logged the metric."""

    def __init__(self, frequency: int = 1) -> None:
        super().__init__()
        self.frequency = frequency

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", 1.0)

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": ReduceLROnPlateau(opt), "monitor": "val_loss",
                                                   "interval": "step", "frequency": self.frequency}}


@pytest.mark.parametrize(("options", "why", "frequency"), [
    ({}, "the first validation runs after batch 3 (`val_check_interval=1.0`)", 4),
    ({"val_check_interval": 2}, "the first validation runs after batch 1 (`val_check_interval=2`)", 2),
    ({"check_val_every_n_epoch": 2}, "`Trainer(check_val_every_n_epoch=2)` first validates at the end of epoch 1",
     None),
    ({"limit_val_batches": 0}, "this run validates nothing (no `validation_step`, no val data, or"
                               " `limit_val_batches=0`)", None),
])
def test_plateau_stepped_per_step_before_the_first_validation(tmp_path, options, why, frequency):
    model = PlateauEveryStep()
    with pytest.raises(RecipeError) as raised:
        trainer(tmp_path, max_epochs=2, callbacks=[ConfigureOptimizersCheck()], **options).fit(
            model, loader(4), loader(1))
    advice = f" 'frequency': {frequency} (step it after each validation)," if frequency else ""
    assert str(raised.value) == (
        "The ReduceLROnPlateau monitors 'val_loss' after every optimizer step (interval='step'), so it first steps"
        f" after batch 0 of epoch 0, but {why}: Lightning stops there with \"ReduceLROnPlateau conditioned on metric"
        " val_loss which is not available\". Fix one of: 'interval': 'epoch' in its scheduler dict (step it once per"
        f" epoch, after validation),{advice} 'strict': False (skip the steps without the metric), or monitor a metric"
        " logged in `training_step`.")
    assert model.lr_log == []
    if frequency:  # the advice, followed: the plateau steps after each validation, and nothing is said
        corrected = PlateauEveryStep(frequency)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RecipeWarning)
            trainer(tmp_path, max_epochs=2, callbacks=[ConfigureOptimizersCheck()], **options).fit(
                corrected, loader(4), loader(1))
        assert len(corrected.lr_log) == 8


class OneCycleFloor(TinyRegressor):
    """OneCycleLR sized with `batches // accumulate_grad_batches` per epoch (jspaezp/elfragmentador, model.py), where
    Lightning also steps on each epoch's last, partial window; `exact` sizes it with the run."""

    def __init__(self, exact: bool = False) -> None:
        super().__init__()
        self.exact = exact

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=1e-4)
        total = self.trainer.estimated_stepping_batches if self.exact else (
            10 // self.trainer.accumulate_grad_batches) * self.trainer.max_epochs
        return [opt], [{"scheduler": OneCycleLR(opt, max_lr=1e-3, total_steps=total), "interval": "step"}]


def test_a_onecycle_stepped_past_its_end_is_an_error_before_training(tmp_path):
    model = OneCycleFloor()
    with pytest.raises(RecipeError) as raised:
        fit(tmp_path, model, batches=10, accumulate_grad_batches=3, max_epochs=2)
    assert str(raised.value) == (
        "The OneCycleLR scheduler is written for 6 scheduler steps (total_steps=6), but this run steps it 8 times"
        " (interval='step': after each optimizer step, over 2 epochs): stepped past its end, torch's OneCycleLR raises"
        " \"Tried to step 7 times. The specified number of total steps is 6\", so training would stop at its step 7."
        " Likely cause: the length counts only the full accumulation windows of an epoch (10 // 3 = 3), but the"
        " optimizer also steps on each epoch's last, partial window: 4 steps per epoch. Compute it from the run:"
        " `trainer.estimated_stepping_batches` (optimizer steps; it counts accumulation, devices, limit_train_batches"
        " and max_steps), e.g. OneCycleLR(..., total_steps=8).")
    assert model.lr_log == []
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        corrected = OneCycleFloor(exact=True)
        fit(tmp_path, corrected, batches=10, accumulate_grad_batches=3, max_epochs=2)
    assert len(corrected.lr_log) == 20  # every batch; the OneCycleLR stepped its 8 steps


class Cycles(TinyRegressor):
    """A schedule that rises again after each decay by design, ending in a rise."""

    def __init__(self, kind: str, interval: str = "step") -> None:
        super().__init__()
        self.kind, self.interval = kind, interval

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=1e-3)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=1, T_mult=2, eta_min=1e-4) \
            if self.kind == "restarts" else torch.optim.lr_scheduler.CyclicLR(opt, base_lr=1e-4, max_lr=1e-3,
                                                                               step_size_up=4)
        return [opt], [{"scheduler": scheduler, "interval": self.interval}]


@pytest.mark.parametrize(("kind", "batches", "last"), [
    # cycles of 1, 2, 4 and 8 steps: the last two steps of the 8-step cosine from 1e-3 to 1e-4, then a restart
    ("restarts", 8, [2.318019e-4, 1.342542e-4, 1e-3]),
    # a triangle of 4 steps up and 4 down between 1e-4 and 1e-3, 13 steps: the second rise back to its top
    ("cyclic", 13, [5.5e-4, 7.75e-4, 1e-3]),
])
def test_a_cycle_that_ends_rising_after_a_fall_is_not_a_warm_up_that_never_ends(tmp_path, kind, batches, last):
    model = Cycles(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        fit(tmp_path, model, batches=batches, max_epochs=16 // batches)
    assert [round(lrs[0], 10) for _, _, lrs in model.lr_log][-3:] == pytest.approx(last, rel=1e-6)
    # its first rise, stepped per epoch, never ends: that still warns
    with pytest.warns(RecipeWarning, match=r"^A CyclicLR \(interval='epoch'\) of lr-SGD is still rising when the run"
                      r" ends: its lr grows from 0\.0001 at step 0 to 0\.000325 at the last of the run's 10 optimizer"
                      r" steps, so the warm-up never ends\."):
        fit(tmp_path, Cycles("cyclic", "epoch"), batches=5, max_epochs=2)


def test_preview_schedule_runs_the_same_checks():
    recipe = {"optimizer": "SGD", "lr": 0.1, "scheduler": {"type": "multistep", "milestones": [30]}}
    with pytest.warns(RecipeWarning, match=r"^The MultiStepLR scheduler never reaches milestone 30: this run steps it"
                      r" 4 times") as record:
        preview_schedule(recipe, max_epochs=4, steps_per_epoch=5)
    assert record[0].filename == __file__


def test_warmup_cosine_total_that_ignores_limit_train_batches(tmp_path):
    with pytest.warns(RecipeWarning) as record:
        fit(tmp_path, WarmupCosineByHand(), batches=8, limit_train_batches=0.5)
    (warning,) = recipe_warnings(record)
    assert "written for 24 scheduler steps (total_steps=24), but this run steps it 12 times" in str(warning.message)
    assert "Likely cause: limit_train_batches=0.5 trains 4 batches per epoch, not the whole loader." in str(
        warning.message)


def test_a_length_that_ignores_the_devices():
    """Two devices split each epoch's batches (a run's sizes, as the Trainer computes them for each rank)."""
    import types

    from lightning_optim_recipes.fit_checks import run_of, schedule_misfit
    from lightning_optim_recipes.validation import validate_optimizers

    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    setup = validate_optimizers({"optimizer": opt, "lr_scheduler": scheduled(CosineAnnealingLR(opt, T_max=40),
                                                                              interval="step")})
    trainer = types.SimpleNamespace(max_epochs=2, max_steps=-1, num_training_batches=10, accumulate_grad_batches=1,
                                    world_size=2, limit_train_batches=1.0)
    message = schedule_misfit(setup.schedulers[0], 0, run_of(setup, trainer))
    assert message.startswith("The CosineAnnealingLR scheduler is written for 40 scheduler steps (T_max=40), but this"
                              " run steps it 20 times")
    assert "Likely cause: the length ignores the 2 devices (each sees 1/2 of the batches)." in message


class SizedForSteps(TinyRegressor):
    """A linear warm-up over 2 steps and decay to 0 at step `total` (ACE-Step's and flash-attention's runs are sized by
    `Trainer(max_epochs=-1, max_steps=N)`)."""

    def __init__(self, total: int, interval: str) -> None:
        super().__init__()
        self.total, self.interval = total, interval

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=1e-3)
        total = self.total
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(s / 2, max(0.0, (total - s) / (total - 2))))
        return [opt], [{"scheduler": sched, "interval": self.interval}]


def test_a_run_sized_by_max_steps_alone_is_checked_before_training(tmp_path):
    with pytest.warns(RecipeWarning) as record:
        fit(tmp_path, SizedForSteps(32, "step"), batches=8, max_epochs=-1, max_steps=16)
    assert [str(w.message) for w in recipe_warnings(record)] == [
        "The LambdaLR scheduler is written for 32 scheduler steps (its lr_lambda's total=32), but this run steps it 16"
        " times (interval='step': after each optimizer step, over 2 epochs): training ends 50.0% of the way through"
        " its schedule (its last step runs at 0.567 of the peak lr). Compute it from the run:"
        " `trainer.estimated_stepping_batches` (optimizer steps; it counts accumulation, devices, limit_train_batches"
        " and max_steps), e.g. total=16. If that is deliberate, silence this with"
        " `warnings.filterwarnings('ignore', '.*scheduler is written for')`."]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        fit(tmp_path, SizedForSteps(16, "step"), batches=8, max_epochs=-1, max_steps=16)


class WarmupThenCosine(TinyRegressor):
    """microsoft/torchgeo's MoCo v3 trainer (torchgeo/trainers/moco.py @ 7ea0616): a linear warm-up for 2 epochs, then
    a cosine whose T_max is the whole run (`cut`) or what follows the warm-up."""

    def __init__(self, cut: bool) -> None:
        super().__init__()
        self.cut = cut

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=1e-3)
        warmup, epochs = 2, self.trainer.max_epochs
        cosine_part = CosineAnnealingLR(opt, T_max=epochs if self.cut else epochs - warmup)
        linear = torch.optim.lr_scheduler.LinearLR(opt, 1 / warmup, total_iters=warmup)
        return [opt], [torch.optim.lr_scheduler.SequentialLR(opt, [linear, cosine_part], [warmup])]


def test_a_sequence_whose_last_scheduler_is_sized_for_the_whole_run(tmp_path):
    with pytest.warns(RecipeWarning) as record:
        fit(tmp_path, WarmupThenCosine(cut=True), batches=1, max_epochs=10)
    assert [str(w.message) for w in recipe_warnings(record)] == [
        "The SequentialLR scheduler is written for 12 scheduler steps (its last milestone plus T_max=10), but this run"
        " steps it 10 times (interval='epoch': once at the end of each epoch, over 10 epochs): training ends 83.3% of"
        " the way through its schedule. Likely cause: its last scheduler, a CosineAnnealingLR, is sized for the whole"
        " run (T_max=10), but it starts at milestone 2. Size its last scheduler for what follows milestone 2: 8"
        " (`self.trainer.max_epochs - 2`), e.g. CosineAnnealingLR(..., T_max=8). If that is deliberate, silence this"
        " with `warnings.filterwarnings('ignore', '.*scheduler is written for')`."]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        fit(tmp_path, WarmupThenCosine(cut=False), batches=1, max_epochs=10)
