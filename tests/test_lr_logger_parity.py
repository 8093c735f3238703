"""The gaps `LearningRateLogger` closed to be a drop-in for `LearningRateMonitor`, each written out and compared with
the monitor on the same run: param groups added during training, `StochasticWeightAveraging`'s scheduler swap,
learning rates in ``trainer.callback_metrics`` (monitored by `EarlyStopping` / `ModelCheckpoint`), the momentum
warning, and the errors (``except MisconfigurationException`` of either namespace catches them)."""

from __future__ import annotations

import importlib
import re
import warnings
from types import SimpleNamespace

import pytest
import torch
from helpers import Recorder, TinyRegressor, loader, pl, trainer
from hypothesis import given, settings
from hypothesis import strategies as st
from test_lr_logger import assert_same_as_monitor, fit
from torch.optim.lr_scheduler import ExponentialLR, StepLR

from lightning_optim_recipes import RecipeError, RecipeWarning
from lightning_optim_recipes.callbacks.lr_logger import (
    LearningRateLogger,
    LearningRateLoggerError,
    LearningRateLoggerWarning,
    learning_rate_names,
)

MISCONFIGURATION = [
    importlib.import_module(f"{namespace}.utilities.exceptions").MisconfigurationException
    for namespace in ("pytorch_lightning", "lightning.pytorch")
]


# ----------------------------------------------------------------------- param groups added during training


class Backboned(TinyRegressor):
    """SGD (lr 0.1) on what is trainable, halved every epoch; `BackboneFinetuning` freezes the encoder first."""

    def __init__(self):
        super().__init__()
        self.backbone = self.encoder

    def configure_optimizers(self):
        opt = torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=0.1)
        return [opt], [StepLR(opt, 1, 0.5)]


def unfreeze_at_epoch_1():
    """Adds the backbone's group (lr 0.1) at epoch 1; then sets it to min(1.5 x 0.1, the head's lr) each epoch."""
    return [pl.callbacks.BackboneFinetuning(unfreeze_backbone_at_epoch=1, backbone_initial_lr=0.1)]


# 2 batches per epoch, log_every_n_steps=1; the head's lr halves at every epoch end, the backbone's group appears at
# the start of epoch 1 (step 2); 'lr-SGD' becomes 'lr-SGD/pg1' and its history in `lrs` goes with it
ADDED_GROUP = {
    None: [  # an 'epoch' scheduler: logged at epoch starts
        (0, {"lr-SGD": 0.1}),
        (2, {"lr-SGD/pg1": 0.05, "lr-SGD/pg2": 0.1}),
        (4, {"lr-SGD/pg1": 0.025, "lr-SGD/pg2": 0.025}),
    ],
    "step": [
        (0, {"lr-SGD": 0.1}),
        (1, {"lr-SGD": 0.1}),
        (2, {"lr-SGD/pg1": 0.05, "lr-SGD/pg2": 0.1}),
        (3, {"lr-SGD/pg1": 0.05, "lr-SGD/pg2": 0.1}),
        (4, {"lr-SGD/pg1": 0.025, "lr-SGD/pg2": 0.025}),
        (5, {"lr-SGD/pg1": 0.025, "lr-SGD/pg2": 0.025}),
    ],
}
ADDED_GROUP_LRS = {
    None: {"lr-SGD/pg1": [0.1, 0.05, 0.025], "lr-SGD/pg2": [0.1, 0.025]},
    "step": {"lr-SGD/pg1": [0.1, 0.1, 0.05, 0.05, 0.025, 0.025], "lr-SGD/pg2": [0.1, 0.1, 0.025, 0.025]},
}


@pytest.mark.trainer
@pytest.mark.parametrize("interval", [None, "step"])
def test_param_groups_added_during_training(tmp_path, interval):
    lr_logger = LearningRateLogger(logging_interval=interval)
    records, t = fit(tmp_path, Backboned, lr_logger, batches=2, callbacks=unfreeze_at_epoch_1(), max_epochs=3,
                     log_every_n_steps=1)
    assert records == ADDED_GROUP[interval]
    assert lr_logger.lrs == ADDED_GROUP_LRS[interval]
    assert lr_logger.names == ["lr-SGD/pg1", "lr-SGD/pg2"]
    # the monitor keeps the old name in callback_metrics with its last value, and so does the logger
    assert {k: float(v) for k, v in t.callback_metrics.items()} == {
        "lr-SGD": pytest.approx(0.1), "lr-SGD/pg1": pytest.approx(0.025), "lr-SGD/pg2": pytest.approx(0.025)}
    assert_same_as_monitor(tmp_path, Backboned, unfreeze_at_epoch_1, logging_interval=interval, log_momentum=True,
                           log_weight_decay=True, batches=2, max_epochs=3, log_every_n_steps=1)


class Reloaded(pl.Callback):
    """At epoch 1, reload the optimizer's state with lr 0.5: `load_state_dict` replaces the param-group dicts."""

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 1:
            optimizer = trainer.optimizers[0]
            state = optimizer.state_dict()
            state["param_groups"][0]["lr"] = 0.5
            optimizer.load_state_dict(state)


@pytest.mark.trainer
def test_param_groups_replaced_by_load_state_dict(tmp_path):
    records = assert_same_as_monitor(tmp_path, Backboned, lambda: [Reloaded()], logging_interval="step", batches=2,
                                     max_epochs=2, log_every_n_steps=1)
    assert records == [(0, {"lr-SGD": 0.1}), (1, {"lr-SGD": 0.1}), (2, {"lr-SGD": 0.5}), (3, {"lr-SGD": 0.5})]


# ------------------------------------------------------------------------------------ SWA's per-epoch scheduler


class Halving(TinyRegressor):
    """SGD (lr 0.1) halved at every step."""

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        return [opt], [{"scheduler": ExponentialLR(opt, 0.5), "interval": "step"}]


def swa_from_epoch_1():
    """SWA from epoch 1 (``swa_epoch_start=2`` is 1-based): SWALR, per epoch, anneals linearly to 0.05 in 2 epochs."""
    return [pl.callbacks.StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=2, annealing_epochs=2,
                                                   annealing_strategy="linear")]


# 2 batches per epoch, log_every_n_steps=1: halved at every step until SWA swaps its scheduler in at epoch 1
# (step 2), then logged once per epoch (logging_interval=None) or at every step ('step') as the monitor does
SWA = {
    None: [(0, 0.1), (1, 0.05), (2, 0.025), (4, 0.0375), (6, 0.05), (8, 0.05)],
    "step": [(0, 0.1), (1, 0.05), (2, 0.025), (3, 0.025), (4, 0.0375), (5, 0.0375), (6, 0.05), (7, 0.05), (8, 0.05),
             (9, 0.05)],
}


@pytest.mark.trainer
@pytest.mark.filterwarnings("ignore:SWA is currently only supported every epoch")
@pytest.mark.parametrize("interval", [None, "step"])
def test_swa_scheduler_logged_per_epoch(tmp_path, interval):
    lr_logger = LearningRateLogger(logging_interval=interval)
    records, _ = fit(tmp_path, Halving, lr_logger, batches=2, callbacks=swa_from_epoch_1(), max_epochs=5,
                     log_every_n_steps=1)
    expected = [(step, {"lr-SGD": pytest.approx(lr, rel=1e-12)}) for step, lr in SWA[interval]]
    assert records == expected
    assert lr_logger.lrs == {"lr-SGD": [pytest.approx(lr, rel=1e-12) for _, lr in SWA[interval]]}
    assert_same_as_monitor(tmp_path, Halving, swa_from_epoch_1, logging_interval=interval, batches=2, max_epochs=5,
                           log_every_n_steps=1)


# -------------------------------------------------------------------------- callback_metrics: monitoring an lr


class EpochHalving(TinyRegressor):
    """SGD (lr 0.1) halved at every epoch end."""

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        return [opt], [StepLR(opt, 1, 0.5)]


@pytest.mark.trainer
def test_early_stopping_and_checkpoint_monitor_an_lr(tmp_path):
    stop = pl.callbacks.EarlyStopping(monitor="lr-SGD", mode="min", stopping_threshold=0.02,
                                      check_on_train_epoch_end=True)
    best = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="lr-SGD", mode="min", save_top_k=1,
                                        filename="{epoch}")
    lr_logger = LearningRateLogger()
    records, t = fit(tmp_path, EpochHalving, lr_logger, batches=2, callbacks=[stop, best], max_epochs=10,
                     enable_checkpointing=True)
    # logged at epoch starts: 0.1, 0.05, 0.025, then 0.0125 < 0.02 stops training at the end of epoch 3
    assert records == [(0, {"lr-SGD": 0.1}), (2, {"lr-SGD": 0.05}), (4, {"lr-SGD": 0.025}), (6, {"lr-SGD": 0.0125})]
    assert stop.stopped_epoch == 3 and t.current_epoch == 4
    assert lr_logger.lrs == {"lr-SGD": [0.1, 0.05, 0.025, 0.0125]}
    assert t.callback_metrics["lr-SGD"] == torch.tensor(0.0125)
    assert best.best_model_score == torch.tensor(0.0125) and best.best_model_path.endswith("epoch=3.ckpt")


class Constant(TinyRegressor):
    """SGD (lr 0.1, momentum 0.9), no scheduler: the same floats at every logging call."""

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


class Keep(pl.Callback):
    """Keeps ``trainer.callback_metrics[name]`` after every batch."""

    def __init__(self, name):
        self.name, self.seen = name, []

    def on_train_batch_end(self, trainer, *args):
        self.seen.append(trainer.callback_metrics[self.name])


@pytest.mark.trainer
@pytest.mark.parametrize(("model", "new_tensors"), [(Constant, 1), (Halving, 4)])
def test_callback_metrics_tensor_only_for_a_new_value(tmp_path, model, new_tensors):
    """A tensor per logged value change, not per logging call (`EarlyStopping` keeps views of the old ones)."""
    keep = Keep("lr-SGD")
    fit(tmp_path, model, LearningRateLogger(logging_interval="step"), batches=4, callbacks=[keep], max_epochs=1,
        log_every_n_steps=1)
    assert len({id(tensor) for tensor in keep.seen}) == new_tensors
    assert [float(tensor) for tensor in keep.seen] == [pytest.approx(0.1 * (0.5**k if model is Halving else 1))
                                                       for k in range(4)]


# --------------------------------------------------------------------------------------------- the warning


class NoMomentum(TinyRegressor):
    def configure_optimizers(self):
        opt = torch.optim.ASGD(self.parameters(), lr=0.01)
        return [opt], [StepLR(opt, 1)]


class Untrained(TinyRegressor):
    """Several optimizers (manual optimization) that never step: only their names and groups matter here."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        pass


class MixedMomentum(Untrained):
    """SGD with momentum and Adam: both have momentum (the monitor warns, checking 'momentum' and 'betas' apart)."""

    def configure_optimizers(self):
        return [torch.optim.SGD(self.encoder.parameters(), lr=0.1, momentum=0.9),
                torch.optim.Adam(self.decoder.parameters(), lr=0.01)]


class UnscheduledNoMomentum(Untrained):
    """A scheduled SGD and an ASGD without a scheduler (the monitor only checks the scheduled one)."""

    def configure_optimizers(self):
        sgd = torch.optim.SGD(self.encoder.parameters(), lr=0.1, momentum=0.9)
        return [sgd, torch.optim.ASGD(self.decoder.parameters(), lr=0.01)], [StepLR(sgd, 1)]


MOMENTUM_WARNING = (
    "You have set log_momentum=True, but some optimizers do not have momentum. This will log a value 0 for the"
    " momentum of ASGD (no `momentum` or `betas` in its defaults). Set `LearningRateLogger(log_momentum=False)` if"
    " that is not what you want."
)


@pytest.mark.trainer
@pytest.mark.parametrize("model", [NoMomentum, UnscheduledNoMomentum])
def test_momentum_warning(tmp_path, model):
    assert all(issubclass(LearningRateLoggerWarning, base) for base in (RuntimeWarning, RecipeWarning))
    lr_logger = LearningRateLogger(log_momentum=True)
    with pytest.warns(RuntimeWarning, match=f"^{re.escape(MOMENTUM_WARNING)}$") as caught:
        records, _ = fit(tmp_path, model, lr_logger, batches=2, max_epochs=1, log_every_n_steps=1)
    assert len([w for w in caught if w.category is LearningRateLoggerWarning]) == 1
    assert lr_logger.last_momentum_values["lr-ASGD-momentum"] == 0
    assert records[0][1]["lr-ASGD-momentum"] == 0


@pytest.mark.trainer
@pytest.mark.parametrize(("model", "log_momentum", "logged"), [
    (MixedMomentum, False, {"lr-SGD": 0.1, "lr-Adam": 0.01}),
    (MixedMomentum, True, {"lr-SGD": 0.1, "lr-SGD-momentum": 0.9, "lr-Adam": 0.01, "lr-Adam-momentum": 0.9}),
    (Constant, False, {"lr-SGD": 0.1}),
    (Constant, True, {"lr-SGD": 0.1, "lr-SGD-momentum": 0.9}),
])
def test_no_momentum_warning_when_every_optimizer_has_one(tmp_path, model, log_momentum, logged):
    """No warning, and every lr (and momentum, when asked: SGD's `momentum`, Adam's beta1) is logged: optimizers
    without a scheduler at the epoch's start and at each of its 2 steps."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", LearningRateLoggerWarning)
        records, _ = fit(tmp_path, model, LearningRateLogger(log_momentum=log_momentum), batches=2, max_epochs=1,
                         log_every_n_steps=1)
    assert records == [(0, logged), (0, logged), (1, logged)]


# ---------------------------------------------------------------------------------------------- the errors


class DuplicateNames(TinyRegressor):
    def configure_optimizers(self):
        return torch.optim.SGD([{"params": self.encoder.parameters(), "name": "a"},
                                {"params": self.decoder.parameters(), "name": "a"}], lr=0.1)


NO_LOGGER = (
    "Cannot use `LearningRateLogger` callback with `Trainer` that has no logger (`logger=False`): it writes the"
    " learning rates through the Trainer's loggers. Pass one, e.g. `Trainer(logger=CSVLogger('logs'))`, or"
    " `logger=True` for TensorBoard, or remove the callback."
)
DUPLICATES = (
    "A single `Optimizer` cannot have multiple parameter groups with identical `name` values: lr-SGD has duplicated"
    " parameter group names ['a'], and learning-rate metrics need one name per group. Give each group its own"
    " 'name' (`param_groups` does this for you)."
)


@pytest.mark.trainer
@pytest.mark.parametrize("error_class", [RecipeError, *MISCONFIGURATION])
@pytest.mark.parametrize(("model", "logger", "error_msg"), [
    (EpochHalving, False, NO_LOGGER),
    (DuplicateNames, True, DUPLICATES),
])
def test_errors_when_training_starts(tmp_path, model, logger, error_msg, error_class):
    t = trainer(tmp_path, logger=Recorder() if logger else False, callbacks=[LearningRateLogger()], max_epochs=1)
    with pytest.raises(error_class, match=f"^{re.escape(error_msg)}$") as raised:
        t.fit(model(), loader(2))
    assert type(raised.value) is LearningRateLoggerError
    assert t.global_step == 0  # raised in on_train_start, as the monitor does


@pytest.mark.parametrize("error_class", [RecipeError, ValueError, *MISCONFIGURATION])
def test_bad_logging_interval(error_class):
    with pytest.raises(error_class, match=r"^`logging_interval` must be 'step', 'epoch' or None, got 'batch'\.$"):
        LearningRateLogger(logging_interval="batch")


def test_subclasses_the_callback_of_each_namespace():
    for namespace in ("pytorch_lightning", "lightning.pytorch"):
        assert isinstance(LearningRateLogger(), importlib.import_module(namespace).Callback)


# -------------------------------------------------------------------- learning_rate_names, a pure function


def test_learning_rate_names_takes_any_scheduler_config():
    """Objects with `.scheduler`, `.name` and `.interval` (not only Lightning's configs): names for reports."""
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(4)]
    sgd = torch.optim.SGD([{"params": [params[0]]}, {"params": [params[1]], "name": "head"}], lr=0.1)
    adam, adam2 = torch.optim.Adam([params[2]]), torch.optim.Adam([params[3]])
    configs = [SimpleNamespace(scheduler=StepLR(sgd, 1), name=None, interval="epoch"),
               SimpleNamespace(scheduler=StepLR(adam, 1), name="warmup", interval="step")]
    with_scheduler, without_scheduler = learning_rate_names(configs, [sgd, adam, adam2])
    assert [(c, o, n) for c, o, n in with_scheduler] == [(configs[0], sgd, ["lr-SGD/pg1", "lr-SGD/head"]),
                                                         (configs[1], adam, ["warmup"])]
    assert without_scheduler == [(adam2, ["lr-Adam"])]  # 'warmup' does not count as an Adam name
    assert [g["lr"] for g in sgd.param_groups] == [0.1, 0.1]  # nothing read is changed


OPTIMIZER_TYPES = [torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW]


@st.composite
def structures(draw):
    """Optimizers of a few types with 1-3 groups (some named, possibly alike) and schedulers on some of them."""
    optimizers = []
    for _ in range(draw(st.integers(1, 4))):
        groups = [{"params": [torch.nn.Parameter(torch.zeros(1))]} for _ in range(draw(st.integers(1, 3)))]
        for group in groups:
            name = draw(st.sampled_from([None, None, "pg1", "pg2", "head", "body"]))
            if name is not None:
                group["name"] = name
        optimizers.append(draw(st.sampled_from(OPTIMIZER_TYPES))(groups, lr=0.1))
    configs = [SimpleNamespace(scheduler=StepLR(draw(st.sampled_from(optimizers)), 1),
                               name=draw(st.sampled_from([None, None, "lr-SGD", "warm"])),
                               interval=draw(st.sampled_from(["step", "epoch"])))
               for _ in range(draw(st.integers(0, 3)))]
    return configs, optimizers


@settings(max_examples=150, deadline=None)
@given(drawn=structures())
def test_learning_rate_names_are_the_monitors(drawn):
    configs, optimizers = drawn
    monitor = pl.callbacks.LearningRateMonitor()
    try:
        names, seen, seen_types = monitor._find_names_from_schedulers(configs)
        leftover_names, leftover = monitor._find_names_from_optimizers(optimizers, seen, seen_types)
    except MISCONFIGURATION[0 if pl.__name__ == "pytorch_lightning" else 1]:
        with pytest.raises(LearningRateLoggerError, match="identical `name` values"):
            learning_rate_names(configs, optimizers)
        return
    with_scheduler, without_scheduler = learning_rate_names(configs, optimizers)
    assert [n for _, _, n in with_scheduler] == names
    assert [n for _, n in without_scheduler] == leftover_names
    assert [o for o, _ in without_scheduler] == leftover
