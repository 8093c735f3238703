"""`SchedulerCadenceCheck` on a real Trainer: silent on correct modules, each listed mistake caught with its cause."""

from __future__ import annotations

import csv
import warnings

import pytest
import torch
from helpers import TinyRegressor, loader, pl, trainer
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, ExponentialLR, LinearLR, ReduceLROnPlateau, StepLR
from torch.utils.data import DataLoader

from lightning_optim_recipes import CadenceError, ConfigureOptimizersCheck, RecipeWarning
from lightning_optim_recipes.mixins.alternating import AlternatingOptimizersMixin
from lightning_optim_recipes.callbacks.cadence_check import CadenceReport, SchedulerCadenceCheck

pytestmark = pytest.mark.trainer


def fit(tmp_path, model, batches=7, check=None, **kwargs):
    check = check or SchedulerCadenceCheck(print_report=False)
    kwargs.setdefault("max_epochs", 3)
    t = trainer(tmp_path, callbacks=[check], **kwargs)
    t.fit(model, loader(batches))
    return check, t


def rows(report: CadenceReport):
    return [(s.name, s.interval, s.frequency, s.expected, s.expected_max, s.actual) for s in report.schedulers]


# ------------------------------------------------------------------------------------------ automatic, correct


class Automatic(TinyRegressor):
    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        return [opt], [
            {"scheduler": ExponentialLR(opt, 0.9), "interval": "step", "frequency": 2, "name": "exp"},
            {"scheduler": StepLR(opt, 1, 0.5), "interval": "epoch", "frequency": 2},
            {"scheduler": ReduceLROnPlateau(opt, patience=0), "monitor": "train_loss"},
        ]


def test_correct_automatic_module_passes_and_reports(tmp_path, capsys):
    torch.manual_seed(0)  # the model's initial weights: the final lr depends on whether the plateau ever cuts
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        check, t = fit(tmp_path, Automatic(), check=SchedulerCadenceCheck())
    # 7 batches x 3 epochs: 'step' freq 2 after batches 1, 3, 5 of each epoch; 'epoch' freq 2 after epoch 1 only
    assert rows(check.report) == [
        ("exp", "step", 2, 9, 9, 9),
        ("lr-SGD", "epoch", 2, 1, 1, 1),  # the names LearningRateMonitor logs them under
        ("lr-SGD-1", "epoch", 1, 3, 3, 3),
    ]
    assert [(o.name, o.kind, o.expected, o.actual) for o in check.report.optimizers] == [("exp", "SGD", 21, 21)]
    assert [s.kind for s in check.report.schedulers] == ["ExponentialLR", "StepLR", "ReduceLROnPlateau"]
    # 0.1 x 0.9^9 (9 exponential steps) x 0.5 (1 StepLR step); the plateau never cuts (the loss keeps falling)
    assert [s.final_lr for s in check.report.schedulers] == [(pytest.approx(0.1 * 0.9**9 * 0.5, rel=1e-12),)] * 3
    assert t.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.1 * 0.9**9 * 0.5, rel=1e-12)
    assert capsys.readouterr().out.strip() == check.table() == "\n".join([
        "Schedulers (steps of scheduler.step() over the run)",
        "logged as  scheduler          optimizer  interval  frequency  expected  actual  final lr",
        "exp        ExponentialLR      exp        step      2          9         9       0.01937",
        "lr-SGD     StepLR             exp        epoch     2          1         1       0.01937",
        "lr-SGD-1   ReduceLROnPlateau  exp        epoch     1          3         3       0.01937",
        "Optimizers (optimizer steps over the run)",
        "logged as  optimizer  frequency  expected  actual",
        "exp        SGD        -          21        21",
    ])


def test_automatic_accumulation_follows_lightnings_rule(tmp_path):
    class Model(TinyRegressor):
        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            return [opt], [{"scheduler": ExponentialLR(opt, 0.9), "interval": "step", "frequency": 3}]

    with pytest.warns(RecipeWarning) as record:
        check, _ = fit(tmp_path, Model(), accumulate_grad_batches=2)
    message = next(str(w.message) for w in record if w.category is RecipeWarning)
    assert "frequency=3 with accumulate_grad_batches=2" in message
    assert "it steps 3 times where every 3rd optimizer step would be 4" in message
    assert "keep frequency=1 and write the schedule in units of k optimizer steps" in message
    # optimizer steps after batches 1, 3, 5, 6; the scheduler only after batch 5 ((5 + 1) % 3 == 0): 3 in 3 epochs
    assert rows(check.report) == [("lr-SGD", "step", 3, 3, 3, 3)]
    assert [(o.expected, o.actual) for o in check.report.optimizers] == [(12, 12)]


def test_epoch_scheduler_also_stepped_in_training_step(tmp_path):
    class Model(TinyRegressor):
        def training_step(self, batch, batch_idx):
            self.lr_schedulers().step()  # the mistake: Lightning steps it at the epoch end already
            return super().training_step(batch, batch_idx)

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            return [opt], [StepLR(opt, 1, 0.5)]

    with pytest.raises(CadenceError, match=r"Scheduler 'lr-SGD' \(StepLR of optimizer 0 \(lr-SGD\),"
                       r" interval='epoch', frequency=1\) has stepped 1 time after batch 0 of epoch 0, but its"
                       r" cadence expects 0\. Likely cause: it is also stepped by hand"):
        fit(tmp_path, Model())


def test_epoch_scheduler_stepped_by_hand_in_one_batch_epochs(tmp_path):
    class Model(TinyRegressor):
        def training_step(self, batch, batch_idx):
            self.lr_schedulers().step()
            self.lr_schedulers().step()
            return super().training_step(batch, batch_idx)

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            return [opt], [StepLR(opt, 1, 0.5)]

    with pytest.raises(CadenceError, match=r"has stepped 3 times at the end of epoch 0, but its cadence"
                       r" expects 0 to 1"):
        fit(tmp_path, Model(), batches=1)


def test_warn_mode_warns_once_and_trains_on(tmp_path):
    class Model(TinyRegressor):
        def training_step(self, batch, batch_idx):
            self.lr_schedulers().step()
            return super().training_step(batch, batch_idx)

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            return [opt], [StepLR(opt, 1, 0.5)]

    with pytest.warns(RecipeWarning, match="stepped by hand") as record:
        check, t = fit(tmp_path, Model(), check=SchedulerCadenceCheck(mode="warn", print_report=False))
    assert len([w for w in record if "stepped by hand" in str(w.message)]) == 1
    assert t.current_epoch == 3
    assert rows(check.report) == [("lr-SGD", "epoch", 1, 3, 3, 24)]  # 21 by hand + 3 by Lightning


def test_a_warmup_the_run_never_finishes_is_flagged_before_training(tmp_path):
    class Model(TinyRegressor):
        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            return [opt], [LinearLR(opt, start_factor=0.01, total_iters=1000)]  # warmup over 1000 "steps"

    with pytest.warns(RecipeWarning, match=r"^The LinearLR scheduler never reaches the warm-up end \(total_iters=1000\):"
                      r" this run steps it 2 times \(interval='epoch': once at the end of each epoch, over 2 epochs\)\."
                      r" Train longer"):
        check, _ = fit(tmp_path, Model(), batches=2, max_epochs=2)
    assert rows(check.report) == [("lr-SGD", "epoch", 1, 2, 2, 2)]  # not an error: it does step per epoch


def test_csv_report_in_the_loggers_log_dir(tmp_path):
    logger = pl.loggers.CSVLogger(str(tmp_path), name="run")
    check, _ = fit(tmp_path, Automatic(), logger=logger, max_epochs=1)
    with open(f"{logger.log_dir}/cadence_report.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [(r["kind"], r["name"], r["expected"], r["actual"]) for r in table] == [
        ("scheduler", "exp", "3", "3"),
        ("scheduler", "lr-SGD", "0", "0"),
        ("scheduler", "lr-SGD-1", "1", "1"),
        ("optimizer", "exp", "7", "7"),  # the optimizer's lr is logged as its first scheduler's name
    ]


# ------------------------------------------------------------------------------------------------------ manual


class Manual(TinyRegressor):
    """Steps its optimizer every `every` batches; its step scheduler (frequency `f`) as `sched_rule` says."""

    def __init__(self, every=1, f=1, sched_rule="after_opt"):
        super().__init__()
        self.automatic_optimization = False
        self.every, self.f, self.sched_rule = every, f, sched_rule

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        step_sched, epoch_sched = self.lr_schedulers()
        loss = super().training_step(batch, batch_idx) / self.every
        self.manual_backward(loss)
        stepped = (batch_idx + 1) % self.every == 0 or self.trainer.is_last_batch
        if stepped:
            opt.step()
            opt.zero_grad()
        if self.sched_rule == "after_opt" and stepped:
            self.optimizer_steps = getattr(self, "optimizer_steps", 0) + 1
            if self.optimizer_steps % self.f == 0:
                step_sched.step()
        elif self.sched_rule == "batch_idx" and (batch_idx + 1) % self.f == 0:  # Lightning's documented pattern
            step_sched.step()
        elif self.sched_rule == "every_batch":
            step_sched.step()

    def on_train_epoch_end(self):
        if self.sched_rule != "never":
            self.lr_schedulers()[1].step()

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        return [opt], [{"scheduler": ExponentialLR(opt, 0.9), "interval": "step", "frequency": self.f},
                       StepLR(opt, 1, 0.5)]


@pytest.mark.parametrize(("every", "f", "rule", "expected"), [
    # under manual optimization Lightning ignores 'interval' and 'frequency', and so does the check: the module steps
    # its schedulers where it likes, each only has to step at all, and is reported as 1..actual
    (1, 1, "after_opt", [("lr-SGD", "step", 1, 1, 21, 21), ("lr-SGD-1", "epoch", 1, 1, 3, 3)]),
    (2, 1, "after_opt", [("lr-SGD", "step", 1, 1, 12, 12), ("lr-SGD-1", "epoch", 1, 1, 3, 3)]),
    (1, 3, "after_opt", [("lr-SGD", "step", 3, 1, 7, 7), ("lr-SGD-1", "epoch", 1, 1, 3, 3)]),
    (1, 3, "batch_idx", [("lr-SGD", "step", 3, 1, 6, 6), ("lr-SGD-1", "epoch", 1, 1, 3, 3)]),
    # stepped on every batch while the optimizer steps every other one: the module's choice (a schedule sized in
    # batches); a length that does not fit it is the lr watch's to report
    (2, 1, "every_batch", [("lr-SGD", "step", 1, 1, 21, 21), ("lr-SGD-1", "epoch", 1, 1, 3, 3)]),
])
def test_correct_manual_modules_pass(tmp_path, every, f, rule, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        check, _ = fit(tmp_path, Manual(every, f, rule))
    assert rows(check.report) == expected


def test_manual_module_that_never_steps_its_schedulers(tmp_path):
    """Reported once its first epoch has ended with its optimizer stepping (the module may step it in
    `on_train_epoch_end`: Lightning ignores the 'interval' it declares)."""
    with pytest.raises(CadenceError, match=r"^Scheduler 'lr-SGD' \(ExponentialLR of optimizer 0 \(lr-SGD\),"
                       r" interval='step', frequency=1\) has not stepped at the start of epoch 1, although its optimizer"
                       r" has stepped 7 times: its lr has not moved since training began\. Likely cause: under manual"
                       r" optimization \(`automatic_optimization = False`\) Lightning never steps schedulers"):
        fit(tmp_path, Manual(sched_rule="never"))


def test_manual_scheduler_without_a_declared_cadence_is_reported_at_the_end_of_its_first_epoch(tmp_path):
    """Undeclared, it is only required to step at all; once an epoch (Lightning's default interval) has passed with
    its optimizer stepping and the module's own `on_train_epoch_end` run, it is reported: at the start of epoch 1,
    not when fit ends."""

    class Model(Manual):
        def on_train_epoch_end(self):
            pass

    with pytest.raises(CadenceError, match=r"^Scheduler 'lr-SGD-1' \(StepLR of optimizer 0 \(lr-SGD\)\) has not"
                       r" stepped at the start of epoch 1, although its"
                       r" optimizer has stepped 7 times: its lr has not moved since training began\. Likely cause:"
                       r" under manual optimization"):
        fit(tmp_path, Model())


def test_a_manual_module_declaring_epoch_and_stepping_per_step_is_correct(tmp_path):
    """galilai-group/stable-pretraining's module (stable_pretraining/module.py @ d15ec96): 'interval': 'epoch' in its
    dict, its scheduler stepped after every optimizer step; Lightning ignores the key under manual optimization, and
    the schedule is sized for those steps. Whichever order the checking callbacks come in, nothing is said."""

    class PerStep(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.automatic_optimization = False
            self.layer = nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            opt, sched = self.optimizers(), self.lr_schedulers()
            self.manual_backward(self.layer(batch).pow(2).mean())
            opt.step()
            sched.step()
            opt.zero_grad()

        def configure_optimizers(self):
            opt = torch.optim.AdamW(self.parameters(), lr=1e-3)
            return [opt], [{"scheduler": CosineAnnealingLR(opt, T_max=14), "interval": "epoch"}]

    for callbacks in ([SchedulerCadenceCheck()], [ConfigureOptimizersCheck(), SchedulerCadenceCheck()],
                      [SchedulerCadenceCheck(), ConfigureOptimizersCheck()]):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RecipeWarning)
            run = trainer(tmp_path, max_epochs=2, callbacks=callbacks)
            run.fit(PerStep(), DataLoader(torch.randn(7, 2), batch_size=1))
        assert run.global_step == 14


class Wrapper(torch.optim.lr_scheduler.LRScheduler):
    """SysCV/vis4d's LRSchedulerWrapper (vis4d/engine/optim/scheduler.py @ d141374), cut down: its `step(epoch)` steps
    the scheduler it holds, so its own `last_epoch` never moves."""

    def __init__(self, optimizer) -> None:
        super().__init__(optimizer)
        self.inner = StepLR(optimizer, 1, 0.5)

    def get_lr(self):
        return self.inner.get_lr()

    def step(self, epoch=None):
        if epoch is not None:
            self.inner.step()


def test_a_scheduler_whose_step_moves_no_counter_is_not_counted(tmp_path, caplog):
    class Wrapped(TinyRegressor):
        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            return [opt], [Wrapper(opt)]

        def lr_scheduler_step(self, scheduler, metric=None):
            scheduler.step(self.current_epoch)

    model = Wrapped()
    with caplog.at_level("DEBUG", logger="lightning_optim_recipes"), warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        trainer(tmp_path, max_epochs=3, callbacks=[SchedulerCadenceCheck()]).fit(model, loader(2))
    assert [round(g["lr"], 6) for g in model.optimizers().optimizer.param_groups] == [0.0125]  # 0.1 / 2 ** 3
    assert "Wrapper.step() leaves `last_epoch` as it is (it steps other schedulers, or counts in its own way): its" \
           " steps are not counted." in caplog.messages


# ------------------------------------------------------------------------------------------- alternating mixin


class GAN(AlternatingOptimizersMixin, pl.LightningModule):
    alternation = {"critic_step": 5, "generator_step": 1}

    def __init__(self, cycle="epoch"):
        super().__init__()
        self.alternation_cycle = cycle
        self.critic, self.generator = nn.Linear(4, 1), nn.Linear(4, 4)

    def critic_step(self, batch, batch_idx):
        x, _ = batch
        return self.critic(self.generator(x)).mean() - self.critic(x).mean()

    def generator_step(self, batch, batch_idx):
        x, _ = batch
        return -self.critic(self.generator(x)).mean()

    def configure_optimizers(self):
        critic = torch.optim.SGD(self.critic.parameters(), lr=0.01)
        generator = torch.optim.SGD(self.generator.parameters(), lr=0.01)
        return [critic, generator], [
            {"scheduler": ExponentialLR(critic, 0.9), "interval": "step", "frequency": 2, "name": "critic"},
            {"scheduler": ExponentialLR(generator, 0.9), "interval": "step", "name": "generator"},
            {"scheduler": StepLR(generator, 1, 0.5), "interval": "epoch", "name": "generator-epoch"},
        ]


def test_correct_alternating_module_passes_and_reports_the_ratio(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        check, _ = fit(tmp_path, GAN(cycle="run"), batches=8)
    # run-wide cycle of 6 over 24 batches: critic 20 steps, generator 4 (5:1)
    assert [(o.frequency, o.expected, o.actual) for o in check.report.optimizers] == [(5, 20, 20), (1, 4, 4)]
    assert rows(check.report) == [
        ("critic", "step", 2, 10, 10, 10),
        ("generator", "step", 1, 4, 4, 4),
        ("generator-epoch", "epoch", 1, 3, 3, 3),
    ]


def test_generator_scheduler_never_steps_because_its_optimizer_is_never_active(tmp_path):
    with pytest.raises(CadenceError, match=r"Schedulers 'generator', 'generator-epoch' of optimizer 1 will never"
                       r" step: optimizer 1 \(generator\) is never active in an epoch of 5 batches\. Likely cause: with"
                       r" frequencies \(5, 1\) the cycle of 6 batches restarts every epoch.*alternation_cycle = 'run'"):
        fit(tmp_path, GAN(cycle="epoch"), batches=5)


def test_alternating_scheduler_stepped_by_hand(tmp_path):
    class Model(GAN):
        def critic_step(self, batch, batch_idx):
            self.lr_schedulers()[0].step()
            return super().critic_step(batch, batch_idx)

    with pytest.raises(CadenceError, match=r"Scheduler 'critic' .* has stepped 1 time after batch 0 of epoch 0,"
                       r" but its cadence expects 0 \(1 step of its optimizer so far\)\. Likely cause: the mixin"
                       r" steps it right after each step of its own optimizer"):
        fit(tmp_path, Model(cycle="run"), batches=8)


class ManualCosine(pl.LightningModule):
    """A cosine sized in optimizer steps (`estimated_stepping_batches`) under manual optimization, stepped after
    every `opt.step()` (`per_step`) or, the mistake, once per epoch in `on_train_epoch_end`."""

    def __init__(self, per_step: bool) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.layer, self.per_step = nn.Linear(2, 1), per_step

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        opt.zero_grad()
        self.manual_backward(self.layer(batch).pow(2).mean())
        opt.step()
        if self.per_step:
            self.lr_schedulers().step()

    def on_train_epoch_end(self):
        if not self.per_step:
            self.lr_schedulers().step()

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        return [opt], [CosineAnnealingLR(opt, T_max=self.trainer.estimated_stepping_batches)]


def test_a_manual_schedule_stepped_out_of_its_unit_warns_once_its_first_epoch_shows_the_pace(tmp_path):
    run = trainer(tmp_path, max_epochs=3, callbacks=[SchedulerCadenceCheck(print_report=False)])
    with pytest.warns(RecipeWarning) as record:
        run.fit(ManualCosine(per_step=False), DataLoader(torch.randn(7, 2), batch_size=1))
    assert [str(w.message) for w in record if w.category is RecipeWarning] == [
        "Scheduler 'lr-SGD' (CosineAnnealingLR of optimizer 0 (lr-SGD)) is written for 21 scheduler steps (T_max=21),"
        " but the module steps it 1 time per epoch (epoch 0), about 3 times over the run's 3 epochs: training ends 14%"
        " of the way through its schedule. Under manual optimization the module steps it itself (Lightning ignores"
        " 'interval'): step it where its length counts (after each `opt.step()` for a length in optimizer steps, in"
        " `on_train_epoch_end` for one in epochs), or size it for how often it steps: 3. If that is deliberate,"
        " silence this with `warnings.filterwarnings('ignore', '.*the module steps it')`."]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        trainer(tmp_path, max_epochs=3, callbacks=[SchedulerCadenceCheck(print_report=False)]).fit(
            ManualCosine(per_step=True), DataLoader(torch.randn(7, 2), batch_size=1))
