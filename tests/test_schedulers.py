"""Scheduler factories against torch's own schedulers stepped by hand, and `scheduled`'s cadence checks."""

from __future__ import annotations

import math

import pytest
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, ExponentialLR, MultiStepLR, ReduceLROnPlateau, StepLR

from lightning_optim_recipes import RecipeError, cosine, exponential, multistep, scheduled, warmup_cosine


def _optimizer(lr: float = 0.1, group_lrs=()) -> torch.optim.Optimizer:
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2))]}]
    groups += [{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": g} for g in group_lrs]
    return torch.optim.SGD(groups, lr=lr)


def _run(optimizer, scheduler, steps: int) -> list[list[float]]:
    """The lr of every group at each of `steps` steps, stepping the scheduler after each optimizer step."""
    lrs = []
    for _ in range(steps):
        lrs.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize(
    ("factory", "reference"),
    [
        (lambda o: multistep(o, milestones=[2, 4], gamma=0.5), lambda o: MultiStepLR(o, [2, 4], 0.5)),
        (lambda o: exponential(o, gamma=0.8, interval="step"), lambda o: ExponentialLR(o, 0.8)),
        (lambda o: cosine(o, t_max=5, eta_min=0.01), lambda o: CosineAnnealingLR(o, 5, 0.01)),
    ],
    ids=["multistep", "exponential", "cosine"],
)
def test_factories_match_torch(factory, reference):
    mine_opt, torch_opt = _optimizer(0.1, (0.4,)), _optimizer(0.1, (0.4,))
    config = factory(mine_opt)
    mine = [lr for lrs in _run(mine_opt, config["scheduler"], 8) for lr in lrs]
    expected = [lr for lrs in _run(torch_opt, reference(torch_opt), 8) for lr in lrs]
    assert mine == pytest.approx(expected, abs=1e-12)


def test_multistep_seed_halves_once_and_keeps_it():
    optimizer = _optimizer(1e-3)
    config = multistep(optimizer, milestones=[3], gamma=0.5)
    assert config == {"scheduler": config["scheduler"], "interval": "epoch", "frequency": 1}
    assert [lrs[0] for lrs in _run(optimizer, config["scheduler"], 6)] == pytest.approx(
        [1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4], abs=1e-15
    )


def test_factories_carry_cadence_and_name():
    optimizer = _optimizer()
    config = exponential(optimizer, 0.9, "step", frequency=2, name="lr-main")
    assert {k: v for k, v in config.items() if k != "scheduler"} == {"interval": "step", "frequency": 2, "name": "lr-main"}
    assert isinstance(config["scheduler"], ExponentialLR)
    assert cosine(optimizer, 4)["interval"] == "epoch"


def test_warmup_cosine_closed_form_with_own_lr_groups():
    optimizer = _optimizer(1.0, (0.1,))  # group 1 runs at a tenth of the default lr
    config = warmup_cosine(optimizer, warmup_steps=2, total_steps=6, min_lr=0.2)
    assert config["interval"] == "step" and config["frequency"] == 1
    assert config["scheduler"].warmup_steps == 2 and config["scheduler"].total_steps == 6
    expected = [0.5, 1.0] + [0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * j / 4)) for j in range(1, 5)]
    lrs = _run(optimizer, config["scheduler"], 6)
    assert [g0 for g0, _ in lrs] == pytest.approx(expected, abs=1e-12)
    assert [g1 for _, g1 in lrs] == pytest.approx([0.1 * v for v in expected], abs=1e-12)
    assert lrs[-1] == pytest.approx([0.2, 0.02], abs=1e-15)  # min_lr exactly at the last step, the ratio kept


def test_warmup_cosine_without_warmup():
    optimizer = _optimizer(0.5)
    lrs = _run(optimizer, warmup_cosine(optimizer, warmup_steps=0, total_steps=3)["scheduler"], 3)
    assert [g[0] for g in lrs] == pytest.approx([0.5, 0.25, 0.0], abs=1e-12)


def test_scheduled_plateau_needs_monitor_and_keeps_strict():
    optimizer = _optimizer()
    plateau = ReduceLROnPlateau(optimizer)
    assert scheduled(plateau, monitor="val_loss", strict=False) == {
        "scheduler": plateau, "interval": "epoch", "frequency": 1, "monitor": "val_loss", "strict": False,
    }


@pytest.mark.parametrize(
    ("make", "error_msg"),
    [
        (lambda o: scheduled(StepLR(o, 1), interval="batch"),
         r"^`interval` must be 'step' or 'epoch', got 'batch'\. Use 'step' for a per-batch schedule\.$"),
        (lambda o: scheduled(StepLR(o, 1), interval="epochs"), r"^`interval` must be 'step' or 'epoch', got 'epochs'\. Use 'epoch'\.$"),
        (lambda o: scheduled(StepLR(o, 1), interval=None), r"^`interval` must be 'step' or 'epoch', got None\.$"),
        (lambda o: scheduled(StepLR(o, 1), frequency=0),
         r"^`frequency` must be a positive int \(1 = every interval\), got 0\.$"),
        (lambda o: scheduled(StepLR(o, 1), frequency=1.5), r"`frequency` must be a positive int .* got 1\.5\."),
        (lambda o: scheduled(StepLR(o, 1), frequency=True), r"`frequency` must be a positive int .* got True\."),
        (lambda o: scheduled(ReduceLROnPlateau(o)),
         r"^A `ReduceLROnPlateau` scheduler needs the metric to watch: pass `monitor='val_loss'` .* got monitor=None\.$"),
        (lambda o: scheduled(StepLR(o, 1), monitor="val_loss"),
         r"^`monitor` is read only by `ReduceLROnPlateau`, not by StepLR: remove `monitor`\.$"),
        (lambda o: scheduled(StepLR(o, 1), name=""), r"^`name` must be a non-empty string, got ''\.$"),
        (lambda o: scheduled(o), r"^`scheduled` takes a torch lr scheduler .* got SGD\.$"),
        (lambda o: multistep(o, milestones=2000), r"^`milestones` must be a list of positive ints such as \[30, 80\] \(or lengths such as \['30ep', '60ep'\]\),"
                                                     r" got 2000\.$"),
        (lambda o: multistep(o, milestones=[4, 2]), r"^`milestones` must be increasing, got \[4, 2\]\.$"),
        (lambda o: multistep(o, milestones=[2], gamma=0), r"^`gamma` must be a positive number \(the lr multiplier\), got 0\.$"),
        (lambda o: exponential(o, gamma=-0.5), r"^`gamma` must be a positive number .* got -0\.5\.$"),
        (lambda o: cosine(o, t_max=0), r"^`t_max` must be a positive int \(intervals to anneal over\) or a length \('10ep', '100%'\),"
                                            r" got 0\.$"),
        (lambda o: warmup_cosine(o, warmup_steps=10),
         r"^`warmup_cosine` needs the length of training: pass `total_steps=`, or `trainer=self\.trainer` inside"),
        (lambda o: warmup_cosine(o, warmup_steps=1, total_steps=5, min_lr=1.0),
         r"^`min_lr` must be between 0 and the optimizer's lr \(0\.1\), got 1\.0\.$"),
        (lambda o: warmup_cosine(o, warmup_steps=5, total_steps=5),
         r"^`total_steps` \(5\) must exceed `warmup_steps` \(5\)"),
    ],
)
def test_scheduler_errors(make, error_msg):
    with pytest.raises(RecipeError, match=error_msg):
        make(_optimizer())


def test_warmup_cosine_needs_default_lr():
    optimizer = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.1}], lr=0.0)
    with pytest.raises(RecipeError, match=r"needs the optimizer's default lr to place `min_lr`, got lr=0\.0: construct SGD with `lr=`\."):
        warmup_cosine(optimizer, warmup_steps=1, total_steps=4)
