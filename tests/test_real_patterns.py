"""Held-out real modules: what the library says about `configure_optimizers` and its hooks as public projects wrote them.

Each module below is a tiny rewrite of one found in a public project (its source in the comment above it: repository,
path and commit, or the issue thread the mistake was reported in): the same ``configure_optimizers`` logic and the
same hooks, on a tiny ``nn.Linear`` and random data. Each fits under a real ``Trainer`` with `ConfigureOptimizersCheck`
and `SchedulerCadenceCheck`, and

* a correct module fits with no `RecipeWarning` at all;
* a module with a real mistake draws exactly the message written out in its case (what the user would read);
* wherever the preview applies, `preview_schedule` gives the lrs the fit used at every optimizer step (recorded in
  ``on_before_optimizer_step``), or refuses with the `RecipeError` written out in its case.
"""

from __future__ import annotations

import copy
import contextlib
import dataclasses
import functools
import math
import warnings
from typing import Any, Callable, Optional

import pytest
import torch
from helpers import loader, pl, trainer
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from lightning_optim_recipes import (
    AlternatingOptimizersMixin,
    CadenceError,
    ConfigureOptimizersCheck,
    RecipeError,
    RecipeWarning,
    SchedulerCadenceCheck,
    preview_schedule,
)

pytestmark = pytest.mark.trainer


class Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()


def regression(net: nn.Module, batch) -> torch.Tensor:
    return (net(batch[0]) - batch[1]).pow(2).mean()


# =========================================================================================== correct modules


# Lightning-AI/pytorch-lightning examples/pytorch/domain_templates/imagenet.py @ 215acdc3efa4b096c80ab2d0263cab20d2f06f54
# (ImageNetLightningModel: SGD, LambdaLR(lambda epoch: 0.1 ** (epoch // 30)) on the default interval, 90 epochs).
class ImageNetStepDecay(Tiny):
    every = 1  # 30 of 90 epochs there; 1 of 3 here

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        every = self.every
        scheduler = LambdaLR(optimizer, lambda epoch: 0.1 ** (epoch // every))
        return [optimizer], [scheduler]


# Lightning-AI/pytorch-lightning examples/pytorch/domain_templates/computer_vision_fine_tuning.py
# @ 017bff996a9a7e058939fb7232db619d8f3a73a0 (TransferLearningModel: Adam over the trainable parameters, MultiStepLR
# with the milestones of its MilestonesFinetuning callback, which unfreezes the backbone in two param groups).
class MilestonesFinetuning(pl.callbacks.BaseFinetuning):
    def __init__(self, milestones=(1, 2)) -> None:
        super().__init__()
        self.milestones = milestones

    def freeze_before_training(self, pl_module):
        self.freeze(modules=pl_module.feature_extractor)

    def finetune_function(self, pl_module, epoch, optimizer):
        if epoch == self.milestones[0]:
            self.unfreeze_and_add_param_group(modules=pl_module.feature_extractor[-1:], optimizer=optimizer)
        elif epoch == self.milestones[1]:
            self.unfreeze_and_add_param_group(modules=pl_module.feature_extractor[:-1], optimizer=optimizer)


class TransferLearning(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.feature_extractor = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4))
        self.fc = nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        return regression(lambda x: self.fc(self.feature_extractor(x)), batch)

    def configure_optimizers(self):
        trainable = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(trainable, lr=1e-3)
        return [optimizer], [torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=(1, 2), gamma=0.1)]


# Lightning-AI/pytorch-lightning examples/pytorch/domain_templates/reinforce_learn_Qnet.py
# @ 606c6ac633383a575c18749b3b586fc15d58dcc3 (DQNLightning: Adam over `net` only; `target_net` copied from it every
# `sync_rate` steps with load_state_dict).
class DQN(pl.LightningModule):
    sync_rate = 2

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        self.target_net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))

    def training_step(self, batch, batch_idx):
        with torch.no_grad():
            target = self.target_net(batch[0]) * 0.99 + batch[1]
        loss = (self.net(batch[0]) - target).pow(2).mean()
        if self.global_step % self.sync_rate == 0:
            self.target_net.load_state_dict(self.net.state_dict())
        return loss

    def configure_optimizers(self):
        return [torch.optim.Adam(self.net.parameters(), lr=1e-2)]


# Lightning-AI/pytorch-lightning examples/pytorch/domain_templates/generative_adversarial_net.py
# @ 87c3101cec286aeceb8a6b3530c3897b83f40b98 (GAN: manual optimization, toggle_optimizer, two Adams (0.5, 0.999)).
class ManualGAN(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.generator, self.discriminator = nn.Linear(4, 4), nn.Linear(4, 1)

    def training_step(self, batch):
        opt_g, opt_d = self.optimizers()
        z = torch.randn_like(batch[0])
        self.toggle_optimizer(opt_g)
        g_loss = self.discriminator(self.generator(z)).sigmoid().log().neg().mean()
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        opt_g.step()
        self.untoggle_optimizer(opt_g)
        self.toggle_optimizer(opt_d)
        d_loss = (self.discriminator(batch[0]).sigmoid().log().neg()
                  + (1 - self.discriminator(self.generator(z).detach()).sigmoid()).log().neg()).mean()
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        self.untoggle_optimizer(opt_d)

    def configure_optimizers(self):
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        return opt_g, opt_d


# Lightning-Universe/lightning-bolts src/pl_bolts/models/self_supervised/simclr/simclr_module.py and
# src/pl_bolts/optimizers/lr_scheduler.py (linear_warmup_decay) @ 34958a889 (SimCLR: weight decay off for biases and
# BatchNorm, LambdaLR(linear_warmup_decay(warmup_steps, total_steps, cosine=True)) per step, both counted from
# train_iters_per_epoch = num_samples // global batch size).
def linear_warmup_decay(warmup_steps, total_steps, cosine=True, linear=False):
    def fn(step):
        if step < warmup_steps:
            return float(step) / float(max(1, warmup_steps))
        if not (cosine or linear):
            return 1.0
        progress = float(step - warmup_steps) / float(max(1, total_steps - warmup_steps))
        return 0.5 * (1.0 + math.cos(math.pi * progress)) if cosine else 1.0 - progress

    return fn


class SimCLR(pl.LightningModule):
    def __init__(self, num_samples=32, batch_size=4, warmup_epochs=1, max_epochs=3) -> None:
        super().__init__()
        self.encoder, self.bn = nn.Linear(4, 4), nn.BatchNorm1d(4)
        self.head = nn.Linear(4, 1)
        self.warmup_epochs, self.max_epochs = warmup_epochs, max_epochs
        self.train_iters_per_epoch = num_samples // batch_size

    def training_step(self, batch, batch_idx):
        return regression(lambda x: self.head(self.bn(self.encoder(x))), batch)

    def configure_optimizers(self):
        params, excluded = [], []
        for name, param in self.named_parameters():
            (excluded if "bias" in name or "bn" in name else params).append(param)
        optimizer = torch.optim.Adam([{"params": params, "weight_decay": 1e-6},
                                      {"params": excluded, "weight_decay": 0.0}], lr=1e-3)
        warmup_steps = self.train_iters_per_epoch * self.warmup_epochs
        total_steps = self.train_iters_per_epoch * self.max_epochs
        scheduler = {"scheduler": LambdaLR(optimizer, linear_warmup_decay(warmup_steps, total_steps, cosine=True)),
                     "interval": "step", "frequency": 1}
        return [optimizer], [scheduler]


# Lightning-Universe/lightning-bolts src/pl_bolts/models/self_supervised/moco/moco_module.py @ 34958a889 (MoCo: SGD
# over self.parameters(), the key encoder a deepcopy with requires_grad False updated by momentum in training_step;
# CosineAnnealingLR(T_max=100) for a 100-epoch run).
class MoCo(pl.LightningModule):
    def __init__(self, max_epochs=3) -> None:
        super().__init__()
        self.encoder_q = nn.Linear(4, 1)
        self.encoder_k = copy.deepcopy(self.encoder_q)
        for param in self.encoder_k.parameters():
            param.requires_grad = False
        self.lr_scheduler_params = {"T_max": max_epochs}

    def training_step(self, batch, batch_idx):
        with torch.no_grad():
            for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
                param_k.data = param_k.data * 0.999 + param_q.data * 0.001
        return (self.encoder_q(batch[0]) - self.encoder_k(batch[0])).pow(2).mean() + regression(self.encoder_q, batch)

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)
        return [optimizer], [torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, **self.lr_scheduler_params)]


# Lightning-Universe/lightning-bolts src/pl_bolts/optimizers/lr_scheduler.py @ 34958a889: LinearWarmupCosineAnnealingLR
# (the chainable form of get_lr, rewritten from it; warmup_start_lr defaults to 0; its docstring warns that stepping
# it per epoch keeps the first epoch at warmup_start_lr).
class LinearWarmupCosineAnnealingLR(LRScheduler):
    def __init__(self, optimizer, warmup_epochs, max_epochs, warmup_start_lr=0.0, eta_min=0.0, last_epoch=-1):
        self.warmup_epochs, self.max_epochs = warmup_epochs, max_epochs
        self.warmup_start_lr, self.eta_min = warmup_start_lr, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t, w, m, groups = self.last_epoch, self.warmup_epochs, self.max_epochs, self.optimizer.param_groups
        if t == 0:
            return [self.warmup_start_lr] * len(self.base_lrs)
        if t < w:
            return [g["lr"] + (base - self.warmup_start_lr) / (w - 1) for base, g in zip(self.base_lrs, groups)]
        if t == w:
            return list(self.base_lrs)
        if (t - 1 - m) % (2 * (m - w)) == 0:
            return [g["lr"] + (base - self.eta_min) * (1 - math.cos(math.pi / (m - w))) / 2
                    for base, g in zip(self.base_lrs, groups)]
        return [(1 + math.cos(math.pi * (t - w) / (m - w))) / (1 + math.cos(math.pi * (t - w - 1) / (m - w)))
                * (g["lr"] - self.eta_min) + self.eta_min for g in groups]


# Lightning-Universe/lightning-bolts src/pl_bolts/models/self_supervised/byol/byol_module.py and
# src/pl_bolts/callbacks/byol_updates.py @ 34958a889 (BYOL: Adam over self.parameters(), the target network a
# deepcopy updated by BYOLMAWeightUpdate in on_train_batch_end, its tau from global_step; LinearWarmupCosineAnnealingLR
# (warmup_epochs=10, max_epochs=1000) on the default 'epoch' interval). `per_step` is the fix solo-learn ships
# (vturrisi/solo-learn issue #271): the same scheduler sized in steps, stepped per step.
class BYOL(pl.LightningModule):
    def __init__(self, per_step: bool = False, warmup_epochs: int = 2, max_epochs: int = 3,
                 iters_per_epoch: int = 8) -> None:
        super().__init__()
        self.online_network = nn.Linear(4, 4)
        self.target_network = copy.deepcopy(self.online_network)
        self.predictor = nn.Linear(4, 4)
        self.per_step, self.warmup_epochs, self.max_epochs = per_step, warmup_epochs, max_epochs
        self.iters_per_epoch, self.initial_tau = iters_per_epoch, 0.996

    def training_step(self, batch, batch_idx):
        online = self.predictor(self.online_network(batch[0]))
        with torch.no_grad():
            target = self.target_network(batch[0])
        return -2 * nn.functional.cosine_similarity(online, target).mean()

    def on_train_batch_end(self, outputs, batch, batch_idx):
        max_steps = len(self.trainer.train_dataloader) * self.trainer.max_epochs
        tau = 1 - (1 - self.initial_tau) * (math.cos(math.pi * self.global_step / max_steps) + 1) / 2
        for online_p, target_p in zip(self.online_network.parameters(), self.target_network.parameters()):
            target_p.data = tau * target_p.data + (1.0 - tau) * online_p.data

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=0.2, weight_decay=1.5e-6)
        if not self.per_step:
            return [optimizer], [LinearWarmupCosineAnnealingLR(optimizer, warmup_epochs=self.warmup_epochs,
                                                               max_epochs=self.max_epochs)]
        scheduler = LinearWarmupCosineAnnealingLR(optimizer, warmup_epochs=self.warmup_epochs * self.iters_per_epoch,
                                                  max_epochs=self.max_epochs * self.iters_per_epoch)
        return [optimizer], [{"scheduler": scheduler, "interval": "step", "frequency": 1}]


# Lightning-Universe/lightning-bolts src/pl_bolts/models/gans/srgan/srgan_module.py @ 34958a889 (SRGAN, Lightning
# 1.x: training_step(batch, batch_idx, optimizer_idx), two Adams, MultiStepLR(milestones=[scheduler_step], gamma=0.1)
# each), here with AlternatingOptimizersMixin, which runs it unchanged on 2.x.
class SRGAN(AlternatingOptimizersMixin, pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.generator, self.discriminator = nn.Linear(4, 4), nn.Linear(4, 1)

    def training_step(self, batch, batch_idx, optimizer_idx):
        if optimizer_idx == 0:
            return self.discriminator(self.generator(batch[0]).detach()).mean() - self.discriminator(batch[0]).mean()
        return -self.discriminator(self.generator(batch[0])).mean()

    def configure_optimizers(self):
        opt_disc = torch.optim.Adam(self.discriminator.parameters(), lr=1e-4)
        opt_gen = torch.optim.Adam(self.generator.parameters(), lr=1e-4)
        sched_disc = torch.optim.lr_scheduler.MultiStepLR(opt_disc, milestones=[1], gamma=0.1)
        sched_gen = torch.optim.lr_scheduler.MultiStepLR(opt_gen, milestones=[1], gamma=0.1)
        return [opt_disc, opt_gen], [sched_disc, sched_gen]


# ashleve/lightning-hydra-template src/models/mnist_module.py @ 763e98deaf153a4352143e37d9319dfe93a6c9e3
# (MNISTLitModule: the optimizer and scheduler from Hydra partials, configs/model/mnist.yaml: Adam and
# ReduceLROnPlateau(mode='min', factor=0.1, patience=10); {'monitor': 'val/loss', 'interval': 'epoch', 'frequency': 1}).
class HydraTemplate(Tiny):
    def __init__(self) -> None:
        super().__init__()
        self.optimizer = functools.partial(torch.optim.Adam, lr=1e-3, weight_decay=0.0)
        self.scheduler = functools.partial(torch.optim.lr_scheduler.ReduceLROnPlateau, mode="min", factor=0.1,
                                           patience=10)

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", regression(self.layer, batch))

    def configure_optimizers(self):
        optimizer = self.optimizer(params=self.parameters())
        scheduler = self.scheduler(optimizer=optimizer)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss", "interval": "epoch", "frequency": 1}}


# Lightning-AI/tutorials lightning_examples/text-transformers/text-transformers.py
# @ 12cfdb76cb3039e63174d7dace1d2cfe7b70cd8d (GLUETransformer: AdamW without weight decay for biases and
# LayerNorm.weight, transformers' get_linear_schedule_with_warmup(num_training_steps=estimated_stepping_batches) per
# step).
class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dense, self.LayerNorm = nn.Linear(4, 4), nn.LayerNorm(4)

    def forward(self, x):
        return self.LayerNorm(self.dense(x))


class GLUETransformer(pl.LightningModule):
    def __init__(self, warmup_steps: int = 2) -> None:
        super().__init__()
        self.model = nn.Sequential(Block(), nn.Linear(4, 1))
        self.warmup_steps = warmup_steps

    def training_step(self, batch, batch_idx):
        return regression(self.model, batch)

    def configure_optimizers(self):
        transformers = pytest.importorskip("transformers")
        no_decay = ["bias", "LayerNorm.weight"]
        groups = [
            {"params": [p for n, p in self.model.named_parameters() if not any(nd in n for nd in no_decay)],
             "weight_decay": 0.01},
            {"params": [p for n, p in self.model.named_parameters() if any(nd in n for nd in no_decay)],
             "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=2e-5, eps=1e-8)
        scheduler = transformers.get_linear_schedule_with_warmup(
            optimizer, num_warmup_steps=self.warmup_steps, num_training_steps=self.trainer.estimated_stepping_batches)
        return [optimizer], [{"scheduler": scheduler, "interval": "step", "frequency": 1}]


# huggingface/transformers examples/legacy/pytorch-lightning/lightning_base.py
# @ 052b1dcdbe751ed16e8da95261021318f170a130 (BaseTransformer: the same groups; num_training_steps from
# total_steps() = dataset_size / (train_batch_size * accumulate_grad_batches * devices) * max_epochs, a float;
# dataset_size read from the train DataLoader in setup()).
class HFLightningBase(GLUETransformer):
    def __init__(self, accumulate_grad_batches: int = 2) -> None:
        super().__init__(warmup_steps=1)
        self.train_batch_size, self.accumulate_grad_batches, self.max_epochs = 4, accumulate_grad_batches, 2

    def setup(self, stage):
        self.dataset_size = len(self.train_dataloader().dataset)

    def train_dataloader(self):
        return loader(8, batch_size=self.train_batch_size)

    def total_steps(self):
        effective_batch_size = self.train_batch_size * self.accumulate_grad_batches * 1
        return (self.dataset_size / effective_batch_size) * self.max_epochs

    def configure_optimizers(self):
        transformers = pytest.importorskip("transformers")
        optimizer = torch.optim.AdamW(self.parameters(), lr=5e-5, eps=1e-8)
        scheduler = transformers.get_linear_schedule_with_warmup(optimizer, num_warmup_steps=self.warmup_steps,
                                                                 num_training_steps=self.total_steps())
        return [optimizer], [{"scheduler": scheduler, "interval": "step", "frequency": 1}]


# Lightning-AI/tutorials lightning_examples/cifar10-baseline/baseline.py @ 12cfdb76cb3039e63174d7dace1d2cfe7b70cd8d
# (LitResnet: SGD, OneCycleLR(0.1, epochs=trainer.max_epochs, steps_per_epoch=45000 // BATCH_SIZE) per step).
class CifarBaseline(Tiny):
    num_samples, batch_size = 32, 4  # 45000 and 64 there

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        steps_per_epoch = self.num_samples // self.batch_size
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, 0.1, epochs=self.trainer.max_epochs,
                                                        steps_per_epoch=steps_per_epoch)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


# CompVis/stable-diffusion ldm/lr_scheduler.py @ 555f13e46975933085cb22d761068a0781ca6f42 (LambdaLinearScheduler,
# rewritten from it) and ldm/models/diffusion/ddpm.py (LatentDiffusion.configure_optimizers: AdamW,
# LambdaLR(opt, lr_lambda=scheduler.schedule) per step; the EMA (LitEma) keeps its shadow weights in buffers);
# configs/stable-diffusion/v1-inference.yaml: warm_up_steps [10000], cycle_lengths [10000000000000], f_start [1e-6],
# f_max [1.], f_min [1.].
class LambdaLinearScheduler:
    def __init__(self, warm_up_steps, f_min, f_max, f_start, cycle_lengths):
        self.lr_warm_up_steps, self.f_min, self.f_max, self.f_start = warm_up_steps, f_min, f_max, f_start
        self.cycle_lengths = cycle_lengths
        self.cum_cycles = [0]
        for length in cycle_lengths:
            self.cum_cycles.append(self.cum_cycles[-1] + length)

    def find_in_interval(self, n):
        for interval, end in enumerate(self.cum_cycles[1:]):
            if n <= end:
                return interval
        return len(self.cycle_lengths) - 1

    def schedule(self, n, **kwargs):
        cycle = self.find_in_interval(n)
        n = n - self.cum_cycles[cycle]
        if n < self.lr_warm_up_steps[cycle]:
            return (self.f_max[cycle] - self.f_start[cycle]) / self.lr_warm_up_steps[cycle] * n + self.f_start[cycle]
        return self.f_min[cycle] + (self.f_max[cycle] - self.f_min[cycle]) * (self.cycle_lengths[cycle] - n) / (
            self.cycle_lengths[cycle])


class LitEma(nn.Module):
    def __init__(self, model: nn.Module, decay: float = 0.9999) -> None:
        super().__init__()
        self.decay = decay
        for name, p in model.named_parameters():
            self.register_buffer(name.replace(".", ""), p.clone().detach().data)

    def forward(self, model: nn.Module) -> None:
        with torch.no_grad():
            for name, p in model.named_parameters():
                shadow = getattr(self, name.replace(".", ""))
                shadow.sub_((1 - self.decay) * (shadow - p))


class LatentDiffusion(Tiny):
    def __init__(self, warm_up_steps: int = 4) -> None:
        super().__init__()
        self.model_ema = LitEma(self.layer)
        self.warm_up_steps = warm_up_steps

    def on_train_batch_end(self, *args, **kwargs):
        self.model_ema(self.layer)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(list(self.layer.parameters()), lr=1e-4)
        scheduler = LambdaLinearScheduler(warm_up_steps=[self.warm_up_steps], f_min=[1.0], f_max=[1.0],
                                          f_start=[1e-6], cycle_lengths=[10000000000000])
        return [opt], [{"scheduler": LambdaLR(opt, lr_lambda=scheduler.schedule), "interval": "step", "frequency": 1}]


# Lightning-AI/pytorch-lightning docs/source-pytorch/common/optimization.rst @ 7f0c3436cd ("Bring your own Custom
# Learning Rate Schedulers": timm's scheduler on the 'epoch' interval, lr_scheduler_step calling
# scheduler.step(epoch=self.current_epoch)); the scheduler is timm's CosineLRScheduler
# (huggingface/pytorch-image-models timm/scheduler/cosine_lr.py @ 16664ea31ba52dc55c3744e69741fffddb4845da), rewritten
# from it for one cycle: not a torch LRScheduler, lrs set from the epoch it is given, warm-up from warmup_lr_init.
class TimmCosine:
    def __init__(self, optimizer, t_initial, lr_min=0.0, warmup_t=0, warmup_lr_init=0.0):
        self.optimizer, self.t_initial, self.lr_min = optimizer, t_initial, lr_min
        self.warmup_t, self.warmup_lr_init = warmup_t, warmup_lr_init
        self.base_values = [group.setdefault("initial_lr", group["lr"]) for group in optimizer.param_groups]
        self.warmup_steps = [(v - warmup_lr_init) / warmup_t for v in self.base_values] if warmup_t else []
        if warmup_t:
            self.update_groups([warmup_lr_init] * len(self.base_values))

    def _get_lr(self, t):
        if t < self.warmup_t:
            return [self.warmup_lr_init + t * s for s in self.warmup_steps]
        if t >= self.t_initial:
            return [self.lr_min for _ in self.base_values]
        return [self.lr_min + 0.5 * (v - self.lr_min) * (1 + math.cos(math.pi * t / self.t_initial))
                for v in self.base_values]

    def step(self, epoch, metric=None):
        self.update_groups(self._get_lr(epoch))

    def update_groups(self, values):
        for group, value in zip(self.optimizer.param_groups, values):
            group["lr"] = value

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state):
        self.__dict__.update(state)


class TimmDocs(Tiny):
    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=1e-3)
        scheduler = TimmCosine(optimizer, t_initial=self.trainer.max_epochs, warmup_t=1, warmup_lr_init=1e-5)
        return [optimizer], [{"scheduler": scheduler, "interval": "epoch"}]

    def lr_scheduler_step(self, scheduler, metric):
        scheduler.step(epoch=self.current_epoch)  # timm's scheduler need the epoch value


# NVIDIA/NeMo nemo/core/optim/lr_scheduler.py @ 0165f08f52d9dc40a1ae989173242a2741f7f339 (NoamAnnealing, rewritten
# from it: d_model ** -0.5 * min(step ** -0.5, step * warmup_steps ** -1.5), step = max(1, last_epoch);
# prepare_lr_scheduler returns it with interval 'step'), as the ASR Conformer configs use it.
class NoamAnnealing(LRScheduler):
    def __init__(self, optimizer, *, d_model, warmup_steps=None, max_steps=None, min_lr=0.0, last_epoch=-1):
        self._normalize = d_model ** (-0.5)
        self.max_steps, self.warmup_steps, self.min_lr = max_steps, warmup_steps or 0, min_lr
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        step = max(1, self.last_epoch)
        lrs = []
        for initial_lr in self.base_lrs:
            mult = self._normalize * min(step ** (-0.5), step * (self.warmup_steps ** (-1.5)))
            lrs.append(max(initial_lr * mult, self.min_lr) if step > self.warmup_steps else initial_lr * mult)
        return lrs


class NeMoConformer(Tiny):
    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=2.0, betas=(0.9, 0.98), weight_decay=1e-3)
        scheduler = NoamAnnealing(optimizer, d_model=16, warmup_steps=4, min_lr=1e-6,
                                  max_steps=self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}


# NVIDIA/NeMo nemo/core/optim/lr_scheduler.py @ 0165f08f52d9dc40a1ae989173242a2741f7f339 (CosineAnnealing with
# warmup_ratio and min_lr, without constant steps: warm-up (step + 1) / (warmup_steps + 1) of the peak, then a cosine
# to min_lr at max_steps, min_lr after it), max_steps = the run's optimizer steps as NeMo computes them.
class NeMoCosineAnnealing(LRScheduler):
    def __init__(self, optimizer, *, max_steps, warmup_ratio=None, min_lr=0.0, last_epoch=-1):
        self.max_steps, self.min_lr = max_steps, min_lr
        self.warmup_steps = int(warmup_ratio * max_steps) if warmup_ratio is not None else 0
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        step = self.last_epoch
        if self.warmup_steps > 0 and step <= self.warmup_steps:
            return [lr * (step + 1) / (self.warmup_steps + 1) for lr in self.base_lrs]
        if step > self.max_steps:
            return [self.min_lr for _ in self.base_lrs]
        span = self.max_steps - self.warmup_steps
        return [(lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * (step - self.warmup_steps) / span)) + self.min_lr
                for lr in self.base_lrs]


class NeMoLanguageModel(Tiny):
    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=1e-4)
        scheduler = NeMoCosineAnnealing(optimizer, max_steps=self.trainer.estimated_stepping_batches,
                                        warmup_ratio=0.1, min_lr=1e-5)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}


# Lightning-AI/pytorch-lightning docs/source-pytorch/model/manual_optimization.rst @ 7f0c3436cd ("Learning Rate
# Scheduling": a StepLR stepped every N epochs in training_step, `self.trainer.is_last_batch and
# (self.trainer.current_epoch + 1) % N == 0`).
class ManualEveryNEpochs(Tiny):
    N = 1

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=1e-3)
        return [optimizer], [torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.1)]

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        opt.zero_grad()
        self.manual_backward(regression(self.layer, batch))
        opt.step()
        sch = self.lr_schedulers()
        if self.trainer.is_last_batch and (self.trainer.current_epoch + 1) % self.N == 0:
            sch.step()


# The same page: a ReduceLROnPlateau stepped in on_train_epoch_end with `trainer.callback_metrics["loss"]`, and a
# discriminator stepped every other batch beside a generator stepped every batch ("Optimizer Steps at Different
# Frequencies").
class ManualPlateauGAN(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.G, self.D = nn.Linear(4, 4), nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        g_opt, d_opt = self.optimizers()
        errD = (self.D(batch[0]) - self.D(self.G(batch[0]).detach())).mean()
        d_opt.zero_grad()
        self.manual_backward(errD)
        if (batch_idx + 1) % 2 == 0:
            d_opt.step()
        errG = -self.D(self.G(batch[0])).mean()
        g_opt.zero_grad()
        self.manual_backward(errG)
        g_opt.step()
        self.log("loss", errG)

    def on_train_epoch_end(self):
        sch = self.lr_schedulers()
        sch.step(self.trainer.callback_metrics["loss"])

    def configure_optimizers(self):
        g_opt = torch.optim.Adam(self.G.parameters(), lr=1e-5)
        d_opt = torch.optim.Adam(self.D.parameters(), lr=1e-5)
        return [g_opt, d_opt], [torch.optim.lr_scheduler.ReduceLROnPlateau(g_opt, mode="min", factor=0.1,
                                                                             patience=10)]


# Lightning-AI/pytorch-lightning docs/source-pytorch/advanced/training_tricks.rst @ 7f0c3436cd ("Stochastic Weight
# Averaging": `Trainer(callbacks=[StochasticWeightAveraging(swa_lrs=1e-2)])`), the callback that replaces the
# schedulers with its SWALR from swa_epoch_start; a plain SGD module.
class PlainSGD(Tiny):
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


# Lightning-AI/tutorials lightning_examples/barlow-twins/barlow_twins.py @ 0034ff878b406a41c9734f734267e8ec61cdc012
# (BarlowTwins: Adam, LambdaLR(partial(fn, warmup_steps)) per step, a warm-up then 1.0; its OnlineFineTuner callback
# adds `online_finetuner` to the module in on_fit_start and steps an optimizer Lightning does not know in
# on_train_batch_end).
def barlow_fn(warmup_steps, step):
    return float(step) / float(max(1, warmup_steps)) if step < warmup_steps else 1.0


class OnlineFineTuner(pl.Callback):
    def on_fit_start(self, trainer, pl_module):
        pl_module.online_finetuner = nn.Linear(4, 1)
        self.optimizer = torch.optim.Adam(pl_module.online_finetuner.parameters(), lr=1e-4)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        with torch.enable_grad():
            loss = regression(pl_module.online_finetuner, batch)
            loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()


class BarlowTwins(Tiny):
    train_iters_per_epoch, warmup_epochs = 8, 1

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.layer.parameters(), lr=1e-4)
        warmup_steps = self.train_iters_per_epoch * self.warmup_epochs
        scheduler = {"scheduler": LambdaLR(optimizer, functools.partial(barlow_fn, warmup_steps)),
                     "interval": "step", "frequency": 1}
        return [optimizer], [scheduler]


# Lightning-AI/pytorch-lightning issue #5631 ("lr_scheduler step() called after every epoch instead of after every
# batch": a CyclicLR on the default interval kept its lr per epoch); the fix given there, 'interval': 'step'.
class Cyclic(Tiny):
    def __init__(self, interval: Optional[str] = "step") -> None:
        super().__init__()
        self.interval = interval

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9)
        scheduler = torch.optim.lr_scheduler.CyclicLR(optimizer, base_lr=0.001, max_lr=0.01, step_size_up=4)
        if self.interval is None:
            return [optimizer], [scheduler]
        return [optimizer], [{"scheduler": scheduler, "interval": self.interval}]


# openspeech-team/openspeech openspeech/optim/scheduler/warmup_scheduler.py and lr_scheduler.py
# @ 2715baf565d230fb8f5eee0a03edb50a12f22644 (WarmupLRScheduler: an LRScheduler subclass that never calls
# LRScheduler.__init__; its own step() raises the lr by warmup_rate per call for warmup_steps calls); the ASR models'
# warm-up did not move (openspeech issue #34, Lightning-AI/pytorch-lightning issue #8057) until it was stepped per step.
class OpenspeechWarmup(LRScheduler):
    def __init__(self, optimizer, init_lr, peak_lr, warmup_steps):  # noqa: D107 - as openspeech: no super().__init__
        self.optimizer, self.init_lr = optimizer, init_lr
        self.warmup_rate = (peak_lr - init_lr) / warmup_steps if warmup_steps != 0 else 0
        self.update_steps, self.lr, self.warmup_steps = 1, init_lr, warmup_steps

    def step(self, val_loss=None):
        if self.update_steps < self.warmup_steps:
            lr = self.init_lr + self.warmup_rate * self.update_steps
            for g in self.optimizer.param_groups:
                g["lr"] = lr
            self.lr = lr
        self.update_steps += 1
        return self.lr

    def get_lr(self):
        return [g["lr"] for g in self.optimizer.param_groups]


class OpenspeechASR(Tiny):
    def __init__(self, interval: Optional[str] = "step") -> None:
        super().__init__()
        self.interval = interval

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=1e-7)
        scheduler = OpenspeechWarmup(optimizer, init_lr=1e-7, peak_lr=1e-4, warmup_steps=4)
        if self.interval is None:
            return {"optimizer": optimizer, "lr_scheduler": scheduler}
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.interval}}


# Lightning-AI/pytorch-lightning src/lightning/pytorch/trainer/trainer.py @ 7f0c3436cd (the docstring of
# `estimated_stepping_batches`: OneCycleLR(total_steps=estimated_stepping_batches), `return [optimizer], [scheduler]`,
# so on the default 'epoch' interval; reported in PR #11599's review and fixed in the .rst docs by PR #19774 with
# 'interval': 'step').
class OneCycleStepping(Tiny):
    def __init__(self, interval: Optional[str] = "step") -> None:
        super().__init__()
        self.interval = interval

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        stepping_batches = self.trainer.estimated_stepping_batches
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, total_steps=stepping_batches)
        if self.interval is None:
            return [optimizer], [scheduler]
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.interval}}



# Lightning-Universe/lightning-bolts src/pl_bolts/models/self_supervised/ssl_finetuner.py @ 34958a889 (SSLFineTuner:
# the pretrained backbone used under torch.no_grad() and put in eval mode each epoch, its parameters still requiring
# grad; SGD over the linear layer only; CosineAnnealingLR(optimizer, epochs, eta_min=final_lr) on the default interval).
class SSLFineTuner(pl.LightningModule):
    def __init__(self, epochs: int = 3, frozen: bool = True) -> None:
        super().__init__()
        self.backbone, self.linear_layer = nn.Linear(4, 4), nn.Linear(4, 1)
        self.epochs, self.frozen = epochs, frozen  # frozen=False: the mistake, a backbone the loss reaches

    def on_train_epoch_start(self):
        self.backbone.eval()

    def training_step(self, batch, batch_idx):
        with torch.no_grad() if self.frozen else contextlib.nullcontext():
            feats = self.backbone(batch[0])
        return (self.linear_layer(feats) - batch[1]).pow(2).mean()

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.linear_layer.parameters(), lr=0.1, nesterov=False, momentum=0.9,
                                    weight_decay=1e-6)
        return [optimizer], [torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, self.epochs, eta_min=0.0)]


# facebookresearch/mae util/lr_sched.py @ be47fef7a727943547afb0c670cf1b26034c3c89 (adjust_learning_rate: a warm-up
# then a half-cycle cosine to min_lr, in fractional epochs, each group scaled by its 'lr_scale'), set by hand before
# every batch (engine_pretrain.py calls it with data_iter_step / len(data_loader) + epoch), here in
# on_train_batch_start; the groups' lr_scale as MAE's layer-wise decay gives them.
class MAEPretrain(pl.LightningModule):
    lr, min_lr, warmup_epochs = 1.5e-4, 1e-6, 1

    def __init__(self, scaled: bool = True) -> None:
        super().__init__()
        self.blocks, self.head = nn.Linear(4, 4), nn.Linear(4, 1)
        self.scaled = scaled  # False: the mistake, a port of adjust_learning_rate that drops 'lr_scale'

    def training_step(self, batch, batch_idx):
        return regression(lambda x: self.head(self.blocks(x)), batch)

    def on_train_batch_start(self, batch, batch_idx):
        epoch = batch_idx / self.trainer.num_training_batches + self.current_epoch
        if epoch < self.warmup_epochs:
            lr = self.lr * epoch / self.warmup_epochs
        else:
            lr = self.min_lr + (self.lr - self.min_lr) * 0.5 * (1.0 + math.cos(
                math.pi * (epoch - self.warmup_epochs) / (self.trainer.max_epochs - self.warmup_epochs)))
        for param_group in self.trainer.optimizers[0].param_groups:
            param_group["lr"] = lr * param_group["lr_scale"] if "lr_scale" in param_group and self.scaled else lr

    def configure_optimizers(self):
        groups = [{"params": self.blocks.parameters(), "lr_scale": 0.75}, {"params": self.head.parameters(),
                                                                            "lr_scale": 1.0}]
        return torch.optim.AdamW(groups, lr=self.lr, betas=(0.9, 0.95))


# jspaezp/elfragmentador elfragmentador/model.py @ 351310f92dbbdfa85a63b7f19bfaf972f111412d
# (PepTransformerModel.configure_optimizers: AdamW (0.9, 0.98) over the trainable parameters; scheduler "cosine":
# CosineAnnealingWarmRestarts(T_0=1, T_mult=2, eta_min=lr / lr_ratio) per step; scheduler "onecycle":
# OneCycleLR(max_lr=lr * lr_ratio, epochs=max_epochs, steps_per_epoch=steps_per_epoch // accumulate_grad_batches)
# per step, a floor where Lightning steps on the last, partial window of every epoch too).
class ElFragmentador(Tiny):
    def __init__(self, scheduler: str = "cosine", steps_per_epoch: int = 10) -> None:
        super().__init__()
        self.scheduler, self.steps_per_epoch, self.lr, self.lr_ratio = scheduler, steps_per_epoch, 1e-4, 10

    def configure_optimizers(self):
        opt = torch.optim.AdamW(filter(lambda p: p.requires_grad, self.parameters()), lr=self.lr, betas=(0.9, 0.98))
        if self.scheduler == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=1, T_mult=2,
                                                                             eta_min=self.lr / self.lr_ratio)
        else:
            spe = self.steps_per_epoch // self.trainer.accumulate_grad_batches
            scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer=opt, max_lr=self.lr * self.lr_ratio,
                                                            epochs=self.trainer.max_epochs, steps_per_epoch=spe)
        return [opt], [{"scheduler": scheduler, "interval": "step"}]


# Lightning-AI/pytorch-lightning tests/tests_pytorch/trainer/test_trainer.py @ 7f0c3436cd3f6ad3753125672024fc415cbcb414
# (test_gradient_accumulation_scheduling_last_batch's TestModel: `backward(self, *args, **kwargs)` and
# `optimizer_step(self, *args, **kwargs)` forwarding to super(), under accumulate_grad_batches=2 and
# limit_train_batches=0.7, on BoringModel's SGD(lr=0.1) and StepLR(step_size=1)).
class ForwardsItsHooks(Tiny):
    def backward(self, *args, **kwargs):
        return super().backward(*args, **kwargs)

    def optimizer_step(self, *args, **kwargs):
        return super().optimizer_step(*args, **kwargs)

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.layer.parameters(), lr=0.1)
        return [optimizer], [torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)]

# Lightning-AI/pytorch-lightning examples/pytorch/domain_templates/semantic_segmentation.py
# @ 606c6ac633383a575c18749b3b586fc15d58dcc3 (SegModel: Adam, CosineAnnealingLR(T_max=10) on the default interval,
# trained with `Trainer()`, whose max_epochs defaults to 1000: a cosine that comes back up every 20 epochs).
class SegModel(Tiny):
    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=1e-3)
        sch = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
        return [opt], [sch]


# ScrollPrize/villa pull request #1495 ("Fix per-iteration LR schedulers being given an epoch count as their
# horizon": a warm-up cosine lambda given max_steps=max_epoch and stepped per optimizer step decays to 0 and comes
# back 140 times); here with transformers' get_cosine_schedule_with_warmup, the same lambda.
class CosineSizedInEpochs(Tiny):
    def __init__(self, sized_with: str = "max_epochs") -> None:
        super().__init__()
        self.sized_with = sized_with

    def configure_optimizers(self):
        transformers = pytest.importorskip("transformers")
        optimizer = torch.optim.AdamW(self.parameters(), lr=1e-3)
        scheduler = transformers.get_cosine_schedule_with_warmup(
            optimizer, num_warmup_steps=1, num_training_steps=getattr(self.trainer, self.sized_with))
        return [optimizer], [{"scheduler": scheduler, "interval": "step"}]


# mattcleigh/mltools mltools/lightning_utils.py @ 0ad8084cbf49f0f33d0a22210e313e95ff392085 (linear_warmup_cosine_decay
# sized by get_max_steps(): len(trainer.datamodule.train_dataloader()) * max_epochs when max_steps is not set, which
# counts batches, not optimizer steps, under accumulate_grad_batches; simple_optim_sched steps it per step).
def get_max_steps(model) -> int:
    try:
        max_steps = model.trainer.max_steps
        if max_steps < 1:
            steps_per_epoch = len(model.trainer.datamodule.train_dataloader())
            max_steps = steps_per_epoch * model.trainer.max_epochs
    except Exception:  # noqa: BLE001 - as mltools: 0, then the default total_steps
        max_steps = 0
    return max_steps


def mltools_warmup_cosine(optimizer, model, warmup_steps=100, total_steps=1000, warmup_ratio=None):
    total_steps = get_max_steps(model) or total_steps
    if warmup_ratio is not None:
        warmup_steps = int(warmup_ratio * total_steps)

    def fn(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, fn)


class MltoolsModel(Tiny):
    def configure_optimizers(self):
        opt = torch.optim.AdamW(filter(lambda p: p.requires_grad, self.parameters()), lr=1e-3)
        scheduler = {"scheduler": mltools_warmup_cosine(opt, self, warmup_ratio=0.25), "interval": "step"}
        return [opt], [scheduler]


class Batches(pl.LightningDataModule):
    def __init__(self, batches: int = 8) -> None:
        super().__init__()
        self.batches = batches

    def train_dataloader(self):
        return loader(self.batches)


# Lightning-AI/pytorch-lightning issue #10496 ("'monitor' in lr_scheduler_config can't corporate with trainer parameter
# 'check_val_every_n_epoch'": a ReduceLROnPlateau on 'val/acc_epoch' with check_val_every_n_epoch=2 fails at the end of
# epoch 0).
class PlateauOnValAcc(Tiny):
    def __init__(self, interval: str = "epoch") -> None:
        super().__init__()
        self.interval = interval

    def validation_step(self, batch, batch_idx):
        self.log("val/acc_epoch", -regression(self.layer, batch))

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=1e-3, eps=1e-8)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=2,
                                                               min_lr=1e-6)
        config = {"scheduler": scheduler, "monitor": "val/acc_epoch"}
        if self.interval != "epoch":
            config["interval"] = self.interval
        return [optimizer], [config]


# Lightning-Universe/lightning-bolts src/pl_bolts/models/gans/dcgan/dcgan_module.py @ 34958a889 (DCGAN, Lightning 1.x:
# training_step(batch, batch_idx, optimizer_idx), two Adams (beta1, 0.999)), run on 2.x without the mixin.
class DCGAN(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.generator, self.discriminator = nn.Linear(4, 4), nn.Linear(4, 1)

    def training_step(self, batch, batch_idx, optimizer_idx):
        if optimizer_idx == 0:
            return self.discriminator(self.generator(batch[0]).detach()).mean() - self.discriminator(batch[0]).mean()
        return -self.discriminator(self.generator(batch[0])).mean()

    def configure_optimizers(self):
        opt_disc = torch.optim.Adam(self.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_gen = torch.optim.Adam(self.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        return [opt_disc, opt_gen], []


# Lightning-AI/pytorch-lightning examples/pytorch/domain_templates/reinforce_learn_ppo.py
# @ 8fe953340c915b1d2de064e0c1f9ba77e2f9e946 (PPOLightning: manual optimization, an actor and a critic optimizer each
# stepped once per batch in training_step, and an `optimizer_step(self, *args, **kwargs)` override meant to run
# nb_optim_iters steps per batch; Lightning never calls optimizer_step under manual optimization).
class PPO(pl.LightningModule):
    nb_optim_iters = 4

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.actor, self.critic = nn.Linear(4, 1), nn.Linear(4, 1)

    def training_step(self, batch):
        optimizer_actor, optimizer_critic = self.optimizers()
        self.manual_backward(regression(self.actor, batch))
        optimizer_actor.step()
        optimizer_actor.zero_grad()
        self.manual_backward(regression(self.critic, batch))
        optimizer_critic.step()
        optimizer_critic.zero_grad()

    def configure_optimizers(self):
        return torch.optim.Adam(self.actor.parameters(), lr=3e-4), torch.optim.Adam(self.critic.parameters(), lr=1e-3)

    def optimizer_step(self, *args, **kwargs):
        for _ in range(self.nb_optim_iters):
            super().optimizer_step(*args, **kwargs)


# AntixK/PyTorch-VAE experiment.py @ 09c445102360f139bd14822d1475080757e4ae08 (VAEXperiment: training_step(batch,
# batch_idx, optimizer_idx=0), one Adam and ExponentialLR(gamma=scheduler_gamma) on the default interval).
class VAEXperiment(Tiny):
    def training_step(self, batch, batch_idx, optimizer_idx=0):
        return regression(self.layer, batch)

    def configure_optimizers(self):
        optims = [torch.optim.Adam(self.parameters(), lr=0.005, weight_decay=0.0)]
        scheds = [torch.optim.lr_scheduler.ExponentialLR(optims[0], gamma=0.95)]
        return optims, scheds


# ============================================================================================== the harness


class Tape(pl.Callback):
    """The lrs of every param group at every optimizer step, as the step uses them: (optimizer index, lrs)."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, tuple[float, ...]]] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        index = next(i for i, o in enumerate(trainer.optimizers) if o is optimizer)
        self.steps.append((index, tuple(round(g["lr"], 12) for g in optimizer.param_groups)))


@dataclasses.dataclass
class Case:
    """One module as a project wrote it, the run it is fitted in, and what the library says about it."""

    make: Callable[[], Any]
    epochs: int = 2
    batches: int = 8
    options: dict[str, Any] = dataclasses.field(default_factory=dict)  # more Trainer options
    callbacks: Callable[[], list[Any]] = list  # the project's own callbacks, made fresh for each run
    val: bool = False  # a validation loader
    datamodule: bool = False  # the data from a LightningDataModule
    said: Optional[str] = None  # a mistake: the exact message, a RecipeWarning's (or the error's, with `raises`)
    raises: Optional[type] = None  # the error a mistake raises before training, when it is one
    preview: Any = True  # True: the preview equals the fit (lrs and messages); a str: its RecipeError; False: n/a
    preview_says: Optional[str] = None  # a correct module: the RecipeWarning its preview gives (a plateau's)
    in_training: bool = False  # a mistake only training shows (a gradient, an lr set by hand): the preview is silent
    preview_epochs: Optional[int] = None  # a run sized by `max_steps` alone (epochs=-1): the epochs it runs


def fit(case: Case, tmp_path, silent: bool = False) -> tuple[Tape, list[str], Optional[BaseException]]:
    """Fit the case's module with both checks: the tape, the RecipeWarnings' texts, the library's error (if any).
    With `silent`, a RecipeWarning is an error."""
    tape = Tape()
    options = dict(max_epochs=case.epochs, limit_val_batches=2, **case.options)
    run = trainer(tmp_path, callbacks=[ConfigureOptimizersCheck(), SchedulerCadenceCheck(print_report=False), tape,
                                       *case.callbacks()], **options)
    raised: Optional[BaseException] = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if silent:
            warnings.simplefilter("error", RecipeWarning)
        try:
            if case.datamodule:
                run.fit(case.make(), datamodule=Batches(case.batches))
            else:
                run.fit(case.make(), loader(case.batches), loader(2) if case.val else None)
        except (RecipeError, CadenceError) as err:
            raised = err
    return tape, [str(w.message) for w in caught if issubclass(w.category, RecipeWarning)], raised


def preview(case: Case) -> tuple[list[tuple[int, tuple[float, ...]]], list[str]]:
    """`preview_schedule` of a fresh module for the case's run: its lrs as `Tape` has them, and its RecipeWarnings."""
    limit = case.options.get("limit_train_batches", 1.0)
    batches = limit if isinstance(limit, int) else int(case.batches * limit)  # as Lightning limits an epoch
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = preview_schedule(case.make(), max_epochs=case.preview_epochs or case.epochs, steps_per_epoch=batches,
                                   accumulate_grad_batches=case.options.get("accumulate_grad_batches", 1),
                                   callbacks=case.callbacks())
    by_step: dict[int, tuple[int, list[float]]] = {}
    for record in records:
        by_step.setdefault(record["step"], (record["optimizer"], []))[1].append(round(record["lr"], 12))
    steps = [(optimizer, tuple(lrs)) for _, (optimizer, lrs) in sorted(by_step.items())]
    return steps, [str(w.message) for w in caught if issubclass(w.category, RecipeWarning)]


def manual(name: str) -> str:
    """What `preview_schedule` says of a module under manual optimization."""
    return (f"{name} uses manual optimization, so its `training_step` decides when optimizers and schedulers step and"
            " `preview_schedule` cannot know. Preview it under automatic optimization, or with"
            " `AlternatingOptimizersMixin`, whose cadence is declared.")


CORRECT = {
    "imagenet-step-decay": Case(ImageNetStepDecay, epochs=3, batches=4),
    "transfer-learning-milestones": Case(TransferLearning, epochs=3, batches=4,
                                         callbacks=lambda: [MilestonesFinetuning()]),
    "dqn-target-net": Case(DQN, batches=4),
    "gan-manual": Case(ManualGAN, batches=4, preview=manual("ManualGAN")),
    "simclr-warmup-cosine": Case(SimCLR, epochs=3),
    "moco-key-encoder": Case(MoCo, epochs=3, batches=4),
    "byol-per-step": Case(functools.partial(BYOL, per_step=True), epochs=3),
    "srgan-1x-with-mixin": Case(SRGAN, batches=4),
    "hydra-template-plateau": Case(HydraTemplate, batches=4, val=True, preview_says=(
        "`preview_schedule` keeps the lr of the ReduceLROnPlateau scheduler constant: it reacts to the logged metric"
        " 'val/loss', which only training produces.")),
    "glue-transformer": Case(GLUETransformer, options={"accumulate_grad_batches": 2}),
    "hf-lightning-base": Case(HFLightningBase, options={"accumulate_grad_batches": 2}),
    "cifar10-onecycle": Case(CifarBaseline),
    "latent-diffusion-ema": Case(LatentDiffusion),
    "timm-docs": Case(TimmDocs, epochs=4, batches=4),
    "nemo-noam-asr": Case(NeMoConformer),
    "nemo-cosine-lm": Case(NeMoLanguageModel, epochs=3),
    "manual-every-n-epochs": Case(ManualEveryNEpochs, epochs=3, batches=4, preview=manual("ManualEveryNEpochs")),
    "manual-plateau-gan": Case(ManualPlateauGAN, batches=4, preview=manual("ManualPlateauGAN")),
    "swa-callback": Case(PlainSGD, epochs=5, batches=2,
                         callbacks=lambda: [pl.callbacks.StochasticWeightAveraging(swa_lrs=1e-2)]),
    "barlow-twins-online-finetuner": Case(BarlowTwins, callbacks=lambda: [OnlineFineTuner()]),
    "cyclic-per-step": Case(Cyclic, epochs=3),
    "openspeech-per-step": Case(OpenspeechASR),
    "onecycle-per-step": Case(OneCycleStepping, options={"accumulate_grad_batches": 2, "limit_train_batches": 6}),
    "elfragmentador-warm-restarts": Case(ElFragmentador),
    "lightning-test-forwarding-hooks": Case(ForwardsItsHooks, batches=10,
                                            options={"accumulate_grad_batches": 2, "limit_train_batches": 0.7}),
    "ssl-finetuner-frozen-backbone": Case(SSLFineTuner, epochs=3, batches=4),
    "mae-lr-by-hand": Case(MAEPretrain, epochs=3, options={"accumulate_grad_batches": 2}),
}

#: Correct modules the library still warns about, and why it cannot tell before training.
FALSE_ALARMS: dict[str, str] = {}  # a correct module the library warns about: an xfail, with why

MISTAKES = {
    # the two modules above with the mistake their shape invites (the checks once warned on the correct ones)
    "ssl-finetuner-backbone-reached": Case(functools.partial(SSLFineTuner, frozen=False), epochs=3, batches=4,
                                           in_training=True, said=(
        "2 trainable parameters of SSLFineTuner are in no optimizer and will not be trained: 'backbone.weight',"
        " 'backbone.bias' (a backward pass gave 'backbone.bias' a gradient). Add them to a param group, or set"
        " `requires_grad=False` if that is deliberate."
    )),
    "mae-lr-scale-dropped": Case(functools.partial(MAEPretrain, scaled=False), epochs=3,
                                 options={"accumulate_grad_batches": 2}, in_training=True, said=(
        "AdamW param groups 0 and 1 carry timm's 'lr_scale' key, which only timm's schedulers apply (at its optimizer"
        " step 1, every group trains at the same multiple of its lr): torch optimizers and every torch or Lightning"
        " scheduler ignore it, so each layer trains at the same lr. Build the groups with `param_groups(model,"
        " weight_decay=..., lr=..., layer_decay=...)`, whose own 'lr' carries each layer's scale, or step this"
        " optimizer with a timm scheduler; if you do, silence this warning with `warnings.filterwarnings('ignore',"
        " \".*'lr_scale'\", RecipeWarning)`."
    )),
    "onecycle-per-epoch": Case(functools.partial(OneCycleStepping, interval=None), said=(
        "The OneCycleLR scheduler is written for 16 scheduler steps (total_steps=16), but this run steps it 2 times"
        " (interval='epoch': once at the end of each epoch, over 2 epochs): training ends 12.5% of the way through"
        " its schedule. Its numbers are in optimizer steps, but it has interval='epoch', so it steps once per epoch."
        " Did you mean interval='step'? (`scheduled(scheduler, interval='step')`, or 'interval': 'step' in its dict)."
        " If that is deliberate, silence this with `warnings.filterwarnings('ignore', '.*scheduler is written for')`."
    )),
    "byol-per-epoch": Case(BYOL, epochs=3, said=(
        "A LinearWarmupCosineAnnealingLR (interval='epoch') of lr-Adam makes every param group train at lr 0 on 7 of"
        " the run's 24 optimizer steps (steps 1 to 7), every step of the first epoch: those steps change no weight."
        " Its lr is 0 until it first steps, and it steps once per epoch (interval='epoch'). If its schedule counts"
        " optimizer steps, step it after every optimizer step: {'scheduler': scheduler, 'interval': 'step'} (or"
        " `scheduled(scheduler, interval='step')`); if it counts epochs, start it above 0. If that is deliberate,"
        " silence this with `warnings.filterwarnings('ignore', '.*train at lr 0')`."
    )),
    "cosine-sized-in-epochs": Case(CosineSizedInEpochs, said=(
        "The LambdaLR scheduler is written for 2 scheduler steps (its lr_lambda's num_training_steps=2), but this run"
        " steps it 16 times (interval='step': after each optimizer step, over 2 epochs): its schedule ends after 2"
        " steps and the rest of the run trains past it. Likely cause: num_training_steps=2 is the run's max_epochs,"
        " but the schedule counts optimizer steps. Compute it from the run: `trainer.estimated_stepping_batches`"
        " (optimizer steps; it counts accumulation, devices, limit_train_batches and max_steps), e.g."
        " num_training_steps=16. If that is deliberate, silence this with `warnings.filterwarnings('ignore',"
        " '.*scheduler is written for')`."
    )),
    "segmentation-cosine-restarts": Case(SegModel, epochs=20, batches=1, said=(
        "The CosineAnnealingLR scheduler is written for 10 scheduler steps (T_max=10), but this run steps it 20 times"
        " (interval='epoch': once at the end of each epoch, over 20 epochs): its schedule ends after 10 steps and the"
        " rest of the run trains past it. Set it to the run's length: 20 (`self.trainer.max_epochs`), e.g."
        " CosineAnnealingLR(..., T_max=20). If that is deliberate, silence this with"
        " `warnings.filterwarnings('ignore', '.*scheduler is written for')`."
    )),
    "cyclic-per-epoch": Case(functools.partial(Cyclic, interval=None), epochs=3, said=(
        "A CyclicLR (interval='epoch') of lr-SGD is still rising when the run ends: its lr grows from 0.001 at step 0"
        " to 0.0055 at the last of the run's 24 optimizer steps, so the warm-up never ends. It steps once per epoch"
        " (interval='epoch'), 3 times in this run. If its warm-up counts optimizer steps, step it after every"
        " optimizer step: {'scheduler': scheduler, 'interval': 'step'} (or `scheduled(scheduler, interval='step')`)."
        " If that is deliberate, silence this with `warnings.filterwarnings('ignore', '.*still rising when the run"
        " ends')`."
    )),
    "openspeech-per-epoch": Case(functools.partial(OpenspeechASR, interval=None), said=(
        "The OpenspeechWarmup scheduler never reaches the warm-up end (warmup_steps=4): this run steps it 2 times"
        " (interval='epoch': once at the end of each epoch, over 2 epochs). Its numbers are in optimizer steps, but"
        " it has interval='epoch', so it steps once per epoch. Did you mean interval='step'? (`scheduled(scheduler,"
        " interval='step')`, or 'interval': 'step' in its dict). If that is deliberate, silence this with"
        " `warnings.filterwarnings('ignore', '.*scheduler never reaches')`."
    )),
    "mltools-accumulation": Case(MltoolsModel, datamodule=True, options={"accumulate_grad_batches": 2}, said=(
        "The LambdaLR scheduler is written for 16 scheduler steps (its lr_lambda's total_steps=16), but this run"
        " steps it 8 times (interval='step': after each optimizer step, over 2 epochs): training ends 50.0% of the"
        " way through its schedule (its last step runs at 0.854 of the peak lr). Likely cause: the length ignores"
        " accumulate_grad_batches=2 (the optimizer steps once every 2 batches). Compute it from the run:"
        " `trainer.estimated_stepping_batches` (optimizer steps; it counts accumulation, devices, limit_train_batches"
        " and max_steps), e.g. total_steps=8. If that is deliberate, silence this with"
        " `warnings.filterwarnings('ignore', '.*scheduler is written for')`."
    )),
    "elfragmentador-onecycle-floor": Case(
        functools.partial(ElFragmentador, scheduler="onecycle"), batches=10, options={"accumulate_grad_batches": 3},
        raises=RecipeError, said=(
        "The OneCycleLR scheduler is written for 6 scheduler steps (total_steps=6), but this run steps it 8 times"
        " (interval='step': after each optimizer step, over 2 epochs): stepped past its end, torch's OneCycleLR"
        " raises \"Tried to step 7 times. The specified number of total steps is 6\", so training would stop at its"
        " step 7. Likely cause: the length counts only the full accumulation windows of an epoch (10 // 3 = 3), but"
        " the optimizer also steps on each epoch's last, partial window: 4 steps per epoch. Compute it from the run:"
        " `trainer.estimated_stepping_batches` (optimizer steps; it counts accumulation, devices, limit_train_batches"
        " and max_steps), e.g. OneCycleLR(..., total_steps=8)."
        )),
    "plateau-val-every-2": Case(PlateauOnValAcc, val=True, batches=4, options={"check_val_every_n_epoch": 2},
                                raises=RecipeError, preview=False, said=(
        "The ReduceLROnPlateau monitors 'val/acc_epoch' at the end of every epoch, but"
        " `Trainer(check_val_every_n_epoch=2)` validates only every 2 epochs, so after epoch 0 Lightning stops with"
        " \"val/acc_epoch ... is not available\". Fix one of: 'frequency': 2 in its scheduler dict (step it after each"
        " validation), 'strict': False (skip the epochs without the metric), or monitor a metric logged in"
        " `training_step`."
    )),
    "plateau-per-step-on-val": Case(functools.partial(PlateauOnValAcc, interval="step"), val=True, batches=4,
                                    raises=RecipeError, preview=False, said=(
        "The ReduceLROnPlateau monitors 'val/acc_epoch' after every optimizer step (interval='step'), so it first"
        " steps after batch 0 of epoch 0, but the first validation runs after batch 3 (`val_check_interval=1.0`):"
        " Lightning stops there with \"ReduceLROnPlateau conditioned on metric val/acc_epoch which is not available\"."
        " Fix one of: 'interval': 'epoch' in its scheduler dict (step it once per epoch, after validation),"
        " 'frequency': 4 (step it after each validation), 'strict': False (skip the steps without the metric), or"
        " monitor a metric logged in `training_step`."
    )),
    "dcgan-1x-no-mixin": Case(DCGAN, batches=4, raises=RecipeError, said=(
        "DCGAN is a Lightning 1.x module: `training_step` takes 1.x's arguments (`optimizer_idx`) or is gone in"
        " Lightning 2.0, which calls it otherwise or refuses it. Add `AlternatingOptimizersMixin` to its bases to run"
        " it unchanged: `class DCGAN(AlternatingOptimizersMixin, LightningModule)` (from lightning_optim_recipes), or"
        " port each hook to its 2.x form."
    )),
    "vae-optimizer-idx-default": Case(VAEXperiment, batches=4, raises=RecipeError, said=(
        "VAEXperiment is a Lightning 1.x module: `training_step` takes 1.x's arguments (`optimizer_idx`) or is gone"
        " in Lightning 2.0, which calls it otherwise or refuses it. Add `AlternatingOptimizersMixin` to its bases to"
        " run it unchanged: `class VAEXperiment(AlternatingOptimizersMixin, Tiny)` (from lightning_optim_recipes), or"
        " port each hook to its 2.x form."
    )),
    "ppo-optimizer-step-manual": Case(PPO, batches=4, preview=manual("PPO"), said=(
        "PPO overrides `optimizer_step`, but under manual optimization (`self.automatic_optimization = False`)"
        " Lightning never calls it: its code never runs. Do that work in `training_step` (call `opt.step()` as many"
        " times as you need, `sch.step()` where the schedule should move, `self.clip_gradients(...)` before a step),"
        " or remove the override. If that is deliberate, silence this with `warnings.filterwarnings('ignore',"
        " '.*under manual optimization .* Lightning never calls')`."
    )),
}


def _xfail(name: str) -> Any:
    reason = FALSE_ALARMS.get(name)
    return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=reason)) if reason else name


def check_correct(case: Case, tmp_path) -> None:
    """A correct module: it fits with no message, and its preview equals the fit or refuses as written out."""
    tape, _, raised = fit(case, tmp_path, silent=True)
    assert raised is None
    assert tape.steps, "it trained"
    if isinstance(case.preview, str):
        with pytest.raises(RecipeError) as refused:
            preview(case)
        assert str(refused.value) == case.preview
    elif case.preview:
        assert preview(case) == (tape.steps, [case.preview_says] if case.preview_says else [])


def check_mistake(case: Case, tmp_path) -> None:
    """A mistake: exactly its message (an error before any optimizer step, or one warning), and the preview's."""
    tape, messages, raised = fit(case, tmp_path)
    if case.raises is not None:  # before training: no optimizer step ran
        assert (type(raised), str(raised), tape.steps) == (case.raises, case.said, [])
    else:
        assert (raised, messages) == (None, [case.said])
    if isinstance(case.preview, str) or (case.preview and case.raises is not None):
        with pytest.raises(RecipeError) as refused:
            preview(case)
        assert str(refused.value) == (case.preview if isinstance(case.preview, str) else case.said)
    elif case.preview:
        # the same lrs, and the same warning before the run (or none, for what only training shows)
        assert preview(case) == (tape.steps, [] if case.in_training else [case.said])


@pytest.mark.parametrize("name", [_xfail(name) for name in CORRECT])
def test_a_correct_module_fits_without_a_message(tmp_path, name):
    check_correct(CORRECT[name], tmp_path)


@pytest.mark.parametrize("name", list(MISTAKES))
def test_a_mistake_draws_its_message(tmp_path, name):
    check_mistake(MISTAKES[name], tmp_path)
