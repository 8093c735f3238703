"""Muon's split where names mislead (a block's own ``output`` layer, a 2-D position table), and the first things a new
user writes with Muon, each explained before training with its exact text beside the corrected module that trains
silently: torch's Muon over every parameter, ``[Muon, AdamW]`` under automatic optimization, a hand-built
`HybridOptimizer` whose Muon holds the embedding and the head, a recipe naming Muon without ``hybrid``, lr warnings
written in the form the user wrote, and an lr change to a Muon recipe moving both parts."""

from __future__ import annotations

import warnings

import pytest
import torch
from helpers import loader, pl, trainer
from torch import nn

from lightning_optim_recipes import (
    ConfigureOptimizersCheck,
    HybridOptimizer,
    OptimRecipeMixin,
    RecipeError,
    RecipeWarning,
    configure_from_recipe,
    get_recipe,
    hybrid_optimizer,
    muon_split,
)
from lightning_optim_recipes.catalogue._examples import TinyBert, TinyGPT, TinyLlama, TinyViT

VOCAB, CTX, DIM = 16, 6, 8


class Block(nn.Module):
    """A block with Hugging Face's names: its second Linear is called ``output``."""

    def __init__(self) -> None:
        super().__init__()
        self.intermediate = nn.Linear(DIM, 2 * DIM)
        self.output = nn.Linear(2 * DIM, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.output(torch.relu(self.intermediate(x)))


class BlocksLM(pl.LightningModule):
    """The counter-example: ``blocks.N.output`` in every block, the logits from ``proj``, a 2-D learned position table
    ``pos_emb``. `make` (the module -> what ``configure_optimizers`` returns) is the variant under test."""

    def __init__(self, make=None) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM)
        self.pos_emb = nn.Parameter(torch.zeros(CTX, DIM))
        self.blocks = nn.ModuleList([Block(), Block()])
        self.norm = nn.LayerNorm(DIM)
        self.proj = nn.Linear(DIM, VOCAB)
        self.make = make
        self.stepped: list[str] = []

    def training_step(self, batch, batch_idx):
        ids = torch.randint(0, VOCAB, (4, CTX + 1), generator=torch.Generator().manual_seed(batch_idx))
        x = self.embed(ids[:, :-1]) + self.pos_emb
        for block in self.blocks:
            x = block(x)
        return nn.functional.cross_entropy(self.proj(self.norm(x)).flatten(0, 1), ids[:, 1:].flatten())

    def configure_optimizers(self):
        optimizer = self.make(self)
        for part in getattr(optimizer, "parts", ()):
            part.register_step_post_hook(lambda opt, args, kwargs: self.stepped.append(type(opt).__name__))
        return optimizer


class RecipeLM(OptimRecipeMixin, BlocksLM):
    def __init__(self, recipe) -> None:
        super().__init__()
        self.optim_recipe = recipe

    def configure_optimizers(self):
        return OptimRecipeMixin.configure_optimizers(self)


def fit(tmp_path, model, batches=2, callbacks=()):
    run = trainer(tmp_path, max_epochs=1, callbacks=list(callbacks))
    run.fit(model, loader(batches))
    return run


def fit_silently(tmp_path, model, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)  # correct code: no warning
        return fit(tmp_path, model, **options)


def said(record):
    """The `RecipeWarning`s' messages among what `pytest.warns` recorded (Lightning's own are not the subject)."""
    return [str(w.message) for w in record if issubclass(w.category, RecipeWarning)]


def rows(split):
    return [(r.name, r.optimizer, r.group, r.why) for r in split.rows]


HIDDEN = "2-D weight of a hidden layer"


# ------------------------------------------------------------------------------------------------------ the split


def test_a_blocks_own_output_layer_is_hidden_and_the_layer_sized_as_the_vocabulary_is_the_head():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)  # decided by structure: nothing to warn about
        split = muon_split(BlocksLM())
    head = "head (16 outputs, the rows of embedding 'embed')"
    assert rows(split) == [
        ("pos_emb", "AdamW", "embedding", "position embedding (named 'pos_emb')"),
        ("embed.weight", "AdamW", "embedding", "embedding (Embedding)"),
        ("blocks.0.intermediate.weight", "Muon", "hidden", HIDDEN),
        ("blocks.0.intermediate.bias", "AdamW", "scalar/no_decay", "bias"),
        ("blocks.0.output.weight", "Muon", "hidden", HIDDEN),
        ("blocks.0.output.bias", "AdamW", "scalar/no_decay", "bias"),
        ("blocks.1.intermediate.weight", "Muon", "hidden", HIDDEN),
        ("blocks.1.intermediate.bias", "AdamW", "scalar/no_decay", "bias"),
        ("blocks.1.output.weight", "Muon", "hidden", HIDDEN),
        ("blocks.1.output.bias", "AdamW", "scalar/no_decay", "bias"),
        ("norm.weight", "AdamW", "scalar/no_decay", "norm layer (LayerNorm)"),
        ("norm.bias", "AdamW", "scalar/no_decay", "norm layer (LayerNorm)"),
        ("proj.weight", "AdamW", "head", head),
        ("proj.bias", "AdamW", "head/no_decay", head),
    ]
    assert split.doubt is None


class BlocksRegressor(nn.Module):
    """The same blocks without an embedding: nothing says which layer is the head but the order of registration."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(4, DIM)
        self.blocks = nn.ModuleList([Block(), Block()])
        self.proj = nn.Linear(DIM, 1)


GUESSED = (
    "`muon_split` cannot tell the output head of BlocksRegressor for sure: 'blocks.0.output' and 'blocks.1.output' are"
    " named like a head but inside repeated blocks, so they train with Muon as hidden layers, and no layer is tied to"
    " an embedding or sized as its vocabulary; it took 'proj', the last layer registered, as the head. If another"
    " layer produces the logits, name it: head='blocks.1.output' (the head trains with AdamW, beside Muon); to train"
    " 'blocks.*.output' with AdamW as well, add overrides={'blocks.*.output': 'adamw'}. Naming the head"
    " (head='proj' if it is right) silences this, as does `warnings.filterwarnings('ignore', '.*cannot tell the"
    " output head')`."
)


def test_a_head_taken_by_order_beside_layers_named_like_a_head_is_said_and_naming_it_silences():
    with pytest.warns(RecipeWarning) as record:
        split = muon_split(BlocksRegressor())
    assert [str(w.message) for w in record] == [GUESSED] and split.doubt == GUESSED
    assert record[0].filename == __file__  # points at the user's line
    guessed = "head (the last layer registered, 'proj': name another with head=)"
    assert [r for r in rows(split) if r[0].startswith(("proj", "blocks.0.output"))] == [
        ("blocks.0.output.weight", "Muon", "hidden", HIDDEN), ("blocks.0.output.bias", "AdamW", "scalar/no_decay", "bias"),
        ("proj.weight", "AdamW", "head", guessed), ("proj.bias", "AdamW", "head/no_decay", guessed)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        named = muon_split(BlocksRegressor(), head="proj")
        moved = muon_split(BlocksRegressor(), head="proj", overrides={"blocks.*.output": "adamw"})
    assert [r[:3] for r in rows(named)] == [r[:3] for r in rows(split)] and named.doubt is None
    assert [(r.name, r.optimizer) for r in moved.rows if r.name.endswith("output.weight")] == [
        ("blocks.0.output.weight", "AdamW"), ("blocks.1.output.weight", "AdamW")]


def test_several_layers_sized_as_the_vocabulary_with_another_registered_last_are_said():
    model = nn.Module()
    model.embed = nn.Embedding(VOCAB, DIM)
    model.to_logits, model.aux, model.gate = nn.Linear(DIM, VOCAB), nn.Linear(DIM, VOCAB), nn.Linear(DIM, DIM)
    with pytest.warns(RecipeWarning) as record:
        split = muon_split(model)
    assert [str(w.message) for w in record] == [
        "`muon_split` cannot tell the output head of Module for sure: 'to_logits' also has 16 outputs, the rows of"
        " embedding 'embed', and 'gate' is registered last; it took 'aux', the last of those sized as the"
        " vocabulary, and trains 'to_logits' with Muon. If another layer produces the logits, name it:"
        " head='to_logits' (the head trains with AdamW, beside Muon); to train 'to_logits' with AdamW as well, add"
        " overrides={'to_logits': 'adamw'}. Naming the head (head='aux' if it is right) silences this, as does"
        " `warnings.filterwarnings('ignore', '.*cannot tell the output head')`."]
    assert [(r.name, r.group) for r in split.rows if r.name.endswith("weight")] == [
        ("embed.weight", "embedding"), ("to_logits.weight", "hidden"), ("aux.weight", "head"), ("gate.weight", "hidden")]
    # a hidden layer as wide as the vocabulary (a tiny model's 2 x 8 = 16) before the head registered last: no doubt
    model.gate = nn.Linear(DIM, VOCAB)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        assert [(r.name, r.group) for r in muon_split(model).rows if r.name.endswith("weight")] == [
            ("embed.weight", "embedding"), ("to_logits.weight", "hidden"), ("aux.weight", "hidden"),
            ("gate.weight", "head")]


def test_position_tables_are_found_by_their_names():
    model = nn.Module()
    for name in ("pos_emb", "pos_embedding", "position_embedding", "positional_embedding", "posemb", "compose_emb",
                 "emb_pos"):
        model.register_parameter(name, nn.Parameter(torch.zeros(CTX, DIM)))
    model.head = nn.Linear(DIM, 2)
    assert [r[:3] for r in rows(muon_split(model))] == [
        ("pos_emb", "AdamW", "embedding"), ("pos_embedding", "AdamW", "embedding"),
        ("position_embedding", "AdamW", "embedding"), ("positional_embedding", "AdamW", "embedding"),
        ("posemb", "AdamW", "embedding"),
        ("compose_emb", "Muon", "hidden"), ("emb_pos", "Muon", "hidden"),  # names that only contain the letters
        ("head.weight", "AdamW", "head"), ("head.bias", "AdamW", "head/no_decay")]


def boxed_head() -> nn.Module:
    """A body and a head box in a Sequential: every layer is under an index, the head named ``head`` the last."""
    box = nn.Module()
    box.head = nn.Linear(8, 2)
    return nn.Sequential(nn.Sequential(nn.Linear(4, 8), nn.ReLU()), box)


@pytest.mark.parametrize(("model", "head"), [
    (TinyGPT(), []),  # nanoGPT: lm_head tied to wte, one parameter in the embedding group
    (TinyGPT(tied=False), ["lm_head.weight"]),
    (TinyViT(), ["head.weight", "head.bias"]),  # timm: blocks.N.attn.proj, mlp.fc2 are hidden
    (TinyBert(), ["classifier.weight", "classifier.bias"]),  # Hugging Face: encoder.layer.N.output.dense is hidden
    (TinyLlama(), ["output.weight"]),  # Meta's: a top-level `output`
    (boxed_head(), ["1.head.weight", "1.head.bias"]),  # under an index, but the last registered
], ids=["gpt-tied", "gpt-untied", "vit", "bert", "llama", "sequential"])
def test_the_common_shapes_find_their_head_without_a_warning(model, head):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        split = muon_split(model)
    assert [r.name for r in split.rows if r.group.startswith("head")] == head
    assert all(r.group == "hidden" for r in split.side("Muon"))


# ------------------------------------------------------------------------------- mistakes under a Trainer


ALL_TO_MUON = (
    "torch.optim.Muon takes only 2-D parameters, and `configure_optimizers` gave it 7 parameters of another shape:"
    " 'blocks.0.intermediate.bias' (16), 'blocks.0.output.bias' (8), 'blocks.1.intermediate.bias' (16),"
    " 'blocks.1.output.bias' (8) and 3 more. Muon is for the hidden layers' 2-D weights; the embeddings, the output"
    " head, norms and biases train with AdamW beside it, in one optimizer: return `hybrid_optimizer(self,"
    " muon={'lr': 0.02}, adamw={'lr': 3e-4})`, split by `muon_split(self)` (its `.table()` shows which parameter"
    " each trains), or `HybridOptimizer([torch.optim.Muon(split.muon_params, ...),"
    " torch.optim.AdamW(split.adamw_params, ...)])` with `split = muon_split(self)`."
)


class AllToMuonMixin(OptimRecipeMixin, BlocksLM):
    def configure_optimizers(self):
        return torch.optim.Muon(self.parameters(), lr=0.02)


@pytest.mark.trainer
@pytest.mark.parametrize("under", ["ConfigureOptimizersCheck", "OptimRecipeMixin"])
def test_torch_muon_over_every_parameter_names_hybrid_optimizer(tmp_path, under):
    if under == "OptimRecipeMixin":
        model, callbacks = AllToMuonMixin(), []
    else:
        model, callbacks = BlocksLM(lambda m: torch.optim.Muon(m.parameters(), lr=0.02)), [ConfigureOptimizersCheck()]
    run = trainer(tmp_path, max_epochs=1, callbacks=callbacks)
    with pytest.raises(RecipeError) as info:
        run.fit(model, loader(2))
    assert str(info.value) == ALL_TO_MUON and run.global_step == 0
    assert isinstance(info.value.__cause__, ValueError) and str(info.value.__cause__) == (
        "Muon only supports 2D parameters whereas we found a parameter with size: torch.Size([16])")
    corrected = BlocksLM(lambda m: hybrid_optimizer(m, muon={"lr": 0.02}, adamw={"lr": 3e-4}))
    assert fit_silently(tmp_path, corrected, callbacks=[ConfigureOptimizersCheck()]).global_step == 2
    assert corrected.stepped == ["Muon", "AdamW"] * 2


def every_2d_to_muon(m):
    two_d = [p for p in m.parameters() if p.ndim == 2]
    rest = [p for p in m.parameters() if p.ndim != 2]
    return HybridOptimizer([torch.optim.Muon(two_d, lr=0.02), torch.optim.AdamW(rest, lr=3e-4)])


HAND_BUILT = (
    "A hand-built Muon trains 3 parameters that are not a hidden layer's weight: 'pos_emb', position embedding (named"
    " 'pos_emb'); 'embed.weight', embedding (Embedding); 'proj.weight', head (16 outputs, the rows of embedding"
    " 'embed'). Muon is for the 2-D weights of hidden layers; embeddings, the output head and anything tied to them"
    " train with AdamW (Jordan et al. 2024; Liu et al. 2025): `hybrid_optimizer` refuses the same split"
    " (overrides={'pos_emb': 'muon', 'embed': 'muon', 'proj': 'muon'}). Give them to the AdamW part"
    " (`muon_split(self).muon_params` are the parameters for Muon, `.table()` says why), or build the optimizer with"
    " `hybrid_optimizer(self, muon={...}, adamw={...})`. If it is deliberate, silence this with"
    " `warnings.filterwarnings('ignore', '.*hand-built Muon trains')`."
)


@pytest.mark.trainer
def test_a_hand_built_hybrid_with_the_embedding_and_head_in_muon_warns_naming_them(tmp_path):
    model = BlocksLM(every_2d_to_muon)
    with pytest.warns(RecipeWarning) as record:
        fit(tmp_path, model, callbacks=[ConfigureOptimizersCheck()])
    assert said(record) == [HAND_BUILT]
    assert [w.filename for w in record if w.category is RecipeWarning] == [__file__]  # configure_optimizers
    with warnings.catch_warnings():  # deliberate: the advised filter silences it
        warnings.simplefilter("error", RecipeWarning)
        warnings.filterwarnings("ignore", ".*hand-built Muon trains")
        fit(tmp_path, BlocksLM(every_2d_to_muon), callbacks=[ConfigureOptimizersCheck()])

    def by_the_split(m):
        split = muon_split(m)
        return HybridOptimizer([torch.optim.Muon(split.muon_params, lr=0.02),
                                torch.optim.AdamW(split.adamw_params, lr=3e-4)])

    corrected = BlocksLM(by_the_split)
    fit_silently(tmp_path, corrected, callbacks=[ConfigureOptimizersCheck()])
    assert corrected.stepped == ["Muon", "AdamW"] * 2
    # hybrid_optimizer's own split is the user's choice, even one that puts the last layer in Muon (head=None)
    fit_silently(tmp_path, BlocksLM(lambda m: hybrid_optimizer(m, muon={"lr": 0.02}, adamw={"lr": 3e-4}, head=None)),
                 callbacks=[ConfigureOptimizersCheck()])


def muon_and_adamw(m):
    split = muon_split(m)
    return [torch.optim.Muon(split.muon_params, lr=0.02), torch.optim.AdamW(split.adamw_params, lr=3e-4)]


@pytest.mark.trainer
def test_muon_and_adamw_returned_apart_name_hybrid_optimizer_first(tmp_path):
    run = trainer(tmp_path, max_epochs=1, callbacks=[ConfigureOptimizersCheck()])
    with pytest.raises(RecipeError) as info:
        run.fit(BlocksLM(muon_and_adamw), loader(2))
    assert str(info.value) == (
        "`configure_optimizers` returned 2 optimizers (Muon and AdamW), but Lightning 2.x steps one optimizer under"
        " automatic optimization. Muon beside AdamW is one optimizer: return `hybrid_optimizer(self, muon={'lr':"
        " 0.02}, adamw={'lr': 0.0003})`, which splits the parameters between them (`muon_split`) and steps both on"
        " every batch, or wrap the ones you built: `HybridOptimizer([muon, adamw])`. (`AlternatingOptimizersMixin`"
        " would step each only on its own batches; under manual optimization you step them yourself.)")
    assert run.global_step == 0
    corrected = BlocksLM(lambda m: HybridOptimizer(muon_and_adamw(m)))
    fit_silently(tmp_path, corrected, callbacks=[ConfigureOptimizersCheck()])
    assert corrected.stepped == ["Muon", "AdamW"] * 2


@pytest.mark.trainer
def test_a_recipe_naming_muon_without_hybrid_shows_the_hybrid_key(tmp_path):
    run = trainer(tmp_path, max_epochs=1)
    with pytest.raises(RecipeError) as info:
        run.fit(RecipeLM({"optimizer": "Muon", "lr": 0.02}), loader(2))
    assert str(info.value) == (
        "The recipe names Muon without 'hybrid': torch.optim.Muon takes only 2-D parameters and refuses"
        " 'blocks.0.intermediate.bias', 'blocks.0.output.bias', 'blocks.1.intermediate.bias' and 4 more; the"
        " embeddings, the output head, norms and biases need another optimizer beside it. Add 'hybrid', the optimizer"
        " of everything but the hidden layers' 2-D weights (split by `muon_split`), e.g. {'optimizer': 'Muon', 'lr':"
        " 0.02, 'hybrid': {'optimizer': 'AdamW', 'lr': 3e-4}}.")
    assert isinstance(info.value.__cause__, ValueError) and run.global_step == 0
    corrected = RecipeLM({"optimizer": "Muon", "lr": 0.02, "hybrid": {"optimizer": "AdamW", "lr": 3e-4}})
    assert fit_silently(tmp_path, corrected).global_step == 2


ADAMW_SIZED = (
    "Muon's lr is 0.0003 with adjust_lr_fn=None (torch's default, 'original'): an AdamW-sized lr. Under 'original',"
    " torch's Muon orthogonalizes each update (its singular values near 1) and scales it only by sqrt(max(1,"
    " rows/cols)), so the lrs that train are about 0.02 (Jordan et al.'s default) to 0.05 (the modded-nanogpt"
    " record), 66.7x to 167x this one. {} to keep an AdamW lr for both parts (Liu et al. 2025). If it is deliberate,"
    " silence this with `warnings.filterwarnings('ignore', '.*AdamW-sized lr', RecipeWarning)`."
)
MUON_SIZED_ADAMW = (
    "The AdamW part's lr is 0.02: a Muon-sized lr (Muon's is 0.02). An AdamW step moves every element by about its"
    " lr, so its usual lrs are 1e-4 to 3e-3; at 0.02 the embeddings, head and norms it trains take steps 20x those of"
    " lr 1e-3. {}. If it is deliberate, silence this with `warnings.filterwarnings('ignore', '.*Muon-sized lr',"
    " RecipeWarning)`."
)


@pytest.mark.trainer
@pytest.mark.parametrize(("muon_lr", "adamw_lr", "message"), [
    (3e-4, 3e-4, ADAMW_SIZED.format(
        "Raise Muon's lr (e.g. 'lr': 0.02 in the recipe), or set 'adjust_lr_fn': 'match_rms_adamw' in its"
        " 'optimizer_kwargs'")),
    (0.02, 0.02, MUON_SIZED_ADAMW.format(
        "Give the AdamW part its own lr (e.g. 'hybrid': {'lr': 3e-4} in the recipe), or set a group's lr on purpose"
        " with 'hybrid': {'groups': {'embedding': {'lr': ...}}}")),
])
def test_a_recipes_lr_warnings_advise_the_recipes_keys(tmp_path, muon_lr, adamw_lr, message):
    with pytest.warns(RecipeWarning) as record:
        fit(tmp_path, RecipeLM({"optimizer": "Muon", "lr": muon_lr, "hybrid": {"lr": adamw_lr}}))
    assert said(record) == [message]


@pytest.mark.trainer
@pytest.mark.parametrize(("muon_lr", "adamw_lr", "message"), [
    (3e-4, 3e-4, ADAMW_SIZED.format(
        "Raise Muon's lr (e.g. torch.optim.Muon(params, lr=0.02)), or pass adjust_lr_fn='match_rms_adamw'")),
    (0.02, 0.02, MUON_SIZED_ADAMW.format(
        "Give the AdamW part its own lr (e.g. torch.optim.AdamW(params, lr=3e-4)), or set a group's lr on purpose"
        " with a param group {'params': [...], 'lr': ...}")),
])
def test_a_hand_built_hybrids_lr_warnings_advise_the_constructors(tmp_path, muon_lr, adamw_lr, message):
    def make(m):
        split = muon_split(m)
        return HybridOptimizer([torch.optim.Muon(split.muon_params, lr=muon_lr),
                                torch.optim.AdamW(split.adamw_params, lr=adamw_lr)])

    with pytest.warns(RecipeWarning) as record:
        fit(tmp_path, BlocksLM(make))
    assert said(record) == [message]


# ------------------------------------------------------------------------------------- an lr change to a recipe


@pytest.mark.trainer
def test_an_lr_given_to_a_muon_recipe_moves_both_parts_their_ratio_kept(tmp_path):
    recipe = get_recipe("muon-moonlight", lr=1e-3, scheduler={"warmup_steps": 1})
    assert (recipe["lr"], recipe["hybrid"]["lr"]) == (1e-3, 1e-3)  # one lr for both parts, as Liu et al.
    model = RecipeLM(recipe)
    run = fit(tmp_path, model, batches=2)
    assert {g["name"]: g["initial_lr"] for g in run.optimizers[0].param_groups} == {
        "hidden": 1e-3, "embedding": 1e-3, "scalar": 1e-3, "head": 1e-3}
    # modded-nanogpt's Adam lrs follow Muon's 0.05 -> 0.1 (x2); what the change gives itself is kept
    speedrun = get_recipe("modded-nanogpt", lr=0.1)
    assert (speedrun["hybrid"]["lr"], speedrun["hybrid"]["groups"]) == (
        0.016, {"embedding": {"lr": 1.2}, "scalar": {"lr": 0.08}})
    kept = get_recipe("modded-nanogpt", lr=0.1, hybrid={"lr": 0.01, "groups": {"embedding": {"lr": 0.5}}})
    assert (kept["hybrid"]["lr"], kept["hybrid"]["groups"]) == (0.01, {"embedding": {"lr": 0.5}, "scalar": {"lr": 0.08}})
    assert get_recipe("muon-moonlight")["hybrid"]["lr"] == 4.2e-4  # unchanged without an lr
    # the YAML form, {recipe: muon-moonlight, lr: ...}, the same
    optimizer = configure_from_recipe(BlocksLM(), {"recipe": "muon-moonlight", "lr": 2e-3,
                                                   "scheduler": None})["optimizer"]
    assert [g["lr"] for g in optimizer.param_groups] == [2e-3] * 4
