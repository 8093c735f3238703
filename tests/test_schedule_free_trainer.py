"""Schedule-free optimizers trained by a real Trainer: train mode for every training batch, and the evaluation
weights (computed here by hand from the optimizer's state: ``x = (y - (1 - beta) z) / beta``, Defazio et al. 2024)
in validation, test, predict, every checkpoint and the module after fit; a resumed run equal to the uninterrupted
one; BatchNorm statistics recomputed at the evaluation weights; the lr of the built-in warm-up logged; lr_find;
bf16-mixed; the mixin adding the callback; and the warnings, each beside the corrected module that stays silent.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import pytest
import schedulefree
import torch
from helpers import NAMESPACE, Recorder, TinyRegressor, loader, pl, trainer
from torch import nn
from torch.func import functional_call

from lightning_optim_recipes import (
    ConfigureOptimizersCheck,
    LearningRateLogger,
    OptimRecipeMixin,
    RecipeWarning,
    ScheduleFreeModes,
    preview_schedule,
)

pytestmark = pytest.mark.trainer

BETA = 0.9  # AdamWScheduleFree's beta1: y = (1 - BETA) z + BETA x


class Regressor(TinyRegressor):
    """TinyRegressor with AdamWScheduleFree, a validation/test/predict step that record what they computed."""

    def __init__(self, warmup_steps: int = 2, scheduler: bool = False) -> None:
        super().__init__()
        self.warmup_steps, self.scheduler = warmup_steps, scheduler
        self.losses: dict[str, list[float]] = {"val": [], "test": []}

    def configure_optimizers(self):
        opt = schedulefree.AdamWScheduleFree(self.parameters(), lr=0.05, betas=(BETA, 0.999),
                                             warmup_steps=self.warmup_steps)
        if self.scheduler:
            return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, 1)}
        return opt

    def _loss(self, batch, stage):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.losses[stage].append(loss.item())
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch, "val"))

    def test_step(self, batch, batch_idx):
        self._loss(batch, "test")

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        return self(batch[0])


class Probe(pl.Callback):
    """Before `ScheduleFreeModes` in the callback list: the mode of every training batch, and after each batch the
    parameters (y, in train mode) and the optimizer's z."""

    def __init__(self) -> None:
        self.modes: list[bool] = []
        self.after: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.modes.append(trainer.optimizers[0].param_groups[0]["train_mode"])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        state = trainer.optimizers[0].state
        self.after.append(({n: p.detach().clone() for n, p in pl_module.named_parameters()},
                           {n: state[p]["z"].clone() for n, p in pl_module.named_parameters()}))


def by_hand(y: dict[str, torch.Tensor], z: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The evaluation weights: y = (1 - beta) z + beta x."""
    return {n: (y[n] - (1 - BETA) * z[n]) / BETA for n in y}


def assert_weights(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert list(actual) == list(expected)
    for name in expected:
        assert torch.allclose(actual[name], expected[name], rtol=1e-5, atol=1e-6), name


def mse_at(model: nn.Module, weights: dict[str, torch.Tensor], batch) -> float:
    x, y = batch
    return nn.functional.mse_loss(functional_call(model, weights, (x,)), y).item()


def params_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


# ---------------------------------------------------------------------------------------------------- boundaries


def test_every_boundary_uses_the_evaluation_weights(tmp_path):
    """One fit (3 batches x 2 epochs, validation and a checkpoint after each epoch), then test and predict: each
    boundary is asserted on its own, so that missing any one of them fails here."""
    torch.manual_seed(0)
    model, probe = Regressor(), Probe()
    checkpoints = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, every_n_epochs=1)
    fit = trainer(tmp_path, max_epochs=2, num_sanity_val_steps=1, enable_checkpointing=True,
                  callbacks=[probe, ScheduleFreeModes(), checkpoints])
    start = params_of(model)
    val = next(iter(loader(1, batch_size=8, seed=1)))
    fit.fit(model, loader(3), loader(1, batch_size=8, seed=1))

    assert probe.modes == [True] * 6  # training: train mode on every batch
    # validation: the sanity check before any step, then after epochs 0 and 1 (after steps 3 and 6)
    expected_val = [mse_at(model, start, val)] + [mse_at(model, by_hand(*probe.after[b]), val) for b in (2, 5)]
    assert model.losses["val"] == pytest.approx(expected_val, rel=1e-5)
    assert mse_at(model, probe.after[5][0], val) != pytest.approx(expected_val[2], rel=1e-3)  # y would differ
    # every checkpoint: the evaluation weights and the optimizer in eval mode
    for epoch, batch in ((0, 2), (1, 5)):
        saved = torch.load(tmp_path / f"epoch={epoch}-step={batch + 1}.ckpt", weights_only=False)
        assert_weights(saved["state_dict"], by_hand(*probe.after[batch]))
        assert [g["train_mode"] for g in saved["optimizer_states"][0]["param_groups"]] == [False]
    # the end of fit: the module keeps its evaluation weights
    optimizer = fit.optimizers[0]
    assert optimizer.param_groups[0]["train_mode"] is False
    final = by_hand(*probe.after[5])
    assert_weights(params_of(model), final)

    # test and predict from train mode (as a hand-written loop would leave it): eval weights, then train mode again
    optimizer.train()
    y = params_of(model)
    fit.test(model, loader(1, batch_size=8, seed=1))
    assert model.losses["test"] == pytest.approx([mse_at(model, final, val)], rel=1e-5)
    assert optimizer.param_groups[0]["train_mode"] is True
    assert_weights(params_of(model), y)
    (predicted,) = fit.predict(model, loader(1, batch_size=8, seed=1))
    assert torch.allclose(predicted, functional_call(model, final, (val[0],)), rtol=1e-5, atol=1e-6)
    assert optimizer.param_groups[0]["train_mode"] is True
    optimizer.eval()
    fit.validate(model, loader(1, batch_size=8, seed=1))  # from eval mode: stays there
    assert model.losses["val"][-1] == pytest.approx(mse_at(model, final, val), rel=1e-5)
    assert optimizer.param_groups[0]["train_mode"] is False


class BatchNormRegressor(OptimRecipeMixin, pl.LightningModule):
    """A BatchNorm between two layers; AdamWScheduleFree from a recipe, so the mixin adds `ScheduleFreeModes`."""

    optim_recipe = {"optimizer": "AdamWScheduleFree", "lr": 0.05, "optimizer_kwargs": {"warmup_steps": 3}}
    bn_recompute_batches = 2

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))


def fit_batch_norm(root, max_epochs: int, ckpt_path: Any = None, choice: str = "checkpoint"):
    model = BatchNormRegressor()
    model.resume = choice
    checkpoints = pl.callbacks.ModelCheckpoint(dirpath=root, save_top_k=-1, every_n_epochs=1)
    fit = trainer(root, max_epochs=max_epochs, enable_checkpointing=True, callbacks=[checkpoints])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)  # a correct resume warns of nothing
        fit.fit(model, loader(4), loader(1, batch_size=8, seed=1), ckpt_path=ckpt_path)
    return model, fit


@pytest.mark.parametrize("choice", ["checkpoint", "recipe"])
def test_a_resumed_run_equals_the_uninterrupted_one(tmp_path, choice):
    """3 epochs straight, or 2 then a resume from the epoch-1 checkpoint: the same weights, BatchNorm statistics,
    optimizer state (its step count, averaging weights and mode included), bit for bit."""
    straight, straight_fit = fit_batch_norm(tmp_path / "straight", 3)
    fit_batch_norm(tmp_path / "first", 2)
    resumed, resumed_fit = fit_batch_norm(tmp_path / "resumed", 3, ckpt_path=tmp_path / "first" / "epoch=1-step=8.ckpt",
                                          choice=choice)
    assert [type(c).__name__ for c in resumed_fit.callbacks].count("ScheduleFreeModes") == 1
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    a, b = straight_fit.optimizers[0].state_dict(), resumed_fit.optimizers[0].state_dict()
    assert a["param_groups"] == b["param_groups"] and a["param_groups"][0]["k"] == 12
    assert a["param_groups"][0]["train_mode"] is False
    for key, state in a["state"].items():
        for field, tensor in state.items():
            assert torch.equal(tensor, b["state"][key][field]), (key, field)


def test_batch_norm_statistics_are_recomputed_at_the_evaluation_weights(tmp_path):
    """After fit: the running statistics are those of 2 training batches forwarded at x, from the statistics that
    training left (recorded here before the callback's `on_train_end`)."""
    class Before(pl.Callback):
        def on_train_end(self, trainer, pl_module):
            self.y = params_of(pl_module)
            self.z = {n: trainer.optimizers[0].state[p]["z"].clone() for n, p in pl_module.named_parameters()}
            self.buffers = {n: b.clone() for n, b in pl_module.named_buffers()}

    model, before = BatchNormRegressor(), Before()
    fit = trainer(tmp_path, max_epochs=1, callbacks=[before])  # the mixin's callback comes after `Before`
    fit.fit(model, loader(4))
    reference = BatchNormRegressor()
    reference.load_state_dict({**by_hand(before.y, before.z), **before.buffers})
    reference.train()
    with torch.no_grad():
        for x, _ in list(loader(4))[:2]:
            reference(x)
    for name in ("net.1.running_mean", "net.1.running_var", "net.1.num_batches_tracked"):
        assert torch.allclose(dict(model.named_buffers())[name], dict(reference.named_buffers())[name],
                              rtol=1e-5, atol=1e-6), name
    assert int(dict(model.named_buffers())["net.1.num_batches_tracked"]) == 4 + 2


# ------------------------------------------------------------------------------------------------------ the lr


def test_the_logger_and_the_preview_show_the_lr_of_the_built_in_warm_up(tmp_path):
    class Applied(pl.Callback):  # what schedulefree records for each step it took
        def __init__(self):
            self.lrs = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.lrs.append(trainer.optimizers[0].param_groups[0]["scheduled_lr"])

    lr_logger, applied = LearningRateLogger(logging_interval="step"), Applied()
    fit = trainer(tmp_path, max_epochs=1, logger=Recorder(), log_every_n_steps=1,
                  callbacks=[lr_logger, applied, ScheduleFreeModes()])
    fit.fit(Regressor(warmup_steps=3), loader(5))
    expected = [0.05 / 3, 0.1 / 3, 0.05, 0.05, 0.05]  # step k at (k + 1) / 3 of 0.05, then 0.05
    assert lr_logger.lrs == {"lr-AdamWScheduleFree": pytest.approx(expected, rel=1e-12)}
    assert lr_logger.lrs["lr-AdamWScheduleFree"] == pytest.approx(applied.lrs, rel=1e-12)
    previewed = preview_schedule(Regressor(warmup_steps=3), max_epochs=1, steps_per_epoch=5)
    assert [r["lr"] for r in previewed] == pytest.approx(expected, rel=1e-12)
    assert previewed.markers == [{"step": 2, "optimizer": 0, "label": "warmup end"}]


class Found(OptimRecipeMixin, TinyRegressor):
    optim_recipe = {"optimizer": "AdamWScheduleFree", "lr": 0.01}


def test_lr_find_sweeps_then_training_starts_afresh(tmp_path):
    tuner = importlib.import_module(f"{NAMESPACE}.tuner").Tuner
    model = Found()
    fit = trainer(tmp_path, max_epochs=1)
    finder = tuner(fit).lr_find(model, train_dataloaders=loader(30), num_training=20, min_lr=1e-4, max_lr=1,
                                early_stop_threshold=None)
    assert len(finder.results["lr"]) == 20 and model.lr == finder.suggestion()
    fit.fit(model, loader(4))
    group = fit.optimizers[0].param_groups[0]
    assert (group["lr"], group["k"], group["train_mode"]) == (finder.suggestion(), 4, False)


def test_lr_find_warns_when_the_warm_up_skews_it(tmp_path):
    tuner = importlib.import_module(f"{NAMESPACE}.tuner").Tuner

    class WarmingUp(Found):
        optim_recipe = {"optimizer": "AdamWScheduleFree", "lr": 0.01, "optimizer_kwargs": {"warmup_steps": 5}}

    with pytest.warns(RecipeWarning, match=r"^The learning-rate finder sweeps the lr of AdamWScheduleFree \(optimizer"
                                           r" 0\), whose built-in warm-up applies \(k \+ 1\) / 5 of the lr at its step"
                                           r" k < 5 \(warmup_steps=5\): the finder's first 5 losses come from smaller"
                                           r" lrs than the ones it records"):
        tuner(trainer(tmp_path, max_epochs=1)).lr_find(WarmingUp(), train_dataloaders=loader(30), num_training=10)


# ------------------------------------------------------------------------------------------------ bf16, mixin


def test_bf16_mixed_checkpoints_hold_the_evaluation_weights(tmp_path):
    torch.manual_seed(0)
    model, probe = Regressor(), Probe()
    fit = trainer(tmp_path, max_epochs=1, precision="bf16-mixed", enable_checkpointing=True,
                  callbacks=[probe, ScheduleFreeModes(), pl.callbacks.ModelCheckpoint(dirpath=tmp_path)])
    fit.fit(model, loader(3))
    saved = torch.load(tmp_path / "epoch=0-step=3.ckpt", weights_only=False)["state_dict"]
    assert {t.dtype for t in saved.values()} == {torch.float32}
    assert_weights(saved, by_hand(*probe.after[2]))
    assert_weights(params_of(model), by_hand(*probe.after[2]))


def test_the_mixin_keeps_a_modes_callback_given_to_the_trainer(tmp_path):
    mine = ScheduleFreeModes(bn_recompute_batches=3)
    fit = trainer(tmp_path, max_steps=1, callbacks=[mine])
    fit.fit(BatchNormRegressor(), loader(4))
    assert [c for c in fit.callbacks if isinstance(c, ScheduleFreeModes)] == [mine]
    plain = trainer(tmp_path, max_steps=1)
    plain.fit(Found(), loader(4))
    assert [type(c).__name__ for c in plain.callbacks if isinstance(c, ScheduleFreeModes)] == ["ScheduleFreeModes"]
    other = trainer(tmp_path, max_steps=1)
    other.fit(type("AdamWRecipe", (OptimRecipeMixin, TinyRegressor), {"optim_recipe": {"lr": 0.01}})(), loader(4))
    assert not [c for c in other.callbacks if isinstance(c, ScheduleFreeModes)]  # no schedule-free optimizer


# ------------------------------------------------------------------------------------------------------ warnings

UNHANDLED = (
    "AdamWScheduleFree (optimizer 0) is a schedule-free optimizer, and nothing in this run switches its train and"
    " eval modes: Lightning calls neither `optimizer.train()` nor `optimizer.eval()`. The parameters hold the"
    " training sequence in train mode and the evaluation weights in eval mode, so without the switches the first"
    ' step fails ("Optimizer was not in train mode"), or, with `optimizer.train()` alone, checkpoints, validation'
    " and the module after fit use the training sequence, not the evaluation weights. Add `ScheduleFreeModes()` to"
    " the Trainer's callbacks: it switches the modes at every boundary. If the module switches them itself, before"
    " every evaluation and checkpoint and back, silence this with"
    " `warnings.filterwarnings('ignore', '.*nothing in this run switches its train and eval modes')`."
)
SCHEDULED = (
    "The StepLR scheduler steps the lr of a schedule-free optimizer, AdamWScheduleFree (optimizer 0): its schedule is"
    " built in (a constant lr after a linear warm-up over its `warmup_steps`, and an average of the iterates weighted"
    " by the lr), so a scheduler on top changes the lr it averages with. Drop the scheduler and give the optimizer"
    " its warm-up: `AdamWScheduleFree(..., warmup_steps=...)` (in a recipe, 'warmup_fraction' or optimizer_kwargs"
    " {'warmup_steps': ...} instead of 'scheduler'). If you mean to schedule it anyway (schedulefree allows it),"
    " silence this with `warnings.filterwarnings('ignore', '.*steps the lr of a schedule-free optimizer')`."
)
BATCH_NORM = (
    "The module's BatchNorm layers (net.1) keep running statistics accumulated at the training sequence of the"
    " schedule-free AdamWScheduleFree (optimizer 0), while validation, checkpoints and the module after fit use its"
    " evaluation weights. Recompute them as the schedule-free authors recommend, a few training batches forwarded at"
    " the evaluation weights without gradients before each evaluation: `ScheduleFreeModes(bn_recompute_batches=50)`"
    " (`bn_recompute_batches = 50` on OptimRecipeMixin). If the statistics do not matter to you, silence this with"
    " `warnings.filterwarnings('ignore', \".*The module's BatchNorm layers\")`."
)


class TrainsItself(Regressor):
    """Calls `optimizer.train()` itself, and nothing else: training runs, but evaluation would see y."""

    def on_train_start(self):
        self.trainer.optimizers[0].train()


class NoRecompute(BatchNormRegressor):
    bn_recompute_batches = 0


@pytest.mark.parametrize(("wrong", "right", "message"), [
    (lambda: (TrainsItself(), [ConfigureOptimizersCheck()]),
     lambda: (Regressor(), [ScheduleFreeModes(), ConfigureOptimizersCheck()]), UNHANDLED),
    (lambda: (Regressor(scheduler=True), [ScheduleFreeModes()]), lambda: (Regressor(), [ScheduleFreeModes()]),
     SCHEDULED),
    (lambda: (Regressor(scheduler=True), [ConfigureOptimizersCheck(), ScheduleFreeModes()]),  # said once, not twice
     lambda: (Regressor(), [ConfigureOptimizersCheck(), ScheduleFreeModes()]), SCHEDULED),
    (lambda: (NoRecompute(), []), lambda: (BatchNormRegressor(), []), BATCH_NORM),  # the mixin adds ScheduleFreeModes
], ids=["no-modes", "scheduler", "scheduler-and-check", "batch-norm"])
def test_each_warning_and_its_corrected_module(tmp_path, wrong, right, message):
    model, callbacks = wrong()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(tmp_path, max_steps=1, callbacks=callbacks).fit(model, loader(2))
    found = [w for w in caught if issubclass(w.category, RecipeWarning)]
    assert [str(w.message) for w in found] == [message]
    assert found[0].filename == __file__  # the user's line
    model, callbacks = right()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        trainer(tmp_path, max_steps=1, callbacks=callbacks).fit(model, loader(2))
