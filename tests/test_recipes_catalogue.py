"""The recipe catalogue against its sources: every hyperparameter of every recipe written out as its paper states it
(optimizer, betas, eps, weight decay and which parameters get none, lr and its scaling, clipping, alternation), the
previewed schedule (the peak at the end of the warm-up, the final ratio, the milestones), a real Trainer fit per
family (both namespaces), and a catalogue recipe taken by name from YAML through LightningCLI.

The expected no-decay sets are computed with the reference code's own rule (by name or by shape), not with the
library's: BERT's ``exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"]``, nanoGPT's ``p.dim() < 2``,
timm 0.3.2's ``add_weight_decay`` for DeiT and MAE, Goyal et al.'s BatchNorm γ and β.
"""

from __future__ import annotations

import logging
import math
import types
from fnmatch import fnmatchcase
from typing import Any, Optional

import pytest
import torch
from helpers import EXAMPLES, NAMESPACE, TinyRegressor, loader, pl, run_cli, run_example_cli, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_optim_recipes import (
    AlternatingOptimizersMixin,
    OptimRecipeMixin,
    RecipeError,
    configure_from_recipe,
    describe_recipe,
    get_recipe,
    list_recipes,
    preview_schedule,
)
from lightning_optim_recipes.catalogue._examples import CriticGenerator, TinyBert, TinyResNet, TinyViT

NAMES = ("bert-finetune", "dcgan", "deit", "encoder-decoder", "gpt-pretrain", "llama-pretrain", "mae-finetune",
         "modded-nanogpt", "muon-moonlight", "resnet-imagenet", "schedulefree-adamw", "ttur", "wgan-gp", "wsd")
#: The sizes a scheduler reads when a recipe is built outside a run (long enough for LLaMA's 2,000-step warm-up).
RUN = types.SimpleNamespace(estimated_stepping_batches=10_000, num_training_batches=100, accumulate_grad_batches=1,
                            max_epochs=100)


def build(name: str, module: Optional[nn.Module] = None, **changes: Any) -> tuple[nn.Module, list[dict[str, Any]]]:
    """The recipe's model (its example by default) and its configuration: one dict per optimizer."""
    module = module if module is not None else describe_recipe(name).module()
    config = configure_from_recipe(module, get_recipe(name, **changes), trainer=RUN)
    return module, list(config) if isinstance(config, tuple) else [config]


def groups(module: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, tuple[float, list[str]]]:
    """{group name: (weight decay, parameter names)}."""
    names = {id(p): n for n, p in module.named_parameters()}
    return {g["name"]: (g["weight_decay"], [names[id(p)] for p in g["params"]]) for g in optimizer.param_groups}


def decayed(module: nn.Module, exempt) -> tuple[list[str], list[str]]:
    """(decayed, exempt) parameter names under the reference code's rule ``exempt(name, param)``."""
    named = list(module.named_parameters())
    return [n for n, p in named if not exempt(n, p)], [n for n, p in named if exempt(n, p)]


def lrs(preview, group: str, optimizer: int = 0) -> list[float]:
    """The lr of `group` at every optimizer step of `optimizer`, in step order."""
    return [r["lr"] for r in preview if r["group"] == group and r["optimizer"] == optimizer]


# ------------------------------------------------------------------------------------------------- the catalogue


def test_the_catalogue_lists_every_recipe_with_one_line():
    listed = list_recipes()
    assert tuple(listed) == NAMES
    assert all(isinstance(line, str) and line and "\n" not in line for line in listed.values())


#: Every number of every recipe dict (by its dotted path; a glob covers several) and what cites it: the first words
#: of a `numbers` row (what the source states), or ``choice:`` and the first words of a `choices` line (where the
#: source leaves the value open).
CITED: dict[str, dict[str, tuple[str, ...]]] = {
    "modded-nanogpt": {
        "Muon lr 0.05, momentum 0.95": ("lr", "optimizer_kwargs.momentum"),
        "Nesterov momentum, 5 Newton-Schulz steps": ("optimizer_kwargs.ns_steps",),
        "Adam betas (0.8, 0.95), eps 1e-10, no weight decay": ("hybrid.optimizer_kwargs.*", "hybrid.weight_decay"),
        "Adam lrs: head 0.008, embeddings 0.6, scalars 0.04": ("hybrid.lr", "hybrid.groups.*.lr"),
        "the lr held, then the last 40% of the run decaying": ("scheduler.min_lr_ratio",),
        "choice: No warm-up (warmup 0)": ("scheduler.warmup",),
        "choice: Adam (not AdamW) with weight decay 0": ("weight_decay",),
    },
    "wsd": {
        "AdamW, beta1 0.9, beta2 0.95, weight decay 0.1, gradient clipping 1.0": (
            "optimizer_kwargs.betas.*", "weight_decay", "gradient_clip_val"),
        "lr 8e-4": ("lr",),
        "down to 0": ("scheduler.min_lr_ratio",),
    },
    "schedulefree-adamw": {
        "lr 0.0025": ("lr",),
        "betas (0.9, 0.999)": ("optimizer_kwargs.betas.*",),
        "eps 1e-8, weight decay 0": ("optimizer_kwargs.eps", "weight_decay"),
        "the average weighted by lr^2": ("optimizer_kwargs.weight_lr_power", "optimizer_kwargs.r"),
        "the warm-up over 2% of the run": ("warmup_fraction",),
    },
    "muon-moonlight": {
        "one lr and one weight decay for Muon and AdamW": ("hybrid.lr", "hybrid.weight_decay"),
        "5 Newton-Schulz steps, momentum 0.95": ("optimizer_kwargs.momentum", "optimizer_kwargs.ns_steps"),
        "weight decay 0.1": ("weight_decay",),
        "peak lr 4.2e-4 after a 2,000-step linear warm-up": ("lr", "scheduler.warmup_steps"),
        "cosine to 10% of the peak": ("scheduler.min_lr_ratio",),
        "AdamW betas (0.9, 0.95), eps 1e-8": ("hybrid.optimizer_kwargs.*",),
    },
    "bert-finetune": {
        "lr 5e-5, the first of the grid": ("lr",),
        "beta1 0.9, beta2 0.999, weight decay 0.01": ("optimizer_kwargs.betas.*", "weight_decay"),
        "choice: Warm-up over the first 10% of the run": ("scheduler.warmup_fraction",),
        "choice: eps 1e-6 (optimization.py:64": ("optimizer_kwargs.eps", "gradient_clip_val"),
    },
    "dcgan": {
        "Adam lr 2e-4 (both networks)": ("optimizers.*.lr",),
        "beta1 0.5 (both networks)": ("optimizers.*.optimizer_kwargs.betas.0",),
        "choice: beta2 0.999: the paper does not state it": ("optimizers.*.optimizer_kwargs.betas.1",),
        "choice: One discriminator step per generator step": ("alternation.*",),
    },
    "deit": {
        "AdamW, lr 5e-4 x batch / 512, cosine, weight decay 0.05, 5 warm-up epochs": (
            "lr", "weight_decay", "scheduler.warmup_epochs"),
        "the lr scaled by the global batch with base 512": ("lr_scaling.base_batch_size",),
        "choice: min lr 1e-5, absolute": ("scheduler.min_lr",),
    },
    "encoder-decoder": {
        "Adam; weight decay 1e-6; encoder lr 1e-4, decoder lr 1e-3": ("weight_decay", "overrides.*.lr"),
        "lr x 0.5 after epoch 2000": ("scheduler.milestones.0", "scheduler.gamma"),
        "choice: lr 1e-3 for anything outside the encoder and the decoder": ("lr",),
    },
    "gpt-pretrain": {
        "lr 6e-4 (GPT-3 Small": ("lr",),
        "beta1 0.9, beta2 0.95, eps 1e-8": ("optimizer_kwargs.betas.*", "optimizer_kwargs.eps"),
        "weight decay 0.1": ("weight_decay",),
        "gradient clipping at global norm 1.0": ("gradient_clip_val",),
        "linear warm-up over 375M of the run's 300B tokens": ("scheduler.warmup_fraction",),
        "cosine decay to 10% of the peak": ("scheduler.min_lr_ratio",),
        "the cosine over the first 260B of the run's 300B tokens": ("scheduler.decay_fraction",),
    },
    "llama-pretrain": {
        "lr 3e-4 (the 6.7B and 13.0B models)": ("lr",),
        "AdamW, beta1 0.9, beta2 0.95": ("optimizer_kwargs.betas.*",),
        "weight decay 0.1, gradient clipping 1.0, 2,000 warm-up steps": (
            "weight_decay", "gradient_clip_val", "scheduler.warmup_steps"),
        "cosine to 10% of the peak": ("scheduler.min_lr_ratio",),
        "choice: eps 1e-5: LLaMA states none": ("optimizer_kwargs.eps",),
    },
    "mae-finetune": {
        "AdamW, beta1 0.9, beta2 0.999": ("optimizer_kwargs.betas.*",),
        "base lr 1e-3": ("lr",),
        "lr = base lr x global batch / 256": ("lr_scaling.base_batch_size",),
        "weight decay 0.05": ("weight_decay",),
        "layer-wise lr decay 0.75": ("layer_decay",),
        "5 warm-up epochs, then cosine decay": ("scheduler.warmup_epochs",),
        "choice: min lr 1e-6": ("scheduler.min_lr",),
    },
    "resnet-imagenet": {
        "lr 0.1 x global batch / 256": ("lr", "lr_scaling.base_batch_size"),
        "lr / 10 at epochs 30, 60 and 80 of 90": ("scheduler.milestones.*", "scheduler.of_epochs", "scheduler.gamma"),
        "Nesterov momentum 0.9": ("optimizer_kwargs.momentum",),
        "weight decay 1e-4, none on BatchNorm": ("weight_decay",),
        "linear warm-up over 5 epochs": ("scheduler.warmup_epochs",),
    },
    "ttur": {
        "critic (discriminator) lr 4e-4, generator lr 1e-4": ("optimizers.*.lr",),
        "Adam beta1 0, beta2 0.9 (both networks)": ("optimizers.*.optimizer_kwargs.betas.*",),
        "one critic step per generator step": ("alternation.*",),
    },
    "wgan-gp": {
        "Adam lr 1e-4, beta1 0, beta2 0.9": ("optimizers.*.lr", "optimizers.*.optimizer_kwargs.betas.*"),
        "5 critic steps per generator step": ("alternation.*",),
        "gradient penalty weight 10": ("values.gradient_penalty",),
    },
}


def numbers_of(value: Any, path: str = "") -> list[str]:
    """The dotted paths of every number (not a bool) in a recipe dict, list items by index."""
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in numbers_of(item, f"{path}{key}.")]
    if isinstance(value, (list, tuple)):
        return [p for index, item in enumerate(value) for p in numbers_of(item, f"{path}{index}.")]
    return [path[:-1]] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


@pytest.mark.parametrize("name", NAMES)
def test_every_entry_cites_its_source_and_every_number(name):
    entry = describe_recipe(name)
    source = entry.source
    assert source.authors and source.title and source.venue and source.where and 2010 < source.year < 2030
    assert entry.numbers and all(len(row) == 3 and all(isinstance(p, str) and p for p in row) for row in entry.numbers)
    assert entry.choices and all(isinstance(c, str) and c for c in entry.choices)
    assert isinstance(entry.module(), nn.Module)
    # every number the recipe dict states is cited by one row (or choice), and every citation above is still there
    cited = CITED[name]
    numbers = numbers_of(entry.recipe)
    citing = {path: [c for c, globs in cited.items() if any(fnmatchcase(path, g) for g in globs)] for path in numbers}
    assert {path: found for path, found in citing.items() if len(found) != 1} == {}  # none uncited, none cited twice
    assert all(any(fnmatchcase(path, g) for path in numbers) for globs in cited.values() for g in globs)
    for citation in cited:
        if citation.startswith("choice: "):
            lines = [c for c in entry.choices if c.startswith(citation.removeprefix("choice: "))]
        else:
            lines = [what for what, _, _ in entry.numbers if what.startswith(citation)]
        assert len(lines) == 1, f"{name}: {citation!r} matches {len(lines)} of its entry's lines"


@pytest.mark.parametrize(("name", "peaks"), [
    ("bert-finetune", (5e-5,)),  # Devlin et al., A.3
    ("dcgan", (2e-4, 2e-4)),  # Radford et al., Section 4
    ("deit", (1e-3,)),  # Touvron et al., Table 9: 5e-4 x 1024 / 512
    ("encoder-decoder", (1e-3,)),  # the decoder's (the encoder's is 1e-4)
    ("gpt-pretrain", (6e-4,)),  # Brown et al., Table 2.1
    ("llama-pretrain", (3e-4,)),  # Touvron et al., Table 2
    ("mae-finetune", (4e-3,)),  # He et al., Table 9: 1e-3 x 1024 / 256 (the top layer's)
    ("resnet-imagenet", (0.4,)),  # Goyal et al., Section 5.1: 0.1 x 1024 / 256
    ("ttur", (4e-4, 1e-4)),  # Zhang et al., Section 5: critic 0.0004, generator 0.0001
    ("wgan-gp", (1e-4, 1e-4)),  # Gulrajani et al., Algorithm 1
])
def test_get_recipe_works_wherever_a_recipe_dict_does(name, peaks):
    """`get_recipe(name)` and `{'recipe': name}` give the same schedule as the entry's own preview, whose highest lr
    per optimizer is the paper's (at the preview's batch size)."""
    entry = describe_recipe(name)
    batch = {"batch_size": entry.preview["batch_size"]} if "batch_size" in entry.preview else {}
    sizes = {"max_epochs": entry.preview["max_epochs"], "steps_per_epoch": entry.preview["steps_per_epoch"]}
    by_dict = preview_schedule(get_recipe(name, **batch), module=entry.module(), **sizes)
    by_name = preview_schedule({"recipe": name, **batch}, module=entry.module(), **sizes)
    assert [r["lr"] for r in by_dict] == [r["lr"] for r in by_name] == [r["lr"] for r in entry.preview_schedule()]
    assert tuple(max(r["lr"] for r in by_dict if r["optimizer"] == index) for index in range(len(peaks))) == peaks
    assert {r["optimizer"] for r in by_dict} == set(range(len(peaks)))
    assert get_recipe(name)["recipe"] == name


def test_changes_are_merged_key_by_key_and_checked():
    recipe = get_recipe("bert-finetune", lr=3e-5, scheduler={"warmup_fraction": 0.06})
    assert recipe["lr"] == 3e-5 and recipe["scheduler"] == {"type": "warmup_linear", "warmup_fraction": 0.06}
    assert describe_recipe("bert-finetune").recipe["lr"] == 5e-5  # the catalogue's copy is untouched
    with pytest.raises(RecipeError, match=r"Unknown key 'lr_schedular' in the changes to recipe 'bert-finetune'"):
        get_recipe("bert-finetune", lr_schedular={})


def test_an_unknown_recipe_suggests_the_close_name():
    with pytest.raises(RecipeError, match=r"^Unknown recipe 'bert-finetun': did you mean 'bert-finetune'\?"):
        get_recipe("bert-finetun")


# ------------------------------------------------------------------------------------------------------------ GANs


@pytest.mark.parametrize(("name", "critic_lr", "generator_lr", "betas", "alternation", "values"), [
    # Gulrajani et al., Algorithm 1: alpha = 0.0001, beta1 = 0, beta2 = 0.9, n_critic = 5, lambda = 10
    ("wgan-gp", 1e-4, 1e-4, (0.0, 0.9), {"critic": 5, "generator": 1}, {"gradient_penalty": 10.0}),
    # Radford et al., Section 4: lr 0.0002, beta1 0.5 (beta2 left at Adam's 0.999); one D step per G step
    ("dcgan", 2e-4, 2e-4, (0.5, 0.999), {"critic": 1, "generator": 1}, None),
    # Zhang et al. (SAGAN), Section 5: D 0.0004, G 0.0001, beta1 0, beta2 0.9; Section 5.1: 1:1 updates
    ("ttur", 4e-4, 1e-4, (0.0, 0.9), {"critic": 1, "generator": 1}, None),
])
def test_gan_recipes(name, critic_lr, generator_lr, betas, alternation, values):
    recipe = get_recipe(name)
    assert recipe["alternation"] == alternation and recipe["alternation_cycle"] == "run"
    assert recipe.get("values") == values
    module, (critic, generator) = build(name)
    for config, lr, submodule in ((critic, critic_lr, module.critic), (generator, generator_lr, module.generator)):
        optimizer = config["optimizer"]
        assert type(optimizer) is torch.optim.Adam
        assert (optimizer.defaults["lr"], optimizer.defaults["betas"], optimizer.defaults["eps"]) == (lr, betas, 1e-8)
        assert all(g["weight_decay"] == 0.0 and g["lr"] == lr for g in optimizer.param_groups)
        held = {id(p) for g in optimizer.param_groups for p in g["params"]}
        assert held == {id(p) for p in submodule.parameters()}  # each optimizer trains its own network only
        assert "lr_scheduler" not in config  # constant lrs
    assert (critic["frequency"], generator["frequency"]) == (alternation["critic"], alternation["generator"])


@pytest.mark.parametrize(("name", "pattern", "critic_lr", "generator_lr"), [
    ("wgan-gp", "CCCCCG", 1e-4, 1e-4), ("dcgan", "CG", 2e-4, 2e-4), ("ttur", "CG", 4e-4, 1e-4)])
def test_gan_previews_alternate_and_keep_the_lrs(name, pattern, critic_lr, generator_lr):
    preview = describe_recipe(name).preview_schedule()  # 4 epochs x 60 batches, one optimizer step per batch
    steps = sorted({(r["step"], r["role"]) for r in preview})
    assert "".join(role[0].upper() for _, role in steps) == pattern * (240 // len(pattern))
    critic_steps, generator_steps = 240 * pattern.count("C") // len(pattern), 240 * pattern.count("G") // len(pattern)
    assert lrs(preview, "critic/decay", 0) == [critic_lr] * critic_steps  # constant: the papers have no schedule
    assert lrs(preview, "generator/decay", 1) == [generator_lr] * generator_steps


# -------------------------------------------------------------------------------------------------------- language


def test_bert_finetune_hyperparameters():
    recipe = get_recipe("bert-finetune")
    assert recipe["lr"] == 5e-5  # the first of Appendix A.3's grid {5e-5, 3e-5, 2e-5}
    assert recipe["gradient_clip_val"] == 1.0 and recipe.get("gradient_clip_algorithm", "norm") == "norm"
    assert "lr_scaling" not in recipe
    module, (config,) = build("bert-finetune")
    optimizer = config["optimizer"]
    assert type(optimizer) is torch.optim.AdamW
    # A.2 (kept by A.3): beta1 0.9, beta2 0.999, weight decay 0.01; eps 1e-6 is the reference code's
    assert (optimizer.defaults["betas"], optimizer.defaults["eps"]) == ((0.9, 0.999), 1e-6)
    decay, exempt = decayed(module, lambda n, p: any(k in n for k in ("LayerNorm", "layer_norm", "bias")))
    assert groups(module, optimizer) == {"decay": (0.01, decay), "no_decay": (0.0, exempt)}
    assert "embeddings.word_embeddings.weight" in decay and "embeddings.position_embeddings.weight" in decay


def test_bert_finetune_schedule():
    preview = describe_recipe("bert-finetune").preview_schedule()  # 3 epochs x 100 batches = 300 steps
    lr = lrs(preview, "decay")
    assert len(lr) == 300 and lr == lrs(preview, "no_decay")
    warmup = 30  # 10% of the run
    assert lr[warmup - 1] == max(lr) == 5e-5  # the peak at the end of the warm-up
    assert lr[:warmup] == pytest.approx([5e-5 * (k + 1) / warmup for k in range(warmup)], rel=1e-12)
    assert lr[-1] == 0.0  # linear decay to 0 at the last step
    assert lr[warmup - 1:] == pytest.approx([5e-5 * (299 - k) / 270 for k in range(warmup - 1, 300)], abs=1e-18)
    assert preview.markers == [{"step": 29, "optimizer": 0, "label": "warmup end"}]


@pytest.mark.parametrize(("name", "model_lr", "eps", "module_class"), [
    # Brown et al., Appendix B: Adam beta (0.9, 0.95), eps 1e-8, decay 0.1, clip 1.0; Table 2.1: Small 6.0e-4
    ("gpt-pretrain", 6e-4, 1e-8, "TinyGPT"),
    # Touvron et al., Section 2.3: AdamW (0.9, 0.95), decay 0.1, clip 1.0; Table 2: 3.0e-4; eps 1e-5 from Llama 2
    ("llama-pretrain", 3e-4, 1e-5, "TinyLlama"),
])
def test_pretraining_hyperparameters(name, model_lr, eps, module_class):
    recipe = get_recipe(name)
    assert recipe["gradient_clip_val"] == 1.0 and recipe.get("gradient_clip_algorithm", "norm") == "norm"
    module, (config,) = build(name)
    assert type(module).__name__ == module_class
    optimizer = config["optimizer"]
    assert type(optimizer) is torch.optim.AdamW
    assert (optimizer.defaults["lr"], optimizer.defaults["betas"], optimizer.defaults["eps"]) == (
        model_lr, (0.9, 0.95), eps)
    decay, exempt = decayed(module, lambda n, p: p.dim() < 2)  # nanoGPT's configure_optimizers
    assert groups(module, optimizer) == {"decay": (0.1, decay), "no_decay": (0.0, exempt)}
    embeddings = [n for n, m in module.named_modules() if isinstance(m, nn.Embedding)]
    assert embeddings and all(f"{n}.weight" in decay for n in embeddings)  # embeddings are decayed


def test_gpt_pretrain_schedule():
    preview = describe_recipe("gpt-pretrain").preview_schedule()  # 8 epochs x 1000 batches = 8000 steps
    lr = lrs(preview, "decay")
    warmup = 10  # 375M of 300B tokens = 0.125% of the run
    assert get_recipe("gpt-pretrain")["scheduler"]["warmup_fraction"] == 375e6 / 300e9
    assert lr[warmup - 1] == max(lr) == 6e-4 and lr[warmup - 2] < 6e-4
    # Appendix B: the cosine over 260B of the 300B tokens, then 10% of the peak: round(8000 x 260 / 300) - 1 = 6932
    assert get_recipe("gpt-pretrain")["scheduler"]["decay_fraction"] == 260 / 300
    # the cosine spans steps 9 to 6932: 6924 steps, its k-th at 6e-5 + 0.5 x (6e-4 - 6e-5) x (1 + cos(pi k / 6923))
    assert lr[6931] == pytest.approx(6.0000027800003024e-05, rel=1e-12) and lr[6931] > lr[6932]
    assert lr[6932] == pytest.approx(6e-5, rel=1e-12)  # the floor, 10% of the peak
    assert lr[6932:] == [lr[6932]] * (8000 - 6932)  # held to the last step, 7999
    assert len(lr) == 8000 and lr[7999] == lr[6932]
    middle = warmup - 1 + 3461  # half-way through the cosine: about the mean of the peak and the floor
    assert lr[middle] == pytest.approx(3.3006126173690535e-04, rel=1e-12)
    assert lr[middle] == pytest.approx(6e-5 + 0.5 * (6e-4 - 6e-5) * (1 + math.cos(math.pi * 3461 / 6923)), rel=1e-12)
    # the note's nanoGPT schedule: the cosine over steps 9 to 7999 (7991 steps), the floor at the last step only
    nanogpt = lrs(preview_schedule(get_recipe("gpt-pretrain", scheduler={"decay_fraction": None}),
                                   module=describe_recipe("gpt-pretrain").module(), max_epochs=8,
                                   steps_per_epoch=1000), "decay")
    assert nanogpt[6932] == pytest.approx(8.341474564936271e-05, rel=1e-12)  # cos(pi x 6923 / 7990)
    assert nanogpt[-1] == pytest.approx(6e-5, rel=1e-12) and nanogpt[-2] > nanogpt[-1]


def test_llama_pretrain_schedule():
    preview = describe_recipe("llama-pretrain").preview_schedule()  # 10 epochs x 1000 batches = 10000 steps
    lr = lrs(preview, "decay")
    assert lr[1999] == max(lr) == 3e-4 and lr[1998] < 3e-4  # 2,000 warm-up steps
    assert lr[-1] == pytest.approx(3e-5, rel=1e-12)  # 10% of the peak
    shorter = preview_schedule(get_recipe("llama-pretrain", scheduler={"warmup_steps": None, "warmup_fraction": 0.01}),
                               module=describe_recipe("llama-pretrain").module(), max_epochs=1, steps_per_epoch=500)
    assert lrs(shorter, "decay")[4] == 3e-4  # the choice's advice for a short run


def test_wsd_hyperparameters():
    recipe = get_recipe("wsd")
    assert recipe["gradient_clip_val"] == 1.0 and recipe.get("gradient_clip_algorithm", "norm") == "norm"
    module, (config,) = build("wsd")
    optimizer = config["optimizer"]
    # Hägele et al., Appendix A.1: AdamW (0.9, 0.95), decoupled weight decay 0.1; Section 3.3: lr 8e-4; eps: torch's
    assert type(optimizer) is torch.optim.AdamW and type(module).__name__ == "TinyLlama"
    assert (optimizer.defaults["lr"], optimizer.defaults["betas"], optimizer.defaults["eps"]) == (8e-4, (0.9, 0.95),
                                                                                                 1e-8)
    owners = {f"{m_name}.{p_name}" if m_name else p_name: m for m_name, m in module.named_modules()
              for p_name, _ in m.named_parameters(recurse=False)}

    def reference_exempt(name: str, param: torch.Tensor) -> bool:
        """epfml/schedules-and-scaling's get_parameter_group_specs: biases, and the weights of LayerNorm, RMSNorm
        and Embedding (BLACKLIST_WEIGHT_MODULES); Linear weights are decayed."""
        return name.endswith("bias") or isinstance(owners[name], (nn.LayerNorm, nn.RMSNorm, nn.Embedding))

    decay, exempt = decayed(module, reference_exempt)
    assert groups(module, optimizer) == {"decay": (0.1, decay), "no_decay": (0.0, exempt)}
    assert "tok_embeddings.weight" in exempt and "output.weight" in decay


def test_wsd_schedule():
    preview = describe_recipe("wsd").preview_schedule()  # 10 epochs x 300 batches = 3000 optimizer steps
    lr = lrs(preview, "decay")
    assert len(lr) == 3000
    # Appendix A.1: 300 warm-up steps, step k at (k + 1) / 300 of the peak 8e-4
    assert lr[0] == pytest.approx(2.6666666666666667e-06, rel=1e-12)
    assert lr[298] == pytest.approx(7.973333333333334e-04, rel=1e-12)
    # Eq. (1): the peak held from the warm-up's last step to the cooldown, the last 20% of the run: steps 2400-2999
    assert lr[299:2400] == [8e-4] * 2101
    # Eq. (1-sqrt): step 2400 + i at 8e-4 x (1 - sqrt((i + 1) / 600)), down to 0 at the last step
    assert lr[2400] == pytest.approx(7.6734013676289e-04, rel=1e-12)  # 8e-4 x (1 - sqrt(1 / 600))
    assert lr[2699] == pytest.approx(2.343145750507619e-04, rel=1e-12)  # 8e-4 x (1 - sqrt(1 / 2)), half-way
    assert lr[2998] == pytest.approx(6.66944676167347e-07, rel=1e-9) and lr[2999] == 0.0
    assert preview.markers == [{"step": 299, "optimizer": 0, "label": "warmup end"},
                               {"step": 2400, "optimizer": 0, "label": "decay start"}]
    assert [(row["length"], row["written"], row["resolved"]) for row in preview.lengths] == [
        ("warmup", "300st", 300), ("decay", "20%", 600)]
    # MiniCPM's 10% (Hu et al., Section 4.3), as the note gives it: the cooldown over the last 300 steps
    shorter = lrs(preview_schedule(get_recipe("wsd", scheduler={"decay": "10%"}), module=describe_recipe("wsd").module(),
                                   max_epochs=10, steps_per_epoch=300), "decay")
    assert shorter[2699] == 8e-4 and shorter[2700] == pytest.approx(7.538119784648299e-04, rel=1e-12)


# ---------------------------------------------------------------------------------------------------------- vision


def timm_032_exempt(name: str, param: torch.Tensor) -> bool:
    """timm 0.3.2's ``add_weight_decay`` with a ViT's ``no_weight_decay()`` = {'pos_embed', 'cls_token'}."""
    return param.dim() == 1 or name.endswith(".bias") or name in ("pos_embed", "cls_token")


def test_deit_hyperparameters():
    recipe = get_recipe("deit")
    assert recipe["lr"] == 5e-4 and recipe["lr_scaling"] == {"base_batch_size": 512}  # Table 9: 0.0005 x bs/512
    assert "gradient_clip_val" not in recipe  # Table 9: no gradient clipping
    module, (config,) = build("deit", batch_size=1024)
    optimizer = config["optimizer"]
    assert type(optimizer) is torch.optim.AdamW
    assert (optimizer.defaults["lr"], optimizer.defaults["betas"], optimizer.defaults["eps"]) == (
        5e-4 * 1024 / 512, (0.9, 0.999), 1e-8)
    decay, exempt = decayed(module, timm_032_exempt)
    assert groups(module, optimizer) == {"no_decay": (0.0, exempt), "decay": (0.05, decay)}
    assert build("deit", batch_size=256)[1][0]["optimizer"].defaults["lr"] == 2.5e-4


def test_deit_schedule():
    preview = describe_recipe("deit").preview_schedule()  # batch 1024, 20 epochs x 10 batches = 200 steps
    lr = lrs(preview, "decay")
    assert lr[49] == max(lr) == 1e-3 and lr[48] < 1e-3  # 5 warm-up epochs, peak 5e-4 x 1024 / 512
    assert lr[-1] == pytest.approx(1e-5, rel=1e-12)  # min lr 1e-5 (DeiT's code): 1% of the peak at this batch
    assert lr[49:] == sorted(lr[49:], reverse=True)  # cosine: down all the way


def test_an_lr_scaled_recipe_without_a_batch_says_how_to_give_one():
    with pytest.raises(RecipeError, match=r"^Recipe 'deit' scales its lr by the global batch size \(lr x batch / 512\)"
                       r".*set 'batch_size' in the recipe"):
        configure_from_recipe(TinyViT(), get_recipe("deit"), trainer=RUN)
    assert [str(s) for s in describe_recipe("deit").lr_scalings()] == ["lr = 0.0005 x 1024 / 512 = 0.001"]
    assert [str(s) for s in describe_recipe("resnet-imagenet").lr_scalings(8192)] == ["lr = 0.1 x 8192 / 256 = 3.2"]


def test_resnet_imagenet_hyperparameters():
    recipe = get_recipe("resnet-imagenet")
    assert recipe["lr"] == 0.1 and recipe["lr_scaling"] == {"base_batch_size": 256}  # Section 5.1: 0.1 kn / 256
    module, (config,) = build("resnet-imagenet", batch_size=8192)
    optimizer = config["optimizer"]
    assert type(optimizer) is torch.optim.SGD
    defaults = optimizer.defaults
    assert (defaults["lr"], defaults["momentum"], defaults["nesterov"]) == (3.2, 0.9, True)  # Section 5.2's 3.2 at 8k
    decay, exempt = decayed(module, lambda n, p: n.rpartition(".")[0].rpartition(".")[2].startswith("bn"))
    assert exempt == ["bn1.weight", "bn1.bias", "layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.bn2.weight",
                      "layer1.0.bn2.bias"]
    assert groups(module, optimizer) == {"decay": (1e-4, decay), "no_decay": (0.0, exempt)}
    assert "fc.bias" in decay  # only BN's gamma and beta are exempt
    assert build("resnet-imagenet", batch_size=256, optimizer_kwargs={"nesterov": False})[1][0][
        "optimizer"].defaults["nesterov"] is False  # He et al.'s standard momentum


def test_resnet_imagenet_schedule(caplog):
    with caplog.at_level(logging.INFO, logger="lightning_optim_recipes"):
        preview = describe_recipe("resnet-imagenet").preview_schedule()  # batch 1024, 18 epochs x 10 batches
    lr = lrs(preview, "decay")
    assert lr[49] == max(lr) == 0.4 and lr[48] < 0.4  # 5 warm-up epochs to 0.1 x 1024 / 256
    # Sections 2.2 and 5.2: the warm-up starts at the unscaled 0.1 and rises by the same amount each step to 0.4
    assert lr[0] == pytest.approx(0.1) and lr[1] == pytest.approx(0.1 + 0.3 / 49)
    assert lr[:50] == pytest.approx([0.1 + 0.3 * k / 49 for k in range(50)], rel=1e-12)
    assert "the warm-up starts at the lr before lr_scaling, 0.1 (0.25 of 0.4)" in caplog.text
    # / 10 at epochs 30, 60 and 80 of 90, scaled to 18 epochs: 6, 12 and 16, i.e. steps 60, 120 and 160
    drops = [k for k in range(1, len(lr)) if lr[k] < lr[k - 1] * 0.5]
    assert drops == [60, 120, 160]
    assert lr[60] == pytest.approx(0.04) and lr[120] == pytest.approx(0.004) and lr[160] == pytest.approx(4e-4)
    assert lr[-1] / max(lr) == pytest.approx(1e-3)
    assert "milestones [30, 60, 80] of 90 epochs scaled to this run: optimizer steps [60, 120, 160]" in caplog.text


def test_mae_finetune_hyperparameters():
    recipe = get_recipe("mae-finetune")
    # Table 9: base lr 1e-3, layer decay 0.75 (not the repository's ViT-B 5e-4 / 0.65); A.1: lr = base x bs / 256
    assert (recipe["lr"], recipe["layer_decay"], recipe["lr_scaling"]) == (1e-3, 0.75, {"base_batch_size": 256})
    module, (config,) = build("mae-finetune", batch_size=1024)
    optimizer = config["optimizer"]
    assert type(optimizer) is torch.optim.AdamW
    assert (optimizer.defaults["lr"], optimizer.defaults["betas"], optimizer.defaults["eps"]) == (
        1e-3 * 1024 / 256, (0.9, 0.999), 1e-8)
    decay, exempt = decayed(module, timm_032_exempt)
    found = groups(module, optimizer)
    assert sorted(n for wd, names in found.values() if wd == 0.0 for n in names) == sorted(exempt)
    assert sorted(n for wd, names in found.values() if wd == 0.05 for n in names) == sorted(decay)
    # MAE's get_layer_id_for_vit: 0 the embeddings, i + 1 block i, 3 (the top) the final norm and the head
    layer_lrs = {g["name"]: g["initial_lr"] for g in optimizer.param_groups}
    assert layer_lrs == pytest.approx({"layer_0/no_decay": 4e-3 * 0.75**3, "layer_0": 4e-3 * 0.75**3,
                                       "layer_1/no_decay": 4e-3 * 0.75**2, "layer_1": 4e-3 * 0.75**2,
                                       "layer_2/no_decay": 4e-3 * 0.75, "layer_2": 4e-3 * 0.75,
                                       "layer_3/no_decay": 4e-3, "layer_3": 4e-3}, rel=1e-12)
    assert found["layer_0/no_decay"][1] == ["cls_token", "pos_embed", "patch_embed.proj.bias"]
    assert found["layer_3/no_decay"][1] == ["norm.weight", "norm.bias", "head.bias"]
    repo = build("mae-finetune", batch_size=1024, lr=5e-4, layer_decay=0.65)[1][0]["optimizer"]  # FINETUNE.md ViT-B
    assert {g["name"]: g["initial_lr"] for g in repo.param_groups}["layer_0"] == pytest.approx(2e-3 * 0.65**3)


def test_mae_finetune_schedule():
    preview = describe_recipe("mae-finetune").preview_schedule()  # batch 1024, 20 epochs x 10 batches
    for layer in range(4):
        lr, scale = lrs(preview, f"layer_{layer}"), 0.75 ** (3 - layer)
        assert lr[49] == pytest.approx(max(lr)) and max(lr) == pytest.approx(4e-3 * scale, rel=1e-12)
        assert lr[48] < lr[49]  # 5 warm-up epochs
        assert lr[-1] == pytest.approx(1e-6 * scale, rel=1e-9)  # min lr 1e-6 (the code's) times the layer's scale


# --------------------------------------------------------------------------------------------------------- classic


def test_encoder_decoder_hyperparameters_and_schedule():
    module, (config,) = build("encoder-decoder")
    optimizer = config["optimizer"]
    assert type(optimizer) is torch.optim.Adam
    assert groups(module, optimizer) == {
        "encoder": (1e-6, ["encoder.0.weight"]),
        "encoder/no_decay": (0.0, ["encoder.0.bias", "encoder.1.weight", "encoder.1.bias"]),  # bias and LayerNorm
        "decoder": (1e-6, ["decoder.0.weight", "decoder.2.weight"]),
        "decoder/no_decay": (0.0, ["decoder.0.bias", "decoder.2.bias"]),
    }
    assert [g["initial_lr"] for g in optimizer.param_groups] == [1e-4, 1e-4, 1e-3, 1e-3]
    assert config["lr_scheduler"]["interval"] == "epoch"
    preview = describe_recipe("encoder-decoder").preview_schedule()  # 2500 epochs of 1 batch
    encoder, decoder = lrs(preview, "encoder"), lrs(preview, "decoder")
    assert encoder[1999] == 1e-4 and decoder[1999] == 1e-3  # the peak until the milestone
    assert encoder[2000] == 5e-5 and decoder[2000] == 5e-4 and encoder[-1] == 5e-5  # halved at epoch 2000, then kept
    assert [m["step"] for m in preview.markers] == [2000]


# --------------------------------------------------------------------------------------------------- schedule-free


def test_schedulefree_adamw_hyperparameters():
    recipe = get_recipe("schedulefree-adamw")
    assert "scheduler" not in recipe and "gradient_clip_val" not in recipe  # the schedule is built in
    module, (config,) = build("schedulefree-adamw")
    optimizer = config["optimizer"]
    assert type(optimizer).__name__ == "AdamWScheduleFree" and "lr_scheduler" not in config
    # schedulefree 1.4.1's AdamWScheduleFree defaults: lr 0.0025, betas (0.9, 0.999), eps 1e-8, r 0, lr^2 weights
    defaults = optimizer.defaults
    assert (defaults["lr"], defaults["betas"], defaults["eps"], defaults["r"], defaults["weight_lr_power"]) == (
        0.0025, (0.9, 0.999), 1e-8, 0.0, 2.0)
    # the AlgoPerf external-tuning entry's warmup_factor 0.02: 2% of RUN's 10,000 steps
    assert {g["warmup_steps"] for g in optimizer.param_groups} == {200}
    assert {g["weight_decay"] for g in optimizer.param_groups} == {0.0}  # the package's default
    decaying, (with_decay,) = build("schedulefree-adamw", weight_decay=0.08)  # AlgoPerf's: biases and norms exempt
    decay, exempt = decayed(decaying, timm_032_exempt)
    assert groups(decaying, with_decay["optimizer"]) == {"no_decay": (0.0, exempt), "decay": (0.08, decay)}
    in_steps = build("schedulefree-adamw", warmup_fraction=None, optimizer_kwargs={"warmup_steps": 1000})
    assert in_steps[1][0]["optimizer"].defaults["warmup_steps"] == 1000  # the choice's warm-up in steps


def test_schedulefree_adamw_schedule():
    preview = describe_recipe("schedulefree-adamw").preview_schedule()  # 10 epochs x 100 batches = 1000 steps
    lr = lrs(preview, "decay")
    assert len(lr) == 1000 and lr == lrs(preview, "no_decay")
    # the built-in warm-up over 20 steps (2%), step k at (k + 1) / 20 of 0.0025, then 0.0025 to the end
    assert lr[:20] == pytest.approx([0.0025 * (k + 1) / 20 for k in range(20)], rel=1e-12)
    assert lr[19] == max(lr) == 0.0025 and lr[18] < 0.0025 and set(lr[19:]) == {0.0025}
    assert preview.markers == [{"step": 19, "optimizer": 0, "label": "warmup end"}]


# ------------------------------------------------------------------------------------- one real fit per family


class GAN(AlternatingOptimizersMixin, pl.LightningModule):
    """The catalogue's critic/generator pair, trained by any GAN recipe given as ``optim_recipe``."""

    def __init__(self, optim_recipe: Optional[dict[str, Any]] = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        pair = CriticGenerator()
        self.critic, self.generator = pair.critic, pair.generator
        self.turns: list[str] = []

    def critic_step(self, batch, batch_idx):
        (real,) = batch
        self.turns.append("C")
        fake = self.generator(torch.randn_like(real)).detach()
        return self.critic(fake).mean() - self.critic(real).mean()

    def generator_step(self, batch, batch_idx):
        self.turns.append("G")
        return -self.critic(self.generator(torch.randn_like(batch[0]))).mean()


@pytest.mark.trainer
@pytest.mark.parametrize(("name", "turns", "steps", "critic", "generator"), [
    # (lr, betas) of the critic and of the generator, as in test_gan_recipes
    ("wgan-gp", "CCCCCGCCCCCG", (10, 2), (1e-4, (0.0, 0.9)), (1e-4, (0.0, 0.9))),
    ("dcgan", "CGCGCGCGCGCG", (6, 6), (2e-4, (0.5, 0.999)), (2e-4, (0.5, 0.999))),
    ("ttur", "CGCGCGCGCGCG", (6, 6), (4e-4, (0.0, 0.9)), (1e-4, (0.0, 0.9))),
])
def test_gan_recipes_train(tmp_path, name, turns, steps, critic, generator):
    model = GAN({"recipe": name})
    fit = trainer(tmp_path, max_epochs=2)
    fit.fit(model, DataLoader(TensorDataset(torch.randn(6 * 4, 2)), batch_size=4))  # 6 batches per epoch
    assert "".join(model.turns) == turns and model.optimizer_step_counts == steps
    assert [(o.defaults["lr"], o.defaults["betas"]) for o in fit.optimizers] == [critic, generator]
    assert [[g["lr"] for g in o.param_groups] for o in fit.optimizers] == [[critic[0]] * 2, [generator[0]] * 2]


class BertClassifier(OptimRecipeMixin, pl.LightningModule):
    """TinyBert fine-tuned by ``{'recipe': 'bert-finetune'}``; records each step's lr and its clipped gradient norm."""

    optim_recipe = {"recipe": "bert-finetune"}

    def __init__(self) -> None:
        super().__init__()
        self.bert = TinyBert()
        self.lr_log: list[float] = []
        self.clipped_norms: list[float] = []

    def training_step(self, batch, batch_idx):
        ids, labels = batch
        self.lr_log.append(self.trainer.optimizers[0].param_groups[0]["lr"])
        return 1e4 * nn.functional.cross_entropy(self.bert(ids), labels)  # gradients far above the clipping norm

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        self.clipped_norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())


@pytest.mark.trainer
def test_bert_finetune_trains_with_its_schedule_and_clipping(tmp_path):
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randint(32, (20, 16), generator=g), torch.randint(2, (20,), generator=g))
    model = BertClassifier()
    trainer(tmp_path, max_epochs=2).fit(model, DataLoader(data, batch_size=4))  # 5 batches x 2 epochs = 10 steps
    # 10% warm-up = 1 step at the peak, then linear to 0 at the last step
    assert model.lr_log == pytest.approx([5e-5 * (9 - k) / 9 for k in range(10)], rel=1e-12, abs=1e-20)
    assert model.clipped_norms == pytest.approx([1.0] * 10, rel=1e-4)  # global norm clipped at 1.0


class ViTClassifier(OptimRecipeMixin, pl.LightningModule):
    """TinyViT fine-tuned by ``mae-finetune``, the global batch read from the Trainer; records the lr per group."""

    optim_recipe = get_recipe("mae-finetune")

    def __init__(self) -> None:
        super().__init__()
        self.vit = TinyViT()
        self.lr_log: list[dict[str, float]] = []

    def training_step(self, batch, batch_idx):
        images, labels = batch
        self.lr_log.append({g["name"]: g["lr"] for g in self.trainer.optimizers[0].param_groups})
        return nn.functional.cross_entropy(self.vit(images), labels)


@pytest.mark.trainer
def test_mae_finetune_reads_the_global_batch_and_decays_by_layer(tmp_path, caplog):
    data = TensorDataset(torch.randn(8, 3, 8, 8), torch.randint(4, (8,)))
    model = ViTClassifier()
    with caplog.at_level(logging.INFO, logger="lightning_optim_recipes"):
        trainer(tmp_path, max_epochs=6, accumulate_grad_batches=2).fit(model, DataLoader(data, batch_size=4))
    lr = 1e-3 * 8 / 256  # batch 4 x 1 device x 2 accumulated
    assert ("recipe 'mae-finetune': lr = 0.001 x 8 / 256 = 3.125e-05 (global batch 8, 4 per device x 1 device x 2"
            " accumulated)") in caplog.text
    at_step = model.lr_log[1::2]  # one optimizer step per epoch, its lr seen on the second batch of the window
    for layer in range(4):
        scale = 0.75 ** (3 - layer)
        seen = [lrs[f"layer_{layer}"] for lrs in at_step]
        assert seen == pytest.approx([lr * scale * (k + 1) / 5 for k in range(5)] + [1e-6 * scale], rel=1e-12)


class ResNetClassifier(OptimRecipeMixin, pl.LightningModule):
    optim_recipe = get_recipe("resnet-imagenet", scheduler={"warmup_epochs": 1})

    def __init__(self) -> None:
        super().__init__()
        self.net = TinyResNet()
        self.lr_log: list[float] = []

    def training_step(self, batch, batch_idx):
        images, labels = batch
        self.lr_log.append(self.trainer.optimizers[0].param_groups[0]["lr"])
        return nn.functional.cross_entropy(self.net(images), labels)


@pytest.mark.trainer
def test_resnet_imagenet_scales_its_milestones_to_the_run(tmp_path, caplog):
    data = TensorDataset(torch.randn(8, 3, 8, 8), torch.randint(4, (8,)))
    model = ResNetClassifier()
    with caplog.at_level(logging.INFO, logger="lightning_optim_recipes"):
        trainer(tmp_path, max_epochs=9).fit(model, DataLoader(data, batch_size=8))  # 1 step per epoch
    peak = 0.1 * 8 / 256
    # milestones 30, 60, 80 of 90 epochs -> epochs 3, 6 and 8 of 9
    assert model.lr_log == pytest.approx([peak] * 3 + [peak / 10] * 3 + [peak / 100] * 2 + [peak / 1000], rel=1e-12)
    assert "milestones [30, 60, 80] of 90 epochs scaled to this run: optimizer steps [3, 6, 8]" in caplog.text


class EncoderDecoderRegressor(OptimRecipeMixin, TinyRegressor):
    optim_recipe = get_recipe("encoder-decoder", scheduler={"milestones": [2]})


@pytest.mark.trainer
def test_encoder_decoder_trains_with_two_lrs_halved_at_the_milestone(tmp_path):
    model = EncoderDecoderRegressor()
    fit = trainer(tmp_path, max_epochs=3)
    fit.fit(model, loader(2))
    full, half = (1e-4, 1e-4, 1e-3, 1e-3), (5e-5, 5e-5, 5e-4, 5e-4)
    assert [lrs for _, _, lrs in model.lr_log] == [full] * 4 + [half] * 2
    assert [(g["name"], g["weight_decay"]) for g in fit.optimizers[0].param_groups] == [
        ("encoder", 1e-6), ("encoder/no_decay", 0.0), ("decoder", 1e-6), ("decoder/no_decay", 0.0)]


class ScheduleFreeViT(ViTClassifier):
    """TinyViT trained by ``schedulefree-adamw``: the mixin adds `ScheduleFreeModes`."""

    optim_recipe = {"recipe": "schedulefree-adamw"}


@pytest.mark.trainer
def test_schedulefree_adamw_trains_and_ends_at_its_evaluation_weights(tmp_path, caplog):
    data = TensorDataset(torch.randn(8, 3, 8, 8), torch.randint(4, (8,)))
    model = ScheduleFreeViT()
    fit = trainer(tmp_path, max_epochs=25)
    with caplog.at_level(logging.INFO, logger="lightning_optim_recipes"):
        fit.fit(model, DataLoader(data, batch_size=4))  # 2 steps per epoch, 50 in all: a warm-up over 1
    assert "AdamWScheduleFree's built-in warm-up over 1 of the run's 50 optimizer steps" in caplog.text
    assert [type(c).__name__ for c in fit.callbacks] == ["ScheduleFreeModes"]
    group = fit.optimizers[0].param_groups[0]
    assert (group["k"], group["scheduled_lr"], group["train_mode"]) == (50, 0.0025, False)


# -------------------------------------------------------------------------------------------- YAML / LightningCLI


CONFIG = str(EXAMPLES / "recipe_catalogue.yaml")


@pytest.mark.trainer
def test_a_catalogue_recipe_by_name_from_yaml(tmp_path):
    """``optim_recipe: {recipe: bert-finetune, lr: 3.0e-5}`` in examples/recipe_catalogue.yaml."""
    cli = run_cli(tmp_path, "--config", CONFIG)
    assert cli.model.hparams["optim_recipe"] == {"recipe": "bert-finetune", "lr": 3e-5}
    optimizer = cli.trainer.optimizers[0]
    assert type(optimizer) is torch.optim.AdamW
    assert (optimizer.defaults["betas"], optimizer.defaults["eps"]) == ((0.9, 0.999), 1e-6)
    assert [(g["name"], g["weight_decay"], len(g["params"])) for g in optimizer.param_groups] == [
        ("decay", 0.01, 2),  # encoder.0.weight, decoder.weight
        ("no_decay", 0.0, 4),  # encoder.0.bias, the LayerNorm's weight and bias, decoder.bias
    ]
    # 2 epochs x 5 batches: 1 warm-up step at the peak 3e-5, then linear to 0 at the 10th
    assert [lrs["decay"] for _, _, lrs in cli.model.lr_log] == pytest.approx([3e-5 * (9 - k) / 9 for k in range(10)],
                                                                       rel=1e-12, abs=1e-20)


@pytest.mark.trainer
def test_the_command_line_changes_the_catalogue_recipe(tmp_path):
    cli = run_cli(tmp_path, "--config", CONFIG, "--model.optim_recipe.lr", "2.0e-5", "--trainer.max_epochs", "1")
    assert cli.model.hparams["optim_recipe"] == {"recipe": "bert-finetune", "lr": 2e-5}
    assert cli.model.lr_log[0][2]["decay"] == 2e-5


@pytest.mark.trainer
@pytest.mark.skipif(NAMESPACE != "pytorch_lightning", reason="the example script imports pytorch_lightning")
def test_the_example_script_runs_on_the_catalogue_config(tmp_path):
    cli = run_example_cli(tmp_path, CONFIG)
    assert cli.trainer.global_step == 10 and cli.trainer.optimizers[0].param_groups[0]["lr"] == 0.0


# ------------------------------------------------------------------------------------------------------------ Muon


def test_muon_moonlight_hyperparameters():
    module, (config,) = build("muon-moonlight")
    optimizer = config["optimizer"]
    muon, adamw = optimizer.parts
    assert (type(optimizer).__name__, type(muon), type(adamw)) == ("HybridOptimizer", torch.optim.Muon,
                                                                  torch.optim.AdamW)
    # Liu et al. 2025, Eq. 4: the update scaled by 0.2 sqrt(max(A, B)); Section 3.3: lr 4.2e-4, weight decay 0.1,
    # shared by both; Section 2.2: N = 5, momentum 0.95; footnote 1: Nesterov
    assert {k: muon.defaults[k] for k in ("lr", "weight_decay", "momentum", "nesterov", "ns_steps", "adjust_lr_fn")} \
        == {"lr": 4.2e-4, "weight_decay": 0.1, "momentum": 0.95, "nesterov": True, "ns_steps": 5,
            "adjust_lr_fn": "match_rms_adamw"}
    # the reference code's AdamW: betas (0.9, 0.95), eps 1e-8, the same lr and decay on everything
    assert (adamw.defaults["lr"], adamw.defaults["betas"], adamw.defaults["eps"]) == (4.2e-4, (0.9, 0.95), 1e-8)
    assert all(g["weight_decay"] == 0.1 for g in optimizer.param_groups)
    names = {id(p): n for n, p in module.named_parameters()}
    held = {g["name"]: [names[id(p)] for p in g["params"]] for g in optimizer.param_groups}
    # the reference code's split: `p.ndim >= 2 and "embed_tokens" not in name and "lm_head" not in name` to Muon
    assert held["hidden"] == [n for n, p in module.named_parameters() if p.ndim >= 2 and "wte" not in n
                              and "wpe" not in n]
    assert held["embedding"] == ["transformer.wte.weight", "transformer.wpe.weight"]  # wte is the tied lm_head
    assert set(held["scalar"]) == {n for n, p in module.named_parameters() if p.ndim < 2}


def test_muon_moonlight_schedule():
    preview = describe_recipe("muon-moonlight").preview_schedule()  # 10 epochs x 1000 batches = 10000 steps
    for group in ("hidden", "embedding", "scalar"):
        lr = lrs(preview, group)
        assert lr[1999] == max(lr) == 4.2e-4 and lr[1998] < 4.2e-4  # 2k warm-up steps
        assert lr[0] == pytest.approx(4.2e-4 / 2000, rel=1e-12)  # the warm-up's step k at (k + 1) / 2000
        assert lr[-1] == pytest.approx(4.2e-5, rel=1e-12)  # "decays from 4.2e-4 to 4.2e-5 in a cosine style"
    assert {r["name"] for r in preview} == {"lr-Muon/hidden", "lr-AdamW/embedding", "lr-AdamW/scalar"}


def test_modded_nanogpt_hyperparameters():
    module, (config,) = build("modded-nanogpt")
    optimizer = config["optimizer"]
    muon, adam = optimizer.parts
    assert (type(muon), type(adam)) == (torch.optim.Muon, torch.optim.Adam)
    # train_gpt.py:540 lr=0.05, momentum=0.95; :158 nesterov=True, ns_steps=5; :193 sqrt(max(1, rows/cols))
    assert {k: muon.defaults[k] for k in ("lr", "weight_decay", "momentum", "nesterov", "ns_steps", "adjust_lr_fn")} \
        == {"lr": 0.05, "weight_decay": 0.0, "momentum": 0.95, "nesterov": True, "ns_steps": 5,
            "adjust_lr_fn": "original"}
    # :539 betas=(0.8, 0.95), eps=1e-10; :536 head 0.008, embeddings 0.6, scalars 0.04
    assert (adam.defaults["betas"], adam.defaults["eps"], adam.defaults["weight_decay"]) == ((0.8, 0.95), 1e-10, 0.0)
    names = {id(p): n for n, p in module.named_parameters()}
    held = {g["name"]: [names[id(p)] for p in g["params"]] for g in adam.param_groups}
    assert {g["name"]: g["initial_lr"] for g in adam.param_groups} == {
        "embedding": 0.6, "scalar/no_decay": 0.04, "head": 0.008}
    assert held["head"] == ["lm_head.weight"]
    assert held["embedding"] == ["transformer.wte.weight", "transformer.wpe.weight"]
    assert set(held["scalar/no_decay"]) == {n for n, p in module.named_parameters() if p.ndim < 2}  # :532


def test_modded_nanogpt_schedule():
    preview = describe_recipe("modded-nanogpt").preview_schedule()  # 10 epochs x 177 batches = 1770 steps
    muon = lrs(preview, "hidden")
    assert len(muon) == 1770
    # get_lr (train_gpt.py:544-548): held for the first 60% (1062 steps), then linear over the last 40% (708 steps)
    # to 0.1, the decay's step i at 1 - 0.9 (i + 1) / 708 (the record's multiplier one step later)
    assert muon[:1062] == [0.05] * 1062
    assert muon[1062] == pytest.approx(0.05 * (1 - 0.9 / 708), rel=1e-12)
    assert muon[1062 + 354] == pytest.approx(0.05 * (1 - 0.9 * 355 / 708), rel=1e-12)
    assert muon[-1] == pytest.approx(0.005, rel=1e-12)
    assert lrs(preview, "embedding")[-1] == pytest.approx(0.06, rel=1e-12)  # one multiplier for both optimizers


class SpeedrunGPT(OptimRecipeMixin, pl.LightningModule):
    """UntiedGPT trained by ``modded-nanogpt``; records each step's lr of every group."""

    optim_recipe = {"recipe": "modded-nanogpt"}

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.gpt = describe_recipe("modded-nanogpt").module()
        self.lr_log: list[dict[str, float]] = []

    def training_step(self, batch, batch_idx):
        (ids,) = batch
        self.lr_log.append({g["name"]: g["lr"] for g in self.trainer.optimizers[0].param_groups})
        return nn.functional.cross_entropy(self.gpt(ids[:, :-1]).reshape(-1, 32), ids[:, 1:].reshape(-1))


@pytest.mark.trainer
def test_modded_nanogpt_trains_muon_and_adam_as_one_optimizer(tmp_path):
    ids = torch.randint(32, (10 * 4, 9), generator=torch.Generator().manual_seed(0))
    model = SpeedrunGPT()
    fit = trainer(tmp_path, max_epochs=1)
    fit.fit(model, DataLoader(TensorDataset(ids), batch_size=4))  # 10 steps: held for 6, the last 4 decaying
    optimizer = fit.optimizers[0]
    assert [type(p).__name__ for p in optimizer.parts] == ["Muon", "Adam"]
    multipliers = [1.0] * 6 + [0.775, 0.55, 0.325, 0.1]  # the decay's step i at 1 - 0.9 (i + 1) / 4
    assert [lrs["hidden"] for lrs in model.lr_log] == pytest.approx([0.05 * m for m in multipliers], rel=1e-12)
    assert [lrs["embedding"] for lrs in model.lr_log] == pytest.approx([0.6 * m for m in multipliers], rel=1e-12)
    assert [lrs["head"] for lrs in model.lr_log] == pytest.approx([0.008 * m for m in multipliers], rel=1e-12)
