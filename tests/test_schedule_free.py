"""Schedule-free optimizers without a Trainer: the modes and the evaluation weights (checked against the paper's
``y = (1 - beta) z + beta x``), the lr each step applies (checked against what schedulefree itself records in
``'scheduled_lr'``), a recipe that names one (`optimizer: AdamWScheduleFree`, 'warmup_fraction') and its errors, the
preview of the built-in warm-up, and a resume that keeps the optimizer's running state.

The Trainer's boundaries are in ``test_schedule_free_trainer.py``.
"""

from __future__ import annotations

import sys
import warnings

import pytest
import schedulefree
import torch
from torch import nn

from helpers import TinyRegressor

from lightning_optim_recipes import (
    OptimRecipeMixin,
    RecipeError,
    RecipeWarning,
    configure_from_recipe,
    preview_schedule,
)
from lightning_optim_recipes import schedule_free as sf
from lightning_optim_recipes.resume.reconcile import reconcile
from lightning_optim_recipes.validation import OptimizerSetup

RUN = type("Run", (), {"estimated_stepping_batches": 200})()  # what a Trainer gives a recipe: the run's length


def stepped(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter], steps: int, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g)
        optimizer.step()


def test_eval_mode_holds_the_average_and_train_mode_comes_back():
    torch.manual_seed(0)
    params = [nn.Parameter(torch.randn(3, 2)), nn.Parameter(torch.randn(2))]
    opt = schedulefree.AdamWScheduleFree(params, lr=0.1, betas=(0.9, 0.999))
    assert sf.has_modes(opt) and sf.is_schedule_free(opt) and not sf.in_train_mode(opt)
    assert not sf.moves([opt], train=True)  # before its first step a switch moves nothing
    assert sf.switch([opt], train=True) == (False,)  # it was in eval mode (schedulefree's default)
    stepped(opt, params, 3)
    y = [p.detach().clone() for p in params]
    z = [opt.state[p]["z"].clone() for p in params]
    assert sf.moves([opt], train=False) and not sf.moves([opt], train=True)
    before = sf.switch([opt, torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)], train=False)
    assert before == (True, None)  # SGD has no modes
    for p, yi, zi in zip(params, y, z):  # Defazio et al. 2024: y = (1 - beta) z + beta x
        assert torch.allclose(p, (yi - 0.1 * zi) / 0.9, rtol=1e-6, atol=1e-7)
    sf.restore([opt], before[:1])
    assert sf.in_train_mode(opt)
    for p, yi in zip(params, y):
        assert torch.allclose(p, yi, rtol=1e-6, atol=1e-7)


def test_closure_variants_have_no_modes_but_are_schedule_free():
    opt = schedulefree.AdamWScheduleFreeClosure([nn.Parameter(torch.zeros(2))], lr=0.1)
    assert sf.is_schedule_free(opt) and not sf.has_modes(opt)
    assert sf.switch([opt], train=False) == (None,)
    assert not sf.is_schedule_free(torch.optim.AdamW([nn.Parameter(torch.zeros(2))]))


@pytest.mark.parametrize(("cls", "options"), [
    (schedulefree.AdamWScheduleFree, {"warmup_steps": 4}),
    (schedulefree.SGDScheduleFree, {"warmup_steps": 4}),
    (schedulefree.AdamWScheduleFreeReference, {"warmup_steps": 4}),
    (schedulefree.AdamWScheduleFreePaper, {"warmup_steps": 4}),
    (schedulefree.RAdamScheduleFree, {}),
    (schedulefree.RAdamScheduleFree, {"silent_sgd_phase": False}),
])
def test_applied_lr_is_the_lr_each_step_applies(cls, options):
    params = [nn.Parameter(torch.randn(4))]
    opt = cls(params, lr=0.01, **options)
    opt.train()
    predicted, recorded = [], []
    for k in range(8):
        predicted.append(sf.applied_lr(opt.param_groups[0]))
        stepped(opt, params, 1, seed=k)
        recorded.append(opt.param_groups[0]["scheduled_lr"])  # what schedulefree says it applied
    if cls is schedulefree.AdamWScheduleFreePaper:  # it scales by sqrt(1 - beta2^(k+1)) too: a bias correction
        recorded = [lr / (1 - 0.999 ** (k + 1)) ** 0.5 for k, lr in enumerate(recorded)]
    assert predicted == pytest.approx(recorded, rel=1e-12, abs=0)
    if "warmup_steps" in options:  # step k at (k + 1) / 4 of the lr, then the lr
        assert predicted == pytest.approx([0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01, 0.01, 0.01], rel=1e-12)
    elif options.get("silent_sgd_phase") is not False:
        assert predicted[:4] == [0.0] * 4 and predicted[4] > 0  # RAdam's silent phase: rho_t <= 4 for 4 steps


def test_a_plain_optimizer_applies_its_lr():
    group = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=0.3).param_groups[0]
    assert sf.applied_lr(group) == 0.3 and sf.warmup_factor(group) == 1.0


def test_recompute_batch_norm_restores_modes_and_randomness():
    net = nn.Sequential(nn.Linear(2, 3), nn.Dropout(0.5), nn.BatchNorm1d(3)).eval()
    net[1].train()  # a submodule in its own mode stays in it
    torch.manual_seed(1)
    expected_next = torch.rand(1)
    torch.manual_seed(1)
    assert sf.recompute_batch_norm(net, [torch.ones(4, 2), (torch.zeros(4, 2), torch.zeros(4))]) == 2
    assert torch.rand(1) == expected_next  # the dropout in those forwards consumed no randomness of training
    assert (net.training, net[0].training, net[1].training, net[2].training) == (False, False, True, False)
    assert int(net[2].num_batches_tracked) == 2
    assert sf.batch_norms(net) == ["2"]
    with pytest.raises(RecipeError, match=r"^The BatchNorm recomputation forwards training batches through the"
                                          r" module, but a dict batch has no tensor of inputs first: pass how to"
                                          r" forward one, e\.g\. `ScheduleFreeModes\(bn_recompute_batches=50,"
                                          r" bn_forward=lambda module, batch: module\(batch\['image'\]\)\)`\.$"):
        sf.recompute_batch_norm(net, [{"image": torch.ones(4, 2)}])


# ------------------------------------------------------------------------------------------------------ recipes


def build(**recipe):
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    return configure_from_recipe(model, {"lr": 0.01, **recipe}, trainer=RUN)


@pytest.mark.parametrize("name", ["AdamWScheduleFree", "schedulefree.AdamWScheduleFree"])
def test_a_recipe_names_a_schedule_free_optimizer(name, caplog):
    config = build(optimizer=name, weight_decay=0.05, warmup_fraction=0.02)
    opt = config["optimizer"]
    assert type(opt) is schedulefree.AdamWScheduleFree and "lr_scheduler" not in config
    assert [(g["name"], g["weight_decay"], g["warmup_steps"]) for g in opt.param_groups] == [
        ("decay", 0.05, 4), ("no_decay", 0.0, 4)]  # 2% of the run's 200 steps
    assert build(optimizer=name, optimizer_kwargs={"warmup_steps": 7})["optimizer"].defaults["warmup_steps"] == 7


@pytest.mark.parametrize(("recipe", "trainer", "message"), [
    ({"optimizer": "AdamW", "warmup_fraction": 0.1}, RUN,
     r"^The recipe has 'warmup_fraction', the share of the run an optimizer's built-in warm-up spans, but AdamW has"
     r" no `warmup_steps`: use a scheduler's warm-up instead, e\.g\. 'scheduler': \{'type': 'warmup_cosine',"
     r" 'warmup_fraction': 0\.05\}\.$"),
    ({"optimizer": "AdamWScheduleFree", "warmup_fraction": 0.1, "optimizer_kwargs": {"warmup_steps": 5}}, RUN,
     r"^The recipe gives AdamWScheduleFree's warm-up twice, as 'warmup_fraction' and as optimizer_kwargs'"
     r" 'warmup_steps': remove one of them\.$"),
    ({"optimizer": "AdamWScheduleFree", "warmup_fraction": 1.5}, RUN,
     r"^The recipe's 'warmup_fraction' must be in \[0, 1\) \(a share of the run\), got 1\.5\.$"),
    ({"optimizer": "AdamWScheduleFree", "warmup_fraction": 0.1}, None,
     r"^The recipe's 'warmup_fraction' is a share of the run, whose length the Trainer gives"
     r" \(`estimated_stepping_batches`, here None\): build it inside `configure_optimizers` of a run with"
     r" `max_epochs` or `max_steps`, or give the warm-up in steps, optimizer_kwargs \{'warmup_steps': 500\}\.$"),
    ({"optimizer": "AdamWScheduleFre"}, RUN, r"^Unknown optimizer 'AdamWScheduleFre'\. Did you mean"
                                             r" 'AdamWScheduleFree'\? Expected one of \["),
])
def test_recipe_errors(recipe, trainer, message):
    with pytest.raises(RecipeError, match=message):
        configure_from_recipe(nn.Linear(2, 2), {"lr": 0.01, **recipe}, trainer=trainer)


def test_without_the_package_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "schedulefree", None)  # what `import schedulefree` meets when not installed
    with pytest.raises(RecipeError, match=r"^The recipe's optimizer 'SGDScheduleFree' is a schedule-free optimizer of"
                                          r" the `schedulefree` package, which is not installed: pip install"
                                          r" lightning_optim_recipes\[schedulefree\] \(or `pip install"
                                          r" schedulefree`\)\.$"):
        build(optimizer="SGDScheduleFree")
    with pytest.raises(RecipeError, match=r"\(pip install lightning_optim_recipes\[schedulefree\]\)\.$"):
        build(optimizer="schedulefree.SGDScheduleFree")


def test_the_preview_shows_the_built_in_warm_up():
    recipe = {"optimizer": "SGDScheduleFree", "lr": 1.0, "warmup_fraction": 0.25}
    records = preview_schedule(recipe, max_epochs=2, steps_per_epoch=4)  # 8 steps: a warm-up over 2
    assert [r["lr"] for r in records if r["group"] == "decay"] == [0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert {r["name"] for r in records} == {"lr-SGDScheduleFree/decay", "lr-SGDScheduleFree/no_decay"}
    assert records.markers == [{"step": 1, "optimizer": 0, "label": "warmup end"}]


class Scheduled(OptimRecipeMixin, TinyRegressor):
    optim_recipe = {"optimizer": "AdamWScheduleFree", "lr": 0.01, "scheduler": {"type": "cosine", "t_max": 2}}


def test_a_scheduler_on_a_schedule_free_recipe_warns_in_the_preview_too():
    with pytest.warns(RecipeWarning, match=r"^The CosineAnnealingLR scheduler steps the lr of a schedule-free"
                                           r" optimizer, AdamWScheduleFree \(optimizer 0\): its schedule is built in"):
        preview_schedule(Scheduled(), max_epochs=2, steps_per_epoch=1)
    with warnings.catch_warnings():  # the advice in the message silences it
        warnings.simplefilter("error")
        warnings.filterwarnings('ignore', '.*steps the lr of a schedule-free optimizer')
        preview_schedule(Scheduled(), max_epochs=2, steps_per_epoch=1)


# ------------------------------------------------------------------------------------------------------- resume


@pytest.mark.parametrize("choice", ["checkpoint", "recipe"])
def test_resume_keeps_the_running_state_and_reports_only_settings(choice):
    params = [nn.Parameter(torch.randn(3))]
    old = schedulefree.AdamWScheduleFree(params, lr=0.01, warmup_steps=4)
    old.train()
    stepped(old, params, 5)
    old.eval()  # as ScheduleFreeModes saves it
    checkpoint = {"optimizer_states": [old.state_dict()], "lr_schedulers": [], "global_step": 5, "epoch": 0}
    new = schedulefree.AdamWScheduleFree([nn.Parameter(torch.randn(3))], lr=0.02, warmup_steps=4)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        report = reconcile(OptimizerSetup((new,)), checkpoint, choice)
    # k, weight_sum, lr_max, scheduled_lr and train_mode differ from a new optimizer's, but they are its state
    assert [(d.what, d.checkpoint, d.recipe) for d in report.differences] == [
        ("optimizer 0, group 0: lr", "0.01", "0.02")]
    new.load_state_dict(checkpoint["optimizer_states"][0])  # what Lightning restores
    group, saved = new.param_groups[0], old.param_groups[0]
    assert group["lr"] == (0.01 if choice == "checkpoint" else 0.02)
    assert [group[k] for k in ("k", "weight_sum", "lr_max", "train_mode")] == [5, saved["weight_sum"],
                                                                                 saved["lr_max"], False]
