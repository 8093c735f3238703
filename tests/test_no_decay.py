"""Which parameters get weight decay, parameter by parameter, and why (the default rule and its extensions)."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch
from torch import nn

from lightning_optim_recipes import DEFAULT_NO_DECAY, NoDecayRule, RecipeError, RecipeWarning, param_groups
from lightning_optim_recipes.no_decay import POSITION_TOKEN_NAMES, model_no_weight_decay


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
    """Swin's and BEiT's relative position bias table (2-D), and SAM's decomposed relative positions."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(8, 24)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(9, 2))
        self.rel_pos_h = nn.Parameter(torch.zeros(7, 4))  # SAM / ViTDet: decayed, as their configs do


class HFViTEmbeddings(nn.Module):
    """Hugging Face's ViTEmbeddings / DeiTEmbeddings: tokens and position embeddings registered directly, 3-D."""

    def __init__(self) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 8))
        self.distillation_token = nn.Parameter(torch.zeros(1, 1, 8))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, 8))
        self.patch_embeddings = nn.Conv2d(3, 8, 4, 4)
        self.position_embeddings = nn.Parameter(torch.zeros(1, 5, 8))


class BertEmbeddings(nn.Module):
    """Hugging Face's BertEmbeddings: position embeddings are an nn.Embedding, decayed like the word embeddings."""

    def __init__(self) -> None:
        super().__init__()
        self.position_embeddings = nn.Embedding(16, 8)


class EmbeddingWithToken(nn.Embedding):
    """A token registered on an nn.Embedding (not directly on a plain module): the position/token rule skips it."""

    def __init__(self) -> None:
        super().__init__(10, 8)
        self.mask_token = nn.Parameter(torch.zeros(1, 8))


class BatchNormSubclass(nn.BatchNorm1d):
    pass


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.pos_embed = nn.Parameter(torch.zeros(1, 4, 8))
        self.reg_token = nn.Parameter(torch.zeros(1, 1, 8))
        self.conv = nn.Conv2d(1, 2, 3)
        self.bn = nn.BatchNorm1d(8)
        self.fc = nn.Linear(8, 8)
        self.ln = nn.LayerNorm(8)
        self.rms = nn.RMSNorm(8)
        self.my_bn = BatchNormSubclass(8)
        self.custom_rms = CustomRMSNorm(8)
        self.layer_scale = LayerScale(8)
        self.attn = Attention()
        self.vit_embeddings = HFViTEmbeddings()
        self.bert_embeddings = BertEmbeddings()
        self.token_embed = EmbeddingWithToken()
        self.head = nn.Linear(8, 10, bias=False)
        self.head.weight = self.embed.weight  # tied: the output layer shares the embedding matrix

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed"}


# (parameter name, decayed?, reason): what the default rule does, and why.
DEFAULT_TABLE = [
    ("pos_embed", False, "model"),  # listed by the model's own no_weight_decay() (timm's convention)
    ("reg_token", False, "position/token"),  # a token registered directly, declared nowhere
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
    ("custom_rms.scale", False, "module"),  # a hand-written RMSNorm (not torch's): matched by its class name
    ("layer_scale.gamma", False, "ndim<2"),  # a layer-scale gamma: 1-D
    ("attn.relative_position_bias_table", False, "position/token"),  # Swin, BEiT: a 2-D table, exempt
    ("attn.rel_pos_h", True, None),  # SAM / ViTDet / MViTv2 decomposed relative positions: decayed
    ("attn.qkv.weight", True, None),
    ("attn.qkv.bias", False, "bias"),
    ("vit_embeddings.cls_token", False, "position/token"),  # Hugging Face ViT: 3-D, declared nowhere
    ("vit_embeddings.distillation_token", False, "position/token"),  # Hugging Face DeiT
    ("vit_embeddings.mask_token", False, "position/token"),
    ("vit_embeddings.position_embeddings", False, "position/token"),  # an nn.Parameter on ViTEmbeddings
    ("vit_embeddings.patch_embeddings.weight", True, None),
    ("vit_embeddings.patch_embeddings.bias", False, "bias"),
    ("bert_embeddings.position_embeddings.weight", True, None),  # BERT's is an nn.Embedding: decayed
    ("token_embed.weight", True, None),
    ("token_embed.mask_token", True, None),  # registered on an nn.Embedding, not directly: decayed
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
        # extend by module type: embeddings (and the tied head) are exempt, BERT's position embeddings too
        (DEFAULT_NO_DECAY.extend(module_types=(nn.Embedding,)),
         {"embed.weight": "module", "bert_embeddings.position_embeddings.weight": "module",
          "token_embed.weight": "module", "token_embed.mask_token": "module"}),
        # extend by name: a glob on the full name or the last part
        (DEFAULT_NO_DECAY.extend(names=("rel_pos_h",)), {"attn.rel_pos_h": "name"}),
        (DEFAULT_NO_DECAY.extend(names=("attn.*",)),
         {"attn.relative_position_bias_table": "name", "attn.rel_pos_h": "name", "attn.qkv.weight": "name",
          "attn.qkv.bias": "name"}),
        # extend by predicate: conv kernels
        (DEFAULT_NO_DECAY.extend(predicate=lambda name, p, m: isinstance(m, nn.Conv2d)),
         {"conv.weight": "predicate", "vit_embeddings.patch_embeddings.weight": "predicate"}),
        # no position/token names: they are decayed again
        (dataclasses.replace(DEFAULT_NO_DECAY, positions=()),
         {"reg_token": None, "attn.relative_position_bias_table": None, "vit_embeddings.cls_token": None,
          "vit_embeddings.distillation_token": None, "vit_embeddings.mask_token": None,
          "vit_embeddings.position_embeddings": None}),
    ],
    ids=["module_types", "names", "names-glob", "predicate", "no-positions"],
)
def test_extended_rules(rule, changed):
    model = Model()
    for name, decayed, reason in DEFAULT_TABLE:
        expected = changed.get(name, reason)
        assert _reason(rule, model, name) == expected, name
    decay = _decay_of(param_groups(model, weight_decay=0.1, no_decay=rule))
    for name, reason in changed.items():
        assert decay[id(model.get_parameter(name))] == (0.1 if reason is None else 0.0), name


def test_extend_combines_predicates_and_keeps_the_original():
    first = DEFAULT_NO_DECAY.extend(predicate=lambda name, p, m: name == "fc.weight")
    both = first.extend(predicate=lambda name, p, m: name == "conv.weight", names=("pos_embed",))
    model = Model()
    assert _reason(both, model, "fc.weight") == "predicate"
    assert _reason(both, model, "conv.weight") == "predicate"
    assert _reason(first, model, "conv.weight") is None
    assert DEFAULT_NO_DECAY.names == () and DEFAULT_NO_DECAY.predicate is None  # extend returns a copy


def test_replaced_rule_decays_everything_else():
    """A rule built from scratch: only the model's own no_weight_decay(), biases and position/token names are exempt."""
    rule = NoDecayRule(module_types=(), one_dim=False)
    model = Model()
    exempt = {name for name, _, _ in DEFAULT_TABLE if _reason(rule, model, name) is not None}
    assert exempt == {
        "pos_embed", "reg_token", "conv.bias", "bn.bias", "fc.bias", "ln.bias", "my_bn.bias",
        "attn.relative_position_bias_table", "attn.qkv.bias", "vit_embeddings.cls_token",
        "vit_embeddings.distillation_token", "vit_embeddings.mask_token", "vit_embeddings.position_embeddings",
        "vit_embeddings.patch_embeddings.bias",
    }
    nothing = NoDecayRule(module_types=(), bias=False, one_dim=False, use_model_hook=False, positions=())
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
        ({"positions": "cls_token"}, r"^`NoDecayRule\(positions=\.\.\.\)` takes a tuple of parameter names, got 'cls_token'\.$"),
    ],
)
def test_rule_errors(kwargs, error_msg):
    with pytest.raises(RecipeError, match=error_msg):
        NoDecayRule(**kwargs)


def test_param_groups_rejects_a_non_rule():
    with pytest.raises(RecipeError, match=r"^`no_decay` must be a `NoDecayRule` \(e\.g\. `DEFAULT_NO_DECAY\.extend\(names=\.\.\.\)`\) or None, got \['bias'\]\.$"):
        param_groups(nn.Linear(2, 2), weight_decay=0.1, no_decay=["bias"])


# ------------------------------------------------------------------------------ position/token names of real models


def _nested(path: str, shape: tuple[int, ...]) -> nn.Module:
    """A model with one parameter at the dotted `path` (plain modules on the way) and a decayed Linear."""
    model = nn.Module()
    model.fc = nn.Linear(2, 2)
    *modules, leaf = path.split(".")
    owner = model
    for name in modules:
        if not hasattr(owner, name):
            owner.add_module(name, nn.Module())
        owner = getattr(owner, name)
    owner.register_parameter(leaf, nn.Parameter(torch.zeros(shape)))
    return model


@pytest.mark.parametrize(
    ("path", "shape", "reason"),
    [
        ("vit.embeddings.cls_token", (1, 1, 8), "position/token"),  # Hugging Face ViT
        ("vit.embeddings.position_embeddings", (1, 5, 8), "position/token"),
        ("vit.embeddings.mask_token", (1, 1, 8), "position/token"),
        ("deit.embeddings.distillation_token", (1, 1, 8), "position/token"),  # Hugging Face DeiT
        ("dist_token", (1, 1, 8), "position/token"),  # timm DeiT
        ("swin.embeddings.position_embeddings", (1, 4, 8), "position/token"),  # Hugging Face Swin
        ("swin.encoder.layers.0.blocks.0.attention.self.relative_position_bias_table", (9, 2), "position/token"),
        ("beit.encoder.layer.0.attention.attention.relative_position_bias.relative_position_bias_table", (12, 2),
         "position/token"),  # Hugging Face BEiT
        ("rel_pos_bias.relative_position_bias_table", (12, 2), "position/token"),  # timm BEiT's shared table
        ("absolute_pos_embed", (1, 4, 8), "position/token"),  # Swin v1
        ("stages.0.blocks.0.attn.attention_biases", (2, 9), "position/token"),  # LeViT, EfficientFormer
        ("blocks.0.attn.rel_pos_bias_table", (9, 2), "position/token"),  # a hand-written Swin attention
        ("image_encoder.blocks.0.attn.rel_pos_h", (7, 4), None),  # SAM: decayed, as ViTDet does
        ("image_encoder.blocks.0.attn.rel_pos_w", (7, 4), None),
        ("vit.embeddings.position_embedding_table", (5, 8), None),  # not one of the names
    ],
)
def test_position_token_names_of_real_families(path, shape, reason):
    model = _nested(path, shape)
    assert _reason(DEFAULT_NO_DECAY, model, path) == reason
    decay = _decay_of(param_groups(model, weight_decay=0.1))
    assert decay[id(model.get_parameter(path))] == (0.1 if reason is None else 0.0)
    assert decay[id(model.fc.weight)] == 0.1


def test_position_token_names_are_listed():
    assert POSITION_TOKEN_NAMES == (
        "pos_embed", "absolute_pos_embed", "position_embeddings",
        "cls_token", "dist_token", "distillation_token", "mask_token", "reg_token",
        "relative_position_bias_table", "rel_pos_bias_table", "attention_biases",
    )
    assert DEFAULT_NO_DECAY.positions == POSITION_TOKEN_NAMES


# ---------------------------------------------------------------------------- name patterns that match nothing


class SmallViT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 4))
        self.patch_embed = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)


_SILENCE = r" Fix or remove it, or silence this warning with `warnings\.filterwarnings\('ignore', '\.\*NoDecayRule', RecipeWarning\)`\.$"


def test_a_name_pattern_that_matches_nothing_warns_at_the_callers_line():
    rule = DEFAULT_NO_DECAY.extend(names=("cls_tokne",))
    with pytest.warns(RecipeWarning, match=r"^`NoDecayRule\(names=\.\.\.\)` pattern 'cls_tokne' matches no parameter of"
                      r" SmallViT, so it exempts nothing\. Closest parameter names: 'cls_token'\." + _SILENCE) as record:
        groups = param_groups(SmallViT(), weight_decay=0.1, no_decay=rule)
    assert len(record) == 1 and record[0].filename == __file__
    assert [(g["name"], len(g["params"])) for g in groups] == [("no_decay", 3), ("decay", 2)]  # still grouped


def test_several_patterns_without_a_close_name():
    rule = DEFAULT_NO_DECAY.extend(names=("head.weight", "xyz", "decoder.*"))
    with pytest.warns(RecipeWarning, match=r"^`NoDecayRule\(names=\.\.\.\)` patterns 'xyz', 'decoder\.\*' match no parameter"
                      r" of SmallViT, so it exempts nothing\. Parameter names look like: 'cls_token',"
                      r" 'patch_embed\.weight', 'patch_embed\.bias', 'head\.weight'\." + _SILENCE):
        param_groups(SmallViT(), weight_decay=0.1, no_decay=rule)


def test_a_pattern_matching_a_frozen_or_tied_parameter_is_not_a_typo():
    model = SmallViT()
    model.patch_embed.requires_grad_(False)
    model.tied = nn.Linear(4, 4)
    model.tied.weight = model.head.weight  # head.weight, registered a second time as tied.weight
    rule = DEFAULT_NO_DECAY.extend(names=("patch_embed.weight", "tied.weight", "*.bias", "cls_token"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        groups = param_groups(model, weight_decay=0.1, no_decay=rule)
    # tied.weight is head.weight: exempt under its second name, so exempt
    assert [(g["name"], len(g["params"])) for g in groups] == [("no_decay", 4)]


def test_the_silencing_filter_works():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", ".*NoDecayRule", RecipeWarning)
        param_groups(SmallViT(), weight_decay=0.1, no_decay=DEFAULT_NO_DECAY.extend(names=("nope",)))


# ------------------------------------------------------------------------------------ no_weight_decay() lookup


def test_no_weight_decay_found_wherever_getattr_finds_it(monkeypatch):
    class ClassHook(nn.Linear):
        def no_weight_decay(self):
            return ["weight"]

    class Wrapper(nn.Module):
        """Forwards unknown attributes to the wrapped module, as torch.compile's OptimizedModule does."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def __getattr__(self, name):
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(self.inner, name)

    model = nn.Module()
    model.by_class = ClassHook(2, 2)
    model.by_instance = nn.Linear(2, 2)
    model.by_instance.no_weight_decay = lambda: ["bias"]
    model.not_callable = nn.Linear(2, 2)
    model.not_callable.no_weight_decay = ["weight"]
    model.wrapped = Wrapper(ClassHook(2, 2))
    assert model_no_weight_decay(model) == frozenset(
        {"by_class.weight", "by_instance.bias", "wrapped.weight", "wrapped.inner.weight"}
    )
    groups = param_groups(model, weight_decay=0.1, no_decay=NoDecayRule(bias=False, one_dim=False))
    decayed = {n for n, p in model.named_parameters() if _decay_of(groups)[id(p)] == 0.1}
    assert decayed == {"not_callable.weight", "not_callable.bias", "by_class.bias", "by_instance.weight",
                       "wrapped.inner.bias"}


def test_modules_without_the_hook_are_not_asked(monkeypatch):
    """`getattr(module, "no_weight_decay", None)` raises and catches an AttributeError in `nn.Module.__getattr__`
    for every module without the hook; the lookup must not."""
    asked = []
    original = nn.Module.__getattr__

    def counting(self, name):
        asked.append(name)
        return original(self, name)

    monkeypatch.setattr(nn.Module, "__getattr__", counting)
    model = nn.Sequential(*(nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)) for _ in range(10)))
    param_groups(model, weight_decay=0.1)
    model_no_weight_decay(model)
    assert "no_weight_decay" not in asked


def test_lists_from_a_config_are_taken_as_tuples():
    rule = NoDecayRule(names=["cls_token"], module_types=[nn.LayerNorm], positions=["pos_embed"])
    assert (rule.names, rule.module_types, rule.positions) == (("cls_token",), (nn.LayerNorm,), ("pos_embed",))
    assert rule.extend(names=["fc.weight"]).names == ("cls_token", "fc.weight")
    model = Model()
    assert _reason(rule, model, "vit_embeddings.cls_token") == "name"
    assert _reason(rule, model, "ln.weight") == "module"
    assert _reason(rule, model, "vit_embeddings.mask_token") is None
