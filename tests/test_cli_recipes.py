"""The command line's catalogue: `python -m lightning_optim_recipes recipes [NAME]`, called through `main(argv)`.

The page of `deit` is written out in full: the citation, the recipe, every number with its source's words, the
choices, the lr it scaled for the previewed batch (0.0005 x 1024 / 512 = 0.001) and the schedule: a linear warm-up
over 5 epochs of 10 steps to the peak at step 49, then a cosine over steps 49..199 to min_lr 1e-5, i.e.
lr(k) = 1e-5 + (1e-3 - 1e-5) * (1 + cos(pi * (k - 49) / 150)) / 2: 0.0009999 at step 50, 0.0009892 at 59.
"""

from __future__ import annotations

import runpy
import sys

import pytest

from lightning_optim_recipes.__main__ import main

LISTING = """\
14 recipes (python -m lightning_optim_recipes recipes NAME shows one):
  bert-finetune       BERT fine-tuning: AdamW 5e-5 (of 5e-5, 3e-5, 2e-5), decay 0.01 but not on biases and LayerNorm, 10% warm-up, linear to 0
  dcgan               DCGAN: Adam 2e-4, beta1 0.5, for both networks, one discriminator step per generator step
  deit                DeiT: AdamW 5e-4 x batch/512, weight decay 0.05, 5 warm-up epochs, cosine to 1e-5
  encoder-decoder     Two networks, two learning rates: Adam, encoder 1e-4, decoder 1e-3, weight decay 1e-6 only where it belongs, halved after epoch 2000
  gpt-pretrain        GPT-3 pre-training: AdamW 6e-4, betas (0.9, 0.95), eps 1e-8, decay 0.1, clip 1.0, warm-up, cosine to 10% over 260/300 of the run, then held
  llama-pretrain      LLaMA pre-training: AdamW 3e-4, betas (0.9, 0.95), decay 0.1, clip 1.0, 2,000 warm-up steps, cosine to 10%
  mae-finetune        MAE fine-tuning: AdamW, base lr 1e-3 x batch/256, decay 0.05, layer-wise lr decay 0.75, 5 warm-up epochs, cosine
  modded-nanogpt      The NanoGPT speedrun record #21 (2.933 min): Muon lr 0.05, momentum 0.95, Nesterov; Adam betas (0.8, 0.95), eps 1e-10, head 0.008, embeddings 0.6, scalars 0.04; no warm-up, the last 40% decaying to 10%
  muon-moonlight      Moonlight: Muon with its update RMS matched to AdamW's (adjust_lr_fn 'match_rms_adamw'), so one lr 4.2e-4 and weight decay 0.1 for Muon and AdamW (betas (0.9, 0.95)); 2,000 warm-up steps, cosine to 10%
  resnet-imagenet     ResNet on ImageNet (Goyal et al.): SGD Nesterov 0.9, lr 0.1 x batch/256, decay 1e-4 (none on BN), 5 warm-up epochs, / 10 at epochs 30, 60, 80 of 90
  schedulefree-adamw  Schedule-free AdamW: lr 0.0025, betas (0.9, 0.999), no scheduler: a built-in warm-up over 2% of the run, then the iterates averaged
  ttur                Two time-scale update rule as SAGAN uses it: Adam betas (0, 0.9), critic lr 4e-4, generator lr 1e-4, 1:1
  wgan-gp             WGAN with gradient penalty: Adam 1e-4, betas (0, 0.9), 5 critic steps per generator step, penalty 10
  wsd                 Warmup-stable-decay (constant lr + cooldown): AdamW 8e-4, betas (0.9, 0.95), decay 0.1, clip 1.0, 300 warm-up steps, the peak held, a (1-sqrt) cooldown to 0 over the last 20% of the run
"""

DEIT_PAGE = """\
deit: DeiT: AdamW 5e-4 x batch/512, weight decay 0.05, 5 warm-up epochs, cosine to 1e-5
source: Touvron, Cord, Douze, Massa, Sablayrolles, Jégou (2021), "Training data-efficient image transformers &
  distillation through attention", ICML 2021, PMLR 139 (arXiv:2012.12877); Table 9 (DeiT-B column) and Section 6
  (Regularization & Optimizers)

recipe (optim_recipe: {recipe: deit} starts from it):
  optimizer: AdamW
  lr: 0.0005
  lr_scaling: {base_batch_size: 512}
  weight_decay: 0.05
  no_decay: default
  scheduler: {type: warmup_cosine, warmup_epochs: 5, min_lr: 1.0e-05}

numbers, with where the source states them and its words:
  - AdamW, lr 5e-4 x batch / 512, cosine, weight decay 0.05, 5 warm-up epochs
    Table 9, DeiT-B column (epochs, batch size, optimizer, lr, lr decay, weight decay, warm-up epochs): "300 / 1024 /
      AdamW / 0.0005 × batchsize/512 / cosine / 0.05 / 5"
  - the lr scaled by the global batch with base 512 (lr_scaling base_batch_size 512)
    Section 6, Regularization & Optimizers: "We scale the learning rate according to the batch size with the formula:
      lrscaled = lr/512 × batchsize, similarly to Goyal et al. [19] except that we use 512 instead of 256 as the base
      value."
  - no gradient clipping
    Table 9, DeiT-B column (label smoothing, dropout, stochastic depth, repeated augmentation, gradient clipping):
      "0.1 / ✗ / 0.1 / ✓ / ✗"

choices, where the source leaves a value open:
  - min lr 1e-5, absolute (not scaled by the batch): DeiT's code (facebookresearch/deit main.py:81 `--min-lr
    default=1e-5`; main.py:349-351 scales only the lr); the paper's cosine leaves its floor open. A global batch under
    11 makes the lr itself smaller than 1e-5: set scheduler={'min_lr': ...} then.
  - betas (0.9, 0.999) and eps 1e-8: torch's defaults, which DeiT's code keeps (main.py:58 `--opt-eps default=1e-8`,
    main.py:60 `--opt-betas default=None`).
  - The warm-up and the cosine step every optimizer step (warmup_cosine); the warm-up runs step k at (k + 1) / warm-up
    steps of the peak and the cosine spans the steps after it (scheduler={'warmup_start': 'zero'} starts at 0
    instead). DeiT's code steps timm's CosineLRScheduler once per epoch, warms up from --warmup-lr 1e-6 (main.py:79)
    and runs the cosine over all 300 epochs.
  - No decay on biases, norm layers, 1-D parameters, pos_embed and cls_token (the default rule): what timm 0.3.2's
    add_weight_decay, pinned by DeiT, exempts for a ViT. The default rule also exempts a distilled model's dist_token,
    which DeiT's own training decayed (timm 0.3.2's no_weight_decay() lists only pos_embed and cls_token).
  - The global batch (per-device batch x devices x accumulation) is read from the Trainer's DataLoader, or given as
    the recipe's batch_size; the engine logs the lr it computed.
  - The other Table 9 settings (300 epochs, batch 1024, label smoothing 0.1, stochastic depth 0.1, repeated
    augmentation, ...) belong to the run, the data and the model, not to the optimizer recipe.

notes:
  - DeiT's code reaches the peak later than this recipe: it calls `lr_scheduler.step(epoch)` after each epoch
    (facebookresearch/deit 7e160fe main.py:420,432), and timm 0.3.2's CosineLRScheduler sets the warm-up's start at
    construction (`super().update_groups(self.warmup_lr_init)`) and gives t < warmup_t `self.warmup_lr_init + t * s`
    with s = (lr - 1e-6) / 5. So epochs 0 and 1 both train at 1e-6, epoch e (2 to 5) at 1e-6 + (e - 1) / 5 of the way
    to the peak, and only epoch 6 at the peak (the cosine at t = 5 of 300); at the end of epoch 4, where this recipe's
    per-step warm-up reaches the peak, the code trains at 60% of it. The recipe keeps the paper's words (a 5-epoch
    warm-up) and a per-step warm-up.
  - To decay a distilled model's dist_token as DeiT's own training did, list the position/token names to exempt
    without it: get_recipe('deit', no_decay={'positions': ['pos_embed', 'cls_token']}) (Hugging Face's DeiT names:
    ['position_embeddings', 'cls_token']). Biases, norm layers and 1-D parameters stay exempt, and a model whose own
    no_weight_decay() lists dist_token keeps it exempt.

schedule preview: 20 epochs x 10 batches on TinyViT, global batch 1024 (--batch-size)
  recipe 'deit': lr = 0.0005 x 1024 / 512 = 0.001 (global batch 1024, given as batch_size)

deit: 20 epochs x 10 batches -> 200 optimizer steps
learning rate of each param group, logged as named below: first -> last optimizer step of each epoch
epoch  steps    lr-AdamW/no_decay       lr-AdamW/decay
0      0-9      2e-05 -> 0.0002         2e-05 -> 0.0002
1      10-19    0.00022 -> 0.0004       0.00022 -> 0.0004
2      20-29    0.00042 -> 0.0006       0.00042 -> 0.0006
3      30-39    0.00062 -> 0.0008       0.00062 -> 0.0008
4      40-49    0.00082 -> 0.001        0.00082 -> 0.001
5      50-59    0.0009999 -> 0.0009892  0.0009999 -> 0.0009892
6      60-69    0.0009869 -> 0.0009572  0.0009869 -> 0.0009572
7      70-79    0.0009529 -> 0.0009055  0.0009529 -> 0.0009055
8      80-89    0.0008993 -> 0.0008362  0.0008993 -> 0.0008362
9      90-99    0.0008284 -> 0.0007525  0.0008284 -> 0.0007525
10     100-109  0.0007435 -> 0.000658   0.0007435 -> 0.000658
11     110-119  0.0006481 -> 0.0005567  0.0006481 -> 0.0005567
12     120-129  0.0005464 -> 0.0004533  0.0005464 -> 0.0004533
13     130-139  0.000443 -> 0.000352    0.000443 -> 0.000352
14     140-149  0.0003422 -> 0.0002575  0.0003422 -> 0.0002575
15     150-159  0.0002486 -> 0.0001738  0.0002486 -> 0.0001738
16     160-169  0.0001661 -> 0.0001045  0.0001661 -> 0.0001045
17     170-179  9.853e-05 -> 5.279e-05  9.853e-05 -> 5.279e-05
18     180-189  4.868e-05 -> 2.082e-05  4.868e-05 -> 2.082e-05
19     190-199  1.877e-05 -> 1e-05      1.877e-05 -> 1e-05
markers: step 49 warmup end
"""


def test_recipes_lists_the_catalogue(capsys):
    assert main(["recipes"]) == 0
    assert capsys.readouterr().out == LISTING


def test_recipes_name_shows_the_page_with_its_preview(capsys):
    assert main(["recipes", "deit"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == DEIT_PAGE.splitlines()
    assert captured.err == ""  # what the engine computed is on the page, not on stderr


def test_the_batch_size_rescales_the_lr_and_the_plot_is_written(tmp_path, capsys):
    out = tmp_path / "plots" / "deit.png"
    assert main(["recipes", "deit", "--batch-size", "256", "--epochs", "10", "--steps-per-epoch", "6",
                 "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = lines.index("schedule preview: 10 epochs x 6 batches on TinyViT, global batch 256 (--batch-size)")
    assert lines[at + 1] == "  recipe 'deit': lr = 0.0005 x 256 / 512 = 0.00025 (global batch 256, given as batch_size)"
    assert lines[at + 3] == "deit: 10 epochs x 6 batches -> 60 optimizer steps"
    # 5 warm-up epochs of 6 steps: step k at 0.00025 x (k + 1) / 30, the peak at step 29, the last of epoch 4
    assert lines[at + 10].split() == ["4", "24-29", "0.0002083", "->", "0.00025", "0.0002083", "->", "0.00025"]
    assert lines[-2:] == ["markers: step 29 warmup end", f"plot written to {out}"]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_gan_recipe_shows_each_optimizer_by_its_role(capsys):
    assert main(["recipes", "wgan-gp", "--epochs", "1", "--steps-per-epoch", "12"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].split() == ["epoch", "steps", "lr-Adam/critic/decay", "lr-Adam/critic/no_decay",
                                 "lr-Adam-1/generator/decay", "lr-Adam-1/generator/no_decay"]
    assert lines[-1].split() == ["0", "0-11", "0.0001", "0.0001", "0.0001", "0.0001"]
    assert "  alternation: {critic: 5, generator: 1}" in lines and "  values: {gradient_penalty: 10.0}" in lines


@pytest.mark.parametrize(("argv", "error"), [
    (["recipes", "bert-finetun"], "error: Unknown recipe 'bert-finetun': did you mean 'bert-finetune'? the catalogue"
     " has 'bert-finetune', 'dcgan', 'deit', 'encoder-decoder', 'gpt-pretrain', 'llama-pretrain', 'mae-finetune',"
     " 'modded-nanogpt', 'muon-moonlight', 'resnet-imagenet', 'schedulefree-adamw', 'ttur', 'wgan-gp', 'wsd'"
     " (`list_recipes()`, or `python -m lightning_optim_recipes recipes`).\n"),
    (["recipes", "xyz"], "error: Unknown recipe 'xyz': the catalogue has 'bert-finetune', 'dcgan', 'deit',"
     " 'encoder-decoder', 'gpt-pretrain', 'llama-pretrain', 'mae-finetune', 'modded-nanogpt', 'muon-moonlight',"
     " 'resnet-imagenet', 'schedulefree-adamw', 'ttur', 'wgan-gp', 'wsd' (`list_recipes()`, or `python -m"
     " lightning_optim_recipes recipes`).\n"),
    (["recipes", "--out", "lr.png"], "error: --out previews one recipe: name it, e.g. `recipes deit --out ...`.\n"),
])
def test_errors_exit_with_1_and_a_message(argv, error, capsys):
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.err == error and captured.out == ""


def test_usage_errors_exit_with_2(capsys):
    assert main(["recipes", "deit", "--batch-size", "0"]) == 2
    assert "--batch-size: must be a positive int, got '0'" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:'lightning_optim_recipes.__main__' found in sys.modules:RuntimeWarning")
def test_python_dash_m_lists_them(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["lightning_optim_recipes", "recipes"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("lightning_optim_recipes", run_name="__main__", alter_sys=True)
    assert exit_.value.code == 0
    assert capsys.readouterr().out == LISTING
