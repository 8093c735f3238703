"""`preview_schedule` agrees exactly with what a real `Trainer.fit` uses, for every documented pattern; `plot_schedule`."""

from __future__ import annotations

import sys

import pytest
import torch
from helpers import Recorder, TinyRegressor, loader, pl, trainer
from torch.optim.lr_scheduler import CosineAnnealingLR, ExponentialLR, LambdaLR, ReduceLROnPlateau

from lightning_optim_recipes import LearningRateLogger, OptimRecipeMixin, RecipeError, RecipeWarning, param_groups
from lightning_optim_recipes.mixins.alternating import AlternatingOptimizersMixin
from lightning_optim_recipes.plot import plot_schedule
from lightning_optim_recipes.preview import SchedulePreview, preview_schedule
from lightning_optim_recipes.schedulers import exponential, multistep, scheduled, warmup_cosine

pytestmark = pytest.mark.trainer


class LrRecorder(pl.Callback):
    """Records, at every real optimizer step, the lr of each param group (the records `preview_schedule` returns)."""

    def __init__(self) -> None:
        self.records: list[dict] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        raw = getattr(optimizer, "_optimizer", optimizer)
        index = next(i for i, o in enumerate(trainer.optimizers) if getattr(o, "_optimizer", o) is raw)
        for g, group in enumerate(raw.param_groups):
            self.records.append(
                {
                    "step": trainer.global_step,
                    "epoch": trainer.current_epoch,
                    "batch_idx": trainer.fit_loop.epoch_loop.batch_idx,
                    "optimizer": index,
                    "group": group.get("name", f"pg{g}"),
                    "lr": group["lr"],
                }
            )


def fit_records(tmp_path, model, *, epochs: int, batches: int, accumulate: int = 1) -> list[dict]:
    """Train `model` for real and return the lr records of every optimizer step."""
    recorder = LrRecorder()
    fit = trainer(tmp_path, max_epochs=epochs, accumulate_grad_batches=accumulate, callbacks=[recorder])
    fit.fit(model, loader(batches))
    return recorder.records


def core(records):
    """The records without the logged names (a real fit's recorder knows the lrs, not the names)."""
    return [{k: v for k, v in r.items() if k not in ("name", "role")} for r in records]


def lrs(records, group=None):
    return [r["lr"] for r in records if group is None or r["group"] == group]


# ------------------------------------------------------------------------------------ the documented patterns


class SingleAdam(TinyRegressor):
    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


class GroupsMultiStep(TinyRegressor):
    """The seed's "halve the lr after N epochs, then keep it", scaled down: milestone 2, gamma 0.5."""

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(param_groups(self, weight_decay=1e-6, overrides={"encoder": {"lr": 1e-2}}), lr=1e-3)
        return {"optimizer": optimizer, "lr_scheduler": multistep(optimizer, milestones=[2], gamma=0.5)}


class StepAndEpoch(TinyRegressor):
    """A step-interval ExponentialLR (every 2nd batch) beside an epoch-interval cosine on the same optimizer."""

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=1.0)
        step = scheduled(ExponentialLR(optimizer, 0.5), interval="step", frequency=2)
        epoch = scheduled(CosineAnnealingLR(optimizer, T_max=2), interval="epoch")
        return [optimizer], [step, epoch]


class WarmupCosine(TinyRegressor):
    """Total steps from `trainer.estimated_stepping_batches`."""

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=1.0)
        return {"optimizer": optimizer, "lr_scheduler": warmup_cosine(optimizer, warmup_steps=2, trainer=self.trainer)}


class AccumulateStepFrequency(TinyRegressor):
    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=1.0)
        return {"optimizer": optimizer, "lr_scheduler": exponential(optimizer, 0.5, interval="step", frequency=3)}


class EveryOtherEpoch(TinyRegressor):
    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=1.0)
        return {"optimizer": optimizer, "lr_scheduler": exponential(optimizer, 0.5, frequency=2)}


class RecipeModule(OptimRecipeMixin, TinyRegressor):
    optim_recipe = {
        "optimizer": "AdamW",
        "lr": 1e-2,
        "weight_decay": 0.05,
        "scheduler": {"type": "warmup_cosine", "warmup_steps": 3, "min_lr": 1e-4},
    }


def test_single_optimizer(tmp_path):
    preview = preview_schedule(SingleAdam(), max_epochs=2, steps_per_epoch=3)
    assert [(r["step"], r["epoch"], r["batch_idx"], r["group"], r["lr"]) for r in preview] == [
        (0, 0, 0, "pg0", 1e-3), (1, 0, 1, "pg0", 1e-3), (2, 0, 2, "pg0", 1e-3),
        (3, 1, 0, "pg0", 1e-3), (4, 1, 1, "pg0", 1e-3), (5, 1, 2, "pg0", 1e-3),
    ]  # fmt: skip
    assert core(preview) == fit_records(tmp_path, SingleAdam(), epochs=2, batches=3)


def test_param_groups_with_multistep(tmp_path):
    preview = preview_schedule(GroupsMultiStep(), max_epochs=4, steps_per_epoch=2)
    assert {r["group"] for r in preview} == {"encoder", "encoder/no_decay", "decay", "no_decay"}
    # two steps per epoch; the milestone halves every group after epoch 2, each keeping its own lr
    assert lrs(preview, "encoder") == [1e-2, 1e-2, 1e-2, 1e-2, 5e-3, 5e-3, 5e-3, 5e-3]
    assert lrs(preview, "decay") == [1e-3, 1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4, 5e-4]
    assert preview.markers == [{"step": 4, "optimizer": 0, "label": "milestone 2 (epoch)"}]
    assert core(preview) == fit_records(tmp_path, GroupsMultiStep(), epochs=4, batches=2)


def test_step_and_epoch_schedulers(tmp_path):
    preview = preview_schedule(StepAndEpoch(), max_epochs=2, steps_per_epoch=3)
    # ExponentialLR halves after batches 1 (epoch 0) and 1 (epoch 1); the cosine (T_max=2) steps after each epoch,
    # chained onto the halved lr: torch's recursive cosine update from 0.5 at T=1 gives 0.25.
    assert lrs(preview) == pytest.approx([1.0, 1.0, 0.5, 0.25, 0.25, 0.125])
    assert core(preview) == fit_records(tmp_path, StepAndEpoch(), epochs=2, batches=3)


def test_warmup_cosine_from_estimated_stepping_batches_with_accumulation(tmp_path):
    # 7 batches, accumulate 2: optimizer steps on batches 1, 3, 5 and the last one (6): ceil(7 / 2) * 2 = 8 steps
    preview = preview_schedule(WarmupCosine(), max_epochs=2, steps_per_epoch=7, accumulate_grad_batches=2)
    assert [(r["epoch"], r["batch_idx"]) for r in preview] == [
        (0, 1), (0, 3), (0, 5), (0, 6), (1, 1), (1, 3), (1, 5), (1, 6)
    ]  # fmt: skip
    assert [r["step"] for r in preview] == list(range(8))
    assert lrs(preview)[:2] == [0.5, 1.0]  # warmup over 2 steps
    assert lrs(preview)[-1] == 0.0  # min_lr exactly at the last step
    assert preview.markers == [{"step": 1, "optimizer": 0, "label": "warmup end"}]
    assert core(preview) == fit_records(tmp_path, WarmupCosine(), epochs=2, batches=7, accumulate=2)


def test_accumulation_with_uneven_epoch_and_step_frequency(tmp_path):
    # steps on batches 1, 3, 5, 6; the scheduler (frequency 3) steps after batch b when (b + 1) % 3 == 0: only b = 5
    preview = preview_schedule(AccumulateStepFrequency(), max_epochs=2, steps_per_epoch=7, accumulate_grad_batches=2)
    assert [(r["batch_idx"], r["lr"]) for r in preview] == [
        (1, 1.0), (3, 1.0), (5, 1.0), (6, 0.5), (1, 0.5), (3, 0.5), (5, 0.5), (6, 0.25)
    ]  # fmt: skip
    assert core(preview) == fit_records(tmp_path, AccumulateStepFrequency(), epochs=2, batches=7, accumulate=2)


def test_epoch_scheduler_with_frequency(tmp_path):
    preview = preview_schedule(EveryOtherEpoch(), max_epochs=5, steps_per_epoch=1)
    assert lrs(preview) == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert core(preview) == fit_records(tmp_path, EveryOtherEpoch(), epochs=5, batches=1)


def test_recipe_mixin_module_and_the_same_recipe_dict(tmp_path):
    preview = preview_schedule(RecipeModule(), max_epochs=2, steps_per_epoch=4)
    assert len(preview) == 2 * 4 * 2  # 8 steps, groups 'decay' and 'no_decay'
    assert lrs(preview, "decay")[2] == 1e-2  # the peak, at warmup step 3
    assert lrs(preview, "no_decay")[-1] == pytest.approx(1e-4)  # min_lr at the last step
    assert core(preview) == fit_records(tmp_path, RecipeModule(), epochs=2, batches=4)
    from_dict = preview_schedule(RecipeModule.optim_recipe, module=RecipeModule(), max_epochs=2, steps_per_epoch=4)
    assert from_dict == preview


# ------------------------------------------------------------------------------------ alternating optimizers


class PortedFrom1x(AlternatingOptimizersMixin, TinyRegressor):
    """The seed's dict form with frequencies 5:1 and a 1.x `training_step(batch, batch_idx, optimizer_idx)`."""

    def training_step(self, batch, batch_idx, optimizer_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self(x), y)

    def configure_optimizers(self):
        critic = torch.optim.SGD(self.encoder.parameters(), lr=1.0)
        generator = torch.optim.SGD(self.decoder.parameters(), lr=0.1)
        return (
            {"optimizer": critic, "frequency": 5,
             "lr_scheduler": {"scheduler": ExponentialLR(critic, 0.5), "interval": "step", "frequency": 4}},
            {"optimizer": generator, "frequency": 1, "lr_scheduler": ExponentialLR(generator, 0.5)},
        )  # fmt: skip


class TwoNets(pl.LightningModule):
    """An encoder and a decoder, without a `training_step` (the explicit form names its own step methods)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8))
        self.decoder = torch.nn.Linear(8, 1)

    def forward(self, x):
        return self.decoder(torch.relu(self.encoder(x)))


class RunWideWithAccumulation(AlternatingOptimizersMixin, TwoNets):
    """The explicit form, n_critic = 3, a run-wide cycle, the critic accumulating 2 of its own batches."""

    alternation = {"critic_step": 3, "generator_step": 1}
    alternation_cycle = "run"
    accumulate_grad_batches = (2, 1)

    def critic_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self(x), y)

    generator_step = critic_step

    def configure_optimizers(self):
        critic = torch.optim.SGD(self.encoder.parameters(), lr=1.0)
        generator = torch.optim.SGD(self.decoder.parameters(), lr=1.0)
        step = scheduled(ExponentialLR(critic, 0.5), interval="step")
        epoch = scheduled(ExponentialLR(generator, 0.1), interval="epoch")
        return [critic, generator], [step, epoch]


class EveryOptimizerEveryBatch(AlternatingOptimizersMixin, TinyRegressor):
    """No frequencies: both optimizers on every batch, in list order."""

    def training_step(self, batch, batch_idx, optimizer_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self(x), y)

    def configure_optimizers(self):
        first = torch.optim.SGD(self.encoder.parameters(), lr=1.0)
        second = torch.optim.SGD(self.decoder.parameters(), lr=1.0)
        return [first, second], [scheduled(ExponentialLR(second, 0.5), interval="step", frequency=2)]


def test_alternating_1x_dict_form_with_frequencies(tmp_path):
    preview = preview_schedule(PortedFrom1x(), max_epochs=2, steps_per_epoch=13)
    # Lightning 1.9's cycle, restarted every epoch: batch_idx % 6 < 5 -> critic, else generator
    critic = [(r["epoch"], r["batch_idx"]) for r in preview if r["optimizer"] == 0]
    generator = [(r["epoch"], r["batch_idx"]) for r in preview if r["optimizer"] == 1]
    assert critic == [(e, b) for e in (0, 1) for b in (0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 12)]
    assert generator == [(e, b) for e in (0, 1) for b in (5, 11)]
    assert [r["step"] for r in preview] == list(range(26))  # global_step counts every optimizer step
    # the critic's step scheduler halves after every 4th critic step, over the run (22 steps -> 5 halvings)
    assert lrs([r for r in preview if r["optimizer"] == 0]) == [1.0] * 4 + [0.5] * 4 + [0.25] * 4 + [0.125] * 4 + [
        0.0625
    ] * 4 + [0.03125] * 2
    # the generator's epoch scheduler halves after epoch 0
    assert lrs([r for r in preview if r["optimizer"] == 1]) == [0.1, 0.1, 0.05, 0.05]
    assert core(preview) == fit_records(tmp_path, PortedFrom1x(), epochs=2, batches=13)


def test_alternating_run_wide_cycle_with_per_optimizer_accumulation(tmp_path):
    preview = preview_schedule(RunWideWithAccumulation(), max_epochs=2, steps_per_epoch=13)
    steps = [(r["epoch"], r["batch_idx"], r["optimizer"], r["lr"]) for r in preview]
    # run-wide positions 0..25: p % 4 == 3 -> generator, else critic; the critic steps every 2nd of its own batches
    # and a partial window steps on the epoch's last batch (12); its step scheduler halves after each step;
    # the generator's epoch scheduler multiplies by 0.1 after epoch 0
    assert steps == [
        (0, 1, 0, 1.0), (0, 3, 1, 1.0), (0, 4, 0, 0.5), (0, 6, 0, 0.25), (0, 7, 1, 1.0), (0, 9, 0, 0.125),
        (0, 11, 1, 1.0), (0, 12, 0, 0.0625),
        (1, 1, 0, 0.03125), (1, 2, 1, 0.1), (1, 4, 0, 0.015625), (1, 6, 1, 0.1), (1, 7, 0, 0.0078125),
        (1, 9, 0, 0.00390625), (1, 10, 1, 0.1), (1, 12, 0, 0.001953125),
    ]  # fmt: skip
    assert core(preview) == fit_records(tmp_path, RunWideWithAccumulation(), epochs=2, batches=13)


def test_alternating_without_frequencies(tmp_path):
    preview = preview_schedule(EveryOptimizerEveryBatch(), max_epochs=2, steps_per_epoch=3)
    assert [(r["step"], r["batch_idx"], r["optimizer"], r["lr"]) for r in preview] == [
        (0, 0, 0, 1.0), (1, 0, 1, 1.0), (2, 1, 0, 1.0), (3, 1, 1, 1.0), (4, 2, 0, 1.0), (5, 2, 1, 0.5),
        (6, 0, 0, 1.0), (7, 0, 1, 0.5), (8, 1, 0, 1.0), (9, 1, 1, 0.25), (10, 2, 0, 1.0), (11, 2, 1, 0.25),
    ]  # fmt: skip
    assert core(preview) == fit_records(tmp_path, EveryOptimizerEveryBatch(), epochs=2, batches=3)


def test_alternating_with_trainer_accumulation_as_the_mixin_applies_it(tmp_path):
    preview = preview_schedule(EveryOptimizerEveryBatch(), max_epochs=2, steps_per_epoch=4, accumulate_grad_batches=2)
    # each optimizer steps every 2 of its batches (1 and 3); the second's scheduler halves after its every 2nd step
    assert [(r["step"], r["batch_idx"], r["optimizer"], r["lr"]) for r in preview] == [
        (0, 1, 0, 1.0), (1, 1, 1, 1.0), (2, 3, 0, 1.0), (3, 3, 1, 1.0),
        (4, 1, 0, 1.0), (5, 1, 1, 0.5), (6, 3, 0, 1.0), (7, 3, 1, 0.5),
    ]  # fmt: skip
    assert core(preview) == fit_records(tmp_path, EveryOptimizerEveryBatch(), epochs=2, batches=4, accumulate=2)


# ------------------------------------------------------------------------------------------------ behaviour


def test_the_module_is_left_untouched(tmp_path):
    model = GroupsMultiStep()
    before = [p.detach().clone() for p in model.parameters()]
    preview_schedule(model, max_epochs=3, steps_per_epoch=2)
    assert model._trainer is None
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    fit_records(tmp_path, model, epochs=1, batches=1)  # a fitted module (attached to a Trainer) previews too
    assert len(preview_schedule(model, max_epochs=3, steps_per_epoch=2)) == 3 * 2 * 4


def test_stand_in_trainer_sizes_follow_lightning():
    seen = {}

    class Reads(TinyRegressor):
        def configure_optimizers(self):
            t = self.trainer
            seen.update(steps=t.estimated_stepping_batches, epochs=t.max_epochs, epoch=self.current_epoch,
                        step=self.global_step, batches=t.num_training_batches)  # fmt: skip
            return torch.optim.SGD(self.parameters(), lr=0.1)

    preview_schedule(Reads(), max_epochs=3, steps_per_epoch=10, accumulate_grad_batches=4)
    assert seen == {"steps": 9, "epochs": 3, "epoch": 0, "step": 0, "batches": 10}


def test_stand_in_trainer_answers_what_a_trainer_has_and_names_what_it_knows():
    class ReadsTheTrainer(TinyRegressor):
        def configure_optimizers(self):
            seen = (self.trainer.datamodule, self.trainer.limit_train_batches, self.trainer.check_val_every_n_epoch,
                    self.trainer.num_training_batches, self.trainer.model is self, self.trainer.log_every_n_steps)
            self.seen = seen
            return torch.optim.SGD(self.parameters(), lr=0.1)

    assert len(preview_schedule(ReadsTheTrainer(), max_epochs=1, steps_per_epoch=3)) == 3

    class NeedsNoSuchThing(TinyRegressor):
        def configure_optimizers(self):
            self.trainer.warmup_batches  # noqa: B018 - no Trainer has it
            return torch.optim.SGD(self.parameters(), lr=0.1)

    with pytest.raises(RecipeError, match="stand-in Trainer that has no 'warmup_batches': it knows max_epochs"):
        preview_schedule(NeedsNoSuchThing(), max_epochs=1, steps_per_epoch=1)

    class SizedFromValidation(TinyRegressor):
        def configure_optimizers(self):
            every = len(self.trainer.val_dataloaders)  # a preview has no validation data
            optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
            return [optimizer], [torch.optim.lr_scheduler.StepLR(optimizer, every)]

    with pytest.raises(RecipeError) as refused:
        preview_schedule(SizedFromValidation(), max_epochs=1, steps_per_epoch=1)
    assert str(refused.value) == (
        "`preview_schedule` calls SizedFromValidation.configure_optimizers() on a copy of the module, with a stand-in"
        " Trainer that knows the run's sizes, and it raised TypeError: object of type 'NoneType' has no len(). Read"
        " the run's sizes from what it has (`self.trainer.estimated_stepping_batches`, `max_epochs`,"
        " `num_training_batches`, `len(self.trainer.train_dataloader)`), or preview a recipe dict.")


class SizedFromTheDatamodule(TinyRegressor):
    """Sizes its decay as many projects do (mattcleigh/mltools `get_max_steps`, Lightning-AI/pytorch-lightning issue
    #5449): ``len(self.trainer.datamodule.train_dataloader()) * max_epochs``."""

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        total = len(self.trainer.datamodule.train_dataloader()) * self.trainer.max_epochs
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": LambdaLR(optimizer, lambda s: 1 - s / total), "interval": "step"}}


def test_a_schedule_sized_from_the_datamodule_is_previewed_with_the_runs_batches(tmp_path):
    preview = preview_schedule(SizedFromTheDatamodule(), max_epochs=2, steps_per_epoch=2)
    assert [round(r["lr"], 12) for r in preview] == [0.1, 0.075, 0.05, 0.025]  # 0.1 x (1 - s / 4), 2 x 2 batches
    fitted = SizedFromTheDatamodule()

    class Data(pl.LightningDataModule):
        def train_dataloader(self):
            return loader(2)

    trainer(tmp_path, max_epochs=2).fit(fitted, datamodule=Data())
    assert [round(lrs[0], 12) for _, _, lrs in fitted.lr_log] == [0.1, 0.075, 0.05, 0.025]

    class ReadsTheDataset(TinyRegressor):
        def configure_optimizers(self):
            len(self.trainer.datamodule.train_dataset)  # the preview knows batches, not samples
            return torch.optim.SGD(self.parameters(), lr=0.1)

    with pytest.raises(RecipeError, match=r"^`preview_schedule` runs `configure_optimizers` with a stand-in"
                       r" datamodule that has no 'train_dataset': it knows `train_dataloader\(\)`, whose len\(\) is"
                       r" the preview's steps_per_epoch\."):
        preview_schedule(ReadsTheDataset(), max_epochs=1, steps_per_epoch=1)


def test_reduce_on_plateau_is_kept_constant_with_a_warning():
    class Plateau(TinyRegressor):
        def configure_optimizers(self):
            optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
            return {"optimizer": optimizer, "lr_scheduler": ReduceLROnPlateau(optimizer), "monitor": "val_loss"}

    with pytest.warns(RecipeWarning, match="keeps the lr of the ReduceLROnPlateau scheduler constant.*'val_loss'"):
        preview = preview_schedule(Plateau(), max_epochs=2, steps_per_epoch=2)
    assert lrs(preview) == [0.1] * 4


def test_as_frame():
    frame = preview_schedule(SingleAdam(), max_epochs=2, steps_per_epoch=2, as_frame=True)
    assert list(frame.columns) == ["step", "epoch", "batch_idx", "optimizer", "group", "lr", "name", "role"]
    assert frame["lr"].tolist() == [1e-3] * 4


def test_as_frame_names_the_extra_when_pandas_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(RecipeError, match=r"needs pandas: pip install lightning_optim_recipes\[frame\]"):
        preview_schedule(SingleAdam(), max_epochs=1, steps_per_epoch=1, as_frame=True)


class Manual(TinyRegressor):
    def __init__(self):
        super().__init__()
        self.automatic_optimization = False

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.parametrize(
    ("source", "kwargs", "error_msg"),
    [
        (SingleAdam, {"max_epochs": 0}, r"`max_epochs` must be a positive int, got 0\."),
        (SingleAdam, {"steps_per_epoch": 2.5}, r"`steps_per_epoch` must be a positive int, got 2\.5\."),
        (SingleAdam, {"accumulate_grad_batches": True}, r"`accumulate_grad_batches` must be a positive int, got True"),
        (lambda: torch.nn.Linear(2, 2), {}, r"takes a LightningModule \(with `configure_optimizers`\) or a recipe dict"),
        (SingleAdam, {"module": torch.nn.Linear(1, 1)}, r"`module=` is only for a recipe dict"),
        (lambda: {"lr": 0.1, "overrides": {"encoder": {"lr": 1.0}}}, {}, r"pass the model, `preview_schedule\(recipe"),
        (Manual, {}, r"Manual uses manual optimization, so its `training_step` decides"),
        (lambda: {"optimizer": "Adamm", "lr": 0.1}, {}, r"Unknown optimizer 'Adamm'\. Did you mean 'Adam'\?"),
    ],
)
def test_errors(source, kwargs, error_msg):
    options = {"max_epochs": 2, "steps_per_epoch": 2, **kwargs}
    with pytest.raises(RecipeError, match=error_msg):
        preview_schedule(source(), **options)


# ------------------------------------------------------------------------------------------------------ plot


def test_plot_schedule_lines_epochs_and_annotations(tmp_path):
    preview = preview_schedule(GroupsMultiStep(), max_epochs=4, steps_per_epoch=2)
    path = tmp_path / "lr.png"
    figure = plot_schedule(preview, path=path, title="multistep")
    ax = figure.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
    # the names LearningRateLogger logs
    assert list(lines) == ["lr-AdamW/encoder", "lr-AdamW/encoder/no_decay", "lr-AdamW/decay", "lr-AdamW/no_decay"]
    # step s runs at its lr over [s, s + 1): the last step is drawn to its end
    assert list(lines["lr-AdamW/decay"].get_xdata()) == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert list(lines["lr-AdamW/decay"].get_ydata()) == [1e-3] * 4 + [5e-4] * 5
    assert [t.get_text() for t in ax.texts] == ["milestone 2 (epoch)"]
    (top,) = ax.child_axes  # the epoch axis: each epoch at its first optimizer step
    assert list(top.get_xticks()) == [0, 2, 4, 6]
    assert [t.get_text() for t in top.get_xticklabels()] == ["0", "1", "2", "3"]
    assert figure._suptitle.get_text() == "multistep"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figure._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"  # shows itself inline in Jupyter


def test_plot_schedule_thins_epoch_marks_titles_itself_and_has_a_log_scale():
    preview = preview_schedule(GroupsMultiStep(), max_epochs=80, steps_per_epoch=1)
    figure = plot_schedule(preview, log_scale=True)
    ax = figure.axes[0]
    (top,) = ax.child_axes
    assert [t.get_text() for t in top.get_xticklabels()] == [str(e) for e in range(0, 80, 7)]  # 12 marks, not 80
    assert top.get_xlabel() == "epoch (one in 7 marked)"
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "learning rate (log scale)"
    assert figure._suptitle.get_text() == "Learning rate per param group: 80 epochs x 1 batches = 80 optimizer steps"


def test_plot_schedule_of_a_module_and_of_plain_records():
    figure = plot_schedule(WarmupCosine(), max_epochs=2, steps_per_epoch=4)
    assert [t.get_text() for t in figure.axes[0].texts] == ["warmup end"]
    records = list(preview_schedule(SingleAdam(), max_epochs=1, steps_per_epoch=2))
    figure = plot_schedule(records)
    assert [line.get_label() for line in figure.axes[0].get_lines()] == ["lr-Adam"]
    # a constant lr is drawn from 0, not zoomed into a wobble around its value
    assert figure.axes[0].get_ylim() == pytest.approx((0.0, 1e-3 * 1.08))
    old_records = [{k: v for k, v in r.items() if k not in ("name", "role")} for r in records]
    assert [line.get_label() for line in plot_schedule(old_records).axes[0].get_lines()] == ["pg0"]


def test_plot_schedule_needs_sizes_for_a_module():
    with pytest.raises(RecipeError, match="needs the run's sizes: pass `max_epochs=` and `steps_per_epoch=`"):
        plot_schedule(SingleAdam())


def test_plot_schedule_names_the_extra_when_matplotlib_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(RecipeError, match=r"needs matplotlib: pip install lightning_optim_recipes\[plot\]"):
        plot_schedule([])


def test_schedule_preview_is_a_list_of_dicts():
    preview = preview_schedule(SingleAdam(), max_epochs=1, steps_per_epoch=1)
    assert isinstance(preview, SchedulePreview) and isinstance(preview, list)
    assert preview == [{"step": 0, "epoch": 0, "batch_idx": 0, "optimizer": 0, "group": "pg0", "lr": 1e-3,
                        "name": "lr-Adam", "role": None}]
    assert (preview.max_epochs, preview.steps_per_epoch, preview.accumulate_grad_batches) == (1, 1, 1)


class NamedGan(AlternatingOptimizersMixin, TwoNets):
    """The bound form: roles from what each step trains; the generator's optimizer has two named groups."""

    alternation = {"critic_step": {"trains": "encoder", "batches": 2}, "generator_step": {"trains": "decoder", "batches": 1}}

    def critic_step(self, batch, batch_idx):
        return self.decoder(self.encoder(batch[0])).mean()

    generator_step = critic_step

    def configure_optimizers(self):
        critic = torch.optim.Adam(self.encoder.parameters(), lr=1e-3)
        generator = torch.optim.Adam([{"params": [self.decoder.weight], "name": "weight"},
                                      {"params": [self.decoder.bias], "name": "bias"}], lr=1e-3)
        return [critic, generator], [scheduled(ExponentialLR(generator, 0.5), interval="step")]


def test_records_carry_the_logged_names_and_roles(tmp_path):
    preview = preview_schedule(NamedGan(), max_epochs=1, steps_per_epoch=3)
    assert [(r["optimizer"], r["name"], r["role"]) for r in preview] == [
        (0, "lr-Adam-1", "encoder"), (0, "lr-Adam-1", "encoder"),
        (1, "lr-Adam/weight", "decoder"), (1, "lr-Adam/bias", "decoder"),
    ]
    # the names LearningRateLogger logs for the same module, in a real fit
    recorder = Recorder()
    fit = trainer(tmp_path, max_epochs=1, logger=recorder, log_every_n_steps=1,
                  callbacks=[LearningRateLogger(logging_interval="step")])
    fit.fit(NamedGan(), loader(3))
    assert set(recorder.records[0][1]) == {r["name"] for r in preview}
