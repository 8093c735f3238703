"""Never a silent wrong schedule: the learning rate the run will actually get, judged for any scheduler and any module.

One test per pattern found in real projects, each with the mistake (the exact warning, pointing at the user's line)
and the same module corrected (no warning at all):

1. a ``LambdaLR`` that holds the lr at 0 (``s / 10`` stepped per epoch);
2. a warm-up written in optimizer steps but stepped per epoch (a closure, a class projects ship);
3. a third-party schedule sized in the wrong unit (transformers' ``num_training_steps=max_epochs``);
4. manual optimization with two optimizers, a schedule sized with ``max_steps`` (``global_step`` counts both);
5. an lr set by hand from the batch count under accumulation (its floor a quarter of the way in);
6. a scheduler that never steps under manual optimization (reported at its first interval, not when fit ends).
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from helpers import Recorder, loader, pl, trainer
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LRScheduler

from lightning_optim_recipes import (
    CadenceError,
    ConfigureOptimizersCheck,
    LearningRateLogger,
    RecipeWarning,
    SchedulerCadenceCheck,
)

pytestmark = pytest.mark.trainer


class Base(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()


def fit(tmp_path, model, callbacks=(), batches=8, **options):
    options.setdefault("max_epochs", 2)
    trainer(tmp_path, callbacks=list(callbacks), **options).fit(model, loader(batches))


def fit_silently(tmp_path, model, callbacks=(), **options):
    """The corrected module: no RecipeWarning at all."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        fit(tmp_path, model, callbacks, **options)


def only_warning(caught) -> str:
    messages = [str(w.message) for w in caught if issubclass(w.category, RecipeWarning)]
    assert len(messages) == 1, messages
    return messages[0]


def recipe_warning(caught):
    return next(w for w in caught if issubclass(w.category, RecipeWarning))


# ------------------------------------------------------------------------------------------------ 1. lr at 0


class ZeroFirstEpoch(Base):
    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        return {"optimizer": optimizer, "lr_scheduler": LambdaLR(optimizer, lambda step: step / 10)}


class WarmsUpPerStep(Base):
    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        scheduler = LambdaLR(optimizer, lambda step: min(1.0, step / 10))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def test_a_lambda_that_holds_the_lr_at_0_for_an_epoch_warns(tmp_path):
    with pytest.warns(RecipeWarning) as caught:
        fit(tmp_path, ZeroFirstEpoch(), [ConfigureOptimizersCheck()])
    assert only_warning(caught) == (
        "A LambdaLR (interval='epoch') of lr-SGD makes every param group train at lr 0 on 7 of the run's 16 optimizer"
        " steps (steps 1 to 7), every step of the first epoch: those steps change no weight. Its lr is 0 until it"
        " first steps, and it steps once per epoch (interval='epoch'). If its schedule counts optimizer steps, step it"
        " after every optimizer step: {'scheduler': scheduler, 'interval': 'step'} (or `scheduled(scheduler,"
        " interval='step')`); if it counts epochs, start it above 0. If that is deliberate, silence this with"
        " `warnings.filterwarnings('ignore', '.*train at lr 0')`.")
    assert recipe_warning(caught).filename == __file__  # the module's configure_optimizers
    fit_silently(tmp_path, WarmsUpPerStep(), [ConfigureOptimizersCheck()])  # lr 0 at its first step only


# --------------------------------------------------------------------------- 2. a warm-up that never ends


def linear_warmup(warmup):
    return lambda step: min(1.0, (step + 1) / warmup)


class ClosureWarmup(Base):
    def __init__(self, interval: str) -> None:
        super().__init__()
        self.interval = interval

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        scheduler = LambdaLR(optimizer, linear_warmup(10))  # 10 optimizer steps
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.interval}}


class LinearWarmupCosineAnnealingLR(LRScheduler):
    """A linear warm-up then a cosine, over `warmup_epochs` and `max_epochs` of its steps, as several projects ship
    (written here from its documented behaviour)."""

    def __init__(self, optimizer, warmup_epochs, max_epochs, warmup_start_lr=0.0, eta_min=0.0):
        self.warmup_epochs, self.max_epochs = warmup_epochs, max_epochs
        self.warmup_start_lr, self.eta_min = warmup_start_lr, eta_min
        super().__init__(optimizer)

    def get_lr(self):
        t = self.last_epoch
        if t < self.warmup_epochs:
            return [self.warmup_start_lr + t * (base - self.warmup_start_lr) / max(1, self.warmup_epochs - 1)
                    for base in self.base_lrs]
        progress = (t - self.warmup_epochs) / max(1, self.max_epochs - self.warmup_epochs)
        return [self.eta_min + 0.5 * (base - self.eta_min) * (1 + math.cos(math.pi * progress))
                for base in self.base_lrs]


class ShippedWarmupCosine(Base):
    def __init__(self, interval: str) -> None:
        super().__init__()
        self.interval = interval

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=1e-3)
        steps = self.trainer.estimated_stepping_batches  # fed step counts
        scheduler = LinearWarmupCosineAnnealingLR(optimizer, warmup_epochs=4, max_epochs=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.interval}}


def test_a_warm_up_in_steps_stepped_per_epoch_warns(tmp_path):
    with pytest.warns(RecipeWarning) as caught:
        fit(tmp_path, ClosureWarmup("epoch"), [ConfigureOptimizersCheck()])
    assert only_warning(caught) == (
        "The LambdaLR scheduler never reaches the warm-up end (warmup=10): this run steps it 2 times (interval='epoch':"
        " once at the end of each epoch, over 2 epochs). Its numbers are in optimizer steps, but it has"
        " interval='epoch', so it steps once per epoch. Did you mean interval='step'? (`scheduled(scheduler,"
        " interval='step')`, or 'interval': 'step' in its dict). If that is deliberate, silence this with"
        " `warnings.filterwarnings('ignore', '.*scheduler never reaches')`.")
    fit_silently(tmp_path, ClosureWarmup("step"), [ConfigureOptimizersCheck()])


def test_a_shipped_warmup_cosine_fed_step_counts_stepped_per_epoch_warns(tmp_path):
    with pytest.warns(RecipeWarning) as caught:
        fit(tmp_path, ShippedWarmupCosine("epoch"), [ConfigureOptimizersCheck()])
    assert only_warning(caught) == (
        "The LinearWarmupCosineAnnealingLR scheduler is written for 16 scheduler steps (max_epochs=16), but this run"
        " steps it 2 times (interval='epoch': once at the end of each epoch, over 2 epochs): training ends 12.5% of"
        " the way through its schedule. Its numbers are in optimizer steps, but it has interval='epoch', so it steps"
        " once per epoch. Did you mean interval='step'? (`scheduled(scheduler, interval='step')`, or 'interval':"
        " 'step' in its dict). If that is deliberate, silence this with `warnings.filterwarnings('ignore',"
        " '.*scheduler is written for')`.")
    fit_silently(tmp_path, ShippedWarmupCosine("step"), [ConfigureOptimizersCheck()])


# --------------------------------------------------------------------------------- 3. the wrong unit


class TransformersLinear(Base):
    def __init__(self, sized_with: str) -> None:
        super().__init__()
        self.sized_with = sized_with

    def configure_optimizers(self):
        transformers = pytest.importorskip("transformers")
        optimizer = torch.optim.AdamW(self.parameters(), lr=1e-3)
        total = getattr(self.trainer, self.sized_with)
        scheduler = transformers.get_linear_schedule_with_warmup(optimizer, 1, num_training_steps=total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def test_a_transformers_schedule_sized_with_max_epochs_warns(tmp_path):
    with pytest.warns(RecipeWarning) as caught:
        fit(tmp_path, TransformersLinear("max_epochs"), [ConfigureOptimizersCheck()])
    assert only_warning(caught) == (
        "The LambdaLR scheduler is written for 2 scheduler steps (its lr_lambda's num_training_steps=2), but this run"
        " steps it 16 times (interval='step': after each optimizer step, over 2 epochs): its schedule ends after 2"
        " steps and the rest of the run trains past it. Likely cause: num_training_steps=2 is the run's max_epochs,"
        " but the schedule counts optimizer steps. Compute it from the run: `trainer.estimated_stepping_batches`"
        " (optimizer steps; it counts accumulation, devices, limit_train_batches and max_steps), e.g."
        " num_training_steps=16. If that is deliberate, silence this with `warnings.filterwarnings('ignore',"
        " '.*scheduler is written for')`.")
    fit_silently(tmp_path, TransformersLinear("estimated_stepping_batches"), [ConfigureOptimizersCheck()])


# ------------------------------------------------------------- 4. manual optimization, two optimizers per batch


class TwoOptimizersByHand(pl.LightningModule):
    """A GAN-like module stepping both optimizers on every batch and its cosine once per batch."""

    def __init__(self, size_with_both: bool) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.a, self.b = nn.Linear(4, 1), nn.Linear(4, 1)
        self.size_with_both = size_with_both

    def training_step(self, batch, batch_idx):
        opt_a, opt_b = self.optimizers()
        for optimizer, net in ((opt_a, self.a), (opt_b, self.b)):
            optimizer.zero_grad()
            self.manual_backward(net(batch[0]).pow(2).mean())
            optimizer.step()
        self.lr_schedulers().step()

    def configure_optimizers(self):
        opt_a = torch.optim.SGD(self.a.parameters(), lr=0.1)
        opt_b = torch.optim.SGD(self.b.parameters(), lr=0.1)
        t_max = self.trainer.max_steps if self.size_with_both else self.trainer.max_steps // 2
        return [opt_a, opt_b], [CosineAnnealingLR(opt_a, T_max=t_max)]


def test_manual_two_optimizers_sized_with_max_steps_warns_after_the_first_batch(tmp_path):
    with pytest.warns(RecipeWarning) as caught:
        fit(tmp_path, TwoOptimizersByHand(size_with_both=True), [SchedulerCadenceCheck(mode="warn",
                                                                                      print_report=False)],
            batches=100, max_epochs=-1, max_steps=16)
    assert only_warning(caught) == (
        "Scheduler 'lr-SGD' (CosineAnnealingLR of optimizer 0 (lr-SGD)) is written for 16 scheduler steps (T_max=16), but this run will step it about 8 times: under manual optimization"
        " `trainer.global_step` counts every optimizer's step, 2 per batch here, so max_steps=16 ends training after"
        " 8 batches, and the module steps this scheduler 1 time per batch. Its schedule stops 50% of the way through."
        " Size it with the steps it will take: 8 (`self.trainer.max_steps // 2` when every optimizer steps on every"
        " batch).")
    fit_silently(tmp_path, TwoOptimizersByHand(size_with_both=False), [SchedulerCadenceCheck(
        mode="warn", print_report=False)], batches=100, max_epochs=-1, max_steps=16)


# ------------------------------------------------------------------ 5. an lr set by hand from the batch count


class DecaysByHand(Base):
    """Sets its lr in `training_step` from a count, towards a floor of 0.1 of the peak over `max_steps`."""

    def __init__(self, count_batches: bool) -> None:
        super().__init__()
        self.count_batches = count_batches

    def training_step(self, batch, batch_idx):
        done = self.trainer.fit_loop.epoch_loop.total_batch_idx if self.count_batches else self.trainer.global_step
        for group in self.trainer.optimizers[0].param_groups:
            group["lr"] = 0.1 * max(0.1, 1 - done / self.trainer.max_steps)
        return super().training_step(batch, batch_idx)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_an_lr_set_by_hand_that_reaches_its_floor_early_warns_during_training(tmp_path):
    options = dict(batches=400, max_epochs=-1, max_steps=100, accumulate_grad_batches=4, logger=Recorder())
    with pytest.warns(RecipeWarning) as caught:  # batches count 4 times faster than the optimizer steps
        fit(tmp_path, DecaysByHand(count_batches=True), [LearningRateLogger()], **options)
    assert only_warning(caught) == (
        "The lr of lr-SGD has held at 0.01 (10.3% of its peak 0.097) since optimizer step 22 of the run's 100, after"
        " decaying at a steady rhythm: the decay is sized for a shorter run (22% of this one), for example counted in"
        " batches while the run counts optimizer steps (accumulation), or in a length the run does not have. Size it"
        " with the run's optimizer steps (`self.trainer.estimated_stepping_batches`). If the hold is deliberate,"
        " silence this with `warnings.filterwarnings('ignore', '.*has held at')`.")
    fit_silently(tmp_path, DecaysByHand(count_batches=False), [LearningRateLogger()], **options)


# ------------------------------------------------------------- 6. a manual scheduler that never steps


class ManualNeverSteps(pl.LightningModule):
    def __init__(self, steps_it: bool) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.layer, self.steps_it = nn.Linear(4, 1), steps_it

    def training_step(self, batch, batch_idx):
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward(self.layer(batch[0]).pow(2).mean())
        optimizer.step()

    def on_train_epoch_end(self):
        if self.steps_it:
            self.lr_schedulers().step()

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        return [optimizer], [torch.optim.lr_scheduler.StepLR(optimizer, 1)]


def test_a_manual_scheduler_that_never_steps_is_reported_at_its_first_interval(tmp_path):
    with pytest.raises(CadenceError, match=r"^Scheduler 'lr-SGD' \(StepLR of optimizer 0 \(lr-SGD\)\) has not stepped"
                                           r" at the start of epoch 1, although its"
                                           r" optimizer has stepped 8 times: its lr has not moved since training"
                                           r" began\."):
        fit(tmp_path, ManualNeverSteps(steps_it=False), [SchedulerCadenceCheck(print_report=False)], max_epochs=3)
    fit_silently(tmp_path, ManualNeverSteps(steps_it=True), [SchedulerCadenceCheck(print_report=False)],
                 max_epochs=3)


# --------------------------------------------------------------------------- advice right for the module


class StepsItByHand(Base):
    """Steps its warm-up by hand on every batch (and returns it, so Lightning also steps it each epoch)."""

    def training_step(self, batch, batch_idx):
        self.lr_schedulers().step()
        return super().training_step(batch, batch_idx)

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        return {"optimizer": optimizer, "lr_scheduler": LambdaLR(optimizer, linear_warmup(10))}


def test_a_scheduler_stepped_by_hand_gets_no_advice_to_step_it_per_step(tmp_path):
    """Lightning's cadence is not what the module runs: the checks before training say nothing (interval='step'
    would double its steps); the cadence check names the extra steps when training shows them."""
    with pytest.raises(CadenceError, match=r"has stepped 1 time after batch 0 of epoch 0, but its cadence expects 0\."
                                           r" Likely cause: it is also stepped by hand"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RecipeWarning)
            fit(tmp_path, StepsItByHand(), [SchedulerCadenceCheck(print_report=False)])


class Misplaced(Base):
    def __init__(self, key: str, value) -> None:
        super().__init__()
        self.key, self.value = key, value

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 1),
                self.key: self.value}


@pytest.mark.parametrize(("key", "value", "message"), [
    ("interval", "step", "The optimizer dict returned by `configure_optimizers` has 'interval' at its top level, where"
     " Lightning does not read it: 'interval' belongs to the scheduler. Move it into the 'lr_scheduler' dict:"
     " {'optimizer': optimizer, 'lr_scheduler': {'scheduler': scheduler, 'interval': 'step'}}."),
    ("frequency", 2, "The optimizer dict's 'frequency': 2 is Lightning 1.x's optimizer frequency (alternating several"
     " optimizers), which Lightning 2.0 removed; with one optimizer it alternates with nothing. If it is the"
     " scheduler's frequency, move it into the 'lr_scheduler' dict: {'optimizer': optimizer, 'lr_scheduler':"
     " {'scheduler': scheduler, 'frequency': 2}}; otherwise remove it."),
])
def test_a_scheduler_key_at_the_top_of_the_optimizer_dict_says_where_it_belongs(tmp_path, key, value, message):
    from lightning_optim_recipes import RecipeError

    with pytest.raises(RecipeError) as raised:
        fit(tmp_path, Misplaced(key, value), [ConfigureOptimizersCheck()], max_epochs=1)
    assert str(raised.value) == message


# ------------------------------------------------------------------------------------ no false alarms


class DQN(Base):
    """A Q-network and its target network, a copy updated from it (not by an optimizer), requiring grad."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        self.target_net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        self.target_net.load_state_dict(self.net.state_dict())

    def training_step(self, batch, batch_idx):
        return (self.net(batch[0]) - self.target_net(batch[0]).detach()).pow(2).mean() + super().training_step(
            batch, batch_idx)

    def configure_optimizers(self):
        return torch.optim.Adam(list(self.net.parameters()) + list(self.layer.parameters()), lr=1e-3)


class Ema(DQN):
    """A momentum copy under a name that says so, whose values have moved away from the online network's."""

    def __init__(self) -> None:
        super().__init__()
        with torch.no_grad():
            for p in self.target_net.parameters():
                p.mul_(0.5)


def test_a_target_network_is_not_a_parameter_in_no_optimizer(tmp_path):
    fit_silently(tmp_path, DQN(), [ConfigureOptimizersCheck()], max_epochs=1)
    fit_silently(tmp_path, Ema(), [ConfigureOptimizersCheck()], max_epochs=1)


class Custom(LRScheduler):
    """A user's scheduler that cannot be copied (it holds a lock)."""

    def __init__(self, optimizer):
        import threading

        self.lock = threading.Lock()
        super().__init__(optimizer)

    def get_lr(self):
        return [base * 0.5 ** self.last_epoch for base in self.base_lrs]


class UsesCustom(Base):
    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        return {"optimizer": optimizer, "lr_scheduler": Custom(optimizer)}


def test_a_scheduler_that_cannot_be_replayed_is_reported_as_not_checked_at_debug_level(tmp_path, caplog):
    with caplog.at_level("DEBUG", logger="lightning_optim_recipes"):
        fit_silently(tmp_path, UsesCustom(), [ConfigureOptimizersCheck()], max_epochs=1)
    assert [r.getMessage() for r in caplog.records if "not checked" in r.getMessage()] == [
        "The Custom cannot be copied to replay it (cannot pickle '_thread.lock' object): not checked before training."]


# -------------------------------------------------------------------- Lightning 1.x modules, without the mixin


class OneX(pl.LightningModule):
    """A Lightning 1.x GAN step: `training_step(batch, batch_idx, optimizer_idx)`."""

    def __init__(self) -> None:
        super().__init__()
        self.g, self.d = nn.Linear(4, 1), nn.Linear(4, 1)

    def training_step(self, batch, batch_idx, optimizer_idx):
        return (self.g if optimizer_idx == 0 else self.d)(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.g.parameters(), lr=0.1), torch.optim.SGD(self.d.parameters(), lr=0.1)


class OneXEpochEnd(Base):
    def training_epoch_end(self, outputs):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.parametrize(("model", "hooks", "base"), [
    (OneX, "`training_step` takes", "LightningModule"),
    (OneXEpochEnd, "`training_epoch_end` takes", "Base"),
])
def test_a_1x_module_without_the_mixin_gets_the_librarys_error_first(tmp_path, model, hooks, base):
    from lightning_optim_recipes import RecipeError

    with pytest.raises(RecipeError) as raised:
        fit(tmp_path, model(), [ConfigureOptimizersCheck()], max_epochs=1)
    assert str(raised.value) == (
        f"{model.__name__} is a Lightning 1.x module: {hooks} 1.x's arguments (`optimizer_idx`) or is gone in Lightning"
        f" 2.0, which calls it otherwise or refuses it. Add `AlternatingOptimizersMixin` to its bases to run it"
        f" unchanged: `class {model.__name__}(AlternatingOptimizersMixin, {base})` (from lightning_optim_recipes), or"
        " port each hook to its 2.x form.")


class OneXOneOptimizer(Base):
    """A 1.x `training_step(batch, batch_idx, optimizer_idx=0)` with one optimizer (AntixK/PyTorch-VAE, experiment.py):
    Lightning 2 refuses it; its preview does too, with the same error."""

    def training_step(self, batch, batch_idx, optimizer_idx=0):
        return super().training_step(batch, batch_idx)

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=0.005)
        return [optimizer], [torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.95)]


def test_the_preview_of_a_1x_module_refuses_it_as_the_fit_does(tmp_path):
    from lightning_optim_recipes import RecipeError, preview_schedule

    expected = (
        "OneXOneOptimizer is a Lightning 1.x module: `training_step` takes 1.x's arguments (`optimizer_idx`) or is gone"
        " in Lightning 2.0, which calls it otherwise or refuses it. Add `AlternatingOptimizersMixin` to its bases to"
        " run it unchanged: `class OneXOneOptimizer(AlternatingOptimizersMixin, Base)` (from lightning_optim_recipes),"
        " or port each hook to its 2.x form.")
    with pytest.raises(RecipeError) as raised:
        fit(tmp_path, OneXOneOptimizer(), [ConfigureOptimizersCheck()], max_epochs=1)
    assert str(raised.value) == expected
    with pytest.raises(RecipeError) as raised:
        preview_schedule(OneXOneOptimizer(), max_epochs=1, steps_per_epoch=2)
    assert str(raised.value) == expected
