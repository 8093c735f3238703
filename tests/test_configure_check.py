"""`ConfigureOptimizersCheck` (and `SchedulerCadenceCheck`, which runs the same checks) on modules that use no mixin;
and correct patterns from Lightning's documentation that must never raise."""

from __future__ import annotations

import warnings

import pytest
import torch
from helpers import TinyRegressor, loader, trainer
from torch.optim.lr_scheduler import ExponentialLR, ReduceLROnPlateau, StepLR

from lightning_optim_recipes import (
    ConfigureOptimizersCheck,
    OptimRecipeMixin,
    RecipeError,
    RecipeWarning,
    SchedulerCadenceCheck,
)

pytestmark = pytest.mark.trainer

CHECKS = [ConfigureOptimizersCheck, lambda: SchedulerCadenceCheck(print_report=False)]


class Typo(TinyRegressor):
    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        return {"optimizer": opt, "lr_schedular": StepLR(opt, 1)}


class WrongParamsKey(TinyRegressor):
    def configure_optimizers(self):
        return torch.optim.Adam([{"encoder_params": self.encoder.parameters()},
                                 {"params": self.decoder.parameters(), "lr": 1e-4}], lr=1e-3)


class ManualTypo(Typo):
    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False


@pytest.mark.parametrize("check", CHECKS, ids=["ConfigureOptimizersCheck", "SchedulerCadenceCheck"])
@pytest.mark.parametrize(("module", "error_msg"), [
    (Typo, r"^Unknown key 'lr_schedular' in the optimizer dict returned by `configure_optimizers`: did you mean"
           r" 'lr_scheduler'\?"),
    (WrongParamsKey, r"^Adam param group 0 has no 'params' key \(its keys: 'encoder_params'\)|^Param group 0 has no"
                     r" 'params' key \(its keys: 'encoder_params'\)"),
    (ManualTypo, r"^Unknown key 'lr_schedular'"),
])
def test_a_plain_module_is_checked_before_the_first_step(tmp_path, check, module, error_msg):
    model = module()
    with pytest.raises(RecipeError, match=error_msg):
        trainer(tmp_path, max_epochs=1, callbacks=[check()]).fit(model, loader(2))
    assert model.lr_log == []
    assert "configure_optimizers" not in model.__dict__  # the callback's wrapper is gone


class Plain(TinyRegressor):
    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        return [opt], [StepLR(opt, 1)]


def test_the_validated_setup_is_kept_and_the_module_left_as_it_was(tmp_path):
    check, model = ConfigureOptimizersCheck(), Plain()
    trainer(tmp_path, max_epochs=1, callbacks=[check]).fit(model, loader(2))
    assert [type(s.scheduler).__name__ for s in check.optimizer_setup.schedulers] == ["StepLR"]
    assert "configure_optimizers" not in model.__dict__ and len(model.lr_log) == 2


class RecipeModule(OptimRecipeMixin, TinyRegressor):
    optim_recipe = {"optimizer": "SGD", "lr": 0.1, "scheduler": {"type": "multistep", "milestones": [30]}}


def test_a_mixin_module_is_checked_once(tmp_path):
    with pytest.warns(RecipeWarning) as record:
        trainer(tmp_path, max_epochs=2, callbacks=[ConfigureOptimizersCheck(),
                                                   SchedulerCadenceCheck(print_report=False)]).fit(RecipeModule(),
                                                                                                   loader(2))
    assert len([w for w in record if "never reaches milestone 30" in str(w.message)]) == 1


# ---------------------------------------------------------------------------- no false alarm on correct code


class DocsManual(TinyRegressor):
    """Lightning's documented manual optimization: `[opt], [sched]`, the scheduler stepped by hand every batch."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        opt, sch = self.optimizers(), self.lr_schedulers()
        opt.zero_grad()
        self.manual_backward(super().training_step(batch, batch_idx))
        opt.step()
        sch.step()

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        return [opt], [ExponentialLR(opt, 0.9)]


def test_the_documented_manual_pattern_passes(tmp_path):
    check = SchedulerCadenceCheck(print_report=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        trainer(tmp_path, max_epochs=2, callbacks=[check]).fit(DocsManual(), loader(3))
    (row,) = check.report.schedulers
    assert (row.name, row.interval, row.expected, row.expected_max, row.actual) == ("lr-SGD", "epoch", 1, 6, 6)


class ManualPlateau(TinyRegressor):
    """The docs' manual `ReduceLROnPlateau`: no monitor, stepped with a training metric."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        loss = super().training_step(batch, batch_idx)
        self.log("loss", loss)
        opt.zero_grad()
        self.manual_backward(loss)
        opt.step()

    def on_train_epoch_end(self):
        self.lr_schedulers().step(self.trainer.callback_metrics["loss"])

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        return [opt], [ReduceLROnPlateau(opt)]


def test_a_manual_plateau_scheduler_needs_no_monitor(tmp_path):
    check = SchedulerCadenceCheck(print_report=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        trainer(tmp_path, max_epochs=2, callbacks=[check]).fit(ManualPlateau(), loader(2))
    assert [row.actual for row in check.report.schedulers] == [2]


class StageWise(TinyRegressor):
    """Two optimizers over the same parameters, one per stage; each stage's 'step' scheduler follows its optimizer."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        stage = 0 if self.current_epoch < 2 else 1
        opt, sch = self.optimizers()[stage], self.lr_schedulers()[stage]
        opt.zero_grad()
        self.manual_backward(super().training_step(batch, batch_idx))
        opt.step()
        sch.step()

    def configure_optimizers(self):
        warmup = torch.optim.SGD(self.parameters(), lr=0.1)
        finetune = torch.optim.Adam(self.parameters(), lr=1e-3)
        return [warmup, finetune], [{"scheduler": ExponentialLR(warmup, 0.9), "interval": "step"},
                                    {"scheduler": ExponentialLR(finetune, 0.9), "interval": "step"}]


def test_a_later_stage_scheduler_that_has_not_stepped_yet_is_not_late(tmp_path):
    check = SchedulerCadenceCheck(print_report=False)
    with pytest.warns(RecipeWarning, match="are in several optimizers"):  # shared on purpose: fine, and said once
        trainer(tmp_path, max_epochs=4, callbacks=[check]).fit(StageWise(), loader(3))
    # manual optimization: each only has to step at all (the second stage's first steps come at epoch 2)
    assert [(r.expected, r.actual) for r in check.report.schedulers] == [(1, 6), (1, 6)]


# ------------------------------------------------------------ hooks Lightning never calls under manual optimization


class ManualStepsTwice(TinyRegressor):
    """Manual optimization, and an `optimizer_step` override meant to step several times per batch (in the 1.x form
    `*args, **kwargs`, as Lightning's own PPO example writes it, or the 2.x form): Lightning never calls it."""

    def __init__(self, form: str) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.form = form

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        opt.zero_grad()
        self.manual_backward(super().training_step(batch, batch_idx))
        opt.step()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class OneXForm(ManualStepsTwice):
    def optimizer_step(self, *args, **kwargs):
        for _ in range(2):
            super().optimizer_step(*args, **kwargs)


class TwoXForm(ManualStepsTwice):
    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None):
        optimizer.step(closure=optimizer_closure)

    def lr_scheduler_step(self, scheduler, metric):
        scheduler.step()


@pytest.mark.parametrize(("module", "hooks", "them"), [
    (OneXForm, "`optimizer_step`", False),
    (TwoXForm, "`optimizer_step`, `lr_scheduler_step`", True),
])
def test_a_hook_lightning_never_calls_under_manual_optimization_is_named_not_refused_as_1x(tmp_path, module, hooks,
                                                                                          them):
    model = module("manual")
    with pytest.warns(RecipeWarning) as caught:  # both checking callbacks: one warning
        trainer(tmp_path, max_epochs=1, callbacks=[c() for c in CHECKS]).fit(model, loader(2))
    messages = [str(w.message) for w in caught if issubclass(w.category, RecipeWarning)]
    assert messages == [
        f"{module.__name__} overrides {hooks}, but under manual optimization (`self.automatic_optimization = False`)"
        f" Lightning never calls {'them' if them else 'it'}: {'their' if them else 'its'} code never runs. Do that"
        " work in `training_step` (call `opt.step()` as many times as you need, `sch.step()` where the schedule"
        f" should move, `self.clip_gradients(...)` before a step), or remove the override{'s' if them else ''}. If"
        " that is deliberate, silence this with `warnings.filterwarnings('ignore', '.*under manual optimization .*"
        " Lightning never calls')`."]
    assert next(w for w in caught if issubclass(w.category, RecipeWarning)).filename == __file__
    assert len(model.lr_log) == 2  # it trained: a 2.x module, not a 1.x one
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)  # the same module without the override: nothing to say
        trainer(tmp_path, max_epochs=1, callbacks=[c() for c in CHECKS]).fit(ManualStepsTwice("manual"), loader(2))


class Forwards(TinyRegressor):
    """Overrides that forward `*args, **kwargs` (Lightning's own tests do, tests/tests_pytorch/trainer/test_trainer.py;
    CLIP modules clamp their logit scale after each step so): Lightning 2 calls them, they are not 1.x hooks."""

    def __init__(self) -> None:
        super().__init__()
        self.logit_scale = torch.nn.Parameter(torch.ones([]) * 5)
        self.stepped = 0

    def training_step(self, batch, batch_idx):
        return super().training_step(batch, batch_idx) * self.logit_scale

    def optimizer_step(self, *args, **kwargs):
        super().optimizer_step(*args, **kwargs)
        self.logit_scale.data.clamp_(0, 4.6052)
        self.stepped += 1

    def backward(self, *args, **kwargs):
        return super().backward(*args, **kwargs)

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        return [optimizer], [StepLR(optimizer, step_size=1)]


@pytest.mark.parametrize("check", CHECKS, ids=["ConfigureOptimizersCheck", "SchedulerCadenceCheck"])
def test_hooks_that_forward_their_arguments_are_not_refused_as_1x(tmp_path, check):
    model = Forwards()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        trainer(tmp_path, max_epochs=2, accumulate_grad_batches=2, callbacks=[check()]).fit(model, loader(3))
    assert [(epoch, batch) for epoch, batch, _ in model.lr_log] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert [lrs for _, batch, lrs in model.lr_log if batch == 0] == [(0.1,), (0.1 * 0.1,)]  # StepLR per epoch
    assert model.stepped == 4  # its optimizer_step ran at each optimizer step: 2 per epoch (3 batches, 2 a window)
