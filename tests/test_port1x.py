"""Lightning 1.x multi-optimizer modules under `AlternatingOptimizersMixin`, unchanged but for the mixin in their bases:
every 1.x hook that took `optimizer_idx` is called where and as Lightning 1.9 called it. The expected values are
those Lightning 1.9.5 gives for the same modules (its own tests, rewritten here; see the README's porting table)."""

from __future__ import annotations

import warnings

import pytest
import torch
from helpers import Recorder, pl, trainer
from torch import nn
from torch.utils.data import DataLoader

from lightning_optim_recipes import (
    AlternatingOptimizersMixin,
    LearningRateLogger,
    RecipeError,
    RecipeWarning,
    SchedulerCadenceCheck,
)

pytestmark = pytest.mark.trainer


def data(batches: int, features: int = 32) -> DataLoader:
    return DataLoader(torch.randn(batches, features, generator=torch.Generator().manual_seed(0)), batch_size=1)


class Boring(pl.LightningModule):
    """Lightning 1.9's `BoringModel`, in short: one Linear(32, 2), an MSE loss against ones, a dict output."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(32, 2)

    def step(self, batch):
        out = self.layer(batch)
        return nn.functional.mse_loss(out, torch.ones_like(out))

    def training_step(self, batch, batch_idx):
        return {"loss": self.step(batch)}

    def configure_optimizers(self):
        return torch.optim.SGD(self.layer.parameters(), lr=0.1)


# --------------------------------------------------------------------------------------- 1. optimizer_step


class WarmUp(AlternatingOptimizersMixin, pl.LightningModule):
    """The 1.x docs' learning-rate warm-up: step, then set every group's lr from `global_step`."""

    def __init__(self, warmup: int = 4, lr: float = 1.0) -> None:
        super().__init__()
        self.learning_rate, self.warmup = lr, warmup
        self.layer = nn.Linear(2, 1)
        self.used: list[float] = []

    def training_step(self, batch, batch_idx):
        return self.layer(batch).pow(2).mean()

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_idx, optimizer_closure, on_tpu=False,
                       using_native_amp=False, using_lbfgs=False):
        self.used.append(optimizer.param_groups[0]["lr"])  # the lr this step runs at
        optimizer.step(closure=optimizer_closure)
        if self.trainer.global_step < self.warmup:
            lr_scale = min(1.0, float(self.trainer.global_step + 1) / self.warmup)
            for pg in optimizer.param_groups:
                pg["lr"] = lr_scale * self.learning_rate

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.learning_rate)


def test_warmup_override_sets_the_lr_each_step_uses_logs_and_the_check_accepts(tmp_path):
    model, logger, check = WarmUp(), Recorder(), SchedulerCadenceCheck(print_report=False)
    fit = trainer(tmp_path, max_epochs=2, logger=logger, log_every_n_steps=1,
                  callbacks=[LearningRateLogger(logging_interval="step"), check])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        fit.fit(model, data(3, features=2))
    # step 0 runs at the optimizer's lr 1.0; after it, with global_step = k < 4, the lr is (k + 1) / 4
    assert model.used == [1.0, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert [(step, metrics["lr-SGD"]) for step, metrics in logger.records] == [
        (0, 1.0), (1, 0.5), (2, 0.75), (3, 1.0), (4, 1.0), (5, 1.0)]
    assert fit.global_step == 6 and model.optimizer_step_counts == (6,)
    assert [(o.expected, o.actual) for o in check.report.optimizers] == [(None, 6)]


class EveryOtherDiscriminatorStep(AlternatingOptimizersMixin, pl.LightningModule):
    """The 1.x docs' custom alternation: the generator steps every batch, the discriminator every 2nd; on the other
    batches the closure runs alone (training step and backward, no step)."""

    def __init__(self) -> None:
        super().__init__()
        self.g = nn.Parameter(torch.zeros(1))
        self.d = nn.Parameter(torch.zeros(1))
        self.calls: list[tuple[int, int, str]] = []

    def training_step(self, batch, batch_idx, optimizer_idx):
        x = float(batch_idx + 1)
        self.calls.append((batch_idx, optimizer_idx, "step"))
        return ((self.g if optimizer_idx == 0 else self.d) * x).sum()

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_idx, optimizer_closure, on_tpu=False,
                       using_native_amp=False, using_lbfgs=False):
        if optimizer_idx == 0:
            optimizer.step(closure=optimizer_closure)
        if optimizer_idx == 1:
            if (batch_idx + 1) % 2 == 0:
                optimizer.step(closure=optimizer_closure)
            else:
                optimizer_closure()

    def configure_optimizers(self):
        return torch.optim.SGD([self.g], lr=1.0), torch.optim.SGD([self.d], lr=1.0)


def test_discriminator_every_2_steps(tmp_path):
    model = EveryOtherDiscriminatorStep()
    fit = trainer(tmp_path, max_epochs=1)
    fit.fit(model, data(4, features=1))
    assert model.calls == [(b, i, "step") for b in range(4) for i in (0, 1)]  # both train on every batch
    # g steps on every batch by -(b + 1); d only on batches 1 and 3, each on its own batch's gradient (zero_grad at
    # every closure: nothing carries over from the batches whose closure ran alone)
    assert model.g.item() == -(1 + 2 + 3 + 4) and model.d.item() == -(2 + 4)
    assert fit.global_step == 6
    assert model.optimizer_step_counts == (4, 4)  # turns closed: the override decided how often to step


class PPOLike(AlternatingOptimizersMixin, pl.LightningModule):
    """lightning-bolts' PPO: two optimizers, each stepped `nb_optim_iters` times per batch."""

    def __init__(self, nb_optim_iters: int = 4) -> None:
        super().__init__()
        self.nb_optim_iters = nb_optim_iters
        self.actor, self.critic = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
        self.steps = 0

    def training_step(self, batch, batch_idx, optimizer_idx):
        return (self.actor if optimizer_idx == 0 else self.critic).sum()

    def optimizer_step(self, *args, **kwargs):
        for _ in range(self.nb_optim_iters):
            super().optimizer_step(*args, **kwargs)  # 1.x arguments, through the mixin to Lightning's hook
            self.steps += 1

    def configure_optimizers(self):
        return torch.optim.SGD([self.actor], lr=1.0), torch.optim.SGD([self.critic], lr=0.5)


def test_k_optimizer_steps_per_batch(tmp_path):
    model = PPOLike(nb_optim_iters=4)
    fit = trainer(tmp_path, max_epochs=1, callbacks=[SchedulerCadenceCheck(print_report=False)])
    fit.fit(model, data(3, features=1))
    assert model.steps == 3 * 2 * 4 and fit.global_step == 24
    assert model.actor.item() == -12.0 and model.critic.item() == -6.0  # 12 steps each, gradient 1


class NoClosure(EveryOtherDiscriminatorStep):
    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_idx, optimizer_closure, **kwargs):
        optimizer.step()  # forgets the closure


def test_an_override_that_never_runs_the_closure(tmp_path):
    with pytest.raises(RecipeError, match=r"^NoClosure\.optimizer_step did not run the closure of optimizer 0: the"
                       r" closure hasn't been executed\. HINT: did you call `optimizer_closure\(\)` in your"
                       r" `optimizer_step` hook\?"):
        trainer(tmp_path, max_epochs=1).fit(NoClosure(), data(2, features=1))


# ------------------------------------------------------------------------------------- 2. the other hooks


class EveryHook(AlternatingOptimizersMixin, pl.LightningModule):
    """Overrides every 1.x hook that took `optimizer_idx` and records each call with its arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(1, 1), nn.Linear(1, 1)
        self.calls: list[tuple] = []

    def _name(self, optimizer):
        raw = getattr(optimizer, "optimizer", optimizer)
        return {id(self._opts[0]): "A", id(self._opts[1]): "B"}[id(raw)]

    def training_step(self, batch, batch_idx, optimizer_idx):
        self.calls.append(("training_step", batch_idx, optimizer_idx))
        return (self.a if optimizer_idx == 0 else self.b)(batch).sum()

    def toggle_optimizer(self, optimizer, optimizer_idx):
        self.calls.append(("toggle_optimizer", self._name(optimizer), optimizer_idx))
        super().toggle_optimizer(optimizer, optimizer_idx)

    def untoggle_optimizer(self, optimizer_idx):
        self.calls.append(("untoggle_optimizer", optimizer_idx))
        super().untoggle_optimizer(optimizer_idx)

    def optimizer_zero_grad(self, epoch, batch_idx, optimizer, optimizer_idx):
        self.calls.append(("optimizer_zero_grad", epoch, batch_idx, self._name(optimizer), optimizer_idx))
        optimizer.zero_grad()

    def backward(self, loss, optimizer, optimizer_idx, *args, **kwargs):
        self.calls.append(("backward", self._name(optimizer), optimizer_idx))
        super().backward(loss, optimizer, optimizer_idx, *args, **kwargs)

    def on_before_optimizer_step(self, optimizer, optimizer_idx):
        self.calls.append(("on_before_optimizer_step", self._name(optimizer), optimizer_idx))

    def configure_gradient_clipping(self, optimizer, optimizer_idx, gradient_clip_val=None,
                                    gradient_clip_algorithm=None):
        self.calls.append(("configure_gradient_clipping", self._name(optimizer), optimizer_idx, gradient_clip_val,
                           gradient_clip_algorithm))
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def lr_scheduler_step(self, scheduler, optimizer_idx, metric):
        self.calls.append(("lr_scheduler_step", type(scheduler).__name__, optimizer_idx, metric))
        super().lr_scheduler_step(scheduler, optimizer_idx, metric)

    def configure_optimizers(self):
        self._opts = (torch.optim.SGD(self.a.parameters(), lr=0.1), torch.optim.SGD(self.b.parameters(), lr=0.1))
        step = torch.optim.lr_scheduler.StepLR(self._opts[1], 1)
        return list(self._opts), [{"scheduler": step, "interval": "step"}]


def test_each_1x_hook_is_called_with_1x_arguments_where_1x_called_it(tmp_path):
    model = EveryHook()
    model.gradient_clip_val = (0.5, None)
    trainer(tmp_path, max_epochs=1).fit(model, data(1, features=1))
    turn = lambda name, idx: [  # noqa: E731 - one optimizer's turn, as in Lightning 1.9.5
        ("toggle_optimizer", name, idx),
        ("training_step", 0, idx),
        ("optimizer_zero_grad", 0, 0, name, idx),
        ("backward", name, idx),
        ("on_before_optimizer_step", name, idx),
        ("configure_gradient_clipping", name, idx, 0.5 if idx == 0 else None, "norm" if idx == 0 else None),
        ("untoggle_optimizer", idx),
    ]
    assert model.calls == turn("A", 0) + turn("B", 1) + [("lr_scheduler_step", "StepLR", 1, None)]


# ------------------------------------------------------------------------------------ 3. super().training_step


class SuperStep(AlternatingOptimizersMixin, Boring):
    seen = None

    def training_step(self, batch, batch_idx, optimizer_idx):
        self.seen = (self.seen or []) + [optimizer_idx]
        out = super().training_step(batch, batch_idx)  # the base class's 2.x step
        return out

    def configure_optimizers(self):
        return torch.optim.SGD(self.layer.parameters(), lr=0.001), torch.optim.Adam(self.layer.parameters(), lr=0.001)


def test_super_training_step_reaches_the_base_class(tmp_path):
    model = SuperStep()
    with pytest.warns(RecipeWarning, match=r"2 parameters are in several optimizers \('layer\.weight',"
                      r" 'layer\.bias': optimizers 0, 1\)"):
        fit = trainer(tmp_path, max_epochs=1)
        fit.fit(model, data(2))
    assert model.seen == [0, 1, 0, 1] and fit.global_step == 4


# ------------------------------------------------------------------------------------ 4. shared parameters


class SharedToggle(AlternatingOptimizersMixin, Boring):
    """Three optimizers over three 2-layer stacks, each stack in two optimizers (Lightning 1.9's toggle test)."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2, self.l3 = (nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)) for _ in range(3))
        self.l1[1].weight.requires_grad_(False)  # frozen before training: stays frozen in every turn
        self.states: list[tuple[int, tuple[bool, ...]]] = []

    def training_step(self, batch, batch_idx, optimizer_idx):
        grads = tuple(p.requires_grad for stack in (self.l1, self.l2, self.l3) for p in (stack[0].weight,
                                                                                       stack[1].weight))
        self.states.append((optimizer_idx, grads))
        return super().training_step(batch, batch_idx)

    def configure_optimizers(self):
        return [
            torch.optim.SGD([*self.l1.parameters(), *self.l2.parameters()], lr=0.1),
            torch.optim.Adam([*self.l2.parameters(), *self.l3.parameters()], lr=0.1),
            torch.optim.SGD([*self.l3.parameters(), *self.l1.parameters()], lr=0.1),
        ]


def test_a_shared_parameter_requires_grad_in_the_turn_of_every_optimizer_that_holds_it(tmp_path):
    model = SharedToggle()
    with pytest.warns(RecipeWarning, match="are in several optimizers"):
        trainer(tmp_path, max_epochs=1).fit(model, data(1))
    # (l1[0], l1[1] frozen, l2[0], l2[1], l3[0], l3[1]); Boring.layer is in no optimizer and never toggled
    assert model.states == [
        (0, (True, False, True, True, False, False)),
        (1, (False, False, True, True, True, True)),
        (2, (True, False, False, False, True, True)),
    ]
    assert model.layer.weight.requires_grad and not model.l1[1].weight.requires_grad


# ------------------------------------------------------------------------------------ 5. smaller gaps


class FrequencyNone(AlternatingOptimizersMixin, Boring):
    def training_step(self, batch, batch_idx, optimizer_idx):
        return super().training_step(batch, batch_idx)

    def configure_optimizers(self):
        return ({"optimizer": torch.optim.SGD(self.layer.parameters(), lr=0.1), "frequency": None},
                {"optimizer": torch.optim.SGD(self.layer.parameters(), lr=0.1), "frequency": None})


def test_frequency_none_means_every_optimizer_on_every_batch(tmp_path):
    fit = trainer(tmp_path, max_epochs=1)
    with pytest.warns(RecipeWarning, match="several optimizers"):
        fit.fit(model := FrequencyNone(), data(3))
    assert model.optimizer_step_counts == (3, 3) and fit.global_step == 6


class Manual13(AlternatingOptimizersMixin, pl.LightningModule):
    """A Lightning 1.3-era manual module: it sets manual optimization itself and still takes `optimizer_idx`."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.a = nn.Linear(1, 1)

    def training_step(self, batch, batch_idx, optimizer_idx):
        opt = self.optimizers()
        self.manual_backward(self.a(batch).sum())
        opt.step()

    def configure_optimizers(self):
        return torch.optim.SGD(self.a.parameters(), lr=0.1)


def test_a_1_3_manual_module_is_refused_before_training(tmp_path):
    model = Manual13()
    with pytest.raises(RecipeError, match=r"^Manual13 sets `self\.automatic_optimization = False` and steps its"
                       r" optimizers itself .* Remove the mixin: on Lightning 2 drop `optimizer_idx`"):
        trainer(tmp_path, max_epochs=1).fit(model, data(2, features=1))
    assert model.a.weight.grad is None


class OldHooks(SuperStep):
    def on_epoch_end(self):
        raise AssertionError("Lightning 2 never calls it")

    def on_batch_start(self, batch):
        raise AssertionError("Lightning 2 never calls it")


def test_hooks_lightning_2_stopped_calling_are_named_at_fit_start(tmp_path):
    with pytest.warns(RecipeWarning) as record:
        trainer(tmp_path, max_epochs=1).fit(OldHooks(), data(1))
    messages = [str(w.message) for w in record if "never calls" in str(w.message)]
    assert messages == [
        "OldHooks defines `on_epoch_end`, a Lightning 1.x hook that Lightning 2 never calls: its code does not run."
        " Move it to `on_train_epoch_end` (and `on_validation_epoch_end`, ...).",
        "OldHooks defines `on_batch_start`, a Lightning 1.x hook that Lightning 2 never calls: its code does not"
        " run. Move it to `on_train_batch_start(self, batch, batch_idx)`.",
    ]


class EpochEnd1x(SuperStep):
    def training_step_end(self, outputs):
        self.step_ends = getattr(self, "step_ends", 0) + 1
        return {"loss": outputs["loss"], "twice": 2 * outputs["loss"].detach()}

    def training_epoch_end(self, outputs):
        self.layout = [[sorted(o) for o in batch] for batch in outputs]


def test_training_step_end_and_training_epoch_end_are_ported(tmp_path):
    model = EpochEnd1x()
    with pytest.warns(RecipeWarning, match="several optimizers"):
        trainer(tmp_path, max_epochs=1).fit(model, data(3))
    assert model.step_ends == 6
    assert model.layout == [[["loss", "twice"], ["loss", "twice"]]] * 3  # outputs[batch][optimizer], as in 1.9


# ------------------------------------------------------------------------------------ 6. plateau and validation


class PlateauOnValidation(AlternatingOptimizersMixin, Boring):
    def __init__(self) -> None:
        super().__init__()
        self.metrics_seen: list[float] = []

    def training_step(self, batch, batch_idx, optimizer_idx):
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", float(self.trainer.fit_loop.epoch_loop.batch_idx))  # which batch it validated after

    def lr_scheduler_step(self, scheduler, metric):
        self.metrics_seen.append(float(metric))
        super().lr_scheduler_step(scheduler, metric)

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.layer.parameters(), lr=0.1)
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
        return [opt], [{"scheduler": plateau, "interval": "step", "monitor": "val_loss", "strict": False}]


def test_a_step_plateau_scheduler_steps_after_the_validation_of_its_batch(tmp_path):
    model = PlateauOnValidation()
    fit = trainer(tmp_path, max_epochs=1, val_check_interval=2, limit_val_batches=1)
    with pytest.warns(RuntimeWarning, match=r"monitors 'val_loss', which is not logged .* Skipping this step"):
        fit.fit(model, data(4), data(1))
    # validation runs after batches 1 and 3; the scheduler steps after each batch's validation, as Lightning steps
    # it: batch 0 finds no metric yet (skipped, strict=False), batches 1 and 3 read their own validation's value,
    # batch 2 the last one
    assert model.metrics_seen == [1.0, 1.0, 3.0]


# ------------------------------------------------------------------ Lightning 1.9.5's own checks, rewritten


class TwoFrequencies(AlternatingOptimizersMixin, Boring):
    def __init__(self, frequencies) -> None:
        super().__init__()
        self.frequencies = frequencies

    def training_step(self, batch, batch_idx, optimizer_idx):
        return super().training_step(batch, batch_idx)

    def configure_optimizers(self):
        return ({"optimizer": torch.optim.SGD(self.parameters(), lr=0.1), "frequency": self.frequencies[0]},
                {"optimizer": torch.optim.Adam(self.parameters(), lr=0.1), "frequency": self.frequencies[1]})


@pytest.mark.parametrize(("frequencies", "expected"), [
    ((3, 1), [(0, "SGD")] * 3 + [(1, "Adam")] + [(0, "SGD")] * 3 + [(1, "Adam")] + [(0, "SGD")] * 2),
    ((1, 2), [(0, "SGD"), (1, "Adam"), (1, "Adam")] * 3 + [(0, "SGD")]),
])
def test_optimizer_frequencies_with_a_mocked_optimizer_step(tmp_path, frequencies, expected):
    from unittest.mock import Mock

    model = TwoFrequencies(frequencies)
    model.optimizer_step = Mock(wraps=model.optimizer_step)  # an instance attribute, called as 1.9 called it
    with pytest.warns(RecipeWarning, match="several optimizers"):
        trainer(tmp_path, max_epochs=1).fit(model, data(10))
    calls = [call.args for call in model.optimizer_step.call_args_list]
    assert [(args[3], type(args[2].optimizer).__name__) for args in calls] == expected
    assert all(isinstance(args[2], pl.core.optimizer.LightningOptimizer) and callable(args[4]) for args in calls)


class CountingSteps(AlternatingOptimizersMixin, Boring):
    """1.9's `test_custom_optimizer_step_with_multiple_optimizers`."""

    def __init__(self) -> None:
        super().__init__()
        self.layer_a, self.layer_b = nn.Linear(32, 2), nn.Linear(32, 2)
        self.training_step_called, self.optimizer_step_called = [0, 0], [0, 0]

    def training_step(self, batch, batch_idx, optimizer_idx):
        self.training_step_called[optimizer_idx] += 1
        x = (self.layer_a if optimizer_idx == 0 else self.layer_b)(batch)
        return nn.functional.mse_loss(x, torch.ones_like(x))

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_idx, optimizer_closure, **_):
        if optimizer_idx == 0 or batch_idx % 2 == 0:
            self.optimizer_step_called[optimizer_idx] += 1
            optimizer.step(closure=optimizer_closure)
        else:
            optimizer_closure()

    def configure_optimizers(self):
        return (torch.optim.SGD(self.layer_a.parameters(), lr=0.001),
                torch.optim.SGD(self.layer_b.parameters(), lr=0.001))


def test_custom_optimizer_step_with_multiple_optimizers(tmp_path):
    model = CountingSteps()
    with warnings.catch_warnings():  # Boring's `layer` is in no optimizer, but no loss reaches it: nothing to say
        warnings.simplefilter("error", RecipeWarning)
        trainer(tmp_path, max_epochs=1).fit(model, data(4))
    assert model.training_step_called == [4, 4] and model.optimizer_step_called == [4, 2]


class Toggled(AlternatingOptimizersMixin, Boring):
    """1.9's `test_toggle_untoggle_2_optimizers_no_shared_parameters`: renamed arguments, accumulation of 2."""

    def __init__(self) -> None:
        super().__init__()
        self.layer_1 = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 32))
        self.layer_2 = nn.Sequential(nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                                     nn.Linear(32, 2))
        for frozen in (self.layer_1[2], self.layer_1[4], self.layer_2[1], self.layer_2[3]):
            frozen.weight.requires_grad = False
        self.stepped: list[tuple[int, int]] = []

    def training_step(self, batch, batch_idx, optimizer_idx=None):
        return super().training_step(batch, batch_idx)

    def optimizer_step(self, current_epoch, batch_nb, optimizer, optimizer_idx, closure, on_tpu=False,
                       using_lbfgs=False):
        flags = [self.layer_1[i].weight.requires_grad for i in (0, 2, 4)] + [
            self.layer_2[i].weight.requires_grad for i in (1, 3, 5)]
        expected = [True, False, False, False, False, False] if optimizer_idx == 0 else [
            False, False, False, False, False, True]
        assert flags == expected, (optimizer_idx, flags)
        self.stepped.append((batch_nb, optimizer_idx))
        optimizer.step(closure=closure)

    def configure_optimizers(self):
        return [torch.optim.SGD(self.layer_1.parameters(), lr=0.1),
                torch.optim.Adam(self.layer_2.parameters(), lr=0.1)]


def test_toggle_two_optimizers_with_trainer_accumulation(tmp_path):
    model = Toggled()
    with pytest.warns(RecipeWarning, match="trainable parameter"):
        trainer(tmp_path, max_epochs=1, accumulate_grad_batches=2).fit(model, data(8))
    assert model.stepped == [(b, i) for b in (1, 3, 5, 7) for i in (0, 1)]


class ZeroGradCounts(AlternatingOptimizersMixin, Boring):
    """1.9's `optimizer_zero_grad` and `optimizer_step` tests of `LightningOptimizer`."""

    def __init__(self, own_step: bool) -> None:
        super().__init__()
        self.own_step = own_step
        self.zero_grads = {"SGD": 0, "Adam": 0}
        self.steps = {"SGD": 0, "Adam": 0}

    def training_step(self, batch, batch_idx, optimizer_idx=None):
        return super().training_step(batch, batch_idx)

    def on_before_zero_grad(self, optimizer):
        self.zero_grads[type(optimizer).__name__] += 1

    def optimizer_zero_grad(self, epoch, batch_idx, optimizer, optimizer_idx):
        if self.own_step:
            optimizer.zero_grad()
        elif (type(optimizer).__name__, batch_idx % (2 if optimizer_idx == 0 else 5)) in (("SGD", 0), ("Adam", 0)):
            self.steps[type(optimizer).__name__] += 1  # counts the zero_grad calls it lets through
            optimizer.zero_grad()

    def configure_optimizers(self):
        return [torch.optim.SGD(self.layer.parameters(), lr=0.1), torch.optim.Adam(self.layer.parameters(), lr=0.1)]


class OwnStep(ZeroGradCounts):
    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_idx, optimizer_closure, **_):
        optimizer_closure()
        name = type(optimizer.optimizer).__name__
        if (name == "SGD" and batch_idx % 2 == 0) or (name == "Adam" and batch_idx % 4 == 0):
            self.steps[name] += 1
            optimizer.step()


def test_optimizer_zero_grad_override(tmp_path):
    model = ZeroGradCounts(own_step=False)
    with pytest.warns(RecipeWarning, match="several optimizers"):
        trainer(tmp_path, max_epochs=1).fit(model, data(20))
    assert model.steps == {"SGD": 10, "Adam": 4}  # its own rule: SGD on even batches, Adam every 5th
    assert model.zero_grads == {"SGD": 20, "Adam": 20}  # the hook is reached on every batch, for every optimizer


def test_optimizer_step_override_running_the_closure_then_stepping(tmp_path):
    model = OwnStep(own_step=True)
    with pytest.warns(RecipeWarning, match="several optimizers"):
        trainer(tmp_path, max_epochs=1).fit(model, data(8))
    assert model.steps == {"SGD": 4, "Adam": 2} and model.zero_grads == {"SGD": 8, "Adam": 8}


class LBFGSModule(AlternatingOptimizersMixin, Boring):
    zero_grads = evaluations = 0

    def training_step(self, batch, batch_idx):
        self.evaluations += 1
        return super().training_step(batch, batch_idx)

    def on_before_zero_grad(self, optimizer):
        self.zero_grads += 1

    def configure_optimizers(self):
        return torch.optim.LBFGS(self.layer.parameters())


def test_lbfgs_reevaluates_the_closure_with_zero_grad_each_time(tmp_path):
    model = LBFGSModule()
    trainer(tmp_path, max_epochs=1).fit(model, data(1))
    # LBFGS evaluates the closure several times in its one step: each evaluation runs the step and zero_grad
    assert model.evaluations > 1 and model.zero_grads == model.evaluations


class StepReturnsTheLoss(AlternatingOptimizersMixin, Boring):
    def training_step(self, batch, batch_idx, optimizer_idx):
        self.last_loss = self.step(batch)
        return self.last_loss

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_idx, optimizer_closure, **_):
        assert optimizer.state is optimizer.optimizer.state and all("lr" in g for g in optimizer.param_groups)
        self.returned = optimizer.step(closure=optimizer_closure)

    def configure_optimizers(self):
        return [torch.optim.SGD(self.layer.parameters(), lr=0.1), torch.optim.Adam(self.layer.parameters(), lr=0.1)]


def test_optimizer_step_returns_the_closures_loss(tmp_path):
    model = StepReturnsTheLoss()
    with pytest.warns(RecipeWarning, match="several optimizers"):
        trainer(tmp_path, max_epochs=1).fit(model, data(1))
    assert torch.equal(model.returned, model.last_loss.detach())


class TwoAdamsTwoStepLRs(SuperStep):
    def configure_optimizers(self):
        first, second = (torch.optim.Adam(self.parameters(), lr=5e-4) for _ in range(2))
        return [first, second], [torch.optim.lr_scheduler.StepLR(first, 1), torch.optim.lr_scheduler.StepLR(second, 1)]


def test_each_epoch_scheduler_steps_once_per_epoch(tmp_path):
    model = TwoAdamsTwoStepLRs()
    with pytest.warns(RecipeWarning, match="several optimizers"):
        fit = trainer(tmp_path, max_epochs=1)
        fit.fit(model, data(12))
    assert [g["lr"] for o in fit.optimizers for g in o.param_groups] == [5e-4 * 0.1, 5e-4 * 0.1]


class OneCycles(SuperStep):
    def __init__(self, frequencies, totals) -> None:
        super().__init__()
        self.frequencies, self.totals = frequencies, totals

    def configure_optimizers(self):
        opts = [torch.optim.Adam(self.parameters(), lr=0.01) for _ in range(2)]
        return [{"optimizer": o, "frequency": f, "lr_scheduler": {
            "scheduler": torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.01, total_steps=t), "interval": "step"}}
            for o, f, t in zip(opts, self.frequencies, self.totals)]


@pytest.mark.parametrize(("frequencies", "totals", "expected"), [((3, 2), (3, 2), [4, 3]), ((None, None), (5, 5), [6, 6])])
def test_step_schedulers_follow_their_optimizers_turns(tmp_path, frequencies, totals, expected):
    model = OneCycles(frequencies, totals)
    with pytest.warns(RecipeWarning, match="several optimizers"):
        fit = trainer(tmp_path, max_epochs=1)
        fit.fit(model, data(5))
    assert [config.scheduler._step_count for config in fit.lr_scheduler_configs] == expected


class CustomEpochScheduler:
    def __init__(self, optimizer) -> None:
        self.optimizer, self.epochs = optimizer, []

    def step(self, epoch):
        self.epochs.append(epoch)

    def state_dict(self):
        return {}

    def load_state_dict(self, state_dict):
        pass


class SchedulerStepHook(SuperStep):
    def lr_scheduler_step(self, scheduler, optimizer_idx, metric):
        if optimizer_idx == 0:
            super().lr_scheduler_step(scheduler, optimizer_idx, metric)
        if optimizer_idx == 1:
            scheduler.step(epoch=self.current_epoch)

    def configure_optimizers(self):
        first, second = (torch.optim.SGD(self.layer.parameters(), lr=1e-2) for _ in range(2))
        self.custom = CustomEpochScheduler(second)
        return [{"optimizer": first, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.StepLR(first, 1),
                                                       "interval": "step"}},
                {"optimizer": second, "lr_scheduler": self.custom}]


def test_lr_scheduler_step_with_the_optimizer_index(tmp_path):
    model = SchedulerStepHook()
    with pytest.warns(RecipeWarning, match="several optimizers"):
        fit = trainer(tmp_path, max_epochs=3)
        fit.fit(model, data(2))
    assert model.custom.epochs == [0, 1, 2]
    assert fit.lr_scheduler_configs[0].scheduler._step_count == 3 * 2 + 1


class NoOptimizerIdx(AlternatingOptimizersMixin, Boring):
    def configure_optimizers(self):
        return torch.optim.SGD(self.layer.parameters(), lr=0.1), torch.optim.SGD(self.layer.parameters(), lr=0.1)


def test_two_optimizers_without_optimizer_idx(tmp_path):
    with pytest.raises(ValueError, match="`training_step` is missing the `optimizer_idx`"):
        with pytest.warns(RecipeWarning, match="several optimizers"):
            trainer(tmp_path, max_epochs=1).fit(NoOptimizerIdx(), data(2))


class Logging(SuperStep):
    losses = None

    def training_step(self, batch, batch_idx, optimizer_idx):
        out = super().training_step(batch, batch_idx, optimizer_idx)
        loss = out["loss"]
        self.log(f"loss_{optimizer_idx}", loss, on_epoch=True)
        self.losses = self.losses or {0: [], 1: []}
        self.losses[optimizer_idx].append(loss.detach())
        return out


def test_unbalanced_logging_with_multiple_optimizers(tmp_path):
    model = Logging()
    with pytest.warns(RecipeWarning, match="several optimizers"):
        fit = trainer(tmp_path, max_epochs=1)
        fit.fit(model, data(5))
    for k, losses in model.losses.items():
        assert len(losses) == 5
        assert torch.equal(fit.callback_metrics[f"loss_{k}_step"], losses[-1])
        torch.testing.assert_close(fit.callback_metrics[f"loss_{k}_epoch"], torch.stack(losses).mean())


class ClipHook(AlternatingOptimizersMixin, Boring):
    def configure_gradient_clipping(self, optimizer, optimizer_idx, gradient_clip_val, gradient_clip_algorithm):
        assert (gradient_clip_val, gradient_clip_algorithm) == (1e-4, "norm")
        for group in optimizer.param_groups:
            for p in group["params"]:
                p.grad.clamp_(min=0, max=1e-2)


def test_configure_gradient_clipping_gets_the_trainers_values(tmp_path):
    model = ClipHook()
    trainer(tmp_path, max_epochs=1, gradient_clip_val=1e-4).fit(model, data(1))
    assert all(0 <= g <= 1e-2 for p in model.parameters() for g in p.grad.flatten().tolist())


# ------------------------------------------------------------------------------ 7. binding steps to optimizers


class Critic(AlternatingOptimizersMixin, pl.LightningModule):
    """Two networks; `configure_optimizers` returns the generator's optimizer first."""

    def __init__(self, alternation) -> None:
        super().__init__()
        self.alternation = alternation
        self.critic, self.generator = nn.Linear(1, 1, bias=False), nn.Linear(1, 1, bias=False)
        nn.init.zeros_(self.critic.weight)
        nn.init.zeros_(self.generator.weight)
        self.turns: list[str] = []

    def critic_step(self, batch, batch_idx):
        self.turns.append("critic")
        return self.critic(batch).sum() + 10 * self.generator(batch).sum()

    def generator_step(self, batch, batch_idx):
        self.turns.append("generator")
        return self.generator(batch).sum()

    def configure_optimizers(self):
        return (torch.optim.SGD(self.generator.parameters(), lr=1.0),
                torch.optim.SGD(self.critic.parameters(), lr=1.0))


def test_a_swapped_positional_binding_is_refused_before_the_first_step(tmp_path):
    model = Critic({"critic_step": 2, "generator_step": 1})
    with pytest.raises(RecipeError, match=r"^`alternation` binds 'critic_step' to optimizer 0 \(SGD\) by position, but"
                       r" that optimizer holds none of `self\.critic`'s parameters, while optimizer 1 \(SGD\) \(bound to"
                       r" 'generator_step'\) holds them all: `configure_optimizers` returns the optimizers in another"
                       r" order than `alternation` names the steps, so each network would step on the other's loss\."
                       r" Return them in the order of `alternation`, or bind each step to what it trains:"
                       r' \{"critic_step": \{"trains": "critic"\}, "generator_step": \{"trains": "generator"\}\}\.$'):
        trainer(tmp_path, max_epochs=1).fit(model, DataLoader(torch.ones(3, 1)))
    assert model.turns == [] and model.critic.weight.item() == 0.0


def test_bound_steps_train_their_own_networks_whatever_the_optimizer_order(tmp_path):
    model = Critic({"critic_step": {"trains": "critic", "batches": 2},
                    "generator_step": {"trains": "generator", "batches": 1}})
    trainer(tmp_path, max_epochs=1).fit(model, DataLoader(torch.ones(3, 1)))
    assert model.turns == ["critic", "critic", "generator"]  # the cycle follows `alternation`, not the optimizers
    # each step moves only its own network: the critic by its gradient 1 twice, the generator by 1 once (the
    # critic's loss also depends on the generator, but only the critic's optimizer steps on it)
    assert model.critic.weight.item() == -2.0 and model.generator.weight.item() == -1.0
    assert model.optimizer_roles == ("generator", "critic") and model.optimizer_step_counts == (1, 2)


@pytest.mark.parametrize(("alternation", "error_msg"), [
    ({"critic_step": {"trains": "critc", "batches": 2}, "generator_step": {"trains": "generator", "batches": 1}},
     r"`alternation\['critic_step'\]\['trains'\]` names 'critc', but Critic has no such submodule \(its submodules:"
     r" 'critic', 'generator'\)"),
    ({"critic_step": {"trains": "critic"}, "generator_step": 1},
     r"`alternation` binds some steps with 'trains' and not others"),
    ({"critic_step": {"trains": "critic", "batch": 2}, "generator_step": {"trains": "generator"}},
     r"`alternation\['critic_step'\]` must be a number of batches or a dict with 'trains'"),
    ({"critic_step": {"trains": "critic"}, "generator_step": {"trains": "critic"}},
     r"`alternation` binds both 'critic_step' and 'generator_step' to optimizer 1 \(SGD\): each step needs its own"
     r" optimizer"),
])
def test_binding_mistakes(tmp_path, alternation, error_msg):
    with pytest.raises(RecipeError, match=error_msg):
        trainer(tmp_path, max_epochs=1).fit(Critic(alternation), DataLoader(torch.ones(3, 1)))


# ------------------------------------------------------------------------------ super() from a base class


class Base1x(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(1, 1), nn.Linear(1, 1)

    def training_step(self, batch, batch_idx, optimizer_idx):
        return (self.a if optimizer_idx == 0 else self.b)(batch).sum()

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_idx, optimizer_closure, on_tpu=False,
                       using_native_amp=False, using_lbfgs=False):
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_idx, optimizer_closure, on_tpu,
                               using_native_amp, using_lbfgs)

    def configure_optimizers(self):
        return torch.optim.SGD(self.a.parameters(), lr=0.1), torch.optim.SGD(self.b.parameters(), lr=0.1)


def test_a_base_class_calling_super_with_1x_arguments_past_the_mixin(tmp_path):
    class Ported(AlternatingOptimizersMixin, Base1x):
        pass

    with pytest.raises(RecipeError, match=r"^`Base1x\.optimizer_step` calls `super\(\)\.optimizer_step\(\.\.\.\)` with"
                       r" Lightning 1\.x arguments, which would reach Lightning 2's `LightningModule\.optimizer_step`"
                       r" .* Add the mixin to `Base1x`'s own bases"):
        trainer(tmp_path, max_epochs=1).fit(Ported(), data(2, features=1))

    class FixedBase(AlternatingOptimizersMixin, pl.LightningModule):  # the fix: the mixin in the base's own bases
        training_step = Base1x.training_step
        configure_optimizers = Base1x.configure_optimizers

        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(1, 1), nn.Linear(1, 1)

        def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_idx, optimizer_closure, on_tpu=False,
                           using_native_amp=False, using_lbfgs=False):
            super().optimizer_step(epoch, batch_idx, optimizer, optimizer_idx, optimizer_closure, on_tpu,
                                   using_native_amp, using_lbfgs)

    class Ported2(FixedBase):
        pass

    fit = trainer(tmp_path, max_epochs=1)
    fit.fit(Ported2(), data(2, features=1))
    assert fit.global_step == 4


# ------------------------------------------------------------------------------------------------ bf16


@pytest.mark.parametrize("module", [WarmUp, PPOLike])
def test_optimizer_step_ports_under_bf16(tmp_path, module):
    """The module's own `optimizer_step` runs under mixed precision: the lrs its warm-up sets are the lrs the steps
    use; PPO's override steps each optimizer 4 times per batch (3 batches, 2 optimizers)."""
    model = module()
    fit = trainer(tmp_path, max_epochs=1, precision="bf16-mixed")
    fit.fit(model, data(3, features=2 if module is WarmUp else 1))
    if module is WarmUp:
        assert model.used == [1.0, 0.5, 0.75]  # lr 1.0, then (global_step + 1) / 4 after steps 0 and 1
        assert fit.global_step == 3
    else:
        assert model.steps == 24 and fit.global_step == 24
        assert model.actor.item() == -12.0 and model.critic.item() == -6.0  # 12 steps each, gradient 1


class Old1x(pl.LightningModule):
    """A 1.x module whose own hooks take `optimizer_idx`, ported by putting the mixin first in a subclass's bases."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(2, 1), nn.Linear(2, 1)
        self.seen: list[tuple[str, int]] = []

    def training_step(self, batch, batch_idx, optimizer_idx):
        return (self.a if optimizer_idx == 0 else self.b)(batch).mean()

    def toggle_optimizer(self, optimizer, optimizer_idx):
        self.seen.append(("toggle", optimizer_idx))
        super().toggle_optimizer(optimizer)

    def untoggle_optimizer(self, optimizer_idx):
        self.seen.append(("untoggle", optimizer_idx))
        super().untoggle_optimizer(self.trainer.optimizers[optimizer_idx])

    def optimizer_zero_grad(self, epoch, batch_idx, optimizer, optimizer_idx):
        self.seen.append(("zero", optimizer_idx))
        optimizer.zero_grad()

    def lr_scheduler_step(self, scheduler, optimizer_idx, metric):
        self.seen.append(("sched", optimizer_idx))
        scheduler.step()

    def configure_optimizers(self):
        a, b = torch.optim.SGD(self.a.parameters(), lr=0.1), torch.optim.SGD(self.b.parameters(), lr=0.1)
        step = {"scheduler": torch.optim.lr_scheduler.StepLR(a, 1), "interval": "step"}
        return [{"optimizer": a, "frequency": 2, "lr_scheduler": step}, {"optimizer": b, "frequency": 1}]


class PortedOld1x(AlternatingOptimizersMixin, Old1x):
    pass


def test_the_base_classs_1x_hooks_get_the_optimizer_index(tmp_path):
    """They used to get None (and `untoggle_optimizer(None)` crashed): frequencies 2 and 1 over 4 batches."""
    model = PortedOld1x()
    trainer(tmp_path, max_epochs=1).fit(model, DataLoader(torch.randn(12, 2), batch_size=3))
    turn_0 = [("toggle", 0), ("zero", 0), ("untoggle", 0), ("sched", 0)]
    assert model.seen == turn_0 + turn_0 + [("toggle", 1), ("zero", 1), ("untoggle", 1)] + turn_0


def test_hook_signatures_are_cached_without_keeping_modules_alive(tmp_path):
    """The hooks' signatures are cached per class function, not per bound method (which holds its module)."""
    import gc
    import weakref

    from lightning_optim_recipes import preview_schedule

    class StepsItself(pl.LightningModule):  # no mixin: the preview calls its lr_scheduler_step as Lightning would
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(2, 1)

        def lr_scheduler_step(self, scheduler, metric):
            scheduler.step()

        def configure_optimizers(self):
            optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
            return [optimizer], [{"scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 1), "interval": "step"}]

    ported, plain, patched = PortedOld1x(), StepsItself(), PortedOld1x()

    def zero_grad(epoch, batch_idx, optimizer, optimizer_idx):  # a hook set on the instance, holding its module
        patched.seen.append(("instance zero", optimizer_idx))
        optimizer.zero_grad()

    patched.optimizer_zero_grad = zero_grad
    trainer(tmp_path, max_epochs=1).fit(ported, DataLoader(torch.randn(3, 2), batch_size=3))
    trainer(tmp_path, max_epochs=1).fit(patched, DataLoader(torch.randn(3, 2), batch_size=3))
    assert ("instance zero", 0) in patched.seen
    assert len(preview_schedule(plain, max_epochs=1, steps_per_epoch=2)) == 2
    alive = [weakref.ref(ported), weakref.ref(plain), weakref.ref(patched)]
    del ported, plain, patched
    gc.collect()
    assert [ref() for ref in alive] == [None, None, None]
