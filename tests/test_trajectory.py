"""The replay behind the fit checks and the preview: one implementation, exact where it must be.

* By formula and step by step, the curves of a run agree (random schedules of every kind that has a formula).
* Declared lengths are read from any scheduler: a ``functools.partial``'s keywords, a closure, a class's attributes.
* ``preview_schedule`` equals the fit: a module whose own ``optimizer_step`` sets the lr, one whose
  ``configure_optimizers`` reads what ``setup()`` set, and ``BackboneFinetuning`` adding a param group mid-run.
"""

from __future__ import annotations

import functools
import inspect
import math
import types

import pytest
import torch
from helpers import loader, pl, trainer
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    PolynomialLR,
    SequentialLR,
    StepLR,
)

from lightning_optim_recipes import RecipeError, cadence, preview_schedule, validate_optimizers
from lightning_optim_recipes.curves import replay_curves
from lightning_optim_recipes.horizons import horizon_of

# -------------------------------------------------------------------------- by formula equals step by step


def _piecewise(step, *, points):  # a picklable lambda made of linear pieces and holds
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if step <= x1:
            return y0 + (y1 - y0) * (step - x0) / max(x1 - x0, 1)
    return points[-1][1]


_MAKERS = {
    "lambda": lambda opt, n, k: LambdaLR(opt, functools.partial(_piecewise, points=[
        (0, k[0]), (n * k[1] // 4, 1.0), (n * (1 + k[2]) // 4, k[3]), (n * 4, k[3])])),
    "cosine": lambda opt, n, k: CosineAnnealingLR(opt, T_max=max(1, int(n * (0.5 + k[1]))), eta_min=1e-4 * k[0]),
    "linear": lambda opt, n, k: LinearLR(opt, start_factor=max(k[0], 0.01), end_factor=k[3], total_iters=n // 3 + 1),
    "multistep": lambda opt, n, k: MultiStepLR(opt, milestones=[n // 4 + 1, n // 2 + 2], gamma=k[3]),
    "step": lambda opt, n, k: StepLR(opt, step_size=n // 5 + 1, gamma=0.5),
    "exponential": lambda opt, n, k: ExponentialLR(opt, gamma=0.999),
    "polynomial": lambda opt, n, k: PolynomialLR(opt, total_iters=int(n * (0.5 + k[1])) + 1, power=2.0),
    "onecycle": lambda opt, n, k: OneCycleLR(opt, max_lr=0.1, total_steps=n + 5),
    "sequential": lambda opt, n, k: SequentialLR(opt, [LinearLR(opt, start_factor=max(k[0], 0.01), total_iters=n // 4 + 1),
                                                       CosineAnnealingLR(opt, T_max=max(1, int(n * k[1])), eta_min=0.0)],
                                                 milestones=[n // 4 + 1]),
}


@settings(max_examples=80, deadline=None)
@given(kind=st.sampled_from(sorted(_MAKERS)), batches=st.integers(3, 9), epochs=st.integers(1, 4),
       accumulate=st.integers(1, 3), interval=st.sampled_from(["step", "epoch"]),
       knobs=st.tuples(st.sampled_from([0.0, 0.05, 0.5]), st.floats(0.1, 1.0), st.floats(0.0, 1.0),
                       st.sampled_from([0.0, 0.1, 0.5])))
def test_by_formula_and_step_by_step_agree(kind, batches, epochs, accumulate, interval, knobs):
    with pytest.MonkeyPatch.context() as patch:
        from lightning_optim_recipes import curves

        patch.setattr(curves, "EXACT_LIMIT", 0)  # every run "long": the formula path, sampled
        patch.setattr(curves, "DENSE_START", 3)
        patch.setattr(curves, "SAMPLES", 7)
        _agree(kind, batches, epochs, accumulate, interval, knobs)


def _agree(kind, batches, epochs, accumulate, interval, knobs):
    per_epoch = math.ceil(batches / accumulate)
    total = per_epoch * epochs
    optimizer = torch.optim.SGD([{"params": [nn.Parameter(torch.zeros(1))]}, {"params": [nn.Parameter(torch.zeros(
        1))], "lr": 0.05}], lr=0.1)
    steps = total if interval == "step" else epochs
    setup = validate_optimizers({"optimizer": optimizer, "lr_scheduler": {
        "scheduler": _MAKERS[kind](optimizer, steps, knobs), "interval": interval}})
    loop = cadence.Loop("automatic", 1, (cadence.Timing(0, interval, 1),), accumulate=(accumulate,))
    clock = types.SimpleNamespace(global_step=0, current_epoch=0)
    sampled, = replay_curves(setup, loop, batches, [total], None, clock, by_formula=True)
    exact, = replay_curves(setup, loop, batches, [total], None, clock, by_formula=False)
    fields = ["peak_step", "rising_since", "last_change", "falling"]
    # a run of lr 0 is found exactly where it holds samples (7 over the run here, as 4,000 over a long one): single
    # steps at 0 between two samples (a cosine touching 0 at T_max, then rising) are below every check's threshold
    one_long_run = exact.zero_steps > math.ceil(total / 7) and exact.zero_last - exact.zero_first + 1 == exact.zero_steps
    if one_long_run or exact.zero_steps == 0:
        fields += ["zero_steps", "zero_first", "zero_last"]
    assert {f: getattr(sampled, f) for f in fields} == {f: getattr(exact, f) for f in fields}
    for field in ("first", "last", "peak", "rising_from"):
        assert getattr(sampled, field) == pytest.approx(getattr(exact, field), rel=1e-9, abs=1e-15)


# ---------------------------------------------------------------------------------------- declared lengths


def _linear_with_warmup(step, *, num_warmup_steps, num_training_steps):
    return min(1.0, step / max(1, num_warmup_steps)) * max(0.0, (num_training_steps - step) / num_training_steps)


class WarmupCosine(torch.optim.lr_scheduler.LRScheduler):
    """A class of the kind projects ship, with its lengths as attributes."""

    def __init__(self, optimizer, warmup_epochs, max_epochs):
        self.warmup_epochs, self.max_epochs = warmup_epochs, max_epochs
        super().__init__(optimizer)

    def get_lr(self):
        return list(self.base_lrs)


def _closure(total_steps):
    return lambda step: 1 - step / total_steps


@pytest.mark.parametrize(("make", "end", "end_what", "reach", "in_steps"), [
    (lambda o: LambdaLR(o, functools.partial(_linear_with_warmup, num_warmup_steps=5, num_training_steps=50)), 50,
     "its lr_lambda's num_training_steps=50", ((5, "the warm-up end (num_warmup_steps=5)"),), True),
    (lambda o: WarmupCosine(o, warmup_epochs=3, max_epochs=30), 30, "max_epochs=30",
     ((3, "the warm-up end (warmup_epochs=3)"),), False),
    (lambda o: LambdaLR(o, _closure(40)), 40, "its lr_lambda's total_steps=40", (), True),
    (lambda o: LambdaLR(o, lambda step: 0.5 ** step), None, "", (), False),
])
def test_declared_lengths_are_read_from_any_scheduler(make, end, end_what, reach, in_steps):
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    horizon = horizon_of(make(optimizer))
    assert (horizon.end, horizon.end_what, horizon.reach, horizon.in_steps) == (end, end_what, reach, in_steps)


# --------------------------------------------------------------------------------- the preview equals the fit


class RecordsLrs(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.backbone, self.head = nn.Linear(4, 4), nn.Linear(4, 1)
        self.used: list[tuple[float, ...]] = []

    def training_step(self, batch, batch_idx):
        return self.head(self.backbone(batch[0])).pow(2).mean()

    def on_before_optimizer_step(self, optimizer):
        self.used.append(tuple(round(g["lr"], 10) for g in optimizer.param_groups))


class WarmupInOptimizerStep(RecordsLrs):
    """Lightning's documented warm-up: the lr set by hand in `optimizer_step`, from `trainer.global_step`."""

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure):
        optimizer.step(closure=optimizer_closure)
        if self.trainer.global_step < 5:
            scale = min(1.0, float(self.trainer.global_step + 1) / 5.0)
            for group in optimizer.param_groups:
                group["lr"] = scale * 0.1

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


class SizedInSetup(RecordsLrs):
    """`configure_optimizers` reads what `setup()` set."""

    def setup(self, stage):
        self.total = self.trainer.max_epochs * 2

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        return {"optimizer": optimizer, "lr_scheduler": CosineAnnealingLR(optimizer, T_max=self.total)}


class Finetuned(RecordsLrs):
    def configure_optimizers(self):
        optimizer = torch.optim.SGD(filter(lambda p: p.requires_grad, self.parameters()), lr=0.1)
        return {"optimizer": optimizer, "lr_scheduler": StepLR(optimizer, 1, gamma=0.5)}


class Forwarding(RecordsLrs):
    """An `optimizer_step(self, *args, **kwargs)` that forwards to Lightning's (Lightning's own tests write it so): the
    replay calls it with 2.x's arguments, as Lightning 2 does."""

    def optimizer_step(self, *args, **kwargs):
        return super().optimizer_step(*args, **kwargs)

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        return [optimizer], [StepLR(optimizer, 1, gamma=0.5)]


class Averaged(RecordsLrs):
    """Trained with `StochasticWeightAveraging`, which swaps its SWALR into `trainer.lr_scheduler_configs`."""

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class WarmupAtBatchStart(RecordsLrs):
    """MAE's way: the lr set by hand before every batch, by a helper method the hook calls."""

    def on_train_batch_start(self, batch, batch_idx):
        self._adjust(self.trainer.optimizers[0], self.trainer.global_step)

    @staticmethod
    def _adjust(optimizer, step):
        for group in optimizer.param_groups:
            group["lr"] = 0.1 * min(1.0, (step + 1) / 5)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class WarmupBeforeStep(RecordsLrs):
    """A warm-up set in `on_before_optimizer_step`, before the step records its lrs."""

    def on_before_optimizer_step(self, optimizer):
        for group in optimizer.param_groups:
            group.update(lr=0.1 * min(1.0, (self.trainer.global_step + 1) / 4))
        super().on_before_optimizer_step(optimizer)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class LinearDecayCallback(pl.Callback):
    """A callback that sets every lr before each batch: a linear decay over the run's 12 steps."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        for group in trainer.optimizers[0].param_groups:
            group["lr"] = 0.1 * (1 - trainer.global_step / 12)


class DecayedByCallback(RecordsLrs):
    """Trained with `LinearDecayCallback`, which sets its lrs."""

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class ParamAttributeGroups(RecordsLrs):
    """state-spaces/s4 (train.py @ e757cef): a parameter's own `_optim` attribute gives its group's options."""

    def __init__(self) -> None:
        super().__init__()
        self.head.bias._optim = {"lr": 0.01}

    def configure_optimizers(self):
        optimizer = torch.optim.SGD([p for p in self.parameters() if not hasattr(p, "_optim")], lr=0.1)
        optimizer.add_param_group({"params": [p for p in self.parameters() if hasattr(p, "_optim")], "lr": 0.01})
        return [optimizer], [StepLR(optimizer, 1, gamma=0.5)]


class SizedFromTheLoader(RecordsLrs):
    """SysCV/vis4d (training_module.py @ d141374): the data set up by hand, the schedule sized from its length."""

    def configure_optimizers(self):
        self.trainer.fit_loop.setup_data()
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        scheduler = OneCycleLR(optimizer, 0.1, epochs=self.trainer.max_epochs,
                               steps_per_epoch=len(self.trainer.train_dataloader))
        return [optimizer], [{"scheduler": scheduler, "interval": "step"}]


class LogsItsLr(RecordsLrs):
    """Reads its lr before each batch (and the batch's size, which a preview does not have): it sets nothing."""

    def on_train_batch_start(self, batch, batch_idx):
        self.seen = (batch[0].shape[0], self.trainer.optimizers[0].param_groups[0]["lr"])

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        return [optimizer], [StepLR(optimizer, 1, gamma=0.5)]


def _previewed(records) -> list[tuple[float, ...]]:
    by_step: dict[int, list[float]] = {}
    for record in records:
        by_step.setdefault(record["step"], []).append(round(record["lr"], 10))
    return [tuple(lrs) for _, lrs in sorted(by_step.items())]


@pytest.mark.trainer
@pytest.mark.parametrize("model", [WarmupInOptimizerStep, SizedInSetup, Finetuned, Averaged, Forwarding,
                                   WarmupAtBatchStart, WarmupBeforeStep, DecayedByCallback, LogsItsLr,
                                   ParamAttributeGroups, SizedFromTheLoader])
def test_the_preview_equals_the_fit(tmp_path, model):
    def callbacks():  # fresh ones for each run: a used StochasticWeightAveraging does not start again
        return {
            Finetuned: [pl.callbacks.BackboneFinetuning(unfreeze_backbone_at_epoch=1, backbone_initial_ratio_lr=0.5)],
            Averaged: [pl.callbacks.StochasticWeightAveraging(swa_lrs=0.01)],
            DecayedByCallback: [LinearDecayCallback()],
        }.get(model, [])

    fitted = model()
    trainer(tmp_path, max_epochs=3, callbacks=callbacks()).fit(fitted, loader(4))
    preview = preview_schedule(model(), max_epochs=3, steps_per_epoch=4, callbacks=callbacks())
    assert _previewed(preview) == fitted.used
    expected = {
        WarmupInOptimizerStep: [(0.01,), (0.02,), (0.04,), (0.06,), (0.08,)] + [(0.1,)] * 7,
        # T_max = 3 epochs * 2 = 6: 0.05 * (1 + cos(pi * e / 6)) at epoch e
        SizedInSetup: [(0.1,)] * 4 + [(0.09330127,)] * 4 + [(0.075,)] * 4,
        # the backbone joins at epoch 1 at half the head's lr (0.05 * 0.5); at epoch 2 its x1.5 (0.0375) is
        # capped at the head's lr, 0.025
        Finetuned: [(0.1,)] * 4 + [(0.05, 0.025)] * 4 + [(0.025, 0.025)] * 4,
        # SWA starts at epoch int(0.8 * 3) = 2 with its SWALR, one step of its 10-epoch cosine anneal from 0.1 to
        # swa_lrs: 0.01 * a + 0.1 * (1 - a), a = (1 - cos(pi / 10)) / 2
        Averaged: [(0.1,)] * 8 + [(0.097797543,)] * 4,
        Forwarding: [(0.1,)] * 4 + [(0.05,)] * 4 + [(0.025,)] * 4,
        WarmupAtBatchStart: [(0.02,), (0.04,), (0.06,), (0.08,)] + [(0.1,)] * 8,
        WarmupBeforeStep: [(0.025,), (0.05,), (0.075,)] + [(0.1,)] * 9,
        LogsItsLr: [(0.1,)] * 4 + [(0.05,)] * 4 + [(0.025,)] * 4,
        ParamAttributeGroups: [(0.1, 0.01)] * 4 + [(0.05, 0.005)] * 4 + [(0.025, 0.0025)] * 4,
        # torch's OneCycleLR(max_lr=0.1, total_steps=12): a cosine up to 0.1 over 30% of the steps, then down
        SizedFromTheLoader: [(0.004,), (0.034978965,), (0.087928516,), (0.099441543,), (0.093301297,),
                             (0.081174565,), (0.0647379,), (0.04626371,), (0.0283061,), (0.013347753,),
                             (0.003456699,), (4e-07,)],
        # 0.1 * (1 - k / 12) at step k
        DecayedByCallback: [(0.1,), (0.091666667,), (0.083333333,), (0.075,), (0.066666667,), (0.058333333,), (0.05,),
                     (0.041666667,), (0.033333333,), (0.025,), (0.016666667,), (0.008333333,)],
    }[model]
    assert [tuple(round(lr, 9) for lr in step) for step in fitted.used] == expected


class DecaysInTrainingStep(RecordsLrs):
    def training_step(self, batch, batch_idx):
        for group in self.trainer.optimizers[0].param_groups:
            group["lr"] = 0.1 * (1 - self.trainer.global_step / 12)  # the line the refusal names
        return super().training_step(batch, batch_idx)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class WarmupFromTheBatch(DecayedByCallback):
    def on_train_batch_start(self, batch, batch_idx):
        for group in self.trainer.optimizers[0].param_groups:
            group["lr"] = 0.1 * min(1.0, batch[0].shape[0] * (self.trainer.global_step + 1) / 100)


def _line(cls, text: str) -> int:
    lines, first = inspect.getsourcelines(cls)
    return first + next(i for i, line in enumerate(lines) if text in line)


def test_a_preview_refuses_lrs_set_where_it_cannot_run_and_says_where():
    with pytest.raises(RecipeError) as refused:
        preview_schedule(DecaysInTrainingStep(), max_epochs=3, steps_per_epoch=4)
    assert str(refused.value) == (
        "`preview_schedule` cannot show the lrs DecaysInTrainingStep sets: its `training_step` sets them by hand (line"
        f" {_line(DecaysInTrainingStep, 'the line the refusal names')}), and a preview cannot run `training_step`"
        " without the run's data. Set them in `on_train_batch_start` or `optimizer_step`, which the preview runs, or"
        " watch them during training: `LearningRateLogger` warns when an lr reaches 0, or its floor early.")
    with pytest.raises(RecipeError) as refused:
        preview_schedule(WarmupFromTheBatch(), max_epochs=3, steps_per_epoch=4)
    assert str(refused.value) == (
        "`preview_schedule` runs WarmupFromTheBatch.on_train_batch_start, which sets lrs by hand (line"
        f" {_line(WarmupFromTheBatch, 'batch[0].shape[0]')}), as training runs it but without the run's data (its batch"
        " is None), and it raised TypeError: 'NoneType' object is not subscriptable. Make it work without the batch,"
        " or set the lrs in `optimizer_step`.")
    assert len(preview_schedule(DecayedByCallback(), max_epochs=3, steps_per_epoch=4)) == 12  # the module is fine
