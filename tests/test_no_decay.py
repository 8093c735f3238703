"""Which parameters get weight decay, parameter by parameter, and why (the default rule and its extensions)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_optim_recipes import DEFAULT_NO_DECAY, NoDecayRule, RecipeError, param_groups
from lightning_optim_recipes.no_decay import model_no_weight_decay


class CustomRMSNorm(nn.Module):
    """An RMSNorm written by hand (not a subclass of any torch norm layer): caught by ndim < 2."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))


class LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), 1e-5))


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(8, 24)
        self.rel_pos_bias_table = nn.Parameter(torch.zeros(9, 2))  # "bias" in the name, but a 2-D table: decayed


class BatchNormSubclass(nn.BatchNorm1d):
    pass


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.pos_embed = nn.Parameter(torch.zeros(1, 4, 8))
        self.conv = nn.Conv2d(1, 2, 3)
        self.bn = nn.BatchNorm1d(8)
        self.fc = nn.Linear(8, 8)
        self.ln = nn.LayerNorm(8)
        self.rms = nn.RMSNorm(8)
        self.my_bn = BatchNormSubclass(8)
        self.custom_rms = CustomRMSNorm(8)
        self.layer_scale = LayerScale(8)
        self.attn = Attention()
        self.head = nn.Linear(8, 10, bias=False)
        self.head.weight = self.embed.weight  # tied: the output layer shares the embedding matrix

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed"}


# (parameter name, decayed?, reason): what the default rule does, and why.
DEFAULT_TABLE = [
    ("pos_embed", False, "model"),  # listed by the model's own no_weight_decay() (timm's convention)
    ("embed.weight", True, None),  # embeddings are decayed by default (tied head.weight is the same tensor)
    ("conv.weight", True, None),
    ("conv.bias", False, "bias"),
    ("bn.weight", False, "module"),
    ("bn.bias", False, "bias"),  # registered under the name `bias`: that reason comes first
    ("fc.weight", True, None),
    ("fc.bias", False, "bias"),
    ("ln.weight", False, "module"),
    ("ln.bias", False, "bias"),
    ("rms.weight", False, "module"),  # torch's RMSNorm is a normalization layer
    ("my_bn.weight", False, "module"),  # subclasses of a normalization layer too
    ("my_bn.bias", False, "bias"),
    ("custom_rms.scale", False, "ndim<2"),  # a hand-written RMSNorm: a 1-D weight
    ("layer_scale.gamma", False, "ndim<2"),  # a layer-scale gamma: 1-D
    ("attn.rel_pos_bias_table", True, None),  # not any name containing "bias": a 2-D table is decayed
    ("attn.qkv.weight", True, None),
    ("attn.qkv.bias", False, "bias"),
]


def _decay_of(groups) -> dict[int, float]:
    return {id(p): g["weight_decay"] for g in groups for p in g["params"]}


def _reason(rule: NoDecayRule, model: nn.Module, name: str):
    owner_name, _, _ = name.rpartition(".")
    owner = model.get_submodule(owner_name)
    return rule.reason(name, model.get_parameter(name), owner, model_no_weight_decay(model))


def test_table_covers_every_parameter_once():
    model = Model()
    assert [name for name, _ in model.named_parameters()] == [name for name, _, _ in DEFAULT_TABLE]
    groups = param_groups(model, weight_decay=0.1)
    assert sum(len(g["params"]) for g in groups) == len(DEFAULT_TABLE)  # the tied weight appears once


@pytest.mark.parametrize(("name", "decayed", "reason"), DEFAULT_TABLE)
def test_default_rule_table(name, decayed, reason):
    model = Model()
    assert _reason(DEFAULT_NO_DECAY, model, name) == reason
    decay = _decay_of(param_groups(model, weight_decay=0.1))
    assert decay[id(model.get_parameter(name))] == (0.1 if decayed else 0.0)


def test_tied_weight_is_one_param_with_one_decision():
    model = Model()
    assert model.head.weight is model.embed.weight
    groups = param_groups(model, weight_decay=0.1)
    holders = [g["name"] for g in groups for p in g["params"] if p is model.head.weight]
    assert holders == ["decay"]


def test_tied_weight_exempt_under_any_of_its_names():
    """A decision must not depend on which alias was registered first: `no_weight_decay()` may list either."""

    class TiedByHead(Model):
        def no_weight_decay(self):
            return {"pos_embed", "head.weight"}

    model = TiedByHead()
    decay = _decay_of(param_groups(model, weight_decay=0.1))
    assert decay[id(model.head.weight)] == 0.0
    # and a rule exempting embeddings exempts the tied head weight, whichever module registered it first
    head_first = nn.Sequential()
    head_first.add_module("head", nn.Linear(8, 10, bias=False))
    head_first.add_module("embed", nn.Embedding(10, 8))
    head_first.head.weight = head_first.embed.weight
    rule = DEFAULT_NO_DECAY.extend(module_types=(nn.Embedding,))
    assert _decay_of(param_groups(head_first, weight_decay=0.1, no_decay=rule)) == {id(head_first.embed.weight): 0.0}


@pytest.mark.parametrize(
    ("rule", "changed"),
    [
        # extend by module type: embeddings (and the tied head) are exempt
        (DEFAULT_NO_DECAY.extend(module_types=(nn.Embedding,)), {"embed.weight": "module"}),
        # extend by name: a glob on the full name or the last part
        (DEFAULT_NO_DECAY.extend(names=("rel_pos_bias_table",)), {"attn.rel_pos_bias_table": "name"}),
        (DEFAULT_NO_DECAY.extend(names=("attn.*",)),
         {"attn.rel_pos_bias_table": "name", "attn.qkv.weight": "name", "attn.qkv.bias": "name"}),
        # extend by predicate: conv kernels
        (DEFAULT_NO_DECAY.extend(predicate=lambda name, p, m: isinstance(m, nn.Conv2d)), {"conv.weight": "predicate"}),
    ],
    ids=["module_types", "names", "names-glob", "predicate"],
)
def test_extended_rules(rule, changed):
    model = Model()
    for name, decayed, reason in DEFAULT_TABLE:
        expected = changed.get(name, reason)
        assert _reason(rule, model, name) == expected, name
    decay = _decay_of(param_groups(model, weight_decay=0.1, no_decay=rule))
    for name in changed:
        assert decay[id(model.get_parameter(name))] == 0.0


def test_extend_combines_predicates_and_keeps_the_original():
    first = DEFAULT_NO_DECAY.extend(predicate=lambda name, p, m: name == "fc.weight")
    both = first.extend(predicate=lambda name, p, m: name == "conv.weight", names=("pos_embed",))
    model = Model()
    assert _reason(both, model, "fc.weight") == "predicate"
    assert _reason(both, model, "conv.weight") == "predicate"
    assert _reason(first, model, "conv.weight") is None
    assert DEFAULT_NO_DECAY.names == () and DEFAULT_NO_DECAY.predicate is None  # extend returns a copy


def test_replaced_rule_decays_everything_else():
    """A rule built from scratch: only the model's own no_weight_decay() and biases are exempt."""
    rule = NoDecayRule(module_types=(), one_dim=False)
    model = Model()
    exempt = {name for name, _, _ in DEFAULT_TABLE if _reason(rule, model, name) is not None}
    assert exempt == {"pos_embed", "conv.bias", "bn.bias", "fc.bias", "ln.bias", "my_bn.bias", "attn.qkv.bias"}
    nothing = NoDecayRule(module_types=(), bias=False, one_dim=False, use_model_hook=False)
    assert all(_reason(nothing, model, name) is None for name, _, _ in DEFAULT_TABLE)
    groups = param_groups(model, weight_decay=0.1, no_decay=None)  # None decays every parameter
    assert [(g["name"], g["weight_decay"], len(g["params"])) for g in groups] == [("decay", 0.1, len(DEFAULT_TABLE))]


def test_model_hook_in_a_submodule_and_globs():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.cls_token = nn.Parameter(torch.zeros(1, 1, 4))
            self.proj = nn.Linear(4, 4)

        def no_weight_decay(self):
            return ["cls_token"]

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Block()
            self.pos_embed_a = nn.Parameter(torch.zeros(2, 4))
            self.pos_embed_b = nn.Parameter(torch.zeros(2, 4))

        def no_weight_decay(self):
            return ["pos_embed_*"]

    model = Outer()
    assert model_no_weight_decay(model) == frozenset({"block.cls_token", "pos_embed_*"})
    assert _reason(DEFAULT_NO_DECAY, model, "block.cls_token") == "model"
    assert _reason(DEFAULT_NO_DECAY, model, "pos_embed_b") == "model"
    assert _reason(DEFAULT_NO_DECAY, model, "block.proj.weight") is None
    assert _reason(NoDecayRule(use_model_hook=False), model, "pos_embed_a") is None


@pytest.mark.parametrize(
    ("kwargs", "error_msg"),
    [
        ({"names": "pos_embed"}, r"^`NoDecayRule\(names=\.\.\.\)` takes a tuple of glob patterns, got 'pos_embed'\.$"),
        ({"module_types": (nn.Embedding, "LayerNorm")}, r"^`NoDecayRule\(module_types=\.\.\.\)` takes a tuple of `nn.Module` classes"),
        ({"predicate": 3}, r"^`NoDecayRule\(predicate=\.\.\.\)` takes a callable `\(name, param, module\) -> bool`, got 3\.$"),
    ],
)
def test_rule_errors(kwargs, error_msg):
    with pytest.raises(RecipeError, match=error_msg):
        NoDecayRule(**kwargs)


def test_param_groups_rejects_a_non_rule():
    with pytest.raises(RecipeError, match=r"^`no_decay` must be a `NoDecayRule` \(e\.g\. `DEFAULT_NO_DECAY\.extend\(names=\.\.\.\)`\) or None, got \['bias'\]\.$"):
        param_groups(nn.Linear(2, 2), weight_decay=0.1, no_decay=["bias"])
