"""`param_groups` (groups built for a model) and `check_param_groups` (groups written by hand)."""

from __future__ import annotations

import warnings
from fnmatch import fnmatchcase

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lightning_optim_recipes import (
    DEFAULT_NO_DECAY,
    NoDecayRule,
    RecipeError,
    RecipeWarning,
    check_param_groups,
    param_groups,
    validate_optimizers,
)


class EncoderDecoder(nn.Module):
    """The seed's two networks: encoder.0 (Linear), encoder.1 (LayerNorm); decoder.0, decoder.1 (Linear)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8))
        self.decoder = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 1))


def _summary(groups):
    """(name, [param names], options without 'params' and 'name') per group."""
    return [(g["name"], [_NAMES[id(p)] for p in g["params"]], {k: v for k, v in g.items() if k not in ("params", "name")})
            for g in groups]


_NAMES: dict[int, str] = {}


def _model() -> EncoderDecoder:
    model = EncoderDecoder()
    _NAMES.update({id(p): n for n, p in model.named_parameters()})
    return model


def test_default_groups():
    groups = param_groups(_model(), weight_decay=1e-6)
    assert _summary(groups) == [
        ("decay", ["encoder.0.weight", "decoder.0.weight", "decoder.1.weight"], {"weight_decay": 1e-6}),
        ("no_decay", ["encoder.0.bias", "encoder.1.weight", "encoder.1.bias", "decoder.0.bias", "decoder.1.bias"],
         {"weight_decay": 0.0}),
    ]


def test_lr_for_every_group_and_torch_accepts_them():
    model = _model()
    groups = param_groups(model, weight_decay=0.01, lr=3e-4)
    assert [(g["name"], g["lr"], g["weight_decay"]) for g in groups] == [("decay", 3e-4, 0.01), ("no_decay", 3e-4, 0.0)]
    optimizer = torch.optim.AdamW(groups, lr=1.0)
    assert [g["lr"] for g in optimizer.param_groups] == [3e-4, 3e-4]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_param_groups(optimizer, model) == optimizer.param_groups


def test_seed_encoder_decoder_done_right():
    """Two networks, two learning rates, weight decay only where it belongs."""
    model = _model()
    groups = param_groups(model, weight_decay=1e-6, overrides={"encoder": {"lr": 1e-4}, "decoder": {"lr": 1e-3}})
    assert _summary(groups) == [
        ("encoder", ["encoder.0.weight"], {"lr": 1e-4, "weight_decay": 1e-6}),
        ("encoder/no_decay", ["encoder.0.bias", "encoder.1.weight", "encoder.1.bias"], {"lr": 1e-4, "weight_decay": 0.0}),
        ("decoder", ["decoder.0.weight", "decoder.1.weight"], {"lr": 1e-3, "weight_decay": 1e-6}),
        ("decoder/no_decay", ["decoder.0.bias", "decoder.1.bias"], {"lr": 1e-3, "weight_decay": 0.0}),
    ]
    optimizer = torch.optim.Adam(groups, lr=0.1)
    assert [(g["name"], g["lr"]) for g in optimizer.param_groups] == [
        ("encoder", 1e-4), ("encoder/no_decay", 1e-4), ("decoder", 1e-3), ("decoder/no_decay", 1e-3),
    ]


def test_overrides_glob_most_specific_and_options():
    groups = param_groups(
        _model(),
        weight_decay=0.1,
        lr=1.0,
        overrides={"decoder.*": {"lr": 0.5, "betas": (0.5, 0.9)}, "encoder.1": {"weight_decay": 0.3, "lr": 0.2}},
    )
    assert _summary(groups) == [
        ("decay", ["encoder.0.weight"], {"lr": 1.0, "weight_decay": 0.1}),
        ("no_decay", ["encoder.0.bias"], {"lr": 1.0, "weight_decay": 0.0}),
        # LayerNorm parameters stay undecayed even when the override sets a weight decay
        ("encoder.1/no_decay", ["encoder.1.weight", "encoder.1.bias"], {"lr": 0.2, "weight_decay": 0.0}),
        ("decoder.*", ["decoder.0.weight", "decoder.1.weight"], {"lr": 0.5, "betas": (0.5, 0.9), "weight_decay": 0.1}),
        ("decoder.*/no_decay", ["decoder.0.bias", "decoder.1.bias"], {"lr": 0.5, "betas": (0.5, 0.9), "weight_decay": 0.0}),
    ]


def test_longest_module_path_wins():
    groups = param_groups(_model(), weight_decay=0.1, overrides={"decoder": {"lr": 1.0}, "decoder.1": {"lr": 2.0}})
    assert [(n, p, o.get("lr")) for n, p, o in _summary(groups)] == [
        ("decay", ["encoder.0.weight"], None),
        ("no_decay", ["encoder.0.bias", "encoder.1.weight", "encoder.1.bias"], None),
        ("decoder", ["decoder.0.weight"], 1.0),
        ("decoder/no_decay", ["decoder.0.bias"], 1.0),
        ("decoder.1", ["decoder.1.weight"], 2.0),
        ("decoder.1/no_decay", ["decoder.1.bias"], 2.0),
    ]
    # a glob that reaches deeper (down to a parameter) beats a shorter prefix
    deeper = param_groups(_model(), weight_decay=0.1, overrides={"decoder": {"lr": 1.0}, "decoder.*.bias": {"lr": 3.0}})
    assert [(n, p) for n, p, _ in _summary(deeper)][2:] == [
        ("decoder", ["decoder.0.weight", "decoder.1.weight"]),
        ("decoder.*.bias/no_decay", ["decoder.0.bias", "decoder.1.bias"]),
    ]


def test_a_glob_star_stays_within_one_name():
    """`decoder.*` is as specific as `decoder.1` (both match that module path), so the two are a tie, not a win."""
    with pytest.raises(RecipeError, match=r"^`overrides` patterns 'decoder\.\*' and 'decoder\.1' both match 'decoder\.1' equally specifically\. Make one of them more specific or merge them\.$"):
        param_groups(_model(), weight_decay=0.1, overrides={"decoder.*": {"lr": 1.0}, "decoder.1": {"lr": 2.0}})
    groups = param_groups(_model(), weight_decay=0.1, overrides={"*.0": {"lr": 1.0}})  # encoder.0 and decoder.0
    assert [(n, p) for n, p, _ in _summary(groups)] == [
        ("*.0", ["encoder.0.weight", "decoder.0.weight"]),
        ("*.0/no_decay", ["encoder.0.bias", "decoder.0.bias"]),
        ("no_decay", ["encoder.1.weight", "encoder.1.bias", "decoder.1.bias"]),
        ("decay", ["decoder.1.weight"]),
    ]


@pytest.mark.parametrize(
    ("overrides", "error_msg"),
    [
        ({"encoder": {"lr": 1.0}, "enc*": {"lr": 2.0}},
         r"^`overrides` patterns 'encoder' and 'enc\*' both match 'encoder' equally specifically\."),
        ({"encoderr": {"lr": 1.0}},
         r"^`overrides` pattern 'encoderr' matches no trainable parameter of EncoderDecoder\. Patterns match module"
         r" paths such as 'encoder', 'encoder\.0', 'encoder\.1', 'decoder'; fix or remove it\.$"),
        ({"enc": {"lr": 1.0}}, r"^`overrides` pattern 'enc' matches no trainable parameter"),  # prefixes are whole names
        ({"decoder.2": {"lr": 1.0}}, r"^`overrides` pattern 'decoder\.2' matches no trainable parameter"),
        (["encoder"], r"^`overrides` must map module-name patterns to group options, e.g\. \{'encoder': \{'lr': 1e-4\}\}, got list\.$"),
        ({"": {"lr": 1.0}}, r"^`overrides` keys must be module-name patterns such as 'encoder', got ''\.$"),
        ({"encoder": 1e-4}, r"^`overrides\['encoder'\]` must be a dict of group options such as \{'lr': 1e-4\}, got 0\.0001\.$"),
        ({"encoder": {"params": []}}, r"^`overrides\['encoder'\]` sets 'params', which `param_groups` fills in itself; remove it\.$"),
        ({"encoder": {"name": "enc"}}, r"^`overrides\['encoder'\]` sets 'name', which `param_groups` fills in itself"),
    ],
)
def test_override_errors(overrides, error_msg):
    with pytest.raises(RecipeError, match=error_msg):
        param_groups(_model(), weight_decay=0.1, overrides=overrides)


def test_pattern_matching_only_frozen_parameters_is_an_error():
    model = _model()
    model.encoder.requires_grad_(False)
    with pytest.raises(RecipeError, match=r"^`overrides` pattern 'encoder' matches no trainable parameter"):
        param_groups(model, weight_decay=0.1, overrides={"encoder": {"lr": 1.0}})
    groups = param_groups(model, weight_decay=0.1, overrides={"encoder": {"lr": 1.0}}, include_frozen=True)
    assert [g["name"] for g in groups] == ["encoder", "encoder/no_decay", "decay", "no_decay"]


@pytest.mark.parametrize(
    ("kwargs", "error_msg"),
    [
        ({"weight_decay": -0.1}, r"^`weight_decay` must be a finite non-negative number, got -0\.1\.$"),
        ({"weight_decay": "0.1"}, r"^`weight_decay` must be a finite non-negative number, got '0\.1'\.$"),
        ({"weight_decay": True}, r"^`weight_decay` must be a finite non-negative number, got True\.$"),
        ({"weight_decay": 0.1, "lr": -1}, r"^`lr` must be a finite non-negative number, got -1\.$"),
    ],
)
def test_argument_errors(kwargs, error_msg):
    with pytest.raises(RecipeError, match=error_msg):
        param_groups(_model(), **kwargs)


def test_module_type_error():
    model = _model()
    with pytest.raises(RecipeError, match=r"^`param_groups` takes an `nn.Module`, got generator\.$"):
        param_groups(model.parameters(), weight_decay=0.1)


def test_frozen_left_out_unless_asked_and_no_empty_groups():
    model = _model()
    model.encoder.requires_grad_(False)
    for p in model.decoder.parameters():
        if p.ndim == 1:
            p.requires_grad_(False)  # every no-decay parameter frozen: no 'no_decay' group at all
    groups = param_groups(model, weight_decay=0.1)
    assert _summary(groups) == [("decay", ["decoder.0.weight", "decoder.1.weight"], {"weight_decay": 0.1})]
    with_frozen = param_groups(model, weight_decay=0.1, include_frozen=True)
    assert [(n, len(p)) for n, p, _ in _summary(with_frozen)] == [("decay", 3), ("no_decay", 5)]
    assert all(g["params"] for g in with_frozen)


def test_tied_parameters_once_and_deterministic_order():
    model = nn.Sequential(nn.Embedding(5, 4), nn.LayerNorm(4), nn.Linear(4, 5))
    model[2].weight = model[0].weight
    first = param_groups(model, weight_decay=0.1)
    second = param_groups(model, weight_decay=0.1)
    ids = [id(p) for g in first for p in g["params"]]
    assert len(ids) == len(set(ids)) == 4  # embedding (= head) weight, norm weight + bias, head bias
    assert [[id(p) for p in g["params"]] for g in first] == [[id(p) for p in g["params"]] for g in second]
    assert [g["params"] for g in first][0][0] is model[0].weight
    torch.optim.SGD(first, lr=0.1)  # torch refuses a parameter listed twice: it is not


# ------------------------------------------------------------------------------------------ property-based

_LAYERS = {
    "linear": lambda: nn.Linear(3, 3),
    "norm": lambda: nn.LayerNorm(3),
    "nobias": lambda: nn.Linear(3, 3, bias=False),
    "bn": lambda: nn.BatchNorm1d(3),
    "block": lambda: nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3)),
}


@settings(max_examples=40, deadline=None)
@given(
    layers=st.lists(st.sampled_from(sorted(_LAYERS)), min_size=1, max_size=6),
    frozen=st.lists(st.booleans(), min_size=6, max_size=6),
    tie=st.booleans(),
    override=st.sampled_from([None, "0", "1", "*"]),
    include_frozen=st.booleans(),
)
def test_every_trainable_parameter_in_exactly_one_group(layers, frozen, tie, override, include_frozen):
    model = nn.Sequential(*(_LAYERS[kind]() for kind in layers))
    for layer, freeze in zip(model, frozen):
        layer.requires_grad_(not freeze)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if tie and len(linears) >= 2:
        linears[-1].weight = linears[0].weight
    overrides = None
    if override is not None and len(layers) > int(override if override != "*" else 0):
        overrides = {override: {"lr": 0.5}}
    wanted = {id(p) for p in model.parameters() if p.requires_grad or include_frozen}
    if overrides and not any(p.requires_grad or include_frozen for n, p in model.named_parameters()
                             if override == "*" or n.split(".")[0] == override):
        with pytest.raises(RecipeError, match="matches no trainable parameter"):
            param_groups(model, weight_decay=0.1, overrides=overrides, include_frozen=include_frozen)
        return
    groups = param_groups(model, weight_decay=0.1, overrides=overrides, include_frozen=include_frozen)
    grouped = [id(p) for g in groups for p in g["params"]]
    assert len(grouped) == len(set(grouped)) and set(grouped) == wanted
    assert all(g["params"] for g in groups)
    assert len({g["name"] for g in groups}) == len(groups)
    if wanted:
        torch.optim.AdamW(groups, lr=0.1)


# ---------------------------------------------------------------------------------------- check_param_groups


def test_seed_broken_example_says_the_key_must_be_params():
    enc, dec = nn.Linear(2, 2), nn.Linear(2, 2)
    with pytest.raises(KeyError, match="params"):  # what torch itself says
        torch.optim.Adam([{"encoder_params": enc.parameters()}, {"decoder_params": dec.parameters()}])
    with pytest.raises(
        RecipeError,
        match=r"^Param group 0 has no 'params' key \(its keys: 'encoder_params'\)\. torch\.optim reads a group's"
        r" tensors from 'params': write \{'params': \.\.\., <options>\}, e\.g\. \[\{'params': encoder\.parameters\(\)\},"
        r" \{'params': decoder\.parameters\(\), 'lr': 1e-4\}\]\.$",
    ):
        check_param_groups([{"encoder_params": enc.parameters()}, {"decoder_params": dec.parameters()}])


def test_a_generator_passed_as_params_is_not_consumed():
    enc, dec = nn.Linear(2, 2), nn.Linear(2, 3)
    groups = [{"params": enc.parameters()}, {"params": dec.parameters(), "lr": 1e-4}]
    assert check_param_groups(groups) == groups
    optimizer = torch.optim.Adam(groups, lr=1e-3)
    assert [len(g["params"]) for g in optimizer.param_groups] == [2, 2]
    assert optimizer.param_groups[1]["params"][0] is dec.weight


def test_parameter_in_two_groups_is_named():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    groups = [{"params": model.parameters()}, {"params": [model[1].weight]}]
    with pytest.raises(RecipeError, match=r"^Parameter '1\.weight' is in param groups 0 and 1\. Every parameter must be in"
                       r" exactly one group: remove it from one of them \(`param_groups\(\.\.\.\)` builds disjoint groups\)\.$"):
        check_param_groups(groups, model)
    with pytest.raises(RecipeError, match=r"^Parameter of shape \(2, 2\) is in param groups 0 and 1\."):
        check_param_groups([{"params": model.parameters()}, {"params": [model[1].weight]}])


@pytest.mark.parametrize(
    ("make_groups", "error_msg"),
    [
        (lambda m: [{"params": m}],
         r"^Param group 0 holds a Linear in 'params': only tensors can be optimized\. Pass `module\.parameters\(\)`, not"
         r" the module or its name\.$"),
        (lambda m: [{"params": [m[0].weight, "bias"], "name": "head"}],
         r"^Param group 0 \('head'\) holds a str in 'params': only tensors can be optimized\."),
        (lambda m: [{"params": {m[0].weight}}],
         r"^A param group's 'params' is a set: its order changes between runs and torch\.optim refuses it\. Use a list\.$"),
        (lambda m: [m[0].parameters()],
         r"^Param group 0 must be a dict such as \{'params': \[\.\.\.\], 'lr': 1e-3\}, got generator\.$"),
        (lambda m: [m[0].weight, 3.0], r"^Param list holds a float: only tensors can be optimized\.$"),
        (lambda m: m[0].parameters(), r"^`check_param_groups` takes an optimizer or a list of param-group dicts, got generator\.$"),
    ],
    ids=["module", "str", "set", "bare-generator", "tensor-list", "not-a-list"],
)
def test_check_param_groups_errors(make_groups, error_msg):
    model = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(RecipeError, match=error_msg):
        check_param_groups(make_groups(model))


def test_a_spent_generator_is_an_empty_group():
    layer = nn.Linear(2, 2)
    params = layer.parameters()
    list(params)
    with pytest.warns(RecipeWarning, match=r"^Param group 0 is empty: its 'params' hold no tensor, so it trains"
                      r" nothing\. If that is not deliberate, give it parameters \(a frozen module's `parameters\(\)`"
                      r" still counts; a generator already spent does not\)"):
        check_param_groups([{"params": params}])


def test_optimizer_groups_are_checked_under_its_name():
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    optimizer.add_param_group({"params": []})
    with pytest.warns(RecipeWarning, match=r"^Adam param group 1 is empty"):
        check_param_groups(optimizer)


def test_trainable_parameter_in_no_group_warns_naming_it():
    model = _model()
    model.encoder[1].requires_grad_(False)  # frozen ones are not reported
    with pytest.warns(RecipeWarning, match=r"^2 trainable parameters of EncoderDecoder are in no param group and will"
                      r" not be trained: 'decoder\.1\.weight', 'decoder\.1\.bias'\. Add them to a group, or set"
                      r" `requires_grad=False` if that is deliberate\.$"):
        check_param_groups([{"params": model.encoder.parameters()}, {"params": model.decoder[0].parameters()}], model)


def test_plain_tensor_list_is_fine():
    model = nn.Linear(2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_param_groups(list(model.parameters()), model) == list(model.parameters())


# ------------------------------------------------------------- the single walk against the rule stated plainly


def _reference_most_specific(overrides, parts):
    """The most specific override of the dotted path `parts`, found the slow way: every prefix, every pattern."""
    for depth in range(len(parts), 0, -1):
        prefix = ".".join(parts[:depth])
        hits = [
            p for p in overrides
            if p == prefix or (len(p.split(".")) == depth
                               and all(fnmatchcase(a, b) for a, b in zip(parts[:depth], p.split("."))))
        ]
        if len(hits) > 1:
            raise RecipeError(
                f"`overrides` patterns {hits[0]!r} and {hits[1]!r} both match {prefix!r} equally specifically."
                " Make one of them more specific or merge them."
            )
        if hits:
            return hits[0]
    return None


def _reference_hook_names(module):
    """Every name a ``no_weight_decay()`` method of `module` or a submodule returns, prefixed with that submodule's
    path: the hooks found by plain `getattr`."""
    names = set()
    for prefix, owner in module.named_modules():
        hook = getattr(owner, "no_weight_decay", None)
        if callable(hook):
            names.update(f"{prefix}.{name}" if prefix else name for name in hook())
    return names


def _type_names(types):
    """The rule's module types and torch's own subclasses of them, by name: a class whose name ends with one (a norm
    that does not subclass torch's) counts as one of them."""
    names, stack = set(), list(types)
    while stack:
        cls = stack.pop()
        if not cls.__name__.startswith("_"):
            names.add(cls.__name__)
        stack.extend(sub for sub in cls.__subclasses__() if sub.__module__.startswith("torch."))
    return names


def _reference_exempt(rule, name, param, owner, hook_names):
    """`NoDecayRule`'s documented reasons, read off its fields: a pattern equal to the full name or its last part
    or a glob on the full name (the model's hook names, then the rule's names), a position/token name registered
    directly, a bias, a module of the rule's types, fewer than 2 dims, the predicate."""
    leaf = name.rpartition(".")[2]

    def listed(patterns):
        return any(pattern in (name, leaf) or fnmatchcase(name, pattern) for pattern in patterns)

    return (
        (rule.use_model_hook and listed(hook_names))
        or listed(rule.names)
        or (leaf in rule.positions and not isinstance(owner, nn.Embedding))
        or (rule.bias and (leaf == "bias" or leaf.endswith("_bias") or leaf.startswith("bias_")))
        or isinstance(owner, rule.module_types)
        or any(type(owner).__name__.endswith(norm) for norm in _type_names(rule.module_types))
        or (rule.one_dim and param.ndim < 2)
        or (rule.predicate is not None and bool(rule.predicate(name, param, owner)))
    )


def _reference_groups(module, weight_decay, no_decay=DEFAULT_NO_DECAY, overrides=None, include_frozen=False):
    """`param_groups` restated plainly, without the library's code: `named_modules` for the order, the rule's
    reasons over every name of a parameter (no decay if any name is exempt), the override of the longest matching
    prefix. Returns (name, parameter ids, weight decay, lr) per group, or the `RecipeError` message."""
    overrides = overrides or {}
    hook_names = _reference_hook_names(module) if no_decay is not None and no_decay.use_model_hook else set()
    aliases = {}
    for module_name, owner in module.named_modules(remove_duplicate=False):
        for leaf, param in owner.named_parameters(recurse=False, remove_duplicate=False):
            aliases.setdefault(id(param), []).append((f"{module_name}.{leaf}" if module_name else leaf, owner))
    groups, seen = {}, set()
    try:
        for module_name, owner in module.named_modules():
            path = module_name.split(".") if module_name else []
            for leaf, param in owner.named_parameters(recurse=False, remove_duplicate=False):
                if id(param) in seen or not (param.requires_grad or include_frozen):
                    continue
                seen.add(id(param))
                pattern = _reference_most_specific(overrides, path + [leaf])
                decayed = no_decay is None or not any(
                    _reference_exempt(no_decay, name, param, alias_owner, hook_names)
                    for name, alias_owner in aliases[id(param)]
                )
                groups.setdefault((pattern, decayed), []).append(id(param))
        unused = [p for p in overrides if p not in {pattern for pattern, _ in groups}]
        if unused:
            return f"unused {unused[0]}"
    except RecipeError as err:
        return str(err)
    summary = []
    for (pattern, decayed), ids in groups.items():
        options = dict(overrides.get(pattern, {}))
        decay = options.get("weight_decay", weight_decay) if decayed else 0.0
        if pattern is None:
            name = "decay" if decayed else "no_decay"
        else:
            name = pattern if decayed else f"{pattern}/no_decay"
        summary.append((name, ids, decay, options.get("lr")))
    return summary


class Tokens(nn.Module):
    """Position/token parameters registered directly, a decomposed relative position and a 1-D scale."""

    def __init__(self) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 3))
        self.pos_embed = nn.Parameter(torch.zeros(1, 2, 3))
        self.relative_position_bias_table = nn.Parameter(torch.zeros(3, 2))
        self.rel_pos_h = nn.Parameter(torch.zeros(3, 3))
        self.scale = nn.Parameter(torch.ones(3))


class Hooked(nn.Module):
    """A module with its own `no_weight_decay()` list (literal names, dotted names and globs)."""

    def __init__(self, names) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.gamma = nn.Parameter(torch.ones(3, 3))
        self._names = names

    def no_weight_decay(self):
        return self._names


class DebertaLayerNorm(nn.Module):
    """A norm that does not subclass torch's, with a 2-D weight (so only its class name exempts it)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(3, 3))


class Biased(nn.Module):
    """DeBERTa's attention: a projection without a bias, and 2-D `q_bias`, `bias_k` registered beside it."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 3, bias=False)
        self.q_bias, self.bias_k, self.biased = (nn.Parameter(torch.zeros(3, 3)) for _ in range(3))


_KINDS = {
    "linear": lambda names: nn.Linear(3, 3),
    "norm": lambda names: nn.LayerNorm(3),
    "named_norm": lambda names: DebertaLayerNorm(),
    "biased": lambda names: Biased(),
    "embedding": lambda names: nn.Embedding(4, 3),
    "tokens": lambda names: Tokens(),
    "hooked": Hooked,
}
_RULES = [
    DEFAULT_NO_DECAY,
    None,
    DEFAULT_NO_DECAY.extend(names=("cls_token", "nope")),
    DEFAULT_NO_DECAY.extend(names=("*.weight",)),
    DEFAULT_NO_DECAY.extend(names=("0.*", "1.fc.weight")),
    DEFAULT_NO_DECAY.extend(predicate=lambda name, p, m: p.shape[0] == 4),
    DEFAULT_NO_DECAY.extend(module_types=(nn.Embedding,)),
    NoDecayRule(positions=()),
    NoDecayRule(module_types=(), one_dim=False),
    NoDecayRule(use_model_hook=False),
]
_PATTERNS = ["0", "1", "2", "*", "0.*", "*.weight", "*.0", "1.0", "shared", "*.cls_token", "0.fc", "[0-1]",
             "?.*.bias", "1.*.gamma"]
_trees = st.recursive(st.sampled_from(sorted(_KINDS)), lambda inner: st.lists(inner, min_size=1, max_size=3),
                      max_leaves=8)


def _build(tree, hook_names):
    if isinstance(tree, str):
        return _KINDS[tree](hook_names)
    return nn.Sequential(*(_build(child, hook_names) for child in tree))


@settings(max_examples=200, deadline=None)
@given(
    tree=st.lists(_trees, min_size=1, max_size=4),
    hook_names=st.lists(st.sampled_from(["gamma", "fc.weight", "fc.*", "*", "nothing", "cls_token"]), max_size=3),
    ties=st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), max_size=2),
    shared=st.one_of(st.none(), st.integers(0, 20)),
    frozen=st.lists(st.integers(0, 20), max_size=2),
    rule=st.sampled_from(range(len(_RULES))),
    patterns=st.lists(st.sampled_from(_PATTERNS), max_size=3, unique=True),
    include_frozen=st.booleans(),
)
def test_groups_equal_the_rule_stated_plainly(tree, hook_names, ties, shared, frozen, rule, patterns, include_frozen):
    """Random trees with ties, a module registered twice, hooks, frozen parts, rules and overrides: the single walk
    builds the same groups as the plain statement of the rule (or raises the same error)."""
    model = _build(tree, hook_names)
    modules = [m for _, m in model.named_modules()]
    weighted = [m for m in modules if isinstance(m, (nn.Linear, nn.Embedding))]
    for a, b in ties:
        if weighted:
            weighted[b % len(weighted)].weight = weighted[a % len(weighted)].weight
    if shared is not None and len(modules) > 1:
        model.add_module("shared", modules[1 + shared % (len(modules) - 1)])  # not the model itself: no cycle
    for index in frozen:
        modules[index % len(modules)].requires_grad_(False)
    overrides = {p: {"lr": 0.1 * (i + 1)} for i, p in enumerate(patterns)} or None
    expected = _reference_groups(model, 0.05, _RULES[rule], overrides, include_frozen)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            groups = param_groups(model, weight_decay=0.05, no_decay=_RULES[rule], overrides=overrides,
                                  include_frozen=include_frozen)
        except RecipeError as err:
            message = str(err)
            if message.startswith("`overrides` pattern ") and "matches no trainable parameter" in message:
                message = f"unused {message.split(chr(39))[1]}"
            assert message == expected
            return
    assert [(g["name"], [id(p) for p in g["params"]], g["weight_decay"], g.get("lr")) for g in groups] == expected


def test_a_module_registered_twice_is_exempt_under_either_path():
    """The second path of a shared module gives its parameters other names; an exempt one exempts the parameter."""

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = nn.Linear(2, 2)
            self.second = self.first  # the same module under another name

        def no_weight_decay(self):
            return ["second.weight"]

    model = Outer()
    groups = param_groups(model, weight_decay=0.1)
    assert [(g["name"], [id(p) for p in g["params"]]) for g in groups] == [
        ("no_decay", [id(model.first.weight), id(model.first.bias)])
    ]


def test_a_tied_parameter_exempt_only_under_its_later_name_keeps_its_first_place():
    """`head.weight` (exempt by name) is `embed.weight` (first met, decayed): it is placed where `embed.weight`
    stands, in the no-decay group, which then comes before the decay group."""
    model = nn.Module()
    model.embed = nn.Embedding(4, 3)
    model.fc = nn.Linear(3, 3)
    model.head = nn.Linear(3, 4)
    model.head.weight = model.embed.weight
    rule = DEFAULT_NO_DECAY.extend(names=("head.weight",))
    groups = param_groups(model, weight_decay=0.1, no_decay=rule)
    assert [(g["name"], [id(p) for p in g["params"]]) for g in groups] == [
        ("no_decay", [id(model.embed.weight), id(model.fc.bias), id(model.head.bias)]),
        ("decay", [id(model.fc.weight)]),
    ]


# ---------------------------------------------------------------------------- timm's 'lr_scale' groups


def _timm_layer_decay_groups(model: nn.Sequential, layer_decay: float = 0.5) -> list[dict]:
    """Groups shaped as timm.optim.param_groups_layer_decay returns them: no 'lr', an 'lr_scale' per layer."""
    top = len(model) - 1
    return [{"params": list(layer.parameters()), "weight_decay": 0.05, "lr_scale": layer_decay ** (top - i)}
            for i, layer in enumerate(model)]


_LR_SCALE = (
    r" carr(y|ies) timm's 'lr_scale' key, which only timm's schedulers apply: torch optimizers and every torch or"
    r" Lightning scheduler ignore it, so each layer trains at the same lr\. Build the groups with"
    r" `param_groups\(model, weight_decay=\.\.\., lr=\.\.\., layer_decay=\.\.\.\)`, whose own 'lr' carries each"
    r" layer's scale, or step this optimizer with a timm scheduler; if you do, silence this warning with"
    r" `warnings\.filterwarnings\('ignore', \"\.\*'lr_scale'\", RecipeWarning\)`\.$"
)


def test_timm_lr_scale_is_lost_under_a_torch_scheduler_and_check_param_groups_says_so():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2))
    groups = _timm_layer_decay_groups(model)
    optimizer = torch.optim.AdamW(groups, lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    # the hazard: the scales 0.25, 0.5, 1.0 never reach the lr
    assert [g["lr"] for g in optimizer.param_groups] == [1e-3 / 4] * 3
    with pytest.warns(RecipeWarning, match=r"^Param groups 0, 1 and 2" + _LR_SCALE) as record:
        check_param_groups(groups)
    assert len(record) == 1 and record[0].filename == __file__
    with pytest.warns(RecipeWarning, match=r"^AdamW param groups 0, 1 and 2" + _LR_SCALE):
        check_param_groups(optimizer)
    with pytest.warns(RecipeWarning, match=r"^Param group 1 carries timm's 'lr_scale' key"):
        check_param_groups([{"params": [model[0].weight]}, {"params": [model[0].bias], "lr_scale": 0.5}])


def test_validate_optimizers_judges_lr_scale_at_the_first_step_that_shows_it_once_per_optimizer():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2))
    first = torch.optim.AdamW(_timm_layer_decay_groups(model[:2]), lr=1e-3)
    second = torch.optim.SGD(_timm_layer_decay_groups(model[2:]), lr=1e-3)
    warm_up = torch.optim.lr_scheduler.LambdaLR(second, lambda step: step / 2)  # lr 0 at its first step
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        validate_optimizers([first, second])
        assert record == []  # nothing shows before a step
        for _ in range(3):
            first.step()
            second.step()
            warm_up.step()
    assert [str(w.message) for w in record] == [
        "AdamW param groups 0 and 1 carry timm's 'lr_scale' key, which only timm's schedulers apply (at its optimizer"
        " step 1, every group trains at the same multiple of its lr): torch optimizers and every torch or Lightning"
        " scheduler ignore it, so each layer trains at the same lr. Build the groups with `param_groups(model,"
        " weight_decay=..., lr=..., layer_decay=...)`, whose own 'lr' carries each layer's scale, or step this"
        " optimizer with a timm scheduler; if you do, silence this warning with `warnings.filterwarnings('ignore',"
        " \".*'lr_scale'\", RecipeWarning)`.",
        "SGD param groups 0 and 1 carry timm's 'lr_scale' key, which only timm's schedulers apply (at its optimizer"
        " step 2, every group trains at the same multiple of its lr): torch optimizers and every torch or Lightning"
        " scheduler ignore it, so each layer trains at the same lr. Build the groups with `param_groups(model,"
        " weight_decay=..., lr=..., layer_decay=...)`, whose own 'lr' carries each layer's scale, or step this"
        " optimizer with a timm scheduler; if you do, silence this warning with `warnings.filterwarnings('ignore',"
        " \".*'lr_scale'\", RecipeWarning)`.",
    ]
    assert {w.filename for w in record} == {__file__} and {w.category for w in record} == {RecipeWarning}


def test_lrs_set_from_lr_scale_are_not_reported():
    """What MAE's `adjust_learning_rate` (and timm's schedulers) do: each group's lr is the schedule's times its scale."""
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    optimizer = torch.optim.AdamW(_timm_layer_decay_groups(model), lr=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate_optimizers(optimizer)
        for step in range(3):
            for group in optimizer.param_groups:
                group["lr"] = 1e-3 * step / 2 * group["lr_scale"]
            optimizer.step()


def test_the_lr_scale_warning_can_be_silenced_and_library_groups_do_not_raise_it():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", ".*'lr_scale'", RecipeWarning)
        check_param_groups(_timm_layer_decay_groups(model))
    holder = nn.Module()
    holder.blocks = model
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        groups = param_groups(holder, weight_decay=0.05, lr=1e-3, layer_decay=0.5)
        check_param_groups(torch.optim.AdamW(groups), holder)
