"""The catalogue against its sources, the gaps an audit found: the warm-up's start convention (and
``warmup_start="zero"``), a warm-up that rounds to 0 steps, norm layers and biases the default rule must recognise by
name (DeBERTa's), nanoGPT's rule for a 3-D ``pos_embed``, timm's layer assignment for ``norm``/``norm_pre``, and
citations that are true of the pages they cite."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import torch
from helpers import loader, pl, trainer
from torch import nn

from lightning_optim_recipes import (
    DEFAULT_NO_DECAY,
    RecipeWarning,
    configure_from_recipe,
    describe_recipe,
    get_recipe,
    list_recipes,
    param_groups,
    preview_schedule,
    warmup_cosine,
    warmup_linear,
    warmup_multistep,
)

ROOT = Path(__file__).resolve().parents[1]


def lrs_of(scheduler_dict, steps: int) -> list[float]:
    scheduler = scheduler_dict["scheduler"]
    optimizer = scheduler.optimizer
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scheduler.step() before optimizer.step()
        for _ in range(steps):
            seen.append(round(optimizer.param_groups[0]["lr"], 4))
            scheduler.step()
    return seen


def sgd(lr: float = 1.0) -> torch.optim.Optimizer:
    return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)


# --------------------------------------------------------------------------------------- warm-up conventions


def test_warmup_start_zero_starts_at_lr_0_and_peaks_one_step_after_the_warm_up():
    # Hugging Face's, BERT's and MAE's warm-up: step k at k / W; the library's default: (k + 1) / W
    assert lrs_of(warmup_linear(sgd(), warmup_steps=2, total_steps=6, warmup_start="zero"), 6) == \
        [0.0, 0.5, 1.0, 0.6667, 0.3333, 0.0]
    assert lrs_of(warmup_linear(sgd(), warmup_steps=2, total_steps=6), 6) == [0.5, 1.0, 0.75, 0.5, 0.25, 0.0]
    assert lrs_of(warmup_cosine(sgd(), warmup_steps=4, total_steps=8, warmup_start="zero"), 8) == \
        [0.0, 0.25, 0.5, 0.75, 1.0, 0.75, 0.25, 0.0]
    # milestones counted from the start of the run, as without it
    assert lrs_of(warmup_multistep(sgd(), milestones=[2], warmup_epochs=1, steps_per_epoch=2, warmup_start="zero"),
                  6) == [0.0, 0.5, 1.0, 1.0, 0.1, 0.1]


@pytest.mark.trainer
def test_a_recipe_with_warmup_start_zero_trains_at_those_lrs(tmp_path):
    class Model(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer, self.seen = nn.Linear(4, 1), []

        def training_step(self, batch, batch_idx):
            self.seen.append(round(self.trainer.optimizers[0].param_groups[0]["lr"], 4))
            return self.layer(batch[0]).pow(2).mean()

        def configure_optimizers(self):
            return configure_from_recipe(self, {"optimizer": "SGD", "lr": 0.4, "no_decay": "none", "scheduler": {
                "type": "warmup_linear", "warmup_steps": 2, "warmup_start": "zero"}}, trainer=self.trainer)

    model = Model()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        trainer(tmp_path, max_epochs=1).fit(model, loader(5))
    assert model.seen == [0.0, 0.2, 0.4, 0.2, 0.0]


def test_every_catalogue_recipe_with_a_warm_up_states_where_it_starts():
    for name in list_recipes():
        entry = describe_recipe(name)
        specs = entry.recipe["optimizers"].values() if "optimizers" in entry.recipe else [entry.recipe]
        schedulers = [spec.get("scheduler") or {} for spec in specs]
        if not any("warmup" in str(s.get("type", "")) and any(v for k, v in s.items() if k.startswith("warmup_"))
                   for s in schedulers):
            continue  # no warm-up (modded-nanogpt: warmup_steps 0)
        said = " ".join(entry.choices + entry.notes + tuple(words for _, _, words in entry.numbers))
        assert re.search(r"runs step k at|step 0 at", said), name
        assert "warmup_start" in said, name


# --------------------------------------------------------------------------- a warm-up that rounds to 0 steps


def test_gpt_pretrains_warm_up_rounds_to_no_step_on_short_runs_and_says_so():
    entry = describe_recipe("gpt-pretrain")  # a warm-up of 0.125% of the run
    with pytest.warns(RecipeWarning) as caught:
        preview = entry.preview_schedule(max_epochs=4, steps_per_epoch=100)  # 400 steps: 0.5 of a step
    assert [str(w.message) for w in caught] == [
        "`warmup_cosine`'s warm-up of warmup_fraction=0.00125 of the run's 400 optimizer steps (0.5 steps) rounds to"
        " 0 steps: training starts at the peak lr, with no warm-up. Give it at least one step (`warmup_steps=1`, or"
        " in a recipe's scheduler {'warmup_fraction': None, 'warmup_steps': 1}), or train longer. If no warm-up is"
        " meant, set the fraction or the epochs to 0, or silence this with"
        " `warnings.filterwarnings('ignore', '.*rounds to 0 steps')`."]
    assert caught[0].filename == __file__  # the user's line
    assert preview.markers == [{"step": 0, "optimizer": 0, "label": "no warm-up (0.5 steps rounded to 0)"}]
    assert preview[0]["lr"] == 6e-4  # the peak at the first step
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        longer = entry.preview_schedule(max_epochs=8, steps_per_epoch=100)  # 800 steps: a one-step warm-up
    assert longer.markers[0] == {"step": 0, "optimizer": 0, "label": "warmup end"}


@pytest.mark.trainer
def test_a_fractional_warm_up_of_no_step_warns_before_training_and_one_step_does_not(tmp_path):
    class Model(pl.LightningModule):
        def __init__(self, fraction):
            super().__init__()
            self.layer, self.fraction = nn.Linear(4, 1), fraction

        def training_step(self, batch, batch_idx):
            return self.layer(batch[0]).pow(2).mean()

        def configure_optimizers(self):
            opt = torch.optim.AdamW(self.parameters(), lr=1e-3)
            return {"optimizer": opt, "lr_scheduler": warmup_cosine(opt, warmup_fraction=self.fraction,
                                                                    trainer=self.trainer)}

    with pytest.warns(RecipeWarning, match=r"warmup_fraction=0\.05 of the run's 8 optimizer steps \(0\.4 steps\)"
                                           r" rounds to 0 steps"):
        trainer(tmp_path, max_epochs=1).fit(Model(0.05), loader(8))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        trainer(tmp_path, max_epochs=1).fit(Model(0.125), loader(8))  # 1 step


# ---------------------------------------------------------------------------- the no-decay rule, by name


class DebertaLayerNorm(nn.Module):
    """DeBERTa-v1's own LayerNorm (Hugging Face's ``DebertaLayerNorm``): not a subclass of ``nn.LayerNorm``."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(size)), nn.Parameter(torch.zeros(size))


class DisentangledSelfAttention(nn.Module):
    """DeBERTa-v1's attention: one projection without a bias, and ``q_bias``/``v_bias`` registered beside it."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.in_proj = nn.Linear(size, 3 * size, bias=False)
        self.q_bias, self.v_bias = nn.Parameter(torch.zeros(size)), nn.Parameter(torch.zeros(size))


class TinyDeberta(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attention = DisentangledSelfAttention(4)
        self.LayerNorm = DebertaLayerNorm(4)
        self.dense = nn.Linear(4, 4)


def test_bert_finetune_exempts_debertas_own_layernorm_and_its_q_and_v_biases():
    # the reference code's exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"] (names) and Hugging Face's
    # Trainer (`get_parameter_names(model, ALL_LAYERNORM_LAYERS, ["bias", "layernorm", "rmsnorm"])`) exempt them
    model = TinyDeberta()
    config = configure_from_recipe(model, get_recipe("bert-finetune"), trainer=_Run())
    names = {id(p): n for n, p in model.named_parameters()}
    assert {g["name"]: [names[id(p)] for p in g["params"]] for g in config["optimizer"].param_groups} == {
        "decay": ["attention.in_proj.weight", "dense.weight"],
        "no_decay": ["attention.q_bias", "attention.v_bias", "LayerNorm.weight", "LayerNorm.bias", "dense.bias"],
    }
    layer_norm = model.LayerNorm
    assert DEFAULT_NO_DECAY.reason("LayerNorm.weight", layer_norm.weight, layer_norm) == "module"
    assert DEFAULT_NO_DECAY.reason("attention.q_bias", model.attention.q_bias, model.attention) == "bias"
    assert DEFAULT_NO_DECAY.reason("attention.in_proj.weight", model.attention.in_proj.weight,
                                   model.attention.in_proj) is None


def test_a_class_named_like_a_norm_is_not_taken_for_another_kind():
    class LayerNormalizedAttention(nn.Module):  # "...Attention": no norm class name ends it
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(4, 4))

    module = LayerNormalizedAttention()
    assert DEFAULT_NO_DECAY.reason("weight", module.weight, module) is None
    # ResNet's rule exempts BatchNorm's γ and β only: a LayerNorm by name, and every bias, stay decayed there
    model = TinyDeberta()
    resnet = configure_from_recipe(model, get_recipe("resnet-imagenet", batch_size=256, scheduler={
        "warmup_epochs": 0, "milestones": [1], "of_epochs": None}), trainer=_Run())
    names = {id(p): n for n, p in model.named_parameters()}
    assert {g["name"]: [names[id(p)] for p in g["params"]] for g in resnet["optimizer"].param_groups} == {
        "decay": ["attention.q_bias", "attention.v_bias", "attention.in_proj.weight", "LayerNorm.weight",
                  "LayerNorm.bias", "dense.weight", "dense.bias"]}


def test_gpt_pretrain_decays_a_3d_pos_embed_as_nanogpt_does():
    class DirectPositions(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pos_embed = nn.Parameter(torch.zeros(1, 4, 8))  # registered directly: nanoGPT's p.dim() >= 2
            self.proj = nn.Linear(8, 8)

    model = DirectPositions()
    config = configure_from_recipe(model, get_recipe("gpt-pretrain"), trainer=_Run())
    names = {id(p): n for n, p in model.named_parameters()}
    assert {g["name"]: [names[id(p)] for p in g["params"]] for g in config["optimizer"].param_groups} == {
        "decay": ["pos_embed", "proj.weight"], "no_decay": ["proj.bias"]}
    default = param_groups(model, weight_decay=0.1)  # the library's default rule exempts it by name
    assert [[names[id(p)] for p in g["params"]] for g in default] == [["pos_embed", "proj.bias"], ["proj.weight"]]


class _Run:
    """The sizes a scheduler reads when a recipe is built outside a run."""

    estimated_stepping_batches, num_training_batches, accumulate_grad_batches, max_epochs = 10_000, 100, 1, 100
    world_size = 1


# ------------------------------------------------------------------------------ timm's layer assignment


class PreNormViT(nn.Module):
    """A CLIP-style ViT with timm's names: ``patch_embed``, ``pos_embed``, ``norm_pre``, ``blocks``, ``norm``,
    ``head``."""

    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = nn.Linear(4, 4, bias=False)
        self.pos_embed = nn.Parameter(torch.zeros(1, 2, 4))
        self.norm_pre = nn.LayerNorm(4)
        self.blocks = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 2)


def _lr_by_name(model: nn.Module, groups) -> dict[str, float]:
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: g["lr"] for g in groups for p in g["params"]}


def test_layer_rule_timm_puts_norm_and_norm_pre_with_the_last_block():
    model = PreNormViT()
    beit = _lr_by_name(model, param_groups(model, weight_decay=0.05, lr=1.0, layer_decay=0.5))
    timm = _lr_by_name(model, param_groups(model, weight_decay=0.05, lr=1.0, layer_decay=0.5, layer_rule="timm"))
    # 2 blocks: embeddings 0.5**3, block 0 0.5**2, block 1 0.5, the top 1.0
    assert beit == {"patch_embed.weight": 0.125, "pos_embed": 0.125, "norm_pre.weight": 1.0, "norm_pre.bias": 1.0,
                    "blocks.0.weight": 0.25, "blocks.0.bias": 0.25, "blocks.1.weight": 0.5, "blocks.1.bias": 0.5,
                    "norm.weight": 1.0, "norm.bias": 1.0, "head.weight": 1.0, "head.bias": 1.0}
    assert timm == {**beit, "norm_pre.weight": 0.5, "norm_pre.bias": 0.5, "norm.weight": 0.5, "norm.bias": 0.5}
    recipe = {"optimizer": "AdamW", "lr": 1.0, "weight_decay": 0.05, "layer_decay": 0.5, "layer_rule": "timm"}
    assert _lr_by_name(model, configure_from_recipe(model, recipe)["optimizer"].param_groups) == timm


def test_layer_rule_is_checked():
    with pytest.raises(Exception, match=r"^`layer_rule` must be 'beit' \(BEiT's and MAE's layer ids: the final norm"
                                        r" trains with the head\) or 'timm'"):
        param_groups(PreNormViT(), weight_decay=0.0, lr=1.0, layer_decay=0.5, layer_rule="mae")
    with pytest.raises(Exception, match=r"^`layer_rule='timm'` says how `layer_decay` assigns layers: pass"):
        param_groups(PreNormViT(), weight_decay=0.0, layer_rule="timm")


# ---------------------------------------------------------------------------------------- citations


def _normalized(text: str) -> str:
    return " ".join(text.split())


def test_the_encoder_decoder_entry_quotes_the_pages_it_cites():
    entry = describe_recipe("encoder-decoder")
    for _, where, words in entry.numbers:
        page = _normalized((ROOT / where.split(",")[0]).read_text())
        for quoted in words.split(" / "):
            assert _normalized(quoted).replace("( ", "(") in page.replace("( ", "("), (where, quoted)
    assert "docs/patterns/two-learning-rates.md" in entry.source.where
    assert "docs/patterns/milestones.md" in entry.source.where


def test_the_deit_entry_says_where_deits_code_reaches_the_peak():
    notes = " ".join(describe_recipe("deit").notes)
    assert "epochs 0 and 1 both train at 1e-6" in notes and "only epoch 6 at the peak" in notes
    # this recipe: the peak at the last step of epoch 4 (5 warm-up epochs of 10 steps at batch 1024)
    preview = preview_schedule(describe_recipe("deit").preview_recipe(), module=describe_recipe("deit").module(),
                               max_epochs=20, steps_per_epoch=10)
    peak = max(r["lr"] for r in preview)
    assert [r["step"] for r in preview if r["lr"] == peak and r["group"] == "decay"] == [49]
