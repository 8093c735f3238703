"""`param_groups(..., layer_decay=...)`: layer-wise lr decay whose scale lives in each group's own 'lr'.

References: MAE's ``get_layer_id_for_vit`` (facebookresearch/mae, util/lr_decay.py, following BEiT) for a ViT-shaped
module, ELECTRA's / Hugging Face's layout (``embeddings`` = layer 0, ``encoder.layer.i`` = layer i + 1) for a
BERT-shaped one; both restated below. A parameter of layer ``i`` of a model with ``n`` blocks trains at
``lr * layer_decay ** (n + 1 - i)`` times the schedule's multiplier, at every step.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from helpers import Recorder, loader, pl, trainer
from torch import nn

from lightning_optim_recipes import RecipeError, check_param_groups, param_groups, validate_optimizers, warmup_cosine

LR, DECAY = 1e-3, 0.75


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(4)
        self.attn = nn.Linear(4, 4)


class TinyViT(nn.Module):
    """timm's / MAE's names: patch_embed, cls_token, pos_embed, blocks.0..2, norm, head."""

    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, 4, 2, 2)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 4))
        self.pos_embed = nn.Parameter(torch.zeros(1, 5, 4))
        self.blocks = nn.Sequential(Block(), Block(), Block())
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 3)


def mae_layer_id(name: str, num_layers: int) -> int:
    """MAE's get_layer_id_for_vit, restated."""
    if name in ("cls_token", "pos_embed") or name.startswith("patch_embed"):
        return 0
    if name.startswith("blocks"):
        return int(name.split(".")[1]) + 1
    return num_layers


class TinyBert(nn.Module):
    """Hugging Face's names: embeddings.*, encoder.layer.0..1, pooler, classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.embeddings = nn.Module()
        self.embeddings.word_embeddings = nn.Embedding(10, 4)
        self.embeddings.LayerNorm = nn.LayerNorm(4)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList([self._layer(), self._layer()])
        self.pooler = nn.Module()
        self.pooler.dense = nn.Linear(4, 4)
        self.classifier = nn.Linear(4, 2)

    @staticmethod
    def _layer() -> nn.Module:
        layer = nn.Module()
        layer.attention = nn.Linear(4, 4)
        layer.output = nn.Module()
        layer.output.LayerNorm = nn.LayerNorm(4)
        return layer


def bert_layer_id(name: str, num_layers: int) -> int:
    """ELECTRA's depths on Hugging Face's names, restated: embeddings 0, encoder layer i -> i + 1, the rest on top."""
    if name.startswith("embeddings."):
        return 0
    if name.startswith("encoder.layer."):
        return int(name.split(".")[2]) + 1
    return num_layers


def _summary(model, groups):
    names = {id(p): n for n, p in model.named_parameters()}
    return [
        (g["name"], [names[id(p)] for p in g["params"]], g["lr"], g["weight_decay"], g["layer_id"], g["layer_scale"])
        for g in groups
    ]


def test_vit_groups_written_out():
    model = TinyViT()
    groups = param_groups(model, weight_decay=0.05, lr=LR, layer_decay=DECAY)
    assert _summary(model, groups) == [
        ("layer_0/no_decay", ["cls_token", "pos_embed", "patch_embed.proj.bias"], 1e-3 * 0.75**4, 0.0, 0, 0.75**4),
        ("layer_0", ["patch_embed.proj.weight"], 1e-3 * 0.75**4, 0.05, 0, 0.75**4),
        ("layer_1/no_decay", ["blocks.0.norm1.weight", "blocks.0.norm1.bias", "blocks.0.attn.bias"],
         1e-3 * 0.75**3, 0.0, 1, 0.75**3),
        ("layer_1", ["blocks.0.attn.weight"], 1e-3 * 0.75**3, 0.05, 1, 0.75**3),
        ("layer_2/no_decay", ["blocks.1.norm1.weight", "blocks.1.norm1.bias", "blocks.1.attn.bias"],
         1e-3 * 0.75**2, 0.0, 2, 0.75**2),
        ("layer_2", ["blocks.1.attn.weight"], 1e-3 * 0.75**2, 0.05, 2, 0.75**2),
        ("layer_3/no_decay", ["blocks.2.norm1.weight", "blocks.2.norm1.bias", "blocks.2.attn.bias"],
         1e-3 * 0.75, 0.0, 3, 0.75),
        ("layer_3", ["blocks.2.attn.weight"], 1e-3 * 0.75, 0.05, 3, 0.75),
        ("layer_4/no_decay", ["norm.weight", "norm.bias", "head.bias"], 1e-3, 0.0, 4, 1.0),
        ("layer_4", ["head.weight"], 1e-3, 0.05, 4, 1.0),
    ]


def test_bert_groups_written_out():
    model = TinyBert()
    groups = param_groups(model, weight_decay=0.01, lr=LR, layer_decay=DECAY)
    assert _summary(model, groups) == [
        ("layer_0", ["embeddings.word_embeddings.weight"], 1e-3 * 0.75**3, 0.01, 0, 0.75**3),
        ("layer_0/no_decay", ["embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"], 1e-3 * 0.75**3, 0.0, 0,
         0.75**3),
        ("layer_1", ["encoder.layer.0.attention.weight"], 1e-3 * 0.75**2, 0.01, 1, 0.75**2),
        ("layer_1/no_decay", ["encoder.layer.0.attention.bias", "encoder.layer.0.output.LayerNorm.weight",
                              "encoder.layer.0.output.LayerNorm.bias"], 1e-3 * 0.75**2, 0.0, 1, 0.75**2),
        ("layer_2", ["encoder.layer.1.attention.weight"], 1e-3 * 0.75, 0.01, 2, 0.75),
        ("layer_2/no_decay", ["encoder.layer.1.attention.bias", "encoder.layer.1.output.LayerNorm.weight",
                              "encoder.layer.1.output.LayerNorm.bias"], 1e-3 * 0.75, 0.0, 2, 0.75),
        ("layer_3", ["pooler.dense.weight", "classifier.weight"], 1e-3, 0.01, 3, 1.0),
        ("layer_3/no_decay", ["pooler.dense.bias", "classifier.bias"], 1e-3, 0.0, 3, 1.0),
    ]


def _cosine(t: int, t_max: int) -> float:
    return 0.5 * (1 + math.cos(math.pi * t / t_max))


def _warmup_cosine(t: int) -> float:
    """2 linear warmup steps from 0.5, then a cosine over 6 steps: a LambdaLR multiplier."""
    return 0.5 + 0.25 * t if t < 2 else _cosine(t - 2, 6)


SCHEDULES = {
    "CosineAnnealingLR": (lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=8),
                          lambda t: _cosine(t, 8)),
    "LambdaLR": (lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, _warmup_cosine), _warmup_cosine),
    "MultiStepLR": (lambda opt: torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[3, 6], gamma=0.1),
                    lambda t: 0.1 ** ((t >= 3) + (t >= 6))),
}


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
@pytest.mark.parametrize(("make", "layer_id", "num_layers"), [(TinyViT, mae_layer_id, 4), (TinyBert, bert_layer_id, 3)],
                         ids=["vit", "bert"])
def test_every_tensor_follows_the_reference_at_every_step(schedule, make, layer_id, num_layers):
    model = make()
    optimizer = torch.optim.AdamW(param_groups(model, weight_decay=0.05, lr=LR, layer_decay=DECAY), lr=123.0)
    make_scheduler, multiplier = SCHEDULES[schedule]
    scheduler = make_scheduler(optimizer)
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    for step in range(10):
        for name, param in model.named_parameters():
            expected = LR * DECAY ** (num_layers - layer_id(name, num_layers)) * multiplier(step)
            assert group_of[id(param)]["lr"] == pytest.approx(expected, rel=1e-12, abs=1e-18), (step, name)
        optimizer.step()
        scheduler.step()


def test_the_library_warmup_cosine_keeps_the_ratios():
    model = TinyViT()
    optimizer = torch.optim.AdamW(param_groups(model, weight_decay=0.05, lr=LR, layer_decay=0.5), lr=LR)
    scheduler = warmup_cosine(optimizer, warmup_steps=2, total_steps=6, min_lr=1e-4)["scheduler"]
    for _ in range(6):
        top = optimizer.param_groups[-1]["lr"]
        assert [g["lr"] / top for g in optimizer.param_groups] == pytest.approx(
            [1 / 16, 1 / 16, 1 / 8, 1 / 8, 1 / 4, 1 / 4, 1 / 2, 1 / 2, 1, 1], rel=1e-12
        )
        optimizer.step()
        scheduler.step()


def test_overrides_compose_with_layer_decay():
    model = TinyViT()
    groups = param_groups(
        model, weight_decay=0.05, lr=LR, layer_decay=DECAY,
        overrides={"head": {"lr": 1e-2}, "blocks.0": {"weight_decay": 0.1, "betas": (0.9, 0.95)}},
    )
    assert [(g["name"], g["lr"], g["weight_decay"], g.get("betas")) for g in groups] == [
        ("layer_0/no_decay", 1e-3 * 0.75**4, 0.0, None),
        ("layer_0", 1e-3 * 0.75**4, 0.05, None),
        ("blocks.0/layer_1/no_decay", 1e-3 * 0.75**3, 0.0, (0.9, 0.95)),
        ("blocks.0/layer_1", 1e-3 * 0.75**3, 0.1, (0.9, 0.95)),
        ("layer_2/no_decay", 1e-3 * 0.75**2, 0.0, None),
        ("layer_2", 1e-3 * 0.75**2, 0.05, None),
        ("layer_3/no_decay", 1e-3 * 0.75, 0.0, None),
        ("layer_3", 1e-3 * 0.75, 0.05, None),
        ("layer_4/no_decay", 1e-3, 0.0, None),  # norm
        ("head/layer_4", 1e-2, 0.05, None),  # the override's lr, times the top layer's 1.0
        ("head/layer_4/no_decay", 1e-2, 0.0, None),
    ]
    assert len({g["name"] for g in groups}) == len(groups)  # unique: LearningRateMonitor keys metrics by name


def test_the_base_lr_can_come_from_the_overrides_alone():
    model = TinyBert()
    groups = param_groups(model, weight_decay=0.0, layer_decay=0.5, overrides={"*": {"lr": 2e-3}})
    assert [(g["name"], g["lr"]) for g in groups] == [
        ("*/layer_0", 2e-3 * 0.5**3), ("*/layer_0/no_decay", 2e-3 * 0.5**3),
        ("*/layer_1", 2e-3 * 0.5**2), ("*/layer_1/no_decay", 2e-3 * 0.5**2),
        ("*/layer_2", 2e-3 * 0.5), ("*/layer_2/no_decay", 2e-3 * 0.5),
        ("*/layer_3", 2e-3), ("*/layer_3/no_decay", 2e-3),
    ]


def _layer_ids(model, **kwargs):
    names = {id(p): n for n, p in model.named_parameters()}
    groups = param_groups(model, weight_decay=0.05, lr=1.0, layer_decay=0.5, **kwargs)
    return {names[id(p)]: g["layer_id"] for g in groups for p in g["params"]}


def _tree(**modules):
    model = nn.Module()
    for path, module in modules.items():
        owner = model
        *parents, leaf = path.split("__")
        for name in parents:
            if not hasattr(owner, name):
                owner.add_module(name, nn.Module())
            owner = getattr(owner, name)
        if isinstance(module, nn.Parameter):
            owner.register_parameter(leaf, module)
        else:
            owner.add_module(leaf, module)
    return model


def test_layer_ids_of_other_layouts():
    # nanoGPT / GPT-2: token and position embeddings are nn.Embedding; the tied head keeps the embedding's layer
    gpt = _tree(transformer__wte=nn.Embedding(10, 4), transformer__wpe=nn.Embedding(8, 4),
                transformer__h=nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)]), transformer__ln_f=nn.LayerNorm(4),
                lm_head=nn.Linear(4, 10, bias=False))
    gpt.lm_head.weight = gpt.transformer.wte.weight
    assert _layer_ids(gpt) == {"transformer.wte.weight": 0, "transformer.wpe.weight": 0, "transformer.h.0.weight": 1,
                               "transformer.h.0.bias": 1, "transformer.h.1.weight": 2, "transformer.h.1.bias": 2,
                               "transformer.ln_f.weight": 3, "transformer.ln_f.bias": 3}
    # Hugging Face LLaMA: model.layers.i; the final norm and the head on top
    llama = _tree(model__embed_tokens=nn.Embedding(10, 4), model__layers=nn.ModuleList([nn.Linear(4, 4)]),
                  model__norm=nn.RMSNorm(4), lm_head=nn.Linear(4, 10, bias=False))
    assert _layer_ids(llama) == {"model.embed_tokens.weight": 0, "model.layers.0.weight": 1, "model.layers.0.bias": 1,
                                 "model.norm.weight": 2, "lm_head.weight": 2}
    # Hugging Face ViT: the embeddings module (tokens, position embeddings, patch projection) is layer 0
    hf_vit = _tree(vit__embeddings__cls_token=nn.Parameter(torch.zeros(1, 1, 4)),
                   vit__embeddings__position_embeddings=nn.Parameter(torch.zeros(1, 5, 4)),
                   vit__embeddings__patch_embeddings__projection=nn.Conv2d(3, 4, 2),
                   vit__encoder__layer=nn.ModuleList([nn.Linear(4, 4)]), vit__layernorm=nn.LayerNorm(4),
                   classifier=nn.Linear(4, 2))
    assert _layer_ids(hf_vit) == {
        "vit.embeddings.cls_token": 0, "vit.embeddings.position_embeddings": 0,
        "vit.embeddings.patch_embeddings.projection.weight": 0, "vit.embeddings.patch_embeddings.projection.bias": 0,
        "vit.encoder.layer.0.weight": 1, "vit.encoder.layer.0.bias": 1, "vit.layernorm.weight": 2,
        "vit.layernorm.bias": 2, "classifier.weight": 2, "classifier.bias": 2,
    }
    # timm's ViT with norm_pre and a register token, BEiT's shared relative position bias: as MAE and BEiT place them
    timm_vit = _tree(patch_embed__proj=nn.Linear(4, 4), reg_token=nn.Parameter(torch.zeros(1, 1, 4)),
                     norm_pre=nn.LayerNorm(4),
                     rel_pos_bias__relative_position_bias_table=nn.Parameter(torch.zeros(9, 2)),
                     blocks=nn.Sequential(nn.Linear(4, 4)), head=nn.Linear(4, 2))
    assert _layer_ids(timm_vit) == {
        "reg_token": 0, "patch_embed.proj.weight": 0, "patch_embed.proj.bias": 0, "norm_pre.weight": 2,
        "norm_pre.bias": 2, "rel_pos_bias.relative_position_bias_table": 2, "blocks.0.weight": 1,
        "blocks.0.bias": 1, "head.weight": 2, "head.bias": 2,
    }
    # Swin: stages of blocks (layers.i.blocks.j): the outermost container counts
    swin = _tree(patch_embed=nn.Linear(4, 4),
                 layers=nn.ModuleList([_tree(blocks=nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))),
                                       _tree(blocks=nn.Sequential(nn.Linear(4, 4)))]))
    assert _layer_ids(swin) == {
        "patch_embed.weight": 0, "patch_embed.bias": 0, "layers.0.blocks.0.weight": 1, "layers.0.blocks.0.bias": 1,
        "layers.0.blocks.1.weight": 1, "layers.0.blocks.1.bias": 1, "layers.1.blocks.0.weight": 2,
        "layers.1.blocks.0.bias": 2,
    }


def test_layer_of_gives_the_ids_and_the_highest_id_of_any_parameter_is_the_top():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2))
    model[2].requires_grad_(False)  # frozen, but still the top: the others keep their scales
    groups = param_groups(model, weight_decay=0.0, lr=1.0, layer_decay=0.5, layer_of=lambda name: int(name[0]))
    assert [(g["name"], len(g["params"]), g["lr"]) for g in groups] == [
        ("layer_0", 1, 0.25), ("layer_0/no_decay", 1, 0.25), ("layer_1", 1, 0.5), ("layer_1/no_decay", 1, 0.5),
    ]


def test_layer_decay_one_splits_by_layer_without_scaling():
    groups = param_groups(TinyBert(), weight_decay=0.01, lr=LR, layer_decay=1.0)
    assert [g["lr"] for g in groups] == [LR] * 8 and [g["layer_scale"] for g in groups] == [1.0] * 8


def _two_stacks():
    model = nn.Module()
    model.encoder, model.decoder = nn.Module(), nn.Module()
    model.encoder.layers = nn.ModuleList([nn.Linear(2, 2)])
    model.decoder.layers = nn.ModuleList([nn.Linear(2, 2)])
    return model


_NO_LR = (r"^`layer_decay` scales each group's own 'lr', but {} no 'lr' to scale: pass `lr=` to `param_groups` \(the"
          r" lr of the top layer; the optimizer's default lr is not scaled per group\), or set 'lr' in every"
          r" override\.$")


@pytest.mark.parametrize(
    ("make", "kwargs", "error_msg"),
    [
        (TinyViT, {"layer_decay": 0.75}, _NO_LR.format("the groups have")),
        (TinyViT, {"layer_decay": 0.75, "overrides": {"head": {"lr": 1e-2}}},
         _NO_LR.format("group 'layer_0/no_decay' has")),
        (TinyViT, {"lr": LR, "layer_decay": 1.5},
         r"^`layer_decay` must be a number in \(0, 1\], e\.g\. 0\.75 \(each layer below the top trains at the lr of the"
         r" layer above times `layer_decay`\), got 1\.5\.$"),
        (TinyViT, {"lr": LR, "layer_decay": 0}, r"^`layer_decay` must be a number in \(0, 1\], .*, got 0\.$"),
        (TinyViT, {"lr": LR, "layer_decay": True}, r"^`layer_decay` must be a number in \(0, 1\], .*, got True\.$"),
        (TinyViT, {"lr": LR, "layer_decay": "0.75"}, r"^`layer_decay` must be a number in \(0, 1\], .*, got '0\.75'\.$"),
        (TinyViT, {"lr": LR, "layer_decay": float("nan")}, r"^`layer_decay` must be a number in \(0, 1\], .*, got nan\.$"),
        (TinyViT, {"lr": LR, "layer_of": lambda name: 0},
         r"^`layer_of` is used only with `layer_decay`: pass `layer_decay=` \(e\.g\. 0\.75\) as well, or remove"
         r" `layer_of`\.$"),
        (TinyViT, {"lr": LR, "layer_decay": 0.75, "layer_of": 3},
         r"^`layer_of` must be a function from a parameter name to its layer id \(0 = embeddings, the highest id ="
         r" the head\), got 3\.$"),
        (TinyViT, {"lr": LR, "layer_decay": 0.75, "layer_of": lambda name: -1},
         r"^`layer_of\('cls_token'\)` returned -1: it must return a non-negative int layer id \(0 = embeddings, the"
         r" highest id = the head, which trains at the full lr\)\.$"),
        (TinyViT, {"lr": LR, "layer_decay": 0.75, "layer_of": lambda name: "1"}, r"^`layer_of\('cls_token'\)` returned '1':"),
        (TinyViT, {"lr": LR, "layer_decay": 0.75, "layer_of": lambda name: True}, r"^`layer_of\('cls_token'\)` returned True:"),
        (TinyViT, {"lr": LR, "layer_decay": 0.75, "overrides": {"head": {"layer_id": 3}}},
         r"^`overrides\['head'\]` sets 'layer_id', which `param_groups\(layer_decay=\.\.\.\)` fills in itself; remove"
         r" it\.$"),
        (lambda: nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), {"lr": LR, "layer_decay": 0.75},
         r"^`layer_decay` found no blocks in Sequential: it looks for numbered blocks in a module named 'blocks',"
         r" 'layers', 'layer' or 'h' \(blocks\.0, encoder\.layer\.0, transformer\.h\.0\)\. Pass `layer_of=` a function"
         r" from a parameter name to its layer id \(0 = embeddings, the highest id = the head\)\.$"),
        (_two_stacks, {"lr": LR, "layer_decay": 0.75},
         r"^`layer_decay` found several block containers in Module: 'encoder\.layers', 'decoder\.layers'\. Pass"
         r" `layer_of=` a function from a parameter name to its layer id to say which layer each parameter belongs"
         r" to\.$"),
    ],
    ids=["no-lr", "no-lr-in-a-group", "above-1", "zero", "bool", "str", "nan", "layer_of-alone", "layer_of-type",
         "layer_of-negative", "layer_of-str", "layer_of-bool", "reserved-key", "no-blocks", "several-blocks"],
)
def test_errors(make, kwargs, error_msg):
    with pytest.raises(RecipeError, match=error_msg):
        param_groups(make(), weight_decay=0.05, **kwargs)


def test_groups_pass_the_library_checks_and_torch_keeps_the_informative_keys():
    model = TinyViT()
    optimizer = torch.optim.AdamW(param_groups(model, weight_decay=0.05, lr=LR, layer_decay=DECAY), lr=LR)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_param_groups(optimizer, model)
        validate_optimizers(optimizer, model)
    saved = optimizer.state_dict()["param_groups"]
    assert [(g["layer_id"], g["layer_scale"]) for g in saved] == [
        (0, 0.75**4), (0, 0.75**4), (1, 0.75**3), (1, 0.75**3), (2, 0.75**2), (2, 0.75**2), (3, 0.75), (3, 0.75),
        (4, 1.0), (4, 1.0),
    ]


class LayerDecayModule(pl.LightningModule):
    """patch_embed, two blocks, a head: layers 0, 1, 2, 3 at lr x 0.5**3, 0.5**2, 0.5, 1."""

    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = nn.Linear(4, 4)
        self.blocks = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
        self.head = nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self.head(self.blocks(self.patch_embed(x))), y)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(param_groups(self, weight_decay=0.05, lr=1e-2, layer_decay=0.5), lr=1e-2)
        return [optimizer], [warmup_cosine(optimizer, warmup_steps=2, total_steps=6)]


@pytest.mark.trainer
def test_learning_rate_monitor_logs_every_layer_with_its_scale(tmp_path):
    torch.manual_seed(0)
    recorder = Recorder()
    monitor = pl.callbacks.LearningRateMonitor(logging_interval="step")
    trainer(tmp_path, logger=recorder, callbacks=[monitor], max_steps=6, log_every_n_steps=1).fit(
        LayerDecayModule(), loader(6)
    )
    logged = [metrics for _, metrics in recorder.records if metrics]
    assert list(logged[0]) == [f"lr-AdamW/{name}" for name in (
        "layer_0", "layer_0/no_decay", "layer_1", "layer_1/no_decay", "layer_2", "layer_2/no_decay", "layer_3",
        "layer_3/no_decay",
    )]
    # warmup_cosine: 1/2 at step 0, 1 at step 1, then a cosine reaching 0 at step 5
    multipliers = [0.5, 1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4)), 0.0]
    for step, (metrics, multiplier) in enumerate(zip(logged, multipliers)):
        for layer, scale in enumerate((0.125, 0.25, 0.5, 1.0)):
            for suffix in ("", "/no_decay"):
                expected = 1e-2 * scale * multiplier
                assert metrics[f"lr-AdamW/layer_{layer}{suffix}"] == pytest.approx(expected, abs=1e-12), step
