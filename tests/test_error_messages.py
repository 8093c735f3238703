"""Every `RecipeError` the foundation can raise, triggered once each: the message names the offending value and says
what to change. A last test checks that the table reaches every `raise RecipeError` in the foundation modules."""

from __future__ import annotations

import ast
import importlib
import re
import sys
import types
from pathlib import Path

import pytest
import torch
from helpers import loader, pl
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau, StepLR

import lightning_optim_recipes as lor
from lightning_optim_recipes import (
    NoDecayRule,
    OptimRecipeMixin,
    RecipeError,
    check_param_groups,
    configure_from_recipe,
    cosine,
    exponential,
    multistep,
    param_groups,
    scheduled,
    validate_optimizers,
    warmup_cosine,
)
from lightning_optim_recipes.recipes import describe_recipe, get_recipe
from lightning_optim_recipes.catalogue._examples import TinyGPT
from lightning_optim_recipes.catalogue._registry import register
from lightning_optim_recipes.schedulers import warmup_linear, warmup_multistep
from lightning_optim_recipes.schedules import (
    anneal,
    constant,
    join,
    linear,
    piecewise_constant,
    warmup_cosine_schedule,
    warmup_schedule,
    warmup_stable_decay_schedule,
)
from lightning_optim_recipes.units import RunSize, parse, resolve
from lightning_optim_recipes.validation import SchedulerSpec, call_explaining_torch_errors
from lightning_optim_recipes.wsd import check_decay_start

FOUNDATION = ("_checks", "no_decay", "param_groups", "param_checks", "layer_decay", "schedules", "schedulers", "run_lengths",
              "validation",
              "recipe", "recipe_parts", "schedule_free", "units", "wsd", "muon_split", "hybrid",
              "mixins.recipe_mixin", "catalogue._registry")

#: Says what to change: an imperative, or the requirement the value breaks together with the accepted values.
FIX = re.compile(
    r"\b(use|pass|add|remove|set|write|make|give|build|move|fix|define|construct|return|rename|lower|merge|install|change"
    r"|did you mean|must be|must exceed|must map|expected one of|expected an?|valid keys|takes an?|needs an?|only tensors)\b",
    re.IGNORECASE,
)
QUOTED = re.compile(r"'[^']*'|`[^`]+`|\"[^\"]*\"")
#: Rows whose offending value is a number, a type or a position, which the message writes unquoted.
UNQUOTED = {"cpg-list-non-tensor", "not-optimizer", "scheduler-wrong-dict"}


def vit() -> nn.Module:
    """Just enough of a ViT for layer-wise decay: a block container and a head."""
    module = nn.Module()
    module.blocks, module.head = nn.Sequential(nn.Linear(2, 2)), nn.Linear(2, 2)
    return module


def two_stacks() -> nn.Module:
    module = nn.Module()
    module.encoder, module.decoder = nn.Module(), nn.Module()
    module.encoder.layers = nn.ModuleList([nn.Linear(2, 2)])
    module.decoder.layers = nn.ModuleList([nn.Linear(2, 2)])
    return module


def model() -> nn.Sequential:
    return nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2))


def sgd(lr: float = 0.1) -> torch.optim.SGD:
    return torch.optim.SGD([nn.Parameter(torch.zeros(2, 2))], lr=lr)


def two(m: nn.Module) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    return torch.optim.SGD(m[0].parameters(), lr=0.1), torch.optim.SGD(m[1].parameters(), lr=0.1)


class NoOptimizer:
    """A scheduler look-alike that forgot its optimizer."""

    def step(self) -> None: ...

    def state_dict(self) -> dict:
        return {}


class NoRecipe(OptimRecipeMixin, pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(2, 2)


def _recipe(**recipe):
    return lambda: configure_from_recipe(model(), recipe)


def _without_schedulefree() -> None:
    """A recipe naming schedulefree's optimizer where `import schedulefree` fails (the extra not installed)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "schedulefree", None)
        configure_from_recipe(model(), {"lr": 1e-3, "optimizer": "SGDScheduleFree"})


class CooldownFromScratch(pl.LightningModule):
    """A cooldown from where training resumes (built with the Trainer), in a fit that resumes nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        return {"optimizer": opt, "lr_scheduler": lor.cooldown(opt, steps=5, trainer=self.trainer)}


def _w(m: nn.Sequential) -> torch.Tensor:
    return m[0].weight


# (id, call that raises, the offending value as the message shows it)
CASES = [
    # _checks
    ("unknown-key", lambda: validate_optimizers({"optimizer": (o := sgd()), "lr_schedular": StepLR(o, 1)}),
     "'lr_schedular'"),
    ("unknown-plain-key", lambda: validate_optimizers({"optimizer": sgd(), "monitr": "loss"}), "'monitr'"),
    # no_decay
    ("rule-names-str", lambda: NoDecayRule(names="pos_embed"), "'pos_embed'"),
    ("rule-module-types", lambda: NoDecayRule(module_types=(int,)), "<class 'int'>"),
    ("rule-predicate", lambda: NoDecayRule(predicate=3), "got 3"),
    # param_groups
    ("pg-not-module", lambda: param_groups(3, weight_decay=0.1), "got int"),
    ("pg-number", lambda: param_groups(model(), weight_decay=-1), "got -1"),
    ("pg-no-decay", lambda: param_groups(model(), weight_decay=0.1, no_decay="default"), "'default'"),
    ("pg-unused-pattern", lambda: param_groups(model(), weight_decay=0.1, overrides={"encodr": {"lr": 1.0}}),
     "'encodr'"),
    ("pg-tie", lambda: param_groups(model(), weight_decay=0.1, overrides={"0": {"lr": 1.0}, "[0]": {"lr": 2.0}}),
     "'[0]'"),
    ("pg-overrides-type", lambda: param_groups(model(), weight_decay=0.1, overrides=[("0", {})]), "got list"),
    ("pg-overrides-key", lambda: param_groups(model(), weight_decay=0.1, overrides={3: {}}), "got 3"),
    ("pg-overrides-value", lambda: param_groups(model(), weight_decay=0.1, overrides={"0": 0.1}), "got 0.1"),
    ("pg-overrides-params", lambda: param_groups(model(), weight_decay=0.1, overrides={"0": {"params": []}}),
     "'params'"),
    ("cpg-type", lambda: check_param_groups(3), "got int"),
    ("cpg-group-type", lambda: check_param_groups([{"params": [_w(model())]}, 3]), "got int"),
    ("cpg-no-params", lambda: check_param_groups([{"encoder_params": model().parameters()}]), "'encoder_params'"),
    ("cpg-non-tensor", lambda: check_param_groups([{"params": [model()]}]), "Sequential"),
    ("cpg-twice", lambda: check_param_groups([{"params": [_w(m := model())]}, {"params": [_w(m)]}], m), "'0.weight'"),
    ("cpg-list-non-tensor", lambda: check_param_groups([_w(model()), 3.0]), "float"),
    ("cpg-set", lambda: check_param_groups([{"params": {_w(model())}}]), "a set"),
    # schedules
    ("join-count", lambda: join([constant()], [3]), "got 1 schedules and 1 boundaries"),
    ("join-order", lambda: join([constant()] * 3, [3, 1]), "[3, 1]"),
    ("warmup-steps", lambda: warmup_cosine_schedule(-1, 10), "got -1"),
    ("warmup-room", lambda: warmup_cosine_schedule(5, 3), "`total_steps` (3)"),
    ("positive-int", lambda: linear(0.0, 1.0, 0), "got 0"),
    ("warmup-start-word", lambda: warmup_schedule(2, 5, start="unscaled"), "'unscaled'"),
    # schedulers
    ("scheduled-type", lambda: scheduled(sgd()), "got SGD"),
    ("scheduled-name", lambda: scheduled(StepLR(sgd(), 1), name=""), "got ''"),
    ("scheduled-plateau", lambda: scheduled(ReduceLROnPlateau(sgd())), "monitor=None"),
    ("scheduled-strict", lambda: scheduled(ReduceLROnPlateau(sgd()), monitor="val_loss", strict="yes"), "'yes'"),
    ("scheduled-monitor", lambda: scheduled(StepLR(sgd(), 1), monitor="val_loss"), "StepLR"),
    ("interval", lambda: scheduled(StepLR(sgd(), 1), interval="batch"), "'batch'"),
    ("frequency", lambda: scheduled(StepLR(sgd(), 1), frequency=0), "got 0"),
    ("milestones", lambda: multistep(sgd(), milestones=2000), "got 2000"),
    ("milestones-order", lambda: multistep(sgd(), milestones=[5, 2]), "[5, 2]"),
    ("t-max", lambda: cosine(sgd(), t_max=0), "got 0"),
    ("warmup-base-lr", lambda: warmup_cosine(sgd(lr=0.0), warmup_steps=1, total_steps=5), "lr=0.0"),
    ("warmup-min-lr", lambda: warmup_cosine(sgd(), warmup_steps=1, total_steps=5, min_lr=1.0), "got 1.0"),
    ("warmup-no-length", lambda: warmup_cosine(sgd(), warmup_steps=1), "`total_steps=`"),
    ("warmup-endless", lambda: warmup_cosine(sgd(), warmup_steps=1,
                                             trainer=types.SimpleNamespace(estimated_stepping_batches=float("inf"))),
     "is inf"),
    ("gamma", lambda: exponential(sgd(), gamma=0), "got 0"),
    # validation
    ("empty", lambda: validate_optimizers([]), "an empty sequence"),
    ("misplaced-interval", lambda: validate_optimizers({"optimizer": (o := sgd()), "lr_scheduler": StepLR(o, 1),
                                                        "interval": "step"}), "'interval'"),
    ("monitor-beside-a-dict", lambda: validate_optimizers({"optimizer": (o := sgd()), "lr_scheduler": {
        "scheduler": torch.optim.lr_scheduler.ReduceLROnPlateau(o)}, "monitor": "val_loss"}), "'val_loss'"),
    ("frequency-of-one", lambda: validate_optimizers({"optimizer": (o := sgd()), "lr_scheduler": StepLR(o, 1),
                                                      "frequency": 2}, module=model()), "'frequency': 2"),
    ("unknown-form", lambda: validate_optimizers(3), "returned a int"),
    ("not-optimizer", lambda: validate_optimizers([sgd(), 3]), "is a int"),
    ("some-frequencies", lambda: validate_optimizers([{"optimizer": sgd(), "frequency": 5}, {"optimizer": sgd()}]),
     "dicts [1]"),
    ("no-optimizer-key", lambda: validate_optimizers({"lr_scheduler": StepLR(sgd(), 1)}), "'lr_scheduler'"),
    ("optimizer-type", lambda: validate_optimizers({"optimizer": "adam"}), "got str"),
    ("scheduler-list", lambda: validate_optimizers({"optimizer": (o := sgd()), "lr_scheduler": [StepLR(o, 1)]}),
     "holds a list"),
    ("monitor-alone", lambda: validate_optimizers({"optimizer": sgd(), "monitor": "val_loss"}), "'monitor'"),
    ("no-scheduler-key", lambda: validate_optimizers(([sgd()], [{"interval": "step"}])), "'interval'"),
    ("scheduler-name", lambda: validate_optimizers(([o := sgd()], [{"scheduler": StepLR(o, 1), "name": 3}])),
     "got 3"),
    ("scheduler-strict", lambda: validate_optimizers(([o := sgd()], [{"scheduler": StepLR(o, 1), "strict": "no"}])),
     "'no'"),
    ("not-scheduler", lambda: validate_optimizers(([sgd()], ["StepLR"])), "'StepLR'"),
    ("monitor-type", lambda: validate_optimizers({"optimizer": (o := sgd()), "lr_scheduler": ReduceLROnPlateau(o),
                                                  "monitor": 5}), "got 5"),
    ("plateau-monitor", lambda: validate_optimizers({"optimizer": (o := sgd()), "lr_scheduler": ReduceLROnPlateau(o)}),
     "`ReduceLROnPlateau`"),
    ("scheduler-no-optimizer", lambda: validate_optimizers(([sgd()], [NoOptimizer()])), "NoOptimizer"),
    ("scheduler-foreign", lambda: validate_optimizers(([sgd()], [StepLR(sgd(), 1)])), "StepLR"),
    ("scheduler-wrong-dict", lambda: validate_optimizers(
        [{"optimizer": (ab := two(model()))[0]}, {"optimizer": ab[1], "lr_scheduler": StepLR(ab[0], 1)}]),
     "optimizer dict 1"),
    ("scheduler-under-unknown-key", lambda: validate_optimizers(
        [{"optimizer": (o := sgd()), "scheduler": StepLR(o, 1)}]), "'scheduler'"),
    ("frequency-automatic", lambda: validate_optimizers(
        [{"optimizer": (ab := two(m := model()))[0], "frequency": 5}, {"optimizer": ab[1], "frequency": 1}], m),
     "'frequency'"),
    ("several-automatic", lambda: validate_optimizers(list(two(m := model())), m), "returned 2 optimizers"),
    # recipe
    ("recipe-type", lambda: configure_from_recipe(model(), "AdamW"), "'AdamW'"),
    ("recipe-lr", _recipe(optimizer="AdamW"), "'lr'"),
    ("recipe-kwargs", _recipe(lr=1e-3, optimizer_kwargs={"momentum": 0.9}), "'momentum'"),
    ("recipe-kwargs-misplaced", _recipe(lr=1e-3, optimizer_kwargs={"weight_decay": 0.1}), "'weight_decay'"),
    ("recipe-optimizer-type", _recipe(lr=1e-3, optimizer=3), "got 3"),
    ("recipe-optimizer-name", _recipe(lr=1e-3, optimizer="Adamw"), "'Adamw'"),
    ("recipe-no-decay", _recipe(lr=1e-3, no_decay=3), "got 3"),
    ("recipe-no-decay-flag", _recipe(lr=1e-3, no_decay={"bias": "no"}), "'no'"),
    ("recipe-module-type", _recipe(lr=1e-3, no_decay={"module_types": ["Embeding"]}), "'Embeding'"),
    ("recipe-scheduler-type", _recipe(lr=1e-3, scheduler="cosine"), "'cosine'"),
    ("recipe-scheduler-name", _recipe(lr=1e-3, scheduler={"type": "cosin"}), "'cosin'"),
    ("recipe-scheduler-options", _recipe(lr=1e-3, scheduler={"type": "StepLR", "stepsize": 3}), "'stepsize'"),
    ("recipe-import", _recipe(lr=1e-3, optimizer="torch.optim.NoSuchOptimizer"), "'torch.optim.NoSuchOptimizer'"),
    ("recipe-schedulefree-missing", _without_schedulefree, "'SGDScheduleFree'"),
    ("recipe-warmup-fraction-no-warmup", _recipe(lr=1e-3, optimizer="AdamW", warmup_fraction=0.1), "`warmup_steps`"),
    ("recipe-warmup-twice", _recipe(lr=1e-3, optimizer="AdamWScheduleFree", warmup_fraction=0.1,
                                    optimizer_kwargs={"warmup_steps": 3}), "'warmup_steps'"),
    ("recipe-warmup-fraction-range", _recipe(lr=1e-3, optimizer="AdamWScheduleFree", warmup_fraction=1.5), "got 1.5"),
    ("recipe-warmup-fraction-no-run", _recipe(lr=1e-3, optimizer="AdamWScheduleFree", warmup_fraction=0.1),
     "here None"),
    ("bn-recompute-batch", lambda: lor.schedule_free.forward_inputs(nn.Linear(2, 2), {"x": 1}), "a dict batch"),
    ("bn-recompute-batches", lambda: lor.ScheduleFreeModes(bn_recompute_batches=-1), "got -1"),
    ("bn-forward", lambda: lor.ScheduleFreeModes(bn_forward=3), "got 3"),
    # recipe_mixin
    ("mixin-no-recipe", lambda: NoRecipe().configure_optimizers(), "NoRecipe"),
    ("warmup-decay", lambda: warmup_schedule(2, 5, decay="exponential"), "'exponential'"),
    ("piecewise-lengths", lambda: piecewise_constant([2], [1.0]), "1 factors"),
    # layer_decay
    ("ld-no-lr", lambda: param_groups(vit(), weight_decay=0.1, layer_decay=0.75), "the groups have no 'lr'"),
    ("ld-range", lambda: param_groups(vit(), weight_decay=0.1, lr=1.0, layer_decay=1.5), "got 1.5"),
    ("ld-layer-of-alone", lambda: param_groups(vit(), weight_decay=0.1, lr=1.0, layer_of=len), "`layer_of`"),
    ("ld-layer-of-type", lambda: param_groups(vit(), weight_decay=0.1, lr=1.0, layer_decay=0.5, layer_of=3), "got 3"),
    ("ld-layer-of-value", lambda: param_groups(vit(), weight_decay=0.1, lr=1.0, layer_decay=0.5,
                                               layer_of=lambda n: -1), "returned -1"),
    ("ld-reserved", lambda: param_groups(vit(), weight_decay=0.1, lr=1.0, layer_decay=0.5,
                                         overrides={"head": {"layer_id": 1}}), "'layer_id'"),
    ("ld-no-blocks", lambda: param_groups(model(), weight_decay=0.1, lr=1.0, layer_decay=0.5), "Sequential"),
    ("ld-several", lambda: param_groups(two_stacks(), weight_decay=0.1, lr=1.0, layer_decay=0.5), "'decoder.layers'"),
    ("ld-rule", lambda: param_groups(vit(), weight_decay=0.1, lr=1.0, layer_decay=0.5, layer_rule="mae"), "'mae'"),
    ("ld-rule-alone", lambda: param_groups(vit(), weight_decay=0.1, layer_rule="timm"), "`layer_rule='timm'`"),
    ("ld-rule-and-layer-of", lambda: param_groups(vit(), weight_decay=0.1, lr=1.0, layer_decay=0.5, layer_rule="timm",
                                                  layer_of=lambda name: 0), "`layer_rule`"),
    ("of-epochs-no-trainer", lambda: warmup_multistep(sgd(), milestones=[30], of_epochs=90, warmup_steps=0,
                                                       steps_per_epoch=2), "`of_epochs`"),
    ("epoch-milestones", lambda: warmup_multistep(sgd(), milestones=[0], warmup_steps=0, steps_per_epoch=2), "[0]"),
    ("milestones-in-warmup", lambda: warmup_multistep(sgd(), milestones=[1, 2], warmup_steps=5, steps_per_epoch=2),
     "[1, 2]"),
    ("min-lr-and-ratio", lambda: warmup_cosine(sgd(), warmup_steps=1, total_steps=5, min_lr=0.0, min_lr_ratio=0.1),
     "`min_lr`"),
    ("min-lr-ratio", lambda: warmup_cosine(sgd(), warmup_steps=1, total_steps=5, min_lr_ratio=2.0), "got 2.0"),
    ("warmup-two-ways", lambda: warmup_linear(sgd(), warmup_steps=1, warmup_fraction=0.1, total_steps=5),
     "warmup_steps, warmup_fraction"),
    ("warmup-fraction", lambda: warmup_linear(sgd(), warmup_fraction=1.5, total_steps=5), "got 1.5"),
    ("warmup-epochs", lambda: warmup_multistep(sgd(), milestones=[3], warmup_epochs=-1, steps_per_epoch=2),
     "got -1"),
    ("epochs-no-trainer", lambda: warmup_cosine(sgd(), warmup_epochs=1, total_steps=5), "`trainer=self.trainer`"),
    ("epochs-no-length", lambda: warmup_cosine(sgd(), warmup_epochs=1, trainer=types.SimpleNamespace(
        estimated_stepping_batches=10, num_training_batches=None, max_epochs=None, accumulate_grad_batches=1)),
     "`max_epochs`"),
    # recipes: several optimizers, lr scaling, names checked before anything is called
    ("multi-misplaced", lambda: configure_from_recipe(model(), {"optimizers": {"0": {"lr": 0.1}}, "lr": 0.1}), "'lr'"),
    ("multi-not-mapping", lambda: configure_from_recipe(model(), {"optimizers": ["0"]}), "['0']"),
    ("multi-sub-not-dict", lambda: configure_from_recipe(model(), {"optimizers": {"0": 0.1}}), "0.1"),
    ("multi-sub-no-lr", lambda: configure_from_recipe(model(), {"optimizers": {"0": {"optimizer": "SGD"}}}), "'0'"),
    ("alternation-one-optimizer", lambda: configure_from_recipe(model(), {"lr": 0.1, "alternation": {"0": 1}}),
     "'alternation'"),
    ("alternation-names", lambda: configure_from_recipe(model(), {"optimizers": {"0": {"lr": 0.1}, "1": {"lr": 0.1}},
                                                                   "alternation": {"0": 1}}), "{'0': 1}"),
    ("alternation-batches", lambda: configure_from_recipe(model(), {"optimizers": {"0": {"lr": 0.1}},
                                                                     "alternation": {"0": 0}}), "got 0"),
    ("alternation-cycle", lambda: configure_from_recipe(model(), {"optimizers": {"0": {"lr": 0.1}},
                                                                   "alternation_cycle": "global"}), "'global'"),
    ("recipe-submodule", lambda: configure_from_recipe(model(), {"optimizers": {"critic": {"lr": 0.1}}}), "'critic'"),
    ("lr-scaling-type", lambda: configure_from_recipe(model(), {"lr": 0.1, "lr_scaling": 256}), "256"),
    ("lr-scaling-base", lambda: configure_from_recipe(model(), {"lr": 0.1, "lr_scaling": {"base_batch_size": 0}}),
     "got 0"),
    ("lr-scaling-no-batch", lambda: configure_from_recipe(model(), {"lr": 0.1, "lr_scaling": {"base_batch_size": 256}}),
     "'batch_size'"),
    ("optimizer-path-not-optimizer", lambda: configure_from_recipe(model(), {"lr": 0.1, "optimizer": "subprocess.Popen"}),
     "'subprocess.Popen'"),
    ("module-type-path-not-module", lambda: configure_from_recipe(model(), {"lr": 0.1, "no_decay": {
        "module_types": ["os.system"]}}), "'os.system'"),
    ("scheduler-path-not-scheduler", lambda: configure_from_recipe(model(), {"lr": 0.1, "scheduler": {
        "type": "shutil.rmtree"}}), "'shutil.rmtree'"),
    ("recipe-warmup-start", _recipe(lr=0.1, scheduler={"type": "warmup_linear", "warmup_steps": 1, "total_steps": 5,
                                                       "warmup_start": "unscald"}), "'unscald'"),
    ("recipe-no-decay-positions", _recipe(lr=1e-3, no_decay={"positions": 3}), "got 3"),
    # Muon beside AdamW: the recipe's 'hybrid'; warm-up, stable, decay
    ("hybrid-not-dict", _recipe(optimizer="Muon", lr=0.02, hybrid=3), "got 3"),
    ("hybrid-no-lr", _recipe(optimizer="Muon", lr=0.02, hybrid={"optimizer": "AdamW"}), "'lr'"),
    ("hybrid-beside-layer-decay", _recipe(optimizer="Muon", lr=0.02, layer_decay=0.75, hybrid={"lr": 3e-4}),
     "'layer_decay'"),
    ("hybrid-kwargs-decay", _recipe(optimizer="Muon", lr=0.02, hybrid={"lr": 3e-4, "optimizer_kwargs": {
        "weight_decay": 0.1}}), "'weight_decay'"),
    ("recipe-muon-alone", _recipe(optimizer="Muon", lr=0.02), "'1.weight'"),
    ("muon-every-parameter", lambda: (lambda m: call_explaining_torch_errors(
        lambda: torch.optim.Muon(m.parameters(), lr=0.02), m))(model()), "'0.bias'"),
    ("muon-beside-adamw", lambda: validate_optimizers([torch.optim.Muon([_w(m := model())], lr=0.02),
                                                       torch.optim.AdamW(m[1].parameters(), lr=3e-4)], m),
     "(Muon and AdamW)"),
    # the split and the one optimizer over its parts
    ("split-module", lambda: lor.muon_split(3), "got int"),
    ("split-no-decay", lambda: lor.muon_split(TinyGPT(), no_decay="x"), "got 'x'"),
    ("split-unused-override", lambda: lor.muon_split(TinyGPT(), overrides={"nothing.here": "adamw"}),
     "'nothing.here'"),
    ("split-head", lambda: lor.muon_split(TinyGPT(), head="nohead"), "'nohead'"),
    ("split-override-1d", lambda: lor.muon_split(TinyGPT(), overrides={"transformer.h.0.ln_1": "muon"}), "(8,)"),
    ("split-override-embedding", lambda: lor.muon_split(TinyGPT(), overrides={"transformer.wpe": "muon"}),
     "(16, 8)"),
    ("split-overrides-type", lambda: lor.muon_split(TinyGPT(), overrides=["x"]), "got list"),
    ("split-overrides-key", lambda: lor.muon_split(TinyGPT(), overrides={3: "muon"}), "got 3"),
    ("split-overrides-side", lambda: lor.muon_split(TinyGPT(), overrides={"transformer.h.0": "sgd"}), "got 'sgd'"),
    ("split-overrides-tie", lambda: lor.muon_split(TinyGPT(), overrides={"transformer.h.*.attn": "muon",
                                                                          "transformer.h.0.*": "adamw"}),
     "'transformer.h.0.*'"),
    ("hybrid-parts", lambda: lor.HybridOptimizer([3]), "got (3,)"),
    ("hybrid-add-group", lambda: lor.HybridOptimizer([torch.optim.SGD([nn.Parameter(torch.zeros(2))], lr=0.1)])
     .add_param_group({"params": [nn.Parameter(torch.zeros(2))]}), "add_param_group"),
    ("hybrid-shared", lambda: (lambda p: lor.HybridOptimizer([torch.optim.SGD(p, lr=0.1), torch.optim.SGD(p, lr=0.1)]))(
        [nn.Parameter(torch.zeros(2, 2))]), "shape (2, 2)"),
    ("hybrid-optimizer-class", lambda: lor.hybrid_optimizer(TinyGPT(), adamw={"optimizer": 3}), "got 3"),
    ("hybrid-options", lambda: lor.hybrid_optimizer(TinyGPT(), adamw={"lr": 1e-3, "bogus": 1}), "'bogus'"),
    ("hybrid-group-kind", lambda: lor.hybrid_optimizer(TinyGPT(), adamw={"lr": 1e-3, "groups": {"nope": {}}}),
     "'nope'"),
    ("hybrid-group-values", lambda: lor.hybrid_optimizer(TinyGPT(), adamw={"lr": 1e-3, "groups": {"embedding": 3}}),
     "got 3"),
    # warm-up start and a decay that ends before the run
    ("warmup-start", lambda: warmup_linear(sgd(), warmup_steps=2, total_steps=5, warmup_start=1.5), "got 1.5"),
    ("decay-fraction", lambda: warmup_cosine(sgd(), warmup_steps=1, total_steps=5, decay_fraction=0), "got 0"),
    ("decay-fraction-room", lambda: warmup_cosine(sgd(), warmup_steps=3, total_steps=10, decay_fraction=0.3),
     "`decay_fraction` 0.3"),
    ("decay-steps-none", lambda: warmup_schedule(2, 5, decay="none", decay_steps=3), "decay='none'"),
    ("decay-steps-range", lambda: warmup_schedule(2, 5, decay_steps=6), "got 6"),
    # lengths in units
    ("units-not-a-length", lambda: parse("ten", "warmup"), "'ten'"),
    ("units-unknown", lambda: parse("10 epochs", "warmup"), "'epochs'"),
    ("units-whole", lambda: parse("2.5st", "warmup"), "'2.5st'"),
    ("units-frequency", lambda: resolve("5ep", "t_max", RunSize(batches=10), unit="epochs", frequency=2), "'5ep'"),
    ("units-share", lambda: resolve("5%", "warmup", RunSize()), "'5%'"),
    ("units-epochs", lambda: resolve("2ep", "warmup", RunSize()), "'2ep'"),
    ("units-batches", lambda: resolve("300ba", "warmup", RunSize()), "'300ba'"),
    ("units-epoch-whole", lambda: resolve("2.5ep", "t_max", RunSize(batches=10), unit="epochs"), "'2.5ep'"),
    ("units-epoch-share", lambda: resolve("50%", "t_max", RunSize(), unit="epochs"), "'50%'"),
    ("units-epoch-length", lambda: resolve("500st", "t_max", RunSize(), unit="epochs"), "'500st'"),
    ("units-epoch-not-whole", lambda: resolve("25st", "t_max", RunSize(batches=10), unit="epochs"), "'25st'"),
    # warmup-stable-decay
    ("anneal-shape", lambda: anneal(5, shape="exp"), "'exp'"),
    ("wsd-schedule-start", lambda: warmup_stable_decay_schedule(5, 3, 2), "decay_start=3"),
    ("wsd-schedule-warmup", lambda: warmup_stable_decay_schedule(-1, 3, 2), "got -1"),
    ("wsd-shape", lambda: lor.warmup_stable_decay(sgd(), warmup=0, decay=5, decay_shape="exp", total_steps=10),
     "'exp'"),
    ("wsd-no-length", lambda: lor.warmup_stable_decay(sgd(), warmup=1, decay=5), "`total_steps=`"),
    ("wsd-room", lambda: lor.warmup_stable_decay(sgd(), warmup=6, decay=5, total_steps=10), "6-step warm-up"),
    ("wsd-total-steps", lambda: lor.warmup_stable_decay(sgd(), warmup=1, decay="50%", total_steps=0), "got 0"),
    ("wsd-length", lambda: lor.warmup_stable_decay(sgd(), warmup=-1, decay=5, total_steps=10), "got -1"),
    ("wsd-inside-warmup", lambda: lor.place_scheduler(
        lor.warmup_stable_decay(sgd(), warmup=10, decay=5, decay_start="now")["scheduler"], 3), "step 3"),
    ("wsd-fit-not-resumed", lambda: pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False,
                                               enable_progress_bar=False, enable_model_summary=False).fit(
        CooldownFromScratch(), loader(2)), "decay_start='now'"),
    ("wsd-not-resumed", lambda: check_decay_start([SchedulerSpec(lor.cooldown(sgd(), steps=5)["scheduler"], 0)],
                                                  types.SimpleNamespace()), "decay_start='now'"),
    ("unknown-recipe", lambda: get_recipe("wgan-pg"), "'wgan-pg'"),
    ("recipe-registered-twice", lambda: register(describe_recipe("wgan-gp")), "'wgan-gp'"),
]


def _raise_site(err: BaseException) -> tuple[str, int]:
    tb = err.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return Path(tb.tb_frame.f_code.co_filename).stem, tb.tb_lineno


@pytest.mark.parametrize(("case", "call", "shown"), CASES, ids=[case[0] for case in CASES])
def test_message_names_the_value_and_the_fix(case, call, shown):
    with pytest.raises(RecipeError) as info:
        call()
    message = str(info.value)
    assert shown in message, f"the offending value {shown!r} is not in: {message}"
    assert case in UNQUOTED or QUOTED.search(message), f"nothing quoted in: {message}"
    assert FIX.search(message), f"no fix in: {message}"
    assert message.rstrip().endswith((".", "?", ")")), message


def test_the_table_reaches_every_raise_in_the_foundation():
    sites = set()
    for name in FOUNDATION:
        path = Path(importlib.import_module(f"lightning_optim_recipes.{name}").__file__)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                if getattr(node.exc.func, "id", None) == "RecipeError":
                    sites.add((name.rpartition(".")[2], node.lineno))
    reached = set()
    for _, call, _ in CASES:
        with pytest.raises(RecipeError) as info:
            call()
        reached.add(_raise_site(info.value))
    assert sites - reached == set(), "add a row to CASES for each of these (module, line) raise sites"
    assert len(CASES) == len({case[0] for case in CASES}) and lor.RecipeError is RecipeError
