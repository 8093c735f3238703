"""Resume with a changed recipe (`lightning_optim_recipes.resume`): real Trainer, checkpoints on disk.

Three setups train 4 epochs of 5 batches (20 optimizer steps) and save a checkpoint every 4 steps: step 12 is in the
middle of epoch 2, step 20 the end of epoch 3. Each is resumed, under ``resume="checkpoint"`` and ``"recipe"``, with
(1) a longer run (8 epochs) from step 20, and (2) a longer run with other hyper-parameters (peak lr, milestones,
``T_max``) and ``Adam`` changed to ``AdamW`` with another weight decay, from step 12. Each resume checks the
warning's rows, the lr of every param group at every optimizer step after the resume against the closed form of the
schedule that applies (written out here), ``global_step``, the optimizers' step counts and `SchedulerCadenceCheck`'s
counters over the whole run. The table is a `RecipeWarning` under ``resume="checkpoint"`` (the checkpoint overrides
what the module built) and a line on the library's logger under ``resume="recipe"`` (the recipe was chosen).

* A, `OptimRecipeMixin`: one Adam, `warmup_cosine` (3 warm-up steps, ``min_lr`` 0.001, total steps from the Trainer).
* B, no mixin, `SchedulerCadenceCheck(resume=...)`: `param_groups` (4 groups, the decoder at lr / 10) and a
  MultiStepLR ('epoch', gamma 0.5).
* C, `AlternatingOptimizersMixin`, critic 2 : generator 1 on the run-wide cycle: the critic SGD (momentum) with a
  'step' CosineAnnealingLR (``eta_min`` 0.001), the generator Adam with a 'step' StepLR (step_size 2, gamma 0.5).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
import torch
from helpers import TinyRegressor, library_log, loader, pl, trainer
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, StepLR

from lightning_optim_recipes import (
    OptimRecipeMixin,
    RecipeError,
    RecipeWarning,
    SchedulerCadenceCheck,
    multistep,
    param_groups,
    preview_schedule,
    scheduled,
    warmup_cosine,
)
from lightning_optim_recipes.mixins.alternating import AlternatingOptimizersMixin
from lightning_optim_recipes.resume import RECORD_KEY, ResumeFrom, place_scheduler, reconcile
from lightning_optim_recipes.validation import OptimizerSetup, SchedulerSpec

pytestmark = [
    pytest.mark.trainer,
    pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty"),
    pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended"),
]

BATCHES, OLD_EPOCHS, NEW_EPOCHS = 5, 4, 8
OLD_TOTAL, NEW_TOTAL = BATCHES * OLD_EPOCHS, BATCHES * NEW_EPOCHS
MID, END = 12, 20  # checkpoints: mid-epoch 2 (after its batch 1), and the end of epoch 3
CHOICES = ("checkpoint", "recipe")


def g(value: float) -> str:
    """A number as the table shows it."""
    return f"{value:.6g}"


class Messages(list):
    """The RecipeWarnings' messages of a fit; `logged`: what the library logged."""

    logged: list[str]


def fit(directory: Path, model, epochs: int, ckpt: int | None = None, check=None, save: bool = False):
    """Fit with a SchedulerCadenceCheck (checkpoints every 4 steps when `save`); returns the trainer, the check and
    the RecipeWarnings' messages (a `Messages`, with what the library logged)."""
    check = check or SchedulerCadenceCheck(print_report=False)
    callbacks = [check]
    if save:
        callbacks.append(pl.callbacks.ModelCheckpoint(dirpath=directory, filename="{step}", every_n_train_steps=4,
                                                      save_top_k=-1))
    run = trainer(directory, max_epochs=epochs, enable_checkpointing=save, callbacks=callbacks)
    with warnings.catch_warnings(record=True) as caught, library_log() as logged:
        warnings.simplefilter("always")
        run.fit(model, loader(BATCHES), ckpt_path=None if ckpt is None else str(directory / f"step={ckpt}.ckpt"))
    ours = [w for w in caught if issubclass(w.category, RecipeWarning)]
    for w in ours:  # they point at the module's configure_optimizers
        assert (w.filename, w.lineno) == (__file__, type(model).configure_optimizers.__wrapped__.__code__.co_firstlineno
                                          if hasattr(type(model).configure_optimizers, "__wrapped__")
                                          else type(model).configure_optimizers.__code__.co_firstlineno), w
    messages = Messages(str(w.message) for w in ours)
    messages.logged = list(logged)
    return run, check, messages


def tables(messages: Messages) -> list[str]:
    """The resume's tables: warned under resume='checkpoint', logged (never warned) under resume='recipe'."""
    warned = [m for m in messages if m.startswith("Resuming from") and "\nwhat " in m]
    said = [m for m in messages.logged if m.startswith("Resuming from") and "\nwhat " in m]
    assert all(" with resume='checkpoint' " in m for m in warned), warned
    assert all(" with resume='recipe': " in m for m in said), said
    return warned + said


def rows(messages: Messages) -> list[tuple[str, ...]]:
    """The table of the one 'Resuming from' message with a table, as (what, checkpoint, new recipe, training uses)."""
    found = tables(messages)
    assert len(found) == 1, (messages, messages.logged)
    lines = found[0].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("what "))
    found = []
    for line in lines[start + 1:]:
        if " | " not in line:
            break
        found.append(tuple(cell.strip() for cell in line.split(" | ")))
    return found


def dropped(messages: list[str]) -> list[str]:
    return [m for m in messages if "state in the checkpoint" in m]


def report_counts(check) -> tuple[list[tuple], list[tuple]]:
    report = check.report
    return ([(s.expected, s.expected_max, s.actual) for s in report.schedulers],
            [(o.expected, o.actual) for o in report.optimizers])


def adam_steps(optimizer) -> int:
    return int(next(iter(optimizer.state.values()))["step"])


# ------------------------------------------------------------------------------ A: warmup_cosine, OptimRecipeMixin


MIN_LR = 0.001


def warm(step: int, total: int, peak: float) -> float:
    """`warmup_cosine(warmup_steps=3, min_lr=0.001)` over `total` steps at optimizer lr `peak`: (k + 1) / 3 of it at
    steps 0 and 1, then half a cosine from the peak at step 2 to min_lr at step total - 1."""
    if step < 2:
        return peak * (step + 1) / 3
    final = MIN_LR / peak
    progress = min((step - 2) / (total - 3), 1.0)
    return peak * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress)))


class Warm(OptimRecipeMixin, TinyRegressor):
    """Records the lr at every global step."""

    def __init__(self, peak: float = 0.1, optimizer=torch.optim.Adam, weight_decay: float = 0.0,
                 resume: str | None = None) -> None:
        super().__init__()
        self.peak, self.optimizer, self.weight_decay = peak, optimizer, weight_decay
        if resume is not None:
            self.resume = resume
        self.steps: dict[int, tuple[float, ...]] = {}

    def training_step(self, batch, batch_idx):
        self.steps[self.trainer.global_step] = tuple(g["lr"] for g in self.trainer.optimizers[0].param_groups)
        return super().training_step(batch, batch_idx)

    def configure_optimizers(self):
        opt = self.optimizer(self.parameters(), lr=self.peak, weight_decay=self.weight_decay)
        return {"optimizer": opt,
                "lr_scheduler": warmup_cosine(opt, warmup_steps=3, min_lr=MIN_LR, trainer=self.trainer)}


@pytest.fixture(scope="module")
def warm_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("warm")
    model = Warm()
    run, _, messages = fit(directory, model, OLD_EPOCHS, save=True)
    assert not messages and run.global_step == OLD_TOTAL
    assert model.steps[5] == pytest.approx((warm(5, OLD_TOTAL, 0.1),))
    return directory, model


def table_message(messages: Messages) -> str:
    (message,) = tables(messages)
    return message


def test_warmup_cosine_trained_longer_is_stretched_under_recipe(warm_run):
    """The checkpoint's schedule had ended (step 20 of 20): resume='recipe' stretches the new one over the longer
    run, and the table's note says so."""
    directory, _ = warm_run
    model = Warm(resume="recipe")
    run, check, messages = fit(directory, model, NEW_EPOCHS, ckpt=END)
    old_lr, new_lr = warm(END, OLD_TOTAL, 0.1), warm(END, NEW_TOTAL, 0.1)
    assert old_lr == pytest.approx(MIN_LR, rel=1e-12)  # the checkpoint's lr is the floor
    assert rows(messages) == [
        ("optimizer 0, group 0: lr", g(old_lr), g(new_lr), g(new_lr)),
        ("scheduler 0 (LambdaLR): total_steps", "20", "40", "40"),
    ]
    assert ("Scheduler 0 (LambdaLR)'s schedule had ended in the checkpoint (total_steps=20; lr 0.001): the new"
            f" schedule, placed at step 20, takes it to {g(new_lr)} and runs to the new end (stretched over the"
            " longer run). To keep the lr where it ended instead, set `extend_schedule = \"hold\"` on the module;"
            " `extend_schedule = \"stretch\"` drops this note.") in table_message(messages).splitlines()
    assert sorted(model.steps) == list(range(END, NEW_TOTAL))
    for step, lrs in model.steps.items():
        assert lrs == pytest.approx((warm(step, NEW_TOTAL, 0.1),), rel=1e-9), step
    assert run.global_step == NEW_TOTAL
    assert adam_steps(run.optimizers[0]) == NEW_TOTAL  # the moments and their step count were kept
    assert report_counts(check) == ([(NEW_TOTAL,) * 3], [(NEW_TOTAL, NEW_TOTAL)])
    assert model.resume_report.choice == "recipe" and model.resume_report.positions == (END,)


def test_a_finished_schedule_trained_longer_under_checkpoint_is_an_error_naming_the_choice(warm_run):
    directory, _ = warm_run
    new_lr = warm(END, NEW_TOTAL, 0.1)
    with pytest.raises(RecipeError) as raised:
        fit(directory, Warm(resume="checkpoint"), NEW_EPOCHS, ckpt=END)
    assert str(raised.value) == (
        "Resuming from the checkpoint 'step=20.ckpt' with resume='checkpoint': scheduler 0 (LambdaLR)'s schedule had"
        " ended there (total_steps=20, and it had stepped 20 times; lr 0.001), and this run trains on to step 40. As"
        " Lightning resumes, it runs past its end (the recipe's function on the checkpoint's counter, for a"
        " LambdaLR). Choose what the lr does over the added steps:\n"
        f"- stretch the new recipe's schedule over the longer run, placed where training stands (the lr goes to"
        f" {g(new_lr)} there and decays again to the new end): set `resume = \"recipe\"` on the module (or"
        " `resume=\"recipe\"` on ConfigureOptimizersCheck/SchedulerCadenceCheck);\n"
        "- hold the lr at 0.001, where the schedule ended: set `extend_schedule = \"hold\"` on the module;\n"
        "- or train on at a high lr and cool down again: resume a checkpoint from before the decay (a"
        " warmup_stable_decay run's stable phase) with a cooldown (`cooldown(optimizer, steps=...)`, or {'type':"
        " 'wsd', 'decay_start': 'now', ...} in a recipe)."
    )


@pytest.mark.parametrize("choice", CHOICES)
def test_warmup_cosine_trained_longer_held_at_its_floor(warm_run, choice):
    directory, _ = warm_run
    model = Warm(resume=choice)
    model.extend_schedule = "hold"
    run, check, messages = fit(directory, model, NEW_EPOCHS, ckpt=END)
    new_lr = warm(END, NEW_TOTAL, 0.1)
    assert rows(messages) == [
        ("optimizer 0, group 0: lr", "0.001", g(new_lr), "0.001"),
        ("scheduler 0 (LambdaLR): total_steps", "20", "40", "40" if choice == "recipe" else "40 (the function)"),
    ]
    assert ("Scheduler 0 (LambdaLR)'s schedule had ended in the checkpoint (total_steps=20): extend_schedule='hold'"
            " keeps its lr at 0.001 for the rest of the run.") in table_message(messages).splitlines()
    assert model.steps == {step: pytest.approx((MIN_LR,), rel=1e-12) for step in range(END, NEW_TOTAL)}
    assert run.global_step == NEW_TOTAL and adam_steps(run.optimizers[0]) == NEW_TOTAL
    assert report_counts(check) == ([(NEW_TOTAL,) * 3], [(NEW_TOTAL, NEW_TOTAL)])


def test_the_preview_of_a_finished_schedule_held_or_refused(warm_run):
    new_lr = warm(END, NEW_TOTAL, 0.1)
    point = ResumeFrom(Warm(), step=END, max_epochs=OLD_EPOCHS, extend_schedule="hold")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecipeWarning)
        held = preview_schedule(Warm(resume="recipe"), max_epochs=NEW_EPOCHS, steps_per_epoch=BATCHES,
                                resume_from=point)
        stretched = preview_schedule(Warm(resume="recipe"), max_epochs=NEW_EPOCHS, steps_per_epoch=BATCHES,
                                     resume_from=point._replace(extend_schedule=None))
    assert [r["lr"] for r in held][END:] == pytest.approx([MIN_LR] * (NEW_TOTAL - END), rel=1e-12)
    assert [r["lr"] for r in stretched][END] == pytest.approx(new_lr, rel=1e-12)
    with pytest.raises(RecipeError, match=r"^`extend_schedule` must be 'stretch' or 'hold' \(or None\), got 'rewarm'"):
        preview_schedule(Warm(resume="recipe"), max_epochs=NEW_EPOCHS, steps_per_epoch=BATCHES,
                         resume_from=point._replace(extend_schedule="rewarm"))


@pytest.mark.parametrize("choice", CHOICES)
def test_warmup_cosine_new_peak_and_adamw_mid_epoch(warm_run, choice):
    directory, _ = warm_run
    model = Warm(peak=0.05, optimizer=torch.optim.AdamW, weight_decay=0.01, resume=choice)
    run, check, messages = fit(directory, model, NEW_EPOCHS, ckpt=MID)
    recipe = choice == "recipe"
    old_lr, new_lr = warm(MID, OLD_TOTAL, 0.1), warm(MID, NEW_TOTAL, 0.05)
    assert rows(messages) == [
        ("optimizer 0: class", "Adam", "AdamW",
         "AdamW (state dropped)" if recipe else "AdamW loaded with Adam's param groups and state"),
        ("optimizer 0, group 0: lr", g(old_lr), g(new_lr), g(new_lr if recipe else old_lr)),
        ("optimizer 0, group 0: initial_lr", "0.1", "0.05", "0.05" if recipe else "0.1"),
        ("optimizer 0, group 0: weight_decay", "0", "0.01", "0.01" if recipe else "0"),
        # AdamW forces decoupled weight decay when it loads Adam's groups
        ("optimizer 0, group 0: decoupled_weight_decay", "False", "True", "True"),
        ("scheduler 0 (LambdaLR): total_steps", "20", "40", "40" if recipe else "40 (the function)"),
    ]
    assert len(dropped(messages)) == (1 if recipe else 0)
    if recipe:
        assert "because its class changed (Adam -> AdamW)" in dropped(messages)[0]
    assert sorted(model.steps) == list(range(MID, NEW_TOTAL))
    for step, lrs in model.steps.items():
        if recipe:
            expected = warm(step, NEW_TOTAL, 0.05)
        elif step == MID:
            expected = old_lr
        else:  # the new function (written for lr 0.05) on the checkpoint's base lr 0.1
            expected = 0.1 * warm(step, NEW_TOTAL, 0.05) / 0.05
        assert lrs == pytest.approx((expected,), rel=1e-9), step
    optimizer = run.optimizers[0]
    assert type(optimizer) is torch.optim.AdamW
    assert optimizer.param_groups[0]["weight_decay"] == (0.01 if recipe else 0)
    assert run.global_step == NEW_TOTAL
    assert adam_steps(optimizer) == (NEW_TOTAL - MID if recipe else NEW_TOTAL)  # dropped: counts from the resume
    assert report_counts(check) == ([(NEW_TOTAL,) * 3], [(NEW_TOTAL, NEW_TOTAL)])


@pytest.mark.parametrize("choice", CHOICES)
def test_an_unchanged_recipe_resumes_exactly_and_silently(warm_run, tmp_path, choice):
    directory, reference = warm_run
    model = Warm(resume=choice)
    run, check, messages = fit(directory, model, OLD_EPOCHS, ckpt=MID)
    assert messages == []
    assert model.steps == {s: reference.steps[s] for s in range(MID, OLD_TOTAL)}  # bit for bit
    assert model.resume_report.differences == () and check.resume_report is model.resume_report


@pytest.mark.parametrize("choice", CHOICES)
def test_preview_of_a_resumed_run_agrees_with_the_fit(warm_run, choice):
    directory, reference = warm_run
    model = Warm(peak=0.05, optimizer=torch.optim.AdamW, weight_decay=0.01, resume=choice)
    fit(directory, model, NEW_EPOCHS, ckpt=MID)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        preview = preview_schedule(Warm(peak=0.05, optimizer=torch.optim.AdamW, weight_decay=0.01, resume=choice),
                                   max_epochs=NEW_EPOCHS, steps_per_epoch=BATCHES,
                                   resume_from=ResumeFrom(Warm(), step=MID, max_epochs=OLD_EPOCHS))
    previewed = {r["step"]: r["lr"] for r in preview}
    assert sorted(previewed) == list(range(NEW_TOTAL))
    assert [previewed[s] for s in range(MID)] == [reference.steps[s][0] for s in range(MID)]  # the old schedule
    assert [previewed[s] for s in range(MID, NEW_TOTAL)] == pytest.approx(
        [model.steps[s][0] for s in range(MID, NEW_TOTAL)], rel=1e-12)  # then what the resumed fit did
    assert preview.resume_report.rows() == model.resume_report.rows()
    assert {"step": MID, "optimizer": 0, "label": f"resume ({choice})"} in preview.markers
    assert any("Resuming from the checkpoint at step 12" in str(w.message) for w in caught)


def test_the_module_option_and_a_callback(tmp_path):
    class Recipe(Warm):
        resume = "recipe"

    with pytest.raises(RecipeError, match=r"Recipe.resume = 'recipe' and SchedulerCadenceCheck\(resume='checkpoint'\)"
                                          " disagree"):
        fit(tmp_path, Recipe(), 1, check=SchedulerCadenceCheck(resume="checkpoint"))
    with pytest.raises(RecipeError, match="`resume` must be 'checkpoint' or 'recipe', got 'Recipe'"):
        SchedulerCadenceCheck(resume="Recipe")
    with pytest.raises(RecipeError, match=r"`Warm.resume` must be 'checkpoint' or 'recipe', got 'new'"):
        fit(tmp_path, Warm(resume="new"), 1)


def test_a_callback_chooses_for_a_module_that_does_not(warm_run):
    directory, _ = warm_run
    model = Warm(peak=0.05)
    check = SchedulerCadenceCheck(print_report=False, resume="recipe")
    _, _, messages = fit(directory, model, OLD_EPOCHS, ckpt=MID, check=check)
    assert model.resume_report.choice == "recipe" and check.resume_report is model.resume_report
    assert model.steps[MID] == pytest.approx((warm(MID, OLD_TOTAL, 0.05),))
    assert rows(messages)[1] == ("optimizer 0, group 0: initial_lr", "0.1", "0.05", "0.05")


def test_checkpoints_record_classes_and_cadence(warm_run):
    directory, _ = warm_run
    checkpoint = torch.load(directory / f"step={MID}.ckpt", weights_only=True)
    assert checkpoint["optimizer_states"][0][RECORD_KEY] == {
        "class": "torch.optim.adam.Adam", "schedulers": [[0, "torch.optim.lr_scheduler.LambdaLR", "step", 1]]}


# ------------------------------------------------------------------ B: param groups and MultiStepLR, no mixin


class Groups(TinyRegressor):
    """Groups decay, no_decay, decoder, decoder/no_decay (the decoder at lr / 10); records every group's lr."""

    def __init__(self, lr: float = 0.1, milestones=(2, 3), optimizer=torch.optim.Adam, weight_decay: float = 1e-4,
                 interval: str = "epoch", decoder_override: bool = True) -> None:
        super().__init__()
        self.lr, self.milestones, self.optimizer, self.weight_decay = lr, list(milestones), optimizer, weight_decay
        self.interval, self.decoder_override = interval, decoder_override
        self.steps: dict[int, tuple[float, ...]] = {}

    def training_step(self, batch, batch_idx):
        self.steps[self.trainer.global_step] = tuple(g["lr"] for g in self.trainer.optimizers[0].param_groups)
        return super().training_step(batch, batch_idx)

    def configure_optimizers(self):
        overrides = {"decoder": {"lr": self.lr / 10}} if self.decoder_override else None
        opt = self.optimizer(param_groups(self, weight_decay=self.weight_decay, overrides=overrides), lr=self.lr)
        return [opt], [multistep(opt, milestones=self.milestones, gamma=0.5, interval=self.interval)]


GROUPS = ("'decay'", "'no_decay'", "'decoder'", "'decoder/no_decay'")
DECAYED = ("'decay'", "'decoder'")


def multistep_lrs(lr: float, milestones, position: int) -> tuple[float, ...]:
    """Every group's lr after `position` scheduler steps: halved at each milestone reached; the decoder's at lr / 10."""
    factor = 0.5 ** sum(1 for m in milestones if m <= position)
    return (lr * factor, lr * factor, lr / 10 * factor, lr / 10 * factor)


@pytest.fixture(scope="module")
def groups_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("groups")
    model = Groups()
    run, _, messages = fit(directory, model, OLD_EPOCHS, save=True)
    assert not messages and run.global_step == OLD_TOTAL
    return directory, model


@pytest.mark.parametrize("choice", CHOICES)
def test_param_groups_multistep_trained_longer_with_new_milestones(groups_run, choice):
    directory, _ = groups_run
    model = Groups(milestones=(2, 6))
    run, check, messages = fit(directory, model, NEW_EPOCHS, ckpt=END,
                               check=SchedulerCadenceCheck(print_report=False, resume=choice))
    recipe = choice == "recipe"
    old, new = multistep_lrs(0.1, (2, 3), 4), multistep_lrs(0.1, (2, 6), 4)  # 4 epochs ended
    assert rows(messages) == [
        (f"optimizer 0, group {name}: lr", g(o), g(n), g(n if recipe else o)) for name, o, n in zip(GROUPS, old, new)
    ] + [("scheduler 0 (MultiStepLR): milestones", "[2, 3]", "[2, 6]", "[2, 6]" if recipe else "[2, 3]")]
    assert sorted(model.steps) == list(range(END, NEW_TOTAL))
    for step, lrs in model.steps.items():
        epoch = step // BATCHES
        expected = multistep_lrs(0.1, (2, 6), epoch) if recipe else multistep_lrs(0.1, (2, 3), epoch)
        assert lrs == pytest.approx(expected, rel=1e-12), step
    assert run.global_step == NEW_TOTAL and adam_steps(run.optimizers[0]) == NEW_TOTAL
    assert report_counts(check) == ([(NEW_EPOCHS,) * 3], [(NEW_TOTAL, NEW_TOTAL)])


@pytest.mark.parametrize("choice", CHOICES)
def test_param_groups_new_lr_milestones_and_adamw_mid_epoch(groups_run, choice):
    directory, _ = groups_run
    model = Groups(lr=0.2, milestones=(3, 6), optimizer=torch.optim.AdamW, weight_decay=0.05)
    run, check, messages = fit(directory, model, NEW_EPOCHS, ckpt=MID,
                               check=SchedulerCadenceCheck(print_report=False, resume=choice))
    recipe = choice == "recipe"
    position = MID // BATCHES  # epochs 0 and 1 ended
    old, new = multistep_lrs(0.1, (2, 3), position), multistep_lrs(0.2, (3, 6), position)
    old_base, new_base = multistep_lrs(0.1, (), 0), multistep_lrs(0.2, (), 0)
    expected_rows = [("optimizer 0: class", "Adam", "AdamW",
                      "AdamW (state dropped)" if recipe else "AdamW loaded with Adam's param groups and state")]
    for name, o, n, ob, nb in zip(GROUPS, old, new, old_base, new_base):
        expected_rows += [(f"optimizer 0, group {name}: lr", g(o), g(n), g(n if recipe else o)),
                          (f"optimizer 0, group {name}: initial_lr", g(ob), g(nb), g(nb if recipe else ob))]
        if name in DECAYED:
            expected_rows.append((f"optimizer 0, group {name}: weight_decay", "0.0001", "0.05",
                                  "0.05" if recipe else "0.0001"))
        expected_rows.append((f"optimizer 0, group {name}: decoupled_weight_decay", "False", "True", "True"))
    expected_rows.append(("scheduler 0 (MultiStepLR): milestones", "[2, 3]", "[3, 6]", "[3, 6]" if recipe
                          else "[2, 3]"))
    assert rows(messages) == expected_rows
    assert len(dropped(messages)) == (1 if recipe else 0)
    for step, lrs in model.steps.items():
        epoch = step // BATCHES
        expected = multistep_lrs(0.2, (3, 6), epoch) if recipe else multistep_lrs(0.1, (2, 3), epoch)
        assert lrs == pytest.approx(expected, rel=1e-12), step
    assert sorted(model.steps) == list(range(MID, NEW_TOTAL))
    assert run.global_step == NEW_TOTAL
    assert adam_steps(run.optimizers[0]) == (NEW_TOTAL - MID if recipe else NEW_TOTAL)
    assert report_counts(check) == ([(NEW_EPOCHS,) * 3], [(NEW_TOTAL, NEW_TOTAL)])


def test_another_layout_is_an_error_under_checkpoint_and_drops_the_moments_under_recipe(groups_run):
    directory, _ = groups_run
    with pytest.raises(RecipeError, match=r"Cannot resume from the checkpoint 'step=12.ckpt' with"
                                          r" resume='checkpoint': optimizer 0 has 2 param groups, the checkpoint's 4"):
        fit(directory, Groups(decoder_override=False), OLD_EPOCHS, ckpt=MID)
    model = Groups(decoder_override=False)
    run, check, messages = fit(directory, model, OLD_EPOCHS, ckpt=MID,
                               check=SchedulerCadenceCheck(print_report=False, resume="recipe"))
    assert "because its param groups changed (4 groups of 1, 3, 1, 1 parameters -> 2 groups of 2, 4 parameters)" \
           in dropped(messages)[0]
    assert rows(messages) == [("optimizer 0: param groups", "4", "2", "2")]
    for step, lrs in model.steps.items():
        assert lrs == pytest.approx(multistep_lrs(0.1, (2, 3), step // BATCHES)[:2], rel=1e-12), step
    assert adam_steps(run.optimizers[0]) == OLD_TOTAL - MID
    assert report_counts(check) == ([(OLD_EPOCHS,) * 3], [(OLD_TOTAL, OLD_TOTAL)])


def test_an_epoch_schedule_turned_into_a_step_schedule(groups_run):
    """'epoch' -> 'step': the new schedule continues at the optimizer steps trained (12), not at the 2 epoch steps
    of the checkpoint; the cadence check counts the run as if the schedule had been per step from the start."""
    directory, _ = groups_run
    model = Groups(milestones=(15, 30), interval="step")
    run, check, messages = fit(directory, model, NEW_EPOCHS, ckpt=MID,
                               check=SchedulerCadenceCheck(print_report=False, resume="recipe"))
    assert rows(messages)[-3:] == [
        ("scheduler 0 (MultiStepLR): interval", "epoch", "step", "step"),
        ("scheduler 0 (MultiStepLR): milestones", "[2, 3]", "[15, 30]", "[15, 30]"),
        ("scheduler 0 (MultiStepLR): steps taken", "2", "12", "12"),
    ]
    for step, lrs in model.steps.items():
        assert lrs == pytest.approx(multistep_lrs(0.1, (15, 30), step), rel=1e-12), step
    assert report_counts(check) == ([(NEW_TOTAL,) * 3], [(NEW_TOTAL, NEW_TOTAL)])
    # under "checkpoint": the checkpoint's milestones, counted on in steps from its 2 epoch steps
    model = Groups(milestones=(15, 30), interval="step")
    run, check, messages = fit(directory, model, NEW_EPOCHS, ckpt=MID)
    assert rows(messages)[-2:] == [("scheduler 0 (MultiStepLR): milestones", "[2, 3]", "[15, 30]", "[2, 3]"),
                                   ("scheduler 0 (MultiStepLR): steps taken", "2", "12", "2")]
    for step, lrs in model.steps.items():
        assert lrs == pytest.approx(multistep_lrs(0.1, (2, 3), step - MID + 2), rel=1e-12), step
    assert report_counts(check) == ([(NEW_TOTAL - MID + 2,) * 3], [(NEW_TOTAL, NEW_TOTAL)])


class TwoSchedules(TinyRegressor):
    """A per-step ExponentialLR beside a per-epoch CosineAnnealingLR (eta_min > 0) on one SGD: the order in which
    they step changes the lr."""

    def __init__(self, gamma: float) -> None:
        super().__init__()
        self.gamma = gamma
        self.steps: dict[int, tuple[float, ...]] = {}

    def training_step(self, batch, batch_idx):
        self.steps[self.trainer.global_step] = tuple(g["lr"] for g in self.trainer.optimizers[0].param_groups)
        return super().training_step(batch, batch_idx)

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        return [opt], [scheduled(torch.optim.lr_scheduler.ExponentialLR(opt, self.gamma), interval="step"),
                       scheduled(CosineAnnealingLR(opt, T_max=NEW_EPOCHS, eta_min=0.01), interval="epoch")]


def test_two_schedulers_on_one_optimizer_continue_as_if_from_the_start(tmp_path):
    """Under "recipe", a new gamma gives, after the resume, exactly the lrs of a run that used it from the start:
    the two schedulers are placed in the order training steps them."""
    fit(tmp_path, TwoSchedules(0.9), OLD_EPOCHS, save=True)
    from_start = TwoSchedules(0.8)
    fit(tmp_path / "from_start", from_start, NEW_EPOCHS)
    model = TwoSchedules(0.8)
    _, check, messages = fit(tmp_path, model, NEW_EPOCHS, ckpt=MID,
                             check=SchedulerCadenceCheck(print_report=False, resume="recipe"))
    assert rows(messages)[1] == ("scheduler 0 (ExponentialLR): gamma", "0.9", "0.8", "0.8")
    assert model.steps == {s: from_start.steps[s] for s in range(MID, NEW_TOTAL)}
    assert report_counts(check) == ([(NEW_TOTAL,) * 3, (NEW_EPOCHS,) * 3], [(NEW_TOTAL, NEW_TOTAL)])


# ------------------------------------------------------------------------------ C: alternating, critic 2 : gen 1


def critic_steps(position: int) -> int:
    """Critic steps before run-wide position `position` (the critic trains at p % 3 in {0, 1})."""
    return sum(1 for p in range(position) if p % 3 != 2)


def cosine(n: int, t_max: int, base: float) -> float:
    return 0.001 + (base - 0.001) * (1 + math.cos(math.pi * n / t_max)) / 2


def step_lr(n: int) -> float:
    return 0.05 * 0.5 ** (n // 2)


OLD_T_MAX, NEW_T_MAX = critic_steps(OLD_TOTAL), critic_steps(NEW_TOTAL)  # 14, 27: the critic's steps in the run


class Gan(AlternatingOptimizersMixin, pl.LightningModule):
    alternation = {"critic_step": 2, "generator_step": 1}
    alternation_cycle = "run"

    def __init__(self, critic_lr: float = 0.1, t_max: int = OLD_T_MAX, generator_optimizer=torch.optim.Adam,
                 weight_decay: float = 0.0, resume: str = "checkpoint") -> None:
        super().__init__()
        self.critic, self.generator = nn.Linear(4, 1), nn.Linear(4, 4)
        self.critic_lr, self.t_max = critic_lr, t_max
        self.generator_optimizer, self.weight_decay, self.resume = generator_optimizer, weight_decay, resume
        self.steps: dict[int, tuple] = {}

    def critic_step(self, batch, batch_idx):
        x, _ = batch
        return self.critic(self.generator(x.flip(1))).mean() - self.critic(x).mean()

    def generator_step(self, batch, batch_idx):
        x, _ = batch
        return -self.critic(self.generator(x.flip(1))).mean()

    def on_before_optimizer_step(self, optimizer):
        which = "C" if optimizer.param_groups[0]["params"][0] is self.critic.weight else "G"
        self.steps[self.trainer.global_step] = (which, tuple(o.param_groups[0]["lr"] for o in self.trainer.optimizers))

    def configure_optimizers(self):
        critic = torch.optim.SGD(self.critic.parameters(), lr=self.critic_lr, momentum=0.9)
        generator = self.generator_optimizer(self.generator.parameters(), lr=0.05, weight_decay=self.weight_decay)
        return [critic, generator], [
            scheduled(CosineAnnealingLR(critic, T_max=self.t_max, eta_min=0.001), interval="step"),
            scheduled(StepLR(generator, step_size=2, gamma=0.5), interval="step"),
        ]


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gan")
    model = Gan()
    run, _, messages = fit(directory, model, OLD_EPOCHS, save=True)
    assert not messages and model.optimizer_step_counts == (OLD_T_MAX, OLD_TOTAL - OLD_T_MAX) == (14, 6)
    return directory, model


def gan_lrs(position: int, t_max: int, base: float) -> tuple[str, tuple[float, float]]:
    """At run-wide position (= global step) `position`: which optimizer steps, and both optimizers' lrs."""
    n = critic_steps(position)
    return ("G" if position % 3 == 2 else "C"), (cosine(n, t_max, base), step_lr(position - n))


def check_gan(model, run, check, start: int, critic_lr: float, t_max: int) -> None:
    assert sorted(model.steps) == list(range(start, NEW_TOTAL))
    for step, (which, lrs) in model.steps.items():
        expected_which, expected = gan_lrs(step, t_max, critic_lr)
        assert which == expected_which and lrs == pytest.approx(expected, rel=1e-9), step
    critic, generator = NEW_T_MAX, NEW_TOTAL - NEW_T_MAX
    assert run.global_step == NEW_TOTAL and model.optimizer_step_counts == (critic, generator)
    assert report_counts(check) == ([(critic,) * 3, (generator,) * 3], [(critic, critic), (generator, generator)])


def test_alternating_trained_longer_with_a_longer_cosine(gan_run):
    directory, _ = gan_run
    model = Gan(t_max=NEW_T_MAX, resume="recipe")
    run, check, messages = fit(directory, model, NEW_EPOCHS, ckpt=END)
    n = critic_steps(END)
    old, new = cosine(n, OLD_T_MAX, 0.1), cosine(n, NEW_T_MAX, 0.1)
    assert rows(messages) == [
        ("optimizer 0, group 0: lr", g(old), g(new), g(new)),
        ("scheduler 0 (CosineAnnealingLR): T_max", "14", "27", "27"),
    ]
    assert "Scheduler 0 (CosineAnnealingLR)'s schedule had ended in the checkpoint (T_max=14; lr 0.001)" in \
        table_message(messages)
    check_gan(model, run, check, END, 0.1, NEW_T_MAX)
    assert adam_steps(run.optimizers[1]) == NEW_TOTAL - NEW_T_MAX  # the generator's Adam state was kept


@pytest.mark.parametrize(("extend", "error"), [
    # Lightning's resume would run the critic's cosine on past its T_max=14: torch's cosine is periodic
    (None, "Resuming from the checkpoint 'step=20.ckpt' with resume='checkpoint': scheduler 0 (CosineAnnealingLR)'s"
           " schedule had ended there (T_max=14, and it had stepped 14 times; lr 0.001), and this run trains on to"
           " step 40. As Lightning resumes, its cosine climbs back up to the peak (torch's cosine is periodic)."),
    ("hold", "extend_schedule='hold' keeps the lr where the finished schedule left it, which a CosineAnnealingLR"
             " cannot do past its end (T_max=14): use one of this library's schedules (`warmup_cosine`,"
             " `warmup_stable_decay`: a LambdaLR), or resume='recipe' to stretch the new schedule over the longer"
             " run."),
])
def test_a_finished_torch_cosine_trained_longer(gan_run, extend, error):
    directory, _ = gan_run
    model = Gan(t_max=NEW_T_MAX)
    model.extend_schedule = extend
    with pytest.raises(RecipeError) as raised:
        fit(directory, model, NEW_EPOCHS, ckpt=END)
    assert str(raised.value).split("\n")[0].startswith(error)


@pytest.mark.parametrize("choice", CHOICES)
def test_alternating_new_critic_lr_and_generator_adamw_mid_epoch(gan_run, choice):
    directory, _ = gan_run
    model = Gan(critic_lr=0.2, t_max=NEW_T_MAX, generator_optimizer=torch.optim.AdamW, weight_decay=0.01,
                resume=choice)
    run, check, messages = fit(directory, model, NEW_EPOCHS, ckpt=MID)
    recipe = choice == "recipe"
    n = critic_steps(MID)
    old, new = cosine(n, OLD_T_MAX, 0.1), cosine(n, NEW_T_MAX, 0.2)
    assert rows(messages) == [
        ("optimizer 0, group 0: lr", g(old), g(new), g(new if recipe else old)),
        ("optimizer 0, group 0: initial_lr", "0.1", "0.2", "0.2" if recipe else "0.1"),
        ("optimizer 1: class", "Adam", "AdamW",
         "AdamW (state dropped)" if recipe else "AdamW loaded with Adam's param groups and state"),
        ("optimizer 1, group 0: weight_decay", "0", "0.01", "0.01" if recipe else "0"),
        ("optimizer 1, group 0: decoupled_weight_decay", "False", "True", "True"),
        ("scheduler 0 (CosineAnnealingLR): T_max", "14", "27", "27" if recipe else "14"),
    ]
    assert [m.split(",")[0] for m in dropped(messages)] == (
        ["Resuming from the checkpoint 'step=12.ckpt' with resume='recipe': optimizer 1 (AdamW)'s state in the"
         " checkpoint (its moments and step count) is dropped"] if recipe else [])
    check_gan(model, run, check, MID, 0.2 if recipe else 0.1, NEW_T_MAX if recipe else OLD_T_MAX)
    generator_steps = NEW_TOTAL - NEW_T_MAX
    assert adam_steps(run.optimizers[1]) == generator_steps - (MID - n if recipe else 0)


def test_preview_of_a_resumed_alternating_run(gan_run):
    directory, reference = gan_run
    model = Gan(t_max=NEW_T_MAX, resume="recipe")
    fit(directory, model, NEW_EPOCHS, ckpt=END)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecipeWarning)
        preview = preview_schedule(Gan(t_max=NEW_T_MAX, resume="recipe"), max_epochs=NEW_EPOCHS,
                                   steps_per_epoch=BATCHES, resume_from=(Gan(), END, OLD_EPOCHS))
    previewed = {r["step"]: ("C" if r["optimizer"] == 0 else "G", r["lr"]) for r in preview}
    real = {**{s: (w, lrs) for s, (w, lrs) in reference.steps.items() if s < END}, **model.steps}
    assert sorted(previewed) == sorted(real) == list(range(NEW_TOTAL))
    for step, (which, lrs) in real.items():
        assert previewed[step] == (which, pytest.approx(lrs[0 if which == "C" else 1], rel=1e-12)), step


# ------------------------------------------------------------------------------------- placing, without Trainer


def _optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)


SCHEDULERS = {
    "StepLR": lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5),
    "MultiStepLR": lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [4, 9], 0.3),
    "ExponentialLR": lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9),
    "CosineAnnealingLR": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 10, 0.01),
    "CosineAnnealingWarmRestarts": lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, 4, 2),
    "LinearLR": lambda o: torch.optim.lr_scheduler.LinearLR(o, 0.1, 1.0, 6),
    "ConstantLR": lambda o: torch.optim.lr_scheduler.ConstantLR(o, 0.5, 5),
    "PolynomialLR": lambda o: torch.optim.lr_scheduler.PolynomialLR(o, 12, 2.0),
    "MultiplicativeLR": lambda o: torch.optim.lr_scheduler.MultiplicativeLR(o, lambda k: 0.95),
    "OneCycleLR": lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=30),
    "CyclicLR": lambda o: torch.optim.lr_scheduler.CyclicLR(o, 0.01, 0.1, step_size_up=4),
    "LambdaLR (warmup_cosine)": lambda o: warmup_cosine(o, warmup_steps=3, total_steps=25)["scheduler"],
    "SequentialLR": lambda o: torch.optim.lr_scheduler.SequentialLR(o, [
        torch.optim.lr_scheduler.LinearLR(o, 0.1, 1.0, 4), torch.optim.lr_scheduler.ExponentialLR(o, 0.9)], [4]),
    "ChainedScheduler": lambda o: torch.optim.lr_scheduler.ChainedScheduler([
        torch.optim.lr_scheduler.StepLR(o, 3, 0.5), torch.optim.lr_scheduler.ExponentialLR(o, 0.95)]),
}


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`")
@pytest.mark.filterwarnings("ignore:.*ChainedScheduler.*:UserWarning")
@pytest.mark.parametrize("kind", list(SCHEDULERS))
@pytest.mark.parametrize("step", [0, 1, 7, 13])
def test_a_placed_scheduler_gives_the_lrs_of_one_stepped_from_the_start(kind, step):
    reference_optimizer, optimizer = _optimizer(), _optimizer()
    reference, placed = SCHEDULERS[kind](reference_optimizer), SCHEDULERS[kind](optimizer)
    expected = []
    for _ in range(step + 12):
        expected.append((reference_optimizer.param_groups[0]["lr"], reference_optimizer.param_groups[0]["momentum"]))
        reference.step()
    place_scheduler(placed, step)
    seen = []
    for _ in range(12):
        seen.append((optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["momentum"]))
        placed.step()
    assert seen == expected[step:]  # exactly: the same arithmetic as training
    for key in ("last_epoch", "_step_count"):
        assert placed.state_dict().get(key) == reference.state_dict().get(key)


def test_what_cannot_be_placed():
    optimizer = _optimizer()
    with pytest.raises(RecipeError, match="ReduceLROnPlateau follows a metric"):
        place_scheduler(torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer), 3)
    with pytest.raises(RecipeError, match="OneCycleLR cannot be placed at step 40, where training stands"):
        place_scheduler(torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1.0, total_steps=30), 40)
    stepped = torch.optim.lr_scheduler.StepLR(optimizer, 2)
    optimizer.step()
    stepped.step()
    with pytest.raises(RecipeError, match="needs a StepLR that has not stepped yet, this one is at step 1"):
        place_scheduler(stepped, 3)


def test_a_plateau_keeps_its_counters_and_lr_and_takes_the_recipes_options():
    old = _optimizer()
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(old, factor=0.5, patience=1)
    for metric in (1.0, 2.0, 2.0, 2.0):
        old.step()
        plateau.step(metric)
    checkpoint = {"optimizer_states": [old.state_dict()], "lr_schedulers": [plateau.state_dict()], "global_step": 4}
    new = _optimizer()
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(new, factor=0.1, patience=3)
    setup = OptimizerSetup((new,), (SchedulerSpec(scheduler, 0, reduce_on_plateau=True, monitor="loss"),))
    with warnings.catch_warnings(record=True) as caught, library_log() as logged:
        warnings.simplefilter("always")
        report = reconcile(setup, checkpoint, "recipe")
    restored = checkpoint["lr_schedulers"][0]
    # reduced once (after the 3rd metric), one bad epoch since: the checkpoint's counters
    assert (restored["best"], restored["num_bad_epochs"], restored["last_epoch"]) == (1.0, 1, 4)
    assert (restored["factor"], restored["patience"]) == (0.1, 3)
    assert checkpoint["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.05)
    assert ("scheduler 0 (ReduceLROnPlateau): factor", "0.5", "0.1", "0.1") in report.rows()
    assert ("scheduler 0 (ReduceLROnPlateau): patience", "1", "3", "3") in report.rows()
    # the recipe was chosen: its table is logged, not warned
    assert [str(w.message) for w in caught] == []
    assert logged == ["Resuming from the checkpoint with resume='recipe': training keeps the weights, the progress"
                      " (global_step=4, epoch 0) and the optimizers' state, and uses the new recipe where it differs"
                      " from the checkpoint (3 settings); every scheduler continues at the step training has"
                      f" reached.\n{report.table()}"]
