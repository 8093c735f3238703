"""Both callbacks under ``strategy="ddp"`` with 2 CPU processes (gloo), for `OptimRecipeMixin`, for
`AlternatingOptimizersMixin` (n_critic 2:1 frequency dicts) and for a Muon `HybridOptimizer` recipe: every rank sees the same lrs and makes the same
alternation choices, `SchedulerCadenceCheck` raises no `CadenceError` on either rank and reports the same counts,
and the logs are written once: only rank 0 writes ``metrics.csv`` and ``cadence_report.csv``. A third fit trains a
schedule-free recipe with validation and checkpoints: `ScheduleFreeModes` switches the modes on both ranks.

Lightning's "ddp" launches rank 1 by re-running the command line, so the test writes one script to `tmp_path` that
runs both fits (the second Trainer reuses the processes of the first), and each rank writes what it saw as JSON.
Each rank's CSVLogger gets its own directory, so a write by rank 1 would show.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.trainer, pytest.mark.slow]

TESTS = Path(__file__).resolve().parent

SCRIPT = textwrap.dedent(
    """
    import json, os, sys, warnings
    sys.path.insert(0, sys.argv[2])
    warnings.filterwarnings("ignore")
    import torch
    from torch import nn
    from helpers import TinyRegressor, loader, pl
    from lightning_optim_recipes import OptimRecipeMixin
    from lightning_optim_recipes.mixins.alternating import AlternatingOptimizersMixin
    from lightning_optim_recipes.callbacks.cadence_check import SchedulerCadenceCheck
    from lightning_optim_recipes.callbacks.lr_logger import LearningRateLogger

    root = sys.argv[1]
    rank = int(os.environ.get("LOCAL_RANK", 0))  # set by the launcher for rank 1, and for rank 0 once it launched


    class Recipe(OptimRecipeMixin, TinyRegressor):
        optim_recipe = {"optimizer": "SGD", "lr": 0.1, "weight_decay": 0.01, "overrides": {"decoder": {"lr": 0.4}},
                        "scheduler": {"type": "exponential", "gamma": 0.5, "interval": "step"}}

        def on_before_optimizer_step(self, optimizer):
            self.seen = getattr(self, "seen", [])
            self.seen.append([self.global_step, [g["lr"] for g in optimizer.param_groups]])


    class Gan(AlternatingOptimizersMixin, pl.LightningModule):
        alternation_cycle = "run"

        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.critic, self.generator = nn.Linear(4, 1), nn.Linear(4, 4)
            self.seen = []

        def training_step(self, batch, batch_idx, optimizer_idx):
            x, _ = batch
            if optimizer_idx == 0:
                return self.critic(self.generator(x.flip(1))).mean() - self.critic(x).mean()
            return -self.critic(self.generator(x.flip(1))).mean()

        def on_before_optimizer_step(self, optimizer):
            which = "C" if optimizer.param_groups[0]["params"][0] is self.critic.weight else "G"
            lrs = [[g["lr"] for g in o.param_groups] for o in self.trainer.optimizers]
            self.seen.append([self.global_step, self.trainer.fit_loop.epoch_loop.batch_idx, which, lrs])

        def configure_optimizers(self):
            critic = torch.optim.SGD(self.critic.parameters(), lr=0.1)
            generator = torch.optim.SGD(self.generator.parameters(), lr=0.2)
            return ({"optimizer": critic, "frequency": 2,
                     "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.ExponentialLR(critic, 0.5),
                                      "interval": "step"}},
                    {"optimizer": generator, "frequency": 1})


    class Hybrid(OptimRecipeMixin, TinyRegressor):  # Muon for encoder.0.weight, AdamW for the rest
        optim_recipe = {"optimizer": "Muon", "lr": 0.02, "weight_decay": 0.01,
                        "hybrid": {"optimizer": "AdamW", "lr": 0.001, "weight_decay": 0.01},
                        "scheduler": {"type": "exponential", "gamma": 0.5, "interval": "step"}}

        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            for p in self.parameters():
                torch.nn.init.normal_(p, std=0.5)

        def on_before_optimizer_step(self, optimizer):
            self.seen = getattr(self, "seen", [])
            self.seen.append([self.global_step, [g["lr"] for g in optimizer.param_groups]])


    result = {}
    for name, model in (("recipe", Recipe()), ("gan", Gan()), ("hybrid", Hybrid())):
        check = SchedulerCadenceCheck(print_report=False)
        logger = pl.loggers.CSVLogger(f"{root}/logs-{name}/rank{rank}", name="run")
        trainer = pl.Trainer(
            accelerator="cpu", devices=2, strategy="ddp", max_epochs=2, logger=logger, log_every_n_steps=1,
            callbacks=[LearningRateLogger(), check], enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, default_root_dir=root,
        )
        trainer.fit(model, loader(8))  # 8 batches of 4, split by the DistributedSampler: 4 per rank and epoch
        result[name] = {
            "world_size": trainer.world_size, "backend": trainer.strategy._process_group_backend,
            "global_rank": trainer.global_rank, "seen": model.seen, "report": check.report.rows(),
            "counts": list(getattr(model, "optimizer_step_counts", [])),
            "weights": [p.detach().flatten().tolist() for p in model.parameters()],
        }

    class ScheduleFree(OptimRecipeMixin, TinyRegressor):  # the mixin adds ScheduleFreeModes
        optim_recipe = {"optimizer": "AdamWScheduleFree", "lr": 0.05, "optimizer_kwargs": {"warmup_steps": 3}}

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", nn.functional.mse_loss(self(x), y), sync_dist=True)

        def on_before_optimizer_step(self, optimizer):
            self.seen = getattr(self, "seen", [])
            self.seen.append([optimizer.param_groups[0]["train_mode"], optimizer.param_groups[0]["k"]])


    torch.manual_seed(0)
    model = ScheduleFree()
    checkpoints = pl.callbacks.ModelCheckpoint(dirpath=f"{root}/ckpt-schedulefree", save_top_k=-1)
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", max_epochs=2, logger=False, callbacks=[checkpoints],
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=root, num_sanity_val_steps=0,
    )
    trainer.fit(model, loader(8), loader(2))
    result["schedulefree"] = {
        "seen": model.seen, "train_mode": trainer.optimizers[0].param_groups[0]["train_mode"],
        "weights": {n: p.tolist() for n, p in model.named_parameters()},
        "callbacks": [type(c).__name__ for c in trainer.callbacks],
    }
    with open(f"{root}/rank{rank}.json", "w") as f:
        json.dump(result, f)

    # end cleanly: both ranks have written their results; gloo's threads at interpreter exit can abort a rank
    # ("terminate called without an active exception") on a loaded machine
    import os, torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(0)
    """
)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    script = root / "ddp_callbacks.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(root), str(TESTS)],
        cwd=root, env=dict(os.environ, PYTHONWARNINGS="ignore"), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]  # a CadenceError on either rank would fail the script
    ranks = [json.loads((root / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    return root, ranks


def test_ranks_run_ddp_over_gloo(ddp_run):
    _, ranks = ddp_run
    for rank, seen in enumerate(ranks):
        for name in ("recipe", "gan"):
            assert (seen[name]["world_size"], seen[name]["backend"], seen[name]["global_rank"]) == (2, "gloo", rank)


def test_recipe_mixin_same_lrs_on_every_rank(ddp_run):
    root, ranks = ddp_run
    assert ranks[0]["recipe"]["seen"] == ranks[1]["recipe"]["seen"]
    # groups decay, no_decay, decoder, decoder/no_decay, halved after every optimizer step (exact in binary)
    assert ranks[0]["recipe"]["seen"] == [[s, [0.1 * 0.5**s] * 2 + [0.4 * 0.5**s] * 2] for s in range(8)]
    assert ranks[0]["recipe"]["report"] == ranks[1]["recipe"]["report"]
    assert [(r["kind"], r["expected"], r["expected_max"], r["actual"]) for r in ranks[0]["recipe"]["report"]] == [
        ("scheduler", 8, 8, 8), ("optimizer", 8, 8, 8)]
    rows = read_csv(root / "logs-recipe" / "rank0" / "run" / "version_0" / "metrics.csv")
    assert [int(row["step"]) for row in rows] == list(range(8))
    names = ["lr-SGD/decay", "lr-SGD/no_decay", "lr-SGD/decoder", "lr-SGD/decoder/no_decay"]
    for step, row in enumerate(rows):
        assert [float(row[name]) for name in names] == [0.1 * 0.5**step] * 2 + [0.4 * 0.5**step] * 2


def test_alternating_mixin_same_choices_and_lrs_on_every_rank(ddp_run):
    root, ranks = ddp_run
    gan0, gan1 = ranks[0]["gan"], ranks[1]["gan"]
    assert gan0["seen"] == gan1["seen"] and gan0["counts"] == gan1["counts"] == [6, 2]
    # run-wide cycle 2:1 over 8 batches (4 per epoch): C C G C | C G C C; the critic's lr halves after each of its
    # steps, the generator's stays 0.2
    choices = [which for _, _, which, _ in gan0["seen"]]
    assert choices == list("CCGCCGCC")
    assert [batch for _, batch, _, _ in gan0["seen"]] == [0, 1, 2, 3, 0, 1, 2, 3]
    critic_steps = [choices[:s].count("C") for s in range(8)]
    assert [lrs for _, _, _, lrs in gan0["seen"]] == [[[0.1 * 0.5**k], [0.2]] for k in critic_steps]
    assert gan0["report"] == gan1["report"]
    assert [(r["kind"], r["frequency"], r["expected"], r["actual"]) for r in gan0["report"]] == [
        ("scheduler", 1, 6, 6), ("optimizer", 2, 6, 6), ("optimizer", 1, 2, 2)]
    rows = read_csv(root / "logs-gan" / "rank0" / "run" / "version_0" / "metrics.csv")
    # LearningRateLogger: the critic's at every step ('step' scheduler), the generator's (no scheduler) too
    assert [int(row["step"]) for row in rows if row["lr-SGD"]] == list(range(8))
    assert [float(row["lr-SGD"]) for row in rows if row["lr-SGD"]] == [0.1 * 0.5**k for k in critic_steps]
    assert {float(row["lr-SGD-1"]) for row in rows if row["lr-SGD-1"]} == {0.2}


def test_hybrid_optimizer_same_weights_and_lrs_on_every_rank(ddp_run):
    root, ranks = ddp_run
    hybrid0, hybrid1 = ranks[0]["hybrid"], ranks[1]["hybrid"]
    # DDP averages the gradients before both parts step: every rank ends with the same weights
    assert hybrid0["weights"] == hybrid1["weights"] and hybrid0["seen"] == hybrid1["seen"]
    # Muon's hidden group, then AdamW's three groups, halved after every step
    assert hybrid0["seen"] == [[s, [0.02 * 0.5**s] + [0.001 * 0.5**s] * 3] for s in range(8)]
    assert [(r["kind"], r["name"], r["expected"], r["actual"]) for r in hybrid0["report"]] == [
        ("scheduler", "lr-Muon+lr-AdamW", 8, 8), ("optimizer", "lr-Muon+lr-AdamW", 8, 8)]
    rows = read_csv(root / "logs-hybrid" / "rank0" / "run" / "version_0" / "metrics.csv")
    names = ["lr-Muon/hidden", "lr-AdamW/head", "lr-AdamW/head/no_decay", "lr-AdamW/scalar/no_decay"]
    for step, row in enumerate(rows):
        assert [float(row[name]) for name in names] == [0.02 * 0.5**step] + [0.001 * 0.5**step] * 3


def test_schedule_free_modes_on_every_rank(ddp_run):
    """`ScheduleFreeModes` (added by the mixin) switches the modes on both ranks: train mode for every step, the
    same evaluation weights after fit on both, and rank 0's checkpoints hold them in eval mode."""
    import torch

    root, ranks = ddp_run
    sf0, sf1 = ranks[0]["schedulefree"], ranks[1]["schedulefree"]
    assert sf0["callbacks"].count("ScheduleFreeModes") == 1
    assert sf0["seen"] == sf1["seen"] == [[True, k] for k in range(8)]  # 4 steps per epoch and rank
    assert sf0["weights"] == sf1["weights"] and sf0["train_mode"] is sf1["train_mode"] is False
    saved = torch.load(root / "ckpt-schedulefree" / "epoch=1-step=8.ckpt", weights_only=False)
    assert [g["train_mode"] for g in saved["optimizer_states"][0]["param_groups"]] == [False, False]
    for name, value in sf0["weights"].items():  # the last save, then the end of fit: the same evaluation weights
        assert torch.allclose(saved["state_dict"][name], torch.tensor(value), rtol=1e-5, atol=1e-6), name
    assert sorted(p.name for p in (root / "ckpt-schedulefree").iterdir()) == ["epoch=0-step=4.ckpt",
                                                                             "epoch=1-step=8.ckpt"]


def test_logs_written_once(ddp_run):
    root, _ = ddp_run
    for name in ("recipe", "gan", "hybrid"):
        written = sorted(p.relative_to(root / f"logs-{name}").as_posix()
                         for p in (root / f"logs-{name}").rglob("*") if p.is_file())
        assert written == ["rank0/run/version_0/cadence_report.csv", "rank0/run/version_0/metrics.csv"]
