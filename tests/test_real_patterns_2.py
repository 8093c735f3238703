"""More held-out real modules (the second red team): what the library says about `configure_optimizers` and its
hooks as public projects wrote them, at a tiny scale (the projects' own numbers are in the comments).

Each module is a rewrite of one found in a public project (repository, path and commit, or the issue or pull request
the mistake was reported in, above it); external schedulers (transformers', timm's, the projects' own) are rewritten
from their source with the same class or closure shape and the same names. The harness is
`tests/test_real_patterns.py`'s: a correct module fits with no `RecipeWarning` and its preview equals the fit (or
refuses with the `RecipeError` written out); a mistake draws exactly the message written out, before training, and
its preview the same lrs and the same warning.
"""

from __future__ import annotations

import functools
import math
from functools import partial
from typing import Optional

import pytest
import torch
from helpers import pl
from test_real_patterns import Case, Tiny, check_correct, check_mistake, regression
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from lightning_optim_recipes import RecipeError

pytestmark = pytest.mark.trainer


# ================================================================ rewrites of external schedulers (faithful shapes)

# huggingface/transformers src/transformers/optimization.py (v5.x): module-level lambdas bound with functools.partial.
def _get_linear_schedule_with_warmup_lr_lambda(current_step: int, *, num_warmup_steps: int, num_training_steps: int):
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1, num_warmup_steps))
    return max(0.0, float(num_training_steps - current_step) / float(max(1, num_training_steps - num_warmup_steps)))


def get_linear_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps, last_epoch=-1):
    lr_lambda = partial(_get_linear_schedule_with_warmup_lr_lambda, num_warmup_steps=num_warmup_steps,
                        num_training_steps=num_training_steps)
    return LambdaLR(optimizer, lr_lambda, last_epoch)


def _get_cosine_schedule_with_warmup_lr_lambda(current_step: int, *, num_warmup_steps: int, num_training_steps: int,
                                               num_cycles: float, min_lr_rate: float = 0.0):
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1, num_warmup_steps))
    progress = float(current_step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
    factor = 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))
    factor = factor * (1 - min_lr_rate) + min_lr_rate
    return max(0, factor)


def get_cosine_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps, num_cycles=0.5, last_epoch=-1):
    lr_lambda = partial(_get_cosine_schedule_with_warmup_lr_lambda, num_warmup_steps=num_warmup_steps,
                        num_training_steps=num_training_steps, num_cycles=num_cycles)
    return LambdaLR(optimizer, lr_lambda, last_epoch)


def _get_polynomial_decay_schedule_with_warmup_lr_lambda(current_step: int, *, num_warmup_steps: int,
                                                         num_training_steps: int, lr_end: float, power: float,
                                                         lr_init: int):
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1, num_warmup_steps))
    elif current_step > num_training_steps:
        return lr_end / lr_init
    else:
        lr_range = lr_init - lr_end
        decay_steps = num_training_steps - num_warmup_steps
        pct_remaining = 1 - (current_step - num_warmup_steps) / decay_steps
        decay = lr_range * pct_remaining**power + lr_end
        return decay / lr_init


def get_polynomial_decay_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps, lr_end=1e-7,
                                              power=1.0, last_epoch=-1):
    lr_init = optimizer.defaults["lr"]
    if not (lr_init > lr_end):
        raise ValueError(f"lr_end ({lr_end}) must be smaller than initial lr ({lr_init})")
    lr_lambda = partial(_get_polynomial_decay_schedule_with_warmup_lr_lambda, num_warmup_steps=num_warmup_steps,
                        num_training_steps=num_training_steps, lr_end=lr_end, power=power, lr_init=lr_init)
    return LambdaLR(optimizer, lr_lambda, last_epoch)


# huggingface/pytorch-image-models timm/scheduler/scheduler.py (0.9.x: t_in_epochs, _get_values, 'lr_scale' in
# update_groups) and timm/scheduler/cosine_lr.py @ 16664ea31ba52dc55c3744e69741fffddb4845da (no noise used here).
class Scheduler:
    def __init__(self, optimizer, param_group_field, t_in_epochs=True, noise_range_t=None, noise_type="normal",
                 noise_pct=0.67, noise_std=1.0, noise_seed=None, initialize=True) -> None:
        self.optimizer = optimizer
        self.param_group_field = param_group_field
        self._initial_param_group_field = f"initial_{param_group_field}"
        if initialize:
            for i, group in enumerate(self.optimizer.param_groups):
                if param_group_field not in group:
                    raise KeyError(f"{param_group_field} missing from param_groups[{i}]")
                group.setdefault(self._initial_param_group_field, group[param_group_field])
        else:
            for i, group in enumerate(self.optimizer.param_groups):
                if self._initial_param_group_field not in group:
                    raise KeyError(f"{self._initial_param_group_field} missing from param_groups[{i}]")
        self.base_values = [group[self._initial_param_group_field] for group in self.optimizer.param_groups]
        self.metric = None
        self.t_in_epochs = t_in_epochs
        self.noise_range_t, self.noise_pct, self.noise_type = noise_range_t, noise_pct, noise_type
        self.noise_std, self.noise_seed = noise_std, noise_seed if noise_seed is not None else 42
        self.update_groups(self.base_values)

    def state_dict(self):
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)

    def _get_lr(self, t):
        raise NotImplementedError

    def _get_values(self, t, on_epoch=True):
        proceed = (on_epoch and self.t_in_epochs) or (not on_epoch and not self.t_in_epochs)
        if not proceed:
            return None
        return self._get_lr(t)

    def step(self, epoch, metric=None):
        self.metric = metric
        values = self._get_values(epoch, on_epoch=True)
        if values is not None:
            self.update_groups(values)

    def step_update(self, num_updates, metric=None):
        self.metric = metric
        values = self._get_values(num_updates, on_epoch=False)
        if values is not None:
            self.update_groups(values)

    def update_groups(self, values):
        if not isinstance(values, (list, tuple)):
            values = [values] * len(self.optimizer.param_groups)
        for param_group, value in zip(self.optimizer.param_groups, values):
            if "lr_scale" in param_group:
                param_group[self.param_group_field] = value * param_group["lr_scale"]
            else:
                param_group[self.param_group_field] = value


class CosineLRScheduler(Scheduler):
    def __init__(self, optimizer, t_initial, lr_min=0.0, cycle_mul=1.0, cycle_decay=1.0, cycle_limit=1, warmup_t=0,
                 warmup_lr_init=0, warmup_prefix=False, t_in_epochs=True, noise_range_t=None, noise_pct=0.67,
                 noise_std=1.0, noise_seed=42, k_decay=1.0, initialize=True) -> None:
        super().__init__(optimizer, param_group_field="lr", t_in_epochs=t_in_epochs, noise_range_t=noise_range_t,
                         noise_pct=noise_pct, noise_std=noise_std, noise_seed=noise_seed, initialize=initialize)
        assert t_initial > 0
        assert lr_min >= 0
        self.t_initial, self.lr_min, self.cycle_mul = t_initial, lr_min, cycle_mul
        self.cycle_decay, self.cycle_limit = cycle_decay, cycle_limit
        self.warmup_t, self.warmup_lr_init, self.warmup_prefix = warmup_t, warmup_lr_init, warmup_prefix
        self.k_decay = k_decay
        if self.warmup_t:
            self.warmup_steps = [(v - warmup_lr_init) / self.warmup_t for v in self.base_values]
            super().update_groups(self.warmup_lr_init)
        else:
            self.warmup_steps = [1 for _ in self.base_values]

    def _get_lr(self, t):
        if t < self.warmup_t:
            lrs = [self.warmup_lr_init + t * s for s in self.warmup_steps]
        else:
            if self.warmup_prefix:
                t = t - self.warmup_t
            i = t // self.t_initial
            t_i = self.t_initial
            t_curr = t - (self.t_initial * i)
            gamma = self.cycle_decay ** i
            lr_max_values = [v * gamma for v in self.base_values]
            k = self.k_decay
            if i < self.cycle_limit:
                lrs = [self.lr_min + 0.5 * (lr_max - self.lr_min) * (1 + math.cos(math.pi * t_curr ** k / t_i ** k))
                       for lr_max in lr_max_values]
            else:
                lrs = [self.lr_min for _ in self.base_values]
        return lrs


# state-spaces/s4 src/utils/optim/schedulers.py @ e757cef57d89e448c413de7325ed5601aceaac13 and
# Dao-AILab/flash-attention training/src/optim/timm_lr_scheduler.py @ 0bf5e50038ee341ece03bfd0c8ff45a6c57aed5a
# (identical): timm's cosine behind torch's _LRScheduler (whose __init__ never runs: timm's Scheduler.__init__ does
# not call super()), step() counting its own calls, step_update() when t_in_epochs is False.
class TimmCosineLRScheduler(CosineLRScheduler, torch.optim.lr_scheduler._LRScheduler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._last_epoch = -1
        self.step(epoch=0)

    def step(self, epoch=None):
        if epoch is None:
            self._last_epoch += 1
        else:
            self._last_epoch = epoch
        if self.t_in_epochs:
            super().step(epoch=self._last_epoch)
        else:
            super().step_update(num_updates=self._last_epoch)


# Lightning-Universe/lightning-bolts LinearWarmupCosineAnnealingLR as vendored by vturrisi/solo-learn
# solo/utils/lr_scheduler.py and microsoft/ClimaX src/climax/utils/lr_scheduler.py
# @ b96038def46ecdcb69dc46200acbaf370f444709 (chainable get_lr, closed form, warmup_start_lr).
class LinearWarmupCosineAnnealingLR(torch.optim.lr_scheduler._LRScheduler):
    def __init__(self, optimizer, warmup_epochs, max_epochs, warmup_start_lr=0.0, eta_min=0.0, last_epoch=-1):
        self.warmup_epochs, self.max_epochs = warmup_epochs, max_epochs
        self.warmup_start_lr, self.eta_min = warmup_start_lr, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == self.warmup_epochs:
            return self.base_lrs
        if self.last_epoch == 0:
            return [self.warmup_start_lr] * len(self.base_lrs)
        if self.last_epoch < self.warmup_epochs:
            return [group["lr"] + (base_lr - self.warmup_start_lr) / (self.warmup_epochs - 1)
                    for base_lr, group in zip(self.base_lrs, self.optimizer.param_groups)]
        if (self.last_epoch - 1 - self.max_epochs) % (2 * (self.max_epochs - self.warmup_epochs)) == 0:
            return [group["lr"] + (base_lr - self.eta_min) * (1 - math.cos(math.pi / (self.max_epochs
                                                                                      - self.warmup_epochs))) / 2
                    for base_lr, group in zip(self.base_lrs, self.optimizer.param_groups)]
        return [(1 + math.cos(math.pi * (self.last_epoch - self.warmup_epochs) / (self.max_epochs
                                                                                  - self.warmup_epochs)))
                / (1 + math.cos(math.pi * (self.last_epoch - self.warmup_epochs - 1) / (self.max_epochs
                                                                                        - self.warmup_epochs)))
                * (group["lr"] - self.eta_min) + self.eta_min
                for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        if self.last_epoch < self.warmup_epochs:
            return [self.warmup_start_lr + self.last_epoch * (base_lr - self.warmup_start_lr)
                    / max(1, self.warmup_epochs - 1) for base_lr in self.base_lrs]
        return [self.eta_min + 0.5 * (base_lr - self.eta_min) * (1 + math.cos(
            math.pi * (self.last_epoch - self.warmup_epochs) / (self.max_epochs - self.warmup_epochs)))
            for base_lr in self.base_lrs]


# =========================================================================================== correct modules


# ace-step/ACE-Step trainer.py @ 78acbe5801ff7d5807f70821993137f6249c1e00 (Pipeline.configure_optimizers after PR
# #198: AdamW (0.8, 0.9) over the LoRA parameters, LambdaLR linear warm-up then linear decay to 0 at
# hparams.max_steps, 'interval': 'step'; main() trains with Trainer(max_epochs=-1, max_steps=args.max_steps) and
# passes the same max_steps to the module; warmup_steps 10 of 2,000,000 there, 2 of 12 here).
class AceStepLoRA(Tiny):
    def __init__(self, max_steps: int = 12, warmup_steps: int = 2, interval: Optional[str] = "step") -> None:
        super().__init__()
        self.save_hyperparameters()

    def configure_optimizers(self):
        trainable_params = [p for name, p in self.layer.named_parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params=[{"params": trainable_params}], lr=1e-4, weight_decay=1e-2,
                                      betas=(0.8, 0.9))
        max_steps = self.hparams.max_steps
        warmup_steps = self.hparams.warmup_steps

        def lr_lambda(current_step):
            if current_step < warmup_steps:
                return float(current_step) / float(max(1, warmup_steps))
            progress = float(current_step - warmup_steps) / float(max(1, max_steps - warmup_steps))
            return max(0.0, 1.0 - progress)

        lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda, last_epoch=-1)
        if self.hparams.interval is None:  # before PR #198
            return [optimizer], [lr_scheduler]
        return [optimizer], [{"scheduler": lr_scheduler, "interval": "step"}]


# state-spaces/s4 train.py @ e757cef57d89e448c413de7325ed5601aceaac13 (SequenceLightningModule.configure_optimizers:
# AdamW over the parameters without `_optim`, then one `add_param_group` per distinct `_optim` dict (the SSM's
# A / dt get lr 0.001, weight_decay 0.0); scheduler from configs/scheduler/cosine_warmup.yaml =
# transformers.get_cosine_schedule_with_warmup with hard-coded num_warmup_steps / num_training_steps
# (configs/experiment/cifar/s4-cifar.yaml: 900 = 1 epoch, 180000 = 200 epochs), returned as {"scheduler": ...,
# "interval": train.interval ('step' in cosine_warmup.yaml), "monitor": train.monitor, "name": "trainer/lr"}).
class S4Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.A = nn.Parameter(torch.randn(4))
        self.A._optim = {"lr": 0.001, "weight_decay": 0.0}
        self.out = nn.Linear(4, 1)

    def forward(self, x):
        return self.out(x * self.A)


class S4Cifar(pl.LightningModule):
    def __init__(self, num_warmup_steps: int = 8, num_training_steps: int = 16) -> None:
        super().__init__()
        self.model = S4Block()
        self.optimizer_hp = {"lr": 0.01, "weight_decay": 0.05}
        self.num_warmup_steps, self.num_training_steps = num_warmup_steps, num_training_steps

    def training_step(self, batch, batch_idx):
        loss = regression(self.model, batch)
        self.log("val/accuracy", -loss)
        return loss

    def configure_optimizers(self):
        all_params = list(self.parameters())
        params = [p for p in all_params if not hasattr(p, "_optim")]
        optimizer = torch.optim.AdamW(params, **self.optimizer_hp)
        hps = [getattr(p, "_optim") for p in all_params if hasattr(p, "_optim")]
        hps = [dict(s) for s in sorted(list(dict.fromkeys(frozenset(hp.items()) for hp in hps)))]
        for hp in hps:
            params = [p for p in all_params if getattr(p, "_optim", None) == hp]
            optimizer.add_param_group({"params": params, **self.optimizer_hp, **hp})
        lr_scheduler = get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=self.num_warmup_steps,
                                                       num_training_steps=self.num_training_steps)
        scheduler = {"scheduler": lr_scheduler, "interval": "step", "monitor": "val/accuracy", "name": "trainer/lr"}
        return [optimizer], [scheduler]


# state-spaces/s4 configs/scheduler/timm_cosine.yaml @ e757cef (train.interval: epoch; TimmCosineLRScheduler
# t_initial 300, lr_min 1e-5, cycle_decay 0.1, warmup_lr_init 1e-6, warmup_t 10, cycle_limit 1), as the s4nd
# ConvNeXt ImageNet experiments use it (max_epochs 310 there; here t_initial = max_epochs = 4, warmup_t 1).
class S4TimmCosine(Tiny):
    def __init__(self, t_initial: int = 4) -> None:
        super().__init__()
        self.t_initial = t_initial

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=1e-3, weight_decay=0.05)
        lr_scheduler = TimmCosineLRScheduler(optimizer, t_initial=self.t_initial, lr_min=1e-5, cycle_decay=0.1,
                                             warmup_lr_init=1e-6, warmup_t=1, cycle_limit=1)
        return [optimizer], [{"scheduler": lr_scheduler, "interval": "epoch", "monitor": "val/accuracy",
                              "name": "trainer/lr"}]


# Dao-AILab/flash-attention training/src/tasks/seq.py @ e460b08f5ac67931f03d9b5dd5cdb366a53d65b6
# (SequenceModel.configure_optimizers: `return [optimizer], {"scheduler": ..., "interval": 'step', "monitor":
# 'val/loss'}` -- a list and a bare dict) with training/configs/experiment/owt/base.yaml @ 0bf5e50
# (scheduler linear-warmup = transformers.get_linear_schedule_with_warmup, num_warmup_steps 0.01 * max_steps,
# num_training_steps = trainer.max_steps = 400000, accumulate_grad_batches = global batch / (devices * batch)).
class FlashAttnOWT(Tiny):
    max_steps = 8

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=6e-4, weight_decay=0.1)
        lr_scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=0.25 * self.max_steps,
                                                       num_training_steps=self.max_steps)
        return [optimizer], {"scheduler": lr_scheduler, "interval": "step", "monitor": "val/loss"}


# Dao-AILab/flash-attention training/configs/experiment/pile/base.yaml @ 0bf5e50 (+ gpt3s-flash.yaml, which keeps it):
# TimmCosineLRScheduler with t_in_epochs False, t_initial 600000 of trainer.max_steps 800000, lr_min 0.1 * lr,
# warmup_t 0.01 * max_steps, warmup_lr_init 1e-6: the cosine reaches 10% of the peak at 75% of the run and holds
# there, deliberately (GPT-3's recipe: decay to 10% over 260B of 300B tokens, then continue at 10%).
class FlashAttnPile(Tiny):
    max_steps = 16

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=6e-4, weight_decay=0.1)
        lr_scheduler = TimmCosineLRScheduler(optimizer, t_in_epochs=False, t_initial=int(0.75 * self.max_steps),
                                             warmup_lr_init=1e-6, warmup_t=0.125 * self.max_steps, lr_min=0.1 * 6e-4)
        return [optimizer], {"scheduler": lr_scheduler, "interval": "step", "monitor": "val/loss"}


# vturrisi/solo-learn solo/methods/base.py @ c980e9e3f55342cec67da90045271d2511392562 (BaseMethod.configure_optimizers:
# groups from learnable_params with "name" keys, the classifier at its own lr; lr scaled by accumulate_grad_batches;
# 'static_lr' groups kept at the base lr by replacing the scheduler's get_lr with partial(static_lr, ...);
# LinearWarmupCosineAnnealingLR(warmup_epochs = warmup_epochs * estimated_stepping_batches / max_epochs (a float),
# max_epochs = estimated_stepping_batches, warmup_start_lr 3e-5) on interval 'step') and solo/methods/simsiam.py
# @ 16c00a64f10d94c245a1968cf49eb69000ab868d (the predictor group {"static_lr": True}).
def static_lr(get_lr, param_group_indexes, lrs_to_replace):
    lrs = get_lr()
    for idx, lr in zip(param_group_indexes, lrs_to_replace):
        lrs[idx] = lr
    return lrs


class SoloSimSiam(pl.LightningModule):
    def __init__(self, accumulate_grad_batches: int = 2, max_epochs: int = 2, warmup_epochs: int = 1,
                 scheduler_interval: str = "step") -> None:
        super().__init__()
        self.backbone, self.classifier = nn.Linear(4, 4), nn.Linear(4, 1)
        self.projector, self.predictor = nn.Linear(4, 4), nn.Linear(4, 4)
        self.max_epochs, self.warmup_epochs = max_epochs, warmup_epochs
        self.lr, self.classifier_lr = 0.05 * accumulate_grad_batches, 0.1 * accumulate_grad_batches
        self.min_lr, self.warmup_start_lr = 0.0, 3e-5 * accumulate_grad_batches
        self.scheduler_interval = scheduler_interval  # cfg.scheduler.interval: 'step' (default) or 'epoch'

    def training_step(self, batch, batch_idx):
        feats = self.backbone(batch[0])
        z = self.projector(feats)
        p = self.predictor(z)
        return regression(lambda x: self.classifier(feats.detach()), batch) - nn.functional.cosine_similarity(
            p, z.detach()).mean()

    @property
    def learnable_params(self):
        return [
            {"name": "backbone", "params": self.backbone.parameters()},
            {"name": "classifier", "params": self.classifier.parameters(), "lr": self.classifier_lr,
             "weight_decay": 0},
            {"params": self.projector.parameters()},
            {"params": self.predictor.parameters(), "static_lr": True},
        ]

    def configure_optimizers(self):
        learnable_params = self.learnable_params
        idxs_no_scheduler = [i for i, m in enumerate(learnable_params) if m.pop("static_lr", False)]
        optimizer = torch.optim.SGD(learnable_params, lr=self.lr, weight_decay=1e-5, momentum=0.9)
        max_warmup_steps = (self.warmup_epochs * (self.trainer.estimated_stepping_batches / self.max_epochs)
                            if self.scheduler_interval == "step" else self.warmup_epochs)
        max_scheduler_steps = (self.trainer.estimated_stepping_batches if self.scheduler_interval == "step"
                               else self.max_epochs)
        scheduler = {
            "scheduler": LinearWarmupCosineAnnealingLR(optimizer, warmup_epochs=max_warmup_steps,
                                                       max_epochs=max_scheduler_steps,
                                                       warmup_start_lr=self.warmup_start_lr if self.warmup_epochs > 0
                                                       else self.lr, eta_min=self.min_lr),
            "interval": self.scheduler_interval,
            "frequency": 1,
        }
        if idxs_no_scheduler:
            partial_fn = partial(static_lr, get_lr=scheduler["scheduler"].get_lr,
                                 param_group_indexes=idxs_no_scheduler,
                                 lrs_to_replace=[self.lr] * len(idxs_no_scheduler))
            scheduler["scheduler"].get_lr = partial_fn
        return [optimizer], [scheduler]


# CUNY-CL/yoyodyne yoyodyne/schedulers.py and yoyodyne/models/base.py @ 7a84f2c309920efc91fa8bf3c091ce9c7124c667
# (WarmupInverseSquareRoot: a LambdaLR subclass whose lr_lambda is its own bound method, (epoch + 1) / warmup_epochs
# then decay_factor * (epoch + 1) ** -0.5, stepped per epoch; configure_optimizers calls the optimizer and scheduler
# callables LightningCLI gave it and returns [optimizer], [scheduler]; issue #243 moved it from steps to epochs).
class WarmupInverseSquareRoot(LambdaLR):
    def __init__(self, optimizer, warmup_epochs, *args, **kwargs):
        self.warmup_epochs = warmup_epochs
        self.decay_factor = math.sqrt(warmup_epochs)
        super().__init__(optimizer, self.lr_lambda)

    def lr_lambda(self, epoch: int) -> float:
        if epoch < self.warmup_epochs:
            return (epoch + 1) / self.warmup_epochs
        return self.decay_factor * (epoch + 1) ** -0.5


class Yoyodyne(Tiny):
    def __init__(self) -> None:
        super().__init__()
        self.optimizer = functools.partial(torch.optim.Adam, lr=1e-3, betas=(0.9, 0.98))
        self.scheduler = functools.partial(WarmupInverseSquareRoot, warmup_epochs=2)

    def configure_optimizers(self):
        optimizer = self.optimizer(self.parameters())
        scheduler = self.scheduler(optimizer)
        return [optimizer], [scheduler]


# asteroid-team/asteroid asteroid/engine/system.py and asteroid/engine/schedulers.py
# @ 92c8d83a9dbe7c3afd1cd097e31254e0b4f82881 (System.configure_optimizers: a scheduler dict gets
# setdefault("monitor", "val_loss") and setdefault("frequency", 1); System.lr_scheduler_step calls
# scheduler.step() or scheduler.step(metric); DPTNetScheduler is a plain object (BaseScheduler), not a torch
# scheduler: Noam warm-up over warmup_steps, then exp_max * exp_base ** ((epoch - 1) // 2), its own epoch counter
# advanced every steps_per_epoch calls) with egs/wham/DPTNet/train.py's {"scheduler": DPTNetScheduler(optimizer,
# steps_per_epoch, 64), "interval": "step"}. Correct: steps_per_epoch = len(train_loader) (warmup_steps 4000 there,
# 2 here; exp_base 0.98 there, 0.5 here, over 6 epochs of 4 batches).
class BaseScheduler(object):
    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.step_num = 0

    def zero_grad(self):
        self.optimizer.zero_grad()

    def _get_lr(self):
        raise NotImplementedError

    def _set_lr(self, lr):
        for param_group in self.optimizer.param_groups:
            param_group["lr"] = lr

    def step(self, metrics=None, epoch=None):
        self.step_num += 1
        lr = self._get_lr()
        self._set_lr(lr)

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)

    def state_dict(self):
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}


class DPTNetScheduler(BaseScheduler):
    def __init__(self, optimizer, steps_per_epoch, d_model, warmup_steps=4000, noam_scale=1.0, exp_max=0.0004,
                 exp_base=0.98):
        super().__init__(optimizer)
        self.noam_scale, self.d_model, self.warmup_steps = noam_scale, d_model, warmup_steps
        self.exp_max, self.exp_base, self.steps_per_epoch = exp_max, exp_base, steps_per_epoch
        self.epoch = 0

    def _get_lr(self):
        if self.step_num % self.steps_per_epoch == 0:
            self.epoch += 1
        if self.step_num > self.warmup_steps:
            lr = self.exp_max * (self.exp_base ** ((self.epoch - 1) // 2))
        else:
            lr = (self.noam_scale * self.d_model ** (-0.5)
                  * min(self.step_num ** (-0.5), self.step_num * self.warmup_steps ** (-1.5)))
        return lr


class AsteroidSystem(Tiny):
    def __init__(self, divide_by_batch_size: bool = False, batches: int = 4, batch_size: int = 4) -> None:
        super().__init__()
        self.divide_by_batch_size, self.batches, self.batch_size = divide_by_batch_size, batches, batch_size
        self.default_monitor = "val_loss"

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=1e-3)
        len_train_loader = self.batches
        steps_per_epoch = len_train_loader // self.batch_size if self.divide_by_batch_size else len_train_loader
        scheduler = [{"scheduler": DPTNetScheduler(optimizer, steps_per_epoch, 64, warmup_steps=2, exp_base=0.5),
                      "interval": "step"}]
        epoch_schedulers = []
        for sched in scheduler:
            sched.setdefault("monitor", self.default_monitor)
            sched.setdefault("frequency", 1)
            if sched["interval"] == "batch":
                sched["interval"] = "step"
            epoch_schedulers.append(sched)
        return [optimizer], epoch_schedulers

    def lr_scheduler_step(self, scheduler, metric):
        if metric is None:
            scheduler.step()
        else:
            scheduler.step(metric)


# microsoft/torchgeo torchgeo/trainers/simclr.py @ 7ea0616ded0cc27a8feb8b2aafefd7c14155f6fb (SimCLRTask v2: LARS,
# SequentialLR(LinearLR(total_iters=warmup_epochs), CosineAnnealingLR(T_max=max_epochs)), milestones=[warmup_epochs],
# warmup_epochs = int(max_epochs * 0.05), max_epochs = trainer.max_epochs; {'scheduler': ..., 'monitor':
# self.monitor} per epoch). LARS (an SGD variant) is SGD here: the lr schedule does not depend on it.
class TorchgeoSimCLR(Tiny):
    monitor = "train_loss"

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=4.8, momentum=0.9, weight_decay=1e-6)
        max_epochs = 200
        if self.trainer and self.trainer.max_epochs:
            max_epochs = self.trainer.max_epochs
        warmup_epochs = int(max_epochs * 0.05)
        scheduler = torch.optim.lr_scheduler.SequentialLR(
            optimizer,
            schedulers=[torch.optim.lr_scheduler.LinearLR(optimizer, total_iters=warmup_epochs),
                        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_epochs)],
            milestones=[warmup_epochs])
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": self.monitor}}


# microsoft/ClimaX src/climax/global_forecast/module.py @ 0e57238bccb30be49bab9265590e578b4d75fd09
# (GlobalForecastModule.configure_optimizers: AdamW groups without decay for var_embed / pos_embed;
# LinearWarmupCosineAnnealingLR(warmup_epochs=10000, max_epochs=200000, 1e-8, 1e-8) -- both counted in optimizer
# steps although named epochs -- with 'interval': 'step'; microsoft/ClimaX issue #25 asked whether that was a bug, the
# maintainers answered it is deliberate).
class ClimaX(pl.LightningModule):
    def __init__(self, warmup_epochs: int = 2, max_epochs: int = 16, interval: str = "step") -> None:
        super().__init__()
        self.save_hyperparameters()
        self.head = nn.Linear(4, 1)
        self.pos_embed = nn.Parameter(torch.zeros(4))

    def training_step(self, batch, batch_idx):
        return regression(lambda x: self.head(x + self.pos_embed), batch)

    def configure_optimizers(self):
        decay, no_decay = [], []
        for name, m in self.named_parameters():
            if "var_embed" in name or "pos_embed" in name or "time_pos_embed" in name:
                no_decay.append(m)
            else:
                decay.append(m)
        optimizer = torch.optim.AdamW([
            {"params": decay, "lr": 5e-4, "betas": (0.9, 0.99), "weight_decay": 1e-5},
            {"params": no_decay, "lr": 5e-4, "betas": (0.9, 0.99), "weight_decay": 0},
        ])
        lr_scheduler = LinearWarmupCosineAnnealingLR(optimizer, self.hparams.warmup_epochs, self.hparams.max_epochs,
                                                     1e-8, 1e-8)
        scheduler = {"scheduler": lr_scheduler, "interval": self.hparams.interval, "frequency": 1}
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


# pyg-team/pytorch_geometric torch_geometric/graphgym/model_builder.py and torch_geometric/graphgym/optim.py
# @ 5c6461b2305ad068a6d61165b3c55852a11aaa41 (GraphGymModule.configure_optimizers: create_optimizer /
# create_scheduler from cfg.optim; the default scheduler 'cos' is CosineAnnealingLR(T_max=max_epoch) returned as
# [optimizer], [scheduler]; the Trainer runs cfg.optim.max_epoch epochs).
class GraphGym(Tiny):
    max_epoch = 3

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=0.01, weight_decay=5e-4)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.max_epoch)
        return [optimizer], [scheduler]


# galilai-group/stable-pretraining stable_pretraining/module.py and stable_pretraining/optim/lr_scheduler.py
# @ d15ec96d088a30e220f6fab1539dfb5d854729f0 (Module: manual optimization; training_step steps each optimizer and
# then `schedulers[idx].step()` after every optimizer step, whatever the 'interval' of its dict) with
# galilai-group/stable-worldmodel scripts/train/lewm.py @ addbab40377da680dadbfbc90250fe749f6f57e3
# (LinearWarmupCosineAnnealingLR(warmup_steps = 1% of max_epochs * len(train), max_steps = max_epochs * len(train)),
# 'interval': 'epoch'; issue #280 asked whether the 'epoch' was a bug: under this Module it is not used).
class StablePretrainingLR(torch.optim.lr_scheduler._LRScheduler):
    def __init__(self, optimizer, warmup_steps, max_steps, warmup_start_lr=0.0, eta_min=0.0, last_epoch=-1):
        self.warmup_steps, self.max_steps = warmup_steps, max_steps
        self.warmup_start_lr, self.eta_min = warmup_start_lr, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch < self.warmup_steps:
            return [self.warmup_start_lr + (base_lr - self.warmup_start_lr) * self.last_epoch / self.warmup_steps
                    for base_lr in self.base_lrs]
        return [self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(
            math.pi * (self.last_epoch - self.warmup_steps) / (self.max_steps - self.warmup_steps))) / 2
            for base_lr in self.base_lrs]


class StableWorldModel(Tiny):
    def __init__(self, max_epochs: int = 2, len_train: int = 8) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.max_epochs, self.len_train = max_epochs, len_train

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        sched = self.lr_schedulers()
        self.manual_backward(regression(self.layer, batch))
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=5e-5, weight_decay=1e-3)
        total_steps = self.max_epochs * self.len_train
        sched = StablePretrainingLR(opt, warmup_steps=max(1, int(0.125 * total_steps)), max_steps=total_steps)
        return [opt], [{"scheduler": sched, "interval": "epoch", "frequency": 1}]


# Lightning-Universe/lightning-transformers lightning_transformers/core/model.py
# @ bf79c2c6950e56801e8484a54956ec6b84631890 (TaskTransformer.configure_optimizers: AdamW lr 1e-5,
# compute_warmup(num_training_steps=-1 -> trainer.estimated_stepping_batches, num_warmup_steps=0.1 -> a float,
# 0.1 * the steps), transformers.get_linear_schedule_with_warmup, 'interval': 'step', 'frequency': 1).
class TaskTransformer(Tiny):
    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=1e-5)
        num_training_steps, num_warmup_steps = self.compute_warmup(num_training_steps=-1, num_warmup_steps=0.1)
        scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=num_warmup_steps,
                                                    num_training_steps=num_training_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    @property
    def num_training_steps(self) -> int:
        return self.trainer.estimated_stepping_batches

    def compute_warmup(self, num_training_steps, num_warmup_steps):
        if num_training_steps < 0:
            num_training_steps = self.num_training_steps
        if isinstance(num_warmup_steps, float):
            num_warmup_steps *= num_training_steps
        return num_training_steps, num_warmup_steps


# SysCV/vis4d vis4d/engine/training_module.py, vis4d/engine/optim/scheduler.py, vis4d/engine/callbacks/scheduler.py
# and vis4d/engine/run.py @ d1413746246f5f60c6302d8a66bc7a45b836ff2b, with vis4d/zoo/faster_rcnn/faster_rcnn_coco.py:
# an LRScheduler subclass (LRSchedulerWrapper) holding a step-based LinearLR(start_factor=0.001, total_iters=500,
# begin 0, end 500) and an epoch-based MultiStepLR(milestones=[8, 11]); Lightning steps it per epoch through the
# module's lr_scheduler_step (`scheduler.step(self.current_epoch)`, which steps only the epoch-based ones), and the
# LRSchedulerCallback that run.py always adds steps the step-based ones in on_train_batch_end
# (`scheduler.step_on_batch(trainer.global_step)`). 12 epochs there; 3 epochs of 4 batches, warm-up 3, milestone 2 here.
class LRSchedulerWrapper(torch.optim.lr_scheduler.LRScheduler):
    def __init__(self, lr_schedulers_cfg, optimizer, steps_per_epoch=-1):
        self.lr_schedulers_cfg = [dict(cfg) for cfg in lr_schedulers_cfg]
        self.lr_schedulers = {}
        super().__init__(optimizer)
        self.steps_per_epoch = steps_per_epoch
        for i, lr_scheduler_cfg in enumerate(self.lr_schedulers_cfg):
            if lr_scheduler_cfg["begin"] == 0:
                self._instantiate_lr_scheduler(i, lr_scheduler_cfg)

    def _instantiate_lr_scheduler(self, scheduler_idx, lr_scheduler_cfg):
        self.lr_schedulers[scheduler_idx] = {
            "scheduler": lr_scheduler_cfg["scheduler"](optimizer=self.optimizer),
            "begin": lr_scheduler_cfg["begin"], "end": lr_scheduler_cfg["end"],
            "epoch_based": lr_scheduler_cfg["epoch_based"],
        }

    def get_lr(self):
        lr = []
        for lr_scheduler in self.lr_schedulers.values():
            lr.extend(lr_scheduler["scheduler"].get_lr())
        return lr

    def state_dict(self):
        return {i: s["scheduler"].state_dict() for i, s in self.lr_schedulers.items()}

    def load_state_dict(self, state_dict):
        for scheduler_idx, _state_dict in state_dict.items():
            if scheduler_idx not in self.lr_schedulers:
                self._instantiate_lr_scheduler(scheduler_idx, self.lr_schedulers_cfg[scheduler_idx])
            self.lr_schedulers[scheduler_idx]["scheduler"].load_state_dict(_state_dict)

    def _step_lr(self, lr_scheduler, step):
        if lr_scheduler["begin"] <= step and (lr_scheduler["end"] == -1 or lr_scheduler["end"] >= step):
            lr_scheduler["scheduler"].step()

    def step(self, epoch=None):
        if epoch is not None:
            for lr_scheduler in self.lr_schedulers.values():
                if lr_scheduler["epoch_based"]:
                    self._step_lr(lr_scheduler, epoch)
            for i, lr_scheduler_cfg in enumerate(self.lr_schedulers_cfg):
                if lr_scheduler_cfg["epoch_based"] and lr_scheduler_cfg["begin"] == epoch + 1:
                    self._instantiate_lr_scheduler(i, lr_scheduler_cfg)

    def step_on_batch(self, step):
        for lr_scheduler in self.lr_schedulers.values():
            if not lr_scheduler["epoch_based"]:
                self._step_lr(lr_scheduler, step)
        for i, lr_scheduler_cfg in enumerate(self.lr_schedulers_cfg):
            if not lr_scheduler_cfg["epoch_based"] and lr_scheduler_cfg["begin"] == step:
                self._instantiate_lr_scheduler(i, lr_scheduler_cfg)


class LRSchedulerCallback(pl.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.last_step = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        schedulers = pl_module.lr_schedulers()
        if not isinstance(schedulers, (list, tuple)):
            schedulers = [schedulers]
        if trainer.global_step != self.last_step:
            for scheduler in schedulers:
                if scheduler is None:
                    continue
                assert isinstance(scheduler, LRSchedulerWrapper)
                scheduler.step_on_batch(trainer.global_step)
                self.last_step = trainer.global_step


class Vis4DFasterRCNN(Tiny):
    def configure_optimizers(self):
        self.trainer.fit_loop.setup_data()
        steps_per_epoch = len(self.trainer.train_dataloader)
        optimizer = torch.optim.SGD(self.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-4)
        cfg = [
            {"scheduler": partial(torch.optim.lr_scheduler.LinearLR, start_factor=0.001, total_iters=3),
             "begin": 0, "end": 3, "epoch_based": False},
            {"scheduler": partial(torch.optim.lr_scheduler.MultiStepLR, milestones=[2], gamma=0.1),
             "begin": 0, "end": -1, "epoch_based": True},
        ]
        return [optimizer], [LRSchedulerWrapper(cfg, optimizer, steps_per_epoch)]

    def lr_scheduler_step(self, scheduler, metric=None):
        scheduler.step(self.current_epoch)


# microsoft/torchgeo torchgeo/trainers/base.py @ 7ea0616ded0cc27a8feb8b2aafefd7c14155f6fb (BaseTask.configure_optimizers:
# AdamW, ReduceLROnPlateau(patience=hparams['patience']), {'scheduler': ..., 'monitor': self.monitor}; the
# classification / segmentation tasks log 'val_loss' in validation_step and monitor it).
class TorchgeoBase(Tiny):
    monitor = "val_loss"

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", regression(self.layer, batch))

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=1e-3)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=6)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": self.monitor}}


# ======================================================================================== mistaken modules


# huggingface/transformers issue #20916 ("Learning rate is set to zero for the entirety of the first epoch":
# get_polynomial_decay_schedule_with_warmup in a Lightning module, returned without an 'interval', so stepped per
# epoch while its numbers are optimizer steps).
class PolynomialPerEpoch(Tiny):
    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=1e-3)
        scheduler = get_polynomial_decay_schedule_with_warmup(
            optimizer, num_warmup_steps=2, num_training_steps=self.trainer.estimated_stepping_batches, lr_end=1e-7)
        return [optimizer], [scheduler]


# The mistake of Lightning-AI/pytorch-lightning issues #4929 and #6948, found in public modules (e.g. a DANN-style
# `LambdaLR(lambda step: (1 + lr_gamma * step) ** -lr_decay)` returned as
# `{"optimizer": optimizer, "lr_scheduler": scheduler, "interval": "step"}`): 'interval' at the top level of the
# optimizer dict, where Lightning ignores it (a RuntimeWarning "Found unsupported keys in the optimizer
# configuration") and steps the scheduler per epoch.
class IntervalAtTopLevel(Tiny):
    lr_gamma, lr_decay = 0.5, 0.75

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-3)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_lambda=lambda step: (1.0 + self.lr_gamma * float(step)) ** (-self.lr_decay))
        return {"optimizer": optimizer, "lr_scheduler": scheduler, "interval": "step"}


# The same mistake with a warm-up: a SequentialLR(LinearLR(total_iters=warmup_steps), CosineAnnealingLR(T_max=
# total steps)) returned as {"optimizer": ..., "lr_scheduler": scheduler, "interval": "step"} (a public module found
# by find_string; the commented-out line under it reads `[optimizer], [{"scheduler": scheduler, "interval": "step",
# ...}]`).
class SequentialTopLevelInterval(Tiny):
    warmup_steps = 4

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=1e-3)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.trainer.estimated_stepping_batches)
        warmup = torch.optim.lr_scheduler.LinearLR(optimizer, total_iters=self.warmup_steps)
        scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, schedulers=[warmup, scheduler],
                                                          milestones=[self.warmup_steps])
        return {"optimizer": optimizer, "lr_scheduler": scheduler, "interval": "step"}


# A public module (found by find_string): `return [optimizer], [{"lr_scheduler": scheduler, "interval": "step"}]` --
# the scheduler dict keyed 'lr_scheduler' instead of 'scheduler' (Lightning raises "The lr scheduler dict must have
# the key 'scheduler'").
class SchedulerDictKeyedLrScheduler(Tiny):
    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=1e-4, eps=1e-8, weight_decay=0.0)
        scheduler = get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=2, num_training_steps=16)
        return [optimizer], [{"lr_scheduler": scheduler, "interval": "step"}]


# microsoft/torchgeo torchgeo/trainers/moco.py @ 7ea0616ded0cc27a8feb8b2aafefd7c14155f6fb (MoCoTask v3:
# SequentialLR(LinearLR(start_factor=1/warmup_epochs, total_iters=warmup_epochs), CosineAnnealingLR(T_max=
# max_epochs)), milestones=[warmup_epochs], per epoch, warmup_epochs = 40 of 200: the cosine starts after the warm-up
# but is sized for the whole run, so it is cut at (max_epochs - warmup) / max_epochs = 80% and the run ends at 9.5% of
# the peak instead of 0 (MoCo v3: a cosine over the epochs after the warm-up). 2 of 10 here.
class TorchgeoMoCoV3(Tiny):
    monitor = "train_loss"
    warmup_epochs = 2

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(params=self.parameters(), lr=1e-3, weight_decay=0.05)
        warmup_epochs = self.warmup_epochs
        max_epochs = 200
        if self.trainer and self.trainer.max_epochs:
            max_epochs = self.trainer.max_epochs
        scheduler = torch.optim.lr_scheduler.SequentialLR(
            optimizer,
            schedulers=[torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1 / warmup_epochs,
                                                          total_iters=warmup_epochs),
                        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_epochs)],
            milestones=[warmup_epochs])
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": self.monitor}}


# The natural mistaken variant of the s4 CIFAR module: the same hard-coded num_warmup_steps / num_training_steps
# (counted in batches: 1 epoch, all epochs) trained with accumulate_grad_batches=2 (s4's trainer config passes it
# through; its transformer-wt103 experiment sets 2 beside a hard-coded num_training_steps): half the schedule.
S4CifarAccumulated = S4Cifar


# The natural mistaken variant of a timm step-wise schedule (create_scheduler_v2(step_on_epochs=False,
# updates_per_epoch=...) with `lr_scheduler_step: scheduler.step_update(num_updates=self.global_step)`, as public
# Kaggle modules write it) where updates_per_epoch = len(dataset) // batch_size // num_devices: batches, not optimizer
# steps, under accumulate_grad_batches=2 (the cosine reaches only half-way).
class TimmUpdatesPerEpoch(Tiny):
    num_epochs, batch_size, dataset_len = 2, 4, 32

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=1e-3, weight_decay=0.05)
        updates_per_epoch = self.dataset_len // self.batch_size // self.trainer.num_devices
        scheduler = CosineLRScheduler(optimizer, t_initial=self.num_epochs * updates_per_epoch, lr_min=1e-6,
                                      warmup_t=1 * 2, warmup_lr_init=0, warmup_prefix=False, t_in_epochs=False)
        return dict(optimizer=optimizer, lr_scheduler=dict(scheduler=scheduler, interval="step", frequency=1))

    def lr_scheduler_step(self, scheduler, metric):
        scheduler.step_update(num_updates=self.global_step)


# The natural mistaken variant of the flash-attention OWT module in a run sized by max_steps: the scheduler dict
# without its 'interval' (seq.py reads it from cfg.train.scheduler_interval; a config that sets 'epoch' there, or a
# port that drops the key), so the linear warm-up from 0 steps once per epoch: the whole first epoch at lr 0.
class FlashAttnOWTPerEpoch(FlashAttnOWT):
    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=6e-4, weight_decay=0.1)
        lr_scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=0.25 * self.max_steps,
                                                       num_training_steps=self.max_steps)
        return [optimizer], {"scheduler": lr_scheduler, "monitor": "val/loss"}


# The flash-attention OWT module with the scheduler lengths multiplied by the accumulation, as
# huggingface/diffusers issue #4387 shows diffusers' examples doing (num_warmup_steps=lr_warmup_steps * accumulation,
# num_training_steps=max_train_steps * accumulation) while the scheduler steps once per optimizer step: in a run
# sized by Trainer(max_steps=...), the decay is cut at half-way.
class FlashAttnOWTAccumulationTwice(FlashAttnOWT):
    def configure_optimizers(self):
        accumulation = self.trainer.accumulate_grad_batches
        optimizer = torch.optim.AdamW(self.parameters(), lr=6e-4, weight_decay=0.1)
        lr_scheduler = get_linear_schedule_with_warmup(optimizer,
                                                       num_warmup_steps=0.25 * self.max_steps * accumulation,
                                                       num_training_steps=self.max_steps * accumulation)
        return [optimizer], {"scheduler": lr_scheduler, "interval": "step", "monitor": "val/loss"}


PLATEAU = ("`preview_schedule` keeps the lr of the ReduceLROnPlateau scheduler constant: it reacts to the"
           " logged metric 'val_loss', which only training produces.")
MANUAL = (
    "StableWorldModel uses manual optimization, so its `training_step` decides when optimizers and"
    " schedulers step and `preview_schedule` cannot know. Preview it under automatic optimization, or with"
    " `AlternatingOptimizersMixin`, whose cadence is declared."
)

CORRECT = {
    "ace-step-lora-max-steps": Case(AceStepLoRA, epochs=-1, batches=4, options={"max_steps": 12}, preview_epochs=3),
    "s4-cifar-ssm-groups-cosine": Case(S4Cifar),
    "s4-timm-cosine-epoch": Case(S4TimmCosine, epochs=4, batches=2),
    "flash-attn-owt-max-steps-accumulate": Case(FlashAttnOWT, epochs=-1, options={"max_steps": 8,
                                                "accumulate_grad_batches": 2}, preview_epochs=2),
    "flash-attn-pile-cosine-then-hold": Case(FlashAttnPile, epochs=-1, options={"max_steps": 16}, preview_epochs=2),
    "flash-attn-pile-cosine-then-hold-max-epochs": Case(FlashAttnPile, epochs=2),
    "solo-learn-simsiam-static-lr": Case(SoloSimSiam, options={"accumulate_grad_batches": 2}),
    "solo-learn-simsiam-epoch-interval": Case(functools.partial(SoloSimSiam, accumulate_grad_batches=1,
                                                                max_epochs=4, warmup_epochs=2,
                                                                scheduler_interval="epoch"), epochs=4, batches=2),
    "yoyodyne-warmup-inverse-sqrt": Case(Yoyodyne, epochs=4, batches=2),
    "asteroid-dptnet": Case(AsteroidSystem, epochs=6, batches=4),
    "vis4d-faster-rcnn-wrapper-and-callback": Case(Vis4DFasterRCNN, epochs=3, batches=4,
                                                   callbacks=lambda: [LRSchedulerCallback()]),
    "torchgeo-base-plateau": Case(TorchgeoBase, epochs=3, batches=4, val=True, preview_says=PLATEAU),
    "torchgeo-simclr-v2": Case(TorchgeoSimCLR, epochs=20, batches=1),
    "climax-steps-named-epochs": Case(ClimaX),
    "graphgym-cos": Case(GraphGym, epochs=3, batches=2),
    "stable-worldmodel-manual": Case(StableWorldModel, preview=MANUAL),
    "lightning-transformers-float-warmup": Case(TaskTransformer, options={"accumulate_grad_batches": 2}),
}

MISTAKES = {
    "ace-step-before-pr198": Case(functools.partial(AceStepLoRA, interval=None), epochs=-1, batches=4,
                                  options={"max_steps": 12}, preview_epochs=3, said=(
        "The LambdaLR scheduler is written for 12 scheduler steps (its lr_lambda's max_steps=12), but this"
        " run steps it 3 times (interval='epoch': once at the end of each epoch, over 3 epochs): training ends"
        " 25.0% of the way through its schedule (its last step still runs at the peak lr). Its numbers are in"
        " optimizer steps, but it has interval='epoch', so it steps once per epoch. Did you mean"
        " interval='step'? (`scheduled(scheduler, interval='step')`, or 'interval': 'step' in its dict). If"
        " that is deliberate, silence this with `warnings.filterwarnings('ignore', '.*scheduler is written"
        " for')`."
    )),
    "hf-20916-polynomial-per-epoch": Case(PolynomialPerEpoch, said=(
        "The LambdaLR scheduler is written for 16 scheduler steps (its lr_lambda's num_training_steps=16),"
        " but this run steps it 2 times (interval='epoch': once at the end of each epoch, over 2 epochs):"
        " training ends 12.5% of the way through its schedule (its last step runs at 0.5 of the peak lr). Its"
        " numbers are in optimizer steps, but it has interval='epoch', so it steps once per epoch. Did you"
        " mean interval='step'? (`scheduled(scheduler, interval='step')`, or 'interval': 'step' in its dict)."
        " If that is deliberate, silence this with `warnings.filterwarnings('ignore', '.*scheduler is written"
        " for')`."
    )),
    "flash-attn-owt-per-epoch-max-steps": Case(FlashAttnOWTPerEpoch, epochs=-1, options={"max_steps": 8,
                                               "accumulate_grad_batches": 2}, preview_epochs=2,
                                               said=(
        "The LambdaLR scheduler is written for 8 scheduler steps (its lr_lambda's num_training_steps=8), but"
        " this run steps it 2 times (interval='epoch': once at the end of each epoch, over 2 epochs): training"
        " ends 25.0% of the way through its schedule (its last step runs at 0.5 of the peak lr). Its numbers"
        " are in optimizer steps, but it has interval='epoch', so it steps once per epoch. Did you mean"
        " interval='step'? (`scheduled(scheduler, interval='step')`, or 'interval': 'step' in its dict). If"
        " that is deliberate, silence this with `warnings.filterwarnings('ignore', '.*scheduler is written"
        " for')`."
    )),
    "flash-attn-owt-accumulation-twice-max-steps": Case(FlashAttnOWTAccumulationTwice, epochs=-1,
                                                        options={"max_steps": 8, "accumulate_grad_batches": 2},
                                                        preview_epochs=2, said=(
        "The LambdaLR scheduler is written for 16 scheduler steps (its lr_lambda's num_training_steps=16),"
        " but this run steps it 8 times (interval='step': after each optimizer step, over 2 epochs): training"
        " ends 50.0% of the way through its schedule (its last step runs at 0.75 of the peak lr). Likely"
        " cause: the length ignores accumulate_grad_batches=2 (the optimizer steps once every 2 batches)."
        " Compute it from the run: `trainer.estimated_stepping_batches` (optimizer steps; it counts"
        " accumulation, devices, limit_train_batches and max_steps), e.g. num_training_steps=8. If that is"
        " deliberate, silence this with `warnings.filterwarnings('ignore', '.*scheduler is written for')`."
    )),
    "flash-attn-owt-accumulation-twice-max-epochs": Case(FlashAttnOWTAccumulationTwice, epochs=2,
                                                         options={"accumulate_grad_batches": 2},
                                                         said=(
        "The LambdaLR scheduler is written for 16 scheduler steps (its lr_lambda's num_training_steps=16),"
        " but this run steps it 8 times (interval='step': after each optimizer step, over 2 epochs): training"
        " ends 50.0% of the way through its schedule (its last step runs at 0.75 of the peak lr). Likely"
        " cause: the length ignores accumulate_grad_batches=2 (the optimizer steps once every 2 batches)."
        " Compute it from the run: `trainer.estimated_stepping_batches` (optimizer steps; it counts"
        " accumulation, devices, limit_train_batches and max_steps), e.g. num_training_steps=8. If that is"
        " deliberate, silence this with `warnings.filterwarnings('ignore', '.*scheduler is written for')`."
    )),
    "interval-at-top-level-inverse-decay": Case(IntervalAtTopLevel, raises=RecipeError,
                                                said=(
        "The optimizer dict returned by `configure_optimizers` has 'interval' at its top level, where"
        " Lightning does not read it: 'interval' belongs to the scheduler. Move it into the 'lr_scheduler'"
        " dict: {'optimizer': optimizer, 'lr_scheduler': {'scheduler': scheduler, 'interval': 'step'}}."
    )),
    "interval-at-top-level-sequential-warmup": Case(SequentialTopLevelInterval, raises=RecipeError,
                                                    said=(
        "The optimizer dict returned by `configure_optimizers` has 'interval' at its top level, where"
        " Lightning does not read it: 'interval' belongs to the scheduler. Move it into the 'lr_scheduler'"
        " dict: {'optimizer': optimizer, 'lr_scheduler': {'scheduler': scheduler, 'interval': 'step'}}."
    )),
    "scheduler-dict-keyed-lr-scheduler": Case(SchedulerDictKeyedLrScheduler, raises=RecipeError, said=(
        "Unknown key 'lr_scheduler' in a scheduler dict: did you mean 'scheduler'? Valid keys: 'scheduler',"
        " 'name', 'interval', 'frequency', 'reduce_on_plateau', 'monitor', 'strict'."
    )),
    "torchgeo-moco-v3-cosine-cut": Case(TorchgeoMoCoV3, epochs=10, batches=1, said=(
        "The SequentialLR scheduler is written for 12 scheduler steps (its last milestone plus T_max=10), but"
        " this run steps it 10 times (interval='epoch': once at the end of each epoch, over 10 epochs):"
        " training ends 83.3% of the way through its schedule. Likely cause: its last scheduler, a"
        " CosineAnnealingLR, is sized for the whole run (T_max=10), but it starts at milestone 2. Size its"
        " last scheduler for what follows milestone 2: 8 (`self.trainer.max_epochs - 2`), e.g."
        " CosineAnnealingLR(..., T_max=8). If that is deliberate, silence this with"
        " `warnings.filterwarnings('ignore', '.*scheduler is written for')`."
    )),
    "s4-cifar-accumulated": Case(S4CifarAccumulated, options={"accumulate_grad_batches": 2},
                                 said=(
        "The LambdaLR 'trainer/lr' scheduler is written for 16 scheduler steps (its lr_lambda's"
        " num_training_steps=16), but this run steps it 8 times (interval='step': after each optimizer step,"
        " over 2 epochs): training ends 50.0% of the way through its schedule (its last step runs at 0.875 of"
        " the peak lr). Likely cause: the length ignores accumulate_grad_batches=2 (the optimizer steps once"
        " every 2 batches). Compute it from the run: `trainer.estimated_stepping_batches` (optimizer steps; it"
        " counts accumulation, devices, limit_train_batches and max_steps), e.g. num_training_steps=8. If that"
        " is deliberate, silence this with `warnings.filterwarnings('ignore', '.*scheduler is written for')`."
    )),
    "timm-updates-per-epoch-accumulated": Case(TimmUpdatesPerEpoch, options={"accumulate_grad_batches": 2},
                                               said=(
        "The CosineLRScheduler scheduler is written for 16 scheduler steps (t_initial=16), but this run steps"
        " it 8 times (interval='step': after each optimizer step, over 2 epochs): training ends 50.0% of the"
        " way through its schedule. Likely cause: the length ignores accumulate_grad_batches=2 (the optimizer"
        " steps once every 2 batches). Compute it from the run: `trainer.estimated_stepping_batches`"
        " (optimizer steps; it counts accumulation, devices, limit_train_batches and max_steps), e.g."
        " t_initial=8. If that is deliberate, silence this with `warnings.filterwarnings('ignore',"
        " '.*scheduler is written for')`."
    )),
    "climax-issue-25-proposed-epoch": Case(functools.partial(ClimaX, interval="epoch"), said=(
        "The LinearWarmupCosineAnnealingLR scheduler is written for 16 scheduler steps (max_epochs=16), but"
        " this run steps it 2 times (interval='epoch': once at the end of each epoch, over 2 epochs): training"
        " ends 12.5% of the way through its schedule. Its numbers are in optimizer steps, but it has"
        " interval='epoch', so it steps once per epoch. Did you mean interval='step'? (`scheduled(scheduler,"
        " interval='step')`, or 'interval': 'step' in its dict). If that is deliberate, silence this with"
        " `warnings.filterwarnings('ignore', '.*scheduler is written for')`."
    )),
    "asteroid-wham-dptnet-steps-per-epoch": Case(functools.partial(AsteroidSystem, divide_by_batch_size=True),
                                                 epochs=6, batches=4, said=(
        "The DPTNetScheduler scheduler counts steps_per_epoch=1 of its steps as an epoch, but this run steps it 4 times"
        " per epoch (interval='step': after each optimizer step): its epochs go by 4 times too fast. Compute it from"
        " the run: the optimizer steps of an epoch are `math.ceil(self.trainer.num_training_batches /"
        " self.trainer.accumulate_grad_batches)`, e.g. steps_per_epoch=4. If that is deliberate, silence this with"
        " `warnings.filterwarnings('ignore', '.*counts .* of its steps as an epoch')`."
    )),
}


@pytest.mark.parametrize("name", list(CORRECT))
def test_a_correct_module_fits_without_a_message(tmp_path, name):
    check_correct(CORRECT[name], tmp_path)


@pytest.mark.parametrize("name", list(MISTAKES))
def test_a_mistake_draws_its_message(tmp_path, name):
    check_mistake(MISTAKES[name], tmp_path)
