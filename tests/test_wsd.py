"""Warmup-stable-decay on a real Trainer, and cooldown branches from a stable-phase checkpoint.

The parent run trains 8 epochs of 5 batches (40 optimizer steps) with `warmup_stable_decay` (AdamW at lr 0.1, a
1-epoch warm-up, a (1-sqrt) decay over the last 25% of the run to 10% of the peak) and saves a checkpoint every 4
steps; step 12 is in the stable phase, mid-epoch 2. Branches resume it with a cooldown (`cooldown`,
``decay_start='now'``) under ``resume="recipe"``, and with a plain Trainer and no callback of the library; their lrs
are compared with the values written out here and with `preview_schedule(resume_from=...)`, their weights before the
branch with the parent's. A branch interrupted mid-cooldown resumes from its own checkpoint and continues the
cooldown. Also: a run that decays early and holds its floor resumes exactly, a finished run held at lr 0 says so, the
lr watch during training numbers a resumed run's steps as the run's, and the recipe keys of other libraries are
named.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from helpers import Recorder, StopAt, TinyRegressor, library_log, loader, pl, trainer

from lightning_optim_recipes import (
    LearningRateLogger,
    OptimRecipeMixin,
    RecipeError,
    RecipeWarning,
    ResumeFrom,
    SchedulerCadenceCheck,
    cooldown,
    preview_schedule,
    warmup_stable_decay,
)

pytestmark = [
    pytest.mark.trainer,
    pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty"),
    pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended"),
]

BATCHES, EPOCHS, BRANCH_AT = 5, 8, 12

#: The parent's lr at each of its 40 optimizer steps: the warm-up's step k at (k + 1) / 5 of 0.1; the peak to step
#: 29; then 0.01 + 0.09 x (1 - sqrt((i + 1) / 10)) at step 30 + i (Hägele et al.'s (1-sqrt), floor 10%).
PARENT_LRS = [0.02, 0.04, 0.06, 0.08] + [0.1] * 26 + [
    0.07153950105848457, 0.05975077640500379, 0.050704969824535054, 0.04307900211696917, 0.03636038969321072,
    0.030286299768266495, 0.0247005976119332, 0.019501552810007573, 0.01461850317545376, 0.01]

#: A branch from step 12 cooling down over 8 steps (to step 19): 0.01 + 0.09 x (1 - sqrt((i + 1) / 8)).
BRANCH_LRS = [0.06818019484660535, 0.055, 0.044886480787378495, 0.03636038969321072, 0.028848752646211458,
              0.022057713659400527, 0.015812708797586318, 0.01]


class Steps(TinyRegressor):
    """Records the lr at every global step, and the weights before the first step of the fit."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: dict[int, float] = {}
        self.weights_at_start: dict[str, torch.Tensor] = {}
        self.weights_at: dict[int, dict[str, torch.Tensor]] = {}

    def on_train_batch_start(self, batch, batch_idx):
        if not self.weights_at_start:
            self.weights_at_start = {n: p.detach().clone() for n, p in self.named_parameters()}
        self.weights_at[self.trainer.global_step] = {n: p.detach().clone() for n, p in self.named_parameters()}

    def training_step(self, batch, batch_idx):
        self.steps[self.trainer.global_step] = self.trainer.optimizers[0].param_groups[0]["lr"]
        return super().training_step(batch, batch_idx)


class Recorded(OptimRecipeMixin, Steps):
    resume = "recipe"


class Parent(Recorded):
    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=0.1)
        return {"optimizer": opt, "lr_scheduler": warmup_stable_decay(
            opt, warmup="1ep", decay="25%", decay_shape="1-sqrt", min_lr_ratio=0.1, trainer=self.trainer)}


class Branch(Recorded):
    """A cooldown over `steps` from the step the fit resumes from."""

    def __init__(self, steps: str = "8st") -> None:
        super().__init__()
        self.cooldown_steps = steps

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=0.1)
        return {"optimizer": opt, "lr_scheduler": cooldown(opt, steps=self.cooldown_steps, decay_shape="1-sqrt",
                                                            min_lr_ratio=0.1, trainer=self.trainer)}


class PlainBranch(Steps):
    """`Branch` without the mixin: what a plain Trainer resumes, with no callback of the library."""

    def __init__(self, steps: str = "8st") -> None:
        super().__init__()
        self.cooldown_steps = steps

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=0.1)
        return {"optimizer": opt, "lr_scheduler": cooldown(opt, steps=self.cooldown_steps, decay_shape="1-sqrt",
                                                            min_lr_ratio=0.1, trainer=self.trainer)}


def fit(directory, model, ckpt=None, save=False, saved=None, callbacks=(), logged=None, **sizes):
    """Fit `model` (resumed from ``step=<ckpt>.ckpt`` in `directory`; saving a checkpoint every 4 steps into
    `saved`, `directory` when `save`); returns the Trainer and the RecipeWarnings' messages (what the library logged
    goes into `logged`)."""
    into = saved if saved is not None else directory if save else None
    callbacks = [*callbacks, *([pl.callbacks.ModelCheckpoint(dirpath=into, filename="{step}", every_n_train_steps=4,
                                                             save_top_k=-1)] if into is not None else [])]
    run = trainer(directory, enable_checkpointing=into is not None, callbacks=callbacks, **sizes)
    with warnings.catch_warnings(record=True) as caught, library_log() as said:
        warnings.simplefilter("always")
        run.fit(model, loader(BATCHES), ckpt_path=None if ckpt is None else str(directory / f"step={ckpt}.ckpt"))
    if logged is not None:
        logged.extend(said)
    return run, [str(w.message) for w in caught if issubclass(w.category, RecipeWarning)]


@pytest.fixture(scope="module")
def parent_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("wsd")
    model = Parent()
    run, messages = fit(directory, model, save=True, max_epochs=EPOCHS)
    assert messages == [] and run.global_step == 40
    return directory, model


def test_the_lr_at_every_step_of_a_wsd_run(parent_run):
    _, model = parent_run
    assert sorted(model.steps) == list(range(40))
    assert [model.steps[s] for s in range(40)] == pytest.approx(PARENT_LRS, rel=1e-12)
    scheduler = model.optimizer_setup.schedulers[0].scheduler
    assert scheduler.lengths == {"warmup": ("1ep", 5), "decay": ("25%", 10)}
    assert (scheduler.warmup_steps, scheduler.decay_start, scheduler.decay_length) == (5, 30, 10)


def test_a_cooldown_branch_from_a_stable_phase_checkpoint(parent_run):
    directory, parent = parent_run
    branch = Branch()
    logged: list[str] = []
    run, messages = fit(directory, branch, ckpt=BRANCH_AT, max_epochs=4, logged=logged)  # 20 steps: the cooldown's end
    assert messages == []  # its end fits the run, and the recipe was chosen: no warning
    # the table of what the chosen recipe changes is logged (and kept as the module's `resume_report`)
    assert logged == [
        "Resuming from the checkpoint 'step=12.ckpt' with resume='recipe': training keeps the weights, the progress"
        " (global_step=12, epoch 2) and the optimizers' state, and uses the new recipe where it differs from the"
        " checkpoint (6 settings); every scheduler continues at the step training has reached.\n"
        + branch.resume_report.table()]
    assert branch.resume_report.rows() == [
        ("optimizer 0, group 0: lr", "0.1", "0.0681802", "0.0681802"),
        ("scheduler 0 (WarmupStableDecayLR): warmup_steps", "5", "0", "0"),
        ("scheduler 0 (WarmupStableDecayLR): decay_start", "30", "12", "12"),
        ("scheduler 0 (WarmupStableDecayLR): decay_length", "10", "8", "8"),
        ("scheduler 0 (WarmupStableDecayLR): peak_step", "4", "0", "0"),
        ("scheduler 0 (WarmupStableDecayLR): total_steps", "40", "20", "20")]
    assert sorted(branch.steps) == list(range(BRANCH_AT, 20))
    assert [branch.steps[s] for s in range(BRANCH_AT, 20)] == pytest.approx(BRANCH_LRS, rel=1e-12)
    # the weights before the branch are the parent's at step 12
    before = branch.weights_at_start
    assert before.keys() == parent.weights_at[BRANCH_AT].keys()
    assert all(torch.equal(before[n], parent.weights_at[BRANCH_AT][n]) for n in before)
    # the step counters and the optimizer's moments carry on
    assert run.global_step == 20 and int(next(iter(run.optimizers[0].state.values()))["step"]) == 20
    scheduler = branch.optimizer_setup.schedulers[0].scheduler
    assert (scheduler.decay_start, scheduler.last_epoch) == (BRANCH_AT, 20)
    assert scheduler.lengths == {"decay": ("8st", 8), "decay_start": ("now", BRANCH_AT)}
    # its lrs are those of the preview of the branch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecipeWarning)  # the table of what the resume changed
        preview = preview_schedule(Branch(), max_epochs=4, steps_per_epoch=BATCHES,
                                   resume_from=ResumeFrom(Parent(), step=BRANCH_AT, max_epochs=EPOCHS))
    previewed = [r["lr"] for r in preview]
    assert previewed[:BRANCH_AT] == pytest.approx(PARENT_LRS[:BRANCH_AT], rel=1e-12)
    assert previewed[BRANCH_AT:] == [branch.steps[s] for s in range(BRANCH_AT, 20)]
    assert {"step": BRANCH_AT, "optimizer": 0, "label": "decay start"} in preview.markers
    assert [(r["length"], r["written"], r["resolved"]) for r in preview.lengths] == [
        ("decay", "8st", 8), ("decay_start", "now", BRANCH_AT)]


def test_three_branches_from_one_checkpoint_preview_their_own_cooldowns(parent_run):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecipeWarning)
        ends = {}
        for steps, epochs in (("3st", 3), ("8st", 4), ("13ba", 5)):  # each ends with its run: 15, 20, 25 steps
            preview = preview_schedule(Branch(steps), max_epochs=epochs, steps_per_epoch=BATCHES,
                                       resume_from=ResumeFrom(Parent(), step=BRANCH_AT, max_epochs=EPOCHS))
            lrs = [r["lr"] for r in preview]
            ends[steps] = (lrs[:BRANCH_AT] == pytest.approx(PARENT_LRS[:BRANCH_AT], rel=1e-12),
                           [s for s, lr in enumerate(lrs) if lr < 0.1 - 1e-12 and s >= 4], lrs[-1])
    assert ends == {"3st": (True, [12, 13, 14], pytest.approx(0.01, rel=1e-12)),
                    "8st": (True, list(range(12, 20)), pytest.approx(0.01, rel=1e-12)),
                    "13ba": (True, list(range(12, 25)), pytest.approx(0.01, rel=1e-12))}


def test_a_cooldown_that_the_run_cuts_short_warns_with_the_max_steps_that_fits(parent_run):
    directory, _ = parent_run
    branch = Branch()
    run, messages = fit(directory, branch, ckpt=BRANCH_AT, max_steps=16)
    assert messages == [
        "The warmup_stable_decay scheduler cools down from step 12, where training resumes, over 8 steps ('8st') to"
        " step 19, but this run ends after step 15: it stops 50% of the way through the cooldown, at 0.364 of the"
        " peak lr, not at its floor. Set `Trainer(max_steps=20)` (the checkpoint's step plus the cooldown), or a"
        " decay of 4 steps; if that is deliberate, silence this with"
        " `warnings.filterwarnings('ignore', '.*cools down from step')`."]
    assert [branch.steps[s] for s in range(12, 16)] == pytest.approx(BRANCH_LRS[:4], rel=1e-12)


def test_a_cooldown_in_a_fit_that_does_not_resume_is_an_error(tmp_path):
    message = (r"^The warmup_stable_decay scheduler starts its decay where training resumes \(decay_start='now'\),"
               r" but this run does not resume from a checkpoint: resume a stable-phase checkpoint")
    with pytest.raises(RecipeError, match=message):
        trainer(tmp_path, max_epochs=1).fit(Branch(), loader(BATCHES))
    with pytest.raises(RecipeError, match=message):
        preview_schedule(Branch(), max_epochs=1, steps_per_epoch=BATCHES)
    recipe = {"optimizer": "AdamW", "lr": 0.1, "scheduler": {"type": "wsd", "warmup": 0, "decay": "8st",
                                                                "decay_start": "now"}}
    with pytest.raises(RecipeError, match=message):
        preview_schedule(recipe, max_epochs=1, steps_per_epoch=BATCHES)


def test_a_plain_trainer_cools_down_from_where_it_resumes(parent_run):
    """No mixin and no callback of the library: the cooldown anchors itself when Lightning restores its state."""
    directory, _ = parent_run
    branch = PlainBranch()
    run, messages = fit(directory, branch, ckpt=BRANCH_AT, max_steps=20)
    assert messages == []
    assert sorted(branch.steps) == list(range(BRANCH_AT, 20))
    assert [branch.steps[s] for s in range(BRANCH_AT, 20)] == pytest.approx(BRANCH_LRS, rel=1e-12)
    scheduler = run.lr_scheduler_configs[0].scheduler
    assert (scheduler.decay_start, scheduler.decay_length, scheduler.last_epoch) == (BRANCH_AT, 8, 20)
    assert scheduler.lengths == {"decay": ("8st", 8), "decay_start": ("now", BRANCH_AT)}


def checkpoint_branch() -> Branch:
    branch = Branch()
    branch.resume = "checkpoint"
    return branch


@pytest.mark.parametrize("module", [Branch, checkpoint_branch, PlainBranch], ids=["recipe", "checkpoint", "plain"])
def test_a_cooldown_resumed_from_its_own_checkpoint_continues_it(parent_run, tmp_path, module):
    """The branch from step 12 stops at step 17; resumed from its own checkpoint at step 16, it goes on with the
    cooldown that started at step 12 (saved in the scheduler's state), not with a new one from step 16: with the
    mixin under either `resume`, and with a plain Trainer."""
    directory, _ = parent_run
    crashed = Branch() if module is checkpoint_branch else module()  # the branch itself starts under "recipe"
    with pytest.raises(RuntimeError, match="stopped at step 17"):
        fit(directory, crashed, ckpt=BRANCH_AT, saved=tmp_path, callbacks=[StopAt(17)], max_steps=20)
    assert [crashed.steps[s] for s in range(BRANCH_AT, 17)] == pytest.approx(BRANCH_LRS[:5], rel=1e-12)
    resumed = module()
    logged: list[str] = []
    run, messages = fit(tmp_path, resumed, ckpt=16, max_steps=20, logged=logged)
    assert messages == [] and logged == []  # nothing differs from the checkpoint, and the cooldown ends with the run
    assert sorted(resumed.steps) == [16, 17, 18, 19]
    assert [resumed.steps[s] for s in range(16, 20)] == pytest.approx(
        [0.028848752646211458, 0.022057713659400527, 0.015812708797586318, 0.01], rel=1e-12)
    scheduler = run.lr_scheduler_configs[0].scheduler
    assert (scheduler.decay_start, scheduler.last_epoch) == (BRANCH_AT, 20)
    assert scheduler.lengths == {"decay": ("8st", 8), "decay_start": ("now", BRANCH_AT)}


def test_a_resumed_cooldown_that_the_run_outlasts_warns_from_where_it_started(parent_run, tmp_path):
    directory, _ = parent_run
    with pytest.raises(RuntimeError, match="stopped at step 17"):
        fit(directory, Branch(), ckpt=BRANCH_AT, saved=tmp_path, callbacks=[StopAt(17)], max_steps=20)
    resumed = Branch()
    _, messages = fit(tmp_path, resumed, ckpt=16, max_steps=24)
    assert messages == [
        "The warmup_stable_decay scheduler cools down from step 12, where it started before the checkpoint (training"
        " resumes at step 16), over 8 steps ('8st') to step 19, but this run ends after step 23: it trains 4 more"
        " steps at the floor after the cooldown. Set `Trainer(max_steps=20)` (the cooldown's start plus its length),"
        " or a decay of 12 steps; if that is deliberate, silence this with"
        " `warnings.filterwarnings('ignore', '.*cools down from step')`."]
    assert [resumed.steps[s] for s in range(16, 24)] == pytest.approx(
        [0.028848752646211458, 0.022057713659400527, 0.015812708797586318] + [0.01] * 5, rel=1e-12)


def test_a_plain_cooldown_in_a_fit_that_does_not_resume_is_an_error_before_training(tmp_path):
    branch = PlainBranch()
    with pytest.raises(RecipeError) as raised:
        trainer(tmp_path, max_steps=8).fit(branch, loader(BATCHES))
    assert str(raised.value) == (
        "The warmup_stable_decay scheduler starts its decay where training resumes (decay_start='now'), but this run"
        " does not resume from a checkpoint: resume a stable-phase checkpoint (pass `ckpt_path=` to `trainer.fit`; in"
        " a preview, `resume_from=ResumeFrom(...)`), or give decay_start as a position ('80%', '8000st'), or remove"
        " it to decay at the end of the run.")
    assert branch.steps == {}  # not one step trained


# ---------------------------------------------------------------------- a run that decays early and holds its floor


class Holds(Steps):
    """Warms up over 2 steps, decays over 2 from 25% of the run (step 5 of 20) to 10% of the peak, then holds it."""

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=0.1)
        return {"optimizer": opt, "lr_scheduler": warmup_stable_decay(
            opt, warmup=2, decay=2, decay_start="25%", min_lr_ratio=0.1, trainer=self.trainer)}


class RecipeHolds(OptimRecipeMixin, Steps):
    optim_recipe = {"optimizer": "AdamW", "lr": 0.1, "scheduler": {
        "type": "wsd", "warmup": 2, "decay": 2, "decay_start": "25%", "min_lr_ratio": 0.1}}


#: `Holds` over 4 epochs: the warm-up, the peak to step 4, 0.01 + 0.09 x (1 - 1/2) at step 5, the floor 0.01 after.
HOLD_LRS = [0.05, 0.1, 0.1, 0.1, 0.1, 0.055] + [0.01] * 14


@pytest.mark.parametrize(("module", "callbacks"), [(Holds, lambda: [SchedulerCadenceCheck(print_report=False)]),
                                                   (RecipeHolds, list)], ids=["callback", "mixin"])
def test_an_unchanged_run_that_decays_early_and_holds_resumes_exactly(tmp_path, module, callbacks):
    whole = module()
    _, messages = fit(tmp_path, whole, save=True, callbacks=callbacks(), max_epochs=4)
    assert messages == []
    assert [whole.steps[s] for s in range(20)] == pytest.approx(HOLD_LRS, rel=1e-12)
    resumed = module()  # from step 8, in the hold after the decay, with resume='checkpoint' (the default)
    run, messages = fit(tmp_path, resumed, ckpt=8, callbacks=callbacks(), max_epochs=4)
    assert messages == []
    assert resumed.steps == {s: whole.steps[s] for s in range(8, 20)} and run.global_step == 20
    # the same run resumed from its end into a longer run: an extension, which names the choice
    with pytest.raises(RecipeError) as raised:
        fit(tmp_path, module(), ckpt=20, callbacks=callbacks(), max_epochs=8)
    assert str(raised.value) == (
        "Resuming from the checkpoint 'step=20.ckpt' with resume='checkpoint': scheduler 0 (WarmupStableDecayLR)'s"
        " schedule had ended there (its decay ends after step 6 and it holds its floor to the end of its run, step"
        " 19, and it had stepped 20 times; lr 0.01), and this run trains on to step 40. As Lightning resumes, it runs"
        " past its end (the recipe's function on the checkpoint's counter, for a LambdaLR). Choose what the lr does"
        " over the added steps:\n"
        "- stretch the new recipe's schedule over the longer run, placed where training stands (the lr goes to 0.01"
        " there and decays again to the new end): set `resume = \"recipe\"` on the module (or `resume=\"recipe\"` on"
        " ConfigureOptimizersCheck/SchedulerCadenceCheck);\n"
        "- hold the lr at 0.01, where the schedule ended: set `extend_schedule = \"hold\"` on the module;\n"
        "- or train on at a high lr and cool down again: resume a checkpoint from before the decay (a"
        " warmup_stable_decay run's stable phase) with a cooldown (`cooldown(optimizer, steps=...)`, or {'type':"
        " 'wsd', 'decay_start': 'now', ...} in a recipe).")


# ---------------------------------------------------------------------------------- a finished run held at lr 0


class ToZero(Steps):
    """Warms up over 2 steps, decays linearly to 0 over the last 25% of the run."""

    def __init__(self, extend_schedule=None) -> None:
        super().__init__()
        self.extend_schedule = extend_schedule

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=0.1)
        return {"optimizer": opt, "lr_scheduler": warmup_stable_decay(opt, warmup=2, decay="25%",
                                                                      trainer=self.trainer)}


def test_a_finished_run_held_at_lr_0_says_so_and_stretching_it_does_not(tmp_path):
    fit(tmp_path, ToZero(), save=True, callbacks=[SchedulerCadenceCheck(print_report=False)], max_epochs=4)
    held = ToZero(extend_schedule="hold")
    _, messages = fit(tmp_path, held, ckpt=20, callbacks=[SchedulerCadenceCheck(print_report=False)], max_epochs=8)
    assert held.steps == {s: 0.0 for s in range(20, 40)}
    assert messages[0] == (
        "Scheduler 0 (WarmupStableDecayLR)'s schedule had ended at lr 0 in the checkpoint (its decay ends after step"
        " 19): with extend_schedule='hold', the 20 steps this run adds (steps 20 to 39) train at lr 0 and change no"
        " weight. To train on, stretch the new schedule over the longer run (`resume = \"recipe\"` without"
        " extend_schedule='hold'), or resume a checkpoint from before the decay with a cooldown (`cooldown(optimizer,"
        " steps=...)`). If that is deliberate, silence this with"
        " `warnings.filterwarnings('ignore', '.*with extend_schedule=.hold., ')`.")
    # the table of what the checkpoint overrides follows; the watch during training does not warn again
    assert len(messages) == 2 and messages[1].startswith(
        "Resuming from the checkpoint 'step=20.ckpt' with resume='checkpoint' (Lightning's behaviour)")
    stretched = ToZero()
    _, messages = fit(tmp_path, stretched, ckpt=20, max_epochs=8,
                      callbacks=[SchedulerCadenceCheck(print_report=False, resume="recipe")])
    assert messages == []
    assert [stretched.steps[s] for s in range(20, 40)] == pytest.approx(
        [0.1] * 10 + [0.09, 0.08, 0.07, 0.06, 0.05, 0.04, 0.03, 0.02, 0.01, 0.0], rel=1e-12, abs=1e-15)
    # under resume='checkpoint' without a choice: a hold at 0 is not offered
    with pytest.raises(RecipeError) as raised:
        fit(tmp_path, ToZero(), ckpt=20, callbacks=[SchedulerCadenceCheck(print_report=False)], max_epochs=8)
    assert str(raised.value) == (
        "Resuming from the checkpoint 'step=20.ckpt' with resume='checkpoint': scheduler 0 (WarmupStableDecayLR)'s"
        " schedule had ended there (its decay ends after step 19, and it had stepped 20 times; lr 0), and this run"
        " trains on to step 40. As Lightning resumes, it runs past its end (the recipe's function on the checkpoint's"
        " counter, for a LambdaLR). Choose what the lr does over the added steps (holding it where the schedule ended"
        " would train them all at lr 0):\n"
        "- stretch the new recipe's schedule over the longer run, placed where training stands (the lr goes to 0.1"
        " there and decays again to the new end): set `resume = \"recipe\"` on the module (or `resume=\"recipe\"` on"
        " ConfigureOptimizersCheck/SchedulerCadenceCheck);\n"
        "- or train on at a high lr and cool down again: resume a checkpoint from before the decay (a"
        " warmup_stable_decay run's stable phase) with a cooldown (`cooldown(optimizer, steps=...)`, or {'type':"
        " 'wsd', 'decay_start': 'now', ...} in a recipe).")


# ------------------------------------------------------------------------ the lr watch numbers the run's steps


class ZeroFrom(pl.Callback):
    """Sets every lr to 0 before each batch from global step `step` on: by hand, which only training shows."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step >= self.step:
            for group in trainer.optimizers[0].param_groups:
                group["lr"] = 0.0


LR_0_FROM_35 = (
    "Every param group of lr-AdamW has trained at lr 0 since optimizer step 35 (2 steps so far, of the run's 40):"
    " those steps change no weight. Whatever sets its lr (a scheduler, `optimizer_step`, `training_step` or a"
    " callback) has brought it to 0 long before the run ends: size it with the run's optimizer steps"
    " (`self.trainer.estimated_stepping_batches`). If that is deliberate, silence this with"
    " `warnings.filterwarnings('ignore', '.*has trained at lr 0')`.")


@pytest.mark.parametrize("watcher", ["SchedulerCadenceCheck", "LearningRateLogger"])
def test_the_lr_watch_counts_a_resumed_runs_steps_from_where_it_resumed(tmp_path, watcher):
    def watching():
        if watcher == "SchedulerCadenceCheck":
            return {"callbacks": [SchedulerCadenceCheck(print_report=False)]}
        return {"callbacks": [LearningRateLogger()], "logger": Recorder()}

    sizes = {"max_epochs": EPOCHS}
    with_zero = watching()
    _, messages = fit(tmp_path, Parent(), saved=tmp_path, **{**with_zero, "callbacks": [
        *with_zero["callbacks"], ZeroFrom(35)]}, **sizes)
    assert messages == [LR_0_FROM_35]
    resumed = watching()  # from step 32: the same step, of the same run
    model = Parent()
    _, messages = fit(tmp_path, model, ckpt=32, **{**resumed, "callbacks": [*resumed["callbacks"], ZeroFrom(35)]},
                      **sizes)
    assert messages == [LR_0_FROM_35]
    assert [model.steps[s] for s in range(32, 40)] == [PARENT_LRS[32], PARENT_LRS[33], PARENT_LRS[34]] + [0.0] * 5
    _, messages = fit(tmp_path, Parent(), ckpt=32, **watching(), **sizes)  # nothing sets it to 0: silent
    assert messages == []


# -------------------------------------------------------------------------------------- the recipe's keys


@pytest.mark.parametrize(("key", "meant"), [("warmup_steps", "warmup"), ("num_warmup_steps", "warmup"),
                                            ("warmup_epochs", "warmup"), ("decay_steps", "decay")])
def test_the_keys_of_other_libraries_suggest_the_wsd_recipes_own(key, meant):
    written = {"type": "wsd", "warmup": 8, "decay": "20%"}
    written = {**{k: v for k, v in written.items() if k != meant}, key: written[meant]}
    with pytest.raises(RecipeError) as raised:
        preview_schedule({"optimizer": "AdamW", "lr": 1e-3, "scheduler": written}, max_epochs=10, steps_per_epoch=8)
    assert str(raised.value) == (
        f"Unknown key '{key}' in the 'wsd' scheduler: did you mean '{meant}'? Valid keys: 'warmup', 'decay',"
        " 'decay_shape', 'decay_start', 'min_lr', 'min_lr_ratio', 'warmup_start', 'total_steps', 'trainer', 'name'.")


def test_a_decay_written_as_a_fraction_is_told_to_write_a_percentage():
    with pytest.raises(RecipeError) as raised:
        preview_schedule({"optimizer": "AdamW", "lr": 1e-3, "scheduler": {"type": "wsd", "warmup": 8, "decay": 0.2}},
                         max_epochs=10, steps_per_epoch=8)
    assert str(raised.value) == (
        "`decay` must be a length of at least 1 optimizer step (an int, or '10ep', '500st', '2000ba', '5%'), got 0.2:"
        " a share of the run is written in percent, '20%'.")
    records = preview_schedule({"optimizer": "AdamW", "lr": 1e-3, "scheduler": {"type": "wsd", "warmup": 8,
                                                                               "decay": "20%"}},
                               max_epochs=10, steps_per_epoch=8)
    assert [(r["length"], r["written"], r["resolved"]) for r in records.lengths] == [("decay", "20%", 16)]
