"""The FSDP2 scenarios of the multi-rank run (`spawned.py`): Lightning's `ModelParallelStrategy` with
``data_parallel_size=2, tensor_parallel_size=1`` on 2 CPU processes (gloo), each module sharded by ``fully_shard`` in
its ``configure_model``. Most train a module of `spawned_ddp` sharded, so that the tests compare them with the DDP
run of the same module on the same batches; FSDP1 (`FullyShardedDataParallel`) is wrapped by hand (Lightning's
`FSDPStrategy` refuses CPUs). Their tests: `test_fsdp2.py`, `test_fsdp2_resume.py`."""

from __future__ import annotations

import copy
import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from helpers import TinyRegressor, library_log, loader, pl
from spawned_ddp import Gan, Hybrid, Recipe, ScheduleFree, fit_with_callbacks, quiet, weights
from torch import nn
from torch.distributed.fsdp import fully_shard

from lightning_optim_recipes import (
    DEFAULT_NO_DECAY,
    ConfigureOptimizersCheck,
    OptimRecipeMixin,
    RecipeError,
    RecipeWarning,
    SchedulerCadenceCheck,
    get_recipe,
    muon_split,
    param_groups,
    preview_schedule,
    validate_optimizers,
)
from lightning_optim_recipes.hybrid import FlatMuon
from lightning_optim_recipes.resume.checkpoint import load_saved


def model_parallel() -> Any:
    """FSDP2 over both ranks: Lightning's `ModelParallelStrategy`, data-parallel 2, tensor-parallel 1."""
    from spawned import TIMEOUT

    return pl.strategies.ModelParallelStrategy(data_parallel_size=2, tensor_parallel_size=1, timeout=TIMEOUT)


def shard(module: Any, *parts: nn.Module, root: bool = True) -> None:
    """``fully_shard`` each of `parts`, then the module itself (its remaining parameters), over the data-parallel
    mesh."""
    mesh = module.device_mesh["data_parallel"]
    for part in parts:
        fully_shard(part, mesh=mesh)
    if root:
        fully_shard(module, mesh=mesh)


def groups_by_name(module: nn.Module, groups: list[dict[str, Any]]) -> list[list[Any]]:
    """Each group's name and its parameters' names, in order."""
    names = {id(p): n for n, p in module.named_parameters()}
    return [[g["name"], [names[id(p)] for p in g["params"]], g.get("lr"), g["weight_decay"]] for g in groups]


# ------------------------------------------------------------------------------------------------ param groups


class Blocks(pl.LightningModule):
    """An embedding, two blocks and a head, each sharded; and `twin`, an unsharded copy of the first block that no
    optimizer trains (as a target network): the no-decay rule, overrides, layer decay and the untrained-parameter
    check all have work. Its ``configure_optimizers`` builds every kind of group on the sharded module."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8)) for _ in range(2)])
        self.head = nn.Linear(8, 1)
        self.twin = copy.deepcopy(self.blocks[0])
        self.built: dict[str, Any] = {}

    def configure_model(self) -> None:
        if self.device_mesh is None:  # a preview, or a run without a device mesh: nothing to shard
            return
        shard(self, self.embed, *self.blocks, self.head, root=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed((x[:, 0].abs() * 3).long().clamp(0, 9))
        for block in self.blocks:
            h = torch.relu(block(h))
        return self.head(h)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def configure_optimizers(self):
        self.built = build_groups(self)
        optimizer = torch.optim.AdamW(param_groups(self, weight_decay=0.1), lr=0.01)
        # written for 100 steps, stepped 8 times: the fit check warns, on the sharded module as on any
        return {"optimizer": optimizer, "lr_scheduler": {
            "scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=100), "interval": "step"}}


def build_groups(module: nn.Module) -> dict[str, Any]:
    """Every kind of param group of `module` (sharded or not), by name and membership; and Muon's split."""
    return {
        "default": groups_by_name(module, param_groups(module, weight_decay=0.1)),
        "overrides": groups_by_name(module, param_groups(module, weight_decay=0.1, overrides={"head": {"lr": 0.5}})),
        "layer_decay": groups_by_name(module, param_groups(module, weight_decay=0.1, lr=1.0, layer_decay=0.5)),
        "muon_split": muon_split(module).table(),
    }


def groups(root: Path, rank: int) -> dict[str, Any]:
    model = Blocks()
    trainer = quiet(root, strategy=model_parallel(), max_epochs=1, callbacks=[ConfigureOptimizersCheck()])
    trainer.fit(model, loader(8))
    return {"built": model.built, "types": {n: type(p).__name__ for n, p in model.named_parameters()},
            "fsdp_modules": [type(m).__name__ for m in model.modules() if type(m).__name__.startswith("FSDP")]}


# ---------------------------------------------------------------------------- the DDP scenarios, sharded


class ShardedRecipe(Recipe):
    made = 0  # instances whose __init__ ran: FSDP2 re-runs it when a sharded module's class is called (copy.copy)

    def __init__(self) -> None:
        type(self).made += 1
        super().__init__()

    def configure_model(self) -> None:
        shard(self, self.encoder, self.decoder)


class ShardedGan(Gan):  # two sharded submodules; the module's own forward never runs
    def configure_model(self) -> None:
        shard(self, self.critic, self.generator)


class ShardedHybrid(Hybrid):
    def configure_model(self) -> None:
        shard(self, self.encoder, self.decoder)


def recipe(root: Path, rank: int) -> dict[str, Any]:
    result = fit_with_callbacks(root, rank, "fsdp2-recipe", ShardedRecipe(), strategy=model_parallel())
    result["made"] = ShardedRecipe.made  # 1: the checks before training copied the sharded module without it
    return result


def gan(root: Path, rank: int) -> dict[str, Any]:
    return fit_with_callbacks(root, rank, "fsdp2-gan", ShardedGan(), strategy=model_parallel())


def hybrid(root: Path, rank: int) -> dict[str, Any]:
    model = ShardedHybrid()
    result = fit_with_callbacks(root, rank, "fsdp2-hybrid", model, strategy=model_parallel())
    matrix = model.encoder[0].weight  # a DTensor now: torch's Muon on it warns, FlatMuon does not
    for name, cls in (("torch_muon", torch.optim.Muon), ("flat_muon", FlatMuon)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RecipeWarning)
            validate_optimizers(cls([matrix], lr=0.02))
        result[name] = [str(w.message) for w in caught if issubclass(w.category, RecipeWarning)]
    return result


class ShardedScheduleFree(ScheduleFree):
    def configure_model(self) -> None:
        shard(self, self.encoder, self.decoder)


def schedulefree(root: Path, rank: int) -> dict[str, Any]:
    """`spawned_ddp.schedulefree`, sharded: validation, a checkpoint (a directory of shards) every epoch."""
    torch.manual_seed(0)
    model = ShardedScheduleFree()
    checkpoints = pl.callbacks.ModelCheckpoint(dirpath=f"{root}/ckpt-fsdp2-schedulefree", save_top_k=-1)
    trainer = quiet(root, strategy=model_parallel(), callbacks=[checkpoints], enable_checkpointing=True,
                    num_sanity_val_steps=0)
    trainer.fit(model, loader(8), loader(2))
    saved = load_saved(f"{root}/ckpt-fsdp2-schedulefree/epoch=1-step=8.ckpt")
    return {"seen": model.seen, "train_mode": trainer.optimizers[0].param_groups[0]["train_mode"],
            "weights": dict(zip([n for n, _ in model.named_parameters()], weights(model))),
            "saved_train_mode": [g["train_mode"] for g in saved["optimizer_states"][0]["param_groups"]],
            "callbacks": [type(c).__name__ for c in trainer.callbacks]}


class CatalogueRegressor(OptimRecipeMixin, TinyRegressor):
    """GPT-3's recipe from the catalogue (AdamW, warm-up, cosine to 10%, clipping at 1.0); sharded under FSDP2."""

    optim_recipe = get_recipe("gpt-pretrain", lr=0.01, scheduler={"warmup_fraction": None, "warmup_steps": 2})

    def __init__(self) -> None:
        torch.manual_seed(0)
        super().__init__()
        self.norms_before: list[float] = []
        self.norms_after: list[float] = []

    def configure_model(self) -> None:
        if self.device_mesh is not None:
            shard(self, self.encoder, self.decoder)

    def training_step(self, batch, batch_idx):
        return super().training_step(batch, batch_idx) * 100  # gradients above the recipe's clipping at 1.0

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        self.norms_before.append(grad_norm(self))
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        self.norms_after.append(grad_norm(self))


def grad_norm(module: nn.Module) -> float:
    """The norm of all of `module`'s gradients, whole (a DTensor's shards gathered)."""
    grads = [p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad
             for p in module.parameters() if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))


def catalogue(root: Path, rank: int) -> dict[str, Any]:
    """The catalogue recipe under DDP, then under FSDP2."""
    result = {}
    for name, strategy in (("ddp", None), ("fsdp2", model_parallel())):
        model = CatalogueRegressor()
        trainer = quiet(root, max_epochs=2, **({"strategy": strategy} if strategy is not None else {}))
        trainer.fit(model, loader(8))
        result[name] = {"lr_log": model.lr_log, "weights": weights(model), "norms_before": model.norms_before,
                        "norms_after": model.norms_after}
    return result


# ------------------------------------------------------------------------------------------------------ resume

#: The recipe of the interrupted run, and the one a resume changes it to: half the lrs, twice the decay.
OLD = {"optimizer": "AdamW", "lr": 0.1, "weight_decay": 0.01, "overrides": {"decoder": {"lr": 0.05}},
       "scheduler": {"type": "warmup_cosine", "warmup_steps": 3, "min_lr": 0.001}}
NEW = {"optimizer": "AdamW", "lr": 0.05, "weight_decay": 0.02, "overrides": {"decoder": {"lr": 0.025}},
       "scheduler": {"type": "warmup_cosine", "warmup_steps": 3, "min_lr": 0.001}}


class ResumeRecipe(OptimRecipeMixin, TinyRegressor):
    """`OLD` (or another recipe), sharded; notes the optimizer's groups and moments' step counts when training
    starts (after the checkpoint is restored)."""

    optim_recipe = OLD

    def __init__(self, recipe: Any = None, resume: str = "checkpoint") -> None:
        torch.manual_seed(0)
        super().__init__()
        if recipe is not None:
            self.optim_recipe = recipe
        self.resume = resume
        self.started: dict[str, Any] = {}

    def configure_model(self) -> None:
        shard(self, self.encoder, self.decoder)

    def on_train_start(self) -> None:
        optimizer = self.trainer.optimizers[0]
        self.started = {"groups": [[g["name"], g["lr"], g["initial_lr"], g["weight_decay"]]
                                   for g in optimizer.param_groups],
                        "steps": sorted({float(s["step"]) for s in optimizer.state.values()})}


class ResumeGan(ShardedGan):
    """The sharded GAN with optimizer state to resume: SGD with momentum for the critic (and its halving lr), Adam
    for the generator."""

    def configure_optimizers(self):
        critic = torch.optim.SGD(self.critic.parameters(), lr=0.1, momentum=0.9)
        generator = torch.optim.Adam(self.generator.parameters(), lr=0.01)
        return ({"optimizer": critic, "frequency": 2,
                 "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.ExponentialLR(critic, 0.5),
                                  "interval": "step"}},
                {"optimizer": generator, "frequency": 1})


def moments(optimizers: Any) -> list[list[float]]:
    """Every tensor of every optimizer's state, whole, in parameter order."""
    out = []
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            for param in group["params"]:
                for key, value in sorted(optimizer.state[param].items()):
                    value = value.full_tensor() if hasattr(value, "full_tensor") else value
                    out.append([key, value.detach().flatten().tolist()])
    return out


def interrupted_and_resumed(root: Path, name: str, make: Any) -> dict[str, Any]:
    """A 3-epoch run of `make()` that saves a (sharded) checkpoint every epoch, and a run resumed from the first
    one: what each saw."""
    folder = root / f"fsdp2-resume-{name}"
    result: dict[str, Any] = {}
    for run, ckpt in (("uninterrupted", None), ("resumed", str(folder / "epoch=0-step=4.ckpt"))):
        model = make()
        callbacks = [pl.callbacks.ModelCheckpoint(dirpath=folder, save_top_k=-1)] if ckpt is None else []
        trainer = quiet(root, strategy=model_parallel(), max_epochs=3, callbacks=callbacks,
                        enable_checkpointing=ckpt is None)
        trainer.fit(model, loader(8), ckpt_path=ckpt)
        result[run] = {"weights": weights(model), "moments": moments(trainer.optimizers),
                       "seen": getattr(model, "seen", None) or getattr(model, "lr_log", None),
                       "counts": list(getattr(model, "optimizer_step_counts", []))}
    result["files"] = sorted(os.listdir(folder / "epoch=0-step=4.ckpt"))
    return result


def resume_recipe(root: Path, rank: int) -> dict[str, Any]:
    return interrupted_and_resumed(root, "recipe", ResumeRecipe)


def resume_gan(root: Path, rank: int) -> dict[str, Any]:
    return interrupted_and_resumed(root, "gan", ResumeGan)


def resume_hybrid(root: Path, rank: int) -> dict[str, Any]:
    """Muon on sharded matrices beside AdamW: the `HybridOptimizer`'s state through torch's distributed state dicts."""
    return interrupted_and_resumed(root, "hybrid", ShardedHybrid)


def resume_changed(root: Path, rank: int) -> dict[str, Any]:
    """`NEW` resumed from `resume_recipe`'s sharded checkpoint after epoch 0, under ``resume="recipe"`` and
    ``"checkpoint"``; and `preview_schedule` of the first from that checkpoint."""
    ckpt = root / "fsdp2-resume-recipe" / "epoch=0-step=4.ckpt"
    result: dict[str, Any] = {}
    for choice in ("recipe", "checkpoint"):
        model = ResumeRecipe(NEW, resume=choice)
        check = SchedulerCadenceCheck(print_report=False)
        with warnings.catch_warnings(record=True) as caught, library_log() as logged:
            warnings.simplefilter("always", RecipeWarning)
            trainer = quiet(root, strategy=model_parallel(), max_epochs=3, callbacks=[check])
            trainer.fit(model, loader(8), ckpt_path=str(ckpt))
        result[choice] = {"lr_log": model.lr_log, "started": model.started,
                          "table": model.resume_report.table() if model.resume_report is not None else None,
                          "positions": list(model.resume_report.positions) if model.resume_report else None,
                          "counts": [(r["kind"], r["expected"], r["actual"]) for r in check.report.rows()],
                          "warnings": [str(w.message) for w in caught if issubclass(w.category, RecipeWarning)],
                          "logged": [m for m in logged if m.startswith("Resuming from")]}
    preview = preview_schedule(NEW, module=TinyRegressor(), max_epochs=3, steps_per_epoch=4, resume="recipe",
                               resume_from=str(ckpt))
    result["preview"] = [[r["step"], r["group"], r["lr"]] for r in preview]
    result["preview_table"] = preview.resume_report.table()
    return result


#: `OLD` with a scheduler of another class and cadence: halved at the end of every epoch.
EPOCHS = {**OLD, "scheduler": {"type": "exponential", "gamma": 0.5, "interval": "epoch"}}


def resume_cadence(root: Path, rank: int) -> dict[str, Any]:
    """`EPOCHS` resumed under ``"recipe"`` from `resume_recipe`'s checkpoint after epoch 0 (4 steps of a 'step'
    scheduler): the record of its cadence, kept at the checkpoint's top level, places the new one at 1 epoch."""
    model = ResumeRecipe(EPOCHS, resume="recipe")
    quiet(root, strategy=model_parallel(), max_epochs=3).fit(
        model, loader(8), ckpt_path=str(root / "fsdp2-resume-recipe" / "epoch=0-step=4.ckpt"))
    return {"lr_log": model.lr_log, "positions": list(model.resume_report.positions),
            "table": model.resume_report.table()}


COOLDOWN = {**OLD, "scheduler": {"type": "wsd", "warmup": "1st", "decay": "4st", "decay_start": "now"}}


def cooldown(root: Path, rank: int) -> dict[str, Any]:
    """A cooldown from where training resumes (``decay_start="now"``): refused before training in a fit that does not
    resume (the check waits for the strategy's restore), placed at step 4 in one resumed from `resume_recipe`'s
    checkpoint."""
    result: dict[str, Any] = {}
    try:
        quiet(root, strategy=model_parallel(), max_epochs=2).fit(ResumeRecipe(COOLDOWN, resume="recipe"), loader(8))
        result["fresh"] = "no error"
    except RecipeError as err:
        result["fresh"] = str(err)
    model = ResumeRecipe(COOLDOWN, resume="recipe")
    quiet(root, strategy=model_parallel(), max_epochs=2).fit(
        model, loader(8), ckpt_path=str(root / "fsdp2-resume-recipe" / "epoch=0-step=4.ckpt"))
    result["lr_log"] = model.lr_log
    return result


# --------------------------------------------------------------------------------------------------- FSDP1


def fsdp1(root: Path, rank: int) -> dict[str, Any]:
    """`param_groups` and `muon_split` on modules that FSDP1 wrapped (by hand, on CPU), with and without
    ``use_orig_params=True``."""
    from torch.distributed.fsdp import FullyShardedDataParallel

    result: dict[str, Any] = {}
    for orig in (False, True):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 1))
        wrapped = FullyShardedDataParallel(model, use_orig_params=orig, device_id=torch.device("cpu"))
        for what, call in (("param_groups", lambda m: param_groups(m, weight_decay=0.1)),
                           ("muon_split", lambda m: muon_split(m).table())):
            try:
                call(wrapped)
                result[f"{what}/{orig}"] = "no error"
            except RecipeError as err:
                result[f"{what}/{orig}"] = str(err)
        if orig:  # the rule without shapes: by name and module type only
            rule = dataclasses.replace(DEFAULT_NO_DECAY, one_dim=False)
            result["by_name"] = groups_by_name(wrapped, param_groups(wrapped, weight_decay=0.1, no_decay=rule))
    return result


SCENARIOS = {
    "fsdp2_groups": groups,
    "fsdp2_recipe": recipe,
    "fsdp2_gan": gan,
    "fsdp2_hybrid": hybrid,
    "fsdp2_catalogue": catalogue,
    "fsdp2_schedulefree": schedulefree,
    "fsdp2_resume_recipe": resume_recipe,
    "fsdp2_resume_gan": resume_gan,
    "fsdp2_resume_hybrid": resume_hybrid,
    "fsdp2_resume_changed": resume_changed,
    "fsdp2_resume_cadence": resume_cadence,
    "fsdp2_cooldown": cooldown,
    "fsdp1": fsdp1,
}
