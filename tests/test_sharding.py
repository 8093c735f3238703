"""Sharded training's single-process parts: `preview_schedule` from a checkpoint saved on disk (a ``.ckpt`` file
here; the directory of shards FSDP2 saves is previewed in test_fsdp2_resume.py), the preview of a module whose
``configure_model`` shards, and `FlatMuon` (Muon for sharded or flattened matrices) logged as Muon."""

from __future__ import annotations

import warnings

import pytest
import torch
from helpers import TinyRegressor, loader, pl, trainer
from torch import nn

from lightning_optim_recipes import OptimRecipeMixin, RecipeError, hybrid_optimizer, preview_schedule
from lightning_optim_recipes.hybrid import FlatMuon
from lightning_optim_recipes.naming import optimizer_names

OLD = {"optimizer": "AdamW", "lr": 0.1, "weight_decay": 0.01, "overrides": {"decoder": {"lr": 0.05}},
       "scheduler": {"type": "multistep", "milestones": [2], "gamma": 0.5, "interval": "step"}}
NEW = {"optimizer": "AdamW", "lr": 0.05, "weight_decay": 0.02, "overrides": {"decoder": {"lr": 0.025}},
       "scheduler": {"type": "multistep", "milestones": [6], "gamma": 0.1, "interval": "step"}}


class Regressor(OptimRecipeMixin, TinyRegressor):
    resume = "recipe"

    def __init__(self, recipe=None):
        super().__init__()
        self.optim_recipe = recipe


@pytest.mark.trainer
def test_preview_from_a_checkpoint_file_is_what_the_resumed_fit_trains(tmp_path):
    checkpoints = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1)
    trainer(tmp_path, max_epochs=1, callbacks=[checkpoints], enable_checkpointing=True).fit(Regressor(OLD), loader(4))
    path = tmp_path / "ckpt" / "epoch=0-step=4.ckpt"
    resumed = Regressor(NEW)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the table of what the resume changes
        trainer(tmp_path, max_epochs=3).fit(resumed, loader(4), ckpt_path=str(path))
        preview = preview_schedule(NEW, module=TinyRegressor(), max_epochs=3, steps_per_epoch=4, resume="recipe",
                                   resume_from=str(path))
    # the new milestone (6) and gamma (0.1), from step 4 on: 0.05 and 0.025 until step 5, a tenth after
    assert [lr for _, _, lrs in resumed.lr_log for lr in lrs] == pytest.approx(
        [0.05, 0.05, 0.025, 0.025] * 2 + [0.005, 0.005, 0.0025, 0.0025] * 6, rel=1e-12)
    names = ["decay", "no_decay", "decoder", "decoder/no_decay"]
    assert [[r["step"], r["group"], r["lr"]] for r in preview] == [
        [step, names[g], lr] for step, (_, _, lrs) in enumerate(resumed.lr_log, start=4) for g, lr in enumerate(lrs)]
    assert preview.resume_report.table() == resumed.resume_report.table()
    assert preview.resume_report.positions == (4,)


@pytest.mark.parametrize(("where", "error"), [
    ("empty", "is a directory but not a sharded Lightning checkpoint \\(no meta.pt in it\\): give the checkpoint's"),
    ("missing.ckpt", "No checkpoint at '.*missing.ckpt': give the path of a ``.ckpt`` file or of the directory"),
])
def test_a_path_that_is_not_a_checkpoint_is_refused(tmp_path, where, error):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecipeError, match=error):
        preview_schedule(OLD, module=TinyRegressor(), max_epochs=2, steps_per_epoch=4, resume_from=str(tmp_path / where))


class Sharded(OptimRecipeMixin, TinyRegressor):
    """Shards its encoder and decoder as `ModelParallelStrategy` documents it: with the strategy's device mesh."""

    optim_recipe = OLD

    def configure_model(self):
        from torch.distributed.fsdp import fully_shard

        fully_shard(self.encoder, mesh=self.device_mesh["data_parallel"])
        fully_shard(self.decoder, mesh=self.device_mesh["data_parallel"])


class Guarded(Sharded):
    def configure_model(self):
        if self.device_mesh is None:  # a preview: the unsharded module has the same param groups
            return
        super().configure_model()


def test_a_module_that_shards_in_configure_model_previews_once_it_returns_without_a_mesh():
    with pytest.raises(RecipeError, match=r"It shards the model with `self.device_mesh`, which only a sharding"
                                          r" strategy's Trainer has: begin it with `if self.device_mesh is None:"
                                          r" return`"):
        preview_schedule(Sharded(), max_epochs=1, steps_per_epoch=4)
    preview = preview_schedule(Guarded(), max_epochs=1, steps_per_epoch=4)
    assert [(r["step"], r["group"], r["lr"]) for r in preview if r["group"] == "decoder"] == [
        (0, "decoder", 0.05), (1, "decoder", 0.05), (2, "decoder", 0.025), (3, "decoder", 0.025)]


def test_flat_muon_is_logged_as_muon():
    """`FlatMuon` is torch's Muon on a conv kernel's 2-D view, or on a sharded matrix gathered whole: its groups are
    logged under Muon's name, whatever the strategy, as torch's Muon's are."""
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.Flatten(), nn.Linear(4, 4), nn.Linear(4, 2))
    optimizer = hybrid_optimizer(model, muon={"lr": 0.02}, adamw={"lr": 3e-4}, conv_view=True)
    assert [type(part).__name__ for part in optimizer.parts] == ["FlatMuon", "AdamW"]
    assert isinstance(optimizer.parts[0], FlatMuon)
    names = optimizer_names([], [optimizer])
    assert names.groups[0] == ("lr-Muon/hidden", "lr-AdamW/scalar/no_decay", "lr-AdamW/head", "lr-AdamW/head/no_decay")
    torch.manual_seed(0)
    model(torch.randn(1, 2, 3, 3)).sum().backward()
    optimizer.step()  # a plain (unsharded) parameter: torch's step on its view, as before
    assert tuple(optimizer.parts[0].state[model[0].weight]["momentum_buffer"].shape) == (4, 18)
