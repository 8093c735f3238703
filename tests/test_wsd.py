"""Warmup-stable-decay on a real Trainer, and cooldown branches from a stable-phase checkpoint.

The parent run trains 8 epochs of 5 batches (40 optimizer steps) with `warmup_stable_decay` (AdamW at lr 0.1, a
1-epoch warm-up, a (1-sqrt) decay over the last 25% of the run to 10% of the peak) and saves a checkpoint every 4
steps; step 12 is in the stable phase, mid-epoch 2. Branches resume it with a cooldown (`cooldown`,
``decay_start='now'``) under ``resume="recipe"``; their lrs are compared with the values written out here and with
`preview_schedule(resume_from=...)`, their weights before the branch with the parent's.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from helpers import TinyRegressor, loader, pl, trainer

from lightning_optim_recipes import (
    OptimRecipeMixin,
    RecipeError,
    RecipeWarning,
    ResumeFrom,
    cooldown,
    preview_schedule,
    warmup_stable_decay,
)

pytestmark = [
    pytest.mark.trainer,
    pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty"),
    pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended"),
    pytest.mark.filterwarnings("ignore:Resuming from:lightning_optim_recipes.errors.RecipeWarning"),
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


class Recorded(OptimRecipeMixin, TinyRegressor):
    """Records the lr at every global step, and the weights before the first step of the fit."""

    resume = "recipe"

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


def fit(directory, model, ckpt=None, save=False, **sizes):
    callbacks = [pl.callbacks.ModelCheckpoint(dirpath=directory, filename="{step}", every_n_train_steps=4,
                                              save_top_k=-1)] if save else []
    run = trainer(directory, enable_checkpointing=save, callbacks=callbacks, **sizes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.fit(model, loader(BATCHES), ckpt_path=None if ckpt is None else str(directory / f"step={ckpt}.ckpt"))
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
    run, messages = fit(directory, branch, ckpt=BRANCH_AT, max_epochs=4)  # 20 steps: the cooldown's end
    assert [m for m in messages if not m.startswith("Resuming from")] == []  # its end fits the run: no warning
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
    assert [m for m in messages if not m.startswith("Resuming from")] == [
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
