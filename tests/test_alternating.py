"""`AlternatingOptimizersMixin` on a real Trainer: every seed form, the 1.x port, the explicit form, WGAN-GP,
accumulation, clipping, plateau schedulers and the errors, with the exact sequence of steps written out."""

from __future__ import annotations

from typing import Optional

import pytest
import torch
from helpers import loader, pl, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_optim_recipes.mixins.alternating import AlternatingOptimizersMixin
from lightning_optim_recipes.errors import RecipeError

pytestmark = pytest.mark.trainer

BASE = 2.0**-10  # lrs are written as multiples of BASE: exact in binary


def _lambda(k: int) -> int:
    return k + 1


class Gan(AlternatingOptimizersMixin, pl.LightningModule):
    """A 1.x-style GAN: `training_step(batch, batch_idx, optimizer_idx)`; records every optimizer and scheduler step.

    The generator's optimizer has two param groups (lr BASE and 2 BASE); schedulers are `LambdaLR(k -> k + 1)`, so a
    group's lr is its base lr times one plus the number of times its scheduler stepped.
    """

    def __init__(self, form: str, cycle: str = "epoch") -> None:
        super().__init__()
        self.form = form
        self.alternation_cycle = cycle
        self.gen = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 1))
        self.dis = nn.Linear(1, 1)
        self.events: list[str] = []

    def on_train_batch_start(self, batch, batch_idx):
        self.events.append(f"|{self.current_epoch} {batch_idx}")

    def on_before_optimizer_step(self, optimizer):
        lrs = ",".join(f"{g['lr'] / BASE:g}" for g in optimizer.param_groups)
        self.events.append(f"{self.names[id(optimizer)]}:{lrs}")

    def lr_scheduler_step(self, scheduler, metric):
        self.events.append("@" + self.names[id(scheduler)])
        scheduler.step()

    def training_step(self, batch, batch_idx, optimizer_idx):
        x, y = batch
        fake = self.gen(x)
        if self.order[optimizer_idx] == "G":
            return -self.dis(fake).mean()
        return self.dis(fake).mean() - self.dis(y).mean()

    def configure_optimizers(self):
        g = torch.optim.SGD(
            [{"params": self.gen[0].parameters()}, {"params": self.gen[1].parameters(), "lr": 2 * BASE}], lr=BASE
        )
        d = torch.optim.SGD(self.dis.parameters(), lr=BASE)
        self.names = {id(g): "G", id(d): "D"}
        self.order = "GD"
        if self.form == "tuple":
            return (g, d)
        if self.form == "lists":
            d_epoch = self._scheduler(d, "d_epoch")
            return [g, d], [d_epoch]
        if self.form == "dicts_in_lists":
            g_step, d_epoch = self._scheduler(g, "g_step"), self._scheduler(d, "d_epoch")
            return [g, d], [{"scheduler": g_step, "interval": "step", "frequency": 3}, d_epoch]
        self.order = "DG"
        d_step, g_epoch = self._scheduler(d, "d_step"), self._scheduler(g, "g_epoch")
        return (
            {"optimizer": d, "frequency": 5, "lr_scheduler": {"scheduler": d_step, "interval": "step", "frequency": 2}},
            {"optimizer": g, "frequency": 1, "lr_scheduler": g_epoch},
        )

    def _scheduler(self, optimizer, name):
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lambda)
        self.names[id(scheduler)] = name
        return scheduler


def _table(text: str) -> list[str]:
    """Parse "epoch batch_idx events..." lines: `G:1,2` = G stepped with lrs (1, 2) x BASE; `@name` = scheduler."""
    events = []
    for line in text.strip().splitlines():
        epoch, batch_idx, *rest = line.split()
        events.append(f"|{epoch} {batch_idx}")
        events.extend(rest)
    return events


# Every optimizer on every batch, generator first; no schedulers.
TUPLE = """
0 0  G:1,2 D:1
0 1  G:1,2 D:1
0 2  G:1,2 D:1
0 3  G:1,2 D:1
0 4  G:1,2 D:1
0 5  G:1,2 D:1
0 6  G:1,2 D:1
0 7  G:1,2 D:1
0 8  G:1,2 D:1
0 9  G:1,2 D:1
0 10 G:1,2 D:1
0 11 G:1,2 D:1
0 12 G:1,2 D:1
1 0  G:1,2 D:1
1 1  G:1,2 D:1
1 2  G:1,2 D:1
1 3  G:1,2 D:1
1 4  G:1,2 D:1
1 5  G:1,2 D:1
1 6  G:1,2 D:1
1 7  G:1,2 D:1
1 8  G:1,2 D:1
1 9  G:1,2 D:1
1 10 G:1,2 D:1
1 11 G:1,2 D:1
1 12 G:1,2 D:1
"""

# `[gen, dis], [dis_sched]`: the epoch scheduler of the second optimizer steps at each epoch end.
LISTS = """
0 0  G:1,2 D:1
0 1  G:1,2 D:1
0 2  G:1,2 D:1
0 3  G:1,2 D:1
0 4  G:1,2 D:1
0 5  G:1,2 D:1
0 6  G:1,2 D:1
0 7  G:1,2 D:1
0 8  G:1,2 D:1
0 9  G:1,2 D:1
0 10 G:1,2 D:1
0 11 G:1,2 D:1
0 12 G:1,2 D:1 @d_epoch
1 0  G:1,2 D:2
1 1  G:1,2 D:2
1 2  G:1,2 D:2
1 3  G:1,2 D:2
1 4  G:1,2 D:2
1 5  G:1,2 D:2
1 6  G:1,2 D:2
1 7  G:1,2 D:2
1 8  G:1,2 D:2
1 9  G:1,2 D:2
1 10 G:1,2 D:2
1 11 G:1,2 D:2
1 12 G:1,2 D:2 @d_epoch
"""

# `[gen, dis], [{'scheduler': g, 'interval': 'step', 'frequency': 3}, dis_sched]`: g_step after every 3rd G step,
# counted over the run (13 G steps in epoch 0, so the 15th is at epoch 1 batch 1), not by batch_idx.
DICTS_IN_LISTS = """
0 0  G:1,2 D:1
0 1  G:1,2 D:1
0 2  G:1,2 @g_step D:1
0 3  G:2,4 D:1
0 4  G:2,4 D:1
0 5  G:2,4 @g_step D:1
0 6  G:3,6 D:1
0 7  G:3,6 D:1
0 8  G:3,6 @g_step D:1
0 9  G:4,8 D:1
0 10 G:4,8 D:1
0 11 G:4,8 @g_step D:1
0 12 G:5,10 D:1 @d_epoch
1 0  G:5,10 D:2
1 1  G:5,10 @g_step D:2
1 2  G:6,12 D:2
1 3  G:6,12 D:2
1 4  G:6,12 @g_step D:2
1 5  G:7,14 D:2
1 6  G:7,14 D:2
1 7  G:7,14 @g_step D:2
1 8  G:8,16 D:2
1 9  G:8,16 D:2
1 10 G:8,16 @g_step D:2
1 11 G:9,18 D:2
1 12 G:9,18 D:2 @d_epoch
"""

# `({'optimizer': dis, 'frequency': 5, step scheduler every 2nd D step}, {'optimizer': gen, 'frequency': 1,
# epoch scheduler})`, Lightning 1.9's cycle: batch_idx % 6, restarting every epoch (13 = 2 x 6 + 1).
FREQUENCY_EPOCH_CYCLE = """
0 0  D:1
0 1  D:1 @d_step
0 2  D:2
0 3  D:2 @d_step
0 4  D:3
0 5  G:1,2
0 6  D:3 @d_step
0 7  D:4
0 8  D:4 @d_step
0 9  D:5
0 10 D:5 @d_step
0 11 G:1,2
0 12 D:6 @g_epoch
1 0  D:6 @d_step
1 1  D:7
1 2  D:7 @d_step
1 3  D:8
1 4  D:8 @d_step
1 5  G:2,4
1 6  D:9
1 7  D:9 @d_step
1 8  D:10
1 9  D:10 @d_step
1 10 D:11
1 11 G:2,4
1 12 D:11 @d_step @g_epoch
"""

# The same with `alternation_cycle = "run"`: epoch 1 continues the cycle at run-wide position 13 (13 % 6 = 1).
FREQUENCY_RUN_CYCLE = """
0 0  D:1
0 1  D:1 @d_step
0 2  D:2
0 3  D:2 @d_step
0 4  D:3
0 5  G:1,2
0 6  D:3 @d_step
0 7  D:4
0 8  D:4 @d_step
0 9  D:5
0 10 D:5 @d_step
0 11 G:1,2
0 12 D:6 @g_epoch
1 0  D:6 @d_step
1 1  D:7
1 2  D:7 @d_step
1 3  D:8
1 4  G:2,4
1 5  D:8 @d_step
1 6  D:9
1 7  D:9 @d_step
1 8  D:10
1 9  D:10 @d_step
1 10 G:2,4
1 11 D:11
1 12 D:11 @d_step @g_epoch
"""


@pytest.mark.parametrize(
    ("form", "cycle", "expected", "counts"),
    [
        ("tuple", "epoch", TUPLE, {"G": 26, "D": 26}),
        ("lists", "epoch", LISTS, {"G": 26, "D": 26}),
        ("dicts_in_lists", "epoch", DICTS_IN_LISTS, {"G": 26, "D": 26}),
        ("frequency", "epoch", FREQUENCY_EPOCH_CYCLE, {"D": 22, "G": 4}),
        ("frequency", "run", FREQUENCY_RUN_CYCLE, {"D": 22, "G": 4}),
    ],
    ids=["tuple", "lists", "dicts_in_lists", "frequency-epoch-cycle", "frequency-run-cycle"],
)
def test_seed_forms_exact_sequence(tmp_path, form, cycle, expected, counts):
    model = Gan(form, cycle)
    fit = trainer(tmp_path, max_epochs=2)
    fit.fit(model, loader(13, features=4))
    assert model.events == _table(expected)
    assert model.optimizer_step_counts == tuple(counts.values())
    assert fit.global_step == sum(counts.values())  # global_step counts optimizer steps
    assert model.alternation_position == 26
    assert model.optimizer_setup is not None and len(model.optimizer_setup.optimizers) == 2


def test_lightning_sees_the_schedulers(tmp_path):
    model = Gan("dicts_in_lists")
    fit = trainer(tmp_path, max_epochs=1, limit_train_batches=2)
    fit.fit(model, loader(13))
    assert [model.names[id(s)] for s in model.lr_schedulers()] == ["g_step", "d_epoch"]
    assert [c.interval for c in fit.lr_scheduler_configs] == ["step", "epoch"]
    assert model.automatic_optimization is False


# ------------------------------------------------------------------------------------------------- 1.x port


class Port1x(pl.LightningModule):
    """A Lightning 1.x module, unchanged: two optimizers, `optimizer_idx`, frequencies."""

    def __init__(self) -> None:
        super().__init__()
        self.gen = nn.Linear(4, 1)
        self.dis = nn.Linear(1, 1)

    def training_step(self, batch, batch_idx, optimizer_idx):
        x, y = batch
        if optimizer_idx == 0:
            return self.dis(self.gen(x)).mean() - self.dis(y).mean()
        return -self.dis(self.gen(x)).mean()

    def configure_optimizers(self):
        return (
            {"optimizer": torch.optim.Adam(self.dis.parameters(), lr=1e-3), "frequency": 2},
            {"optimizer": torch.optim.Adam(self.gen.parameters(), lr=1e-3), "frequency": 1},
        )


def test_1x_module_fails_on_lightning_2_without_the_mixin(tmp_path):
    """Guards the premise of the porting guide, not library code (none runs here): Lightning 2 itself refuses an
    unchanged 1.x module (`optimizer_idx` in `training_step`, two optimizers with frequencies) before training, with
    this exact message; that refusal is why `AlternatingOptimizersMixin` exists. Should Lightning accept such a module,
    or refuse it otherwise, the guide and the mixin's documentation need revisiting."""
    with pytest.raises(RuntimeError, match=(
        r"^Training with multiple optimizers is only supported with manual optimization\. Remove the `optimizer_idx`"
        r" argument from `training_step`, set `self\.automatic_optimization = False` and access your optimizers in"
        r" `training_step` with `opt1, opt2, \.\.\. = self\.optimizers\(\)`\.$")):
        trainer(tmp_path, max_epochs=1).fit(Port1x(), loader(3))


def test_1x_module_trains_with_the_mixin_added(tmp_path):
    class Ported(AlternatingOptimizersMixin, Port1x):
        pass

    model = Ported()
    before = [model.gen.weight.detach().clone(), model.dis.weight.detach().clone()]
    fit = trainer(tmp_path, max_epochs=1)
    fit.fit(model, loader(7))
    assert model.optimizer_step_counts == (5, 2)  # batches 0,1 dis; 2 gen; 3,4 dis; 5 gen; 6 dis
    assert fit.global_step == 7
    assert not torch.equal(before[0], model.gen.weight) and not torch.equal(before[1], model.dis.weight)


class Ported1x(AlternatingOptimizersMixin, pl.LightningModule):
    """The 1.x port written directly (the mixin in the class statement), skipping the generator on odd batches."""

    def __init__(self) -> None:
        super().__init__()
        self.gen, self.dis = nn.Linear(4, 1), nn.Linear(1, 1)

    def training_step(self, batch, batch_idx, optimizer_idx):
        x, y = batch
        if optimizer_idx == 0:
            return {"loss": (self.dis(self.gen(x)) - y).pow(2).mean()}
        return None if batch_idx % 2 else self.dis(self.gen(x)).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.gen.parameters(), lr=0.1), torch.optim.SGD(self.dis.parameters(), lr=0.1)


def test_1x_dict_and_none_returns(tmp_path):
    model = Ported1x()
    fit = trainer(tmp_path, max_epochs=1)
    fit.fit(model, loader(5))
    assert model.optimizer_step_counts == (5, 3)  # None skips the step, as in 1.x
    assert fit.global_step == 8


# ------------------------------------------------------------------------------- gradients, accumulation, clipping


class Exact(AlternatingOptimizersMixin, pl.LightningModule):
    """Two scalar parameters; both losses are ``(d + g) * x`` with ``x = batch_idx + 1``, so every gradient is known.

    Only the active optimizer's parameter may get a gradient (toggle), and SGD(lr=1) moves it by exactly minus its
    (accumulated, scaled) gradient.
    """

    alternation = {"dis_step": 3, "gen_step": 1}

    def __init__(self, **options) -> None:
        super().__init__()
        for key, value in options.items():
            setattr(self, key, value)
        self.d = nn.Parameter(torch.zeros(1))
        self.g = nn.Parameter(torch.zeros(1))
        self.steps: list[tuple[str, int, float, Optional[float]]] = []

    def _loss(self, batch):
        (x,) = batch
        return ((self.d + self.g) * x).sum()

    def dis_step(self, batch, batch_idx):
        return self._loss(batch)

    def gen_step(self, batch, batch_idx):
        return self._loss(batch)

    def on_before_optimizer_step(self, optimizer):
        param = optimizer.param_groups[0]["params"][0]
        other = self.g if param is self.d else self.d
        name = "D" if param is self.d else "G"
        other_grad = None if other.grad is None else float(other.grad)
        self.steps.append((name, self.trainer.fit_loop.epoch_loop.batch_idx, float(param.grad), other_grad))

    def configure_optimizers(self):
        return torch.optim.SGD([self.d], lr=1.0), torch.optim.SGD([self.g], lr=1.0)


def _counting_loader(batches: int) -> DataLoader:
    return DataLoader(TensorDataset(torch.arange(1.0, batches + 1).unsqueeze(1)), batch_size=1)


def test_gradient_is_exactly_the_active_optimizers_own(tmp_path):
    model = Exact()
    trainer(tmp_path, max_epochs=1).fit(model, _counting_loader(8))
    # (optimizer, batch_idx, its gradient, the other parameter's gradient). D on batches 0,1,2, G on 3, D on 4,5,6,
    # G on 7: each gradient is x = batch_idx + 1 alone, never summed with the previous batch's (zero_grad); the
    # other parameter keeps the gradient of its own last backward, None before its first (toggle: no leak).
    assert model.steps == [
        ("D", 0, 1.0, None), ("D", 1, 2.0, None), ("D", 2, 3.0, None), ("G", 3, 4.0, 3.0),
        ("D", 4, 5.0, 4.0), ("D", 5, 6.0, 4.0), ("D", 6, 7.0, 4.0), ("G", 7, 8.0, 7.0),
    ]
    assert model.d.item() == -(1 + 2 + 3 + 5 + 6 + 7) and model.g.item() == -(4 + 8)


def test_accumulation_counts_each_optimizers_own_batches(tmp_path):
    model = Exact(accumulate_grad_batches=(4, 1))
    fit = trainer(tmp_path, max_epochs=1)
    fit.fit(model, _counting_loader(13))
    # D is active on batches 0,1,2,4,5,6,8,9,10,12: windows {0,1,2,4} {5,6,8,9} and the partial {10,12}, which
    # steps at the epoch's last batch; each window's gradient is the sum of x over it, divided by 4. G's steps in
    # between neither zero nor add to D's open window (the 4th value: D's gradient so far when G steps).
    assert model.steps == [
        ("G", 3, 4.0, (1 + 2 + 3) / 4), ("D", 4, (1 + 2 + 3 + 5) / 4, 4.0),
        ("G", 7, 8.0, (6 + 7) / 4), ("D", 9, (6 + 7 + 9 + 10) / 4, 8.0),
        ("G", 11, 12.0, 11 / 4), ("D", 12, (11 + 13) / 4, 12.0),
    ]
    assert model.optimizer_step_counts == (3, 3) and fit.global_step == 6
    assert model.accumulation_windows == (0, 0)


def test_clipping_per_optimizer(tmp_path):
    model = Exact(gradient_clip_val=(2.5, None), gradient_clip_algorithm="value")
    trainer(tmp_path, max_epochs=1).fit(model, _counting_loader(8))
    # `on_before_optimizer_step` sees the gradients before clipping, as in Lightning (the hook, then clipping)
    assert [s[2] for s in model.steps] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    # D's gradients (batches 0, 1, 2, 4, 5, 6) clipped to 2.5, G's (3, 7) not
    assert model.d.item() == -(1 + 2 + 2.5 * 4) and model.g.item() == -(4 + 8)


def test_clipping_by_norm(tmp_path):
    model = Exact(gradient_clip_val=1.0)
    trainer(tmp_path, max_epochs=1).fit(model, _counting_loader(4))
    assert model.d.item() == pytest.approx(-3.0) and model.g.item() == pytest.approx(-1.0)


def test_trainer_accumulation_applies_to_every_optimizer(tmp_path):
    model = Exact()
    fit = trainer(tmp_path, max_epochs=1, accumulate_grad_batches=2)
    fit.fit(model, _counting_loader(8))
    # as 1.x applied the Trainer's option, with each optimizer counting its own batches: D on 0,1,2,4,5,6 (windows
    # {0,1} {2,4} {5,6}), G on 3,7 (window {3,7}); each gradient is the window's sum of x divided by 2
    assert model.steps == [("D", 1, 1.5, None), ("D", 4, 4.0, 2.0), ("D", 6, 6.5, 2.0), ("G", 7, 6.0, 6.5)]
    assert fit.global_step == 4 and fit.accumulate_grad_batches == 2  # the Trainer keeps its option


def test_trainer_clipping_applies_to_every_optimizer(tmp_path):
    model = Exact()
    trainer(tmp_path, max_epochs=1, gradient_clip_val=2.5, gradient_clip_algorithm="value").fit(
        model, _counting_loader(8))
    assert model.d.item() == -(1 + 2 + 2.5 * 4) and model.g.item() == -(2.5 + 2.5)


def test_trainer_and_module_options_that_disagree(tmp_path):
    model = Exact(accumulate_grad_batches=4)
    with pytest.raises(RecipeError, match=r"^`Trainer\(accumulate_grad_batches=2\)` and the module's"
                                          r" `accumulate_grad_batches = 4` disagree: set it in one place"):
        trainer(tmp_path, max_epochs=1, accumulate_grad_batches=2).fit(model, _counting_loader(4))
    assert model.steps == [] and model.d.item() == 0.0


class _NoStep(AlternatingOptimizersMixin, pl.LightningModule):
    def __init__(self, **attributes):
        super().__init__()
        self.__dict__.update(attributes)
        self.a, self.b = nn.Linear(1, 1), nn.Linear(1, 1)

    def a_step(self, batch, batch_idx):
        return self.a(batch[0]).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.a.parameters(), lr=0.1), torch.optim.SGD(self.b.parameters(), lr=0.1)


class _TwoSteps(_NoStep):
    def b_step(self, batch, batch_idx):
        return self.b(batch[0]).sum()


class _TwoArgStep(_NoStep):
    def training_step(self, batch, batch_idx):
        return self.a(batch[0]).sum()


@pytest.mark.parametrize(
    ("module", "error_msg"),
    [
        (_NoStep(), r"_NoStep has 2 optimizers but no step per optimizer: define a 1.x `training_step\(self, batch,"
                    r" batch_idx, optimizer_idx\)`"),
        (_TwoArgStep(), r"_TwoArgStep has 2 optimizers but no step per optimizer"),
        (_NoStep(alternation={"a_step": 2, "b_step": 1}), r"`alternation` names 'b_step', but _NoStep has no such"
                                                           r" method: define `def b_step\(self, batch, batch_idx\)`"),
        (_NoStep(alternation={"a_step": 0}), r"`alternation\['a_step'\]` must be a positive int"),
        (_NoStep(alternation=["a_step"]), r"`alternation` names 1 step methods \(a_step\) but `configure_optimizers`"
                                          r" returned 2 optimizers"),
        (_TwoArgStep(alternation=["a_step", "a_step"]), r"sets `alternation` and also defines `training_step`"),
        (_NoStep(alternation_cycle="global"), r"`alternation_cycle` must be 'epoch' or 'run', got 'global'"),
        (_TwoSteps(alternation=["a_step", "b_step"], accumulate_grad_batches=(2, 0)),
         r"`accumulate_grad_batches` must be a positive int, got 0"),
        (_TwoSteps(alternation=["a_step", "b_step"], accumulate_grad_batches=(1, 2, 3)),
         r"`accumulate_grad_batches` has 3 values for 2 optimizers"),
        (_TwoSteps(alternation=["a_step", "b_step"], gradient_clip_algorithm="l2"),
         r"`gradient_clip_algorithm` must be 'norm' or 'value', got 'l2'"),
    ],
    ids=["no-step", "two-arg-step", "missing-method", "bad-frequency", "count-mismatch", "both-forms", "cycle",
         "accumulate", "accumulate-length", "clip-algorithm"],
)
def test_configuration_errors_before_training(tmp_path, module, error_msg):
    with pytest.raises(RecipeError, match=error_msg):
        trainer(tmp_path, max_epochs=1).fit(module, _counting_loader(2))
    assert all(p.grad is None for p in module.parameters())


def test_conflicting_frequencies():
    class Conflict(_NoStep):
        alternation = {"a_step": 5, "b_step": 1}

        def b_step(self, batch, batch_idx):
            return self.b(batch[0]).sum()

        def configure_optimizers(self):
            return (
                {"optimizer": torch.optim.SGD(self.a.parameters(), lr=0.1), "frequency": 3},
                {"optimizer": torch.optim.SGD(self.b.parameters(), lr=0.1), "frequency": 1},
            )

    with pytest.raises(RecipeError, match=r"`alternation` gives frequencies \(5, 1\) but the optimizer dicts give"
                                          r" \(3, 1\): give them in one place only"):
        Conflict().configure_optimizers()


def test_automatic_optimization_cannot_be_switched_back_on():
    module = _NoStep()
    module.automatic_optimization = False  # harmless
    with pytest.raises(RecipeError, match="runs under manual optimization: remove `self.automatic_optimization"):
        module.automatic_optimization = True


# --------------------------------------------------------------------------------------------- plateau scheduler


class Plateau(Exact):
    alternation = ["dis_step", "gen_step"]

    def __init__(self, monitor="flat", strict=True):
        super().__init__()
        self.monitor, self.strict = monitor, strict
        self.lrs: list[tuple[int, float]] = []

    def dis_step(self, batch, batch_idx):
        self.log("flat", 1.0, on_step=False, on_epoch=True)
        return super().dis_step(batch, batch_idx)

    def on_train_epoch_start(self):
        self.lrs.append((self.current_epoch, self.trainer.optimizers[1].param_groups[0]["lr"]))

    def configure_optimizers(self):
        d, g = torch.optim.SGD([self.d], lr=1.0), torch.optim.SGD([self.g], lr=1.0)
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(g, factor=0.5, patience=0)
        return [d, g], [{"scheduler": plateau, "monitor": self.monitor, "strict": self.strict}]


def test_reduce_on_plateau_reads_callback_metrics(tmp_path):
    model = Plateau()
    trainer(tmp_path, max_epochs=4).fit(model, _counting_loader(2))
    # the metric never improves after epoch 0: patience 0 halves the lr at the end of epochs 1 and 2
    assert model.lrs == [(0, 1.0), (1, 1.0), (2, 0.5), (3, 0.25)]


def test_reduce_on_plateau_missing_metric(tmp_path):
    with pytest.raises(RecipeError, match=r"ReduceLROnPlateau monitors 'val_loss', which is not logged \(logged:"
                                          r" 'flat'\)"):
        trainer(tmp_path, max_epochs=1).fit(Plateau(monitor="val_loss"), _counting_loader(2))
    model = Plateau(monitor="val_loss", strict=False)
    with pytest.warns(RuntimeWarning, match="Skipping this step"):
        trainer(tmp_path, max_epochs=2).fit(model, _counting_loader(2))
    assert model.lrs == [(0, 1.0), (1, 1.0)]


# ------------------------------------------------------------------------------------------------------ WGAN-GP


def _gaussian_mixture(n: int, seed: int = 0) -> torch.Tensor:
    """n points from 8 Gaussians on a circle of radius 2 (the WGAN-GP paper's toy data)."""
    g = torch.Generator().manual_seed(seed)
    angles = torch.randint(0, 8, (n,), generator=g).float() * (torch.pi / 4)
    centers = torch.stack([angles.cos(), angles.sin()], dim=1) * 2.0
    return centers + 0.02 * torch.randn(n, 2, generator=g)


class WGANGP(AlternatingOptimizersMixin, pl.LightningModule):
    """Gulrajani et al. 2017, Algorithm 1: n_critic critic steps with gradient penalty per generator step."""

    alternation_cycle = "run"

    def __init__(self, n_critic: int = 5, penalty: float = 10.0) -> None:
        super().__init__()
        self.alternation = {"critic_step": n_critic, "generator_step": 1}
        self.penalty = penalty
        self.generator = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2))
        self.critic = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 1))
        self.critic_losses: list[float] = []

    def critic_step(self, batch, batch_idx):
        (real,) = batch
        fake = self.generator(torch.randn_like(real))
        eps = torch.rand(real.shape[0], 1)
        mixed = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.critic(mixed).sum(), mixed, create_graph=True)
        gradient_penalty = ((grad.norm(dim=1) - 1) ** 2).mean()
        loss = self.critic(fake).mean() - self.critic(real).mean() + self.penalty * gradient_penalty
        self.critic_losses.append(loss.item())
        return loss

    def generator_step(self, batch, batch_idx):
        (real,) = batch
        return -self.critic(self.generator(torch.randn_like(real))).mean()

    def configure_optimizers(self):
        return (
            torch.optim.Adam(self.critic.parameters(), lr=1e-3, betas=(0.5, 0.9)),
            torch.optim.Adam(self.generator.parameters(), lr=1e-3, betas=(0.5, 0.9)),
        )


def test_wgan_gp_n_critic_5_is_exactly_5_to_1(tmp_path):
    torch.manual_seed(0)
    model = WGANGP(n_critic=5)
    data = DataLoader(TensorDataset(_gaussian_mixture(13 * 16)), batch_size=16)  # 13 batches: 6 does not divide it
    fit = trainer(tmp_path, max_epochs=6)
    fit.fit(model, data)
    assert model.optimizer_step_counts == (65, 13)  # 78 batches, exactly 5:1 over the run
    assert fit.global_step == 78
    assert all(torch.isfinite(torch.tensor(model.critic_losses)))


class OneOptimizer(AlternatingOptimizersMixin, pl.LightningModule):
    """One optimizer and a plain `training_step(batch, batch_idx)`: the mixin only for its accumulation option."""

    accumulate_grad_batches = 4

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.grads: list[float] = []

    def training_step(self, batch, batch_idx):
        (x,) = batch
        return (self.w * x).sum()

    def on_before_optimizer_step(self, optimizer):
        self.grads.append(float(self.w.grad))

    def configure_optimizers(self):
        return torch.optim.SGD([self.w], lr=1.0)


def test_single_optimizer_with_accumulation(tmp_path):
    model = OneOptimizer()
    fit = trainer(tmp_path, max_epochs=1)
    fit.fit(model, _counting_loader(7))
    assert model.grads == [(1 + 2 + 3 + 4) / 4, (5 + 6 + 7) / 4]  # windows of 4; the partial one at epoch end
    assert fit.global_step == 2
