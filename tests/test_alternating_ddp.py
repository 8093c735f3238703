"""`AlternatingOptimizersMixin` under ``strategy="ddp"`` with 2 CPU processes (gloo): every rank makes the same
choices. The test runs this file as a script, because Lightning's DDP launcher re-runs the script for rank 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

pytestmark = [pytest.mark.trainer, pytest.mark.slow]

HERE = Path(__file__).resolve().parent


def _module_class(pl):
    from lightning_optim_recipes.mixins.alternating import AlternatingOptimizersMixin

    class DdpGan(AlternatingOptimizersMixin, pl.LightningModule):
        alternation = {"critic_step": 3, "generator_step": 1}
        alternation_cycle = "run"
        accumulate_grad_batches = (2, 1)

        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.generator = nn.Linear(2, 2)
            self.critic = nn.Linear(2, 1)
            self.events: list[list] = []

        def critic_step(self, batch, batch_idx):
            (real,) = batch
            return self.critic(self.generator(real.flip(1))).mean() - self.critic(real).mean()

        def generator_step(self, batch, batch_idx):
            (real,) = batch
            return -self.critic(self.generator(real.flip(1))).mean()

        def on_before_optimizer_step(self, optimizer):
            name = "C" if optimizer.param_groups[0]["params"][0] is self.critic.weight else "G"
            lr = optimizer.param_groups[0]["lr"]
            self.events.append([self.current_epoch, self.trainer.fit_loop.epoch_loop.batch_idx, name, lr])

        def configure_optimizers(self):
            critic = torch.optim.SGD(self.critic.parameters(), lr=0.1)
            generator = torch.optim.SGD(self.generator.parameters(), lr=0.1)
            step = torch.optim.lr_scheduler.StepLR(critic, step_size=1, gamma=0.5)
            return [critic, generator], [{"scheduler": step, "interval": "step", "frequency": 4}]

    return DdpGan


def _train(out: Path, devices: int = 2) -> None:
    """Train on 26 batches of 4 samples: with 2 ranks, each rank's batch of 2 is half of the single process's."""
    sys.path.insert(0, str(HERE))
    from helpers import pl

    model = _module_class(pl)()
    samples = torch.randn(13 * 4, 2, generator=torch.Generator().manual_seed(0))
    rank = int(os.environ.get("LOCAL_RANK", 0))  # rank r gets samples r, r + 2, ...: its batch k is half of batch k
    data = DataLoader(TensorDataset(samples[rank::devices]), batch_size=4 // devices)
    fit = pl.Trainer(accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto", max_epochs=2,
                     use_distributed_sampler=False, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False)
    fit.fit(model, data)
    result = {
        "events": model.events,
        "counts": list(model.optimizer_step_counts),
        "global_step": fit.global_step,
        "params": [p.detach().flatten().tolist() for p in model.parameters()],
    }
    name = f"rank{fit.global_rank}" if devices > 1 else "single"
    (out / f"{name}.json").write_text(json.dumps(result))


def test_ddp_two_cpu_ranks_make_the_same_choices(tmp_path):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    done = subprocess.run([sys.executable, __file__, str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    # 13 batches per rank and epoch, 26 over the run: the critic runs at run-wide positions p % 4 in {0, 1, 2}
    # (20 batches, windows of 2 -> 10 steps), the generator at p = 3, 7, ..., 23 (6 steps)
    assert rank0["counts"] == rank1["counts"] == [10, 6]
    assert rank0["global_step"] == rank1["global_step"] == 16
    assert rank0["events"] == rank1["events"]
    assert [e[1:3] for e in rank0["events"][:6]] == [[1, "C"], [3, "G"], [4, "C"], [6, "C"], [7, "G"], [9, "C"]]
    assert [e[3] for e in rank0["events"] if e[2] == "C"] == [0.1] * 4 + [0.05] * 4 + [0.025] * 2
    assert rank0["params"] == rank1["params"]  # gradients were all-reduced: the replicas stayed identical
    _train(tmp_path, devices=1)  # the same batches of 4 in one process: the same steps and parameters
    single = json.loads((tmp_path / "single.json").read_text())
    assert single["events"] == rank0["events"]
    assert [p for ps in single["params"] for p in ps] == pytest.approx([p for ps in rank0["params"] for p in ps])


def _exit_cleanly() -> None:
    """Both ranks have written their results: end the process group and exit without the interpreter's teardown,
    where gloo's threads can abort a rank ("terminate called without an active exception") on a loaded machine."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    _train(Path(sys.argv[1]))
    _exit_cleanly()
