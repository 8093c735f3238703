"""`configure_from_recipe`: a plain (YAML-friendly) dict -> optimizer, param groups and scheduler with its cadence."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_optim_recipes import DEFAULT_NO_DECAY, RecipeError, configure_from_recipe


class EncoderDecoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(5, 4)
        self.encoder = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
        self.decoder = nn.Linear(4, 1)


def _groups(config):
    return [(g.get("name"), len(g["params"]), g["lr"], g["weight_decay"]) for g in config["optimizer"].param_groups]


def test_full_recipe():
    recipe = {
        "optimizer": "AdamW",
        "lr": 3e-4,
        "weight_decay": 0.05,
        "optimizer_kwargs": {"betas": [0.9, 0.95]},  # a YAML list becomes the tuple torch wants
        "no_decay": {"module_types": ["Embedding"]},
        "overrides": {"decoder": {"lr": 1e-4}},
        "scheduler": {"type": "multistep", "milestones": [3], "gamma": 0.5, "name": "lr"},
    }
    config = configure_from_recipe(EncoderDecoder(), recipe)
    optimizer = config["optimizer"]
    assert type(optimizer) is torch.optim.AdamW and optimizer.defaults["betas"] == (0.9, 0.95)
    # YAML writes 0.0 as 0: torch refuses an int beta next to a float one ("betas must be either both floats")
    yaml_betas = configure_from_recipe(EncoderDecoder(), {"optimizer": "Adam", "lr": 1e-4,
                                                          "optimizer_kwargs": {"betas": [0, 0.9]}})
    assert yaml_betas["optimizer"].defaults["betas"] == (0.0, 0.9)
    assert all(type(b) is float for b in yaml_betas["optimizer"].defaults["betas"])
    assert _groups(config) == [
        ("no_decay", 4, 3e-4, 0.0),  # embedding weight (exempt by the recipe), encoder bias, LayerNorm weight, bias
        ("decay", 1, 3e-4, 0.05),
        ("decoder", 1, 1e-4, 0.05),
        ("decoder/no_decay", 1, 1e-4, 0.0),
    ]
    scheduler = config["lr_scheduler"]
    assert {k: v for k, v in scheduler.items() if k != "scheduler"} == {"interval": "epoch", "frequency": 1, "name": "lr"}
    assert isinstance(scheduler["scheduler"], torch.optim.lr_scheduler.MultiStepLR)
    assert scheduler["scheduler"].optimizer is optimizer


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("SGD", torch.optim.SGD), (torch.optim.RMSprop, torch.optim.RMSprop), ("torch.optim.Adagrad", torch.optim.Adagrad)],
)
def test_optimizer_by_name_class_or_path(spec, expected):
    config = configure_from_recipe(EncoderDecoder(), {"optimizer": spec, "lr": 0.1})
    assert type(config["optimizer"]) is expected and "lr_scheduler" not in config


def test_defaults_adamw_without_weight_decay():
    config = configure_from_recipe(EncoderDecoder(), {"lr": 0.01})
    assert type(config["optimizer"]) is torch.optim.AdamW
    # two groups even without weight decay: the layout stays when a resumed run adds it
    assert _groups(config) == [("decay", 3, 0.01, 0.0), ("no_decay", 4, 0.01, 0.0)]


@pytest.mark.parametrize(
    ("no_decay", "names"),
    [
        ("default", ["decay", "no_decay"]),
        (None, ["decay"]),
        ("none", ["decay"]),
        ({"names": ["embed.*"]}, ["no_decay", "decay"]),
        ({"names": ["decoder.weight"], "replace": True}, ["decay", "no_decay"]),
        (DEFAULT_NO_DECAY.extend(module_types=(nn.Embedding,)), ["no_decay", "decay"]),
        ({"module_types": ["torch.nn.Embedding"]}, ["no_decay", "decay"]),
    ],
)
def test_no_decay_specs(no_decay, names):
    config = configure_from_recipe(EncoderDecoder(), {"lr": 0.1, "weight_decay": 0.1, "no_decay": no_decay})
    assert [g["name"] for g in config["optimizer"].param_groups] == names


@pytest.mark.parametrize(
    ("no_decay", "exempt"),
    [
        # replace: the default norm layers are dropped, biases and 1-D parameters are still exempt
        ({"names": ["decoder.weight"], "replace": True},
         ["encoder.0.bias", "encoder.1.weight", "encoder.1.bias", "decoder.weight", "decoder.bias"]),
        ({"names": "decoder.weight", "replace": True, "bias": False, "one_dim": False}, ["decoder.weight"]),
        ({"bias": False, "one_dim": False}, ["encoder.1.weight", "encoder.1.bias"]),  # only the LayerNorm
    ],
)
def test_replaced_rule(no_decay, exempt):
    model = EncoderDecoder()
    names = {id(p): n for n, p in model.named_parameters()}
    config = configure_from_recipe(model, {"lr": 0.1, "weight_decay": 0.1, "no_decay": no_decay})
    got = [names[id(p)] for g in config["optimizer"].param_groups if g["weight_decay"] == 0.0 for p in g["params"]]
    assert sorted(got) == sorted(exempt)


@pytest.mark.parametrize(
    ("scheduler", "kind", "cadence"),
    [
        ({"type": "exponential", "gamma": 0.9, "interval": "step"}, "ExponentialLR", {"interval": "step", "frequency": 1}),
        ({"type": "cosine", "t_max": 10, "frequency": 2}, "CosineAnnealingLR", {"interval": "epoch", "frequency": 2}),
        ({"type": "warmup_cosine", "warmup_steps": 2, "total_steps": 10}, "LambdaLR", {"interval": "step", "frequency": 1}),
        ({"type": "StepLR", "step_size": 2, "interval": "step", "name": "s"}, "StepLR",
         {"interval": "step", "frequency": 1, "name": "s"}),
        ({"type": "ReduceLROnPlateau", "patience": 2, "monitor": "val_loss"}, "ReduceLROnPlateau",
         {"interval": "epoch", "frequency": 1, "monitor": "val_loss", "strict": True}),
    ],
)
def test_scheduler_types(scheduler, kind, cadence):
    config = configure_from_recipe(EncoderDecoder(), {"lr": 0.1, "scheduler": scheduler})
    assert type(config["lr_scheduler"]["scheduler"]).__name__ == kind
    assert {k: v for k, v in config["lr_scheduler"].items() if k != "scheduler"} == cadence


@pytest.mark.parametrize(
    ("recipe", "error_msg"),
    [
        ([("lr", 0.1)], r"^A recipe must be a dict such as \{'optimizer': 'AdamW', 'lr': 1e-3\}, got \[\('lr', 0\.1\)\]\.$"),
        ({"optimizer": "SGD"}, r"^The recipe has no 'lr': add the learning rate, e\.g\. \{'optimizer': 'AdamW', 'lr': 1e-3\}\.$"),
        ({"lr": 0.1, "weight_decy": 0.1},
         r"^Unknown key 'weight_decy' in the recipe: did you mean 'weight_decay'\? Valid keys: 'recipe', 'optimizer',"
         r" 'lr', 'lr_scaling', 'weight_decay', 'optimizer_kwargs', 'no_decay', 'overrides', 'layer_decay', 'layer_rule',"
         r" 'scheduler', 'warmup_fraction', 'gradient_clip_val', 'gradient_clip_algorithm', 'hybrid', 'batch_size',"
         r" 'values', 'optimizers', 'alternation', 'alternation_cycle'\.$"),
        ({"lr": 0.1, "optimizer": "Adamw"}, r"^Unknown optimizer 'Adamw'\. Did you mean 'AdamW'\? Expected one of \["),
        ({"lr": 0.1, "optimizer": "SDG"}, r"^Unknown optimizer 'SDG'\. Did you mean 'SGD'\?"),
        ({"lr": 0.1, "optimizer": 3}, r"^The recipe's 'optimizer' must be a name such as 'AdamW' or a class, got 3\.$"),
        ({"lr": 0.1, "optimizer": "torch.optim.Nope"}, r"^Cannot import the optimizer 'torch\.optim\.Nope': "),
        ({"lr": 0.1, "optimizer": "SGD", "optimizer_kwargs": {"betas": [0.9, 0.9]}},
         r"^The recipe's optimizer_kwargs do not fit SGD: .*unexpected keyword argument 'betas'"),
        ({"lr": 0.1, "optimizer": "Adam", "optimizer_kwargs": {"betas": [1.5, 0.9]}},
         r"^The recipe's optimizer_kwargs do not fit Adam: Invalid beta parameter at index 0: 1\.5\. Change that value"
         r" in the recipe\.$"),
        # param groups set their own lr and weight decay: the optimizer's default would be silently ignored
        ({"lr": 0.1, "optimizer_kwargs": {"weight_decay": 0.1}},
         r"^The recipe has 'weight_decay' in its optimizer_kwargs, where every param group's own 'weight_decay'"
         r" overrides it: write it beside 'optimizer' instead, \{'weight_decay': 0\.1\}, and remove it from"
         r" optimizer_kwargs\.$"),
        ({"lr": 0.1, "optimizer_kwargs": {"lr": 0.5}}, r"^The recipe has 'lr' in its optimizer_kwargs"),
        ({"lr": 0.1, "no_decay": "all"},
         r"^The recipe's 'no_decay' must be 'default', 'none' or a dict such as \{'names': \['pos_embed'\]\}, got 'all'\.$"),
        ({"lr": 0.1, "no_decay": {"module_type": ["Embedding"]}},
         r"^Unknown key 'module_type' in the recipe's 'no_decay': did you mean 'module_types'\?"),
        ({"lr": 0.1, "no_decay": {"bias": "no"}}, r"^The recipe's 'no_decay' 'bias' must be true or false, got 'no'\.$"),
        ({"lr": 0.1, "no_decay": {"module_types": ["Foo"]}},
         r"^Unknown module type 'Foo' in 'no_decay': use a `torch\.nn` name such as 'Embedding'\.$"),
        ({"lr": 0.1, "overrides": {"encoderr": {"lr": 1.0}}}, r"^`overrides` pattern 'encoderr' matches no trainable parameter"),
        ({"lr": 0.1, "scheduler": "cosine"},
         r"^The recipe's 'scheduler' must be a dict with a 'type', e\.g\. \{'type': 'multistep', 'milestones': \[30\]\}, got 'cosine'\.$"),
        ({"lr": 0.1, "scheduler": {"type": "Cosine", "t_max": 3}}, r"^Unknown scheduler type 'Cosine'\. Did you mean 'cosine'\? Expected one of"),
        ({"lr": 0.1, "scheduler": {"type": "steplr"}}, r"^Unknown scheduler type 'steplr'\. Did you mean 'StepLR'\?"),
        ({"lr": 0.1, "scheduler": {"type": "multistep", "milestone": [2]}},
         r"^Unknown key 'milestone' in the 'multistep' scheduler: did you mean 'milestones'\?"),
        ({"lr": 0.1, "scheduler": {"type": "StepLR", "step_sise": 2}},
         r"^The recipe's scheduler options do not fit StepLR: .*unexpected keyword argument 'step_sise'"),
        ({"lr": 0.1, "scheduler": {"type": "StepLR", "step_size": 2, "interval": "batch"}},
         r"^`interval` must be 'step' or 'epoch', got 'batch'\."),
        ({"lr": 0.1, "scheduler": {"type": "ReduceLROnPlateau"}}, r"^A `ReduceLROnPlateau` scheduler needs the metric to watch"),
        ({"lr": 0.1, "scheduler": {"type": "warmup_cosine", "warmup_steps": 2}},
         r"^`warmup_cosine` needs the length of training: pass `total_steps=`, or `trainer=self\.trainer`"),
    ],
)
def test_recipe_errors(recipe, error_msg):
    with pytest.raises(RecipeError, match=error_msg):
        configure_from_recipe(EncoderDecoder(), recipe)
