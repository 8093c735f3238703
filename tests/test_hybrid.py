"""Muon beside AdamW in one Lightning module: `muon_split`'s table, `HybridOptimizer` under a real Trainer on a
GPT-shaped module whose embedding and head are tied (one forward and backward per batch, both parts stepping every
accumulated step, clipping over both, a scheduler moving both parts' lrs with their ratio kept, a mid-epoch
checkpoint resuming to the uninterrupted run's weights bit for bit, the logged names, ``bf16-mixed``, ``lr_find``,
``resume="recipe"``), and the errors and warnings with their exact text."""

from __future__ import annotations

import copy
import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from helpers import Recorder, pl, trainer
from torch import nn

from lightning_optim_recipes import (
    HybridOptimizer,
    LearningRateLogger,
    OptimRecipeMixin,
    RecipeError,
    RecipeWarning,
    SchedulerCadenceCheck,
    hybrid_optimizer,
    muon_split,
    preview_schedule,
    warmup_linear,
)
from lightning_optim_recipes.catalogue._examples import TinyGPT
from lightning_optim_recipes.hybrid import FlatMuon

VOCAB = 32
MUON_LR, ADAMW_LR = 0.02, 3e-4


class GPT(pl.LightningModule):
    """TinyGPT (lm_head tied to the token embedding) on tokens that depend only on (epoch, batch index), so a run
    resumed mid-epoch sees the numbers of an uninterrupted one. Records every forward, every backward (a hook on
    the position embedding) and, through torch's step hooks, each part's steps with the lrs of every group."""

    def __init__(self, accumulate_scheduler: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.gpt = TinyGPT()
        self.forwards = 0
        self.backwards = 0
        self.steps: list[tuple[str, int, tuple[float, ...]]] = []
        self.norms: list[float] = []
        self.gpt.transformer.wpe.weight.register_hook(self._count_backward)

    def _count_backward(self, grad: torch.Tensor) -> None:
        self.backwards += 1

    def training_step(self, batch, batch_idx):
        self.forwards += 1
        g = torch.Generator().manual_seed(1000 * self.current_epoch + batch_idx)
        ids = torch.randint(0, VOCAB, (4, 9), generator=g)
        logits = self.gpt(ids[:, :-1])
        return F.cross_entropy(logits.reshape(-1, VOCAB), ids[:, 1:].reshape(-1))

    def configure_optimizers(self):
        optimizer = hybrid_optimizer(self, muon={"lr": MUON_LR, "weight_decay": 0.01},
                                     adamw={"lr": ADAMW_LR, "weight_decay": 0.01, "betas": (0.9, 0.95)})
        for part in optimizer.parts:
            part.register_step_pre_hook(self._record_step)
        return {"optimizer": optimizer, "lr_scheduler": warmup_linear(optimizer, warmup_steps=2, trainer=self.trainer)}

    def _record_step(self, part, args, kwargs) -> None:
        if isinstance(part, torch.optim.Muon):  # once per step, after clipping: the norm over both parts
            every = [p.grad for p in self.parameters() if p.grad is not None]
            self.norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in every]))))
        self.steps.append((type(part).__name__, self.forwards, tuple(g["lr"] for g in part.param_groups)))


def tokens(batches: int):
    """A loader of `batches` batches (the module makes its own tokens from the batch index)."""
    from helpers import loader

    return loader(batches)


def fit(tmp_path, model, batches=6, ckpt_path=None, **options):
    run = trainer(tmp_path, max_epochs=options.pop("max_epochs", 1), **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)  # correct code: no warning
        run.fit(model, tokens(batches), ckpt_path=ckpt_path)
    return run


# ------------------------------------------------------------------------------------------------------ the split


GPT_TABLE = """\
parameter                               shape  optimizer  group            why
gpt.transformer.wte.weight              32x8   AdamW      embedding        embedding (Embedding), tied to the head gpt.lm_head.weight
gpt.transformer.wpe.weight              16x8   AdamW      embedding        embedding (Embedding)
gpt.transformer.h.0.ln_1.weight         8      AdamW      scalar/no_decay  norm layer (LayerNorm)
gpt.transformer.h.0.ln_1.bias           8      AdamW      scalar/no_decay  norm layer (LayerNorm)
gpt.transformer.h.0.ln_2.weight         8      AdamW      scalar/no_decay  norm layer (LayerNorm)
gpt.transformer.h.0.ln_2.bias           8      AdamW      scalar/no_decay  norm layer (LayerNorm)
gpt.transformer.h.0.attn.c_attn.weight  24x8   Muon       hidden           2-D weight of a hidden layer
gpt.transformer.h.0.attn.c_attn.bias    24     AdamW      scalar/no_decay  bias
gpt.transformer.h.0.attn.c_proj.weight  8x8    Muon       hidden           2-D weight of a hidden layer
gpt.transformer.h.0.attn.c_proj.bias    8      AdamW      scalar/no_decay  bias
gpt.transformer.h.0.mlp.c_fc.weight     32x8   Muon       hidden           2-D weight of a hidden layer
gpt.transformer.h.0.mlp.c_fc.bias       32     AdamW      scalar/no_decay  bias
gpt.transformer.h.0.mlp.c_proj.weight   8x32   Muon       hidden           2-D weight of a hidden layer
gpt.transformer.h.0.mlp.c_proj.bias     8      AdamW      scalar/no_decay  bias"""


def test_the_split_of_a_gpt_with_a_tied_embedding_and_head():
    model = GPT()
    split = muon_split(model)
    lines = split.table().splitlines()
    assert "\n".join(lines[:15]) == GPT_TABLE  # block 0; block 1 the same; then ln_f
    assert lines[15:] == [line.replace(".h.0.", ".h.1.") for line in lines[3:15]] + [
        "gpt.transformer.ln_f.weight             8      AdamW      scalar/no_decay  norm layer (LayerNorm)",
        "gpt.transformer.ln_f.bias               8      AdamW      scalar/no_decay  norm layer (LayerNorm)"]
    # the tied embedding/head is one parameter, counted once, under its first name
    assert len(split.rows) == len(list(model.parameters())) == 28
    assert split.rows[0].also == ("gpt.lm_head.weight",)
    assert [id(p) for p in split.muon_params + split.adamw_params] != [] and len(
        {id(p) for p in split.muon_params + split.adamw_params}) == 28
    assert [(g["name"], len(g["params"]), g["weight_decay"]) for g in split.muon_groups(0.1)] == [("hidden", 8, 0.1)]
    assert [(g["name"], len(g["params"]), g["weight_decay"]) for g in split.adamw_groups(0.1)] == [
        ("embedding", 2, 0.1), ("scalar/no_decay", 18, 0.0)]


def test_the_head_is_found_by_name_by_tie_or_as_the_last_layer():
    untied = TinyGPT(tied=False)
    head = [row for row in muon_split(untied).rows if row.name == "lm_head.weight"]
    assert [(r.optimizer, r.group, r.why) for r in head] == [("AdamW", "head", "head (named 'lm_head')")]
    mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    rows = {r.name: (r.optimizer, r.group, r.why) for r in muon_split(mlp).rows}
    assert rows["0.weight"] == ("Muon", "hidden", "2-D weight of a hidden layer")
    assert rows["4.weight"] == ("AdamW", "head", "head (the last layer registered, '4': name another with head=)")
    assert rows["4.bias"] == ("AdamW", "head/no_decay", "head (the last layer registered, '4': name another with head=)")
    rows = {r.name: (r.optimizer, r.why) for r in muon_split(mlp, head="2").rows}
    assert rows["2.weight"] == ("AdamW", "head (head='2')") and rows["4.weight"][0] == "Muon"
    assert all(r.optimizer == "Muon" for r in muon_split(mlp, head=None).rows if r.name.endswith("weight"))


def test_conv_kernels_and_stacked_weights_go_to_adamw_unless_conv_view():
    model = nn.Module()
    model.conv = nn.Conv2d(2, 4, 3)
    model.experts = nn.Parameter(torch.zeros(3, 4, 4))
    model.head = nn.Linear(4, 2)
    rows = {r.name: (r.optimizer, r.group, r.why) for r in muon_split(model).rows}
    assert rows["conv.weight"] == ("AdamW", "tensor", "ndim>2: conv kernel (conv_view=True runs Muon on its 2-D view)")
    assert rows["experts"] == ("AdamW", "tensor",
                               "ndim>2: stacked weights (torch's Muon orthogonalizes 2-D matrices only)")
    rows = {r.name: (r.optimizer, r.why) for r in muon_split(model, conv_view=True).rows}
    assert rows["conv.weight"] == ("Muon", "conv kernel, Muon on its 2-D view 4x18 (conv_view)")
    assert rows["experts"][0] == "AdamW"
    optimizer = hybrid_optimizer(model, muon={"lr": 0.02}, adamw={"lr": 1e-3}, conv_view=True)
    assert [type(p).__name__ for p in optimizer.parts] == ["FlatMuon", "AdamW"]


def test_flat_muon_steps_a_conv_kernel_as_torch_muon_steps_its_2d_view():
    conv = nn.Conv2d(2, 4, 3)
    matrix = nn.Parameter(conv.weight.detach().reshape(4, 18).clone())
    flat, reference = FlatMuon([conv.weight], lr=0.02, weight_decay=0.1), torch.optim.Muon([matrix], lr=0.02,
                                                                                             weight_decay=0.1)
    for seed in range(3):
        g = torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(seed))
        conv.weight.grad, matrix.grad = g.clone(), g.reshape(4, 18).clone()
        flat.step()
        reference.step()
    assert torch.equal(conv.weight.detach().reshape(4, 18), matrix.detach())
    assert torch.equal(flat.state[conv.weight]["momentum_buffer"], reference.state[matrix]["momentum_buffer"])


@pytest.mark.parametrize(("overrides", "options", "message"), [
    ({"gpt.transformer.h.0.ln_1": "muon"}, {},
     re.escape("`overrides` pattern 'gpt.transformer.h.0.ln_1' puts 'gpt.transformer.h.0.ln_1.weight' (shape (8,))"
               " in Muon, but torch.optim.Muon takes only 2-D parameters (it would raise `ValueError: Muon only"
               " supports 2D parameters whereas we found a parameter with size: torch.Size([8])`). Map"
               " 'gpt.transformer.h.0.ln_1' to 'adamw' or remove it from `overrides`.")),
    ({"gpt.transformer.wte": "muon"}, {},
     re.escape("`overrides` pattern 'gpt.transformer.wte' puts 'gpt.transformer.wte.weight' (shape (32, 8)) in"
               " Muon, but it is not a hidden layer's weight: embedding (Embedding), tied to the head"
               " gpt.lm_head.weight. Muon is for the 2-D weights of hidden layers; embeddings, the output head and"
               " anything tied to them train with AdamW (Jordan et al. 2024; Liu et al. 2025). Map"
               " 'gpt.transformer.wte' to 'adamw' or remove it from `overrides`.")),
    ({"gpt.lm_head.weight": "muon"}, {}, r"puts 'gpt.transformer.wte.weight' \(shape \(32, 8\)\) in Muon, but it is"
                                         r" not a hidden layer's weight: embedding"),
    ({"gpt.transformer.h.*.attn": "sgd"}, {}, re.escape("`overrides['gpt.transformer.h.*.attn']` must be 'muon' or"
                                                        " 'adamw', got 'sgd'.")),
    ({"gpt.blocks": "adamw"}, {}, re.escape("`overrides` pattern 'gpt.blocks' matches no trainable parameter of GPT.")),
    ({}, {"head": "decoder"}, re.escape("`head` names 'decoder', but GPT has no such submodule (its children:"
                                        " 'gpt'). Give the path of the layer that produces the logits, e.g."
                                        " head='lm_head'.")),
])
def test_split_errors_name_the_parameter_its_shape_and_the_fix(overrides, options, message):
    with pytest.raises(RecipeError, match=message):
        muon_split(GPT(), overrides=overrides, **options)


def test_a_conv_kernel_overridden_to_muon_names_conv_view():
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(RecipeError, match=re.escape(
            "`overrides` pattern '0' puts '0.weight' (shape (4, 2, 3, 3)) in Muon, but torch.optim.Muon takes only"
            " 2-D parameters (it would raise `ValueError: Muon only supports 2D parameters whereas we found a"
            " parameter with size: torch.Size([4, 2, 3, 3])`). Map '0' to 'adamw' or remove it from `overrides`, or"
            " pass conv_view=True to run Muon on the kernel's 2-D view.")):
        muon_split(model, overrides={"0": "muon"})


def test_overrides_move_hidden_weights_to_adamw():
    split = muon_split(GPT(), overrides={"gpt.transformer.h.*.mlp": "adamw"})
    moved = [(r.name, r.optimizer, r.group, r.why) for r in split.rows if ".mlp.c_fc.weight" in r.name]
    assert moved == [(f"gpt.transformer.h.{i}.mlp.c_fc.weight", "AdamW", "hidden",
                      "override 'gpt.transformer.h.*.mlp' (else: 2-D weight of a hidden layer)") for i in (0, 1)]
    assert [g["name"] for g in hybrid_optimizer(GPT(), muon={"lr": 0.02}, adamw={"lr": 3e-4}, split=split)
            .param_groups] == ["hidden", "embedding", "scalar/no_decay", "hidden"]


# --------------------------------------------------------------------------------------- the lr-size warnings


@pytest.mark.parametrize(("muon", "adamw", "message"), [
    ({"lr": 3e-4}, {"lr": 3e-4},
     "Muon's lr is 0.0003 with adjust_lr_fn=None (torch's default, 'original'): an AdamW-sized lr. Under 'original',"
     " torch's Muon orthogonalizes each update (its singular values near 1) and scales it only by sqrt(max(1,"
     " rows/cols)), so the lrs that train are about 0.02 (Jordan et al.'s default) to 0.05 (the modded-nanogpt"
     " record), 66.7x to 167x this one. Raise Muon's lr (e.g. muon={'lr': 0.02}), or pass"
     " adjust_lr_fn='match_rms_adamw' to keep an AdamW lr for both parts (Liu et al. 2025). If it is deliberate,"
     " silence this with `warnings.filterwarnings('ignore', '.*AdamW-sized lr', RecipeWarning)`."),
    ({"lr": 0.02}, {"lr": 0.02},
     "The AdamW part's lr is 0.02: a Muon-sized lr (Muon's is 0.02). An AdamW step moves every element by about its"
     " lr, so its usual lrs are 1e-4 to 3e-3; at 0.02 the embeddings, head and norms it trains take steps 20x those"
     " of lr 1e-3. Give the AdamW part its own lr (e.g. adamw={'lr': 3e-4}), or set a group's lr on purpose with"
     " adamw={'groups': {'embedding': {'lr': ...}}}. If it is deliberate, silence this with"
     " `warnings.filterwarnings('ignore', '.*Muon-sized lr', RecipeWarning)`."),
    ({"lr": 0.02, "adjust_lr_fn": "match_rms_adamw"}, {"lr": 3e-4},
     "Muon's lr is 0.02 with adjust_lr_fn='match_rms_adamw': a Muon-sized lr under a rule that sizes it as AdamW's."
     " 'match_rms_adamw' multiplies it by 0.2 x sqrt(max(rows, cols)) (Liu et al. 2025, Eq. 4), 1.13 for this"
     " model's largest matrix, so each step moves those weights as an AdamW step of lr 0.02 would. Use an AdamW lr"
     " (e.g. muon={'lr': 4.2e-4}, Moonlight's), or adjust_lr_fn='original' to keep a Muon lr. If it is deliberate,"
     " silence this with `warnings.filterwarnings('ignore', '.*Muon-sized lr', RecipeWarning)`."),
])
def test_an_lr_sized_for_the_other_optimizer_warns_with_the_numbers(muon, adamw, message):
    with pytest.warns(RecipeWarning) as record:
        hybrid_optimizer(GPT(), muon=muon, adamw=adamw)
    assert [str(w.message) for w in record] == [message]
    assert record[0].filename == __file__  # points at the user's line


@pytest.mark.parametrize(("muon", "adamw"), [
    ({"lr": 0.02}, {"lr": 3e-4}),  # Jordan et al.'s Muon lr, a usual AdamW lr
    ({"lr": 4.2e-4, "adjust_lr_fn": "match_rms_adamw"}, {"lr": 4.2e-4}),  # Moonlight: one AdamW lr for both
    ({"lr": 0.05}, {"lr": 0.008, "groups": {"embedding": {"lr": 0.6}}}),  # modded-nanogpt's, an embedding lr set
])
def test_well_sized_lrs_do_not_warn(muon, adamw):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        hybrid_optimizer(GPT(), muon=muon, adamw=adamw)


# ------------------------------------------------------------------------------------- HybridOptimizer itself


def test_param_groups_are_the_parts_dicts_and_state_dict_round_trips_exactly():
    model = GPT()
    optimizer = hybrid_optimizer(model, muon={"lr": MUON_LR}, adamw={"lr": ADAMW_LR})
    muon, adamw = optimizer.parts
    assert optimizer.param_groups == muon.param_groups + adamw.param_groups
    assert all(a is b for a, b in zip(optimizer.param_groups, muon.param_groups + adamw.param_groups))

    def train(opt, model, steps):
        for step in range(steps):
            g = torch.Generator().manual_seed(step)
            ids = torch.randint(0, VOCAB, (2, 9), generator=g)
            opt.zero_grad()
            opt.step(lambda: F.cross_entropy(model.gpt(ids[:, :-1]).reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
                     .backward())

    train(optimizer, model, 3)
    saved, weights = copy.deepcopy(optimizer.state_dict()), copy.deepcopy(model.state_dict())
    clone = copy.deepcopy(optimizer)  # a copy over copied parts (no second lr check)
    assert clone.parts[0] is not muon and str(clone.state_dict()) == str(saved)
    assert saved["parts"] == [{"class": "torch.optim.Muon", "groups": 1},
                              {"class": "torch.optim.adamw.AdamW", "groups": 2}]
    assert [g["params"] for g in saved["param_groups"]] == [list(range(8)), [8, 9], list(range(10, 28))]
    assert sorted(saved["state"]) == list(range(28))
    train(optimizer, model, 2)
    other = GPT()
    other.load_state_dict(weights)
    resumed = hybrid_optimizer(other, muon={"lr": MUON_LR}, adamw={"lr": ADAMW_LR})
    resumed.load_state_dict(saved)
    train(resumed, other, 2)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), other.parameters()))
    with pytest.raises(ValueError, match=re.escape("loaded state dict has 3 param groups ([1, 2] per part), this"
                                                   " HybridOptimizer has 4 ([1, 3] per part)")):
        hybrid_optimizer(GPT(), muon={"lr": MUON_LR}, adamw={"lr": ADAMW_LR},
                         overrides={"gpt.transformer.h.0.mlp": "adamw"}).load_state_dict(saved)


def test_a_parameter_in_two_parts_and_add_param_group_are_errors():
    shared = nn.Parameter(torch.zeros(2, 2))
    with pytest.raises(RecipeError, match=re.escape(
            "Parts 0 (Muon) and 1 (AdamW) of the HybridOptimizer both hold a parameter of shape (2, 2): each step"
            " would update it twice.")):
        HybridOptimizer([torch.optim.Muon([shared], lr=0.02), torch.optim.AdamW([shared], lr=1e-3)])
    optimizer = hybrid_optimizer(GPT(), muon={"lr": MUON_LR}, adamw={"lr": ADAMW_LR})
    with pytest.raises(RecipeError, match=r"cannot tell which of its parts a new param group belongs to: add it to"):
        optimizer.add_param_group({"params": [nn.Parameter(torch.zeros(1))]})
    optimizer.parts[1].add_param_group({"params": [nn.Parameter(torch.zeros(1))], "name": "added"})
    assert optimizer.param_groups[-1]["name"] == "added"  # the hybrid's groups follow its parts'


# ------------------------------------------------------------------------------------------- under a Trainer


@pytest.mark.trainer
def test_one_forward_and_backward_per_batch_both_parts_step_every_accumulated_step_clipping_both(tmp_path):
    model = GPT()
    unclipped = []
    model.on_before_optimizer_step = lambda optimizer: unclipped.append(float(torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(p.grad) for p in model.parameters()]))))
    run = fit(tmp_path, model, batches=6, accumulate_grad_batches=2, gradient_clip_val=0.05)
    assert (model.forwards, model.backwards, run.global_step) == (6, 6, 3)
    # each part steps once per accumulated step (after batches 2, 4 and 6), Muon first
    assert [(name, forwards) for name, forwards, _ in model.steps] == [
        ("Muon", 2), ("AdamW", 2), ("Muon", 4), ("AdamW", 4), ("Muon", 6), ("AdamW", 6)]
    # Lightning clips the global norm over both parts' parameters before they step
    assert all(norm > 0.05 for norm in unclipped) and model.norms == pytest.approx([0.05] * 3, rel=1e-5)


@pytest.mark.trainer
def test_a_scheduler_moves_both_parts_lrs_with_their_ratio_kept(tmp_path):
    model = GPT()
    fit(tmp_path, model, batches=6)  # warmup_linear: 2 warm-up steps of 6, then linear to 0 at the last step
    muon = [lrs for name, _, lrs in model.steps if name == "Muon"]
    adamw = [lrs for name, _, lrs in model.steps if name == "AdamW"]
    assert [lrs[0] for lrs in muon] == pytest.approx([0.01, 0.02, 0.015, 0.01, 0.005, 0.0], abs=1e-15)
    assert [lrs[0] for lrs in adamw] == [lrs[1] for lrs in adamw] == pytest.approx(
        [1.5e-4, 3e-4, 2.25e-4, 1.5e-4, 7.5e-5, 0.0], abs=1e-15)
    assert [m[0] / a[0] for m, a in zip(muon, adamw) if a[0]] == pytest.approx([0.02 / 3e-4] * 5, rel=1e-12)


class SaveAt(pl.Callback):
    def __init__(self, path, epoch: int, batch: int) -> None:
        self.path, self.at = path, (epoch, batch)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if (trainer.current_epoch, batch_idx) == self.at:
            trainer.save_checkpoint(self.path)


@pytest.mark.trainer
@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended")
def test_a_mid_epoch_checkpoint_resumes_to_the_weights_of_the_uninterrupted_run(tmp_path):
    path = tmp_path / "mid.ckpt"
    full = GPT()
    fit(tmp_path, full, batches=6, max_epochs=2, callbacks=[SaveAt(path, epoch=0, batch=2)])
    resumed = GPT()
    fit(tmp_path, resumed, batches=6, max_epochs=2, ckpt_path=str(path))
    assert [lrs for _, _, lrs in resumed.steps] == [lrs for _, _, lrs in full.steps][2 * 3:]
    for (name, a), b in zip(full.named_parameters(), resumed.parameters()):
        assert torch.equal(a, b), name
    full_state, resumed_state = full.trainer.optimizers[0].state_dict(), resumed.trainer.optimizers[0].state_dict()
    for index, entry in full_state["state"].items():
        for key, value in entry.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(resumed_state["state"][index][key])), key


@pytest.mark.trainer
def test_logged_names_say_which_optimizer_each_group_is(tmp_path):
    model, recorder = GPT(), Recorder()
    logger, check = LearningRateLogger(log_momentum=True), SchedulerCadenceCheck(print_report=False)
    fit(tmp_path, model, batches=4, logger=recorder, log_every_n_steps=1, callbacks=[logger, check])
    names = ["lr-Muon/hidden", "lr-AdamW/embedding", "lr-AdamW/scalar/no_decay"]
    assert list(logger.lrs) == names
    assert logger.lrs["lr-Muon/hidden"] == pytest.approx([0.01, 0.02, 0.01, 0.0], abs=1e-15)
    assert logger.last_momentum_values == {"lr-Muon/hidden-momentum": 0.95, "lr-AdamW/embedding-momentum": 0.9,
                                           "lr-AdamW/scalar/no_decay-momentum": 0.9}
    assert set(recorder.records[0][1]) == set(names) | {f"{n}-momentum" for n in names}
    assert check.report.table().splitlines() == [
        "Schedulers (steps of scheduler.step() over the run)",
        "logged as         scheduler  optimizer         interval  frequency  expected  actual  final lr",
        "lr-Muon+lr-AdamW  LambdaLR   lr-Muon+lr-AdamW  step      1          4         4       0, 0, 0",
        "Optimizers (optimizer steps over the run)",
        "logged as         optimizer        frequency  expected  actual",
        "lr-Muon+lr-AdamW  HybridOptimizer  -          4         4"]
    preview = preview_schedule(GPT(), max_epochs=1, steps_per_epoch=4)
    assert sorted({r["name"] for r in preview}) == sorted(names)
    assert [r["lr"] for r in preview if r["name"] == "lr-Muon/hidden"] == logger.lrs["lr-Muon/hidden"]


@pytest.mark.trainer
def test_bf16_mixed_on_cpu_steps_both_parts(tmp_path):
    model = GPT()
    before = [p.detach().clone() for p in model.parameters()]
    fit(tmp_path, model, batches=4, precision="bf16-mixed")
    assert [name for name, _, _ in model.steps] == ["Muon", "AdamW"] * 4
    assert all(not torch.equal(a, b) and torch.isfinite(b).all() for a, b in zip(before, model.parameters()))


@pytest.mark.trainer
def test_lr_find_sweeps_every_group_of_both_parts(tmp_path):
    tuner = pytest.importorskip(f"{pl.__name__}.tuner").Tuner
    model = GPT()
    run = trainer(tmp_path, max_epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        finder = tuner(run).lr_find(model, tokens(8), min_lr=1e-4, max_lr=1e-2, num_training=5, update_attr=False)
    assert len(finder.results["lr"]) == 5
    # lr_find sets every group of both parts to one lr, rising exponentially from min_lr to max_lr
    muon = [lrs[0] for name, _, lrs in model.steps if name == "Muon"]
    adamw = [lrs for name, _, lrs in model.steps if name == "AdamW"]
    assert len(muon) == 5 and muon[0] == 1e-4 and muon[-1] == pytest.approx(1e-2, rel=1e-12)
    assert all(a < b for a, b in zip(muon, muon[1:]))
    assert adamw == [(lr, lr) for lr in muon]


class RecipeGPT(OptimRecipeMixin, GPT):
    optim_recipe = {"optimizer": "Muon", "lr": 0.02, "weight_decay": 0.01,
                    "hybrid": {"optimizer": "AdamW", "lr": 3e-4, "weight_decay": 0.01},
                    "scheduler": {"type": "warmup_cosine", "warmup_steps": 2}}

    def configure_optimizers(self):
        return OptimRecipeMixin.configure_optimizers(self)

    def on_train_start(self):  # the optimizer as training starts: restored, or reconciled under resume="recipe"
        optimizer = self.trainer.optimizers[0]
        self.at_start = copy.deepcopy(optimizer.state_dict())
        for part in optimizer.parts:
            part.register_step_pre_hook(self._record_step)


@pytest.mark.trainer
def test_resume_recipe_places_the_schedule_and_keeps_both_parts_moments(tmp_path):
    first = RecipeGPT()
    fit(tmp_path, first, batches=4, max_epochs=2)
    path = tmp_path / "epoch2.ckpt"
    first.trainer.save_checkpoint(path)
    saved = torch.load(path, weights_only=False)["optimizer_states"][0]

    class Longer(RecipeGPT):
        optim_recipe = {**RecipeGPT.optim_recipe, "lr": 0.03}
        resume = "recipe"

    longer = Longer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecipeWarning)  # the resume table: what the new recipe changes
        trainer(tmp_path, max_epochs=4).fit(longer, tokens(4), ckpt_path=str(path))
    assert longer.resume_report is not None and longer.trainer.global_step == 16
    kept = longer.at_start["state"]
    for index, entry in saved["state"].items():  # every moment of both parts kept
        for key, value in entry.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(kept[index][key])), (index, key)
    # the new recipe's cosine over 16 steps, placed at step 8: (0.03 x (1 + cos(pi x 7/14)) / 2) then on
    muon = [lrs[0] for name, _, lrs in longer.steps if name == "Muon"]
    assert muon[0] == pytest.approx(0.015, rel=1e-12) and len(muon) == 8
    adamw = [lrs[0] for name, _, lrs in longer.steps if name == "AdamW"]
    assert adamw[0] == pytest.approx(1.5e-4, rel=1e-12)  # the AdamW part's 3e-4 on the same schedule


# ------------------------------------------------------------------------------------------------- the recipe


@pytest.mark.trainer
def test_a_hybrid_recipe_from_yaml_through_lightningcli(tmp_path):
    from helpers import run_cli

    config = tmp_path / "muon.yaml"
    config.write_text(
        "model:\n"
        "  optim_recipe:\n"
        "    optimizer: Muon\n"
        "    lr: 0.02\n"
        "    optimizer_kwargs: {momentum: 0.9, adjust_lr_fn: original}\n"
        "    hybrid: {optimizer: Adam, lr: 1.0e-3, optimizer_kwargs: {betas: [0, 0.99]}, groups: {head: {lr: 0.002}}}\n"
        "trainer:\n"
        "  max_epochs: 1\n"
    )
    cli = run_cli(tmp_path, "--config", str(config))
    optimizer = cli.trainer.optimizers[0]
    assert [type(p).__name__ for p in optimizer.parts] == ["Muon", "Adam"]
    assert optimizer.parts[1].defaults["betas"] == (0.0, 0.99)  # YAML's 0 made a float
    assert [(g["name"], g["lr"]) for g in optimizer.param_groups] == [
        ("hidden", 0.02), ("scalar/no_decay", 1e-3), ("head", 0.002), ("head/no_decay", 0.002)]
    assert cli.model.lr_log[0][2] == {"hidden": 0.02, "scalar/no_decay": 1e-3, "head": 0.002, "head/no_decay": 0.002}


@pytest.mark.parametrize(("recipe", "message"), [
    ({"optimizer": "Muon", "lr": 0.02, "hybrid": {"optimizer": "AdamW"}},
     "The recipe's 'hybrid' has no 'lr': add the learning rate of the optimizer beside Muon, e.g. {'hybrid':"
     " {'optimizer': 'AdamW', 'lr': 3e-4}}."),
    ({"optimizer": "Muon", "lr": 0.02, "overrides": {"gpt": {"lr": 0.1}}, "hybrid": {"lr": 3e-4}},
     "The recipe has 'overrides' beside 'hybrid', which splits the parameters by `muon_split` instead: remove"
     " 'overrides'; use 'hybrid': {'groups': {'embedding': {'lr': ...}}} for a group's options, or 'hybrid':"
     " {'overrides': {'blocks.0.attn': 'adamw'}} to move parameters between the two."),
    ({"optimizer": "Muon", "lr": 0.02, "hybrid": {"lr": 3e-4, "groups": {"embeddings": {"lr": 0.6}}}},
     "`adamw['groups']` names 'embeddings', which is not a group of the split: use one of 'hidden', 'embedding',"
     " 'head', 'scalar', 'tensor' (each covers its '/no_decay' group too)."),
    ({"optimizer": "Muon", "lr": 0.02, "hybrid": {"lr": 3e-4, "optimizer_kwargs": {"lr": 1e-3}}},
     "The recipe's 'hybrid' has 'lr' in its optimizer_kwargs: write it beside 'optimizer' in 'hybrid', {'lr': 0.001}."),
    ({"optimizer": "Muon", "lr": 0.02, "optimizer_kwargs": {"adjust_lr_fn": "rms"}, "hybrid": {"lr": 3e-4}},
     "The Muon part's options do not fit Muon: Adjust learning rate function rms is not supported. Change them in"
     " `muon=`."),
])
def test_hybrid_recipe_errors(recipe, message):
    from lightning_optim_recipes import configure_from_recipe

    with pytest.raises(RecipeError, match=re.escape(message)):
        configure_from_recipe(GPT(), recipe)
