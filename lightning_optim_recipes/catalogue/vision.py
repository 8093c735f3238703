"""Vision recipes: DeiT, ResNet on ImageNet after Goyal et al., MAE fine-tuning. Each states its lr per batch
size, so each scales it by the run's global batch (``lr_scaling``)."""

from __future__ import annotations

from lightning_optim_recipes.catalogue._examples import TinyResNet, TinyViT
from lightning_optim_recipes.catalogue._registry import RecipeEntry, Source, register

__all__: list[str] = []  # the entries are reached by name: `get_recipe("deit")`

_SCALED = (
    "The global batch (per-device batch x devices x accumulation) is read from the Trainer's DataLoader, or given"
    " as the recipe's batch_size; the engine logs the lr it computed."
)

DEIT = register(RecipeEntry(
    name="deit",
    summary="DeiT: AdamW 5e-4 x batch/512, weight decay 0.05, 5 warm-up epochs, cosine to 1e-5",
    source=Source(
        authors="Touvron, Cord, Douze, Massa, Sablayrolles, Jégou",
        year=2021,
        title="Training data-efficient image transformers & distillation through attention",
        venue="ICML 2021, PMLR 139 (arXiv:2012.12877)",
        where="Table 9 (DeiT-B column) and Section 6 (Regularization & Optimizers)",
    ),
    recipe={
        "optimizer": "AdamW",
        "lr": 5e-4,
        "lr_scaling": {"base_batch_size": 512},
        "weight_decay": 0.05,
        "no_decay": "default",
        "scheduler": {"type": "warmup_cosine", "warmup_epochs": 5, "min_lr": 1e-5},
    },
    numbers=(
        ("AdamW, lr 5e-4 x batch / 512, cosine, weight decay 0.05, 5 warm-up epochs",
         "Table 9, DeiT-B column (epochs, batch size, optimizer, lr, lr decay, weight decay, warm-up epochs)",
         "300 / 1024 / AdamW / 0.0005 × batchsize/512 / cosine / 0.05 / 5"),
        ("the lr scaled by the global batch with base 512 (lr_scaling base_batch_size 512)",
         "Section 6, Regularization & Optimizers",
         "We scale the learning rate according to the batch size with the formula: lrscaled = lr/512 × batchsize,"
         " similarly to Goyal et al. [19] except that we use 512 instead of 256 as the base value."),
        ("no gradient clipping", "Table 9, DeiT-B column (label smoothing, dropout, stochastic depth, repeated"
         " augmentation, gradient clipping)", "0.1 / ✗ / 0.1 / ✓ / ✗"),
    ),
    choices=(
        "min lr 1e-5, absolute (not scaled by the batch): DeiT's code (facebookresearch/deit main.py:81"
        " `--min-lr default=1e-5`; main.py:349-351 scales only the lr); the paper's cosine leaves its floor open."
        " A global batch under 11 makes the lr itself smaller than 1e-5: set scheduler={'min_lr': ...} then.",
        "betas (0.9, 0.999) and eps 1e-8: torch's defaults, which DeiT's code keeps (main.py:58 `--opt-eps"
        " default=1e-8`, main.py:60 `--opt-betas default=None`).",
        "The warm-up and the cosine step every optimizer step (warmup_cosine); the warm-up runs step k at (k + 1) /"
        " warm-up steps of the peak and the cosine spans the steps after it (scheduler={'warmup_start': 'zero'}"
        " starts at 0 instead). DeiT's code steps timm's CosineLRScheduler once per epoch, warms up from"
        " --warmup-lr 1e-6 (main.py:79) and runs the cosine over all 300 epochs.",
        "No decay on biases, norm layers, 1-D parameters, pos_embed and cls_token (the default rule): what timm"
        " 0.3.2's add_weight_decay, pinned by DeiT, exempts for a ViT. The default rule also exempts a distilled"
        " model's dist_token, which DeiT's own training decayed (timm 0.3.2's no_weight_decay() lists only"
        " pos_embed and cls_token).",
        _SCALED,
        "The other Table 9 settings (300 epochs, batch 1024, label smoothing 0.1, stochastic depth 0.1, repeated"
        " augmentation, ...) belong to the run, the data and the model, not to the optimizer recipe.",
    ),
    notes=(
        "DeiT's code reaches the peak later than this recipe: it calls `lr_scheduler.step(epoch)` after each epoch"
        " (facebookresearch/deit 7e160fe main.py:420,432), and timm 0.3.2's CosineLRScheduler sets the warm-up's"
        " start at construction (`super().update_groups(self.warmup_lr_init)`) and gives t < warmup_t"
        " `self.warmup_lr_init + t * s` with s = (lr - 1e-6) / 5. So epochs 0 and 1 both train at 1e-6, epoch e"
        " (2 to 5) at 1e-6 + (e - 1) / 5 of the way to the peak, and only epoch 6 at the peak (the cosine at t = 5"
        " of 300); at the end of epoch 4, where this recipe's per-step warm-up reaches the peak, the code trains at"
        " 60% of it. The recipe keeps the paper's words (a 5-epoch warm-up) and a per-step warm-up.",
        "To decay a distilled model's dist_token as DeiT's own training did, list the position/token names to"
        " exempt without it: get_recipe('deit', no_decay={'positions': ['pos_embed', 'cls_token']}) (Hugging"
        " Face's DeiT names: ['position_embeddings', 'cls_token']). Biases, norm layers and 1-D parameters stay"
        " exempt, and a model whose own no_weight_decay() lists dist_token keeps it exempt.",
    ),
    preview={"max_epochs": 20, "steps_per_epoch": 10, "batch_size": 1024},
    module=TinyViT,
))

RESNET_IMAGENET = register(RecipeEntry(
    name="resnet-imagenet",
    summary="ResNet on ImageNet (Goyal et al.): SGD Nesterov 0.9, lr 0.1 x batch/256, decay 1e-4 (none on BN),"
            " 5 warm-up epochs, / 10 at epochs 30, 60, 80 of 90",
    source=Source(
        authors="Goyal, Dollár, Girshick, Noordhuis, Wesolowski, Kyrola, Tulloch, Jia, He",
        year=2017,
        title="Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour",
        venue="arXiv:1706.02677",
        where="Section 5.1 (Experimental Settings), Section 2.2 (gradual warmup) and Section 5.2",
    ),
    also=(Source(
        authors="He, Zhang, Ren, Sun",
        year=2016,
        title="Deep Residual Learning for Image Recognition",
        venue="CVPR 2016 (arXiv:1512.03385)",
        where="Section 3.4 (Implementation)",
    ),),
    recipe={
        "optimizer": "SGD",
        "lr": 0.1,
        "lr_scaling": {"base_batch_size": 256},
        "weight_decay": 1e-4,
        "optimizer_kwargs": {"momentum": 0.9, "nesterov": True},
        "no_decay": {"replace": True, "module_types": ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm"],
                     "bias": False, "one_dim": False, "use_model_hook": False},
        "scheduler": {"type": "warmup_multistep", "warmup_epochs": 5, "warmup_start": "unscaled",
                      "milestones": [30, 60, 80], "of_epochs": 90, "gamma": 0.1},
    },
    numbers=(
        ("lr 0.1 x global batch / 256 (lr_scaling base_batch_size 256)", "Section 5.1",
         "We apply the linear scaling rule from §2.1 and use a learning rate of η = 0.1 · (kn/256) that is linear in"
         " the minibatch size kn."),
        ("lr / 10 at epochs 30, 60 and 80 of 90 (gamma 0.1, of_epochs 90)", "Section 5.1",
         "All models are trained for 90 epochs regardless of minibatch sizes. ... reduce it by 1/10 at the 30-th,"
         " 60-th, and 80-th epoch, similar to [16]."),
        ("Nesterov momentum 0.9", "Section 5.1",
         "We use Nesterov momentum [29] with m of 0.9 following [12] but note that standard momentum as was used in"
         " [16] is equally effective."),
        ("weight decay 1e-4, none on BatchNorm's γ and β", "Section 5.1",
         "We use a weight decay λ of 0.0001 and following [16] we do not apply weight decay on the learnable BN"
         " coefficients (namely, γ and β in [19])."),
        ("linear warm-up over 5 epochs, per iteration, from the lr before batch scaling (warmup_start"
         " 'unscaled': 0.1 to 0.1 x global batch / 256)", "Section 2.2 (Gradual warmup)",
         "we start from a learning rate of η and increment it by a constant amount at each iteration such that it"
         " reaches η̂ = kη after 5 epochs (results are robust to the exact duration of warmup)."),
        ("the warm-up from 0.1 to 3.2 at batch 8k", "Section 5.2",
         "gradual warmup which starts with η = 0.1 and is linearly increased to η = 3.2 over 5 epochs"),
    ),
    choices=(
        "The milestones are scaled to the run's epochs (of_epochs 90): a 9-epoch run divides the lr at epochs 3, 6"
        " and 8, and the engine logs the optimizer steps it chose. They apply at the first optimizer step of their"
        " epoch.",
        "The warm-up stays 5 epochs in any run (Section 2.2 gives epochs): a run of fewer than 16 epochs puts the"
        " first milestone inside it, which the engine refuses; shorten it with scheduler={'warmup_epochs': 1}.",
        "A global batch of 256 or less (k <= 1 in Section 2.2's kη) leaves nothing to warm up to: the warm-up then"
        " runs at the scaled lr, which the engine logs; the paper's warm-up is for larger batches.",
        "The warm-up runs step 0 at the unscaled lr η and its last step at kη (warmup_start 'unscaled'), as"
        " Section 2.2 starts it; warmup_start 'zero' would start it at 0, the library's default at kη / W.",
        "No decay on BatchNorm's weight and bias only (the rule replaces the default's): Section 5.1 exempts exactly"
        " those, so the classifier's bias is decayed.",
        _SCALED,
        "Zero-initialized last BN γ of each residual block and BN over 32 images per worker (Section 5.1) belong to"
        " the model and the data, not to the optimizer recipe. PyTorch's SGD keeps the lr outside the momentum"
        " buffer, so Section 3's momentum correction does not apply.",
    ),
    notes=(
        "Nesterov, not plain momentum: the paper's words; He et al.'s standard momentum (Section 3.4: \"a momentum"
        " of 0.9\"), which Goyal et al. call equally effective, is get_recipe('resnet-imagenet',"
        " optimizer_kwargs={'nesterov': False}).",
        "He et al.'s text does not state the BatchNorm exemption that Goyal et al. credit to it (Section 3.4 says"
        " only \"We use a weight decay of 0.0001\"); pytorch/examples' imagenet/main.py decays every parameter and"
        " has no warm-up.",
    ),
    preview={"max_epochs": 18, "steps_per_epoch": 10, "batch_size": 1024},
    module=TinyResNet,
))

MAE_FINETUNE = register(RecipeEntry(
    name="mae-finetune",
    summary="MAE fine-tuning: AdamW, base lr 1e-3 x batch/256, decay 0.05, layer-wise lr decay 0.75, 5 warm-up"
            " epochs, cosine",
    source=Source(
        authors="He, Chen, Xie, Li, Dollár, Girshick",
        year=2022,
        title="Masked Autoencoders Are Scalable Vision Learners",
        venue="CVPR 2022 (arXiv:2111.06377)",
        where="Appendix A.1, Table 9 (end-to-end fine-tuning setting)",
    ),
    recipe={
        "optimizer": "AdamW",
        "lr": 1e-3,
        "lr_scaling": {"base_batch_size": 256},
        "weight_decay": 0.05,
        "optimizer_kwargs": {"betas": [0.9, 0.999]},
        "no_decay": "default",
        "layer_decay": 0.75,
        "scheduler": {"type": "warmup_cosine", "warmup_epochs": 5, "min_lr": 1e-6},
    },
    numbers=(
        ("AdamW, beta1 0.9, beta2 0.999", "Table 9", "optimizer: AdamW / optimizer momentum: β1, β2=0.9, 0.999"),
        ("base lr 1e-3", "Table 9", "base learning rate: 1e-3"),
        ("lr = base lr x global batch / 256 (lr_scaling base_batch_size 256)", "Appendix A.1",
         "We use the linear lr scaling rule [20]: lr = base_lr × batchsize / 256."),
        ("weight decay 0.05", "Table 9", "weight decay: 0.05"),
        ("layer-wise lr decay 0.75", "Table 9; Appendix A.1",
         "layer-wise lr decay [10, 2]: 0.75 / We use layer-wise lr decay [10] following [2]."),
        ("5 warm-up epochs, then cosine decay", "Table 9", "learning rate schedule: cosine decay / warmup epochs: 5"),
    ),
    choices=(
        "min lr 1e-6: the reference code's (facebookresearch/mae main_finetune.py:73 `--min_lr default=1e-6`); the"
        " paper leaves the cosine's floor open. Every layer ends at 1e-6 times its layer scale, as in the code"
        " (util/lr_sched.py:14-20).",
        "eps 1e-8 and no gradient clipping: the reference code's (main_finetune.py:287 passes no eps to AdamW;"
        " main_finetune.py:61 `--clip_grad default=None`).",
        "Layer ids as MAE's lr_decay.py assigns them: 0 for patch_embed, cls_token and pos_embed, i + 1 for"
        " blocks.i, the top (scale 1) for the final norm and the head.",
        "No decay on 1-D parameters, biases, norm layers, pos_embed and cls_token (the default rule): for a ViT,"
        " what the reference code exempts (1-D parameters and timm 0.3.2's no_weight_decay() list).",
        "The warm-up and the cosine step every optimizer step, as the code's (util/lr_sched.py, called per"
        " iteration); the warm-up runs step k at (k + 1) / warm-up steps of the peak where the code starts at 0"
        " (scheduler={'warmup_start': 'zero'} does as the code).",
        _SCALED,
        "The other Table 9 settings (batch 1024, 100 epochs for ViT-B, drop path, label smoothing 0.1, mixup 0.8,"
        " cutmix 1.0) belong to the run, the data and the model.",
    ),
    notes=(
        "The paper's Table 9 gives base lr 1e-3 and layer decay 0.75 for every model size. The reference"
        " repository's ViT-B command uses --blr 5e-4 --layer_decay 0.65 (FINETUNE.md:72) for its released"
        " checkpoints, pre-trained on normalized pixels: \"The fine-tuning hyper-parameters are slightly different"
        " from the default baseline using *unnormalized* pixels.\" (FINETUNE.md:129). That setting is"
        " get_recipe('mae-finetune', lr=5e-4, layer_decay=0.65).",
    ),
    preview={"max_epochs": 20, "steps_per_epoch": 10, "batch_size": 1024},
    module=TinyViT,
))
