"""What the recipe catalogue asked of the engine: a warm-up that starts at the lr before batch scaling
(``warmup_start``, ``'unscaled'`` in a recipe), a cosine that ends before the run and holds (``decay_fraction``),
``no_decay: {positions: ...}``, ``preview_schedule(..., batch_size=)`` (and ``preview --batch-size``), and `say`
writing to the ``sys.stderr`` of the moment. Every expected lr is written out."""

from __future__ import annotations

import io
import logging
import math
import sys
import warnings

import pytest
import torch
from helpers import NAMESPACE, TinyRegressor, loader, pl, trainer
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from lightning_optim_recipes import (
    OptimRecipeMixin,
    RecipeError,
    RecipeWarning,
    configure_from_recipe,
    describe_recipe,
    get_recipe,
    preview_schedule,
    warmup_cosine,
)
from lightning_optim_recipes.__main__ import main
from lightning_optim_recipes.fit_checks import horizon_of
from lightning_optim_recipes.recipe import say
from lightning_optim_recipes.catalogue._examples import TinyViT
from lightning_optim_recipes.schedulers import warmup_linear, warmup_multistep
from lightning_optim_recipes.schedules import schedule_length, warmup_schedule


def multipliers(config, steps: int) -> list[float]:
    """The lr of the first group (base lr 1.0) at each of `steps` optimizer steps."""
    scheduler = config["scheduler"]
    optimizer = scheduler.optimizer
    seen = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"Detected call of `lr_scheduler\.step\(\)` before `optimizer\.step\(\)`")
        for _ in range(steps):
            seen.append(optimizer.param_groups[0]["lr"])
            scheduler.step()
    return seen


def sgd(lr: float = 1.0) -> torch.optim.SGD:
    return torch.optim.SGD([nn.Parameter(torch.zeros(2, 2))], lr=lr)


def decay_lrs(preview) -> list[float]:
    return [r["lr"] for r in preview if r["group"] == "decay"]


# ---------------------------------------------------------------------------------------------- warmup_start


def test_warmup_start_defaults_are_unchanged():
    """Without `warmup_start` the warm-up's step k runs at (k + 1) / warmup_steps, in all three factories."""
    assert multipliers(warmup_cosine(sgd(), warmup_steps=4, total_steps=6), 4) == [0.25, 0.5, 0.75, 1.0]
    assert multipliers(warmup_linear(sgd(), warmup_steps=4, total_steps=6), 4) == [0.25, 0.5, 0.75, 1.0]
    assert multipliers(warmup_multistep(sgd(), milestones=[3], warmup_steps=4, steps_per_epoch=2), 4) == [
        0.25, 0.5, 0.75, 1.0]


def test_warmup_start_is_the_first_multiplier_as_in_warmup_multistep():
    """From `warmup_start` at step 0 to 1 at the warm-up's last step, by equal increments."""
    cosine = multipliers(warmup_cosine(sgd(), warmup_steps=4, total_steps=6, warmup_start=0.1), 6)
    assert cosine == pytest.approx([0.1, 0.4, 0.7, 1.0, 0.5, 0.0], rel=1e-12, abs=1e-15)
    linear = multipliers(warmup_linear(sgd(), warmup_steps=3, total_steps=5, warmup_start=0.0), 5)
    assert linear == pytest.approx([0.0, 0.5, 1.0, 0.5, 0.0], rel=1e-12, abs=1e-15)
    multistep = multipliers(warmup_multistep(sgd(), milestones=[3], warmup_steps=4, steps_per_epoch=2,
                                             warmup_start=0.1), 7)
    assert multistep == pytest.approx([0.1, 0.4, 0.7, 1.0, 1.0, 1.0, 0.1], rel=1e-12)
    with pytest.raises(RecipeError, match=r"`warmup_start` must be a number in \[0, 1\].*got 1\.5"):
        warmup_multistep(sgd(), milestones=[3], warmup_steps=4, steps_per_epoch=2, warmup_start=1.5)
    with pytest.raises(RecipeError, match=r"^`warmup_start` must be a number in \[0, 1\] \(the warm-up's multiplier of"
                       r" the peak lr at its first step\) or 'zero' \(step k at k / warm-up steps, the first at lr 0\),"
                       r" got True\. In a recipe, 'unscaled' starts the warm-up at the lr before `lr_scaling`\.$"):
        warmup_cosine(sgd(), warmup_steps=2, total_steps=5, warmup_start=True)


SCALED = {"optimizer": "SGD", "lr": 0.1, "lr_scaling": {"base_batch_size": 256},
          "scheduler": {"type": "warmup_cosine", "warmup_steps": 4, "warmup_start": "unscaled"}}


def test_unscaled_starts_the_warm_up_at_the_lr_before_lr_scaling(caplog):
    """Goyal et al. (2017), Section 2.2: from η to kη. Batch 1024 over 256: from 0.1 to 0.4 in 4 steps, then a
    cosine over steps 3 to 7."""
    with caplog.at_level(logging.INFO, logger="lightning_optim_recipes"):
        preview = preview_schedule({**SCALED, "batch_size": 1024}, max_epochs=1, steps_per_epoch=8)
    assert decay_lrs(preview) == pytest.approx(
        [0.1, 0.2, 0.3, 0.4, 0.4 * (1 + math.cos(math.pi / 4)) / 2, 0.2, 0.4 * (1 + math.cos(3 * math.pi / 4)) / 2,
         0.0], rel=1e-12, abs=1e-15)
    assert decay_lrs(preview)[4] == pytest.approx(0.34142135623730950, rel=1e-12)
    assert "the warm-up starts at the lr before lr_scaling, 0.1 (0.25 of 0.4)" in caplog.text


def test_unscaled_without_scaling_or_below_the_base_batch_starts_at_the_peak(caplog):
    """Without lr_scaling (k = 1) there is nothing to warm up to; nor with a global batch under the base (k < 1)."""
    unscaled = {"optimizer": "SGD", "lr": 0.1, "scheduler": {"type": "warmup_linear", "warmup_steps": 3,
                                                              "warmup_start": "unscaled"}}
    assert decay_lrs(preview_schedule(unscaled, max_epochs=1, steps_per_epoch=5)) == pytest.approx(
        [0.1, 0.1, 0.1, 0.05, 0.0], rel=1e-12, abs=1e-15)
    with caplog.at_level(logging.INFO, logger="lightning_optim_recipes"):
        half = decay_lrs(preview_schedule({**SCALED, "batch_size": 128}, max_epochs=1, steps_per_epoch=8))
    assert half[:4] == [0.05] * 4
    assert ("the warm-up stays at the scaled lr 0.05: it is not above the lr before lr_scaling, 0.1 (the global"
            " batch is not above the base batch)") in caplog.text


def test_unscaled_in_each_optimizer_of_a_several_optimizer_recipe():
    model = nn.Module()
    model.critic, model.generator = nn.Linear(2, 2), nn.Linear(2, 2)
    recipe = {"batch_size": 512, "optimizers": {
        "critic": {**SCALED, "lr": 0.2},
        "generator": {**SCALED, "lr_scaling": {"base_batch_size": 128}}}}
    for spec in recipe["optimizers"].values():
        spec["scheduler"] = {**spec["scheduler"], "total_steps": 8}  # built outside a run
    built = configure_from_recipe(model, recipe)
    starts = [multipliers(config["lr_scheduler"], 1)[0] for config in built]
    # each from its own lr before scaling: critic 0.2 to 0.2 x 512 / 256 = 0.4, generator 0.1 to 0.1 x 512 / 128 = 0.4
    assert starts == pytest.approx([0.2, 0.1], rel=1e-12)


def test_warmup_start_errors_in_a_recipe():
    with pytest.raises(RecipeError, match=r"^The recipe's scheduler 'warmup_start' must be 'unscaled' .* got 'scaled'"):
        preview_schedule({**SCALED, "batch_size": 1024, "scheduler": {**SCALED["scheduler"], "warmup_start": "scaled"}},
                         max_epochs=1, steps_per_epoch=8)
    with pytest.raises(RecipeError, match=r"^The recipe's scheduler 'warmup_start' must be 'unscaled' \(start the"
                       r" warm-up at the lr before 'lr_scaling'\), 'zero' \(step k at k / warm-up steps, the first at"
                       r" lr 0, as Hugging Face, BERT and MAE\) or a number in \[0, 1\] \(the warm-up's multiplier"
                       r" of the peak lr at its first step\), got 2\.$"):
        preview_schedule({**SCALED, "batch_size": 1024, "scheduler": {**SCALED["scheduler"], "warmup_start": 2}},
                         max_epochs=1, steps_per_epoch=8)
    with pytest.raises(RecipeError, match=r"Unknown key 'warmup_start' in the 'cosine' scheduler"):
        preview_schedule({"lr": 0.1, "scheduler": {"type": "cosine", "t_max": 3, "warmup_start": "unscaled"}},
                         max_epochs=1, steps_per_epoch=3)


# -------------------------------------------------------------------------------------------- decay_fraction


def test_decay_fraction_ends_the_cosine_early_and_holds():
    """round(0.5 x 10) - 1 = 4: the cosine spans steps 1 to 4 (peak at 1), min_lr_ratio 0.1 from step 4 on."""
    config = warmup_cosine(sgd(), warmup_steps=2, total_steps=10, min_lr_ratio=0.1, decay_fraction=0.5)
    assert multipliers(config, 10) == pytest.approx([0.5, 1.0, 0.775, 0.325] + [0.1] * 6, rel=1e-12)
    scheduler = config["scheduler"]
    assert (scheduler.warmup_steps, scheduler.total_steps, scheduler.decay_steps) == (2, 10, 5)
    assert schedule_length(scheduler.lr_lambdas[0]) == 10 and horizon_of(scheduler).end == 10
    whole = warmup_cosine(sgd(), warmup_steps=2, total_steps=10, min_lr_ratio=0.1, decay_fraction=1.0)
    assert multipliers(whole, 10) == multipliers(warmup_cosine(sgd(), warmup_steps=2, total_steps=10,
                                                               min_lr_ratio=0.1), 10)
    assert not hasattr(whole["scheduler"], "decay_steps")  # 1.0: the whole run, as without it


def test_warmup_schedule_decay_steps_is_written_for_the_whole_run():
    held = warmup_schedule(1, 6, decay="linear", final=0.0, decay_steps=3)
    assert [held(k) for k in range(6)] == [1.0, 0.5, 0.0, 0.0, 0.0, 0.0]
    assert schedule_length(held) == 6 and schedule_length(warmup_schedule(1, 6, decay="linear")) == 6
    assert schedule_length(warmup_schedule(1, 6, decay="linear", decay_steps=6)) == 6


def test_decay_fraction_errors():
    with pytest.raises(RecipeError, match=r"`decay_fraction` must be in \(0, 1\].*got 1\.5"):
        warmup_cosine(sgd(), warmup_steps=2, total_steps=10, decay_fraction=1.5)
    with pytest.raises(RecipeError, match=r"`decay_fraction` 0\.2 of the run's 10 steps ends the decay at step 1,"
                                          r" before the 2-step warm-up is over"):
        warmup_cosine(sgd(), warmup_steps=2, total_steps=10, decay_fraction=0.2)


class HeldCosine(pl.LightningModule):
    """A plain module whose LambdaLR is a schedule of 100 steps that decays over the first `decay_steps`."""

    def __init__(self, decay_steps: int, total_steps: int = 100) -> None:
        super().__init__()
        self.net = nn.Linear(2, 2)
        self.decay_steps, self.total_steps = decay_steps, total_steps

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        schedule = warmup_schedule(5, self.total_steps, final=0.1, decay_steps=self.decay_steps)
        scheduler = LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def test_a_held_schedule_covers_the_run_for_the_fit_checks():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        preview = preview_schedule(HeldCosine(decay_steps=60), max_epochs=10, steps_per_epoch=10)
    lr = [r["lr"] for r in preview]
    assert lr[59] == pytest.approx(0.01, rel=1e-12) and lr[58] > lr[59] and lr[59:] == [lr[59]] * 41
    with pytest.warns(RecipeWarning, match=r"written for 60 scheduler steps \(its schedule of 60 steps\), but this run"
                                           r" steps it 100 times"):
        preview_schedule(HeldCosine(decay_steps=60, total_steps=60), max_epochs=10, steps_per_epoch=10)


def test_the_recipe_engine_takes_decay_fraction():
    recipe = {"optimizer": "SGD", "lr": 1.0, "scheduler": {"type": "warmup_cosine", "warmup_steps": 2,
                                                           "min_lr_ratio": 0.1, "decay_fraction": 0.5}}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        preview = preview_schedule(recipe, max_epochs=2, steps_per_epoch=5)
    assert decay_lrs(preview) == pytest.approx([0.5, 1.0, 0.775, 0.325] + [0.1] * 6, rel=1e-12)


# ----------------------------------------------------------------------------------------------------- say()


def test_say_writes_to_the_stderr_of_the_moment(monkeypatch):
    """A handler bound to the first call's stderr would write to a closed stream once capsys (or
    contextlib.redirect_stderr) has replaced and closed it: logging then prints "--- Logging error ---"."""
    library = logging.getLogger("lightning_optim_recipes")
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    monkeypatch.setattr(library, "handlers", [])
    monkeypatch.setattr(library, "propagate", library.propagate)
    monkeypatch.setattr(library, "level", library.level)
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    say("one")
    first.close()
    monkeypatch.setattr(sys, "stderr", second)
    say("two")
    assert second.getvalue() == "two\n"
    assert len(library.handlers) == 1  # attached once


# ---------------------------------------------------------------------------------------------- positions


class Distilled(nn.Module):
    """timm's distilled ViT names: pos_embed, cls_token, dist_token registered directly, and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, 3, 4))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 4))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, 4))
        self.head = nn.Linear(4, 2)


def exempt(no_decay) -> list[str]:
    model = Distilled()
    optimizer = configure_from_recipe(model, {"lr": 0.1, "weight_decay": 0.05, "no_decay": no_decay})["optimizer"]
    names = {id(p): n for n, p in model.named_parameters()}
    return [names[id(p)] for g in optimizer.param_groups if g["weight_decay"] == 0.0 for p in g["params"]]


def test_no_decay_positions():
    assert exempt("default") == ["pos_embed", "cls_token", "dist_token", "head.bias"]
    assert exempt({"positions": ["pos_embed", "cls_token"]}) == ["pos_embed", "cls_token", "head.bias"]
    assert exempt({"positions": "pos_embed"}) == ["pos_embed", "head.bias"]
    assert exempt({"positions": False}) == ["head.bias"]
    assert exempt({"positions": True}) == exempt("default")
    assert exempt({"positions": [], "names": ["cls_token"]}) == ["cls_token", "head.bias"]
    with pytest.raises(RecipeError, match=r"'positions' must be true .* got \['pos_embed', 3\]"):
        exempt({"positions": ["pos_embed", 3]})


def test_deit_decays_dist_token_as_its_note_says():
    model = TinyViT()
    model.dist_token = nn.Parameter(torch.zeros(1, 1, 8))
    note = "get_recipe('deit', no_decay={'positions': ['pos_embed', 'cls_token']})"
    assert any(note in text for text in describe_recipe("deit").notes)
    names = {id(p): n for n, p in model.named_parameters()}

    def exempt_tokens(**changes) -> list[str]:
        optimizer = configure_from_recipe(model, get_recipe("deit", batch_size=512, scheduler=None, **changes))[
            "optimizer"]
        return [names[id(p)] for g in optimizer.param_groups if g["weight_decay"] == 0.0 for p in g["params"]
                if names[id(p)].endswith(("_token", "pos_embed"))]

    assert exempt_tokens() == ["cls_token", "pos_embed", "dist_token"]  # the entry's default rule
    assert exempt_tokens(no_decay={"positions": ["pos_embed", "cls_token"]}) == ["cls_token", "pos_embed"]


# ------------------------------------------------------------------------------------ preview batch_size=


class ScaledRegressor(OptimRecipeMixin, TinyRegressor):
    optim_recipe = {"optimizer": "SGD", "lr": 0.1, "lr_scaling": {"base_batch_size": 256},
                    "scheduler": {"type": "warmup_linear", "warmup_steps": 2, "warmup_start": "unscaled"}}


def test_preview_batch_size_gives_the_stand_in_trainer_its_loader(caplog):
    """Per-device 64 x 1 device x 2 accumulated = 128: lr 0.1 x 128 / 256 = 0.05."""
    with caplog.at_level(logging.INFO, logger="lightning_optim_recipes"):
        preview = preview_schedule(ScaledRegressor(), max_epochs=1, steps_per_epoch=8, accumulate_grad_batches=2,
                                   batch_size=64)
    assert decay_lrs(preview) == pytest.approx([0.05, 0.05, 0.025, 0.0], rel=1e-12, abs=1e-15)
    assert ("the recipe: lr = 0.1 x 128 / 256 = 0.05 (global batch 128, 64 per device x 1 device x 2"
            " accumulated)") in caplog.text
    recipe = dict(ScaledRegressor.optim_recipe)
    assert decay_lrs(preview_schedule(recipe, max_epochs=1, steps_per_epoch=4, batch_size=1024)) == pytest.approx(
        [0.1, 0.4, 0.2, 0.0], rel=1e-12, abs=1e-15)  # 0.1 x 1024 / 256 = 0.4, the warm-up from 0.1
    # the recipe's own batch_size (the global batch) comes first
    assert decay_lrs(preview_schedule({**recipe, "batch_size": 512}, max_epochs=1, steps_per_epoch=4,
                                      batch_size=1024))[1] == pytest.approx(0.2, rel=1e-12)


def test_preview_without_batch_size_names_it():
    with pytest.raises(RecipeError, match=r"scales its lr by the global batch size.*pass `preview_schedule\(\.\.\.,"
                                          r" batch_size=\)` \(the per-device batch; --batch-size on the command"
                                          r" line\)"):
        preview_schedule(ScaledRegressor(), max_epochs=1, steps_per_epoch=8)
    with pytest.raises(RecipeError, match=r"`batch_size` must be a positive int, got 0"):
        preview_schedule(ScaledRegressor(), max_epochs=1, steps_per_epoch=8, batch_size=0)


def test_preview_batch_size_reaches_a_resumed_preview():
    """The old run up to step 2 and the resumed one both scale 0.1 by 1024 / 256: a warm-up from 0.1 to 0.4 over 2
    steps, then linear to 0 at step 7, unchanged by the resume (same recipe)."""
    preview = preview_schedule(ScaledRegressor(), max_epochs=2, steps_per_epoch=4, batch_size=1024,
                               resume_from=(ScaledRegressor(), 2))
    assert decay_lrs(preview) == pytest.approx([0.1, 0.4, 0.4 * 5 / 6, 0.4 * 4 / 6, 0.4 * 3 / 6, 0.4 * 2 / 6,
                                                0.4 / 6, 0.0], rel=1e-12, abs=1e-15)


@pytest.mark.trainer
def test_the_preview_batch_size_matches_a_real_fit(tmp_path):
    """A real Trainer reads the same global batch from its DataLoader: batch 4 x 2 accumulated = 8."""
    model = ScaledRegressor()
    trainer(tmp_path, max_epochs=2, accumulate_grad_batches=2).fit(model, loader(batches=4, batch_size=4))
    seen = [lrs[0] for _, batch_idx, lrs in model.lr_log if batch_idx % 2 == 1]  # the lr of each optimizer step
    preview = preview_schedule(ScaledRegressor(), max_epochs=2, steps_per_epoch=4, accumulate_grad_batches=2,
                               batch_size=4)
    peak = 0.1 * 8 / 256
    assert decay_lrs(preview) == pytest.approx([peak, peak, peak / 2, 0.0], rel=1e-12, abs=1e-15)
    assert seen == pytest.approx(decay_lrs(preview), rel=1e-12, abs=1e-15)


MODULE = f"""
from lightning_optim_recipes import OptimRecipeMixin
from torch import nn
import {NAMESPACE} as pl


class Scaled(OptimRecipeMixin, pl.LightningModule):
    optim_recipe = {{"optimizer": "SGD", "lr": 0.1, "lr_scaling": {{"base_batch_size": 256}}}}

    def __init__(self):
        super().__init__()
        self.net = nn.Linear(2, 2)
"""


def test_the_preview_command_takes_batch_size(tmp_path, capsys):
    path = tmp_path / "scaled.py"
    path.write_text(MODULE)
    argv = ["preview", f"{path}:Scaled", "--epochs", "1", "--steps-per-epoch", "2"]
    assert main(argv + ["--batch-size", "64", "--accumulate-grad-batches", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[3].split() == ["0", "0-0", "0.05", "0.05"]  # 0.1 x (64 x 2) / 256
    assert main(argv) == 1
    assert "(the per-device batch; --batch-size on the command line)" in capsys.readouterr().err
