"""The seed's optimizer patterns on a real Trainer: the exact lr of every param group at every step of every epoch.

Each module records ``(epoch, batch, lrs of every group)`` in `training_step` (`TinyRegressor`), i.e. the lrs the
optimizer step of that batch runs with. Expected values are written out.
"""

from __future__ import annotations

import pytest
import torch
from helpers import TinyRegressor, loader, trainer

from lightning_optim_recipes import (
    OptimRecipeMixin,
    RecipeError,
    cosine,
    exponential,
    multistep,
    param_groups,
    validate_optimizers,
    warmup_cosine,
)

pytestmark = pytest.mark.trainer


def _assert_log(log, expected):
    """`expected`: {(epoch, batch): lrs}; the log must hold exactly those steps, in order, with those lrs."""
    assert [(epoch, batch) for epoch, batch, _ in log] == list(expected)
    for (epoch, batch, lrs), want in zip(log, expected.values()):
        assert lrs == pytest.approx(want, rel=1e-12, abs=1e-15), (epoch, batch)


def test_single_adam(tmp_path):
    class SingleAdam(TinyRegressor):
        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    model = SingleAdam()
    trainer(tmp_path, max_epochs=2).fit(model, loader(3))
    _assert_log(model.lr_log, {(e, b): (1e-3,) for e in range(2) for b in range(3)})
    assert validate_optimizers(model.configure_optimizers(), model).schedulers == ()


def test_param_groups_weight_decay_and_multistep(tmp_path):
    """Encoder and decoder at their own lrs, weight decay 1e-6 only where it belongs, halved after epoch 2, then kept."""

    class EncoderDecoder(TinyRegressor):
        def configure_optimizers(self):
            groups = param_groups(self, weight_decay=1e-6, overrides={"encoder": {"lr": 1e-3}, "decoder": {"lr": 1e-2}})
            optimizer = torch.optim.Adam(groups)
            return [optimizer], [multistep(optimizer, milestones=[2], gamma=0.5)]

    model = EncoderDecoder()
    fit = trainer(tmp_path, max_epochs=4)
    fit.fit(model, loader(2))
    optimizer = fit.optimizers[0]
    assert [(g["name"], g["weight_decay"], len(g["params"])) for g in optimizer.param_groups] == [
        ("encoder", 1e-6, 1),  # encoder.0.weight
        ("encoder/no_decay", 0.0, 3),  # encoder.0.bias, LayerNorm weight and bias
        ("decoder", 1e-6, 1),
        ("decoder/no_decay", 0.0, 1),
    ]
    full, half = (1e-3, 1e-3, 1e-2, 1e-2), (5e-4, 5e-4, 5e-3, 5e-3)
    _assert_log(model.lr_log, {
        (0, 0): full, (0, 1): full,
        (1, 0): full, (1, 1): full,
        (2, 0): half, (2, 1): half,  # the milestone: halved from epoch 2 on
        (3, 0): half, (3, 1): half,  # ... and kept
    })


def test_step_exponential_beside_epoch_cosine(tmp_path):
    """ExponentialLR every optimizer step and CosineAnnealingLR every epoch, on one optimizer with two param groups.

    Lightning 2.x trains a single optimizer under automatic optimization, so both schedules drive the same
    optimizer; both are multiplicative, so group lr = base lr * 0.5**global_step * (1 + cos(pi * epoch / 3)) / 2.
    """

    class TwoCadences(OptimRecipeMixin, TinyRegressor):
        def configure_optimizers(self):
            optimizer = torch.optim.SGD(
                [{"params": self.encoder.parameters()}, {"params": self.decoder.parameters(), "lr": 0.1}], lr=1.0
            )
            return [optimizer], [
                exponential(optimizer, gamma=0.5, interval="step", name="per-step"),
                cosine(optimizer, t_max=3, interval="epoch", name="per-epoch"),
            ]

    model = TwoCadences()
    fit = trainer(tmp_path, max_epochs=3)
    fit.fit(model, loader(2))
    assert [(c.interval, c.name, type(c.scheduler).__name__) for c in fit.lr_scheduler_configs] == [
        ("step", "per-step", "ExponentialLR"), ("epoch", "per-epoch", "CosineAnnealingLR"),
    ]
    _assert_log(model.lr_log, {
        (0, 0): (1.0, 0.1),
        (0, 1): (0.5, 0.05),
        (1, 0): (0.25 * 0.75, 0.025 * 0.75),  # cosine at epoch 1: (1 + cos(pi / 3)) / 2 = 0.75
        (1, 1): (0.125 * 0.75, 0.0125 * 0.75),
        (2, 0): (0.0625 * 0.25, 0.00625 * 0.25),  # epoch 2: (1 + cos(2 pi / 3)) / 2 = 0.25
        (2, 1): (0.03125 * 0.25, 0.003125 * 0.25),
    })
    assert [g["lr"] for g in fit.optimizers[0].param_groups] == [0.0, 0.0]  # the cosine ended after epoch 3


def test_warmup_cosine_reaches_min_lr_at_the_last_step(tmp_path):
    """total_steps from `trainer.estimated_stepping_batches` (3 epochs x 3 batches = 9); the decoder keeps its ratio."""

    class Warmup(TinyRegressor):
        def configure_optimizers(self):
            groups = param_groups(self, weight_decay=0.01, overrides={"decoder": {"lr": 0.5}})
            optimizer = torch.optim.AdamW(groups, lr=1.0)
            return {"optimizer": optimizer, "lr_scheduler": warmup_cosine(optimizer, warmup_steps=3, min_lr=0.1, trainer=self.trainer)}

    model = Warmup()
    fit = trainer(tmp_path, max_epochs=3)
    fit.fit(model, loader(3))
    assert fit.lr_scheduler_configs[0].scheduler.total_steps == 9
    # multiplier of the default lr (1.0): warmup 1/3, 2/3, 1 (step 2), then 0.1 + 0.9 * (1 + cos(pi * j / 6)) / 2
    multipliers = [1 / 3, 2 / 3, 1.0, 0.9397114317029974, 0.775, 0.55, 0.325, 0.16028856829700263, 0.1]
    _assert_log(model.lr_log, {
        (k // 3, k % 3): (m, m, 0.5 * m, 0.5 * m)  # decay and no_decay groups at lr 1.0; the decoder's at 0.5
        for k, m in enumerate(multipliers)
    })
    assert model.lr_log[-1][2] == pytest.approx((0.1, 0.1, 0.05, 0.05), abs=1e-15)  # exactly min_lr at the last step


def test_warmup_cosine_without_an_end_is_an_error_before_training(tmp_path):
    class Endless(TinyRegressor):
        def configure_optimizers(self):
            optimizer = torch.optim.AdamW(self.parameters(), lr=1.0)
            return {"optimizer": optimizer, "lr_scheduler": warmup_cosine(optimizer, warmup_steps=3, trainer=self.trainer)}

    model = Endless()
    with pytest.raises(RecipeError, match=r"^`trainer\.estimated_stepping_batches` is inf, so the schedule has no end:"
                       r" set `max_steps` or `max_epochs` on the Trainer, or pass `total_steps=`\.$"):
        trainer(tmp_path, max_epochs=-1, max_steps=-1).fit(model, loader(2))
    assert model.lr_log == []
